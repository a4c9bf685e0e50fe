/* The server under network faults: exactly-once execution and robustness.
 *
 * A server thread runs a tw_server on its own loop; C client threads (sim 3, real 4), each
 * with its own loop, are minimal well-behaved clients: connect (a refused or timed-out
 * attempt is retried after a pause), register (request 0), then requests 1..R one at a
 * time, alternating create_accounts (1-3 accounts with ids unique to client, request and
 * index) and echo (a body patterned by client and request). Whenever a connection fails
 * (reset, EOF, a read or write error, a reply the client's frame reader rejects as
 * malformed, or no reply within the request timeout) the client closes it, pauses,
 * reconnects and sends the SAME in-flight message again: the same request number and the
 * same bytes (the register again if its reply never came).
 *
 * The oracle: every create_accounts reply is empty (a retry the server executed a second
 * time would say `exists`); every echo body comes back unchanged; each accepted reply
 * carries the in-flight request number (an older one is stale: ignored and counted); op
 * numbers and timestamps strictly increase per client; no eviction ever arrives. After
 * the clients finish, one more client looks up every account created, in batches of
 * tw_operation_events_max: each exists exactly once, with the ledger and code sent. After
 * the server stops: requests_executed == C*R + the lookups, registrations == C+1, no
 * session evicted, op == registrations + requests_executed, and with no bit flips in the
 * run nothing was malformed, at either end.
 *
 * Why no eviction is legitimate here. clients_max is above the client count, so there is
 * no too_many_clients; the client never skips a number, never changes a retry's bytes,
 * and registers again only before its register reply came. The one way a well-behaved
 * client could still be evicted is a register from an OLD connection reaching the server
 * after a request from a newer one (a register after a request is a protocol_violation).
 * The sim delivers each segment within its latency (at most SIM_LATENCY_MAX_NS, a
 * spike included) or, when a partition cuts it off, at the heal; a connection to the
 * server cannot be made before that heal either. The client abandons a connection only
 * after the request timeout, longer than that latency, and virtual time stands still while
 * any fiber can run, so the server has read everything an abandoned connection carried
 * before the first byte of the next one arrives. The real build (loopback, no faults)
 * uses a timeout of seconds for the same reason.
 *
 * A bounded run: a client gives up after CLIENT_CONNECT_ATTEMPTS_MAX connect attempts in a
 * row fail (refused or timed out), which only a network cut off for seconds could cause:
 * one sim partition lasts at most ~0.5 s, an attempt takes at least the reconnect pause,
 * and a refusal or a timeout by chance is at most 1 in 16 attempts. So every sim seed
 * finishes (none gave up in the sweeps), but a client that does give up is not claimed
 * exactly-once for its unfinished request: then only accepted <= executed <= accepted +
 * unfinished is checked. Connections that open but fail (reset, EOF, malformed, timeout)
 * are not a reason to give up: CLIENT_CONNECTION_FAILURES_MAX of them in a row for one
 * message fail the test, as a server that stopped answering (each of those faults is
 * rare, at most about 1 in 200 sends or 1 in 1000 segments, so a good run never comes
 * near it).
 *
 * The real build has no network faults: it checks the same oracle on real sockets and
 * threads, at a larger size. Counts are printed per run in the real build and for a single
 * sim seed (--seed); a sim sweep prints their totals at exit. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/ledger.h>
#include <twin/loop.h>
#include <twin/os.h>
#include <twin/proto.h>
#include <twin/server.h>
#include <twin/tcp.h>

#include "server_thread.h"
#include "twin_test.h"

#define MS_NS (1000u * 1000u)

/* Workload sizes. */
#define CLIENTS_SIM 3u
#define CLIENTS_REAL 4u
#define CLIENTS_MAX CLIENTS_REAL
#define REQUESTS_SIM 20u
#define REQUESTS_REAL 500u
#define REQUESTS_MAX REQUESTS_REAL
#define ACCOUNTS_PER_CREATE_MAX 3u
#define ACCOUNTS_MAX (CLIENTS_MAX * (REQUESTS_MAX / 2u + 1u) * ACCOUNTS_PER_CREATE_MAX)
#define ECHO_BODY_SIZE_MAX 1024u

/* The server. */
#define MESSAGE_SIZE_MAX 4096u
#define BODY_SIZE_MAX (MESSAGE_SIZE_MAX - TW_HEADER_SIZE)
#define SERVER_CLIENTS_MAX 16u
/* Far above what the clients can hold open (one each, plus old ones whose FIN a partition
 * holds back), so every connect is accepted at once: a connection left waiting in the
 * backlog could deliver an old register late (see "Why no eviction" above). */
#define SERVER_CONNECTIONS_MAX 64u
#define SERVER_ACCOUNTS_MAX 4096u
#define SERVER_TRANSFERS_MAX 1u
#define RELEASE 1u
#define CLUSTER_LOW 7u

