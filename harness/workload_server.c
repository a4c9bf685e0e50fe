/* twin harness: the server under network faults, exactly-once execution and robustness
 * (see workload_server.h).
 *
 * A server thread runs a tw_server on its own loop; config.clients client threads, each
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
 * session evicted, op == registrations + requests_executed, and unless the network may
 * flip bits (config.corruption_possible) nothing was malformed, at either end.
 *
 * Why no eviction is legitimate here. clients_max is above the client count, so there is
 * no too_many_clients; the client never skips a number, never changes a retry's bytes,
 * and registers again only before its register reply came. What is left is lateness: a
 * copy of a message sent on a connection the client has given up on can reach the server
 * after the retry on a newer connection was answered, and after later requests. The
 * simulated network does deliver that late: a partition holds a connection's segments
 * until it heals (up to about 0.5 s), and a half-dead connection (sim/io_sim.c) delivers
 * nothing, both ways, for 0.3..3 s while it stays open, no shorter than the sim's request
 * timeout, so the client times out, closes it and retries elsewhere while the old copy (and
 * the FIN behind it) is still on its way. Sweeps reach both cases (`twin-sim --workload
 * server --seeds 5000`: markers server_request_older_ignored and
 * server_register_older_ignored). The server's rules (include/twin/server.h) make any such
 * copy harmless, whichever arrives first: the session's next request executes once; a
 * copy of its last request gets the cached reply (retries_answered); an older request is
 * ignored (requests_ignored); and a register is request 0, so a late register for a
 * session that has executed a request is ignored as an older request, not a protocol
 * violation (before any request it gets its register reply again). An answer to a late
 * copy goes to the connection it came on, which the client has closed. So the oracle
 * still asserts that nothing at all was evicted, for any reason.
 *
 * A bounded run: a client gives up after CLIENT_CONNECT_ATTEMPTS_MAX connect attempts in a
 * row fail (refused or timed out), which only a network cut off for seconds could cause:
 * one sim partition lasts at most ~0.5 s, an attempt takes at least the reconnect pause,
 * and a refusal or a timeout by chance is each at most 1 in 16 attempts. So every sim seed
 * finishes (none gave up in the sweeps), but a client that does give up is not claimed
 * exactly-once for its unfinished request: then only accepted <= executed <= accepted +
 * unfinished is checked. Connections that open but fail (reset, EOF, malformed, timeout)
 * are not a reason to give up: CLIENT_CONNECTION_FAILURES_MAX of them in a row for one
 * message fail the run, as a server that stopped answering (each of those faults is
 * rare per send or segment: a reset at most 1 in 200 sends, a half-dead connection at most
 * 1 in 25 sends, a partition at most 1 in 200 sends, a bit flip 1 in 1000 segments; so a
 * good run never comes near 100 in a row).
 *
 * The real build (loopback, no faults) checks the same oracle on real sockets and threads;
 * its request timeout is seconds, since a late reply there means only a slow machine.
 *
 * Every atomic operation, futex call and loop call here, and their order, is what
 * tests/server_faults_test.c did before the move: the sweep hashes did not change. */
#include "workload_server.h"

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

#define MS_NS (1000u * 1000u)

/* Workload sizes. */
#define CLIENTS_MAX TW_WORKLOAD_SERVER_CLIENTS_MAX
#define REQUESTS_MAX TW_WORKLOAD_SERVER_REQUESTS_MAX
#define ACCOUNTS_PER_CREATE_MAX 3u
#define ACCOUNTS_MAX (CLIENTS_MAX * (REQUESTS_MAX / 2u + 1u) * ACCOUNTS_PER_CREATE_MAX)
#define ECHO_BODY_SIZE_MAX 1024u

/* The server. */
#define MESSAGE_SIZE_MAX 4096u
#define BODY_SIZE_MAX (MESSAGE_SIZE_MAX - TW_HEADER_SIZE)
#define SERVER_CLIENTS_MAX 16u
/* Above what the clients hold open at once (one each, plus old ones whose close a
 * partition or a half-dead connection still holds back from the server), so connects are
 * accepted at once. A connect left in the backlog would only delay its client: what an old
 * connection carries is harmless whenever it arrives (see "Why no eviction" above). */
