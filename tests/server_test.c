/* The server over the wire, one source for both builds.
 *
 * Each case runs a tw_server on its own thread and loop (started, then stopped through a
 * tw_async and joined), with small limits chosen for the case. The test body drives raw
 * clients: each owns a tw_tcp connection on one client-side loop and speaks the protocol
 * by hand (tw_header_seal, tw_tcp_queue_write; a tw_frame_reader over reads), through
 * blocking-style helpers that run that loop until the awaited message or close arrives,
 * or fail after DEADLINE_NS of loop time naming what was awaited. Every outcome is exact:
 * the sim keeps partial sends and receives and latency spikes (the framing must survive
 * them) but no resets, refused connects or partitions. The server's counters are read
 * only after its thread is joined; during a case its state is inferred through the
 * protocol (op numbers, lookups, evictions).
 *
 * Cases: registration; LRU eviction and the evicted table; the release range;
 * exactly-once requests; the ledger over the wire; malformed input, one connection per
 * malformed message of each tw_proto_error class; connections_max; idle connections
 * reclaimed for a waiting one (and none while nobody waits); the evicted table's capacity
 * when an evicted client registers again. */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
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

#define MESSAGE_SIZE_MAX 4096u
#define BODY_SIZE_MAX (MESSAGE_SIZE_MAX - TW_HEADER_SIZE)
#define RELEASE 3u
#define DEADLINE_NS (5ull * 1000u * 1000u * 1000u)
#define BACKLOG_WAIT_NS (100ull * 1000u * 1000u)
#define INBOX_MAX 8u
#define WRITES_MAX 8u
#define RAWS_MAX 10u

static const tw_u128 cluster = {.low = 7, .high = 0};
static bool verbose; /* the real run prints a summary; sim sweeps stay quiet */

/* ---- failures ------------------------------------------------------------------------ */

static char failure_text[1024];

static void failf(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void failf(const char *format, ...) {
    va_list args;
    va_start(args, format);
    (void)vsnprintf(failure_text, sizeof(failure_text), format, args);
    va_end(args);
    TW_ASSERT_MSG(false, failure_text);
}

/* ---- the server thread --------------------------------------------------------------- */

/* ---- raw clients ----------------------------------------------------------------------- */

typedef struct message {
    tw_header header;
    uint8_t body[BODY_SIZE_MAX];
} message;

struct raw;
struct harness;

typedef struct write_slot {
    tw_write_request request;
    struct raw *raw;
    bool busy;
    uint8_t bytes[MESSAGE_SIZE_MAX];
} write_slot;

typedef struct raw {
    struct harness *h;
    const char *name;
    tw_u128 id;
    uint32_t release;
    uint64_t session;
    uint64_t request; /* the last request number sent */
    tw_tcp tcp;
    bool socket_open;
    bool connect_done;
    tw_loop_error connect_error;
    bool read_active;
    bool ended; /* EOF or reset */
    tw_loop_error end_error;
    bool close_done;
    uint32_t writes_busy;
    tw_completion c_connect;
    tw_completion c_read;
    tw_completion c_close;
    tw_write_queue queue;
    write_slot writes[WRITES_MAX];
    tw_frame_reader reader;
    uint8_t reader_buffer[MESSAGE_SIZE_MAX];
    message inbox[INBOX_MAX];
    uint32_t inbox_head;
    uint32_t inbox_count;
} raw;

typedef struct harness {
    tw_loop *loop;
    const char *case_name;
    tw_completion c_deadline;
    tw_completion c_deadline_cancel;
    bool deadline_fired;
    uint64_t timestamp_last; /* of the last fresh reply in this case */
    uint64_t ping_timestamp_next;
    uint64_t client_next;
    /* What this case sent, for the server's counters. */
    uint64_t sent_well_formed;
    uint64_t sent_pings;
    uint64_t connections;
    raw raws[RAWS_MAX];
    uint32_t raws_count;
    tw_test_server server;
} harness;

static harness the_harness;

static tw_action deadline_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    struct harness *h = userdata;
    if (result.error == tw_loop_ok) h->deadline_fired = true;
    return tw_disarm;
}

typedef bool (*raw_condition)(const raw *r);

/* Runs the client loop until done(r), failing after DEADLINE_NS of loop time. */
static void run_until(raw *r, raw_condition done, const char *what) {
    struct harness *h = r->h;
    h->deadline_fired = false;
    tw_loop_update_now(h->loop);
    tw_loop_timer_reset(h->loop, &h->c_deadline, DEADLINE_NS, h, deadline_cb);
    while (!done(r)) {
        if (h->deadline_fired) {
            failf("%s: %s: nothing for 5 s of loop time while awaiting %s", h->case_name, r->name, what);
        }
        TW_ASSERT(tw_loop_run(h->loop, tw_run_once) == tw_loop_ok);
    }
}

static void check_u64(const raw *r, const char *what, const char *field, uint64_t actual,
                      uint64_t expected) {
    if (actual == expected) return;
    failf("%s: %s: %s: %s is %" PRIu64 ", expected %" PRIu64, r->h->case_name, r->name, what, field,
          actual, expected);
}

static void on_message(void *context, const tw_header *header, const uint8_t *body) {
    raw *r = context;
    if (r->inbox_count == INBOX_MAX) failf("%s: %s: more than %u messages unread", r->h->case_name, r->name, INBOX_MAX);
    message *m = &r->inbox[(r->inbox_head + r->inbox_count) % INBOX_MAX];
    m->header = *header;
    memcpy(m->body, body, header->size - TW_HEADER_SIZE);
    r->inbox_count++;
}

static tw_action read_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result);

static void raw_read_next(raw *r) {
    uint32_t room = 0;
    uint8_t *space = tw_frame_reader_space(&r->reader, &room);
    TW_ASSERT(room > 0);
    r->read_active = true;
    tw_tcp_read(r->h->loop, &r->c_read, r->tcp, space, room, r, read_cb);
}

static tw_action read_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    raw *r = userdata;
    r->read_active = false;
    if (result.error == tw_loop_ok) {
        tw_proto_error error = tw_frame_reader_commit(&r->reader, (uint32_t)result.value, on_message, r);
        if (error != tw_proto_ok) {
            failf("%s: %s: the server sent a malformed message: %s", r->h->case_name, r->name,
                  tw_proto_error_name(error));
        }
        raw_read_next(r);
        return tw_disarm;
    }
    if (result.error == tw_loop_canceled) return tw_disarm; /* our own close */
    if (result.error == tw_loop_eof || result.error == tw_loop_reset) {
        r->ended = true;
        r->end_error = result.error;
        return tw_disarm;
    }
    failf("%s: %s: read: %s", r->h->case_name, r->name, tw_loop_error_name(result.error));
    return tw_disarm;
}

static tw_action wrote_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    write_slot *slot = userdata;
    raw *r = slot->raw;
    slot->busy = false;
    r->writes_busy--;
    /* A server that closed the connection (malformed input) fails later writes. */
    bool expected = result.error == tw_loop_ok || result.error == tw_loop_reset ||
                    result.error == tw_loop_broken_pipe || result.error == tw_loop_canceled ||
                    result.error == tw_loop_bad_socket;
    if (!expected) failf("%s: %s: write: %s", r->h->case_name, r->name, tw_loop_error_name(result.error));
    return tw_disarm;
}

static tw_action connected_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    raw *r = userdata;
    r->connect_done = true;
    r->connect_error = result.error;
    return tw_disarm;
}

static tw_action closed_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    raw *r = userdata;
    TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
    r->close_done = true;
    return tw_disarm;
}

static bool raw_connected(const raw *r) { return r->connect_done; }

static bool raw_closed(const raw *r) { return r->close_done && !r->read_active && r->writes_busy == 0; }

static bool raw_has_message_or_ended(const raw *r) { return r->inbox_count > 0 || r->ended; }

static bool raw_ended(const raw *r) { return r->ended; }

/* A fresh connection for r (its id, session and request number are kept). */
static void raw_connect(raw *r) {
    struct harness *h = r->h;
    TW_ASSERT(!r->socket_open && !r->read_active && r->writes_busy == 0);
    r->connect_done = false;
    r->ended = false;
    r->close_done = false;
    r->inbox_head = 0;
    r->inbox_count = 0;
    r->queue = (tw_write_queue){0};
    tw_frame_reader_init(&r->reader, r->reader_buffer, MESSAGE_SIZE_MAX, cluster);
    TW_ASSERT(tw_tcp_open(h->loop, &h->server.address, &r->tcp) == tw_loop_ok);
    r->socket_open = true;
    tw_tcp_connect(h->loop, &r->c_connect, r->tcp, &h->server.address, r, connected_cb);
    run_until(r, raw_connected, "its connect");
    if (r->connect_error != tw_loop_ok) {
        failf("%s: %s: connect: %s", h->case_name, r->name, tw_loop_error_name(r->connect_error));
    }
    h->connections++;
    raw_read_next(r);
}