/* The clients. */
#define CLIENT_TICK_NS (5u * MS_NS)            /* timeouts and pauses are checked this often */
#define CLIENT_RECONNECT_PAUSE_NS (10u * MS_NS) /* after a failed connection, before the next */
#define CLIENT_REQUEST_TIMEOUT_SIM_NS (300u * MS_NS)
#define CLIENT_REQUEST_TIMEOUT_REAL_NS (3000u * MS_NS)
#define CLIENT_CONNECT_ATTEMPTS_MAX 200u       /* failed connects in a row: give up */
#define CLIENT_CONNECTION_FAILURES_MAX 100u    /* failed connections for one message: a bug */
#define CLIENT_ID_HIGH 0x5e4f41u
#define LEDGER_BASE 700u
#define CODE_MODULUS 1000u
/* Scheduling points per request, roughly (measured: ~850 for a 3 x 20 sim run). */
#define STEPS_PER_REQUEST 13u

/* The sim's largest one-way latency: base < 1 ms, jitter <= base, a spike x100 (see
 * draw_faults and latency_ns in sim/io_sim.c). The request timeout must exceed it. */
#define SIM_LATENCY_MAX_NS (200u * MS_NS)

_Static_assert(CLIENT_REQUEST_TIMEOUT_SIM_NS > SIM_LATENCY_MAX_NS + CLIENT_TICK_NS,
               "an abandoned connection must have delivered everything before the next starts");
_Static_assert(SERVER_CLIENTS_MAX > CLIENTS_MAX + 1u, "no too_many_clients evictions");
_Static_assert(SERVER_ACCOUNTS_MAX >= ACCOUNTS_MAX, "every account created fits the ledger");
_Static_assert(ECHO_BODY_SIZE_MAX <= BODY_SIZE_MAX, "an echo body fits a message");
_Static_assert(ACCOUNTS_PER_CREATE_MAX * sizeof(tw_account) <= BODY_SIZE_MAX,
               "a create fits a message");
_Static_assert(ACCOUNTS_PER_CREATE_MAX <= 256u, "an account's index fits its id's low byte");

typedef struct test_config {
    uint32_t clients;
    uint32_t requests;
    uint64_t request_timeout_ns;
    bool print_runs;          /* the real build, or a single sim seed */
    bool corruption_possible; /* the sim runner's --net-corruption */
} test_config;

static test_config config;

static const tw_u128 cluster = {.low = CLUSTER_LOW, .high = 0};

/* ---- the workload ---------------------------------------------------------------------- */

static bool request_is_create(uint64_t request) { return request % 2u == 1u; }

static uint32_t create_count(uint32_t client, uint64_t request) {
    return 1u + (uint32_t)((client + request) % ACCOUNTS_PER_CREATE_MAX);
}

static tw_account account_of(uint32_t client, uint64_t request, uint32_t index) {
    return (tw_account){
        .id = {.low = (request << 8) | index, .high = client},
        .ledger = LEDGER_BASE + client,
        .code = (uint16_t)(1u + request % CODE_MODULUS),
    };
}

static uint32_t echo_size(uint32_t client, uint64_t request) {
    return 1u + (uint32_t)((client * 389u + request * 97u) % ECHO_BODY_SIZE_MAX);
}

static uint8_t echo_byte(uint32_t client, uint64_t request, uint32_t offset) {
    return (uint8_t)(client * 131u + request * 31u + offset * 7u + (offset >> 8));
}

/* ---- the clients ----------------------------------------------------------------------- */

typedef enum failure_kind {
    failure_refused,
    failure_connect_timed_out,
    failure_reset,
    failure_eof,
    failure_read_error,
    failure_write_error,
    failure_malformed,
    failure_timeout,
    failure_kind_count,
} failure_kind;

static const char *const failure_names[failure_kind_count] = {
    "refused", "connect_timed_out", "reset", "eof", "read_error", "write_error", "malformed",
    "timeout",
};

typedef struct client_counts {
    uint64_t connections;                    /* connects that succeeded */
    uint64_t reconnects;                     /* failed connections (connects included) */
    uint64_t failures[failure_kind_count];   /* the same, by kind */
    uint64_t retries;                        /* a message sent again on a new connection */
    uint64_t stale_replies;                  /* replies to an older request, ignored */
    uint64_t malformed[tw_proto_error_count]; /* replies the frame reader rejected */
    uint64_t gave_up;
} client_counts;

static void counts_add(client_counts *total, const client_counts *one) {
    total->connections += one->connections;
    total->reconnects += one->reconnects;
    for (uint32_t i = 0; i < failure_kind_count; i++) total->failures[i] += one->failures[i];
    total->retries += one->retries;
    total->stale_replies += one->stale_replies;
    for (uint32_t i = 0; i < tw_proto_error_count; i++) total->malformed[i] += one->malformed[i];
    total->gave_up += one->gave_up;
}

typedef enum client_role {
    role_worker, /* register, then create_accounts and echo, alternating */
    role_lookup, /* register, then look up every account the workers created */
} client_role;

typedef enum client_phase {
    phase_paused,     /* waiting for reconnect_at_ns (also the start) */
    phase_connecting, /* c_connect pending */
    phase_open,       /* connected: a read pending, the in-flight message sent */
    phase_closing,    /* the socket is closing: waiting for every callback */
    phase_done,       /* finished, or gave up */
} client_phase;

