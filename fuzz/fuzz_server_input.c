/* twin fuzz target: server input. Arbitrary bytes become a stream of messages into the
 * server's framing and request path: tw_server_core (src/server_core.c: the frame reader of
 * src/proto.c, sessions, evictions, exactly-once requests, the ledger), which is what
 * tw_server runs on each connection's bytes. No world, no loop, no sockets: the target is
 * the core's IO. It hands each connection's bytes to the core in pieces and reads what the
 * core sends in the same call, so an input runs in microseconds. (The server's sockets,
 * accept limit and dropped sends are the shell's, src/server.c: the simulator target and
 * twin-sim's sweeps run those.)
 *
 * The input. Byte 0: bits 0-1 and 2-3 say how often a piece of a connection's bytes handed
 * to the core is cut short (each: never, 1 in 2, 4 or 16; either cuts), bits 4-7 seed where
 * (PCG32). The rest is a list of chunks, each a control byte c (kind c >> 5, flags c & 31)
 * and what that kind reads. Every chunk goes to the current connection (connection 0 to
 * begin with); missing bytes read as 0.
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
 *   3 FLUSH    hands what the connection has appended to the core; unless flag bit 0, the
 *              clock then moves on SETTLE_NS.
 *   4 SWITCH   the current connection becomes flags % FUZZ_CONNECTIONS_MAX, opened first
 *              if it is not, or if the server closed it (CONNECTS_MAX per input).
 *   5 CLOSE    flushes, then closes the connection (flag bit 0: shuts down its write side,
 *              which the server takes as the end of it too).
 *   6 REPEAT   the last message again, (flags + 1) times (a retry, a ping flood).
 *   7 VALID    a well-formed message with every field right: b = next byte: command
 *              (b >> 6: register, request, ping, request), operation 1 + (b & 7) % 5,
 *              client 1 + ((b >> 3) & 3) % 3; a request then reads an event count byte
 *              (echo: bytes; else & 7, at most the operation's maximum) and the events,
 *              built from one or two input bytes each (make_event_*).
 * At the end every connection is flushed. An input appends at most INPUT_STREAM_TOTAL_MAX
 * bytes in all (16 KiB, 128 header-only messages); what would go past it is dropped, so
 * that REPEAT cannot make one input thousands of messages long.
 *
 * The oracle, besides no assertion failing in the core: every message the server sends
 * is a well-formed message (tw_header_check and tw_body_valid pass) of a command it may send
 * (reply, eviction, pong) and is what it should be: a reply names an op the server
 * committed (the commit observer) for that client and request, with that op's timestamp,
 * session and operation, and exactly that op's reply body (cached replies too); a register
 * reply carries session = op and the batch size; an eviction a known reason; a pong a
 * timestamp some message carried. Each commit is checked as it happens: ops 1, 2, 3, ...,
 * timestamps increasing, create results sparse, ascending, in range and with known codes,
 * lookups no more objects than ids asked, echoes the body back. Whatever the server sends
 * goes to a connection where that client sent something. The core closes a connection
 * only once, and sends nothing on it afterwards. Then the server must still be
 * up: every connection is closed, a fresh one sends a valid ping and must get its pong.
 * Finally its counters must add up: ops = registrations + requests executed = the commits
 * seen. (Leaks: the core's deinit frees what its init allocated; LeakSanitizer checks that
 * in the libFuzzer build and the asan preset's replay.)
 *
 * A failure prints what was wrong and aborts (every engine reports it as a crash).
 * `fuzz_server_input --write-seeds DIR` writes the seed inputs (corpus/server_input/). */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/hash.h>
#include <twin/ledger.h>
#include <twin/pcg.h>
#include <twin/proto.h>
#include <twin/server.h>
#include <twin/server_core.h>

#include "common.h"

#define MS_NS (1000ull * 1000ull)

