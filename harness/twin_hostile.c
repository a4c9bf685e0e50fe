/* twin-hostile: badly behaved peers of twin-server, for the robustness tests.
 *
 *   twin-hostile ADDR --attack KIND [--connections N] [--duration-s T] [--interval-ms N]
 *                [--seed S] [--message-size-max BYTES] [--cluster N]
 *
 * Keeps N connections to ADDR busy with one kind of attack for T seconds, then prints one
 * line of counts on stdout and exits 0 (1 when not one connect succeeded: the server is
 * gone; 2 for a bad flag). A connection the server closes is opened again after
 * --interval-ms. The kinds:
 * - garbage:   random bytes (1..TWIN_HOSTILE_GARBAGE_BYTES_MAX per send, every interval);
 * - huge:      a header with a valid checksum announcing a big body, four variants in turn
 *              per connection: size = message-size-max with all of the body but its last
 *              byte sent, then held open (the server must buffer it, and keep waiting);
 *              size = message-size-max + 1; size = TW_MESSAGE_SIZE_MAX + 1; size =
 *              UINT32_MAX (each of the last three must be refused: the server closes);
 * - slowloris: a valid register message, one byte per interval (default 1 s), held open;
 * - no-read:   registers, reads the register reply (its session), then sends echo requests
 *              of the largest body, one per interval (0: as fast as the socket takes them),
 *              and never reads again: the server's replies pile up unread;
 * - churn:     connects and drops, in turn: closes at once, sends 1..size-1 bytes of a
 *              register message then closes, or closes with an RST (SO_LINGER 0); again
 *              after the interval.
 *
 * Why C and not python3: the messages that must get past the header check (huge, slowloris,
 * no-read) need the protocol's XXH3-128 checksums, which tw_header_seal gives here directly
 * (Debian's python3 has no xxhash module without another package), and one poll loop over
 * hundreds of non-blocking sockets is as short in C.
 *
 * Output: "twin-hostile: attack=KIND connections=N connects=.. connect_failed=.. bytes_sent=..
 * closed_by_server=.. open_at_end=.. messages=.. refused_as_expected=.. held=.." where
 * messages counts requests (no-read), headers (huge) or cycles (churn), refused_as_expected
 * the over-size headers the server answered by closing, held the connections that were
 * still open at the end after doing their part (a whole near-max body but one byte, a
 * slowloris, a no-read peer). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <twin/assert.h>
#include <twin/loop.h>
#include <twin/pcg.h>
#include <twin/proto.h>

#include "cli_parse.h"

#define TWIN_HOSTILE_CONNECTIONS_MAX 1024u
#define TWIN_HOSTILE_CONNECTIONS_DEFAULT 8u
#define TWIN_HOSTILE_DURATION_S_MAX 3600u
#define TWIN_HOSTILE_DURATION_S_DEFAULT 10u
#define TWIN_HOSTILE_INTERVAL_MS_MAX 60000u
#define TWIN_HOSTILE_SLOWLORIS_INTERVAL_MS_DEFAULT 1000u
#define TWIN_HOSTILE_INTERVAL_MS_DEFAULT 10u
#define TWIN_HOSTILE_MESSAGE_SIZE_DEFAULT (256u * 1024u)
#define TWIN_HOSTILE_GARBAGE_BYTES_MAX 4096u
#define TWIN_HOSTILE_SEED_DEFAULT 1u
#define TWIN_HOSTILE_RELEASE 1u
/* The high half of every hostile client id: "hostile!", apart from other tools' ids. */
#define TWIN_HOSTILE_CLIENT_TAG 0x686f7374696c6521ull
/* The longest one poll waits. */
#define TWIN_HOSTILE_POLL_MS_MAX 100
#define TWIN_HOSTILE_HUGE_VARIANTS 4u
#define TWIN_HOSTILE_CHURN_VARIANTS 3u
#define NS_PER_MS 1000000ull

static const char usage[] =
    "usage: twin-hostile ADDR --attack garbage|huge|slowloris|no-read|churn [--connections N]\n"
    "                    [--duration-s T] [--interval-ms N] [--seed S]\n"
    "                    [--message-size-max BYTES] [--cluster N]\n";

typedef enum attack {
    attack_garbage,
    attack_huge,
    attack_slowloris,
    attack_no_read,
    attack_churn,
    attack_count,
} attack;