#define SERVER_CONNECTIONS_MAX 64u
#define SERVER_ACCOUNTS_MAX 4096u
#define SERVER_TRANSFERS_MAX 1u
#define RELEASE 1u
#define CLUSTER_LOW 7u

/* The clients. */
#define CLIENT_TICK_NS (5u * MS_NS)            /* timeouts and pauses are checked this often */
#define CLIENT_RECONNECT_PAUSE_NS (10u * MS_NS) /* after a failed connection, before the next */
#define CLIENT_CONNECT_ATTEMPTS_MAX 200u       /* failed connects in a row: give up */
#define CLIENT_CONNECTION_FAILURES_MAX 100u    /* failed connections for one message: a bug */
#define CLIENT_ID_HIGH 0x5e4f41u
#define LEDGER_BASE 700u
#define CODE_MODULUS 1000u
/* Scheduling points per request, roughly (measured: ~850 for a 3 x 20 sim run). */
#define STEPS_PER_REQUEST 13u

/* The sim's one-way latency: base < 1 ms, jitter <= base, so below 2 ms; a spike x100
 * (see draw_faults and latency_ns in sim/io_sim.c). */
#define SIM_LATENCY_MAX_NS (200u * MS_NS)
#define SIM_LATENCY_UNSPIKED_MAX_NS (2u * MS_NS)

/* Lateness is harmless (see "Why no eviction" above), but a round trip with one latency
 * spike and no other fault is answered before the request times out. */
_Static_assert(TW_WORKLOAD_SERVER_REQUEST_TIMEOUT_SIM_NS >
                   SIM_LATENCY_MAX_NS + SIM_LATENCY_UNSPIKED_MAX_NS,
               "one latency spike must not time a request out");
_Static_assert(SERVER_CLIENTS_MAX > CLIENTS_MAX + 1u, "no too_many_clients evictions");
_Static_assert(SERVER_ACCOUNTS_MAX >= ACCOUNTS_MAX, "every account created fits the ledger");
_Static_assert(ECHO_BODY_SIZE_MAX <= BODY_SIZE_MAX, "an echo body fits a message");
_Static_assert(ACCOUNTS_PER_CREATE_MAX * sizeof(tw_account) <= BODY_SIZE_MAX,
               "a create fits a message");
_Static_assert(ACCOUNTS_PER_CREATE_MAX <= 256u, "an account's index fits its id's low byte");

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

_Static_assert(failure_kind_count == TW_WORKLOAD_SERVER_FAILURE_KINDS, "the header counts every kind");

typedef tw_workload_server_client_counts client_counts;

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
    struct tw_workload_server *workload; /* its config and world */
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