/* A whole message as it goes on the wire: the header, then the body. */
typedef struct message {
    tw_header header;
    uint8_t body[BODY_SIZE_MAX];
} message;

_Static_assert(sizeof(message) == MESSAGE_SIZE_MAX, "the body follows the header directly");

typedef struct client {
    uint32_t number; /* 1..clients for workers; clients + 1 for the lookup client */
    client_role role;
    tw_u128 id;
    const tw_address *address;
    uint64_t requests; /* the last request number */
    tw_loop *loop;
    tw_tcp tcp;
    client_phase phase;
    uint32_t pending; /* callbacks outstanding for the current socket */
    bool finishing;   /* the last reply came: closing for good */
    bool gave_up;
    bool write_busy;  /* w_out is queued */
    bool send_wanted; /* send the in-flight message once w_out is free */
    bool registered;
    uint64_t session;
    uint64_t inflight;      /* the in-flight request number (0: the register) */
    uint64_t inflight_sends; /* times the in-flight message was sent */
    uint64_t accepted_last; /* the last request whose reply was accepted (when registered) */
    uint64_t op_last;
    uint64_t timestamp_last;
    uint64_t deadline_ns;     /* phase_open: no reply by then fails the connection */
    uint64_t reconnect_at_ns; /* phase_paused */
    uint32_t connect_failures;    /* in a row, since the last connect that succeeded */
    uint32_t connection_failures; /* connections that failed since the last accepted reply */
    uint32_t lookup_batch; /* lookup client: accounts per request */
    message out;           /* the in-flight message, unchanged until its reply is accepted */
    uint8_t receive_buffer[MESSAGE_SIZE_MAX];
    tw_frame_reader reader;
    tw_completion c_connect;
    tw_completion c_read;
    tw_completion c_close;
    tw_completion c_tick;
    tw_write_queue queue;
    tw_write_request w_out;
    client_counts counts;
} client;

static tw_test_server the_server;
static client clients[CLIENTS_MAX];
static client lookup_client;
static tw_account expected[ACCOUNTS_MAX]; /* what the lookup client must find */
static uint32_t expected_count;
static char failure_message[256]; /* tw_panic keeps the pointer: a static buffer */

/* A formatted message for TW_ASSERT_MSG, which evaluates it only when the check fails. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static const char *failure_text(const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(failure_message, sizeof(failure_message), format, args);
    va_end(args);
    return failure_message;
}

static void client_connect(client *cl);
static void client_read(client *cl);

/* Fills cl->out with request number `request` (0: the register). */
static void message_build(client *cl, uint64_t request) {
    tw_header *h = &cl->out.header;
    *h = (tw_header){
        .cluster = cluster,
        .client = cl->id,
        .session = cl->session,
        .request = request,
        .size = TW_HEADER_SIZE,
        .release = RELEASE,
        .command = request == 0 ? tw_command_register : tw_command_request,
        .operation = tw_operation_none,
    };
    if (request == 0) {
        h->session = 0;
    } else if (cl->role == role_lookup) {
        uint32_t first = (uint32_t)(request - 1) * cl->lookup_batch;
        TW_ASSERT(first < expected_count);
        uint32_t count = expected_count - first < cl->lookup_batch ? expected_count - first
                                                                     : cl->lookup_batch;
        for (uint32_t i = 0; i < count; i++) {
            memcpy(cl->out.body + i * sizeof(tw_u128), &expected[first + i].id,
                   sizeof(tw_u128));
        }
        h->operation = tw_operation_lookup_accounts;
        h->size = TW_HEADER_SIZE + count * (uint32_t)sizeof(tw_u128);
    } else if (request_is_create(request)) {
        uint32_t count = create_count(cl->number, request);
        for (uint32_t i = 0; i < count; i++) {
            tw_account account = account_of(cl->number, request, i);
            memcpy(cl->out.body + i * sizeof(tw_account), &account, sizeof(account));
        }
        h->operation = tw_operation_create_accounts;
        h->size = TW_HEADER_SIZE + count * (uint32_t)sizeof(tw_account);
    } else {
        uint32_t size = echo_size(cl->number, request);
        for (uint32_t i = 0; i < size; i++) cl->out.body[i] = echo_byte(cl->number, request, i);
        h->operation = tw_operation_echo;
        h->size = TW_HEADER_SIZE + size;
    }
    TW_ASSERT(h->size <= MESSAGE_SIZE_MAX);
    tw_header_seal(h, cl->out.body);
    cl->inflight = request;
    cl->inflight_sends = 0;
}

static tw_action client_wrote_cb(void *userdata, tw_loop *loop, tw_completion *c,
                                 tw_result result);