static const char *const attack_names[attack_count] = {"garbage", "huge", "slowloris", "no-read",
                                                       "churn"};

typedef struct options {
    tw_address address;
    attack kind;
    bool kind_given;
    uint32_t connections;
    uint32_t duration_s;
    uint32_t interval_ms;
    bool interval_given;
    uint64_t seed;
    uint32_t message_size_max;
    tw_u128 cluster;
} options;

typedef enum phase {
    phase_closed,     /* no socket; opens at next_ns */
    phase_connecting, /* non-blocking connect in progress */
    phase_sending,    /* out[sent..size) still to send, not before next_ns */
    phase_waiting,    /* all sent; reading until the server closes (or the end) */
    phase_register,   /* no-read: reading the register reply */
    phase_pumping,    /* no-read: sending requests, never reading */
} phase;

typedef struct slot {
    int fd;
    phase phase;
    uint64_t next_ns;
    tw_pcg32 rng;
    uint8_t *out; /* message_size_max bytes at least */
    uint32_t out_size;
    uint32_t out_sent;
    uint32_t step_bytes; /* send at most this many bytes per turn (slowloris: 1) */
    uint32_t variant;    /* huge, churn: which variant this connection runs */
    bool held;           /* did its part and stays open (counted at the end) */
    bool expect_close;   /* huge: an over-size header the server must refuse */
    tw_u128 client;
    uint64_t session;
    uint64_t request_next;
    uint8_t reply[TW_HEADER_SIZE];
    uint32_t reply_used;
} slot;

typedef struct stats {
    uint64_t connects;
    uint64_t connect_failed;
    uint64_t bytes_sent;
    uint64_t closed_by_server;
    uint64_t messages;
    uint64_t refused_as_expected;
} stats;

static volatile sig_atomic_t stop_requested;

static void on_signal(int signal_number) {
    (void)signal_number;
    stop_requested = 1;
}

