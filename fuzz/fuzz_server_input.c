/* twin fuzz target: server input. Arbitrary bytes become a stream of messages into the
 * server's framing and request path (src/server.c over src/proto.c's frame reader).
 *
 * One small simulated world per input (no faults but the partial sends and receives the
 * input asks for, one fiber): a tw_server on a loop, and raw clients on the same loop that
 * connect to it over the simulated TCP, write the stream the input describes and read what
 * comes back.
 *
 * The input. Byte 0 is the world: bits 0-1 pick how often a send is partial (never, 1 in 2,
 * 4 or 16), bits 2-3 the same for receives, bits 4-7 the seed (latencies and where partial
 * IO splits). The rest is a list of chunks, each a control byte c (kind c >> 5, flags
 * c & 31) and what that kind reads. Every chunk goes to the current connection (connection
 * 0 to begin with); missing bytes read as 0.
 *   0 RAW      n = next byte, then n bytes appended as they are.
 *   1, 2 MSG   a message whose checksums the target computes, so that it passes or fails
 *              the checks on purpose: f0 = command (bits 0-2, 0..7 so unknown ones too) |
 *              operation (bits 3-5) | session auto (bit 6) | request auto (bit 7);
 *              f1 = client id (bits 0-1: ids 0..3, 0 is no client) | release (bits 2-3:
 *              1, 2 valid; 0 too low; 3 too high) | request (bits 4-7); f2 = session;
 *              then the body size (2 bytes, little-endian, 10 bits) and the body. "auto"
 *              takes the session the server gave that client, and the request after the
 *              last one it executed for it (minus request & 3: a retry, or older ones).
 *              Flags: bit 0 a bad header checksum, bit 1 a bad body checksum, bit 2 another
 *              cluster, bit 3 a reserved byte set (one more byte after the body: which),
 *              bit 4 the size field replaced by the next 2 bytes (below the header, above
 *              the maximum, or not the body that follows).
 *   3 FLUSH    writes what the connection has appended; unless flag bit 0, then lets the
 *              world run SETTLE_NS (the server answers, replies arrive, and "auto" fields
 *              see the new sessions and requests).
 *   4 SWITCH   the current connection becomes flags % FUZZ_CONNECTIONS_MAX, connected
 *              first if it is not, or if the server closed it (the server takes
 *              SERVER_CONNECTIONS_MAX at once: the rest wait in its backlog).
 *   5 CLOSE    flushes, waits for the writes, then closes the connection (flag bit 0:
 *              shuts down its write side instead, and keeps reading).
 *   6 REPEAT   the last message again, (flags + 1) times (a retry, pings that fill the
 *              server's header-only send slots).
 *   7 VALID    a well-formed message with every field right: b = next byte: command
 *              (b >> 6: register, request, ping, request), operation 1 + (b & 7) % 5,
 *              client 1 + ((b >> 3) & 3) % 3; a request then reads an event count byte
 *              (echo: bytes; else & 7, at most the operation's maximum) and the events,
 *              built from one or two input bytes each (make_event_*).
 * At the end every connection is flushed and the world settles.
 *
 * The oracle, besides no assertion failing in the server: every message the server sends
 * is a well-formed frame (the client-side frame reader takes it) of a command it may send
 * (reply, eviction, pong) and is what it should be: a reply names an op the server
 * committed (tw_server_set_commit_observer) for that client and request, with that op's
 * timestamp, session and operation, and exactly that op's reply body (cached replies
 * too); a register reply carries session = op and the batch size; an eviction a known
 * reason; a pong a timestamp some message carried. Each commit is checked as it happens:
 * ops 1, 2, 3, ..., timestamps increasing, create results sparse, ascending, in range and
 * with known codes, lookups no more objects than ids asked, echoes the body back. Then the
 * server must still be up: every connection is closed, a fresh connection sends a valid
 * ping and must get its pong. Finally the server stops: its counters must add up and every
 * block it allocated must be freed.
 *
 * A failure prints the world's message and aborts (every engine reports it as a crash).
 * `fuzz_server_input --write-seeds DIR` writes the seed inputs (corpus/server_input/). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/ledger.h>
#include <twin/loop.h>
#include <twin/os.h>
#include <twin/proto.h>
#include <twin/server.h>
#include <twin/sim.h>
#include <twin/tcp.h>

#include "common.h"

#define MS_NS (1000ull * 1000ull)

/* The server: small limits, so that every limit is within a short input's reach. */
#define SERVER_MESSAGE_SIZE_MAX 512u
#define SERVER_BODY_SIZE_MAX (SERVER_MESSAGE_SIZE_MAX - TW_HEADER_SIZE)
#define SERVER_CLIENTS_MAX 2u
#define SERVER_CONNECTIONS_MAX 2u
#define SERVER_ACCOUNTS_MAX 4u
#define SERVER_TRANSFERS_MAX 4u
#define SERVER_RELEASE_MIN 1u
#define SERVER_RELEASE_MAX 2u
#define CLUSTER_LOW 0x7477u

/* The raw clients. */
#define FUZZ_CONNECTIONS_MAX 3u               /* the input's connections */
#define CHECK_CONNECTION FUZZ_CONNECTIONS_MAX /* the last one: the "still up" ping */
#define CONNECTIONS_TOTAL (FUZZ_CONNECTIONS_MAX + 1u)
#define CONNECTS_MAX 16u                      /* connections opened per input, the check's included */
#define FUZZ_CLIENT_IDS 4u                    /* client ids 0..3 */
#define CHECK_CLIENT_LOW 0x100u               /* a client id no input uses */
#define CHECK_PING_TIMESTAMP 0x636865636bull  /* "check" */
#define STREAM_SIZE_MAX (32u * 1024u)         /* bytes per connection; below the sim's 64 KiB pipe */
#define WRITES_MAX 32u                        /* writes queued per connection at once */
#define BODY_SIZE_FIELD_MASK 0x3ffu           /* MSG: 10 bits of body size */
#define MESSAGE_SIZE_BUILT_MAX (TW_HEADER_SIZE + BODY_SIZE_FIELD_MASK)
#define VALID_EVENTS_MASK 7u                  /* VALID: up to 7 events (capped to the maximum) */
#define REPEAT_FLAGS_MASK 31u

/* Time, virtual. */
#define SETTLE_NS (20ull * MS_NS)   /* well above a round trip (latency < 2 ms, no spikes) */
#define WAIT_NS (10000ull * MS_NS)  /* any wait for a write, a close or the check's pong */
#define STEPS_MAX (5u * 1000u * 1000u)
#define COMMITS_MAX 8192u
#define LOOP_TIMERS_MAX 16u /* the server's accept retry and the guard */

/* Chunk kinds (the control byte's top 3 bits). */
enum chunk_kind {
    chunk_raw = 0,
    chunk_message = 1,
    chunk_message_too = 2,
    chunk_flush = 3,
    chunk_switch = 4,
    chunk_close = 5,
    chunk_repeat = 6,
    chunk_valid = 7,
};
#define CHUNK_KIND_SHIFT 5u
#define CHUNK_FLAGS_MASK 31u

enum message_flag {
    flag_bad_header_checksum = 1u << 0,
    flag_bad_body_checksum = 1u << 1,
    flag_wrong_cluster = 1u << 2,
    flag_reserved = 1u << 3,
    flag_size_override = 1u << 4,
};

enum field_bits {
    f0_command_mask = 7u,
    f0_operation_shift = 3u,
    f0_operation_mask = 7u,
    f0_session_auto = 1u << 6,
    f0_request_auto = 1u << 7,
    f1_client_mask = 3u,
    f1_release_shift = 2u,
    f1_release_mask = 3u,
    f1_request_shift = 4u,
};

