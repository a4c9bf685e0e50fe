/* twin-raw: a raw protocol client for demos and tests (<twin/proto.h> on the wire).
 *
 *   twin-raw [--cluster N] [--timeout-ms N] ADDR  <script
 *
 * Reads a script from stdin, one command per line ('#' comments and blank lines are
 * skipped), echoes each command as "> line" on stdout, then runs it. Connections are
 * named; each has a client id, the session from its last register reply, its next request
 * number (register is request 0 and restarts the numbering at 1), its release and the last
 * request or register it sent (for retry). Plain blocking POSIX sockets, poll for timeouts;
 * messages are built with tw_header_seal and replies parsed with a tw_frame_reader, one
 * message at a time (each recv asks for no more than the rest of the current message, so
 * what follows stays in the socket until the script asks for it).
 *
 * Every message received prints as one line, "NAME < ..." (see print_message). Any failure
 * (a timeout in expect, an unexpected close or message, a bad command or number) prints
 * "twin-raw: line N: <what went wrong>" on stderr and exits 1; a finished script exits 0;
 * bad usage exits 2. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <twin/assert.h>
#include <twin/ledger.h>
#include <twin/loop.h>
#include <twin/os.h>
#include <twin/proto.h>

#include "cli_parse.h"

#define TWIN_RAW_CONNECTIONS_MAX 64u
#define TWIN_RAW_NAME_SIZE 32u /* names up to 31 characters */
#define TWIN_RAW_CONNECT_RETRY_MS 20u
#define TWIN_RAW_TIMEOUT_MS_DEFAULT 2000u
#define TWIN_RAW_TIMEOUT_MS_MAX (3600u * 1000u)
#define TWIN_RAW_SLEEP_MS_MAX (3600u * 1000u)
#define TWIN_RAW_RELEASE_DEFAULT 1u
/* Words on one line: a command, a name and as many ids as one message can carry. */
#define TWIN_RAW_WORDS_MAX (2u + (TW_MESSAGE_SIZE_MAX - TW_HEADER_SIZE) / sizeof(tw_u128))
/* Decimal digits of 2^128 - 1, and a terminating zero. */
#define TWIN_RAW_U128_TEXT_SIZE 40u
#define TWIN_RAW_CORRUPT_BODY "corrupt me"
#define TWIN_RAW_NS_PER_MS 1000000u

static const char usage[] = "usage: twin-raw [--cluster N] [--timeout-ms N] ADDR <script\n";

static const char help[] =
    "Sends hand-made protocol messages to a twin server and prints what comes back.\n"
    "\n"
    "  ADDR             the server: IPV4:PORT or [IPV6]:PORT\n"
    "  --cluster N      the cluster id, decimal below 2^128 (default 0)\n"
    "  --timeout-ms N   how long expect and sends wait, 1..3600000 (default 2000)\n"
    "\n"
    "Script commands, one a line (# comments and blank lines are skipped):\n"
    "  connect NAME CLIENT_ID [release R]\n"
    "  register NAME                      request 0; the next request is 1 again\n"
    "  echo NAME TEXT...\n"
    "  create_accounts NAME ID:LEDGER:CODE[:FLAGS] ...\n"
    "  create_transfers NAME ID:DEBIT:CREDIT:AMOUNT:LEDGER:CODE[:FLAGS] ...\n"
    "  lookup_accounts NAME ID ...        lookup_transfers NAME ID ...\n"
    "  retry NAME                         resend the last request or register exactly\n"
    "  request_number NAME N              the next request goes out as number N\n"
    "  ping NAME\n"
    "  corrupt NAME                       an echo whose body no longer matches its checksum\n"
    "  expect NAME                        wait for the next message and print it\n"
    "  expect_closed NAME                 wait for the server to close the connection\n"
    "  expect_nothing NAME MS             fail if anything arrives within MS ms\n"
    "  close NAME                         sleep MS\n"
    "\n"
    "Numbers are decimal. Exit 0: the script ran; 1: a line failed; 2: bad usage.\n";

typedef struct connection {
    char name[TWIN_RAW_NAME_SIZE];
    bool named; /* the slot belongs to name (open, or closed and reusable by connect) */
    int fd;     /* -1 when closed */
    tw_u128 client;
    uint64_t session; /* from the last register reply; 0 before */
    uint64_t request_next;
    uint32_t release;
    uint8_t *sent; /* the last request or register, for retry: TW_MESSAGE_SIZE_MAX bytes */
    uint32_t sent_size;
    uint8_t *reader_buffer; /* TW_MESSAGE_SIZE_MAX bytes */
    tw_frame_reader reader;
} connection;