static void raw_close(raw *r) {
    if (!r->socket_open) return;
    r->socket_open = false;
    r->close_done = false;
    tw_tcp_close(r->h->loop, &r->c_close, r->tcp, r, closed_cb);
    run_until(r, raw_closed, "the close of its socket");
}

/* A new client with a new id, connected. */
static raw *raw_new(struct harness *h, const char *name) {
    TW_ASSERT(h->raws_count < RAWS_MAX);
    raw *r = &h->raws[h->raws_count++];
    memset(r, 0, sizeof(*r));
    r->h = h;
    r->name = name;
    r->id = (tw_u128){.low = 0xC1000 + ++h->client_next, .high = 0x7E57};
    r->release = RELEASE;
    raw_connect(r);
    return r;
}

static void raw_send_bytes(raw *r, const void *bytes, size_t size) {
    TW_ASSERT(r->socket_open && size <= MESSAGE_SIZE_MAX);
    write_slot *slot = NULL;
    for (uint32_t i = 0; i < WRITES_MAX && slot == NULL; i++) {
        if (!r->writes[i].busy) slot = &r->writes[i];
    }
    if (slot == NULL) failf("%s: %s: more than %u writes queued", r->h->case_name, r->name, WRITES_MAX);
    slot->busy = true;
    slot->raw = r;
    r->writes_busy++;
    memcpy(slot->bytes, bytes, size);
    tw_tcp_queue_write(r->h->loop, &r->queue, &slot->request, r->tcp, slot->bytes, size, slot, wrote_cb);
}

static tw_header header_make(const raw *r, tw_command command, tw_operation operation, uint64_t request,
                             uint32_t body_size) {
    tw_header header;
    memset(&header, 0, sizeof(header));
    header.cluster = cluster;
    header.client = r->id;
    header.session = r->session;
    header.request = request;
    header.size = TW_HEADER_SIZE + body_size;
    header.release = r->release;
    header.command = (uint8_t)command;
    header.operation = (uint8_t)operation;
    return header;
}

/* header and body, as bytes on the wire (header->size of them). */
static void message_bytes(const tw_header *header, const void *body, uint32_t body_size, uint8_t *bytes) {
    memcpy(bytes, header, TW_HEADER_SIZE);
    if (body_size > 0) memcpy(bytes + TW_HEADER_SIZE, body, body_size);
}

/* Seals and sends a well-formed message. */
static void raw_send(raw *r, tw_header *header, const void *body) {
    uint8_t bytes[MESSAGE_SIZE_MAX];
    uint32_t body_size = header->size - TW_HEADER_SIZE;
    tw_header_seal(header, body);
    message_bytes(header, body, body_size, bytes);
    raw_send_bytes(r, bytes, header->size);
    r->h->sent_well_formed++;
}

static void raw_send_register(raw *r) {
    tw_header header = header_make(r, tw_command_register, tw_operation_none, 0, 0);
    raw_send(r, &header, NULL);
}

/* Sends request number `request` (r->request is left alone). */
static void raw_send_request(raw *r, uint64_t request, tw_operation operation, const void *body,
                             uint32_t body_size) {
    tw_header header = header_make(r, tw_command_request, operation, request, body_size);
    raw_send(r, &header, body);
}

static uint64_t raw_send_ping(raw *r) {
    tw_header header = header_make(r, tw_command_ping, tw_operation_none, 0, 0);
    header.session = 0;
    header.timestamp = r->h->ping_timestamp_next++;
    raw_send(r, &header, NULL);
    r->h->sent_pings++;
    return header.timestamp;
}

static void expect_message(raw *r, message *out, const char *what) {
    run_until(r, raw_has_message_or_ended, what);
    if (r->inbox_count == 0) {
        failf("%s: %s: the connection ended (%s) while awaiting %s", r->h->case_name, r->name,
              tw_loop_error_name(r->end_error), what);
    }
    const message *m = &r->inbox[r->inbox_head];
    out->header = m->header;
    memcpy(out->body, m->body, m->header.size - TW_HEADER_SIZE);
    r->inbox_head = (r->inbox_head + 1) % INBOX_MAX;
    r->inbox_count--;
    check_u64(r, what, "client.low", out->header.client.low, r->id.low);
    check_u64(r, what, "client.high", out->header.client.high, r->id.high);
}

static void expect_command(const raw *r, const message *m, tw_command command, const char *what) {
    if (m->header.command == command) return;
    failf("%s: %s: %s: got a %s (operation %s, eviction reason %s), expected a %s", r->h->case_name,
          r->name, what, tw_command_name((tw_command)m->header.command),
          tw_operation_name((tw_operation)m->header.operation),
          tw_eviction_reason_name((tw_eviction_reason)m->header.eviction_reason),
          tw_command_name(command));
}

/* A reply to `request`, committed as `op`. fresh: a newly executed op, whose timestamp
 * must exceed every earlier reply's; else a cached reply (the caller compares). */
static void expect_reply(raw *r, message *out, tw_operation operation, uint64_t request, uint64_t op,
                         bool fresh, const char *what) {
    expect_message(r, out, what);
    expect_command(r, out, tw_command_reply, what);
    check_u64(r, what, "operation", out->header.operation, operation);
    check_u64(r, what, "request", out->header.request, request);
    check_u64(r, what, "op", out->header.op, op);
    check_u64(r, what, "eviction_reason", out->header.eviction_reason, tw_eviction_none);
    if (fresh) {
        if (out->header.timestamp <= r->h->timestamp_last) {
            failf("%s: %s: %s: timestamp %" PRIu64 " does not exceed the last reply's %" PRIu64,
                  r->h->case_name, r->name, what, out->header.timestamp, r->h->timestamp_last);
        }
        r->h->timestamp_last = out->header.timestamp;
    }
}

static void expect_register_reply(raw *r, message *out, uint64_t op, bool fresh, const char *what) {
    expect_reply(r, out, tw_operation_none, 0, op, fresh, what);
    check_u64(r, what, "session", out->header.session, op);
    check_u64(r, what, "batch_size_max", out->header.batch_size_max, MESSAGE_SIZE_MAX - TW_HEADER_SIZE);
    check_u64(r, what, "size", out->header.size, TW_HEADER_SIZE);
}

static void expect_eviction(raw *r, tw_eviction_reason reason, const char *what) {
    message m;
    expect_message(r, &m, what);
    expect_command(r, &m, tw_command_eviction, what);
    if (m.header.eviction_reason != reason) {
        failf("%s: %s: %s: eviction reason %s, expected %s", r->h->case_name, r->name, what,
              tw_eviction_reason_name((tw_eviction_reason)m.header.eviction_reason),
              tw_eviction_reason_name(reason));
    }
    check_u64(r, what, "size", m.header.size, TW_HEADER_SIZE);
    check_u64(r, what, "operation", m.header.operation, tw_operation_none);
}

static void expect_pong(raw *r, uint64_t timestamp, const char *what) {
    message m;
    expect_message(r, &m, what);
    expect_command(r, &m, tw_command_pong, what);
    check_u64(r, what, "pong timestamp", m.header.timestamp, timestamp);
    check_u64(r, what, "size", m.header.size, TW_HEADER_SIZE);
}

/* Nothing is on its way to r: a ping sent now is answered by the very next message. */
static void expect_nothing(raw *r, const char *what) {
    uint64_t timestamp = raw_send_ping(r);
    expect_pong(r, timestamp, what);
}

/* The server closes r's connection, sending nothing first. */
static void expect_closed(raw *r, const char *what) {
    run_until(r, raw_ended, what);
    if (r->inbox_count > 0) {
        const message *m = &r->inbox[r->inbox_head];
        failf("%s: %s: %s: a %s came before the close", r->h->case_name, r->name, what,
              tw_command_name((tw_command)m->header.command));
    }
}

static void raw_register(raw *r, uint64_t op, const char *what) {
    message m;
    raw_send_register(r);
    expect_register_reply(r, &m, op, true, what);
    r->session = op;
    r->request = 0;
}