static const uint32_t releases[4] = {SERVER_RELEASE_MIN, SERVER_RELEASE_MAX, SERVER_RELEASE_MIN - 1u,
                                     SERVER_RELEASE_MAX + 1u};
static const uint64_t partial_rates[4] = {0, 2, 4, 16};
static const tw_u128 cluster = {.low = CLUSTER_LOW, .high = 0};
static const tw_u128 cluster_other = {.low = CLUSTER_LOW + 1u, .high = 0};

/* ---- state -------------------------------------------------------------------------------- */

typedef enum conn_state {
    conn_unused = 0,
    conn_connecting,
    conn_open,
    conn_closed,
} conn_state;

typedef struct write_slot {
    tw_write_request request; /* first: tw_write_request_of */
    struct fuzz_conn *conn;
    bool busy;
} write_slot;

typedef struct fuzz_conn {
    uint32_t index;
    conn_state state;
    tw_tcp tcp;
    bool reading;
    bool ended;        /* the server closed it (EOF or reset) */
    bool write_failed; /* a write failed: nothing more is written */
    bool shut;         /* we shut down our write side */
    bool close_done;
    bool closing;      /* our close is submitted: no more reads */
    uint32_t appended; /* bytes of stream */
    uint32_t flush_to; /* what FLUSH asked to write */
    uint32_t written;  /* what is queued */
    uint32_t writes_busy;
    uint64_t messages_in; /* from the server */
    tw_completion c_connect;
    tw_completion c_read;
    tw_completion c_close;
    tw_completion c_shutdown;
    tw_write_queue queue;
    write_slot writes[WRITES_MAX];
    tw_frame_reader reader;
    _Alignas(16) uint8_t reader_buffer[SERVER_MESSAGE_SIZE_MAX];
} fuzz_conn;

typedef struct commit_record {
    tw_u128 client;
    uint64_t session;
    uint64_t request;
    uint64_t timestamp;
    uint8_t operation;
    uint32_t reply_size;
    tw_u128 reply_checksum;
} commit_record;

typedef struct fuzz_state {
    const uint8_t *data;
    size_t size;
    size_t offset;
    tw_loop *loop;
    tw_server *server;
    tw_address server_address;
    fuzz_conn conns[CONNECTIONS_TOTAL];
    uint32_t current;
    uint32_t connects;
    tw_completion c_guard;
    tw_completion c_guard_cancel;
    bool guard_fired;
    bool pong_checked;
    uint64_t timestamp_next; /* every message carries one; pongs echo a ping's */
    /* What the commits said, per client id 0..3 (auto fields). */
    uint64_t known_session[FUZZ_CLIENT_IDS];
    uint64_t known_request[FUZZ_CLIENT_IDS];
    uint32_t auto_pending[FUZZ_CLIENT_IDS]; /* auto requests appended since the last settle */
    uint64_t op_last;
    uint64_t timestamp_last;
    uint64_t replies_checked;
    tw_server_stats stats; /* at the stop, for the verbose line */
    /* The last message built, for REPEAT. */
    uint32_t last_size;
    _Alignas(16) uint8_t last_message[MESSAGE_SIZE_BUILT_MAX];
    _Alignas(16) uint8_t events[SERVER_BODY_SIZE_MAX];
} fuzz_state;

static fuzz_state state;
static uint8_t streams[CONNECTIONS_TOTAL][STREAM_SIZE_MAX];
static commit_record commits[COMMITS_MAX];

static bool u128_equal(tw_u128 a, tw_u128 b) { return a.low == b.low && a.high == b.high; }

/* ---- input ------------------------------------------------------------------------------- */

static uint8_t input_byte(fuzz_state *st) { return st->offset < st->size ? st->data[st->offset++] : 0; }

static uint32_t input_u16(fuzz_state *st) {
    uint32_t low = input_byte(st);
    uint32_t high = input_byte(st);
    return low | high << 8;
}

/* ---- waiting ------------------------------------------------------------------------------ */

static tw_action guard_fired(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    fuzz_state *st = userdata;
    if (result.error == tw_loop_ok) st->guard_fired = true;
    return tw_disarm;
}

static tw_action guard_canceled(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)userdata;
    (void)loop;
    (void)c;
    (void)result;
    return tw_disarm;
}

typedef bool (*condition_fn)(const fuzz_state *st, const fuzz_conn *conn);

/* Runs the loop until done(conn), failing after WAIT_NS of virtual time. */
static void run_until(fuzz_state *st, const fuzz_conn *conn, condition_fn done, const char *what) {
    if (done(st, conn)) return;
    st->guard_fired = false;
    tw_loop_timer_reset(st->loop, &st->c_guard, WAIT_NS, st, guard_fired);
    while (!done(st, conn)) {
        if (st->guard_fired) {
            tw_fuzz_fail("fuzz_server_input: waited %llu s for %s on connection %u",
                 (unsigned long long)(WAIT_NS / (1000u * MS_NS)), what, conn->index);
        }
        TW_ASSERT(tw_loop_run(st->loop, tw_run_once) == tw_loop_ok);
    }
}

static void settle(fuzz_state *st) {
    TW_ASSERT(tw_loop_run_for(st->loop, SETTLE_NS) == tw_loop_ok);
    memset(st->auto_pending, 0, sizeof(st->auto_pending));
}

/* ---- the oracle on what the server sends ----------------------------------------------------- */

static tw_u128 body_checksum(const uint8_t *body, uint32_t body_size) {
    tw_header scratch = {.size = TW_HEADER_SIZE + body_size};
    tw_header_seal(&scratch, body);
    return scratch.checksum_body;
}

static void check_reply(fuzz_state *st, const fuzz_conn *conn, const tw_header *h) {
    if (h->op == 0 || h->op > st->op_last) {
        tw_fuzz_fail("connection %u: a reply names op %llu, but the server committed ops 1..%llu", conn->index,
             (unsigned long long)h->op, (unsigned long long)st->op_last);
    }
    st->replies_checked++;
    if (h->op >= COMMITS_MAX) return; /* beyond the record (a long input) */
    const commit_record *c = &commits[h->op];
    if (!u128_equal(c->client, h->client) || c->request != h->request || c->session != h->session ||
        c->timestamp != h->timestamp || c->operation != h->operation) {
        tw_fuzz_fail("connection %u: the reply for op %llu (client %llu, request %llu, session %llu, "
             "operation %s, timestamp %llu) is not what op %llu committed (client %llu, request %llu, "
             "session %llu, operation %s, timestamp %llu)",
             conn->index, (unsigned long long)h->op, (unsigned long long)h->client.low,
             (unsigned long long)h->request, (unsigned long long)h->session,
             tw_operation_name((tw_operation)h->operation), (unsigned long long)h->timestamp,
             (unsigned long long)h->op, (unsigned long long)c->client.low,
             (unsigned long long)c->request, (unsigned long long)c->session,
             tw_operation_name((tw_operation)c->operation), (unsigned long long)c->timestamp);
    }
    if (h->size - TW_HEADER_SIZE != c->reply_size || !u128_equal(h->checksum_body, c->reply_checksum)) {
        tw_fuzz_fail("connection %u: the reply for op %llu has another body (%u bytes) than its commit (%u bytes)",
             conn->index, (unsigned long long)h->op, h->size - TW_HEADER_SIZE, c->reply_size);
    }
    if (h->operation == tw_operation_none) {
        if (h->request != 0 || h->session != h->op || h->batch_size_max != SERVER_BODY_SIZE_MAX) {
            tw_fuzz_fail("connection %u: a register reply with request %llu, session %llu, op %llu, "
                 "batch_size_max %u",
                 conn->index, (unsigned long long)h->request, (unsigned long long)h->session,
                 (unsigned long long)h->op, h->batch_size_max);
        }
    } else if (h->request == 0) {
        tw_fuzz_fail("connection %u: a %s reply for request 0", conn->index,
             tw_operation_name((tw_operation)h->operation));
    }
}