static uint64_t monotonic_ns(void) {
    struct timespec now;
    int result = clock_gettime(CLOCK_MONOTONIC, &now);
    TW_ASSERT(result == 0);
    return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

/* ---- flags ----------------------------------------------------------------------------- */

static const tw_cli cli = {.program = "twin-hostile", .usage = usage};
#define usage_error(...) tw_cli_usage_error(&cli, __VA_ARGS__)
#define parse_u32(...) tw_cli_parse_u32(&cli, __VA_ARGS__)

/* Returns -1 to go on, else the exit code. */
static int parse_flags(int argc, char **argv, options *o) {
    *o = (options){
        .connections = TWIN_HOSTILE_CONNECTIONS_DEFAULT,
        .duration_s = TWIN_HOSTILE_DURATION_S_DEFAULT,
        .seed = TWIN_HOSTILE_SEED_DEFAULT,
        .message_size_max = TWIN_HOSTILE_MESSAGE_SIZE_DEFAULT,
    };
    int exit_code = 2;
    bool address_given = false;
    for (int i = 1; i < argc; i++) {
        const char *argument = argv[i];
        if (strcmp(argument, "--help") == 0 || strcmp(argument, "-h") == 0) {
            printf("%s", usage);
            return 0;
        }
        if (strncmp(argument, "--", 2) != 0) {
            if (address_given) return usage_error("unexpected argument '%s'", argument);
            if (tw_address_parse(argument, &o->address) != tw_loop_ok || o->address.port == 0) {
                return usage_error("ADDR takes IPV4:PORT or [IPV6]:PORT with a port 1..65535, "
                                   "not '%s'", argument);
            }
            address_given = true;
            continue;
        }
        if (i + 1 >= argc) return usage_error("%s needs a value (or is unknown)", argument);
        const char *value = argv[++i];
        if (strcmp(argument, "--attack") == 0) {
            bool found = false;
            for (uint32_t k = 0; k < attack_count; k++) {
                if (strcmp(value, attack_names[k]) == 0) {
                    o->kind = (attack)k;
                    found = true;
                }
            }
            if (!found) {
                return usage_error("--attack takes garbage, huge, slowloris, no-read or churn, "
                                   "not '%s'", value);
            }
            o->kind_given = true;
        } else if (strcmp(argument, "--connections") == 0) {
            if (!parse_u32(argument, value, 1, TWIN_HOSTILE_CONNECTIONS_MAX, &o->connections,
                           &exit_code)) {
                return exit_code;
            }
        } else if (strcmp(argument, "--duration-s") == 0) {
            if (!parse_u32(argument, value, 1, TWIN_HOSTILE_DURATION_S_MAX, &o->duration_s,
                           &exit_code)) {
                return exit_code;
            }
        } else if (strcmp(argument, "--interval-ms") == 0) {
            if (!parse_u32(argument, value, 0, TWIN_HOSTILE_INTERVAL_MS_MAX, &o->interval_ms,
                           &exit_code)) {
                return exit_code;
            }
            o->interval_given = true;
        } else if (strcmp(argument, "--seed") == 0) {
            if (!tw_cli_parse_u64(value, UINT64_MAX, &o->seed)) {
                return usage_error("--seed takes a decimal integer 0..2^64-1, not '%s'", value);
            }
        } else if (strcmp(argument, "--message-size-max") == 0) {
            if (!parse_u32(argument, value, TW_HEADER_SIZE + 80u, TW_MESSAGE_SIZE_MAX,
                           &o->message_size_max, &exit_code)) {
                return exit_code;
            }
        } else if (strcmp(argument, "--cluster") == 0) {
            if (!tw_cli_parse_u128(value, &o->cluster)) {
                return usage_error("--cluster takes a decimal integer 0..2^128-1, not '%s'", value);
            }
        } else {
            return usage_error("unknown flag '%s'", argument);
        }
    }
    if (!address_given) return usage_error("ADDR is required (the server's IP:PORT)");
    if (!o->kind_given) return usage_error("--attack is required");
    if (!o->interval_given) {
        o->interval_ms = o->kind == attack_slowloris ? TWIN_HOSTILE_SLOWLORIS_INTERVAL_MS_DEFAULT
                                                     : TWIN_HOSTILE_INTERVAL_MS_DEFAULT;
    }
    return -1;
}

/* ---- messages --------------------------------------------------------------------------- */

static tw_header header_new(const options *o, const slot *s, tw_command command,
                            tw_operation operation, uint32_t size) {
    tw_header header;
    memset(&header, 0, sizeof(header));
    header.cluster = o->cluster;
    header.client = s->client;
    header.session = s->session;
    header.size = size;
    header.release = TWIN_HOSTILE_RELEASE;
    header.command = (uint8_t)command;
    header.operation = (uint8_t)operation;
    return header;
}

/* out = a sealed register message of s's client. */
static void out_register(const options *o, slot *s) {
    tw_header header = header_new(o, s, tw_command_register, tw_operation_none, TW_HEADER_SIZE);
    tw_header_seal(&header, NULL);
    memcpy(s->out, &header, TW_HEADER_SIZE);
    s->out_size = TW_HEADER_SIZE;
    s->out_sent = 0;
}

/* out = the next echo request with the largest body, sealed. */
static void out_echo_request(const options *o, slot *s) {
    uint32_t body_size = o->message_size_max - TW_HEADER_SIZE;
    tw_header header = header_new(o, s, tw_command_request, tw_operation_echo,
                                  o->message_size_max);
    header.request = s->request_next++;
    uint8_t *body = s->out + TW_HEADER_SIZE;
    for (uint32_t i = 0; i < body_size; i++) body[i] = (uint8_t)(header.request + i);
    tw_header_seal(&header, body);
    memcpy(s->out, &header, TW_HEADER_SIZE);
    s->out_size = o->message_size_max;
    s->out_sent = 0;
}

/* out = a header announcing an echo request of size bytes (its checksum valid), and, for
 * the first variant, all of the body but its last byte. */
static void out_huge(const options *o, slot *s) {
    TW_ASSERT(s->variant < TWIN_HOSTILE_HUGE_VARIANTS);
    static const uint32_t above_protocol = TW_MESSAGE_SIZE_MAX + 1u;
    uint32_t sizes[TWIN_HOSTILE_HUGE_VARIANTS] = {o->message_size_max, o->message_size_max + 1u,
                                                  above_protocol, UINT32_MAX};
    tw_header header = header_new(o, s, tw_command_request, tw_operation_echo, sizes[s->variant]);
    header.session = 1;
    header.request = 1;
    tw_header_seal_header(&header);
    memcpy(s->out, &header, TW_HEADER_SIZE);
    s->out_size = TW_HEADER_SIZE;
    s->expect_close = s->variant != 0;
    if (s->variant == 0) {
        uint32_t body = o->message_size_max - TW_HEADER_SIZE - 1u;
        for (uint32_t i = 0; i < body; i++) s->out[TW_HEADER_SIZE + i] = (uint8_t)tw_pcg32_next(&s->rng);
        s->out_size += body;
    }
    s->out_sent = 0;
}

static void out_garbage(slot *s) {
    uint32_t size = 1 + tw_pcg32_bounded(&s->rng, TWIN_HOSTILE_GARBAGE_BYTES_MAX);
    for (uint32_t i = 0; i < size; i++) s->out[i] = (uint8_t)tw_pcg32_next(&s->rng);
    s->out_size = size;
    s->out_sent = 0;
}

/* ---- connections ------------------------------------------------------------------------- */

static void slot_close(const options *o, slot *s, uint64_t now_ns, bool reset) {
    TW_ASSERT(s->fd >= 0);
    if (reset) {
        struct linger linger = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
    }
    close(s->fd);
    s->fd = -1;
    s->phase = phase_closed;
    s->held = false;
    s->next_ns = now_ns + (uint64_t)o->interval_ms * NS_PER_MS;
}

static void slot_open(const options *o, slot *s, stats *st, uint64_t now_ns) {
    TW_ASSERT(s->fd < 0 && s->phase == phase_closed);
    struct sockaddr_in6 storage;
    memset(&storage, 0, sizeof(storage));
    socklen_t length;
    if (o->address.family == 4) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)(void *)&storage;
        v4->sin_family = AF_INET;
        v4->sin_port = htons(o->address.port);
        memcpy(&v4->sin_addr, o->address.ip, 4);
        length = sizeof(*v4);
    } else {
        storage.sin6_family = AF_INET6;
        storage.sin6_port = htons(o->address.port);
        memcpy(&storage.sin6_addr, o->address.ip, 16);
        length = sizeof(storage);
    }
    int fd = socket(storage.sin6_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        st->connect_failed++;
        s->next_ns = now_ns + (uint64_t)o->interval_ms * NS_PER_MS;
        return;
    }
    if (connect(fd, (struct sockaddr *)&storage, length) != 0 && errno != EINPROGRESS) {
        close(fd);
        st->connect_failed++;
        s->next_ns = now_ns + (uint64_t)o->interval_ms * NS_PER_MS;
        return;
    }
    s->fd = fd;
    s->phase = phase_connecting;
}