/* The next request; its reply (fresh) must commit as op. */
static void raw_request(raw *r, tw_operation operation, const void *body, uint32_t body_size,
                        uint64_t op, message *out, const char *what) {
    r->request++;
    raw_send_request(r, r->request, operation, body, body_size);
    expect_reply(r, out, operation, r->request, op, true, what);
}

/* ---- bodies ------------------------------------------------------------------------------ */

typedef struct body {
    uint32_t size;
    uint8_t bytes[BODY_SIZE_MAX];
} body;

static void body_add(body *b, const void *item, uint32_t size) {
    TW_ASSERT(b->size + size <= BODY_SIZE_MAX);
    memcpy(b->bytes + b->size, item, size);
    b->size += size;
}

static tw_account account_make(uint64_t id, uint32_t ledger, uint16_t code) {
    tw_account a;
    memset(&a, 0, sizeof(a));
    a.id = (tw_u128){.low = id, .high = 0};
    a.ledger = ledger;
    a.code = code;
    return a;
}

static tw_transfer transfer_make(uint64_t id, uint64_t debit, uint64_t credit, uint64_t amount,
                                 uint16_t flags) {
    tw_transfer t;
    memset(&t, 0, sizeof(t));
    t.id = (tw_u128){.low = id, .high = 0};
    t.debit_account_id = (tw_u128){.low = debit, .high = 0};
    t.credit_account_id = (tw_u128){.low = credit, .high = 0};
    t.amount = amount;
    t.ledger = 1;
    t.code = 1;
    t.flags = flags;
    return t;
}

static void body_add_account(body *b, uint64_t id, uint32_t ledger, uint16_t code) {
    tw_account a = account_make(id, ledger, code);
    body_add(b, &a, sizeof(a));
}

static void body_add_transfer(body *b, uint64_t id, uint64_t debit, uint64_t credit, uint64_t amount,
                              uint16_t flags) {
    tw_transfer t = transfer_make(id, debit, credit, amount, flags);
    body_add(b, &t, sizeof(t));
}

static void body_add_id(body *b, uint64_t id) {
    tw_u128 value = {.low = id, .high = 0};
    body_add(b, &value, sizeof(value));
}

static uint32_t results_count(const raw *r, const message *m, uint32_t size, const char *what) {
    uint32_t body_size = m->header.size - TW_HEADER_SIZE;
    if (body_size % size != 0) {
        failf("%s: %s: %s: a body of %u bytes is not whole results of %u", r->h->case_name, r->name,
              what, body_size, size);
    }
    return body_size / size;
}

/* The sparse create results of m are exactly expected[0..count). */
static void check_create_results(const raw *r, const message *m, const tw_create_result *expected,
                                 uint32_t count, const char *what) {
    check_u64(r, what, "results", results_count(r, m, sizeof(tw_create_result), what), count);
    for (uint32_t i = 0; i < count; i++) {
        tw_create_result got;
        memcpy(&got, m->body + i * sizeof(got), sizeof(got));
        check_u64(r, what, "result index", got.index, expected[i].index);
        check_u64(r, what, "result code", got.result, expected[i].result);
    }
}

static tw_account account_at(const message *m, uint32_t i) {
    tw_account a;
    memcpy(&a, m->body + i * sizeof(a), sizeof(a));
    return a;
}

static tw_transfer transfer_at(const message *m, uint32_t i) {
    tw_transfer t;
    memcpy(&t, m->body + i * sizeof(t), sizeof(t));
    return t;
}

/* ---- cases: set-up, stop and counters ---------------------------------------------------- */

static tw_server_options options_base(void) {
    return (tw_server_options){.cluster = cluster,
                               .connections_max = 16,
                               .clients_max = 8,
                               .message_size_max = MESSAGE_SIZE_MAX,
                               .release_min = 1,
                               .release_max = 5,
                               .accounts_max = 64,
                               .transfers_max = 64,
                               .backlog = 0};
}

static void case_begin(struct harness *h, const char *name, const tw_server_options *options) {
    const char *problem = tw_server_options_check(options);
    if (problem != NULL) failf("%s: options: %s", name, problem);
    h->case_name = name;
    tw_test_phase(name);
    h->timestamp_last = 0;
    h->sent_well_formed = 0;
    h->sent_pings = 0;
    h->connections = 0;
    h->raws_count = 0;
    tw_test_server_start(&h->server, options);
}

static tw_action deadline_cancel_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)userdata;
    (void)loop;
    (void)c;
    TW_ASSERT(result.error == tw_loop_ok || result.error == tw_loop_not_found);
    return tw_disarm;
}

/* Every client's inbox is empty (nothing unexpected arrived), then every connection is
 * closed, the server stopped and joined. Returns its counters. */