/* The server: small limits, so that every limit is within a short input's reach. */
#define SERVER_MESSAGE_SIZE_MAX 512u
#define SERVER_BODY_SIZE_MAX (SERVER_MESSAGE_SIZE_MAX - TW_HEADER_SIZE)
#define SERVER_CLIENTS_MAX 2u
#define SERVER_CONNECTIONS_MAX 2u /* the options ask for it; the core has no connection limit */
#define SERVER_ACCOUNTS_MAX 4u
#define SERVER_TRANSFERS_MAX 4u
#define SERVER_RELEASE_MIN 1u
#define SERVER_RELEASE_MAX 2u
#define CLUSTER_LOW 0x7477u

/* The connections. */
#define FUZZ_CONNECTIONS_MAX 3u               /* the input's connections */
#define CHECK_CONNECTION FUZZ_CONNECTIONS_MAX /* the last one: the "still up" ping */
#define CONNECTIONS_TOTAL (FUZZ_CONNECTIONS_MAX + 1u)
#define CONNECTS_MAX 16u                      /* connections opened per input, the check's included */
#define FUZZ_CLIENT_IDS 4u                    /* client ids 0..3 */
#define CHECK_CLIENT_LOW 0x100u               /* a client id no input uses */
#define CHECK_PING_TIMESTAMP 0x636865636bull  /* "check" */
#define STREAM_SIZE_MAX (16u * 1024u)         /* bytes appended per connection between flushes */
/* Bytes appended in all per input: REPEAT multiplies a short input into thousands of
 * messages, and every limit is reached long before (128 header-only messages). */
#define INPUT_STREAM_TOTAL_MAX (4u * 1024u)
#define BODY_SIZE_FIELD_MASK 0x3ffu           /* MSG: 10 bits of body size */
#define MESSAGE_SIZE_BUILT_MAX (TW_HEADER_SIZE + BODY_SIZE_FIELD_MASK)
#define VALID_EVENTS_MASK 7u                  /* VALID: up to 7 events (capped to the maximum) */
#define REPEAT_FLAGS_MASK 31u
/* tw_server_buffer_size(SERVER_MESSAGE_SIZE_MAX), as a constant */
#define RECEIVE_BUFFER_SIZE \
    ((SERVER_MESSAGE_SIZE_MAX + TW_SERVER_BUFFER_ALIGN - 1u) / TW_SERVER_BUFFER_ALIGN * TW_SERVER_BUFFER_ALIGN)

/* Time, the core's clock: it moves SETTLE_NS at a settling FLUSH, PIECE_NS per piece. */
#define SETTLE_NS (20ull * MS_NS)
#define PIECE_NS 1000ull
#define TIME_START_NS (1000ull * MS_NS)
#define COMMITS_MAX 8192u

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
static const uint32_t cut_rates[4] = {0, 2, 4, 16};
static const tw_u128 cluster = {.low = CLUSTER_LOW, .high = 0};
static const tw_u128 cluster_other = {.low = CLUSTER_LOW + 1u, .high = 0};

/* ---- state -------------------------------------------------------------------------------- */

typedef struct fuzz_conn {
    uint32_t index;
    bool open;           /* a peer of the core, not closed by either side */
    bool server_closed;  /* the core closed it (the client would read the end) */
    uint32_t appended;   /* bytes of stream since the last flush */
    uint32_t spoke;      /* client_bit of every client a message on it was built for */
    uint64_t messages_in; /* from the server */
    tw_server_peer peer;
    _Alignas(16) uint8_t receive_buffer[RECEIVE_BUFFER_SIZE]; /* the peer's, the core's reader */
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
    tw_server_core core;
    uint64_t now_ns;
    tw_pcg32 cuts;
    uint32_t cut_one_in[2];
    fuzz_conn conns[CONNECTIONS_TOTAL];
    uint32_t current;
    uint32_t connects;
    uint32_t appended_total; /* of INPUT_STREAM_TOTAL_MAX */
    uint32_t pieces;
    bool pong_checked;
    bool verbose;            /* TWIN_FUZZ_VERBOSE: the digest below is kept */
    uint64_t timestamp_next; /* every message carries one; pongs echo a ping's */
    uint64_t sent_digest;    /* of every message the server sent, in order (the verbose line) */
    /* What the commits said, per client id 0..3 (auto fields). */
    uint64_t known_session[FUZZ_CLIENT_IDS];
    uint64_t known_request[FUZZ_CLIENT_IDS];
    /* auto requests appended on each connection and not yet handed to the core */
    uint32_t auto_pending[CONNECTIONS_TOTAL][FUZZ_CLIENT_IDS];
    uint64_t op_last;
    uint64_t timestamp_last;
    uint64_t replies_checked;
    tw_server_stats stats; /* at the end, for the verbose line */
    /* The last message built, for REPEAT. */
    uint32_t last_size;
    uint32_t last_client_bit;
    _Alignas(16) uint8_t last_message[MESSAGE_SIZE_BUILT_MAX];
    _Alignas(16) uint8_t events[SERVER_BODY_SIZE_MAX];
} fuzz_state;