typedef struct raw {
    tw_address address;
    tw_u128 cluster;
    uint32_t timeout_ms;
    uint64_t line_number;
    connection connections[TWIN_RAW_CONNECTIONS_MAX];
    uint8_t body[TW_MESSAGE_SIZE_MAX - TW_HEADER_SIZE]; /* the body being built */
    uint8_t message[TW_MESSAGE_SIZE_MAX];                /* the message being sent */
    char *words[TWIN_RAW_WORDS_MAX];
    size_t word_offsets[TWIN_RAW_WORDS_MAX]; /* where each word starts in the line */
} raw;

static raw state; /* large: static storage */

/* ---- failing --------------------------------------------------------------------------- */

static void fail(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *format, ...) {
    fflush(stdout);
    va_list arguments;
    va_start(arguments, format);
    fprintf(stderr, "twin-raw: line %" PRIu64 ": ", state.line_number);
    vfprintf(stderr, format, arguments);
    va_end(arguments);
    fprintf(stderr, "\n");
    exit(1);
}

static int usage_error(const char *format, const char *value) {
    fprintf(stderr, "twin-raw: ");
    fprintf(stderr, format, value);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

/* ---- numbers --------------------------------------------------------------------------- */


/* Decimal text of value into text (TWIN_RAW_U128_TEXT_SIZE bytes). */
static const char *u128_format(tw_u128 value, char *text) {
    char digits[TWIN_RAW_U128_TEXT_SIZE];
    size_t count = 0;
    uint32_t limbs[4] = {(uint32_t)value.low, (uint32_t)(value.low >> 32), (uint32_t)value.high,
                         (uint32_t)(value.high >> 32)};
    do {
        /* limbs /= 10, most significant first; the remainder is the next digit. */
        uint64_t remainder = 0;
        for (int i = 3; i >= 0; i--) {
            uint64_t current = (remainder << 32) | limbs[i];
            limbs[i] = (uint32_t)(current / 10u);
            remainder = current % 10u;
        }
        TW_ASSERT(count < sizeof(digits) - 1);
        digits[count++] = (char)('0' + remainder);
    } while ((limbs[0] | limbs[1] | limbs[2] | limbs[3]) != 0);
    for (size_t i = 0; i < count; i++) text[i] = digits[count - 1 - i];
    text[count] = '\0';
    return text;
}

/* A word of the script that must be a number: fails the line naming what it is. */
static uint64_t word_u64(const char *word, uint64_t max, const char *what) {
    uint64_t value = 0;
    if (!tw_cli_parse_u64(word, max, &value)) {
        fail("%s takes a decimal integer 0..%" PRIu64 ", not '%s'", what, max, word);
    }
    return value;
}

static tw_u128 word_u128(const char *word, const char *what) {
    tw_u128 value;
    if (!tw_cli_parse_u128(word, &value)) {
        fail("%s takes a decimal integer 0..2^128-1, not '%s'", what, word);
    }
    return value;
}

static uint64_t now_ms(void) { return tw_clock_monotonic_ns() / TWIN_RAW_NS_PER_MS; }

/* ---- connections ----------------------------------------------------------------------- */

static connection *find_connection(const char *name) {
    for (uint32_t i = 0; i < TWIN_RAW_CONNECTIONS_MAX; i++) {
        connection *c = &state.connections[i];
        if (c->named && strcmp(c->name, name) == 0) return c;
    }
    return NULL;
}

/* The open connection called name, or the line fails. */
static connection *open_connection(const char *name) {
    connection *c = find_connection(name);
    if (c == NULL) fail("no connection called '%s' (connect it first)", name);
    if (c->fd < 0) fail("connection '%s' is closed", name);
    return c;
}

static void connection_close(connection *c) {
    TW_ASSERT(c->fd >= 0);
    close(c->fd);
    c->fd = -1;
}

/* One connect attempt: the socket, or -1 when the server refused (nothing listens yet). */
static int dial_once(const struct sockaddr_storage *storage, socklen_t length, uint64_t deadline_ms) {
    int fd = socket(storage->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_TCP);
    if (fd < 0) fail("socket: %s", strerror(errno));
    int error = 0;
    if (connect(fd, (const struct sockaddr *)storage, length) != 0) {
        error = errno;
        if (error == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            uint64_t now = now_ms();
            int wait_ms = deadline_ms > now ? (int)(deadline_ms - now) : 0;
            int ready;
            do ready = poll(&p, 1, wait_ms);
            while (ready < 0 && errno == EINTR);
            if (ready < 0) fail("poll: %s", strerror(errno));
            if (ready == 0) fail("connect: no answer within %" PRIu32 " ms", state.timeout_ms);
            socklen_t error_size = sizeof(error);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_size) != 0) {
                fail("getsockopt: %s", strerror(errno));
            }
        }
    }
    if (error == ECONNREFUSED) {
        close(fd);
        return -1;
    }
    if (error != 0) fail("connect: %s", strerror(error));
    return fd;
}

/* A TCP connection to the server, within the timeout; blocking afterwards. A refused
 * connect is tried again every TWIN_RAW_CONNECT_RETRY_MS until the timeout, so a script
 * may start right after the server is launched. */