static void on_server_message(void *context, const tw_header *h, const uint8_t *body) {
    (void)body;
    fuzz_conn *conn = context;
    fuzz_state *st = &state;
    conn->messages_in++;
    switch ((tw_command)h->command) {
    case tw_command_reply: check_reply(st, conn, h); return;
    case tw_command_eviction:
        if (h->size != TW_HEADER_SIZE || h->eviction_reason <= tw_eviction_none ||
            h->eviction_reason > tw_eviction_protocol_violation || h->operation != tw_operation_none) {
            tw_fuzz_fail("connection %u: an eviction of %u bytes, reason %u, operation %u", conn->index, h->size,
                 h->eviction_reason, h->operation);
        }
        return;
    case tw_command_pong:
        if (h->size != TW_HEADER_SIZE || h->operation != tw_operation_none) {
            tw_fuzz_fail("connection %u: a pong of %u bytes, operation %u", conn->index, h->size, h->operation);
        }
        if (conn->index == CHECK_CONNECTION) {
            bool ours = h->timestamp == CHECK_PING_TIMESTAMP && h->client.low == CHECK_CLIENT_LOW;
            if (ours) st->pong_checked = true;
        } else if (h->timestamp == 0 || h->timestamp >= st->timestamp_next) {
            tw_fuzz_fail("connection %u: a pong carries timestamp %llu, which no message carried (1..%llu)",
                 conn->index, (unsigned long long)h->timestamp, (unsigned long long)(st->timestamp_next - 1));
        }
        return;
    case tw_command_none:
    case tw_command_register:
    case tw_command_request:
    case tw_command_ping: break;
    }
    tw_fuzz_fail("connection %u: the server sent a %s message (it sends only replies, evictions and pongs)",
         conn->index, tw_command_name((tw_command)h->command));
}

/* Every commit, as it happens: the order, and what the ledger answered. */
static void on_commit(void *context, const tw_server_commit *commit) {
    fuzz_state *st = context;
    if (commit->op != st->op_last + 1 || commit->timestamp <= st->timestamp_last) {
        tw_fuzz_fail("commit op %llu at %llu after op %llu at %llu", (unsigned long long)commit->op,
             (unsigned long long)commit->timestamp, (unsigned long long)st->op_last,
             (unsigned long long)st->timestamp_last);
    }
    st->op_last = commit->op;
    st->timestamp_last = commit->timestamp;
    uint32_t event_size = tw_operation_event_size(commit->operation);
    uint32_t events = event_size == 0 ? commit->body_size : commit->body_size / event_size;
    switch (commit->operation) {
    case tw_operation_none:
        if (commit->request != 0 || commit->body_size != 0 || commit->reply_size != 0 ||
            commit->session != commit->op) {
            tw_fuzz_fail("op %llu: a register with request %llu, %u body bytes, %u reply bytes, session %llu",
                 (unsigned long long)commit->op, (unsigned long long)commit->request, commit->body_size,
                 commit->reply_size, (unsigned long long)commit->session);
        }
        break;
    case tw_operation_create_accounts:
    case tw_operation_create_transfers: {
        uint32_t code_max = commit->operation == tw_operation_create_accounts
                                ? (uint32_t)tw_create_account_too_many_accounts
                                : (uint32_t)tw_create_transfer_too_many_transfers;
        if (commit->reply_size % sizeof(tw_create_result) != 0 ||
            commit->reply_size / sizeof(tw_create_result) > events) {
            tw_fuzz_fail("op %llu: %u reply bytes for %u create events", (unsigned long long)commit->op,
                 commit->reply_size, events);
        }
        for (uint32_t i = 0; i < commit->reply_size / sizeof(tw_create_result); i++) {
            tw_create_result r;
            memcpy(&r, commit->reply + i * sizeof(r), sizeof(r));
            uint32_t index_before = 0;
            if (i > 0) memcpy(&index_before, commit->reply + (i - 1) * sizeof(r), sizeof(index_before));
            if (r.index >= events || (i > 0 && r.index <= index_before) || r.result == 0 ||
                r.result > code_max) {
                tw_fuzz_fail("op %llu: create result %u is {index %u, result %u} (%u events)",
                     (unsigned long long)commit->op, i, r.index, r.result, events);
            }
        }
        break;
    }
    case tw_operation_lookup_accounts:
    case tw_operation_lookup_transfers: {
        uint32_t result_size = tw_operation_result_size(commit->operation);
        if (commit->reply_size % result_size != 0 || commit->reply_size / result_size > events) {
            tw_fuzz_fail("op %llu: %u reply bytes for %u lookups", (unsigned long long)commit->op, commit->reply_size,
                 events);
        }
        break;
    }
    case tw_operation_echo:
        if (commit->reply_size != commit->body_size ||
            (commit->body_size > 0 && memcmp(commit->reply, commit->body, commit->body_size) != 0)) {
            tw_fuzz_fail("op %llu: an echo of %u bytes came back as %u other bytes", (unsigned long long)commit->op,
                 commit->body_size, commit->reply_size);
        }
        break;
    }
    if (commit->op < COMMITS_MAX) {
        commits[commit->op] = (commit_record){
            .client = commit->client,
            .session = commit->session,
            .request = commit->request,
            .timestamp = commit->timestamp,
            .operation = (uint8_t)commit->operation,
            .reply_size = commit->reply_size,
            .reply_checksum = body_checksum(commit->reply, commit->reply_size),
        };
    }
    if (commit->client.high == 0 && commit->client.low < FUZZ_CLIENT_IDS) {
        uint32_t id = (uint32_t)commit->client.low;
        if (commit->request == 0) st->known_session[id] = commit->session;
        st->known_request[id] = commit->request;
    }
}

/* ---- connections ------------------------------------------------------------------------- */

static void flush(fuzz_state *st, fuzz_conn *conn);

static tw_action read_done(void *userdata, tw_loop *loop, tw_completion *c, tw_result result);

static void read_start(fuzz_state *st, fuzz_conn *conn) {
    uint32_t room = 0;
    uint8_t *space = tw_frame_reader_space(&conn->reader, &room);
    TW_ASSERT(room > 0 && !conn->reading);
    conn->reading = true;
    tw_tcp_read(st->loop, &conn->c_read, conn->tcp, space, room, conn, read_done);
}

static tw_action read_done(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    fuzz_conn *conn = userdata;
    TW_ASSERT(conn->reading);
    conn->reading = false;
    if (result.error == tw_loop_canceled) return tw_disarm; /* we closed it */
    if (result.error != tw_loop_ok) {
        if (result.error != tw_loop_eof && result.error != tw_loop_reset) {
            tw_fuzz_fail("connection %u: a read failed: %s", conn->index, tw_loop_error_name(result.error));
        }
        conn->ended = true;
        return tw_disarm;
    }
    tw_proto_error error =
        tw_frame_reader_commit(&conn->reader, (uint32_t)result.value, on_server_message, conn);
    if (error != tw_proto_ok) {
        tw_fuzz_fail("connection %u: the server sent a malformed message (%s)", conn->index,
             tw_proto_error_name(error));
    }
    /* A read that completed just before our close: what it read counts, but no next read. */
    if (!conn->closing) read_start(&state, conn);
    return tw_disarm;
}

static tw_action connected(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    fuzz_conn *conn = userdata;
    TW_ASSERT(conn->state == conn_connecting);
    if (result.error == tw_loop_canceled) return tw_disarm;
    if (result.error != tw_loop_ok) {
        tw_fuzz_fail("connection %u: the connect failed: %s", conn->index, tw_loop_error_name(result.error));
    }
    conn->state = conn_open;
    TW_ASSERT(conn->writes_busy == 0); /* nothing is queued before the connect: flush will not wait */
    read_start(&state, conn);
    flush(&state, conn);
    return tw_disarm;
}