/* Sends the in-flight message on the open connection (after the write in progress). */
static void client_send(client *cl) {
    TW_ASSERT(cl->phase == phase_open);
    cl->deadline_ns = tw_loop_now_ns(cl->loop) + config.request_timeout_ns;
    if (cl->write_busy) {
        cl->send_wanted = true;
        return;
    }
    if (cl->inflight_sends > 0) cl->counts.retries++;
    cl->inflight_sends++;
    cl->write_busy = true;
    cl->pending++;
    tw_tcp_queue_write(cl->loop, &cl->queue, &cl->w_out, cl->tcp, &cl->out, cl->out.header.size, cl,
                       client_wrote_cb);
}

static void client_settled(client *cl) {
    if (cl->phase != phase_closing || cl->pending != 0) return;
    if (cl->finishing) {
        cl->phase = phase_done;
    } else {
        cl->phase = phase_paused;
        cl->reconnect_at_ns = tw_loop_now_ns(cl->loop) + CLIENT_RECONNECT_PAUSE_NS;
    }
}

static tw_action client_closed_cb(void *userdata, tw_loop *loop, tw_completion *c,
                                  tw_result result) {
    (void)loop;
    (void)c;
    client *cl = userdata;
    TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
    TW_ASSERT(cl->phase == phase_closing && cl->pending > 0);
    cl->pending--;
    client_settled(cl);
    return tw_disarm;
}

/* Closes the socket; the pending read and write complete (canceled) before the next try. */
static void client_close(client *cl) {
    TW_ASSERT(cl->phase == phase_open || cl->phase == phase_connecting);
    cl->phase = phase_closing;
    cl->send_wanted = false;
    TW_ASSERT(tw_write_queue_take_waiting(&cl->queue) == NULL); /* one message at a time */
    cl->pending++;
    tw_tcp_close(cl->loop, &cl->c_close, cl->tcp, cl, client_closed_cb);
}

static void client_fail(client *cl, failure_kind kind) {
    cl->counts.failures[kind]++;
    cl->counts.reconnects++;
    if (kind == failure_refused || kind == failure_connect_timed_out) {
        cl->connect_failures++;
    } else {
        cl->connection_failures++;
        TW_ASSERT_MSG(cl->connection_failures <= CLIENT_CONNECTION_FAILURES_MAX,
                      failure_text("client %u: request %" PRIu64 " failed on %u connections in a "
                                   "row (the last: %s): the server does not answer it",
                                   cl->number, cl->inflight, cl->connection_failures,
                                   failure_names[kind]));
    }
    client_close(cl);
}

static void client_finish(client *cl) {
    cl->finishing = true;
    client_close(cl);
}

/* The reply to the in-flight message is good: the next message, or the end. */
static void client_accept(client *cl, const tw_header *reply) {
    cl->connection_failures = 0;
    cl->op_last = reply->op;
    cl->timestamp_last = reply->timestamp;
    if (cl->inflight == 0) {
        cl->registered = true;
        cl->session = reply->session;
        cl->accepted_last = 0;
    } else {
        cl->accepted_last = cl->inflight;
    }
    if (cl->accepted_last == cl->requests) {
        client_finish(cl);
        return;
    }
    message_build(cl, cl->accepted_last + 1);
    client_send(cl);
}

static void check_create_reply(client *cl, const tw_header *reply, const uint8_t *body) {
    uint32_t body_size = reply->size - TW_HEADER_SIZE;
    tw_create_result first = {0}; /* for the message: results name the failed events */
    if (body_size >= sizeof(first)) memcpy(&first, body, sizeof(first));
    tw_create_account_result first_result = (tw_create_account_result)first.result;
    TW_ASSERT_MSG(body_size == 0,
                  failure_text("client %u request %" PRIu64 ": create_accounts reply has %u "
                               "results, the first event %u: %s (executed more than once?)",
                               cl->number, reply->request, body_size / (uint32_t)sizeof(first),
                               first.index, tw_create_account_result_name(first_result)));
}

static void check_echo_reply(client *cl, const tw_header *reply, const uint8_t *body) {
    uint32_t sent = cl->out.header.size - TW_HEADER_SIZE;
    uint32_t got = reply->size - TW_HEADER_SIZE;
    TW_ASSERT_MSG(got == sent, failure_text("client %u request %" PRIu64 ": echo sent %u bytes, "
                                            "got %u back",
                                            cl->number, reply->request, sent, got));
    TW_ASSERT_MSG(memcmp(body, cl->out.body, sent) == 0, "an echo came back changed");
}