static int dial(uint32_t timeout_ms) {
    struct sockaddr_storage storage;
    memset(&storage, 0, sizeof(storage));
    socklen_t length;
    if (state.address.family == 4) {
        struct sockaddr_in *in = (struct sockaddr_in *)&storage;
        in->sin_family = AF_INET;
        in->sin_port = htons(state.address.port);
        memcpy(&in->sin_addr, state.address.ip, 4);
        length = sizeof(*in);
    } else {
        TW_ASSERT(state.address.family == 6);
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&storage;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(state.address.port);
        memcpy(&in6->sin6_addr, state.address.ip, 16);
        length = sizeof(*in6);
    }
    uint64_t deadline_ms = now_ms() + timeout_ms;
    int fd = dial_once(&storage, length, deadline_ms);
    while (fd < 0) {
        if (now_ms() + TWIN_RAW_CONNECT_RETRY_MS > deadline_ms) {
            fail("connect: refused for %" PRIu32 " ms (is twin-server listening there?)", timeout_ms);
        }
        struct timespec pause = {.tv_sec = 0, .tv_nsec = (long)TWIN_RAW_CONNECT_RETRY_MS * 1000000L};
        while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
        }
        fd = dial_once(&storage, length, deadline_ms);
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        fail("fcntl: %s", strerror(errno));
    }
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
        fail("TCP_NODELAY: %s", strerror(errno));
    }
    return fd;
}

/* Writes all of bytes, waiting at most the timeout for room each time. */
static void send_all(connection *c, const uint8_t *bytes, uint32_t size) {
    uint32_t written = 0;
    while (written < size) {
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        int ready = poll(&p, 1, (int)state.timeout_ms);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) fail("poll: %s", strerror(errno));
        if (ready == 0) {
            fail("%s: the server took no bytes for %" PRIu32 " ms (send blocked)", c->name,
                 state.timeout_ms);
        }
        ssize_t sent = send(c->fd, bytes + written, size - written, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (sent < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            fail("%s: the server closed the connection (send: %s)", c->name, strerror(errno));
        }
        if (sent < 0) fail("%s: send: %s", c->name, strerror(errno));
        written += (uint32_t)sent;
    }
}

/* ---- messages out ---------------------------------------------------------------------- */

/* A header for c with the fields every message shares. */
static tw_header header_for(const connection *c, tw_command command, tw_operation operation,
                            uint32_t body_size) {
    TW_ASSERT(body_size <= TW_MESSAGE_SIZE_MAX - TW_HEADER_SIZE);
    tw_header header;
    memset(&header, 0, sizeof(header));
    header.cluster = state.cluster;
    header.client = c->client;
    header.session = c->session;
    header.size = TW_HEADER_SIZE + body_size;
    header.release = c->release;
    header.command = (uint8_t)command;
    header.operation = (uint8_t)operation;
    return header;
}

/* Seals header with body into state.message, sends it, and keeps a copy as the last sent
 * (for retry) when kept. With corrupt, a body byte is flipped after sealing. */
static void send_message(connection *c, tw_header *header, const uint8_t *body, bool kept,
                         bool corrupt) {
    uint32_t body_size = header->size - TW_HEADER_SIZE;
    TW_ASSERT(!(kept && corrupt));
    TW_ASSERT(!corrupt || body_size > 0);
    tw_header_seal(header, body);
    memcpy(state.message, header, TW_HEADER_SIZE);
    if (body_size > 0) memcpy(state.message + TW_HEADER_SIZE, body, body_size);
    if (corrupt) state.message[TW_HEADER_SIZE] ^= 0x01u;
    send_all(c, state.message, header->size);
    if (kept) {
        memcpy(c->sent, state.message, header->size);
        c->sent_size = header->size;
    }
}

/* A request with state.body: the next request number, which then moves on. */
static void send_request(connection *c, tw_operation operation, uint32_t body_size) {
    tw_header header = header_for(c, tw_command_request, operation, body_size);
    header.request = c->request_next;
    send_message(c, &header, state.body, true, false);
    c->request_next++;
}

/* The most events of operation a request may carry: a full message at TW_MESSAGE_SIZE_MAX. */
static uint32_t events_room(tw_operation operation) {
    return (TW_MESSAGE_SIZE_MAX - TW_HEADER_SIZE) / tw_operation_event_size(operation);
}

/* Splits text at ':' into at most fields_max fields (text is changed). */
static uint32_t split_fields(char *text, char **fields, uint32_t fields_max) {
    uint32_t count = 0;
    char *start = text;
    for (;;) {
        if (count == fields_max) return fields_max + 1;
        fields[count++] = start;
        char *colon = strchr(start, ':');
        if (colon == NULL) return count;
        *colon = '\0';
        start = colon + 1;
    }
}