static const tw_server_stats *case_end(struct harness *h) {
    for (uint32_t i = 0; i < h->raws_count; i++) {
        raw *r = &h->raws[i];
        if (r->inbox_count > 0) {
            const message *m = &r->inbox[r->inbox_head];
            failf("%s: %s: an unexpected %s (eviction reason %s) at the end of the case", h->case_name,
                  r->name, tw_command_name((tw_command)m->header.command),
                  tw_eviction_reason_name((tw_eviction_reason)m->header.eviction_reason));
        }
        raw_close(r);
    }
    if (tw_completion_active(&h->c_deadline)) {
        tw_loop_cancel(h->loop, &h->c_deadline_cancel, &h->c_deadline, h, deadline_cancel_cb);
    }
    TW_ASSERT(tw_loop_run(h->loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(tw_loop_active(h->loop) == 0);
    tw_test_server_stop(&h->server);
    return &h->server.stats;
}

typedef struct expected_stats {
    uint64_t registrations;
    uint64_t requests_executed;
    uint64_t retries_answered;
    uint64_t requests_ignored;
    uint64_t op;
    uint64_t sessions; /* held at the end */
    uint64_t sessions_evicted[TW_EVICTION_REASON_COUNT];
    uint64_t evictions_sent[TW_EVICTION_REASON_COUNT];
    uint64_t malformed[tw_proto_error_count];
} expected_stats;

static void check_stat(const struct harness *h, const char *field, uint64_t actual, uint64_t expected) {
    if (actual == expected) return;
    failf("%s: stats.%s is %" PRIu64 ", expected %" PRIu64, h->case_name, field, actual, expected);
}

static void check_stats(const struct harness *h, const tw_server_stats *s, const expected_stats *e) {
    char field[64];
    check_stat(h, "connections_accepted", s->connections_accepted, h->connections);
    check_stat(h, "connections_closed", s->connections_closed, h->connections);
    check_stat(h, "accept_errors", s->accept_errors, 0);
    check_stat(h, "messages_received", s->messages_received, h->sent_well_formed);
    check_stat(h, "pings", s->pings, h->sent_pings);
    check_stat(h, "sends_dropped", s->sends_dropped, 0);
    check_stat(h, "registrations", s->registrations, e->registrations);
    check_stat(h, "requests_executed", s->requests_executed, e->requests_executed);
    check_stat(h, "retries_answered", s->retries_answered, e->retries_answered);
    check_stat(h, "requests_ignored", s->requests_ignored, e->requests_ignored);
    check_stat(h, "op", s->op, e->op);
    check_stat(h, "sessions (tw_server_sessions)", h->server.sessions, e->sessions);
    for (uint32_t i = 0; i < TW_EVICTION_REASON_COUNT; i++) {
        const char *reason = tw_eviction_reason_name((tw_eviction_reason)i);
        (void)snprintf(field, sizeof(field), "sessions_evicted[%s]", reason);
        check_stat(h, field, s->sessions_evicted[i], e->sessions_evicted[i]);
        (void)snprintf(field, sizeof(field), "evictions_sent[%s]", reason);
        check_stat(h, field, s->evictions_sent[i], e->evictions_sent[i]);
    }
    for (uint32_t i = 0; i < tw_proto_error_count; i++) {
        (void)snprintf(field, sizeof(field), "malformed[%s]", tw_proto_error_name((tw_proto_error)i));
        check_stat(h, field, s->malformed[i], e->malformed[i]);
    }
}

/* ---- case 1: registration ------------------------------------------------------------------- */

static void case_registration(struct harness *h) {
    tw_server_options options = options_base();
    options.clients_max = 4;
    case_begin(h, "registration", &options);
    raw *a = raw_new(h, "A");
    raw *b = raw_new(h, "B");
    raw *c = raw_new(h, "C");
    message first;
    message again;
    message m;
    body ids = {0};
    body_add_id(&ids, 1);

    /* The first register commits op 1 and gets session 1. */
    raw_send_register(a);
    expect_register_reply(a, &first, 1, true, "A's register: session 1, op 1");
    a->session = 1;
    /* A retry before any request: the same reply, not a new session. */
    raw_send_register(a);
    expect_register_reply(a, &again, 1, false, "A's register retry: the cached reply");
    check_u64(a, "A's register retry", "timestamp", again.header.timestamp, first.header.timestamp);
    raw_register(b, 2, "B's register: session 2, op 2");
    raw_request(a, tw_operation_lookup_accounts, ids.bytes, ids.size, 3, &m, "A's request 1");
    check_u64(a, "A's request 1", "size", m.header.size, TW_HEADER_SIZE);
    /* A register after a request is an older request (0 < 1), as a delayed duplicate on an
     * abandoned connection would be: ignored, and the session keeps going. */
    raw_send_register(a);
    expect_nothing(a, "the pong after A's register after a request (ignored)");
    raw_request(a, tw_operation_lookup_accounts, ids.bytes, ids.size, 4, &m, "A's request 2");
    /* B is untouched. */
    raw_request(b, tw_operation_lookup_accounts, ids.bytes, ids.size, 5, &m, "B's request 1");
    /* A register with request number 1 is a protocol violation: A's session is evicted,
     * and the evicted table answers its next request. */
    tw_header numbered = header_make(a, tw_command_register, tw_operation_none, 1, 0);
    raw_send(a, &numbered, NULL);
    expect_eviction(a, tw_eviction_protocol_violation, "the eviction for A's register numbered 1");
    raw_send_request(a, 3, tw_operation_lookup_accounts, ids.bytes, ids.size);
    expect_eviction(a, tw_eviction_protocol_violation, "the eviction answering A's request 3");
    /* A register with a body is a protocol violation; no session is created. */
    tw_header header = header_make(c, tw_command_register, tw_operation_none, 0, ids.size);
    raw_send(c, &header, ids.bytes);
    expect_eviction(c, tw_eviction_protocol_violation, "the eviction for C's register with a body");
    /* C's proper register then creates a session, with the next op. */
    raw_register(c, 6, "C's proper register: session 6, op 6");

    const tw_server_stats *stats = case_end(h);
    expected_stats e = {.registrations = 3,
                        .requests_executed = 3,
                        .retries_answered = 1,
                        .requests_ignored = 1,
                        .op = 6,
                        .sessions = 2};
    e.sessions_evicted[tw_eviction_protocol_violation] = 1;
    e.evictions_sent[tw_eviction_protocol_violation] = 3;
    check_stats(h, stats, &e);
}

/* ---- case 2: LRU eviction and the evicted table ------------------------------------------- */

static void case_eviction(struct harness *h) {
    tw_server_options options = options_base();
    options.clients_max = 3;
    case_begin(h, "eviction", &options);
    raw *a = raw_new(h, "A");
    raw *b = raw_new(h, "B");
    raw *c = raw_new(h, "C");
    raw *d = raw_new(h, "D");
    raw *e = raw_new(h, "E");
    raw *f = raw_new(h, "F");
    raw *g = raw_new(h, "G");
    raw *k = raw_new(h, "K");
    message m;
    body ids = {0};
    body_add_id(&ids, 1);

    raw_register(a, 1, "A's register");
    raw_register(b, 2, "B's register");
    raw_register(c, 3, "C's register");
    /* B's request makes A the least recently used. */
    raw_request(b, tw_operation_lookup_accounts, ids.bytes, ids.size, 4, &m, "B's request 1");
    raw_register(d, 5, "D's register (evicts A)");
    expect_eviction(a, tw_eviction_too_many_clients, "A's eviction at once, on its open connection");
    raw_register(e, 6, "E's register (evicts C, not B)");
    expect_eviction(c, tw_eviction_too_many_clients, "C's eviction at once");
    /* B still has its session. */
    raw_request(b, tw_operation_lookup_accounts, ids.bytes, ids.size, 7, &m, "B's request 2");
    /* A speaks again: the evicted table has its reason. */
    raw_send_request(a, 1, tw_operation_lookup_accounts, ids.bytes, ids.size);
    expect_eviction(a, tw_eviction_too_many_clients, "the eviction answering A's request 1");
    /* A ping from an evicted client gets a pong and the eviction (either order). */
    uint64_t timestamp = raw_send_ping(a);
    message first;
    message second;
    expect_message(a, &first, "the first answer to A's ping");
    expect_message(a, &second, "the second answer to A's ping");
    const message *pong = first.header.command == tw_command_pong ? &first : &second;
    const message *eviction = first.header.command == tw_command_pong ? &second : &first;
    expect_command(a, pong, tw_command_pong, "A's ping: a pong");
    check_u64(a, "A's ping", "pong timestamp", pong->header.timestamp, timestamp);
    expect_command(a, eviction, tw_command_eviction, "A's ping: its eviction");
    check_u64(a, "A's ping", "eviction reason", eviction->header.eviction_reason, tw_eviction_too_many_clients);
    /* A client that never registered: no_session; its pings get pongs only. */
    raw_send_request(f, 1, tw_operation_lookup_accounts, ids.bytes, ids.size);
    expect_eviction(f, tw_eviction_no_session, "the eviction answering F's request (never registered)");
    expect_nothing(f, "F's first ping: a pong only");
    expect_nothing(f, "F's second ping: a pong only");
    /* LRU now: D (5), E (6), B (7). Two more registers evict D then E; the evicted table
     * (clients_max = 3 entries) then holds C, D, E: A, evicted first, is forgotten. */
    raw_register(g, 8, "G's register (evicts D)");
    expect_eviction(d, tw_eviction_too_many_clients, "D's eviction at once");
    raw_register(k, 9, "K's register (evicts E)");
    expect_eviction(e, tw_eviction_too_many_clients, "E's eviction at once");
    raw_send_request(a, 1, tw_operation_lookup_accounts, ids.bytes, ids.size);
    expect_eviction(a, tw_eviction_no_session, "A's request once forgotten by the evicted table");
    raw_send_request(c, 1, tw_operation_lookup_accounts, ids.bytes, ids.size);
    expect_eviction(c, tw_eviction_too_many_clients, "C's request (still in the evicted table)");
    /* The survivors work. */
    raw_request(b, tw_operation_lookup_accounts, ids.bytes, ids.size, 10, &m, "B's request 3");
    raw_request(g, tw_operation_lookup_accounts, ids.bytes, ids.size, 11, &m, "G's request 1");

    const tw_server_stats *stats = case_end(h);
    expected_stats x = {.registrations = 7, .requests_executed = 4, .op = 11, .sessions = 3};
    x.sessions_evicted[tw_eviction_too_many_clients] = 4;
    /* At once: A, C, D, E; answers: A's request, A's ping, C's request. */
    x.evictions_sent[tw_eviction_too_many_clients] = 7;
    x.evictions_sent[tw_eviction_no_session] = 2;
    check_stats(h, stats, &x);
}

/* A late duplicate on a connection the client gave up on is ignored, and the session is
 * still reached where the client moved: an eviction after it goes to the new connection. */
static void case_late_duplicate(struct harness *h) {
    tw_server_options options = options_base();
    options.clients_max = 2;
    case_begin(h, "late duplicate", &options);
    raw *a = raw_new(h, "A");
    raw *b = raw_new(h, "B");
    raw *c = raw_new(h, "C");
    message m;
    body ids = {0};
    body_add_id(&ids, 1);

    raw_register(a, 1, "A's register");
    raw_request(a, tw_operation_lookup_accounts, ids.bytes, ids.size, 2, &m, "A's request 1");
    /* A gives up on its connection and goes on, as the same client, on a new one. */
    raw *moved = raw_new(h, "A (moved)");
    moved->id = a->id;
    moved->session = a->session;
    moved->request = a->request;
    raw_request(moved, tw_operation_lookup_accounts, ids.bytes, ids.size, 3, &m, "A's request 2 (moved)");
    /* Request 1 arrives late on the old connection: older than the last, ignored. A ping
     * behind it on that connection, from a client the server does not know (a ping from A
     * would move A's session there), shows it has been handled: only the pong comes. */
    raw_send_request(a, 1, tw_operation_lookup_accounts, ids.bytes, ids.size);
    tw_u128 a_id = a->id;
    a->id = (tw_u128){.low = 0xC1FFF, .high = 0x7E57};
    expect_nothing(a, "the pong after A's late request 1 (ignored)");
    a->id = a_id;
    raw_register(b, 4, "B's register");
    raw_register(c, 5, "C's register (evicts A, the least recently used)");
    expect_eviction(moved, tw_eviction_too_many_clients,
                    "A's eviction at once, on the connection it moved to, not the late one's");

    const tw_server_stats *stats = case_end(h);
    expected_stats x = {.registrations = 3, .requests_executed = 2, .requests_ignored = 1, .op = 5,
                        .sessions = 2};
    x.sessions_evicted[tw_eviction_too_many_clients] = 1;
    x.evictions_sent[tw_eviction_too_many_clients] = 1;
    check_stats(h, stats, &x);
}

/* The evicted table holds clients_max entries: a client that registers again leaves it,
 * and that room must not cost another client its entry. */
static void case_evicted_table(struct harness *h) {
    tw_server_options options = options_base();
    options.clients_max = 3;
    case_begin(h, "evicted_table", &options);
    raw *a = raw_new(h, "A");
    raw *b = raw_new(h, "B");
    raw *c = raw_new(h, "C");
    raw *d = raw_new(h, "D");
    raw *e = raw_new(h, "E");
    raw *f = raw_new(h, "F");
    message m;
    body ids = {0};
    body_add_id(&ids, 1);

    raw_register(a, 1, "A's register");
    raw_register(b, 2, "B's register");
    raw_register(c, 3, "C's register");
    raw_register(d, 4, "D's register (evicts A)");
    expect_eviction(a, tw_eviction_too_many_clients, "A's eviction at once");
    raw_register(e, 5, "E's register (evicts B)");
    expect_eviction(b, tw_eviction_too_many_clients, "B's eviction at once");
    /* The evicted table: A, B. B registers again (leaving it) and evicts C: A, C. */
    raw_register(b, 6, "B's new register (evicts C)");
    expect_eviction(c, tw_eviction_too_many_clients, "C's eviction at once");
    /* F evicts D: the table holds A, C, D, three entries, clients_max: none is forgotten. */
    raw_register(f, 7, "F's register (evicts D)");
    expect_eviction(d, tw_eviction_too_many_clients, "D's eviction at once");
    raw_send_request(a, 1, tw_operation_lookup_accounts, ids.bytes, ids.size);
    expect_eviction(a, tw_eviction_too_many_clients,
                    "the eviction answering A's request (A, C, D fill the table of 3, no more)");
    raw_send_request(c, 1, tw_operation_lookup_accounts, ids.bytes, ids.size);
    expect_eviction(c, tw_eviction_too_many_clients, "the eviction answering C's request");
    raw_send_request(d, 1, tw_operation_lookup_accounts, ids.bytes, ids.size);
    expect_eviction(d, tw_eviction_too_many_clients, "the eviction answering D's request");
    raw_request(b, tw_operation_lookup_accounts, ids.bytes, ids.size, 8, &m, "B's request 1 in its new session");

    const tw_server_stats *stats = case_end(h);
    expected_stats x = {.registrations = 7, .requests_executed = 1, .op = 8, .sessions = 3};
    x.sessions_evicted[tw_eviction_too_many_clients] = 4;
    x.evictions_sent[tw_eviction_too_many_clients] = 7;
    check_stats(h, stats, &x);
}

/* ---- case 3: the release range ------------------------------------------------------------- */

static void case_release(struct harness *h) {
    tw_server_options options = options_base();
    options.clients_max = 4;
    options.release_min = 2;
    options.release_max = 5;
    case_begin(h, "release", &options);
    raw *low = raw_new(h, "L");
    raw *high = raw_new(h, "H");
    raw *r = raw_new(h, "R");
    message m;
    body ids = {0};
    body_add_id(&ids, 1);

    low->release = 1;
    raw_send_register(low);
    expect_eviction(low, tw_eviction_client_release_too_low, "L's register with release 1");
    high->release = 6;
    raw_send_register(high);
    expect_eviction(high, tw_eviction_client_release_too_high, "H's register with release 6");
    raw_register(r, 1, "R's register with release 3");
    raw_request(r, tw_operation_lookup_accounts, ids.bytes, ids.size, 2, &m, "R's request 1");
    /* A request with release 9: too high, and R's session is evicted... */
    r->release = 9;
    raw_send_request(r, 2, tw_operation_lookup_accounts, ids.bytes, ids.size);
    expect_eviction(r, tw_eviction_client_release_too_high, "R's request 2 with release 9");
    /* ...so its proper request 2 hears the reason from the evicted table. */
    r->release = 3;
    raw_send_request(r, 2, tw_operation_lookup_accounts, ids.bytes, ids.size);
    expect_eviction(r, tw_eviction_client_release_too_high, "R's proper request 2 after its eviction");
    /* The bounds are inclusive. */
    low->release = 2;
    raw_register(low, 3, "L's register with release 2 (release_min)");
    high->release = 5;
    raw_register(high, 4, "H's register with release 5 (release_max)");
    raw_request(high, tw_operation_lookup_accounts, ids.bytes, ids.size, 5, &m, "H's request 1");
    /* R registers anew: a new session, whose requests start again at 1. */
    raw_register(r, 6, "R's new register");
    raw_request(r, tw_operation_lookup_accounts, ids.bytes, ids.size, 7, &m, "R's request 1 in its new session");

    const tw_server_stats *stats = case_end(h);
    expected_stats e = {.registrations = 4, .requests_executed = 3, .op = 7, .sessions = 3};
    e.sessions_evicted[tw_eviction_client_release_too_high] = 1;
    e.evictions_sent[tw_eviction_client_release_too_low] = 1;
    e.evictions_sent[tw_eviction_client_release_too_high] = 3;
    check_stats(h, stats, &e);
}

/* ---- case 4: exactly-once ---------------------------------------------------------------- */

static void case_exactly_once(struct harness *h) {
    tw_server_options options = options_base();
    options.clients_max = 8;
    case_begin(h, "exactly_once", &options);
    raw *x = raw_new(h, "X");
    raw *y = raw_new(h, "Y");
    raw *z = raw_new(h, "Z");
    raw *w = raw_new(h, "W");
    raw *v = raw_new(h, "V");
    raw *u = raw_new(h, "U");
    raw *q = raw_new(h, "Q");
    message first;
    message again;
    message m;
    body create_100 = {0};
    body_add_account(&create_100, 100, 1, 1);
    body lookup_100 = {0};
    body_add_id(&lookup_100, 100);

    raw_register(x, 1, "X's register");
    raw_request(x, tw_operation_create_accounts, create_100.bytes, create_100.size, 2, &first,
                "X's request 1: create account 100");
    check_u64(x, "X's request 1", "size (no failed events)", first.header.size, TW_HEADER_SIZE);
    /* The retry: the identical cached reply, not a second execution (which would have
     * answered `exists` under a new op). */
    raw_send_request(x, 1, tw_operation_create_accounts, create_100.bytes, create_100.size);
    expect_reply(x, &again, tw_operation_create_accounts, 1, 2, false, "the retry of X's request 1");
    check_u64(x, "the retry of X's request 1", "timestamp", again.header.timestamp, first.header.timestamp);
    check_u64(x, "the retry of X's request 1", "size", again.header.size, first.header.size);
    check_u64(x, "the retry of X's request 1", "checksum_body.low", again.header.checksum_body.low,
              first.header.checksum_body.low);
    /* The next request gets the next op: the retry spent none. */
    raw_request(x, tw_operation_lookup_accounts, lookup_100.bytes, lookup_100.size, 3, &first,
                "X's request 2: look up account 100");
    check_u64(x, "X's request 2", "accounts", results_count(x, &first, sizeof(tw_account), "X's request 2"), 1);
    tw_account account = account_at(&first, 0);
    check_u64(x, "X's request 2", "account id", account.id.low, 100);
    if (account.timestamp == 0) failf("exactly_once: X: account 100 has no timestamp");
    /* An older request is ignored: no reply comes before the pong. */
    raw_send_request(x, 1, tw_operation_create_accounts, create_100.bytes, create_100.size);
    expect_nothing(x, "the pong after X's old request 1 (ignored)");
    /* The retry of request 2 (a lookup): the cached reply, body and all. */
    raw_send_request(x, 2, tw_operation_lookup_accounts, lookup_100.bytes, lookup_100.size);
    expect_reply(x, &again, tw_operation_lookup_accounts, 2, 3, false, "the retry of X's request 2");
    check_u64(x, "the retry of X's request 2", "timestamp", again.header.timestamp, first.header.timestamp);
    check_u64(x, "the retry of X's request 2", "size", again.header.size, first.header.size);
    if (memcmp(again.body, first.body, first.header.size - TW_HEADER_SIZE) != 0) {
        failf("exactly_once: X: the retry of request 2 has another body");
    }
    /* Skipping ahead (4 after 2) is a protocol violation. */
    raw_send_request(x, 4, tw_operation_lookup_accounts, lookup_100.bytes, lookup_100.size);
    expect_eviction(x, tw_eviction_protocol_violation, "X's request 4 (skips 3)");
    raw_send_request(x, 3, tw_operation_lookup_accounts, lookup_100.bytes, lookup_100.size);
    expect_eviction(x, tw_eviction_protocol_violation, "X's request 3 after its eviction");

    /* A retry with another body. */
    body create_101 = {0};
    body_add_account(&create_101, 101, 1, 1);
    body create_102 = {0};
    body_add_account(&create_102, 102, 1, 1);
    raw_register(y, 4, "Y's register");
    raw_request(y, tw_operation_create_accounts, create_101.bytes, create_101.size, 5, &m,
                "Y's request 1: create account 101");
    check_u64(y, "Y's request 1", "size", m.header.size, TW_HEADER_SIZE);
    raw_send_request(y, 1, tw_operation_create_accounts, create_102.bytes, create_102.size);
    expect_eviction(y, tw_eviction_protocol_violation, "Y's retry of request 1 with another body");

    /* Another session number. */
    raw_register(z, 6, "Z's register");
    z->session += 1000;
    raw_send_request(z, 1, tw_operation_lookup_accounts, lookup_100.bytes, lookup_100.size);
    expect_eviction(z, tw_eviction_protocol_violation, "Z's request with a session not its own");

    /* A body that is not whole events: account 104 and one byte more. */
    body create_104_and_a_byte = {0};
    body_add_account(&create_104_and_a_byte, 104, 1, 1);
    uint8_t extra = 0;
    body_add(&create_104_and_a_byte, &extra, 1);
    raw_register(w, 7, "W's register");
    raw_send_request(w, 1, tw_operation_create_accounts, create_104_and_a_byte.bytes, create_104_and_a_byte.size);
    expect_eviction(w, tw_eviction_protocol_violation, "W's create_accounts of 65 bytes");

    /* One event more than tw_operation_events_max (a lookup: its results bound it). */
    uint32_t events_max = tw_operation_events_max(tw_operation_lookup_accounts, MESSAGE_SIZE_MAX);
    check_u64(v, "events_max", "tw_operation_events_max(lookup_accounts, 4096)", events_max,
              (MESSAGE_SIZE_MAX - TW_HEADER_SIZE) / sizeof(tw_account));
    body lookup_too_many = {0};
    for (uint32_t i = 0; i <= events_max; i++) body_add_id(&lookup_too_many, 100 + i);
    raw_register(v, 8, "V's register");
    raw_send_request(v, 1, tw_operation_lookup_accounts, lookup_too_many.bytes, lookup_too_many.size);
    expect_eviction(v, tw_eviction_protocol_violation, "V's lookup of events_max + 1 ids");

    /* Exactly events_max is taken. */
    body lookup_max = {0};
    for (uint32_t i = 0; i < events_max; i++) body_add_id(&lookup_max, 100 + i);
    raw_register(u, 9, "U's register");
    raw_request(u, tw_operation_lookup_accounts, lookup_max.bytes, lookup_max.size, 10, &m,
                "U's lookup of events_max ids");
    check_u64(u, "U's lookup", "accounts (100 and 101)", results_count(u, &m, sizeof(tw_account), "U's lookup"), 2);
    check_u64(u, "U's lookup", "first id", account_at(&m, 0).id.low, 100);
    check_u64(u, "U's lookup", "second id", account_at(&m, 1).id.low, 101);
    body create_103 = {0};
    body_add_account(&create_103, 103, 1, 1);
    raw_request(u, tw_operation_create_accounts, create_103.bytes, create_103.size, 11, &m,
                "U's request 2: create account 103");
    check_u64(u, "U's request 2", "size", m.header.size, TW_HEADER_SIZE);
    /* A register after requests is an older request (a delayed duplicate): ignored. */
    raw_send_register(u);
    expect_nothing(u, "the pong after U's register after its requests (ignored)");

    /* What was executed, through a new client: 100, 101 and 103; not 102 (Y's other body)
     * nor 104 (W's broken body). */
    body lookup_all = {0};
    for (uint64_t id = 100; id <= 104; id++) body_add_id(&lookup_all, id);
    raw_register(q, 12, "Q's register");
    raw_request(q, tw_operation_lookup_accounts, lookup_all.bytes, lookup_all.size, 13, &m,
                "Q's lookup of accounts 100..104");
    check_u64(q, "Q's lookup", "accounts", results_count(q, &m, sizeof(tw_account), "Q's lookup"), 3);
    check_u64(q, "Q's lookup", "first id", account_at(&m, 0).id.low, 100);
    check_u64(q, "Q's lookup", "second id", account_at(&m, 1).id.low, 101);
    check_u64(q, "Q's lookup", "third id", account_at(&m, 2).id.low, 103);

    const tw_server_stats *stats = case_end(h);
    expected_stats e = {.registrations = 7,
                        .requests_executed = 6,
                        .retries_answered = 2,
                        .requests_ignored = 2,
                        .op = 13,
                        .sessions = 2};
    e.sessions_evicted[tw_eviction_protocol_violation] = 5;
    e.evictions_sent[tw_eviction_protocol_violation] = 6;
    check_stats(h, stats, &e);
}

/* ---- case 5: the ledger over the wire ----------------------------------------------------- */

static void case_ledger(struct harness *h) {
    tw_server_options options = options_base();
    options.clients_max = 2;
    options.accounts_max = 16;
    options.transfers_max = 16;
    case_begin(h, "ledger", &options);
    raw *k = raw_new(h, "K");
    message m;

    raw_register(k, 1, "K's register");
    body accounts = {0};
    body_add_account(&accounts, 1, 1, 1);
    body_add_account(&accounts, 2, 1, 1);
    body_add_account(&accounts, 3, 1, 1);
    body_add_account(&accounts, 4, 2, 1); /* another ledger */
    body_add_account(&accounts, 1, 1, 1); /* exists */
    body_add_account(&accounts, 5, 1, 0); /* code 0 */
    raw_request(k, tw_operation_create_accounts, accounts.bytes, accounts.size, 2, &m, "create accounts 1..5");
    const tw_create_result accounts_results[] = {{4, tw_create_account_exists},
                                                 {5, tw_create_account_code_must_not_be_zero}};
    check_create_results(k, &m, accounts_results, 2, "create accounts 1..5");

    body transfers = {0};
    body_add_transfer(&transfers, 1001, 1, 2, 10, 0);
    body_add_transfer(&transfers, 1002, 2, 3, 5, tw_transfer_linked);
    body_add_transfer(&transfers, 1003, 1, 3, 7, tw_transfer_linked);
    body_add_transfer(&transfers, 1004, 1, 4, 3, 0); /* ends the chain, and breaks it */
    body_add_transfer(&transfers, 1005, 3, 1, 2, 0);
    raw_request(k, tw_operation_create_transfers, transfers.bytes, transfers.size, 3, &m,
                "create transfers 1001..1005 (a failing chain)");
    const tw_create_result transfers_results[] = {
        {1, tw_create_transfer_linked_event_failed},
        {2, tw_create_transfer_linked_event_failed},
        {3, tw_create_transfer_accounts_must_have_the_same_ledger}};
    check_create_results(k, &m, transfers_results, 3, "create transfers 1001..1005");

    body more = {0};
    body_add_transfer(&more, 1001, 1, 2, 10, 0);                  /* exists */
    body_add_transfer(&more, 1006, 1, 2, 1, tw_transfer_linked);  /* a chain left open */
    raw_request(k, tw_operation_create_transfers, more.bytes, more.size, 4, &m,
                "create transfers 1001 again and an open chain");
    const tw_create_result more_results[] = {{0, tw_create_transfer_exists},
                                             {1, tw_create_transfer_linked_event_chain_open}};
    check_create_results(k, &m, more_results, 2, "create transfers 1001 again and an open chain");

    body account_ids = {0};
    const uint64_t account_lookup[] = {1, 2, 3, 4, 5, 99};
    for (uint32_t i = 0; i < 6; i++) body_add_id(&account_ids, account_lookup[i]);
    raw_request(k, tw_operation_lookup_accounts, account_ids.bytes, account_ids.size, 5, &m, "look up accounts");
    check_u64(k, "look up accounts", "accounts", results_count(k, &m, sizeof(tw_account), "look up accounts"), 4);
    /* id, ledger, debits, credits */
    const uint64_t expected_accounts[4][4] = {{1, 1, 10, 2}, {2, 1, 0, 10}, {3, 1, 2, 0}, {4, 2, 0, 0}};
    uint64_t timestamp_previous = 0;
    for (uint32_t i = 0; i < 4; i++) {
        tw_account a = account_at(&m, i);
        check_u64(k, "look up accounts", "id", a.id.low, expected_accounts[i][0]);
        check_u64(k, "look up accounts", "id.high", a.id.high, 0);
        check_u64(k, "look up accounts", "ledger", a.ledger, expected_accounts[i][1]);
        check_u64(k, "look up accounts", "code", a.code, 1);
        check_u64(k, "look up accounts", "debits_posted", a.debits_posted, expected_accounts[i][2]);
        check_u64(k, "look up accounts", "credits_posted", a.credits_posted, expected_accounts[i][3]);
        if (a.timestamp <= timestamp_previous) failf("ledger: account %u's timestamp does not increase", i + 1);
        timestamp_previous = a.timestamp;
    }

    body transfer_ids = {0};
    const uint64_t transfer_lookup[] = {1001, 1002, 1005, 1006};
    for (uint32_t i = 0; i < 4; i++) body_add_id(&transfer_ids, transfer_lookup[i]);
    raw_request(k, tw_operation_lookup_transfers, transfer_ids.bytes, transfer_ids.size, 6, &m, "look up transfers");
    check_u64(k, "look up transfers", "transfers", results_count(k, &m, sizeof(tw_transfer), "look up transfers"), 2);
    /* id, debit, credit, amount */
    const uint64_t expected_transfers[2][4] = {{1001, 1, 2, 10}, {1005, 3, 1, 2}};
    for (uint32_t i = 0; i < 2; i++) {
        tw_transfer t = transfer_at(&m, i);
        check_u64(k, "look up transfers", "id", t.id.low, expected_transfers[i][0]);
        check_u64(k, "look up transfers", "debit_account_id", t.debit_account_id.low, expected_transfers[i][1]);
        check_u64(k, "look up transfers", "credit_account_id", t.credit_account_id.low, expected_transfers[i][2]);
        check_u64(k, "look up transfers", "amount", t.amount, expected_transfers[i][3]);
        check_u64(k, "look up transfers", "flags", t.flags, 0);
        if (t.timestamp <= timestamp_previous) failf("ledger: transfer %u's timestamp does not increase", i + 1);
        timestamp_previous = t.timestamp;
    }

    body echo = {0};
    for (uint32_t i = 0; i < 100; i++) {
        uint8_t byte = (uint8_t)(i * 7u + 1u);
        body_add(&echo, &byte, 1);
    }
    raw_request(k, tw_operation_echo, echo.bytes, echo.size, 7, &m, "echo of 100 bytes");
    check_u64(k, "echo", "size", m.header.size, TW_HEADER_SIZE + echo.size);
    if (memcmp(m.body, echo.bytes, echo.size) != 0) failf("ledger: the echo came back changed");

    k->h->ping_timestamp_next = 0x0123456789abcdefull;
    expect_nothing(k, "K's ping (timestamp 0x0123456789abcdef)");

    const tw_server_stats *stats = case_end(h);
    expected_stats e = {.registrations = 1, .requests_executed = 6, .op = 7, .sessions = 1};
    check_stats(h, stats, &e);
}

/* ---- case 6: malformed input ------------------------------------------------------------- */

typedef enum variant {
    variant_header_checksum,
    variant_body_checksum,
    variant_size_below_header,
    variant_size_above_max,
    variant_command_none,
    variant_command_7,
    variant_request_operation_none,
    variant_operation_6,
    variant_cluster_high,
    variant_reserved_byte,
    variant_reserved_last,
    variant_command_reply,
    variant_command_eviction,
    variant_command_pong,
    variant_count,
} variant;

static tw_proto_error variant_class(variant v) {
    switch (v) {
    case variant_header_checksum: return tw_proto_bad_header_checksum;
    case variant_body_checksum: return tw_proto_bad_body_checksum;
    case variant_size_below_header: return tw_proto_size_below_header;
    case variant_size_above_max: return tw_proto_size_above_max;
    case variant_command_none:
    case variant_command_7: return tw_proto_unknown_command;
    case variant_request_operation_none:
    case variant_operation_6: return tw_proto_unknown_operation;
    case variant_cluster_high: return tw_proto_wrong_cluster;
    case variant_reserved_byte:
    case variant_reserved_last: return tw_proto_reserved_not_zero;
    case variant_command_reply:
    case variant_command_eviction:
    case variant_command_pong: return tw_proto_unexpected_command;
    case variant_count: break;
    }
    return tw_proto_ok;
}

static const char *const variant_names[variant_count] = {
    "bad header checksum", "bad body checksum", "size 64", "size 4160", "command 0",
    "command 7", "request with operation none", "operation 6", "cluster {7, 1}",
    "reserved_byte 1", "reserved[15] 1", "a reply", "an eviction", "a pong"};

/* Request 1 of m's session, a create_accounts of account `id` that would create it if it
 * were accepted, broken as v says. Returns the bytes to send. */
static uint32_t malformed_build(const raw *m, variant v, uint64_t id, uint8_t *bytes) {
    body b = {0};
    body_add_account(&b, id, 1, 1);
    tw_header header = header_make(m, tw_command_request, tw_operation_create_accounts, 1, b.size);
    tw_header_seal(&header, b.bytes);
    uint32_t size = header.size;
    switch (v) {
    case variant_header_checksum: header.checksum.low ^= 1; break;
    case variant_body_checksum:
        b.bytes[offsetof(tw_account, flags)] ^= tw_account_debits_must_not_exceed_credits; /* still valid */
        break;
    case variant_size_below_header:
        header.size = 64;
        size = TW_HEADER_SIZE; /* just the header */
        break;
    case variant_size_above_max: header.size = MESSAGE_SIZE_MAX + b.size; break;
    case variant_command_none: header.command = tw_command_none; break;
    case variant_command_7: header.command = 7; break;
    case variant_request_operation_none: header.operation = tw_operation_none; break;
    case variant_operation_6: header.operation = 6; break;
    case variant_cluster_high: header.cluster.high = 1; break;
    case variant_reserved_byte: header.reserved_byte = 1; break;
    case variant_reserved_last: header.reserved[15] = 1; break;
    case variant_command_reply: header.command = tw_command_reply; break;
    case variant_command_eviction:
        header.command = tw_command_eviction;
        header.operation = tw_operation_none;
        header.eviction_reason = tw_eviction_protocol_violation;
        break;
    case variant_command_pong:
        header.command = tw_command_pong;
        header.operation = tw_operation_none;
        break;
    case variant_count: TW_ASSERT(false);
    }
    if (v != variant_header_checksum && v != variant_body_checksum) tw_header_seal_header(&header);
    if (v != variant_header_checksum && v != variant_size_below_header && v != variant_body_checksum) {
        /* Each variant must be malformed in exactly its own way. */
        tw_proto_error error = tw_header_check(&header, cluster, MESSAGE_SIZE_MAX);
        TW_ASSERT(error == (variant_class(v) == tw_proto_unexpected_command ? tw_proto_ok : variant_class(v)));
    }
    message_bytes(&header, b.bytes, b.size, bytes);
    return size;
}

/* After m's connection was closed for malformed input: the account it would have created
 * does not exist and the op did not move (G's lookup commits the next op); m's session
 * survived with request 1 unspent (m, reconnected, sends the good request 1, which
 * creates the account). Returns the last op. */
static uint64_t malformed_aftermath(raw *g, raw *m, uint64_t id, uint64_t op, const char *name) {
    message reply;
    body lookup = {0};
    body_add_id(&lookup, id);
    raw_request(g, tw_operation_lookup_accounts, lookup.bytes, lookup.size, op + 1, &reply, name);
    check_u64(g, name, "accounts found (none: nothing executed)", results_count(g, &reply, sizeof(tw_account), name), 0);
    raw_close(m);
    raw_connect(m);
    body create = {0};
    body_add_account(&create, id, 1, 1);
    raw_request(m, tw_operation_create_accounts, create.bytes, create.size, op + 2, &reply, name);
    check_u64(m, name, "size (the account created)", reply.header.size, TW_HEADER_SIZE);
    raw_request(g, tw_operation_lookup_accounts, lookup.bytes, lookup.size, op + 3, &reply, name);
    check_u64(g, name, "accounts found (the good request 1)", results_count(g, &reply, sizeof(tw_account), name), 1);
    raw_close(m);
    return op + 3;
}

static void case_malformed(struct harness *h) {
    tw_server_options options = options_base();
    options.clients_max = 32;
    options.connections_max = 8;
    case_begin(h, "malformed", &options);
    raw *g = raw_new(h, "G");
    raw_register(g, 1, "G's register");
    uint64_t op = 1;
    expected_stats e = {0};
    uint8_t bytes[MESSAGE_SIZE_MAX];

    for (uint32_t i = 0; i < variant_count; i++) {
        variant v = (variant)i;
        uint64_t id = 200 + i;
        raw *m = raw_new(h, variant_names[v]);
        raw_register(m, op + 1, "the register before the malformed message");
        op++;
        uint32_t size = malformed_build(m, v, id, bytes);
        raw_send_bytes(m, bytes, size);
        expect_closed(m, "the close after the malformed message");
        op = malformed_aftermath(g, m, id, op, variant_names[v]);
        e.malformed[variant_class(v)]++;
        /* Reuse the slot: one connection at a time. */
        h->raws_count--;
    }

    /* A register and a malformed message in one write: the register is handled (its reply
     * may or may not come before the close), the rest is not. */
    {
        uint64_t id = 299;
        raw *m = raw_new(h, "register + bad header checksum");
        uint8_t both[2 * MESSAGE_SIZE_MAX];
        tw_header header = header_make(m, tw_command_register, tw_operation_none, 0, 0);
        tw_header_seal(&header, NULL);
        memcpy(both, &header, TW_HEADER_SIZE);
        m->session = op + 1; /* what the register commits */
        uint32_t size = malformed_build(m, variant_header_checksum, id, both + TW_HEADER_SIZE);
        raw_send_bytes(m, both, TW_HEADER_SIZE + size);
        h->sent_well_formed++; /* the register */
        run_until(m, raw_ended, "the close after a register and a malformed message");
        if (m->inbox_count > 0) {
            message reply;
            expect_register_reply(m, &reply, op + 1, true, "the register before a malformed message");
        }
        op = malformed_aftermath(g, m, id, op + 1, "register + bad header checksum");
        e.malformed[tw_proto_bad_header_checksum]++;
        h->raws_count--;
    }

    const tw_server_stats *stats = case_end(h);
    e.registrations = variant_count + 2;
    e.requests_executed = 3 * (variant_count + 1);
    e.op = op;
    e.sessions = variant_count + 2;
    check_stats(h, stats, &e);
}

/* ---- case 7: connections_max --------------------------------------------------------------- */

static bool raw_has_message(const raw *r) { return r->inbox_count > 0; }

static void case_connections(struct harness *h) {
    tw_server_options options = options_base();
    options.connections_max = 2;
    case_begin(h, "connections", &options);
    raw *c1 = raw_new(h, "C1");
    raw *c2 = raw_new(h, "C2");
    raw_register(c1, 1, "C1's register");
    raw_register(c2, 2, "C2's register");
    /* The third connection waits in the backlog: its register is not read. */
    raw *c3 = raw_new(h, "C3");
    raw_send_register(c3);
    TW_ASSERT(tw_loop_run_for(h->loop, BACKLOG_WAIT_NS) == tw_loop_ok);
    expect_nothing(c2, "C2's ping while C3 waits");
    if (raw_has_message(c3) || c3->ended) failf("connections: C3 was answered while 2 connections were open");
    /* One closes: the third is accepted and its register answered. */
    raw_close(c1);
    message m;
    expect_register_reply(c3, &m, 3, true, "C3's register, once C1 closed");

    const tw_server_stats *stats = case_end(h);
    expected_stats e = {.registrations = 3, .op = 3, .sessions = 3};
    check_stats(h, stats, &e);
}

/* ---- case 8: idle connections reclaimed for a waiting one ------------------------------------ */

static void case_reclaim(struct harness *h) {
    tw_server_options options = options_base();
    options.connections_max = 2;
    case_begin(h, "reclaim", &options);
    raw *c1 = raw_new(h, "C1");
    raw_register(c1, 1, "C1's register");
    /* C2 holds its slot with the start of a header it never finishes (a slow peer). */
    raw *c2 = raw_new(h, "C2");
    tw_header partial = header_make(c2, tw_command_register, tw_operation_none, 0, 0);
    tw_header_seal(&partial, NULL);
    raw_send_bytes(c2, &partial, TW_HEADER_SIZE / 2);
    /* Full, nobody waiting: idle past the limit, both keep their slots. */
    TW_ASSERT(tw_loop_run_for(h->loop, TW_SERVER_IDLE_RECLAIM_NS + BACKLOG_WAIT_NS) == tw_loop_ok);
    if (c1->ended || c2->ended) failf("reclaim: a connection was closed while nobody waited for its slot");
    /* C3 waits. Both are idle past the limit, C1 the longer (its register came before C2
     * connected), but C2 never delivered a whole message: C2 makes room, at once. */
    raw *c3 = raw_new(h, "C3");
    raw_send_register(c3);
    message m;
    expect_register_reply(c3, &m, 2, true, "C3's register, C2's slot reclaimed for it");
    expect_closed(c2, "C2's connection (never a whole message), reclaimed for C3");
    expect_nothing(c1, "C1's ping: the longer idle kept its slot, having delivered messages");
    /* C4 waits: both slots delivered a message just now, so it waits until one has been idle
     * for the limit; then the longer idle one goes, C3 (its register came before C1's ping). */
    raw *c4 = raw_new(h, "C4");
    raw_send_register(c4);
    TW_ASSERT(tw_loop_run_for(h->loop, BACKLOG_WAIT_NS) == tw_loop_ok);
    if (raw_has_message(c4) || c4->ended) failf("reclaim: C4 was answered before a slot was idle for the limit");
    expect_register_reply(c4, &m, 3, true, "C4's register, C3's slot reclaimed for it");
    expect_closed(c3, "C3's connection, the longer idle, reclaimed for C4");
    expect_nothing(c1, "C1's ping: its slot was kept");

    const tw_server_stats *stats = case_end(h);
    expected_stats e = {.registrations = 3, .op = 3, .sessions = 3};
    check_stats(h, stats, &e);
    check_stat(h, "connections_reclaimed", stats->connections_reclaimed, 2);
}

/* ---- the test ------------------------------------------------------------------------------ */

static void server_test_main(void *arg) {
    (void)arg;
    struct harness *h = &the_harness;
    memset(h, 0, sizeof(*h));
    h->ping_timestamp_next = 0x5150000000000001ull;
    TW_ASSERT(tw_loop_init(&h->loop, NULL) == tw_loop_ok);
    case_registration(h);
    case_eviction(h);
    case_late_duplicate(h);
    case_release(h);
    case_exactly_once(h);
    case_ledger(h);
    case_malformed(h);
    case_connections(h);
    case_reclaim(h);
    case_evicted_table(h); /* last: a failure here leaves the other cases' verdicts standing */
    tw_loop_deinit(h->loop);
    if (verbose) {
        uint32_t classes = 0;
        for (uint32_t c = 1; c < tw_proto_error_count; c++) {
            for (uint32_t i = 0; i < variant_count; i++) {
                if (variant_class((variant)i) == (tw_proto_error)c) {
                    classes++;
                    break;
                }
            }
        }
        printf("server: 9 cases passed; malformed input: %u variants in %u of %u classes, each "
               "closed its connection and changed nothing\n",
               (unsigned)variant_count, (unsigned)classes, (unsigned)(tw_proto_error_count - 1));
    }
}

static void *prepare(tw_test_build build) {
    verbose = build == tw_test_build_real;
    return NULL;
}

int main(int argc, char **argv) {
    tw_test_case test = {.name = "server", .real_uses_io_uring = true,
                         .prepare = prepare,
                         .main_fn = server_test_main,
                         .sim_disruptions_off = true};
    return tw_test_main(argc, argv, &test);
}