static void check_lookup_reply(client *cl, const tw_header *reply, const uint8_t *body) {
    uint32_t asked = (cl->out.header.size - TW_HEADER_SIZE) / (uint32_t)sizeof(tw_u128);
    uint32_t got = (reply->size - TW_HEADER_SIZE) / (uint32_t)sizeof(tw_account);
    TW_ASSERT((reply->size - TW_HEADER_SIZE) % sizeof(tw_account) == 0);
    TW_ASSERT_MSG(got == asked, failure_text("lookup %" PRIu64 ": asked for %u accounts, %u exist",
                                             reply->request, asked, got));
    uint32_t first = (uint32_t)(reply->request - 1) * cl->lookup_batch;
    for (uint32_t i = 0; i < got; i++) {
        tw_account account;
        memcpy(&account, body + i * sizeof(tw_account), sizeof(account));
        const tw_account *want = &expected[first + i];
        TW_ASSERT_MSG(account.id.low == want->id.low && account.id.high == want->id.high,
                      failure_text("lookup %" PRIu64 ": result %u is account %016" PRIx64
                                   "%016" PRIx64 ", asked for %016" PRIx64 "%016" PRIx64,
                                   reply->request, i, account.id.high, account.id.low,
                                   want->id.high, want->id.low));
        TW_ASSERT_MSG(account.ledger == want->ledger && account.code == want->code &&
                          account.flags == 0,
                      "an account exists with another ledger, code or flags than it was sent");
        TW_ASSERT_MSG(account.debits_posted == 0 && account.credits_posted == 0,
                      "an account has postings, though no transfer was ever sent");
        TW_ASSERT_MSG(account.timestamp != 0, "an account has no timestamp");
    }
}

/* One whole message from the server on the current connection. */
static void client_on_message(void *context, const tw_header *reply, const uint8_t *body) {
    client *cl = context;
    if (cl->phase != phase_open) return; /* finished or failed earlier in this read */
    TW_ASSERT_MSG(reply->client.low == cl->id.low && reply->client.high == cl->id.high,
                  "a message for another client");
    TW_ASSERT_MSG(reply->command != tw_command_eviction,
                  failure_text("client %u: evicted (%s, session %" PRIu64 ") with request %" PRIu64
                               " in flight: no eviction is legitimate in this workload",
                               cl->number,
                               tw_eviction_reason_name((tw_eviction_reason)reply->eviction_reason),
                               reply->session, cl->inflight));
    TW_ASSERT_MSG(reply->command == tw_command_reply,
                  failure_text("client %u: the server sent a %s", cl->number,
                               tw_command_name((tw_command)reply->command)));
    if (reply->request < cl->inflight) {
        cl->counts.stale_replies++;
        return;
    }
    TW_ASSERT_MSG(reply->request == cl->inflight,
                  failure_text("client %u: a reply to request %" PRIu64 ", which was never sent "
                               "(in flight: %" PRIu64 ")",
                               cl->number, reply->request, cl->inflight));
    TW_ASSERT_MSG(reply->op > cl->op_last && reply->timestamp > cl->timestamp_last,
                  failure_text("client %u request %" PRIu64 ": op %" PRIu64 " timestamp %" PRIu64
                               " after op %" PRIu64 " timestamp %" PRIu64
                               ": not strictly increasing",
                               cl->number, reply->request, reply->op, reply->timestamp,
                               cl->op_last, cl->timestamp_last));
    TW_ASSERT(reply->release == RELEASE);
    if (cl->inflight == 0) {
        TW_ASSERT_MSG(reply->operation == tw_operation_none && reply->size == TW_HEADER_SIZE,
                      "a register reply has an operation or a body");
        TW_ASSERT_MSG(reply->session == reply->op, "a register reply's session is not its op");
        TW_ASSERT(reply->batch_size_max == MESSAGE_SIZE_MAX - TW_HEADER_SIZE);
    } else {
        TW_ASSERT_MSG(reply->session == cl->session, "a reply names another session");
        TW_ASSERT_MSG(reply->operation == cl->out.header.operation,
                      "a reply names another operation than its request");
        switch ((tw_operation)reply->operation) {
        case tw_operation_create_accounts: check_create_reply(cl, reply, body); break;
        case tw_operation_echo: check_echo_reply(cl, reply, body); break;
        case tw_operation_lookup_accounts: check_lookup_reply(cl, reply, body); break;
        case tw_operation_none:
        case tw_operation_create_transfers:
        case tw_operation_lookup_transfers:
            TW_ASSERT_MSG(false, "a reply to an operation never sent");
        }
    }
    client_accept(cl, reply);
}

static tw_action client_read_cb(void *userdata, tw_loop *loop, tw_completion *c,
                                tw_result result) {
    (void)loop;
    (void)c;
    client *cl = userdata;
    TW_ASSERT(cl->pending > 0);
    cl->pending--;
    if (cl->phase != phase_open) {
        client_settled(cl);
        return tw_disarm;
    }
    if (result.error != tw_loop_ok) {
        if (result.error == tw_loop_eof) {
            client_fail(cl, failure_eof);
        } else if (result.error == tw_loop_reset) {
            client_fail(cl, failure_reset);
        } else {
            TW_ASSERT_MSG(result.error == tw_loop_not_connected ||
                              result.error == tw_loop_broken_pipe,
                          tw_loop_error_name(result.error));
            client_fail(cl, failure_read_error);
        }
        return tw_disarm;
    }
    tw_proto_error error =
        tw_frame_reader_commit(&cl->reader, (uint32_t)result.value, client_on_message, cl);
    if (error != tw_proto_ok && cl->phase == phase_open) {
        cl->counts.malformed[error]++;
        client_fail(cl, failure_malformed);
        return tw_disarm;
    }
    if (cl->phase == phase_open) client_read(cl);
    return tw_disarm;
}