enum { account_fields_max = 4, transfer_fields_max = 7 };

static tw_account parse_account(char *word) {
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", word);
    char *fields[account_fields_max];
    uint32_t count = split_fields(word, fields, account_fields_max);
    if (count < 3 || count > account_fields_max) {
        fail("create_accounts: '%s' is not ID:LEDGER:CODE[:FLAGS]", copy);
    }
    tw_account account;
    memset(&account, 0, sizeof(account));
    account.id = word_u128(fields[0], "an account ID");
    account.ledger = (uint32_t)word_u64(fields[1], UINT32_MAX, "LEDGER");
    account.code = (uint16_t)word_u64(fields[2], UINT16_MAX, "CODE");
    if (count == account_fields_max) {
        account.flags = (uint16_t)word_u64(fields[3], UINT16_MAX, "FLAGS");
    }
    return account;
}

static tw_transfer parse_transfer(char *word) {
    char copy[512];
    snprintf(copy, sizeof(copy), "%s", word);
    char *fields[transfer_fields_max];
    uint32_t count = split_fields(word, fields, transfer_fields_max);
    if (count < 6 || count > transfer_fields_max) {
        fail("create_transfers: '%s' is not ID:DEBIT:CREDIT:AMOUNT:LEDGER:CODE[:FLAGS]", copy);
    }
    tw_transfer transfer;
    memset(&transfer, 0, sizeof(transfer));
    transfer.id = word_u128(fields[0], "a transfer ID");
    transfer.debit_account_id = word_u128(fields[1], "DEBIT");
    transfer.credit_account_id = word_u128(fields[2], "CREDIT");
    transfer.amount = word_u64(fields[3], UINT64_MAX, "AMOUNT");
    transfer.ledger = (uint32_t)word_u64(fields[4], UINT32_MAX, "LEDGER");
    transfer.code = (uint16_t)word_u64(fields[5], UINT16_MAX, "CODE");
    if (count == transfer_fields_max) {
        transfer.flags = (uint16_t)word_u64(fields[6], UINT16_MAX, "FLAGS");
    }
    return transfer;
}

/* ---- messages in ----------------------------------------------------------------------- */

/* body as a quoted string: printable ASCII as is, the rest escaped. */
static void print_quoted(const uint8_t *body, uint32_t size) {
    putchar('"');
    for (uint32_t i = 0; i < size; i++) {
        uint8_t byte = body[i];
        if (byte == '"' || byte == '\\') {
            printf("\\%c", byte);
        } else if (byte == '\n') {
            printf("\\n");
        } else if (byte >= 0x20 && byte < 0x7f) {
            putchar(byte);
        } else {
            printf("\\x%02x", byte);
        }
    }
    putchar('"');
}

/* A reply's body must be whole results of its operation. */
static void check_results(const connection *c, const tw_header *header, uint32_t result_size) {
    uint32_t body_size = header->size - TW_HEADER_SIZE;
    if (result_size != 0 && body_size % result_size != 0) {
        fail("%s: a %s reply of %" PRIu32 " body bytes is not whole %" PRIu32 "-byte results",
             c->name, tw_operation_name((tw_operation)header->operation), body_size, result_size);
    }
}

static void print_reply_body(const connection *c, const tw_header *header, const uint8_t *body) {
    tw_operation operation = (tw_operation)header->operation;
    uint32_t body_size = header->size - TW_HEADER_SIZE;
    uint32_t result_size = tw_operation_result_size(operation);
    check_results(c, header, result_size);
    uint32_t count = result_size == 0 ? 0 : body_size / result_size;
    char id[TWIN_RAW_U128_TEXT_SIZE];
    char debit[TWIN_RAW_U128_TEXT_SIZE];
    char credit[TWIN_RAW_U128_TEXT_SIZE];
    switch (operation) {
    case tw_operation_echo:
        printf(" body=");
        print_quoted(body, body_size);
        return;
    case tw_operation_create_accounts:
    case tw_operation_create_transfers:
        printf(" results:");
        if (count == 0) printf(" none");
        for (uint32_t i = 0; i < count; i++) {
            tw_create_result result;
            memcpy(&result, body + (size_t)i * sizeof(result), sizeof(result));
            const char *name =
                operation == tw_operation_create_accounts
                    ? tw_create_account_result_name((tw_create_account_result)result.result)
                    : tw_create_transfer_result_name((tw_create_transfer_result)result.result);
            printf(" %" PRIu32 ":%s", result.index, name);
        }
        return;
    case tw_operation_lookup_accounts:
        printf(" accounts:");
        if (count == 0) printf(" none");
        for (uint32_t i = 0; i < count; i++) {
            tw_account account;
            memcpy(&account, body + (size_t)i * sizeof(account), sizeof(account));
            printf("%s id=%s ledger=%" PRIu32 " code=%u debits=%" PRIu64 " credits=%" PRIu64,
                   i == 0 ? "" : ";", u128_format(account.id, id), account.ledger,
                   (unsigned)account.code, account.debits_posted, account.credits_posted);
            if (account.flags != 0) printf(" flags=%u", (unsigned)account.flags);
        }
        return;
    case tw_operation_lookup_transfers:
        printf(" transfers:");
        if (count == 0) printf(" none");
        for (uint32_t i = 0; i < count; i++) {
            tw_transfer transfer;
            memcpy(&transfer, body + (size_t)i * sizeof(transfer), sizeof(transfer));
            printf("%s id=%s debit=%s credit=%s amount=%" PRIu64 " ledger=%" PRIu32 " code=%u",
                   i == 0 ? "" : ";", u128_format(transfer.id, id),
                   u128_format(transfer.debit_account_id, debit),
                   u128_format(transfer.credit_account_id, credit), transfer.amount,
                   transfer.ledger, (unsigned)transfer.code);
            if (transfer.flags != 0) printf(" flags=%u", (unsigned)transfer.flags);
        }
        return;
    case tw_operation_none:
        break;
    }
    TW_ASSERT(false); /* register replies are printed by the caller */
}