static void conn_open_new(fuzz_state *st, fuzz_conn *conn) {
    TW_ASSERT(conn->state == conn_unused || conn->state == conn_closed);
    TW_ASSERT(conn->writes_busy == 0 && !conn->reading);
    uint32_t index = conn->index;
    memset(conn, 0, offsetof(fuzz_conn, reader_buffer));
    conn->index = index;
    tw_frame_reader_init(&conn->reader, conn->reader_buffer, SERVER_MESSAGE_SIZE_MAX, cluster);
    TW_ASSERT(tw_tcp_open(st->loop, &st->server_address, &conn->tcp) == tw_loop_ok);
    conn->state = conn_connecting;
    st->connects++;
    tw_tcp_connect(st->loop, &conn->c_connect, conn->tcp, &st->server_address, conn, connected);
}

static tw_action written(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    write_slot *slot = userdata;
    fuzz_conn *conn = slot->conn;
    TW_ASSERT(tw_write_request_of(c) == &slot->request && slot->busy && conn->writes_busy > 0);
    slot->busy = false;
    conn->writes_busy--;
    if (result.error != tw_loop_ok) conn->write_failed = true; /* the server closed it: fine */
    return tw_disarm;
}

static bool write_slot_free(const fuzz_state *st, const fuzz_conn *conn) {
    (void)st;
    return conn->writes_busy < WRITES_MAX;
}

static bool writes_done(const fuzz_state *st, const fuzz_conn *conn) {
    (void)st;
    return conn->writes_busy == 0;
}

/* Queues what FLUSH asked for, once the connection is open. */
static void flush(fuzz_state *st, fuzz_conn *conn) {
    if (conn->state != conn_open || conn->write_failed || conn->shut) return;
    if (conn->written == conn->flush_to) return;
    if (!write_slot_free(st, conn)) run_until(st, conn, write_slot_free, "a write slot");
    if (conn->state != conn_open || conn->write_failed) return;
    write_slot *slot = NULL;
    for (uint32_t i = 0; i < WRITES_MAX && slot == NULL; i++) {
        if (!conn->writes[i].busy) slot = &conn->writes[i];
    }
    TW_ASSERT(slot != NULL);
    slot->busy = true;
    slot->conn = conn;
    conn->writes_busy++;
    uint32_t from = conn->written;
    conn->written = conn->flush_to;
    tw_tcp_queue_write(st->loop, &conn->queue, &slot->request, conn->tcp, streams[conn->index] + from,
                       conn->flush_to - from, slot, written);
}

static void flush_all_of(fuzz_state *st, fuzz_conn *conn) {
    conn->flush_to = conn->appended;
    flush(st, conn);
}

static void append(fuzz_state *st, const void *bytes, uint32_t size) {
    fuzz_conn *conn = &st->conns[st->current];
    if (conn->shut || size > STREAM_SIZE_MAX - conn->appended) return; /* full: dropped */
    memcpy(streams[conn->index] + conn->appended, bytes, size);
    conn->appended += size;
}

static tw_action closed_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    (void)result; /* closed either way */
    fuzz_conn *conn = userdata;
    conn->close_done = true;
    return tw_disarm;
}

static tw_action shutdown_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)userdata;
    (void)loop;
    (void)c;
    (void)result; /* a connection the server closed already: nothing to shut */
    return tw_disarm;
}

static bool close_finished(const fuzz_state *st, const fuzz_conn *conn) {
    (void)st;
    return conn->close_done && !conn->reading;
}

static bool connect_finished(const fuzz_state *st, const fuzz_conn *conn) {
    (void)st;
    return conn->state != conn_connecting;
}

/* Writes everything appended, then closes (or shuts down the write side). */
static void conn_close(fuzz_state *st, fuzz_conn *conn, bool shutdown_only) {
    if (conn->state == conn_unused || conn->state == conn_closed) return;
    if (conn->state == conn_connecting) run_until(st, conn, connect_finished, "the connect");
    flush_all_of(st, conn);
    run_until(st, conn, writes_done, "the writes");
    if (shutdown_only) {
        if (!conn->shut) {
            conn->shut = true;
            tw_tcp_shutdown(st->loop, &conn->c_shutdown, conn->tcp, conn, shutdown_cb);
        }
        return;
    }
    conn->close_done = false;
    conn->closing = true;
    tw_tcp_close(st->loop, &conn->c_close, conn->tcp, conn, closed_cb);
    run_until(st, conn, close_finished, "the close");
    conn->state = conn_closed;
}

/* ---- building messages -------------------------------------------------------------------- */

static uint64_t auto_request(fuzz_state *st, uint32_t id, tw_command command, uint32_t back) {
    if (command == tw_command_register) return 0;
    uint64_t next = st->known_request[id] + 1u + st->auto_pending[id];
    if (command == tw_command_request && back == 0) st->auto_pending[id]++;
    return next >= back ? next - back : 0;
}

/* Seals header over body and appends both; remembers the bytes for REPEAT. */
static void append_message(fuzz_state *st, tw_header *h, const uint8_t *body, uint32_t body_size,
                           uint8_t flags) {
    TW_ASSERT(body_size <= BODY_SIZE_FIELD_MASK);
    h->size = TW_HEADER_SIZE + body_size;
    h->cluster = (flags & flag_wrong_cluster) != 0 ? cluster_other : cluster;
    h->timestamp = st->timestamp_next++;
    if ((flags & flag_reserved) != 0) {
        uint8_t which = input_byte(st);
        uint32_t position = which % (uint32_t)(sizeof(h->reserved) + 1u);
        if (position == sizeof(h->reserved)) h->reserved_byte = (uint8_t)(which | 1u);
        else h->reserved[position] = (uint8_t)(which | 1u);
    }
    tw_header_seal(h, body);
    if ((flags & flag_size_override) != 0) {
        h->size = input_u16(st);
        tw_header_seal_header(h);
    }
    if ((flags & flag_bad_body_checksum) != 0) {
        h->checksum_body.low ^= 1u;
        tw_header_seal_header(h);
    }
    if ((flags & flag_bad_header_checksum) != 0) h->checksum.high ^= 1u;
    memcpy(st->last_message, h, TW_HEADER_SIZE);
    if (body_size > 0) memcpy(st->last_message + TW_HEADER_SIZE, body, body_size);
    st->last_size = TW_HEADER_SIZE + body_size;
    append(st, st->last_message, st->last_size);
}

static void chunk_message_build(fuzz_state *st, uint8_t flags) {
    uint8_t f0 = input_byte(st);
    uint8_t f1 = input_byte(st);
    uint8_t f2 = input_byte(st);
    uint32_t body_size = input_u16(st) & BODY_SIZE_FIELD_MASK;
    tw_command command = (tw_command)(f0 & f0_command_mask);
    uint32_t id = f1 & f1_client_mask;
    tw_header h = {
        .client = {.low = id, .high = 0},
        .release = releases[(f1 >> f1_release_shift) & f1_release_mask],
        .command = (uint8_t)command,
        .operation = (uint8_t)((f0 >> f0_operation_shift) & f0_operation_mask),
    };
    h.session = (f0 & f0_session_auto) != 0 ? st->known_session[id] : f2;
    uint32_t request_field = f1 >> f1_request_shift;
    h.request = request_field;
    if ((f0 & f0_request_auto) != 0) h.request = auto_request(st, id, command, request_field & 3u);
    uint8_t *body = st->events;
    uint32_t copied = 0;
    for (; copied < body_size && copied < sizeof(st->events) && st->offset < st->size; copied++) {
        body[copied] = st->data[st->offset++];
    }
    /* Bodies longer than the server's buffer need not be real: zeros past what was read. */
    static uint8_t body_long[BODY_SIZE_FIELD_MASK];
    if (body_size > sizeof(st->events)) {
        memcpy(body_long, body, copied);
        memset(body_long + copied, 0, body_size - copied);
        body = body_long;
    } else {
        memset(body + copied, 0, body_size - copied);
    }
    append_message(st, &h, body, body_size, flags);
}