/* What a run uses besides the config: allocated once, outside any run, reset by each. */
struct tw_workload_server_world {
    tw_test_server server;
    client clients[CLIENTS_MAX];
    client lookup_client;
    tw_account expected[ACCOUNTS_MAX]; /* what the lookup client must find */
    uint32_t expected_count;
};

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
        const struct tw_workload_server_world *world = cl->workload->world;
        uint32_t first = (uint32_t)(request - 1) * cl->lookup_batch;
        TW_ASSERT(first < world->expected_count);
        uint32_t count = world->expected_count - first < cl->lookup_batch
                             ? world->expected_count - first
                             : cl->lookup_batch;
        for (uint32_t i = 0; i < count; i++) {
            memcpy(cl->out.body + i * sizeof(tw_u128), &world->expected[first + i].id,
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
    cl->deadline_ns = tw_loop_now_ns(cl->loop) + cl->workload->config.request_timeout_ns;
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
        const tw_account *want = &cl->workload->world->expected[first + i];
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

static void client_init(struct tw_workload_server *workload, client *cl, uint32_t number,
                        client_role role, uint64_t requests) {
    memset(cl, 0, sizeof(*cl));
    cl->workload = workload;
    cl->number = number;
    cl->role = role;
    cl->id = (tw_u128){.low = number, .high = CLIENT_ID_HIGH};
    cl->address = &workload->world->server.address;
    cl->requests = requests;
    cl->lookup_batch = tw_operation_events_max(tw_operation_lookup_accounts, MESSAGE_SIZE_MAX);
}

/* ---- the run ----------------------------------------------------------------------------- */

static void counts_total_add(tw_workload_server_counts *total, const tw_workload_server_counts *one) {
    total->runs += one->runs;
    total->lookups += one->lookups;
    total->accounts += one->accounts;
    total->requests_executed += one->requests_executed;
    total->registrations += one->registrations;
    counts_add(&total->clients, &one->clients);
    for (uint32_t i = 0; i < tw_proto_error_count; i++) {
        total->server_malformed[i] += one->server_malformed[i];
    }
    total->sends_dropped += one->sends_dropped;
    total->retries_answered += one->retries_answered;
    total->requests_ignored += one->requests_ignored;
    total->connections_accepted += one->connections_accepted;
}

/* After the workers: the accounts the lookup client must find, from every accepted create. */
static void expected_collect(struct tw_workload_server *w) {
    struct tw_workload_server_world *world = w->world;
    world->expected_count = 0;
    for (uint32_t c = 0; c < w->config.clients; c++) {
        const client *cl = &world->clients[c];
        if (!cl->registered) continue;
        for (uint64_t request = 1; request <= cl->accepted_last; request++) {
            if (!request_is_create(request)) continue;
            for (uint32_t i = 0; i < create_count(cl->number, request); i++) {
                TW_ASSERT(world->expected_count < ACCOUNTS_MAX);
                world->expected[world->expected_count++] = account_of(cl->number, request, i);
            }
        }
    }
}

void tw_workload_server_run(void *arg) {
    struct tw_workload_server *w = arg;
    TW_ASSERT(w != NULL && w->world != NULL);
    struct tw_workload_server_world *world = w->world;
    const tw_workload_server_config *config = &w->config;
    w->last = (tw_workload_server_counts){0}; /* until this run's server stops */
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
    tw_test_server_start(&world->server, &server_options);

    tw_thread threads[CLIENTS_MAX];
    for (uint32_t c = 0; c < config->clients; c++) {
        client_init(w, &world->clients[c], c + 1, role_worker, config->requests);
        tw_thread_options options = {.name = "client"};
        TW_ASSERT(tw_thread_spawn(&threads[c], &options, client_main, &world->clients[c]) == tw_os_ok);
    }
    for (uint32_t c = 0; c < config->clients; c++) TW_ASSERT(tw_thread_join(threads[c]) == tw_os_ok);

    /* The lookup client runs here, on the main thread, with a loop of its own. */
    expected_collect(w);
    uint32_t batch = tw_operation_events_max(tw_operation_lookup_accounts, MESSAGE_SIZE_MAX);
    TW_ASSERT(batch > 0 && batch * sizeof(tw_u128) <= BODY_SIZE_MAX);
    uint64_t lookups = (world->expected_count + batch - 1) / batch;
    client_init(w, &world->lookup_client, config->clients + 1, role_lookup, lookups);
    client_main(&world->lookup_client);

    tw_test_server_stop(&world->server);

    /* What the server did, against what the clients saw. */
    const tw_server_stats *stats = &world->server.stats;
    client_counts run = {0};
    uint64_t accepted = 0;   /* requests whose reply a client accepted: executed once */
    uint64_t unfinished = 0; /* requests sent by a client that gave up: executed at most once */
    uint64_t registered = 0;
    uint64_t gave_up = 0;
    for (uint32_t c = 0; c <= config->clients; c++) {
        const client *cl = c < config->clients ? &world->clients[c] : &world->lookup_client;
        counts_add(&run, &cl->counts);
        registered += cl->registered;
        accepted += cl->registered ? cl->accepted_last : 0;
        if (cl->gave_up) {
            gave_up++;
            unfinished += cl->registered ? 1 : 0;
        }
    }
    tw_workload_server_counts one = {
        .runs = 1,
        .lookups = lookups,
        .accounts = world->expected_count,
        .requests_executed = stats->requests_executed,
        .registrations = stats->registrations,
        .clients = run,
        .sends_dropped = stats->sends_dropped,
        .retries_answered = stats->retries_answered,
        .requests_ignored = stats->requests_ignored,
        .connections_accepted = stats->connections_accepted,
    };
    for (uint32_t i = 0; i < tw_proto_error_count; i++) one.server_malformed[i] = stats->malformed[i];
    w->last = one;
    counts_total_add(&w->totals, &one);
    if (w->run_ended != NULL) w->run_ended(w);


    if (gave_up == 0) {
        /* Exactly once: every request executed once, every client registered once. */
        uint64_t want = (uint64_t)config->clients * config->requests + lookups;
        TW_ASSERT_MSG(stats->requests_executed == want &&
                          stats->registrations == config->clients + 1u,
                      failure_text("executed %" PRIu64 " requests and %" PRIu64 " registrations; "
                                   "the clients sent %" PRIu64 " requests and %u registrations, "
                                   "each once",
                                   stats->requests_executed, stats->registrations, want,
                                   config->clients + 1u));
        TW_ASSERT(accepted == want && registered == config->clients + 1u);
    } else {
        /* A bounded run: only what a client saw finish is claimed. */
        TW_ASSERT_MSG(stats->requests_executed >= accepted &&
                          stats->requests_executed <= accepted + unfinished,
                      "executed requests disagree with the replies accepted and the requests sent");
        TW_ASSERT(stats->registrations >= registered &&
                  stats->registrations <= config->clients + 1u);
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
    TW_ASSERT_MSG(world->server.sessions == stats->registrations,
                  "a session was lost though none was evicted");
    TW_ASSERT(stats->connections_accepted == stats->connections_closed);
    TW_ASSERT(stats->pings == 0);
    for (uint32_t i = 0; i < tw_proto_error_count; i++) {
        /* Without bit flips nothing malformed crosses the network: the clients send only
         * well-formed messages, and a reset cuts a stream, it does not garble it. */
        TW_ASSERT_MSG(config->corruption_possible ||
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

bool tw_workload_server_init(struct tw_workload_server *workload,
                             const tw_workload_server_config *config) {
    TW_ASSERT(workload != NULL && config != NULL);
    TW_ASSERT_MSG(config->clients >= 1 && config->clients <= CLIENTS_MAX,
                  "workload_server: clients must be 1..TW_WORKLOAD_SERVER_CLIENTS_MAX");
    TW_ASSERT_MSG(config->requests >= 1 && config->requests <= REQUESTS_MAX,
                  "workload_server: requests must be 1..TW_WORKLOAD_SERVER_REQUESTS_MAX");
    TW_ASSERT_MSG(config->request_timeout_ns >= TW_WORKLOAD_SERVER_REQUEST_TIMEOUT_SIM_NS,
                  "workload_server: the request timeout is below the sim's");
    *workload = (struct tw_workload_server){.config = *config};
    workload->world = tw_allocate(sizeof(*workload->world));
    if (workload->world == NULL) return false;
    memset(workload->world, 0, sizeof(*workload->world));
    return true;
}

void tw_workload_server_free(struct tw_workload_server *workload) {
    TW_ASSERT(workload != NULL);
    tw_free(workload->world);
    workload->world = NULL;
}

uint64_t tw_workload_server_steps_expected(const struct tw_workload_server *workload) {
    TW_ASSERT(workload != NULL);
    return (uint64_t)workload->config.clients * (workload->config.requests + 2u) * STEPS_PER_REQUEST;
}

const char *tw_workload_server_failure_name(uint32_t kind) {
    TW_ASSERT(kind < failure_kind_count);
    return failure_names[kind];
}