typedef struct delivery {
    connection *connection;
    bool delivered;
} delivery;

/* One whole, checked message from the server: prints it as one line. */
static void on_message(void *context, const tw_header *header, const uint8_t *body) {
    delivery *d = context;
    connection *c = d->connection;
    TW_ASSERT(!d->delivered); /* the reader is never given more than one message */
    d->delivered = true;
    switch ((tw_command)header->command) {
    case tw_command_reply:
        if (header->operation == tw_operation_none) {
            c->session = header->session;
            printf("%s < reply register session=%" PRIu64 " op=%" PRIu64
                   " batch_size_max=%" PRIu32 "\n",
                   c->name, header->session, header->op, header->batch_size_max);
        } else {
            printf("%s < reply %s request=%" PRIu64 " op=%" PRIu64 " timestamp=%" PRIu64, c->name,
                   tw_operation_name((tw_operation)header->operation), header->request, header->op,
                   header->timestamp);
            print_reply_body(c, header, body);
            printf("\n");
        }
        return;
    case tw_command_eviction:
        printf("%s < eviction reason=%s session=%" PRIu64 "\n", c->name,
               tw_eviction_reason_name((tw_eviction_reason)header->eviction_reason),
               header->session);
        return;
    case tw_command_pong:
        printf("%s < pong timestamp=%" PRIu64 "\n", c->name, header->timestamp);
        return;
    case tw_command_none:
    case tw_command_register:
    case tw_command_request:
    case tw_command_ping:
        break;
    }
    printf("%s < %s request=%" PRIu64 " op=%" PRIu64 "\n", c->name,
           tw_command_name((tw_command)header->command), header->request, header->op);
    fail("%s: the server sent a %s, which no client takes", c->name,
         tw_command_name((tw_command)header->command));
}

typedef enum receive_outcome {
    receive_message, /* one message was printed */
    receive_closed,  /* EOF or reset */
    receive_timeout,
} receive_outcome;

/* Bytes the reader needs to finish the message it holds the start of. */
static uint32_t bytes_needed(const tw_frame_reader *reader) {
    if (reader->used < TW_HEADER_SIZE) return TW_HEADER_SIZE - reader->used;
    /* A whole header is held only once it passed tw_header_check: its size is valid. */
    uint32_t size;
    memcpy(&size, reader->buffer + offsetof(tw_header, size), sizeof(size));
    TW_ASSERT(size > reader->used && size <= reader->message_size_max);
    return size - reader->used;
}

/* Waits until deadline_ms (now_ms clock) for one message on c and prints it. */
static receive_outcome receive(connection *c, uint64_t deadline_ms) {
    delivery d = {.connection = c, .delivered = false};
    while (!d.delivered) {
        uint64_t now = now_ms();
        if (now >= deadline_ms) return receive_timeout;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int ready = poll(&p, 1, (int)(deadline_ms - now));
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) fail("poll: %s", strerror(errno));
        if (ready == 0) return receive_timeout;
        uint32_t space_size = 0;
        uint8_t *space = tw_frame_reader_space(&c->reader, &space_size);
        uint32_t wanted = bytes_needed(&c->reader);
        TW_ASSERT(wanted <= space_size);
        ssize_t count = recv(c->fd, space, wanted, MSG_DONTWAIT);
        if (count < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (count == 0 || (count < 0 && errno == ECONNRESET)) return receive_closed;
        if (count < 0) fail("%s: recv: %s", c->name, strerror(errno));
        tw_proto_error error = tw_frame_reader_commit(&c->reader, (uint32_t)count, on_message, &d);
        if (error != tw_proto_ok) {
            fail("%s: the server sent a malformed message: %s", c->name,
                 tw_proto_error_name(error));
        }
    }
    return receive_message;
}