/* Events from input bytes: small id spaces, so that exists, not_found, linked chains and
 * the ledger's limits come up often. */
static void make_event_account(uint8_t e, tw_account *a) {
    *a = (tw_account){
        .id = {.low = 1u + (e & 7u), .high = 0},
        .flags = (uint16_t)((e >> 3) & 7u), /* linked, debits_must_not_exceed_credits, credits_... */
        .ledger = 1u + ((e >> 6) & 1u),
        .code = (uint16_t)(1u + (e >> 7)),
    };
}

static void make_event_transfer(uint8_t e0, uint8_t e1, tw_transfer *t) {
    *t = (tw_transfer){
        .id = {.low = 1u + (e0 & 7u), .high = 0},
        .debit_account_id = {.low = 1u + ((e0 >> 3) & 3u), .high = 0},
        .credit_account_id = {.low = 1u + ((e0 >> 5) & 3u), .high = 0},
        .amount = e1 >> 1,
        .ledger = 1u,
        .code = 1u,
        .flags = (uint16_t)(e0 >> 7), /* linked */
    };
    if ((e1 & 1u) != 0) t->amount = UINT64_MAX; /* overflows */
}

static void chunk_valid_build(fuzz_state *st) {
    static const tw_command commands[4] = {tw_command_register, tw_command_request, tw_command_ping,
                                           tw_command_request};
    uint8_t b = input_byte(st);
    tw_command command = commands[b >> 6];
    tw_operation operation = (tw_operation)(1u + (b & 7u) % 5u);
    uint32_t id = 1u + ((b >> 3) & 3u) % 3u;
    tw_header h = {
        .client = {.low = id, .high = 0},
        .session = command == tw_command_register ? 0 : st->known_session[id],
        .release = SERVER_RELEASE_MIN,
        .command = (uint8_t)command,
        .operation = (uint8_t)(command == tw_command_request ? operation : tw_operation_none),
    };
    h.request = command == tw_command_ping ? 0 : auto_request(st, id, command, 0);
    uint32_t body_size = 0;
    if (command == tw_command_request) {
        uint32_t count = input_byte(st);
        uint32_t events_max = tw_operation_events_max(operation, SERVER_MESSAGE_SIZE_MAX);
        if (operation != tw_operation_echo) {
            count &= VALID_EVENTS_MASK;
            if (count > events_max) count = events_max;
        }
        for (uint32_t i = 0; i < count; i++) {
            switch (operation) {
            case tw_operation_create_accounts: {
                tw_account a;
                make_event_account(input_byte(st), &a);
                memcpy(st->events + body_size, &a, sizeof(a));
                body_size += (uint32_t)sizeof(a);
                break;
            }
            case tw_operation_create_transfers: {
                tw_transfer t;
                uint8_t e0 = input_byte(st);
                uint8_t e1 = input_byte(st);
                make_event_transfer(e0, e1, &t);
                memcpy(st->events + body_size, &t, sizeof(t));
                body_size += (uint32_t)sizeof(t);
                break;
            }
            case tw_operation_lookup_accounts:
            case tw_operation_lookup_transfers: {
                tw_u128 lookup_id = {.low = input_byte(st) & 15u, .high = 0};
                memcpy(st->events + body_size, &lookup_id, sizeof(lookup_id));
                body_size += (uint32_t)sizeof(lookup_id);
                break;
            }
            case tw_operation_echo: st->events[body_size++] = input_byte(st); break;
            case tw_operation_none: TW_ASSERT(false); break;
            }
        }
        TW_ASSERT(body_size <= SERVER_BODY_SIZE_MAX);
    }
    append_message(st, &h, st->events, body_size, 0);
}

/* ---- the world ---------------------------------------------------------------------------- */

static void chunk_run(fuzz_state *st) {
    uint8_t control = input_byte(st);
    uint8_t flags = control & CHUNK_FLAGS_MASK;
    fuzz_conn *conn = &st->conns[st->current];
    switch ((enum chunk_kind)(control >> CHUNK_KIND_SHIFT)) {
    case chunk_raw: {
        uint32_t count = input_byte(st);
        uint8_t bytes[UINT8_MAX];
        uint32_t copied = 0;
        for (; copied < count && st->offset < st->size; copied++) bytes[copied] = st->data[st->offset++];
        append(st, bytes, copied);
        break;
    }
    case chunk_message:
    case chunk_message_too: chunk_message_build(st, flags); break;
    case chunk_flush:
        flush_all_of(st, conn);
        if ((flags & 1u) == 0) settle(st);
        break;
    case chunk_switch: {
        st->current = flags % FUZZ_CONNECTIONS_MAX;
        fuzz_conn *next = &st->conns[st->current];
        if (next->ended) conn_close(st, next, false); /* the server closed it: a new one */
        if ((next->state == conn_unused || next->state == conn_closed) && st->connects + 1u < CONNECTS_MAX) {
            conn_open_new(st, next);
        }
        break;
    }
    case chunk_close: conn_close(st, conn, (flags & 1u) != 0); break;
    case chunk_repeat:
        for (uint32_t i = 0; i <= (flags & REPEAT_FLAGS_MASK) && st->last_size > 0; i++) {
            append(st, st->last_message, st->last_size);
        }
        break;
    case chunk_valid: chunk_valid_build(st); break;
    }
}

static bool pong_arrived(const fuzz_state *st, const fuzz_conn *conn) {
    return st->pong_checked || conn->ended;
}

/* The server must still answer: every input connection closed, a fresh one pings. */
static void check_still_up(fuzz_state *st) {
    for (uint32_t i = 0; i < FUZZ_CONNECTIONS_MAX; i++) conn_close(st, &st->conns[i], false);
    fuzz_conn *check = &st->conns[CHECK_CONNECTION];
    st->current = CHECK_CONNECTION;
    conn_open_new(st, check);
    tw_header ping = {
        .cluster = cluster,
        .client = {.low = CHECK_CLIENT_LOW, .high = 0},
        .timestamp = CHECK_PING_TIMESTAMP,
        .size = TW_HEADER_SIZE,
        .release = SERVER_RELEASE_MIN,
        .command = tw_command_ping,
    };
    tw_header_seal(&ping, NULL);
    append(st, &ping, TW_HEADER_SIZE);
    flush_all_of(st, check);
    run_until(st, check, pong_arrived, "the pong to a valid ping on a fresh connection");
    if (!st->pong_checked) {
        tw_fuzz_fail("the server closed a fresh connection instead of answering a valid ping (%llu messages on it)",
             (unsigned long long)check->messages_in);
    }
    conn_close(st, check, false);
}