/* HARNESS_UNCOVERED (fuzz/common.h): the oracle's checks and the connections' bookkeeping;
 * what decodes the input (chunk_run and the message builders) stays covered. */
static fuzz_state state;
static uint8_t streams[CONNECTIONS_TOTAL][STREAM_SIZE_MAX];
static commit_record commits[COMMITS_MAX];

HARNESS_UNCOVERED static bool u128_equal(tw_u128 a, tw_u128 b) { return a.low == b.low && a.high == b.high; }

/* ---- input ------------------------------------------------------------------------------- */

static uint8_t input_byte(fuzz_state *st) { return st->offset < st->size ? st->data[st->offset++] : 0; }

static uint32_t input_u16(fuzz_state *st) {
    uint32_t low = input_byte(st);
    uint32_t high = input_byte(st);
    return low | high << 8;
}

/* ---- the oracle on what the server sends ----------------------------------------------------- */

HARNESS_UNCOVERED static tw_u128 body_checksum(const uint8_t *body, uint32_t body_size) {
    tw_header scratch = {.size = TW_HEADER_SIZE + body_size};
    tw_header_seal(&scratch, body);
    return scratch.checksum_body;
}

HARNESS_UNCOVERED static void check_reply(fuzz_state *st, const fuzz_conn *conn, const tw_header *h) {
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

/* A bit per client id a message can be built for (0..3, and the final check's); 0 else. */
HARNESS_UNCOVERED static uint32_t client_bit(tw_u128 client) {
    if (client.high != 0) return 0;
    if (client.low < FUZZ_CLIENT_IDS) return 1u << client.low;
    if (client.low == CHECK_CLIENT_LOW) return 1u << FUZZ_CLIENT_IDS;
    return 0;
}

HARNESS_UNCOVERED static void on_server_message(void *context, const tw_header *h, const uint8_t *body) {
    (void)body;
    fuzz_conn *conn = context;
    fuzz_state *st = &state;
    conn->messages_in++;
    /* The server answers a client only where it spoke: a reply, pong or eviction goes to
     * the connection the message came on, or where the session's client last spoke. */
    uint32_t bit = client_bit(h->client);
    if (bit == 0 || (conn->spoke & bit) == 0) {
        tw_fuzz_fail("connection %u: a %s message for client %llu, which sent nothing on this connection",
                     conn->index, tw_command_name((tw_command)h->command), (unsigned long long)h->client.low);
    }
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
HARNESS_UNCOVERED static void on_commit(void *context, const tw_server_commit *commit) {
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

/* ---- the core's port: what the server sends arrives at once ---------------------------------- */

HARNESS_UNCOVERED static uint64_t port_now_ns(void *context) {
    fuzz_state *st = context;
    return st->now_ns;
}

HARNESS_UNCOVERED static fuzz_conn *conn_of(fuzz_state *st, tw_server_peer *peer) {
    fuzz_conn *conn = (fuzz_conn *)(void *)((char *)peer - offsetof(fuzz_conn, peer));
    TW_ASSERT(conn >= st->conns && conn < st->conns + CONNECTIONS_TOTAL && &conn->peer == peer);
    return conn;
}

/* The client side reads what the server sent: frames, then the oracle per message. */
HARNESS_UNCOVERED static void port_receive(fuzz_state *st, tw_server_peer *peer, const tw_header *header) {
    fuzz_conn *conn = conn_of(st, peer);
    if (!conn->open || conn->server_closed) {
        tw_fuzz_fail("connection %u: the server sent a %s message on a connection it had closed",
                     conn->index, tw_command_name((tw_command)header->command));
    }
    if (header->size < TW_HEADER_SIZE || header->size > SERVER_MESSAGE_SIZE_MAX) {
        tw_fuzz_fail("connection %u: the server sent a message of %u bytes (%u..%u)", conn->index,
                     header->size, TW_HEADER_SIZE, SERVER_MESSAGE_SIZE_MAX);
    }
    if (st->verbose) { /* the digest is for the verbose line only */
        uint64_t digest = tw_mix64(st->sent_digest ^ ((uint64_t)conn->index << 32 | header->size));
        const uint8_t *bytes = (const uint8_t *)header;
        for (uint32_t i = 0; i < header->size; i++) digest = tw_mix64(digest ^ bytes[i]);
        st->sent_digest = digest;
    }
    /* Each send is one whole message: the checks a frame reader makes, without its copy. */
    const uint8_t *body = (const uint8_t *)(header + 1);
    tw_proto_error error = tw_header_check(header, cluster, SERVER_MESSAGE_SIZE_MAX);
    if (error == tw_proto_ok && !tw_body_valid(header, body)) error = tw_proto_bad_body_checksum;
    if (error == tw_proto_ok) on_server_message(conn, header, body);
    if (error != tw_proto_ok) {
        tw_fuzz_fail("connection %u: the server sent a malformed message (%s)", conn->index,
                     tw_proto_error_name(error));
    }
}

HARNESS_UNCOVERED static void port_send_reply(void *context, tw_server_peer *peer, const tw_header *reply) {
    port_receive(context, peer, reply);
}

HARNESS_UNCOVERED static void port_send_small(void *context, tw_server_peer *peer, const tw_header *header) {
    TW_ASSERT(header->size == TW_HEADER_SIZE);
    port_receive(context, peer, header);
}

HARNESS_UNCOVERED static void port_close(void *context, tw_server_peer *peer, const char *why) {
    fuzz_conn *conn = conn_of(context, peer);
    TW_ASSERT(why != NULL && peer->closing);
    if (!conn->open || conn->server_closed) {
        tw_fuzz_fail("connection %u: closed twice (%s)", conn->index, why);
    }
    conn->server_closed = true;
}

/* ---- connections ------------------------------------------------------------------------- */

HARNESS_UNCOVERED static void conn_open_new(fuzz_state *st, fuzz_conn *conn) {
    TW_ASSERT(!conn->open);
    TW_ASSERT(st->connects < CONNECTS_MAX);
    uint32_t index = conn->index;
    memset(conn, 0, offsetof(fuzz_conn, receive_buffer));
    conn->index = index;
    conn->open = true;
    st->connects++;
    memset(st->auto_pending[index], 0, sizeof(st->auto_pending[index]));
    tw_server_core_peer_init(&st->core, &conn->peer, conn->receive_buffer, st->connects);
}

/* A piece of at most room bytes: all of it, or cut short 1 in cut_one_in[k] times. */
HARNESS_UNCOVERED static uint32_t piece_size(fuzz_state *st, uint32_t room) {
    TW_ASSERT(room > 0);
    for (uint32_t k = 0; k < 2; k++) {
        uint32_t one_in = st->cut_one_in[k];
        if (one_in != 0 && tw_pcg32_bounded(&st->cuts, one_in) == 0) {
            return 1u + tw_pcg32_bounded(&st->cuts, room);
        }
    }
    return room;
}

/* Hands what the connection appended to the core, in pieces as its reader asks for them,
 * until the core closes it (what follows is lost, as on a socket the server closed). */
HARNESS_UNCOVERED static void flush(fuzz_state *st, fuzz_conn *conn) {
    uint32_t from = 0;
    while (conn->open && !conn->server_closed && from < conn->appended) {
        uint32_t room = 0;
        uint8_t *space = tw_server_core_peer_space(&conn->peer, &room);
        TW_ASSERT(space != NULL && room > 0);
        uint32_t left = conn->appended - from;
        uint32_t count = piece_size(st, room < left ? room : left);
        memcpy(space, streams[conn->index] + from, count);
        from += count;
        st->now_ns += PIECE_NS;
        st->pieces++;
        tw_server_core_receive(&st->core, &conn->peer, count);
    }
    conn->appended = 0;
    memset(st->auto_pending[conn->index], 0, sizeof(st->auto_pending[conn->index]));
}

HARNESS_UNCOVERED static void append(fuzz_state *st, const void *bytes, uint32_t size) {
    fuzz_conn *conn = &st->conns[st->current];
    if (size > STREAM_SIZE_MAX - conn->appended) return; /* full: dropped */
    if (size > INPUT_STREAM_TOTAL_MAX - st->appended_total) return;
    memcpy(streams[conn->index] + conn->appended, bytes, size);
    conn->appended += size;
    st->appended_total += size;
}

/* Hands over everything appended, then closes: the server reads the end of the stream. */
HARNESS_UNCOVERED static void conn_close(fuzz_state *st, fuzz_conn *conn) {
    if (!conn->open) return;
    flush(st, conn);
    if (!conn->server_closed) tw_server_core_peer_close(&st->core, &conn->peer, "the client closed it");
    if (!conn->server_closed) {
        tw_fuzz_fail("connection %u: tw_server_core_peer_close did not close it", conn->index);
    }
    conn->open = false;
}

/* ---- building messages -------------------------------------------------------------------- */

static uint64_t auto_request(fuzz_state *st, uint32_t id, tw_command command, uint32_t back) {
    if (command == tw_command_register) return 0;
    uint64_t pending = 0;
    for (uint32_t c = 0; c < CONNECTIONS_TOTAL; c++) pending += st->auto_pending[c][id];
    uint64_t next = st->known_request[id] + 1u + pending;
    if (command == tw_command_request && back == 0) st->auto_pending[st->current][id]++;
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
    st->last_client_bit = client_bit(h->client);
    st->conns[st->current].spoke |= st->last_client_bit;
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

/* ---- a run ---------------------------------------------------------------------------------- */

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
        flush(st, conn);
        if ((flags & 1u) == 0) st->now_ns += SETTLE_NS;
        break;
    case chunk_switch: {
        st->current = flags % FUZZ_CONNECTIONS_MAX;
        fuzz_conn *next = &st->conns[st->current];
        if (next->server_closed) conn_close(st, next); /* the server closed it: a new one */
        if (!next->open && st->connects + 1u < CONNECTS_MAX) conn_open_new(st, next);
        break;
    }
    case chunk_close: conn_close(st, conn); break;
    case chunk_repeat:
        for (uint32_t i = 0; i <= (flags & REPEAT_FLAGS_MASK) && st->last_size > 0; i++) {
            append(st, st->last_message, st->last_size);
        }
        conn->spoke |= st->last_client_bit;
        break;
    case chunk_valid: chunk_valid_build(st); break;
    }
}

/* The server must still answer: every input connection closed, a fresh one pings. */
HARNESS_UNCOVERED static void check_still_up(fuzz_state *st) {
    for (uint32_t i = 0; i < FUZZ_CONNECTIONS_MAX; i++) conn_close(st, &st->conns[i]);
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
    check->spoke |= client_bit(ping.client);
    st->appended_total = 0; /* the check's ping is not the input's: never dropped */
    append(st, &ping, TW_HEADER_SIZE);
    flush(st, check);
    if (!st->pong_checked) {
        tw_fuzz_fail("the server %s a fresh connection's valid ping (%llu messages on it)",
                     check->server_closed ? "closed the connection on" : "did not answer",
                     (unsigned long long)check->messages_in);
    }
    conn_close(st, check);
}

static void run(fuzz_state *st) {
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
    tw_server_port port = {
        .context = st,
        .now_ns = port_now_ns,
        .send_reply = port_send_reply,
        .send_small = port_send_small,
        .close = port_close,
    };
    tw_server_error error = tw_server_core_init(&st->core, &options, &port);
    if (error != tw_server_ok) tw_fuzz_fail("tw_server_core_init: %s", tw_server_error_name(error));
    st->core.commit_observer = on_commit;
    st->core.commit_context = st;
    st->current = 0;
    conn_open_new(st, &st->conns[0]);

    while (st->offset < st->size) chunk_run(st);
    for (uint32_t i = 0; i < FUZZ_CONNECTIONS_MAX; i++) flush(st, &st->conns[i]);
    check_still_up(st);

    const tw_server_stats *stats = &st->core.stats;
    if (stats->op != stats->registrations + stats->requests_executed || stats->op != st->op_last ||
        tw_server_core_sessions(&st->core) > SERVER_CLIENTS_MAX) {
        tw_fuzz_fail("the server's counters: op %llu, registrations %llu, requests_executed %llu, commits seen %llu, "
                     "sessions %u",
                     (unsigned long long)stats->op, (unsigned long long)stats->registrations,
                     (unsigned long long)stats->requests_executed, (unsigned long long)st->op_last,
                     tw_server_core_sessions(&st->core));
    }
    st->stats = *stats;
    tw_server_core_deinit(&st->core);
}

/* ---- seeds -------------------------------------------------------------------------------- */

/* The seed inputs of corpus/server_input/, written by `fuzz_server_input --write-seeds DIR`:
 * valid messages of every command and operation, pipelined and settled, retries, every
 * malformed class, every protocol violation, LRU eviction over three connections, a ping
 * flood, half-closed connections, and the ledger's results. (The file names are those of
 * the first version of this target, which ran in a simulated world.) */

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
    seed_byte(&s, control(chunk_switch, 2)); /* a third connection */
    seed_valid(&s, valid_register, 3, tw_operation_none, NULL, 0);
    seed_flush(&s);
    seed_byte(&s, control(chunk_switch, 0));
    seed_byte(&s, control(chunk_close, 0)); /* connection 0 closes */
    seed_flush(&s);
    seed_byte(&s, control(chunk_switch, 1));
    seed_valid(&s, valid_request, 2, tw_operation_echo, echo_bytes, 4);
    seed_flush(&s);
    seed_byte(&s, control(chunk_switch, 0)); /* reopened */
    seed_valid(&s, valid_request, 1, tw_operation_echo, echo_bytes, 4); /* evicted: too_many_clients */
    seed_valid(&s, valid_ping, 1, tw_operation_none, NULL, 0);
    seed_valid(&s, valid_register, 1, tw_operation_none, NULL, 0);
    failed |= seed_write(dir, "lru-eviction-connections-max", &s);

    /* A ping flood in one write, and retries right behind their request. */
    seed_start(&s, 0x70);
    seed_valid(&s, valid_register, 1, tw_operation_none, NULL, 0);
    seed_flush(&s);
    seed_valid(&s, valid_ping, 1, tw_operation_none, NULL, 0);
    seed_byte(&s, control(chunk_repeat, 9));
    seed_valid(&s, valid_request, 1, tw_operation_echo, echo_bytes, 4);
    seed_byte(&s, control(chunk_repeat, 3)); /* retries: the cached reply each time */
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
 * did, by its counters, and a digest of every byte it sent. */
static void print_run(void) {
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
    printf("fuzz_server_input: outcome=passed connects=%u pieces=%u registrations=%llu executed=%llu "
           "retries=%llu ignored=%llu pings=%llu replies_checked=%llu malformed=%s evictions_sent=%s "
           "sent=%016llx\n",
           state.connects, state.pieces, (unsigned long long)s->registrations,
           (unsigned long long)s->requests_executed, (unsigned long long)s->retries_answered,
           (unsigned long long)s->requests_ignored, (unsigned long long)s->pings,
           (unsigned long long)state.replies_checked, malformed[0] != '\0' ? malformed : "none",
           evicted[0] != '\0' ? evicted : "none", (unsigned long long)state.sent_digest);
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
    state.now_ns = TIME_START_NS;
    state.verbose = tw_fuzz_verbose();
    uint8_t world = size > 0 ? data[0] : 0;
    state.cut_one_in[0] = cut_rates[world & 3u];
    state.cut_one_in[1] = cut_rates[(world >> 2) & 3u];
    tw_pcg32_seed(&state.cuts, world >> 4, 0);
    run(&state);
    if (tw_fuzz_verbose()) print_run();
    return 0;
}