/* ---- commands --------------------------------------------------------------------------- */

static void need_words(uint32_t count, uint32_t low, uint32_t high, const char *form) {
    if (count < low || count > high) fail("usage: %s", form);
}

static void command_connect(uint32_t count) {
    need_words(count, 3, 5, "connect NAME CLIENT_ID [release R]");
    const char *name = state.words[1];
    if (strlen(name) >= TWIN_RAW_NAME_SIZE) {
        fail("connection names take at most %u characters, not '%s'", TWIN_RAW_NAME_SIZE - 1, name);
    }
    tw_u128 client = word_u128(state.words[2], "CLIENT_ID");
    uint32_t release = TWIN_RAW_RELEASE_DEFAULT;
    if (count > 3) {
        if (count != 5 || strcmp(state.words[3], "release") != 0) {
            fail("usage: connect NAME CLIENT_ID [release R]");
        }
        release = (uint32_t)word_u64(state.words[4], UINT32_MAX, "release");
    }
    connection *c = find_connection(name);
    if (c != NULL && c->fd >= 0) fail("connection '%s' is already open", name);
    if (c == NULL) {
        for (uint32_t i = 0; i < TWIN_RAW_CONNECTIONS_MAX && c == NULL; i++) {
            if (!state.connections[i].named) c = &state.connections[i];
        }
        if (c == NULL) fail("more than %u connections", TWIN_RAW_CONNECTIONS_MAX);
        c->reader_buffer = malloc(TW_MESSAGE_SIZE_MAX);
        c->sent = malloc(TW_MESSAGE_SIZE_MAX);
        if (c->reader_buffer == NULL || c->sent == NULL) fail("out of memory");
        snprintf(c->name, sizeof(c->name), "%s", name);
        c->named = true;
    }
    c->fd = dial(state.timeout_ms);
    c->client = client;
    c->session = 0;
    c->request_next = 1;
    c->release = release;
    c->sent_size = 0;
    tw_frame_reader_init(&c->reader, c->reader_buffer, TW_MESSAGE_SIZE_MAX, state.cluster);
}

static void command_register(uint32_t count) {
    need_words(count, 2, 2, "register NAME");
    connection *c = open_connection(state.words[1]);
    tw_header header = header_for(c, tw_command_register, tw_operation_none, 0);
    header.session = 0;
    header.request = 0;
    send_message(c, &header, NULL, true, false);
    c->request_next = 1; /* a new session numbers its requests from 1 */
}

/* echo NAME TEXT...: the body is the rest of the line from TEXT on, spaces and all. */
static void command_echo(uint32_t count, const char *line) {
    need_words(count, 2, TWIN_RAW_WORDS_MAX, "echo NAME TEXT...");
    connection *c = open_connection(state.words[1]);
    const char *text = count > 2 ? line + state.word_offsets[2] : "";
    size_t size = strlen(text);
    if (size > sizeof(state.body)) fail("echo: %zu bytes do not fit in a message", size);
    memcpy(state.body, text, size);
    send_request(c, tw_operation_echo, (uint32_t)size);
}

static void command_create_accounts(uint32_t count) {
    need_words(count, 2, TWIN_RAW_WORDS_MAX, "create_accounts NAME ID:LEDGER:CODE[:FLAGS] ...");
    connection *c = open_connection(state.words[1]);
    uint32_t events = count - 2;
    if (events > events_room(tw_operation_create_accounts)) fail("too many accounts for a message");
    for (uint32_t i = 0; i < events; i++) {
        tw_account account = parse_account(state.words[2 + i]);
        memcpy(state.body + (size_t)i * sizeof(account), &account, sizeof(account));
    }
    send_request(c, tw_operation_create_accounts, events * (uint32_t)sizeof(tw_account));
}

static void command_create_transfers(uint32_t count) {
    need_words(count, 2, TWIN_RAW_WORDS_MAX,
               "create_transfers NAME ID:DEBIT:CREDIT:AMOUNT:LEDGER:CODE[:FLAGS] ...");
    connection *c = open_connection(state.words[1]);
    uint32_t events = count - 2;
    if (events > events_room(tw_operation_create_transfers)) fail("too many transfers for a message");
    for (uint32_t i = 0; i < events; i++) {
        tw_transfer transfer = parse_transfer(state.words[2 + i]);
        memcpy(state.body + (size_t)i * sizeof(transfer), &transfer, sizeof(transfer));
    }
    send_request(c, tw_operation_create_transfers, events * (uint32_t)sizeof(tw_transfer));
}