static void world_main(void *arg) {
    fuzz_state *st = arg;
    tw_loop_options loop_options = {.timers_max = LOOP_TIMERS_MAX};
    TW_ASSERT(tw_loop_init(&st->loop, &loop_options) == tw_loop_ok);
    tw_address listen;
    TW_ASSERT(tw_address_parse("127.0.0.1:0", &listen) == tw_loop_ok);
    tw_server_options options = {
        .cluster = cluster,
        .connections_max = SERVER_CONNECTIONS_MAX,
        .clients_max = SERVER_CLIENTS_MAX,
        .message_size_max = SERVER_MESSAGE_SIZE_MAX,
        .release_min = SERVER_RELEASE_MIN,
        .release_max = SERVER_RELEASE_MAX,
        .accounts_max = SERVER_ACCOUNTS_MAX,
        .transfers_max = SERVER_TRANSFERS_MAX,
    };
    tw_loop_error listen_error = tw_loop_ok;
    tw_server_error error = tw_server_init(&st->server, st->loop, &listen, &options, &listen_error);
    if (error != tw_server_ok) {
        tw_fuzz_fail("tw_server_init: %s (%s)", tw_server_error_name(error), tw_loop_error_name(listen_error));
    }
    tw_server_set_commit_observer(st->server, on_commit, st);
    st->server_address = tw_server_address(st->server);
    st->current = 0;
    conn_open_new(st, &st->conns[0]);

    while (st->offset < st->size) chunk_run(st);
    for (uint32_t i = 0; i < FUZZ_CONNECTIONS_MAX; i++) flush_all_of(st, &st->conns[i]);
    settle(st);
    check_still_up(st);

    if (tw_completion_active(&st->c_guard)) {
        tw_loop_cancel(st->loop, &st->c_guard_cancel, &st->c_guard, st, guard_canceled);
    }
    tw_server_stop(st->server);
    TW_ASSERT(tw_loop_run(st->loop, tw_run_until_done) == tw_loop_ok);
    const tw_server_stats *stats = tw_server_stats_get(st->server);
    if (stats->op != stats->registrations + stats->requests_executed || stats->op != st->op_last ||
        stats->connections_accepted != stats->connections_closed ||
        tw_server_sessions(st->server) > SERVER_CLIENTS_MAX) {
        tw_fuzz_fail("the server's counters: op %llu, registrations %llu, requests_executed %llu, commits seen %llu, "
             "connections accepted %llu and closed %llu, sessions %u",
             (unsigned long long)stats->op, (unsigned long long)stats->registrations,
             (unsigned long long)stats->requests_executed, (unsigned long long)st->op_last,
             (unsigned long long)stats->connections_accepted, (unsigned long long)stats->connections_closed,
             tw_server_sessions(st->server));
    }
    st->stats = *stats;
    tw_server_deinit(st->server);
    tw_loop_deinit(st->loop);
}

/* ---- seeds -------------------------------------------------------------------------------- */

/* The seed inputs of corpus/server_input/, written by `fuzz_server_input --write-seeds DIR`:
 * valid messages of every command and operation, pipelined and settled, retries, every
 * malformed class, every protocol violation, LRU eviction, the connection limit, a ping
 * flood, half-closed connections, and the ledger's results. */

#define SEED_SIZE_MAX 4096u

typedef struct seed {
    uint8_t bytes[SEED_SIZE_MAX];
    size_t size;
} seed;

enum valid_command { valid_register = 0, valid_request = 1, valid_ping = 2 };

static void seed_byte(seed *s, uint32_t byte) {
    TW_ASSERT(s->size < SEED_SIZE_MAX && byte <= UINT8_MAX);
    s->bytes[s->size++] = (uint8_t)byte;
}

static void seed_start(seed *s, uint8_t world) {
    s->size = 0;
    seed_byte(s, world);
}

static uint32_t control(enum chunk_kind kind, uint32_t flags) {
    TW_ASSERT(flags <= CHUNK_FLAGS_MASK);
    return (uint32_t)kind << CHUNK_KIND_SHIFT | flags;
}

/* VALID: a register, ping or request (client 1..3) with its events' bytes. */
static void seed_valid(seed *s, enum valid_command command, uint32_t client, tw_operation operation,
                       const uint8_t *event_bytes, uint32_t count) {
    TW_ASSERT(client >= 1 && client <= 3);
    uint32_t op_bits = operation == tw_operation_none ? 0 : (uint32_t)operation - 1u;
    seed_byte(s, control(chunk_valid, 0));
    seed_byte(s, (uint32_t)command << 6 | (client - 1u) << 3 | op_bits);
    if (command != valid_request) return;
    uint32_t count_max = tw_operation_events_max(operation, SERVER_MESSAGE_SIZE_MAX);
    TW_ASSERT(count <= UINT8_MAX &&
              (operation == tw_operation_echo || (count <= VALID_EVENTS_MASK && count <= count_max)));
    seed_byte(s, count);
    uint32_t per_event = operation == tw_operation_create_transfers ? 2u : 1u;
    for (uint32_t i = 0; i < count * per_event; i++) seed_byte(s, event_bytes[i]);
}

static void seed_flush(seed *s) { seed_byte(s, control(chunk_flush, 0)); }

/* MSG with explicit fields. */
static void seed_message(seed *s, uint32_t flags, uint32_t command, uint32_t operation, bool session_auto,
                         bool request_auto, uint32_t client, uint32_t release_index, uint32_t request,
                         uint32_t session, const uint8_t *body, uint32_t body_size) {
    seed_byte(s, control(chunk_message, flags));
    seed_byte(s, command | operation << f0_operation_shift | (session_auto ? f0_session_auto : 0u) |
                     (request_auto ? f0_request_auto : 0u));
    seed_byte(s, client | release_index << f1_release_shift | request << f1_request_shift);
    seed_byte(s, session);
    seed_byte(s, body_size & 0xffu);
    seed_byte(s, body_size >> 8);
    for (uint32_t i = 0; i < body_size; i++) seed_byte(s, body[i]);
}

static int seed_write(const char *dir, const char *name, const seed *s) {
    char path[4096];
    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *file = fopen(path, "wb");
    if (file == NULL) {
        fprintf(stderr, "fuzz_server_input: cannot write %s\n", path);
        return 1;
    }
    size_t written_count = fwrite(s->bytes, 1, s->size, file);
    int closed = fclose(file);
    if (written_count != s->size || closed != 0) {
        fprintf(stderr, "fuzz_server_input: cannot write %s\n", path);
        return 1;
    }
    printf("fuzz_server_input: wrote %s (%zu bytes)\n", path, s->size);
    return 0;
}

/* Two accounts (ids 1, 2, ledger 1), then transfers between them. */
static const uint8_t accounts_two[] = {0x00, 0x01};
static const uint8_t transfers_two[] = {0x08, 0x0a, 0x21, 0x04}; /* 1: 2 -> 1, 2: 1 -> 2 */
static const uint8_t lookups[] = {0x01, 0x02, 0x03};
static const uint8_t echo_bytes[] = {'t', 'w', 'i', 'n'};

static void seed_every_operation(seed *s, uint32_t client) {
    seed_valid(s, valid_request, client, tw_operation_create_accounts, accounts_two, 2);
    seed_valid(s, valid_request, client, tw_operation_create_transfers, transfers_two, 2);
    seed_valid(s, valid_request, client, tw_operation_lookup_accounts, lookups, 3);
    seed_valid(s, valid_request, client, tw_operation_lookup_transfers, lookups, 3);
    seed_valid(s, valid_request, client, tw_operation_echo, echo_bytes, sizeof(echo_bytes));
}