/* The connect finished: set up what this attack sends first. */
static void slot_connected(const options *o, slot *s, stats *st, uint64_t now_ns) {
    TW_ASSERT(s->phase == phase_connecting);
    st->connects++;
    s->client.low = tw_pcg32_next(&s->rng) | ((uint64_t)tw_pcg32_next(&s->rng) << 32) | 1u;
    s->client.high = TWIN_HOSTILE_CLIENT_TAG;
    s->session = 0;
    s->request_next = 1;
    s->reply_used = 0;
    s->step_bytes = UINT32_MAX;
    s->phase = phase_sending;
    s->next_ns = now_ns;
    switch (o->kind) {
    case attack_garbage:
        out_garbage(s);
        break;
    case attack_huge:
        out_huge(o, s);
        st->messages++;
        s->variant = (s->variant + 1) % TWIN_HOSTILE_HUGE_VARIANTS; /* the next connection's */
        break;
    case attack_slowloris:
        out_register(o, s);
        s->step_bytes = 1;
        s->held = true; /* its part is to stay open */
        break;
    case attack_no_read:
        out_register(o, s);
        break;
    case attack_churn:
        s->variant = tw_pcg32_bounded(&s->rng, TWIN_HOSTILE_CHURN_VARIANTS);
        st->messages++;
        if (s->variant == 0) {
            slot_close(o, s, now_ns, false);
        } else if (s->variant == 2) {
            slot_close(o, s, now_ns, true);
        } else {
            out_register(o, s);
            s->out_size = 1 + tw_pcg32_bounded(&s->rng, TW_HEADER_SIZE - 1);
        }
        break;
    default:
        TW_ASSERT(false);
    }
}