static void command_lookup(uint32_t count, tw_operation operation) {
    need_words(count, 2, TWIN_RAW_WORDS_MAX,
               operation == tw_operation_lookup_accounts ? "lookup_accounts NAME ID ..."
                                                         : "lookup_transfers NAME ID ...");
    connection *c = open_connection(state.words[1]);
    uint32_t events = count - 2;
    if (events > events_room(operation)) fail("too many ids for a message");
    for (uint32_t i = 0; i < events; i++) {
        tw_u128 id = word_u128(state.words[2 + i], "an ID");
        memcpy(state.body + (size_t)i * sizeof(id), &id, sizeof(id));
    }
    send_request(c, operation, events * (uint32_t)sizeof(tw_u128));
}

static void command_retry(uint32_t count) {
    need_words(count, 2, 2, "retry NAME");
    connection *c = open_connection(state.words[1]);
    if (c->sent_size == 0) fail("retry: '%s' has sent no request or register yet", c->name);
    send_all(c, c->sent, c->sent_size);
}

static void command_request_number(uint32_t count) {
    need_words(count, 3, 3, "request_number NAME N");
    connection *c = open_connection(state.words[1]);
    c->request_next = word_u64(state.words[2], UINT64_MAX, "request_number");
}

static void command_ping(uint32_t count) {
    need_words(count, 2, 2, "ping NAME");
    connection *c = open_connection(state.words[1]);
    tw_header header = header_for(c, tw_command_ping, tw_operation_none, 0);
    header.timestamp = tw_clock_monotonic_ns();
    send_message(c, &header, NULL, false, false);
}

/* An echo request sealed, then one body byte flipped: a bad body checksum. It does not use
 * up a request number, and retry does not resend it. */
static void command_corrupt(uint32_t count) {
    need_words(count, 2, 2, "corrupt NAME");
    connection *c = open_connection(state.words[1]);
    uint32_t body_size = (uint32_t)strlen(TWIN_RAW_CORRUPT_BODY);
    memcpy(state.body, TWIN_RAW_CORRUPT_BODY, body_size);
    tw_header header = header_for(c, tw_command_request, tw_operation_echo, body_size);
    header.request = c->request_next;
    send_message(c, &header, state.body, false, true);
}

static void command_expect(uint32_t count) {
    need_words(count, 2, 2, "expect NAME");
    connection *c = open_connection(state.words[1]);
    switch (receive(c, now_ms() + state.timeout_ms)) {
    case receive_message: return;
    case receive_closed:
        connection_close(c);
        fail("%s: closed by the server while a message was expected", c->name);
    case receive_timeout: fail("%s: no message within %" PRIu32 " ms", c->name, state.timeout_ms);
    }
}

static void command_expect_closed(uint32_t count) {
    need_words(count, 2, 2, "expect_closed NAME");
    connection *c = open_connection(state.words[1]);
    switch (receive(c, now_ms() + state.timeout_ms)) {
    case receive_message: fail("%s: a message came (above) where a close was expected", c->name);
    case receive_closed:
        connection_close(c);
        printf("%s closed by server\n", c->name);
        return;
    case receive_timeout:
        fail("%s: still open after %" PRIu32 " ms (a close was expected)", c->name,
             state.timeout_ms);
    }
}

static void command_expect_nothing(uint32_t count) {
    need_words(count, 3, 3, "expect_nothing NAME MS");
    connection *c = open_connection(state.words[1]);
    uint64_t wait_ms = word_u64(state.words[2], TWIN_RAW_TIMEOUT_MS_MAX, "MS");
    switch (receive(c, now_ms() + wait_ms)) {
    case receive_message: fail("%s: a message came (above) where nothing was expected", c->name);
    case receive_closed:
        connection_close(c);
        fail("%s: closed by the server where nothing was expected", c->name);
    case receive_timeout:
        if (c->reader.used != 0) {
            fail("%s: %" PRIu32 " bytes of a message came where nothing was expected", c->name,
                 c->reader.used);
        }
        return;
    }
}

static void command_close(uint32_t count) {
    need_words(count, 2, 2, "close NAME");
    connection_close(open_connection(state.words[1]));
}

static void command_sleep(uint32_t count) {
    need_words(count, 2, 2, "sleep MS");
    uint64_t sleep_ms = word_u64(state.words[1], TWIN_RAW_SLEEP_MS_MAX, "sleep");
    struct timespec left = {.tv_sec = (time_t)(sleep_ms / 1000u),
                            .tv_nsec = (long)(sleep_ms % 1000u) * (long)TWIN_RAW_NS_PER_MS};
    while (nanosleep(&left, &left) != 0) {
        if (errno != EINTR) fail("nanosleep: %s", strerror(errno));
    }
}

/* Splits line (changed in place) into state.words; returns how many. */
static uint32_t split_words(char *line) {
    uint32_t count = 0;
    char *c = line;
    for (;;) {
        while (*c == ' ' || *c == '\t') c++;
        if (*c == '\0') return count;
        if (count == TWIN_RAW_WORDS_MAX) fail("more than %zu words on a line", (size_t)TWIN_RAW_WORDS_MAX);
        state.words[count] = c;
        state.word_offsets[count] = (size_t)(c - line);
        count++;
        while (*c != '\0' && *c != ' ' && *c != '\t') c++;
        if (*c == '\0') return count;
        *c++ = '\0';
    }
}