static int write_seeds(const char *dir) {
    static seed s;
    int failed = 0;

    /* Every command and operation, each settled. */
    seed_start(&s, 0x00);
    seed_valid(&s, valid_register, 1, tw_operation_none, NULL, 0);
    seed_flush(&s);
    seed_valid(&s, valid_request, 1, tw_operation_create_accounts, accounts_two, 2);
    seed_flush(&s);
    seed_valid(&s, valid_request, 1, tw_operation_create_transfers, transfers_two, 2);
    seed_flush(&s);
    seed_valid(&s, valid_request, 1, tw_operation_lookup_accounts, lookups, 3);
    seed_flush(&s);
    seed_valid(&s, valid_request, 1, tw_operation_lookup_transfers, lookups, 3);
    seed_flush(&s);
    seed_valid(&s, valid_request, 1, tw_operation_echo, echo_bytes, sizeof(echo_bytes));
    seed_flush(&s);
    seed_valid(&s, valid_ping, 1, tw_operation_none, NULL, 0);
    failed |= seed_write(dir, "valid-every-command", &s);

    /* The same, pipelined in one write (auto request numbers run ahead), under partial IO. */
    seed_start(&s, 0x35);
    seed_valid(&s, valid_register, 2, tw_operation_none, NULL, 0);
    seed_flush(&s);
    seed_every_operation(&s, 2);
    seed_valid(&s, valid_ping, 2, tw_operation_none, NULL, 0);
    failed |= seed_write(dir, "valid-pipelined-partial-io", &s);

    /* Retries: the last request again gets the cached reply; an older one is ignored; the
     * register again before any request gets its reply again. */
    seed_start(&s, 0x10);
    seed_valid(&s, valid_register, 1, tw_operation_none, NULL, 0);
    seed_byte(&s, control(chunk_repeat, 1));
    seed_flush(&s);
    seed_valid(&s, valid_request, 1, tw_operation_create_accounts, accounts_two, 2);
    seed_flush(&s);
    seed_byte(&s, control(chunk_repeat, 0));
    seed_flush(&s);
    seed_valid(&s, valid_request, 1, tw_operation_echo, echo_bytes, 2);
    seed_flush(&s);
    seed_message(&s, 0, tw_command_request, tw_operation_create_accounts, true, true, 1, 0, 2, 0, NULL, 0);
    seed_valid(&s, valid_register, 1, tw_operation_none, NULL, 0);
    failed |= seed_write(dir, "retries-cached-and-older", &s);

    /* Every malformed class, one connection each (SWITCH reopens what the server closed). */
    static const struct {
        const char *name;
        uint32_t flags;
        uint32_t command;
        uint32_t operation;
        uint32_t size_override;
    } malformed[] = {
        {"malformed-bad-header-checksum", flag_bad_header_checksum, tw_command_ping, 0, 0},
        {"malformed-bad-body-checksum", flag_bad_body_checksum, tw_command_request, tw_operation_echo, 0},
        {"malformed-size-below-header", flag_size_override, tw_command_ping, 0, 64},
        {"malformed-size-above-max", flag_size_override, tw_command_request, tw_operation_echo, 4096},
        {"malformed-unknown-command", 0, 7, 0, 0},
        {"malformed-unknown-operation", 0, tw_command_request, 6, 0},
        {"malformed-wrong-cluster", flag_wrong_cluster, tw_command_ping, 0, 0},
        {"malformed-reserved", flag_reserved, tw_command_ping, 0, 0},
        {"malformed-unexpected-reply", 0, tw_command_reply, 0, 0},
        {"malformed-unexpected-eviction", 0, tw_command_eviction, 0, 0},
        {"malformed-unexpected-pong", 0, tw_command_pong, 0, 0},
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        seed_start(&s, 0x21);
        seed_valid(&s, valid_register, 1, tw_operation_none, NULL, 0);
        seed_flush(&s);
        /* A good ping first in the same write: handled before the bad message closes it. */
        seed_valid(&s, valid_ping, 1, tw_operation_none, NULL, 0);
        seed_message(&s, malformed[i].flags, malformed[i].command, malformed[i].operation, true, true, 1, 0,
                     0, 0, echo_bytes, malformed[i].command == tw_command_request ? 4 : 0);
        if (malformed[i].flags == flag_reserved) seed_byte(&s, 5);
        if (malformed[i].flags == flag_size_override) {
            seed_byte(&s, malformed[i].size_override & 0xffu);
            seed_byte(&s, malformed[i].size_override >> 8);
        }
        seed_flush(&s);
        seed_byte(&s, control(chunk_switch, 0)); /* closed by the server: a new connection */
        seed_valid(&s, valid_request, 1, tw_operation_echo, echo_bytes, 3);
        failed |= seed_write(dir, malformed[i].name, &s);
    }

    /* Every protocol violation the server evicts for (or answers with an eviction). */
    seed_start(&s, 0x40);
    seed_valid(&s, valid_request, 1, tw_operation_echo, echo_bytes, 2); /* no session */
    seed_flush(&s);
    seed_message(&s, 0, tw_command_register, 0, false, false, 0, 0, 0, 0, NULL, 0); /* client 0 */
    seed_message(&s, 0, tw_command_ping, 0, false, false, 0, 0, 0, 0, NULL, 0);     /* client 0 ping */
    seed_message(&s, 0, tw_command_register, 0, false, false, 2, 0, 0, 0, echo_bytes, 4); /* with a body */
    seed_message(&s, 0, tw_command_register, 0, false, false, 3, 0, 1, 0, NULL, 0);       /* request 1 */
    seed_flush(&s);
    seed_valid(&s, valid_register, 1, tw_operation_none, NULL, 0);
    seed_flush(&s);
    seed_message(&s, 0, tw_command_request, tw_operation_echo, false, true, 1, 0, 0, 99, echo_bytes, 4);
    seed_flush(&s); /* wrong session: evicted */
    seed_valid(&s, valid_request, 1, tw_operation_echo, echo_bytes, 2); /* evicted: hears why again */
    seed_valid(&s, valid_ping, 1, tw_operation_none, NULL, 0);
    seed_flush(&s);
    seed_valid(&s, valid_register, 2, tw_operation_none, NULL, 0);
    seed_flush(&s);
    seed_message(&s, 0, tw_command_request, tw_operation_echo, true, false, 2, 0, 5, 0, echo_bytes, 4);
    seed_flush(&s); /* skips ahead */
    seed_valid(&s, valid_register, 3, tw_operation_none, NULL, 0);
    seed_flush(&s);
    seed_valid(&s, valid_request, 3, tw_operation_echo, echo_bytes, 2);
    seed_flush(&s);
    seed_message(&s, 0, tw_command_request, tw_operation_echo, true, true, 3, 0, 1, 0, echo_bytes, 3);
    seed_flush(&s); /* a retry with another body */
    seed_valid(&s, valid_register, 1, tw_operation_none, NULL, 0);
    seed_flush(&s);
    static const uint8_t lookups_many[7 * sizeof(tw_u128)] = {1, 2}; /* 6 at most: replies hold accounts */
    seed_message(&s, 0, tw_command_request, tw_operation_lookup_accounts, true, true, 1, 0, 0, 0,
                 lookups_many, sizeof(lookups_many));
    seed_flush(&s); /* more events than a reply can hold */
    seed_valid(&s, valid_register, 1, tw_operation_none, NULL, 0);
    seed_flush(&s);
    seed_message(&s, 0, tw_command_request, tw_operation_create_accounts, true, true, 1, 0, 0, 0,
                 echo_bytes, 4);
    seed_flush(&s); /* not whole events */
    failed |= seed_write(dir, "violations", &s);

    /* Releases: too low and too high, for a ping and for a client with a session. */
    seed_start(&s, 0x50);
    seed_valid(&s, valid_register, 1, tw_operation_none, NULL, 0);
    seed_flush(&s);
    seed_message(&s, 0, tw_command_ping, 0, false, false, 2, 2, 0, 0, NULL, 0);
    seed_message(&s, 0, tw_command_ping, 0, false, false, 2, 3, 0, 0, NULL, 0);
    seed_message(&s, 0, tw_command_request, tw_operation_echo, true, true, 1, 3, 0, 0, echo_bytes, 4);
    seed_flush(&s);
    seed_valid(&s, valid_ping, 1, tw_operation_none, NULL, 0);
    failed |= seed_write(dir, "release-range", &s);

    /* LRU: three clients, two sessions; the evicted one hears why where it is. */
    seed_start(&s, 0x60);
    seed_valid(&s, valid_register, 1, tw_operation_none, NULL, 0);
    seed_flush(&s);
    seed_byte(&s, control(chunk_switch, 1));
    seed_valid(&s, valid_register, 2, tw_operation_none, NULL, 0);
    seed_flush(&s);
    seed_byte(&s, control(chunk_switch, 2)); /* waits in the backlog: 2 connections at most */
    seed_valid(&s, valid_register, 3, tw_operation_none, NULL, 0);
    seed_flush(&s);
    seed_byte(&s, control(chunk_switch, 0));
    seed_byte(&s, control(chunk_close, 0)); /* frees a slot: connection 2 is accepted */
    seed_flush(&s);
    seed_byte(&s, control(chunk_switch, 1));
    seed_valid(&s, valid_request, 2, tw_operation_echo, echo_bytes, 4);
    seed_flush(&s);
    seed_byte(&s, control(chunk_switch, 0)); /* reopened */
    seed_valid(&s, valid_request, 1, tw_operation_echo, echo_bytes, 4); /* evicted: too_many_clients */
    seed_valid(&s, valid_ping, 1, tw_operation_none, NULL, 0);
    seed_valid(&s, valid_register, 1, tw_operation_none, NULL, 0);
    failed |= seed_write(dir, "lru-eviction-connections-max", &s);

    /* A ping flood in one write: the header-only send slots fill and sends are dropped. */
    seed_start(&s, 0x70);
    seed_valid(&s, valid_register, 1, tw_operation_none, NULL, 0);
    seed_flush(&s);
    seed_valid(&s, valid_ping, 1, tw_operation_none, NULL, 0);
    seed_byte(&s, control(chunk_repeat, 9));
    seed_valid(&s, valid_request, 1, tw_operation_echo, echo_bytes, 4);
    seed_byte(&s, control(chunk_repeat, 3)); /* retries while the reply is still being written */
    failed |= seed_write(dir, "ping-flood-dropped-sends", &s);

    /* Half-closed: the write side shut after a request; the reply still comes. */
    seed_start(&s, 0x80);
    seed_valid(&s, valid_register, 1, tw_operation_none, NULL, 0);
    seed_flush(&s);
    seed_valid(&s, valid_request, 1, tw_operation_echo, echo_bytes, 4);
    seed_byte(&s, control(chunk_close, 1));
    seed_flush(&s);
    seed_byte(&s, control(chunk_switch, 1));
    seed_valid(&s, valid_request, 1, tw_operation_echo, echo_bytes, 4);
    failed |= seed_write(dir, "shutdown-write-side", &s);

    /* The ledger: linked chains, limits, flags, overflows, missing accounts. */
    seed_start(&s, 0x90);
    seed_valid(&s, valid_register, 1, tw_operation_none, NULL, 0);
    seed_flush(&s);
    static const uint8_t accounts_mixed[] = {0x08, 0x09, 0x02, 0x00, 0x53, 0x14};
    seed_valid(&s, valid_request, 1, tw_operation_create_accounts, accounts_mixed, sizeof(accounts_mixed));
    seed_flush(&s);
    static const uint8_t transfers_mixed[] = {0x08, 0x02, 0x88, 0x10, 0x01, 0x03,
                                              0x0b, 0x00, 0x28, 0x06, 0x10, 0x40};
    seed_valid(&s, valid_request, 1, tw_operation_create_transfers, transfers_mixed, 4);
    seed_flush(&s);
    static const uint8_t lookups_all[] = {0, 1, 2, 3, 4, 5};
    seed_valid(&s, valid_request, 1, tw_operation_lookup_accounts, lookups_all, sizeof(lookups_all));
    seed_valid(&s, valid_request, 1, tw_operation_lookup_transfers, lookups_all, 4);
    seed_flush(&s);
    failed |= seed_write(dir, "ledger-results", &s);

    /* Bytes that are no message, after a good one; and a body split over two writes. */
    seed_start(&s, 0x01);
    seed_valid(&s, valid_register, 1, tw_operation_none, NULL, 0);
    seed_flush(&s);
    seed_valid(&s, valid_request, 1, tw_operation_echo, echo_bytes, 4);
    seed_byte(&s, control(chunk_flush, 1)); /* written, not settled */
    seed_byte(&s, control(chunk_raw, 0));
    seed_byte(&s, TW_HEADER_SIZE + 12u); /* a header's worth of bytes that are none */
    for (uint32_t i = 0; i < TW_HEADER_SIZE + 12u; i++) seed_byte(&s, (i * 37u + 11u) & 0xffu);
    failed |= seed_write(dir, "raw-garbage", &s);

    return failed;
}