static void client_read(client *cl) {
    uint32_t room = 0;
    uint8_t *space = tw_frame_reader_space(&cl->reader, &room);
    TW_ASSERT(room > 0);
    cl->pending++;
    tw_tcp_read(cl->loop, &cl->c_read, cl->tcp, space, room, cl, client_read_cb);
}

static tw_action client_wrote_cb(void *userdata, tw_loop *loop, tw_completion *c,
                                 tw_result result) {
    (void)loop;
    (void)c;
    client *cl = userdata;
    TW_ASSERT(cl->pending > 0 && cl->write_busy);
    cl->pending--;
    cl->write_busy = false;
    if (cl->phase != phase_open) {
        client_settled(cl);
        return tw_disarm;
    }
    if (result.error != tw_loop_ok) {
        TW_ASSERT_MSG(result.error == tw_loop_reset || result.error == tw_loop_broken_pipe ||
                          result.error == tw_loop_not_connected,
                      tw_loop_error_name(result.error));
        client_fail(cl, result.error == tw_loop_reset ? failure_reset : failure_write_error);
        return tw_disarm;
    }
    if (cl->send_wanted) {
        cl->send_wanted = false;
        client_send(cl);
    }
    return tw_disarm;
}

static tw_action client_connected_cb(void *userdata, tw_loop *loop, tw_completion *c,
                                     tw_result result) {
    (void)loop;
    (void)c;
    client *cl = userdata;
    TW_ASSERT(cl->phase == phase_connecting && cl->pending == 1);
    cl->pending--;
    if (result.error != tw_loop_ok) {
        TW_ASSERT_MSG(result.error == tw_loop_refused || result.error == tw_loop_timed_out,
                      tw_loop_error_name(result.error));
        client_fail(cl, result.error == tw_loop_refused ? failure_refused
                                                        : failure_connect_timed_out);
        return tw_disarm;
    }
    cl->counts.connections++;
    cl->connect_failures = 0;
    cl->phase = phase_open;
    cl->queue = (tw_write_queue){0};
    tw_frame_reader_init(&cl->reader, cl->receive_buffer, MESSAGE_SIZE_MAX, cluster);
    client_read(cl);
    client_send(cl);
    return tw_disarm;
}

/* One connect attempt on a fresh socket, unless the network has been failing too long. */
static void client_connect(client *cl) {
    TW_ASSERT(cl->phase == phase_paused && cl->pending == 0);
    if (cl->connect_failures >= CLIENT_CONNECT_ATTEMPTS_MAX) {
        cl->gave_up = true;
        cl->counts.gave_up++;
        cl->phase = phase_done;
        return;
    }
    TW_ASSERT(tw_tcp_open(cl->loop, cl->address, &cl->tcp) == tw_loop_ok);
    cl->phase = phase_connecting;
    cl->pending++;
    tw_tcp_connect(cl->loop, &cl->c_connect, cl->tcp, cl->address, cl, client_connected_cb);
}

/* The client's clock: request timeouts and reconnect pauses. It stops once the client is
 * done, which lets the loop run out. */
static tw_action client_tick_cb(void *userdata, tw_loop *loop, tw_completion *c,
                                tw_result result) {
    client *cl = userdata;
    TW_ASSERT(result.error == tw_loop_ok);
    uint64_t now_ns = tw_loop_now_ns(loop);
    if (cl->phase == phase_open && now_ns >= cl->deadline_ns) client_fail(cl, failure_timeout);
    if (cl->phase == phase_paused && now_ns >= cl->reconnect_at_ns) client_connect(cl);
    if (cl->phase == phase_done) return tw_disarm;
    tw_loop_timer(loop, c, CLIENT_TICK_NS, cl, client_tick_cb);
    return tw_disarm;
}