static void run_line(const char *line, char *words_line) {
    uint32_t count = split_words(words_line);
    TW_ASSERT(count > 0);
    const char *command = state.words[0];
    if (strcmp(command, "connect") == 0) command_connect(count);
    else if (strcmp(command, "register") == 0) command_register(count);
    else if (strcmp(command, "echo") == 0) command_echo(count, line);
    else if (strcmp(command, "create_accounts") == 0) command_create_accounts(count);
    else if (strcmp(command, "create_transfers") == 0) command_create_transfers(count);
    else if (strcmp(command, "lookup_accounts") == 0) command_lookup(count, tw_operation_lookup_accounts);
    else if (strcmp(command, "lookup_transfers") == 0) command_lookup(count, tw_operation_lookup_transfers);
    else if (strcmp(command, "retry") == 0) command_retry(count);
    else if (strcmp(command, "request_number") == 0) command_request_number(count);
    else if (strcmp(command, "ping") == 0) command_ping(count);
    else if (strcmp(command, "corrupt") == 0) command_corrupt(count);
    else if (strcmp(command, "expect") == 0) command_expect(count);
    else if (strcmp(command, "expect_closed") == 0) command_expect_closed(count);
    else if (strcmp(command, "expect_nothing") == 0) command_expect_nothing(count);
    else if (strcmp(command, "close") == 0) command_close(count);
    else if (strcmp(command, "sleep") == 0) command_sleep(count);
    else fail("unknown command '%s' (twin-raw --help lists them)", command);
}

/* ---- main ------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    state.timeout_ms = TWIN_RAW_TIMEOUT_MS_DEFAULT;
    const char *address_text = NULL;
    for (int i = 1; i < argc; i++) {
        const char *argument = argv[i];
        if (strcmp(argument, "--help") == 0 || strcmp(argument, "-h") == 0) {
            printf("%s\n%s", usage, help);
            return 0;
        }
        if (strcmp(argument, "--cluster") == 0 || strcmp(argument, "--timeout-ms") == 0) {
            if (i + 1 >= argc) return usage_error("%s needs a value", argument);
            const char *value = argv[++i];
            if (strcmp(argument, "--cluster") == 0) {
                if (!tw_cli_parse_u128(value, &state.cluster)) {
                    return usage_error("--cluster takes a decimal integer 0..2^128-1, not '%s'",
                                       value);
                }
            } else {
                uint64_t timeout_ms = 0;
                if (!tw_cli_parse_u64(value, TWIN_RAW_TIMEOUT_MS_MAX, &timeout_ms) || timeout_ms == 0) {
                    return usage_error("--timeout-ms takes an integer 1..3600000, not '%s'", value);
                }
                state.timeout_ms = (uint32_t)timeout_ms;
            }
            continue;
        }
        if (strncmp(argument, "-", 1) == 0) return usage_error("unknown flag '%s'", argument);
        if (address_text != NULL) return usage_error("one ADDR only: '%s' is one too many", argument);
        address_text = argument;
    }
    if (address_text == NULL) return usage_error("%s", "the server's ADDR is missing");
    if (tw_address_parse(address_text, &state.address) != tw_loop_ok) {
        return usage_error("ADDR takes IPV4:PORT or [IPV6]:PORT (e.g. 127.0.0.1:3000), not '%s'",
                           address_text);
    }
    for (uint32_t i = 0; i < TWIN_RAW_CONNECTIONS_MAX; i++) state.connections[i].fd = -1;
    setvbuf(stdout, NULL, _IOLBF, 0);

    char *line = NULL;
    size_t line_capacity = 0;
    char *words_line = NULL;
    size_t words_capacity = 0;
    ssize_t length;
    while ((length = getline(&line, &line_capacity, stdin)) >= 0) {
        state.line_number++;
        while (length > 0 && (line[length - 1] == '\n' || line[length - 1] == '\r')) {
            line[--length] = '\0';
        }
        const char *first = line;
        while (*first == ' ' || *first == '\t') first++;
        if (*first == '\0' || *first == '#') continue;
        if ((size_t)length + 1 > words_capacity) {
            free(words_line);
            words_capacity = (size_t)length + 1;
            words_line = malloc(words_capacity);
            if (words_line == NULL) fail("out of memory");
        }
        memcpy(words_line, line, (size_t)length + 1);
        printf("> %s\n", line);
        run_line(line, words_line);
    }
    for (uint32_t i = 0; i < TWIN_RAW_CONNECTIONS_MAX; i++) {
        connection *c = &state.connections[i];
        if (c->fd >= 0) connection_close(c);
        free(c->reader_buffer);
        free(c->sent);
    }
    free(words_line);
    free(line);
    return 0;
}