/* ---- the target --------------------------------------------------------------------------- */

/* One line per input (TWIN_FUZZ_VERBOSE=1, as the replay program sets): what the server
 * did, by its counters. */
static void print_run(const tw_sim_report *report) {
    const tw_server_stats *s = &state.stats;
    char malformed[256] = "";
    size_t used = 0;
    for (uint32_t e = 1; e < tw_proto_error_count && used < sizeof(malformed); e++) {
        if (s->malformed[e] == 0) continue;
        used += (size_t)snprintf(malformed + used, sizeof(malformed) - used, "%s%s:%llu", used > 0 ? "," : "",
                                 tw_proto_error_name((tw_proto_error)e), (unsigned long long)s->malformed[e]);
    }
    char evicted[256] = "";
    used = 0;
    for (uint32_t r = 1; r < TW_EVICTION_REASON_COUNT && used < sizeof(evicted); r++) {
        if (s->evictions_sent[r] == 0) continue;
        used += (size_t)snprintf(evicted + used, sizeof(evicted) - used, "%s%s:%llu", used > 0 ? "," : "",
                                 tw_eviction_reason_name((tw_eviction_reason)r),
                                 (unsigned long long)s->evictions_sent[r]);
    }
    printf("fuzz_server_input: outcome=%s connects=%u registrations=%llu executed=%llu retries=%llu "
           "ignored=%llu pings=%llu dropped=%llu replies_checked=%llu malformed=%s evictions_sent=%s "
           "steps=%llu hash=%016llx\n",
           tw_sim_outcome_name(report->outcome), state.connects, (unsigned long long)s->registrations,
           (unsigned long long)s->requests_executed, (unsigned long long)s->retries_answered,
           (unsigned long long)s->requests_ignored, (unsigned long long)s->pings,
           (unsigned long long)s->sends_dropped, (unsigned long long)state.replies_checked,
           malformed[0] != '\0' ? malformed : "none", evicted[0] != '\0' ? evicted : "none",
           (unsigned long long)report->steps, (unsigned long long)report->hash);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    if (*argc >= 3 && strcmp((*argv)[1], "--write-seeds") == 0) exit(write_seeds((*argv)[2]));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    memset(&state, 0, offsetof(fuzz_state, last_message));
    for (uint32_t i = 0; i < CONNECTIONS_TOTAL; i++) state.conns[i].index = i;
    state.data = data;
    state.size = size;
    state.offset = 1;
    state.timestamp_next = 1;
    uint8_t world = size > 0 ? data[0] : 0;
    tw_sim_net_rates rates = {
        .partial_send_one_in = partial_rates[world & 3u],
        .partial_receive_one_in = partial_rates[(world >> 2) & 3u],
    };
    tw_sim_options options = {
        .seed = world >> 4,
        .strategy = tw_sim_strategy_random,
        .switch_shift = 1,
        .spurious_shift = -1,
        .steps_max = STEPS_MAX,
        .net = {.rates = &rates},
    };
    tw_sim_report report;
    tw_sim_run(&options, world_main, &state, &report);
    if (tw_fuzz_verbose()) print_run(&report);
    if (report.outcome != tw_sim_passed) {
        fprintf(stderr, "fuzz_server_input: %s: %s\n", tw_sim_outcome_name(report.outcome), report.message);
        abort();
    }
    if (report.allocations_live != 0) {
        fprintf(stderr, "fuzz_server_input: %llu of the run's %llu blocks were never freed (a leak)\n",
                (unsigned long long)report.allocations_live, (unsigned long long)report.allocations);
        abort();
    }
    return 0;
}