/* Everything in out was sent: what comes next. */
static void slot_sent(const options *o, slot *s, stats *st, uint64_t now_ns) {
    TW_ASSERT(s->out_sent == s->out_size);
    switch (o->kind) {
    case attack_garbage:
        out_garbage(s);
        s->next_ns = now_ns + (uint64_t)o->interval_ms * NS_PER_MS;
        break;
    case attack_huge:
        s->phase = phase_waiting;
        s->held = !s->expect_close;
        break;
    case attack_slowloris:
        s->phase = phase_waiting;
        s->held = true;
        break;
    case attack_no_read:
        if (s->session == 0) {
            s->phase = phase_register;
        } else {
            st->messages++;
            s->held = true;
            out_echo_request(o, s);
            s->next_ns = now_ns + (uint64_t)o->interval_ms * NS_PER_MS;
        }
        break;
    case attack_churn:
        slot_close(o, s, now_ns, false); /* a message cut short */
        break;
    default:
        TW_ASSERT(false);
    }
}

static void slot_send(const options *o, slot *s, stats *st, uint64_t now_ns) {
    TW_ASSERT(s->phase == phase_sending || s->phase == phase_pumping);
    while (s->fd >= 0 && (s->phase == phase_sending || s->phase == phase_pumping) &&
           s->next_ns <= now_ns) {
        TW_ASSERT(s->out_sent < s->out_size);
        uint32_t want = s->out_size - s->out_sent;
        if (want > s->step_bytes) want = s->step_bytes;
        ssize_t sent = send(s->fd, s->out + s->out_sent, want, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            st->closed_by_server++;
            slot_close(o, s, now_ns, false);
            return;
        }
        st->bytes_sent += (uint64_t)sent;
        s->out_sent += (uint32_t)sent;
        if (s->out_sent == s->out_size) {
            slot_sent(o, s, st, now_ns);
        } else if (s->step_bytes != UINT32_MAX) {
            s->next_ns = now_ns + (uint64_t)o->interval_ms * NS_PER_MS;
        }
    }
}