static void client_main(void *arg) {
    client *cl = arg;
    TW_ASSERT(tw_loop_init(&cl->loop, NULL) == tw_loop_ok);
    message_build(cl, 0);
    cl->phase = phase_paused;
    client_connect(cl);
    tw_loop_timer(cl->loop, &cl->c_tick, CLIENT_TICK_NS, cl, client_tick_cb);
    TW_ASSERT(tw_loop_run(cl->loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(cl->phase == phase_done && cl->pending == 0);
    TW_ASSERT(cl->gave_up || (cl->registered && cl->accepted_last == cl->requests));
    tw_loop_deinit(cl->loop);
}

static void client_init(client *cl, uint32_t number, client_role role, uint64_t requests) {
    memset(cl, 0, sizeof(*cl));
    cl->number = number;
    cl->role = role;
    cl->id = (tw_u128){.low = number, .high = CLIENT_ID_HIGH};
    cl->address = &the_server.address;
    cl->requests = requests;
    cl->lookup_batch = tw_operation_events_max(tw_operation_lookup_accounts, MESSAGE_SIZE_MAX);
}

/* ---- the run ----------------------------------------------------------------------------- */

typedef struct run_totals {
    uint64_t runs;
    client_counts clients;
    uint64_t server_malformed[tw_proto_error_count];
    uint64_t sends_dropped;
    uint64_t retries_answered;
    uint64_t requests_ignored;
    uint64_t connections_accepted;
} run_totals;

static run_totals totals;

static void print_counts(const char *what, const client_counts *counts,
                         const uint64_t server_malformed[tw_proto_error_count],
                         uint64_t sends_dropped, uint64_t retries_answered,
                         uint64_t requests_ignored, uint64_t connections_accepted) {
    printf("server_faults: %s: client connections=%" PRIu64 " reconnects=%" PRIu64 " (", what,
           counts->connections, counts->reconnects);
    for (uint32_t i = 0; i < failure_kind_count; i++) {
        printf("%s%s=%" PRIu64, i == 0 ? "" : " ", failure_names[i], counts->failures[i]);
    }
    printf(") retries=%" PRIu64 " stale_replies=%" PRIu64 " gave_up=%" PRIu64 "\n", counts->retries,
           counts->stale_replies, counts->gave_up);
    printf("server_faults: %s: client malformed:", what);
    for (uint32_t i = 1; i < tw_proto_error_count; i++) {
        printf(" %s=%" PRIu64, tw_proto_error_name((tw_proto_error)i), counts->malformed[i]);
    }
    printf("\nserver_faults: %s: server malformed:", what);
    for (uint32_t i = 1; i < tw_proto_error_count; i++) {
        printf(" %s=%" PRIu64, tw_proto_error_name((tw_proto_error)i), server_malformed[i]);
    }
    printf("\nserver_faults: %s: server connections_accepted=%" PRIu64 " retries_answered=%" PRIu64
           " requests_ignored=%" PRIu64 " sends_dropped=%" PRIu64 "\n",
           what, connections_accepted, retries_answered, requests_ignored, sends_dropped);
}

static void print_totals_at_exit(void) {
    if (totals.runs == 0) return;
    char what[64];
    snprintf(what, sizeof(what), "totals over %" PRIu64 " runs", totals.runs);
    print_counts(what, &totals.clients, totals.server_malformed, totals.sends_dropped,
                 totals.retries_answered, totals.requests_ignored, totals.connections_accepted);
}

/* After the workers: the accounts the lookup client must find, from every accepted create. */
static void expected_collect(void) {
    expected_count = 0;
    for (uint32_t c = 0; c < config.clients; c++) {
        const client *cl = &clients[c];
        if (!cl->registered) continue;
        for (uint64_t request = 1; request <= cl->accepted_last; request++) {
            if (!request_is_create(request)) continue;
            for (uint32_t i = 0; i < create_count(cl->number, request); i++) {
                TW_ASSERT(expected_count < ACCOUNTS_MAX);
                expected[expected_count++] = account_of(cl->number, request, i);
            }
        }
    }
}

static void server_faults_main(void *arg) {
    (void)arg;
    tw_server_options server_options = {
        .cluster = cluster,
        .connections_max = SERVER_CONNECTIONS_MAX,
        .clients_max = SERVER_CLIENTS_MAX,
        .message_size_max = MESSAGE_SIZE_MAX,
        .release_min = RELEASE,
        .release_max = RELEASE,
        .accounts_max = SERVER_ACCOUNTS_MAX,
        .transfers_max = SERVER_TRANSFERS_MAX,
    };
    tw_test_server_start(&the_server, &server_options);

    tw_thread threads[CLIENTS_MAX];
    for (uint32_t c = 0; c < config.clients; c++) {
        client_init(&clients[c], c + 1, role_worker, config.requests);
        tw_thread_options options = {.name = "client"};
        TW_ASSERT(tw_thread_spawn(&threads[c], &options, client_main, &clients[c]) == tw_os_ok);
    }
    for (uint32_t c = 0; c < config.clients; c++) TW_ASSERT(tw_thread_join(threads[c]) == tw_os_ok);

    /* The lookup client runs here, on the main thread, with a loop of its own. */
    expected_collect();
    uint32_t batch = tw_operation_events_max(tw_operation_lookup_accounts, MESSAGE_SIZE_MAX);
    TW_ASSERT(batch > 0 && batch * sizeof(tw_u128) <= BODY_SIZE_MAX);
    uint64_t lookups = (expected_count + batch - 1) / batch;
    client_init(&lookup_client, config.clients + 1, role_lookup, lookups);
    client_main(&lookup_client);

    tw_test_server_stop(&the_server);

    /* What the server did, against what the clients saw. */
    const tw_server_stats *stats = &the_server.stats;
    client_counts run = {0};
    uint64_t accepted = 0;   /* requests whose reply a client accepted: executed once */
    uint64_t unfinished = 0; /* requests sent by a client that gave up: executed at most once */
    uint64_t registered = 0;
    uint64_t gave_up = 0;
    for (uint32_t c = 0; c <= config.clients; c++) {
        const client *cl = c < config.clients ? &clients[c] : &lookup_client;
        counts_add(&run, &cl->counts);
        registered += cl->registered;
        accepted += cl->registered ? cl->accepted_last : 0;
        if (cl->gave_up) {
            gave_up++;
            unfinished += cl->registered ? 1 : 0;
        }
    }
    if (config.print_runs) {
        printf("server_faults: run: clients=%u requests=%u lookups=%" PRIu64 " accounts=%u "
               "executed=%" PRIu64 " registrations=%" PRIu64 "\n",
               config.clients, config.requests, lookups, expected_count, stats->requests_executed,
               stats->registrations);
        print_counts("run", &run, stats->malformed, stats->sends_dropped, stats->retries_answered,
                     stats->requests_ignored, stats->connections_accepted);
    }
    totals.runs++;
    counts_add(&totals.clients, &run);
    for (uint32_t i = 0; i < tw_proto_error_count; i++) {
        totals.server_malformed[i] += stats->malformed[i];
    }
    totals.sends_dropped += stats->sends_dropped;
    totals.retries_answered += stats->retries_answered;
    totals.requests_ignored += stats->requests_ignored;
    totals.connections_accepted += stats->connections_accepted;

    if (gave_up == 0) {
        /* Exactly once: every request executed once, every client registered once. */
        uint64_t want = (uint64_t)config.clients * config.requests + lookups;
        TW_ASSERT_MSG(stats->requests_executed == want &&
                          stats->registrations == config.clients + 1u,
                      failure_text("executed %" PRIu64 " requests and %" PRIu64 " registrations; "
                                   "the clients sent %" PRIu64 " requests and %u registrations, "
                                   "each once",
                                   stats->requests_executed, stats->registrations, want,
                                   config.clients + 1u));
        TW_ASSERT(accepted == want && registered == config.clients + 1u);
    } else {
        /* A bounded run: only what a client saw finish is claimed. */
        TW_ASSERT_MSG(stats->requests_executed >= accepted &&
                          stats->requests_executed <= accepted + unfinished,
                      "executed requests disagree with the replies accepted and the requests sent");
        TW_ASSERT(stats->registrations >= registered &&
                  stats->registrations <= config.clients + 1u);
    }
    TW_ASSERT_MSG(stats->op == stats->registrations + stats->requests_executed,
                  "an op committed that was neither a register nor a request");
    for (uint32_t r = 0; r < TW_EVICTION_REASON_COUNT; r++) {
        TW_ASSERT_MSG(stats->sessions_evicted[r] == 0 && stats->evictions_sent[r] == 0,
                      failure_text("%" PRIu64 " sessions evicted and %" PRIu64 " evictions sent "
                                   "for %s",
                                   stats->sessions_evicted[r], stats->evictions_sent[r],
                                   tw_eviction_reason_name((tw_eviction_reason)r)));
    }
    TW_ASSERT_MSG(the_server.sessions == stats->registrations,
                  "a session was lost though none was evicted");
    TW_ASSERT(stats->connections_accepted == stats->connections_closed);
    TW_ASSERT(stats->pings == 0);
    for (uint32_t i = 0; i < tw_proto_error_count; i++) {
        /* Without bit flips nothing malformed crosses the network: the clients send only
         * well-formed messages, and a reset cuts a stream, it does not garble it. */
        TW_ASSERT_MSG(config.corruption_possible ||
                          (stats->malformed[i] == 0 && run.malformed[i] == 0),
                      failure_text("malformed %s: %" PRIu64 " at the server, %" PRIu64 " at the "
                                   "clients, with no corruption in the network",
                                   tw_proto_error_name((tw_proto_error)i), stats->malformed[i],
                                   run.malformed[i]));
    }
    /* The clients never send a reply, eviction or pong, and no flip passes the checksums. */
    TW_ASSERT(stats->malformed[tw_proto_ok] == 0 &&
              stats->malformed[tw_proto_unexpected_command] == 0);
}

static void *prepare(tw_test_build build) {
    bool real = build == tw_test_build_real;
    config.clients = real ? CLIENTS_REAL : CLIENTS_SIM;
    config.requests = real ? REQUESTS_REAL : REQUESTS_SIM;
    config.request_timeout_ns =
        real ? CLIENT_REQUEST_TIMEOUT_REAL_NS : CLIENT_REQUEST_TIMEOUT_SIM_NS;
    TW_ASSERT(config.clients <= CLIENTS_MAX && config.requests <= REQUESTS_MAX);
    if (real) config.print_runs = true;
    else if (!config.print_runs) TW_ASSERT(atexit(print_totals_at_exit) == 0);
    return NULL;
}

static uint64_t steps_expected(void *arg) {
    (void)arg;
    return (uint64_t)config.clients * (config.requests + 2u) * STEPS_PER_REQUEST;
}

int main(int argc, char **argv) {
    /* The runner owns the flags; two only change what this test prints and expects. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0) config.print_runs = true;
        if (strcmp(argv[i], "--net-corruption") == 0) config.corruption_possible = true;
    }
    tw_test_case test = {.name = "server_faults",
                         .prepare = prepare,
                         .main_fn = server_faults_main,
                         .steps_expected = steps_expected};
    return tw_test_main(argc, argv, &test);
}