/* Readable: the register reply (no-read), or bytes to drop, or the server's close. */
static void slot_read(const options *o, slot *s, stats *st, uint64_t now_ns) {
    uint8_t scratch[4096];
    uint8_t *into = scratch;
    size_t room = sizeof(scratch);
    if (s->phase == phase_register) {
        into = s->reply + s->reply_used;
        room = TW_HEADER_SIZE - s->reply_used;
    }
    ssize_t received = recv(s->fd, into, room, 0);
    if (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (received <= 0) {
        st->closed_by_server++;
        if (s->expect_close) st->refused_as_expected++;
        slot_close(o, s, now_ns, false);
        return;
    }
    if (s->phase != phase_register) return;
    s->reply_used += (uint32_t)received;
    if (s->reply_used < TW_HEADER_SIZE) return;
    tw_header reply;
    memcpy(&reply, s->reply, TW_HEADER_SIZE);
    if (reply.command != tw_command_reply || reply.session == 0) {
        /* Evicted (too many clients) or refused: start over on a new connection. */
        slot_close(o, s, now_ns, false);
        return;
    }
    s->session = reply.session;
    s->phase = phase_pumping;
    out_echo_request(o, s);
    s->next_ns = now_ns;
}

int main(int argc, char **argv) {
    options o;
    int exit_code = parse_flags(argc, argv, &o);
    if (exit_code >= 0) return exit_code;

    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGINT, &action, NULL) != 0 || sigaction(SIGTERM, &action, NULL) != 0) {
        fprintf(stderr, "twin-hostile: cannot install the signal handlers: %s\n", strerror(errno));
        return 1;
    }

    /* Every slot's out holds the largest message; one block for all. */
    size_t out_bytes = (size_t)o.message_size_max + TWIN_HOSTILE_GARBAGE_BYTES_MAX;
    slot *slots = calloc(o.connections, sizeof(slot));
    uint8_t *outs = malloc(out_bytes * o.connections);
    struct pollfd *fds = calloc(o.connections, sizeof(struct pollfd));
    if (slots == NULL || outs == NULL || fds == NULL) {
        fprintf(stderr, "twin-hostile: no memory for %" PRIu32 " connections of %zu bytes\n",
                o.connections, out_bytes);
        return 1;
    }
    uint64_t start_ns = monotonic_ns();
    for (uint32_t i = 0; i < o.connections; i++) {
        slots[i] = (slot){.fd = -1, .phase = phase_closed, .next_ns = start_ns,
                          .out = outs + out_bytes * i, .variant = i % TWIN_HOSTILE_HUGE_VARIANTS};
        tw_pcg32_seed(&slots[i].rng, o.seed, i);
    }
    stats st = {0};
    uint64_t end_ns = start_ns + (uint64_t)o.duration_s * 1000000000ull;

    for (;;) {
        uint64_t now_ns = monotonic_ns();
        if (now_ns >= end_ns || stop_requested) break;
        uint64_t wake_ns = now_ns + (uint64_t)TWIN_HOSTILE_POLL_MS_MAX * NS_PER_MS;
        if (end_ns < wake_ns) wake_ns = end_ns;
        for (uint32_t i = 0; i < o.connections; i++) {
            slot *s = &slots[i];
            if (s->phase == phase_closed && s->next_ns <= now_ns) slot_open(&o, s, &st, now_ns);
            fds[i] = (struct pollfd){.fd = s->fd};
            switch (s->phase) {
            case phase_closed:
                fds[i].fd = -1;
                if (s->next_ns < wake_ns) wake_ns = s->next_ns;
                break;
            case phase_connecting:
                fds[i].events = POLLOUT;
                break;
            case phase_sending:
            case phase_pumping:
                /* Reading while sending notices a close; the no-read peer never reads. */
                if (s->phase == phase_sending) fds[i].events = POLLIN;
                if (s->next_ns <= now_ns) {
                    fds[i].events |= POLLOUT;
                } else if (s->next_ns < wake_ns) {
                    wake_ns = s->next_ns;
                }
                break;
            case phase_waiting:
            case phase_register:
                fds[i].events = POLLIN;
                break;
            }
        }
        int timeout_ms = (int)((wake_ns - now_ns + NS_PER_MS - 1) / NS_PER_MS);
        int ready = poll(fds, o.connections, timeout_ms);
        if (ready < 0) {
            TW_ASSERT(errno == EINTR);
            continue;
        }
        now_ns = monotonic_ns();
        for (uint32_t i = 0; i < o.connections; i++) {
            slot *s = &slots[i];
            short revents = fds[i].revents;
            if (s->fd < 0 || revents == 0) continue;
            if (s->phase == phase_connecting) {
                int error = 0;
                socklen_t length = sizeof(error);
                int result = getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &error, &length);
                TW_ASSERT(result == 0);
                if (error != 0) {
                    st.connect_failed++;
                    slot_close(&o, s, now_ns, false);
                    continue;
                }
                slot_connected(&o, s, &st, now_ns);
                if (s->fd >= 0 && s->phase == phase_sending) slot_send(&o, s, &st, now_ns);
                continue;
            }
            if (s->phase == phase_pumping) {
                if ((revents & (POLLERR | POLLHUP)) != 0) {
                    st.closed_by_server++;
                    slot_close(&o, s, now_ns, false);
                    continue;
                }
                if ((revents & POLLOUT) != 0) slot_send(&o, s, &st, now_ns);
                continue;
            }
            if ((revents & (POLLIN | POLLERR | POLLHUP)) != 0) slot_read(&o, s, &st, now_ns);
            if (s->fd >= 0 && s->phase == phase_sending && (revents & POLLOUT) != 0) {
                slot_send(&o, s, &st, now_ns);
            }
        }
    }

    uint64_t open_at_end = 0, held = 0;
    for (uint32_t i = 0; i < o.connections; i++) {
        if (slots[i].fd < 0) continue;
        open_at_end++;
        held += slots[i].held;
        close(slots[i].fd);
    }
    printf("twin-hostile: attack=%s connections=%" PRIu32 " connects=%" PRIu64
           " connect_failed=%" PRIu64 " bytes_sent=%" PRIu64 " closed_by_server=%" PRIu64
           " open_at_end=%" PRIu64 " messages=%" PRIu64 " refused_as_expected=%" PRIu64
           " held=%" PRIu64 "\n",
           attack_names[o.kind], o.connections, st.connects, st.connect_failed, st.bytes_sent,
           st.closed_by_server, open_at_end, st.messages, st.refused_as_expected, held);
    free(fds);
    free(outs);
    free(slots);
    return st.connects == 0 ? 1 : 0;
}
