/* twin fuzz target: client replies. Arbitrary replies to an in-flight batch go into the
 * client's demultiplexing (src/client_core.c: on_message, on_reply, results_deliver).
 *
 * One small simulated world per input (no network faults but latency): a tw_client (its IO
 * thread is a fiber) connects to a scripted server peer that runs on the main fiber's own
 * loop. The main fiber is also the user: it submits the input's packets (before the
 * register reply, so that they batch, and while later requests are in flight), and the
 * peer answers what the client sends with what the input says.
 *
 * The input. Byte 0 is the world: bits 0-3 the seed (latencies, the scheduler, the client's
 * id and jitter), bits 4-5 the batch size the peer announces (batch_sizes: 896, 320, 160 or
 * 80 bytes, the least the client takes), bit 6 batching
 * off, bit 7: registers are answered by the script too (else at once, validly). Byte 1:
 * 1 + b % PACKETS_MAX packets, two bytes each: p0 = operation (bits 0-2: 1..5 are the
 * operations, 0, 6 and 7 invalid) | events (bits 3-7: 0..31; echo: ECHO_BYTES_PER_EVENT
 * bytes each); p1 = last event linked (bit 0), a bad data size (bit 1: one byte more, or
 * for echo data NULL, of 1 byte if it had none), the round it is submitted in (bits 2-3:
 * 0 at the start, r when the peer reads the client's r-th request, or earlier once no
 * packet is outstanding), the events' contents (bits 4-7). Then the replies:
 * for each message the client sends, the peer runs chunks until an END; a control byte c
 * (kind c >> 5, flags c & 31) and what its kind reads; missing bytes read as 0:
 *   0 REPLY     a reply with the message's client, request and operation, the session the
 *               peer gave, the next op and timestamp; m = next byte. Flag bit 0: a body that
 *               is right for the request (creates: m % 32 results, each from one byte:
 *               index byte % events, sorted, duplicates dropped, code 1 + byte % 17;
 *               lookups: m % (events + 1) objects; echo: the request's body), else a raw one
 *               (creates: m % 32 {index, result} byte pairs as given; lookups: m objects of
 *               one byte each repeated; echo and register: m bytes). Bit 1 another client
 *               id, bit 2 the request number plus a signed byte, bit 3 the operation from a
 *               byte (& 7), bit 4 timestamp 0.
 *   1 EVICTION  reason flags & 7 (so unknown ones too); bit 3: another client id.
 *   2 OTHER     a header-only message of command flags & 7 (register, request, ping, pong,
 *               reply, eviction, none and an unknown one), the message's client and request.
 *   3 MALFORMED a right reply (m and its bytes as for REPLY) made malformed: bit 0 header
 *               checksum, bit 1 body checksum, bit 2 cluster, bit 3 a reserved byte (one
 *               more byte: which), bit 4 the size field from the next 2 bytes.
 *   4 RAW       n = next byte, then n bytes as they are.
 *   5 END       what the chunks built is written in one write; bit 0: then the peer closes
 *               the connection (the client retries on a new one).
 *   6 DELAY     writes what is built, then (flags + 1) * DELAY_UNIT_NS of virtual time pass
 *               (past the client's request timeout from flags 12 on).
 *   7 REPEAT    the last message built, (flags & 7) + 1 times more (stale duplicates).
 * When the replies run out, the world settles, the packets not yet submitted are submitted,
 * and the client is deinit'ed.
 *
 * The oracle, besides no assertion failing in the client: every packet completes exactly
 * once (ok, or a status, after deinit at the latest), with a status it can have:
 * invalid_operation only for the invalid operations, invalid_data_size only for bad sizes,
 * too_much_data only for more events than the announced batch size allows (and each of
 * these packets with nothing else but client_shutdown), an eviction status only for a
 * reason the peer sent, client_shutdown only once deinit began. An ok packet has a
 * timestamp and results of the right size for ITS OWN events: creates {index, result}
 * pairs, indexes ascending and below its own event count (rebased to it), lookups whole
 * objects, at most one per id, echo exactly its own byte count. What the client sends is
 * checked too: well-formed frames, a register (request 0) only as the first message on a
 * connection, request numbers increasing on each connection (the peer may miss a message
 * on a connection it closed), a number sent again (a retry) with the same operation and
 * bytes, the session the peer gave, bodies of whole events within the announced batch
 * size. At the end every block the client allocated must be freed.
 *
 * A failure prints the world's message and aborts (every engine reports it as a crash).
 * `fuzz_client_replies --write-seeds DIR` writes the seed inputs (corpus/client_replies/). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/client.h>
#include <twin/ledger.h>
#include <twin/loop.h>
#include <twin/os.h>
#include <twin/proto.h>
#include <twin/sim.h>
#include <twin/tcp.h>

#include "common.h"

#define MS_NS (1000ull * 1000ull)

/* The client. */
#define CLIENT_MESSAGE_SIZE_MAX 1024u
#define CLIENT_BODY_SIZE_MAX (CLIENT_MESSAGE_SIZE_MAX - TW_HEADER_SIZE)
#define CLIENT_REQUEST_TIMEOUT_NS (50ull * MS_NS)
#define CLIENT_BACKOFF_MIN_NS (1ull * MS_NS)
#define CLIENT_BACKOFF_MAX_NS (8ull * MS_NS)
#define CLUSTER_LOW 0x6369u
#define CLIENT_ID_LOW 0xc11e47u
#define CLIENT_ID_HIGH 1u

/* The packets. */
#define PACKETS_MAX 8u
#define PACKET_EVENTS_MAX 31u
#define ECHO_BYTES_PER_EVENT 29u /* 31 events: 899 bytes, above the body maximum */
#define PACKET_DATA_SIZE_MAX (PACKET_EVENTS_MAX * 80u + 1u)
#define ROUNDS 4u

/* The peer. */
#define PEER_SESSION 7u
#define PEER_OP_FIRST 100u
#define PEER_TIMESTAMP_FIRST 1000u
#define PEER_CONNS 4u
#define PEER_INBOX_MAX 8u
#define PEER_OUT_SIZE (16u * 1024u)   /* bytes written per connection */
#define PEER_WRITES_MAX 16u
#define PEER_MESSAGES_MAX 256u        /* messages the peer answers per input */
#define MESSAGE_BUILT_SIZE_MAX (TW_HEADER_SIZE + 1024u)
#define CREATE_RESULTS_MAX 31u
#define REPEAT_MAX_MASK 7u
#define DELAY_UNIT_NS (4ull * MS_NS)
#define REQUESTS_RECORDED 512u /* request numbers whose bytes are remembered */

/* Time, virtual. */
#define SETTLE_NS (20ull * MS_NS)
#define WAIT_NS (10000ull * MS_NS) /* the client sends nothing for this long: stuck */
#define STEPS_MAX (10u * 1000u * 1000u)
#define LOOP_TIMERS_MAX 16u /* the peer's: the guard */

static const uint32_t batch_sizes[4] = {CLIENT_BODY_SIZE_MAX, 320u, 160u,
                                        TW_CLIENT_MESSAGE_SIZE_MIN - TW_HEADER_SIZE};
static const tw_u128 cluster = {.low = CLUSTER_LOW, .high = 0};
static const tw_u128 cluster_other = {.low = CLUSTER_LOW + 1u, .high = 0};
static const tw_u128 client_id = {.low = CLIENT_ID_LOW, .high = CLIENT_ID_HIGH};
static const tw_u128 client_other = {.low = CLIENT_ID_LOW + 1u, .high = CLIENT_ID_HIGH};

enum chunk_kind {
    chunk_reply = 0,
    chunk_eviction = 1,
    chunk_other = 2,
    chunk_malformed = 3,
    chunk_raw = 4,
    chunk_end = 5,
    chunk_delay = 6,
    chunk_repeat = 7,
};
#define CHUNK_KIND_SHIFT 5u
#define CHUNK_FLAGS_MASK 31u

enum reply_flag {
    reply_body_right = 1u << 0,
    reply_client_other = 1u << 1,
    reply_request_delta = 1u << 2,
    reply_operation = 1u << 3,
    reply_timestamp_zero = 1u << 4,
};

enum malformed_flag {
    malformed_header_checksum = 1u << 0,
    malformed_body_checksum = 1u << 1,
    malformed_cluster = 1u << 2,
    malformed_reserved = 1u << 3,
    malformed_size = 1u << 4,
};

enum world_bits {
    world_seed_mask = 15u,
    world_batch_shift = 4u,
    world_batch_mask = 3u,
    world_batching_off = 1u << 6,
    world_register_scripted = 1u << 7,
};

enum packet_bits {
    p0_operation_mask = 7u,
    p0_events_shift = 3u,
    p1_linked = 1u << 0,
    p1_bad_size = 1u << 1,
    p1_round_shift = 2u,
    p1_round_mask = 3u,
    p1_content_shift = 4u,
};

/* ---- state -------------------------------------------------------------------------------- */

typedef struct packet_record {
    tw_packet packet;
    uint8_t operation;
    uint32_t events;    /* bytes for echo */
    uint32_t data_size;
    bool operation_valid;
    bool size_valid;
    uint32_t round;
    bool submitted;
    uint32_t completions;
    uint8_t status;
    _Alignas(16) uint8_t data[PACKET_DATA_SIZE_MAX];
} packet_record;

typedef struct request_record {
    bool seen;
    uint8_t operation;
    tw_u128 checksum_body;
} request_record;

typedef struct peer_message {
    tw_header header;
    uint32_t conn; /* the connection it came on */
    _Alignas(16) uint8_t body[CLIENT_BODY_SIZE_MAX];
} peer_message;

typedef struct peer_write {
    tw_write_request request; /* first: tw_write_request_of */
    struct peer_conn *conn;
    bool busy;
} peer_write;

typedef struct peer_conn {
    uint32_t index;
    bool open;     /* accepted, not yet closed by us */
    bool reading;
    bool ended;    /* the client closed it */
    bool closing;
    bool write_failed;
    uint32_t writes_busy;
    uint32_t out_used;
    uint32_t messages;     /* from the client */
    uint64_t request_last; /* of its last message */
    tw_tcp tcp;
    tw_completion c_read;
    tw_completion c_close;
    tw_write_queue queue;
    peer_write writes[PEER_WRITES_MAX];
    tw_frame_reader reader;
    _Alignas(16) uint8_t reader_buffer[CLIENT_MESSAGE_SIZE_MAX];
} peer_conn;

typedef struct fuzz_state {
    const uint8_t *data;
    size_t size;
    size_t offset;
    /* The world's choices. */
    uint32_t batch_size;  /* what the peer announces */
    uint32_t batch_body_max; /* what the client then uses: min(batch_size, its own) */
    bool register_scripted;
    /* The packets. */
    uint32_t packets_count;
    uint32_t submitted;
    uint32_t completed;
    bool deinit_started;
    uint32_t eviction_statuses; /* bit per tw_packet_status an eviction sent may give */
    /* The client. */
    tw_client client;
    /* The peer. */
    tw_loop *loop;
    tw_tcp listener;
    tw_address address;
    bool accepting;
    tw_completion c_accept;
    tw_completion c_listener_close;
    tw_completion c_guard;
    tw_completion c_guard_cancel;
    bool guard_fired;
    uint32_t current; /* the connection accepted last */
    peer_conn conns[PEER_CONNS];
    peer_message inbox[PEER_INBOX_MAX];
    uint32_t inbox_head;
    uint32_t inbox_count;
    uint32_t inbox_dropped;
    peer_message last; /* the message being answered */
    uint64_t op_next;
    uint64_t timestamp_next;
    uint32_t messages_answered;
    uint32_t requests_seen;
    /* What the client sent so far (its own oracle). */
    request_record requests[REQUESTS_RECORDED];
    /* The reply being built, and the last message built (REPEAT). */
    uint32_t out_size;
    uint32_t last_size;
    _Alignas(16) uint8_t out[PEER_OUT_SIZE];
    _Alignas(16) uint8_t last_message[MESSAGE_BUILT_SIZE_MAX];
    _Alignas(16) uint8_t body[MESSAGE_BUILT_SIZE_MAX];
} fuzz_state;

static fuzz_state state;
static packet_record packets[PACKETS_MAX];
static uint8_t conn_out[PEER_CONNS][PEER_OUT_SIZE];

static bool u128_equal(tw_u128 a, tw_u128 b) { return a.low == b.low && a.high == b.high; }

static uint8_t input_byte(fuzz_state *st) { return st->offset < st->size ? st->data[st->offset++] : 0; }

/* ---- the packets and their oracle ---------------------------------------------------------- */

static bool operation_valid(uint8_t operation) {
    return operation >= tw_operation_create_accounts && operation <= tw_operation_echo;
}

static uint32_t events_max_of(const fuzz_state *st, uint8_t operation) {
    TW_ASSERT(operation_valid(operation));
    return tw_operation_events_max((tw_operation)operation, st->batch_body_max + TW_HEADER_SIZE);
}

static tw_packet_status eviction_status_of(uint8_t reason) {
    if (reason == tw_eviction_client_release_too_low) return tw_packet_client_release_too_low;
    if (reason == tw_eviction_client_release_too_high) return tw_packet_client_release_too_high;
    return tw_packet_client_evicted;
}

static void check_ok(const packet_record *r, uint64_t timestamp, const uint8_t *result,
                     uint32_t result_size) {
    uint32_t index = (uint32_t)(r - packets);
    if (!r->operation_valid || !r->size_valid || r->events > events_max_of(&state, r->operation)) {
        tw_fuzz_fail("packet %u (%s, %u events, %u bytes) completed ok, but it is invalid or too big (at most %u)",
             index, tw_operation_name((tw_operation)r->operation), r->events, r->data_size,
             r->operation_valid ? events_max_of(&state, r->operation) : 0);
    }
    if (result == NULL || timestamp == 0) {
        tw_fuzz_fail("packet %u completed ok with result %s and timestamp %llu", index,
             result == NULL ? "NULL" : "set", (unsigned long long)timestamp);
    }
    switch ((tw_operation)r->operation) {
    case tw_operation_create_accounts:
    case tw_operation_create_transfers: {
        if (result_size % sizeof(tw_create_result) != 0 ||
            result_size / sizeof(tw_create_result) > r->events) {
            tw_fuzz_fail("packet %u (%s, %u events): %u result bytes", index,
                 tw_operation_name((tw_operation)r->operation), r->events, result_size);
        }
        for (uint32_t i = 0; i < result_size / sizeof(tw_create_result); i++) {
            tw_create_result c;
            memcpy(&c, result + i * sizeof(c), sizeof(c));
            uint32_t index_before = 0;
            if (i > 0) memcpy(&index_before, result + (i - 1) * sizeof(c), sizeof(index_before));
            if (c.index >= r->events || (i > 0 && c.index <= index_before)) {
                tw_fuzz_fail("packet %u (%s, %u events): result %u has index %u (after %u): not ascending within its "
                     "own events",
                     index, tw_operation_name((tw_operation)r->operation), r->events, i, c.index,
                     index_before);
            }
        }
        break;
    }
    case tw_operation_lookup_accounts:
    case tw_operation_lookup_transfers: {
        uint32_t object_size = tw_operation_result_size((tw_operation)r->operation);
        if (result_size % object_size != 0 || result_size / object_size > r->events) {
            tw_fuzz_fail("packet %u (%s, %u ids): %u result bytes", index,
                 tw_operation_name((tw_operation)r->operation), r->events, result_size);
        }
        break;
    }
    case tw_operation_echo:
        if (result_size != r->data_size) {
            tw_fuzz_fail("packet %u (echo of %u bytes): %u bytes came back", index, r->data_size, result_size);
        }
        break;
    case tw_operation_none: TW_ASSERT(false); break;
    }
}

static void on_completion(uintptr_t context, tw_packet *packet, uint64_t timestamp, const uint8_t *result,
                          uint32_t result_size) {
    TW_ASSERT(context == (uintptr_t)CLIENT_ID_LOW);
    packet_record *r = packet->user_data;
    TW_ASSERT(r >= packets && r < packets + PACKETS_MAX && &r->packet == packet);
    uint32_t index = (uint32_t)(r - packets);
    fuzz_state *st = &state;
    if (!r->submitted) tw_fuzz_fail("packet %u completed, but it was never submitted", index);
    if (r->completions++ != 0) {
        tw_fuzz_fail("packet %u completed again (status %s, first %s)", index,
             tw_packet_status_name((tw_packet_status)packet->status),
             tw_packet_status_name((tw_packet_status)r->status));
    }
    st->completed++;
    r->status = packet->status;
    tw_packet_status status = (tw_packet_status)packet->status;
    if (status != tw_packet_ok && (result != NULL || result_size != 0 || timestamp != 0)) {
        tw_fuzz_fail("packet %u completed %s with a result (%u bytes) or a timestamp", index,
             tw_packet_status_name(status), result_size);
    }
    bool too_much = r->operation_valid && r->size_valid && r->events > events_max_of(st, r->operation);
    switch (status) {
    case tw_packet_ok: check_ok(r, timestamp, result, result_size); return;
    case tw_packet_invalid_operation:
        if (!r->operation_valid) return;
        break;
    case tw_packet_invalid_data_size:
        if (r->operation_valid && !r->size_valid) return;
        break;
    case tw_packet_too_much_data:
        if (too_much) return;
        break;
    case tw_packet_client_evicted:
    case tw_packet_client_release_too_low:
    case tw_packet_client_release_too_high:
        if ((st->eviction_statuses & (1u << status)) != 0 && r->operation_valid && r->size_valid) return;
        break;
    case tw_packet_client_shutdown:
        if (st->deinit_started) return;
        break;
    }
    tw_fuzz_fail("packet %u (operation %u, %u events, %u bytes%s%s) completed %s, which it cannot (deinit %s, "
         "evictions sent 0x%x, at most %u events)",
         index, r->operation, r->events, r->data_size, r->operation_valid ? "" : ", invalid operation",
         r->size_valid ? "" : ", bad size", tw_packet_status_name(status),
         st->deinit_started ? "began" : "not begun", st->eviction_statuses,
         r->operation_valid ? events_max_of(st, r->operation) : 0);
}

/* Events from the packet's index and content bits: valid-looking ledger events. */
static void packet_build(fuzz_state *st, packet_record *r, uint32_t index) {
    uint8_t p0 = input_byte(st);
    uint8_t p1 = input_byte(st);
    memset(r, 0, offsetof(packet_record, data));
    r->operation = p0 & p0_operation_mask;
    r->operation_valid = operation_valid(r->operation);
    uint32_t count = p0 >> p0_events_shift;
    uint32_t content = p1 >> p1_content_shift;
    r->round = (p1 >> p1_round_shift) & p1_round_mask;
    uint32_t size = 0;
    switch ((tw_operation)r->operation) {
    case tw_operation_create_accounts:
        for (uint32_t i = 0; i < count; i++) {
            tw_account a = {
                .id = {.low = 1u + index * PACKET_EVENTS_MAX + i, .high = content},
                .ledger = 1u,
                .code = 1u,
                .flags = (uint16_t)(((p1 & p1_linked) != 0 && i + 1u == count) ? tw_account_linked : 0u),
            };
            memcpy(r->data + size, &a, sizeof(a));
            size += (uint32_t)sizeof(a);
        }
        break;
    case tw_operation_create_transfers:
        for (uint32_t i = 0; i < count; i++) {
            tw_transfer t = {
                .id = {.low = 1u + index * PACKET_EVENTS_MAX + i, .high = content},
                .debit_account_id = {.low = 1u, .high = 0},
                .credit_account_id = {.low = 2u, .high = 0},
                .amount = 1u + i,
                .ledger = 1u,
                .code = 1u,
                .flags = (uint16_t)(((p1 & p1_linked) != 0 && i + 1u == count) ? tw_transfer_linked : 0u),
            };
            memcpy(r->data + size, &t, sizeof(t));
            size += (uint32_t)sizeof(t);
        }
        break;
    case tw_operation_lookup_accounts:
    case tw_operation_lookup_transfers:
        for (uint32_t i = 0; i < count; i++) {
            tw_u128 id = {.low = 1u + i + content, .high = 0};
            memcpy(r->data + size, &id, sizeof(id));
            size += (uint32_t)sizeof(id);
        }
        break;
    case tw_operation_echo:
        for (uint32_t i = 0; i < count * ECHO_BYTES_PER_EVENT; i++) {
            r->data[size++] = (uint8_t)(index * 31u + i + content);
        }
        break;
    case tw_operation_none:
    default:
        size = count; /* an invalid operation: some bytes */
        break;
    }
    r->events = r->operation == tw_operation_echo ? size : count;
    r->size_valid = true;
    r->packet = (tw_packet){
        .user_data = r,
        .data = size > 0 ? r->data : NULL,
        .data_size = size,
        .user_tag = (uint16_t)index,
        .operation = r->operation,
    };
    if ((p1 & p1_bad_size) != 0 && r->operation_valid) {
        if (r->operation == tw_operation_echo) {
            r->packet.data = NULL; /* bytes without data */
            if (r->packet.data_size == 0) r->packet.data_size = 1;
            r->events = r->packet.data_size;
        } else {
            r->packet.data = r->data;
            r->packet.data_size = size + 1u; /* not whole events */
        }
        r->size_valid = false;
    }
    r->data_size = r->packet.data_size;
}

static void submit_round(fuzz_state *st, uint32_t round) {
    for (uint32_t i = 0; i < st->packets_count; i++) {
        packet_record *r = &packets[i];
        if (r->submitted || r->round > round) continue;
        r->submitted = true;
        st->submitted++;
        tw_client_status submitted = tw_client_submit(&st->client, &r->packet);
        if (submitted != tw_client_ok) {
            tw_fuzz_fail("packet %u: the submit failed: %s", i, tw_client_status_name(submitted));
        }
    }
}

/* ---- the peer: connections -------------------------------------------------------------- */

static tw_action guard_fired(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    fuzz_state *st = userdata;
    if (result.error == tw_loop_ok) st->guard_fired = true;
    return tw_disarm;
}

static tw_action ignored_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)userdata;
    (void)loop;
    (void)c;
    (void)result;
    return tw_disarm;
}

static void on_client_message(void *context, const tw_header *h, const uint8_t *body) {
    peer_conn *conn = context;
    fuzz_state *st = &state;
    if (h->command != tw_command_register && h->command != tw_command_request) {
        tw_fuzz_fail("the client sent a %s message", tw_command_name((tw_command)h->command));
    }
    if (!u128_equal(h->client, client_id) || h->size > CLIENT_MESSAGE_SIZE_MAX) {
        tw_fuzz_fail("the client sent a %s of %u bytes as client %llx", tw_command_name((tw_command)h->command),
             h->size, (unsigned long long)h->client.low);
    }
    uint32_t body_size = h->size - TW_HEADER_SIZE;
    if (h->command == tw_command_register) {
        if (h->request != 0 || body_size != 0 || h->operation != tw_operation_none || conn->messages > 0) {
            tw_fuzz_fail("the client sent a register (request %llu, %u bytes) %s", (unsigned long long)h->request,
                 body_size, conn->messages > 0 ? "after another message on that connection" : "");
        }
    } else {
        /* The peer may miss a message (on a connection it closed) but never sees a request
         * number go back on one connection, nor a number sent again with other bytes. */
        uint32_t event_size = tw_operation_event_size((tw_operation)h->operation);
        request_record *same = h->request < REQUESTS_RECORDED ? &st->requests[h->request] : NULL;
        const char *wrong = NULL;
        if (h->session != PEER_SESSION) {
            wrong = "another session";
        } else if (!operation_valid(h->operation) || h->request == 0) {
            wrong = "no operation or request number";
        } else if (conn->messages > 0 && h->request <= conn->request_last) {
            wrong = "not after the connection's last";
        } else if (body_size > st->batch_body_max || (event_size != 0 && body_size % event_size != 0)) {
            wrong = "a body that is not whole events within the batch size";
        } else if (same != NULL && same->seen &&
                   (!u128_equal(same->checksum_body, h->checksum_body) || same->operation != h->operation)) {
            wrong = "a number sent before with other bytes";
        }
        if (wrong != NULL) {
            tw_fuzz_fail("the client sent request %llu (session %llu, %s, %u bytes; the connection's last %llu, "
                 "batch body at most %u): %s",
                 (unsigned long long)h->request, (unsigned long long)h->session,
                 tw_operation_name((tw_operation)h->operation), body_size,
                 (unsigned long long)conn->request_last, st->batch_body_max, wrong);
        }
        if (same != NULL) {
            *same = (request_record){
                .seen = true,
                .checksum_body = h->checksum_body,
                .operation = h->operation,
            };
        }
    }
    conn->messages++;
    conn->request_last = h->request;
    if (st->inbox_count == PEER_INBOX_MAX) {
        /* The peer is busy (a script of delays) while the client retries again and again:
         * the oldest message unread is missed, as if its connection had been lost. */
        st->inbox_head = (st->inbox_head + 1u) % PEER_INBOX_MAX;
        st->inbox_count--;
        st->inbox_dropped++;
    }
    peer_message *m = &st->inbox[(st->inbox_head + st->inbox_count) % PEER_INBOX_MAX];
    m->header = *h;
    m->conn = conn->index;
    if (body_size > 0) memcpy(m->body, body, body_size);
    st->inbox_count++;
}

static tw_action read_done(void *userdata, tw_loop *loop, tw_completion *c, tw_result result);

static void read_start(fuzz_state *st, peer_conn *conn) {
    uint32_t room = 0;
    uint8_t *space = tw_frame_reader_space(&conn->reader, &room);
    TW_ASSERT(room > 0 && !conn->reading);
    conn->reading = true;
    tw_tcp_read(st->loop, &conn->c_read, conn->tcp, space, room, conn, read_done);
}

static tw_action read_done(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    peer_conn *conn = userdata;
    TW_ASSERT(conn->reading);
    conn->reading = false;
    if (result.error == tw_loop_canceled) return tw_disarm;
    /* The script closed the connection after this read had completed, before its callback:
     * what it read still counts, but there is no next read on a closed socket. */
    bool closed = conn->closing;
    if (result.error != tw_loop_ok) {
        if (result.error != tw_loop_eof && result.error != tw_loop_reset) {
            tw_fuzz_fail("peer connection %u: a read failed: %s", conn->index, tw_loop_error_name(result.error));
        }
        conn->ended = true;
        return tw_disarm;
    }
    tw_proto_error error =
        tw_frame_reader_commit(&conn->reader, (uint32_t)result.value, on_client_message, conn);
    if (error != tw_proto_ok) tw_fuzz_fail("the client sent a malformed message (%s)", tw_proto_error_name(error));
    if (!closed && !conn->closing) read_start(&state, conn);
    return tw_disarm;
}

static void peer_conn_close(fuzz_state *st, peer_conn *conn) {
    if (!conn->open || conn->closing) return;
    conn->closing = true;
    tw_tcp_close(st->loop, &conn->c_close, conn->tcp, conn, ignored_cb);
}

static bool peer_conn_idle(const peer_conn *conn) {
    return !conn->open || (conn->closing && !conn->reading && conn->writes_busy == 0 &&
                           !tw_completion_active(&conn->c_close));
}

static tw_action accepted(void *userdata, tw_loop *loop, tw_completion *c, tw_result result);

static void accept_start(fuzz_state *st) {
    TW_ASSERT(!st->accepting);
    st->accepting = true;
    tw_tcp_accept(st->loop, &st->c_accept, st->listener, st, accepted);
}

static tw_action accepted(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    fuzz_state *st = userdata;
    st->accepting = false;
    if (result.error == tw_loop_canceled) return tw_disarm;
    if (result.error != tw_loop_ok) tw_fuzz_fail("the peer's accept failed: %s", tw_loop_error_name(result.error));
    /* The client has moved on: the older connection closes (its messages already read stay). */
    peer_conn_close(st, &st->conns[st->current]);
    peer_conn *conn = NULL;
    for (uint32_t i = 1; i <= PEER_CONNS && conn == NULL; i++) {
        peer_conn *candidate = &st->conns[(st->current + i) % PEER_CONNS];
        if (peer_conn_idle(candidate)) conn = candidate;
    }
    if (conn == NULL) tw_fuzz_fail("the client has more than %u connections to the peer", PEER_CONNS);
    uint32_t index = conn->index;
    memset(conn, 0, offsetof(peer_conn, reader_buffer));
    conn->index = index;
    conn->tcp = tw_tcp_accepted(result);
    conn->open = true;
    tw_frame_reader_init(&conn->reader, conn->reader_buffer, CLIENT_MESSAGE_SIZE_MAX, cluster);
    st->current = index;
    read_start(st, conn);
    accept_start(st);
    return tw_disarm;
}

static tw_action written(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    peer_write *w = userdata;
    peer_conn *conn = w->conn;
    TW_ASSERT(tw_write_request_of(c) == &w->request && w->busy && conn->writes_busy > 0);
    w->busy = false;
    conn->writes_busy--;
    if (result.error != tw_loop_ok) conn->write_failed = true; /* the client closed it */
    return tw_disarm;
}

typedef bool (*condition_fn)(const fuzz_state *st);

/* Runs the peer's loop until done(st) or WAIT_NS of virtual time pass; false then. */
static bool run_until(fuzz_state *st, condition_fn done) {
    if (done(st)) return true;
    st->guard_fired = false;
    tw_loop_timer_reset(st->loop, &st->c_guard, WAIT_NS, st, guard_fired);
    while (!done(st)) {
        if (st->guard_fired) return false;
        TW_ASSERT(tw_loop_run(st->loop, tw_run_once) == tw_loop_ok);
    }
    return true;
}

static bool write_slot_free(const fuzz_state *st) {
    return st->conns[st->last.conn].writes_busy < PEER_WRITES_MAX;
}

/* Writes what the chunks built to the connection the message came on, if it is open. */
static void peer_flush(fuzz_state *st) {
    peer_conn *conn = &st->conns[st->last.conn];
    uint32_t size = st->out_size;
    st->out_size = 0;
    if (size == 0 || !conn->open || conn->closing || conn->write_failed) return;
    if (size > PEER_OUT_SIZE - conn->out_used) return; /* this connection wrote enough */
    if (!run_until(st, write_slot_free)) tw_fuzz_fail("peer connection %u: no write completed for 10 s", conn->index);
    if (!conn->open || conn->closing || conn->write_failed) return;
    peer_write *w = NULL;
    for (uint32_t i = 0; i < PEER_WRITES_MAX && w == NULL; i++) {
        if (!conn->writes[i].busy) w = &conn->writes[i];
    }
    TW_ASSERT(w != NULL);
    uint8_t *bytes = conn_out[conn->index] + conn->out_used;
    memcpy(bytes, st->out, size);
    conn->out_used += size;
    w->busy = true;
    w->conn = conn;
    conn->writes_busy++;
    tw_tcp_queue_write(st->loop, &conn->queue, &w->request, conn->tcp, bytes, size, w, written);
}

static void peer_append(fuzz_state *st, const void *bytes, uint32_t size) {
    if (size > PEER_OUT_SIZE - st->out_size) return; /* full: dropped */
    memcpy(st->out + st->out_size, bytes, size);
    st->out_size += size;
}

/* ---- the peer: building replies ------------------------------------------------------------ */

/* Seals and appends a message; an eviction that can reach the client is recorded. */
static void peer_message_append(fuzz_state *st, tw_header *h, const uint8_t *body, uint32_t body_size) {
    TW_ASSERT(TW_HEADER_SIZE + body_size <= MESSAGE_BUILT_SIZE_MAX);
    h->size = TW_HEADER_SIZE + body_size;
    if (u128_equal(h->cluster, (tw_u128){0})) h->cluster = cluster;
    tw_header_seal(h, body);
    memcpy(st->last_message, h, TW_HEADER_SIZE);
    if (body_size > 0) memcpy(st->last_message + TW_HEADER_SIZE, body, body_size);
    st->last_size = h->size;
    bool reaches = u128_equal(h->client, client_id) && u128_equal(h->cluster, cluster);
    if (h->command == tw_command_eviction && reaches) {
        st->eviction_statuses |= 1u << eviction_status_of(h->eviction_reason);
    }
    peer_append(st, st->last_message, st->last_size);
}

static int compare_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a;
    uint32_t y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* A reply's body for the message being answered (see REPLY above). */
static uint32_t reply_body(fuzz_state *st, bool right) {
    const tw_header *request = &st->last.header;
    uint8_t m = input_byte(st);
    uint32_t request_body = request->size - TW_HEADER_SIZE;
    if (request->command == tw_command_register) {
        if (right) return 0;
        for (uint32_t i = 0; i < m; i++) st->body[i] = (uint8_t)i;
        return m;
    }
    tw_operation operation = (tw_operation)request->operation;
    uint32_t event_size = tw_operation_event_size(operation);
    uint32_t events = event_size == 0 ? request_body : request_body / event_size;
    uint32_t size = 0;
    switch (operation) {
    case tw_operation_create_accounts:
    case tw_operation_create_transfers: {
        uint32_t count = m % (CREATE_RESULTS_MAX + 1u);
        if (right) {
            uint32_t indexes[CREATE_RESULTS_MAX];
            uint32_t codes[CREATE_RESULTS_MAX];
            uint32_t unique = 0;
            for (uint32_t i = 0; i < count; i++) {
                uint8_t e = input_byte(st); /* read even with no events: the layout stays */
                if (events == 0) continue;
                indexes[unique] = e % events;
                codes[unique] = 1u + e % 17u;
                unique++;
            }
            qsort(indexes, unique, sizeof(indexes[0]), compare_u32);
            uint32_t kept = 0;
            for (uint32_t i = 0; i < unique; i++) {
                if (kept > 0 && indexes[kept - 1] == indexes[i]) continue;
                indexes[kept++] = indexes[i];
            }
            for (uint32_t i = 0; i < kept; i++) {
                tw_create_result r = {.index = indexes[i], .result = codes[i]};
                memcpy(st->body + size, &r, sizeof(r));
                size += (uint32_t)sizeof(r);
            }
        } else {
            for (uint32_t i = 0; i < count; i++) {
                tw_create_result r;
                r.index = input_byte(st);
                r.result = input_byte(st);
                memcpy(st->body + size, &r, sizeof(r));
                size += (uint32_t)sizeof(r);
            }
        }
        break;
    }
    case tw_operation_lookup_accounts:
    case tw_operation_lookup_transfers: {
        uint32_t object_size = tw_operation_result_size(operation);
        uint32_t count = right ? m % (events + 1u) : m;
        uint32_t count_max = (MESSAGE_BUILT_SIZE_MAX - TW_HEADER_SIZE) / object_size;
        if (count > count_max) count = count_max;
        for (uint32_t i = 0; i < count; i++) {
            uint8_t fill = input_byte(st);
            memset(st->body + size, fill, object_size);
            size += object_size;
        }
        break;
    }
    case tw_operation_echo:
        if (right) {
            memcpy(st->body, st->last.body, request_body);
            size = request_body;
        } else {
            for (uint32_t i = 0; i < m; i++) st->body[i] = i < request_body ? st->last.body[i] : (uint8_t)i;
            size = m;
        }
        break;
    case tw_operation_none: break;
    }
    return size;
}

static tw_header reply_header(fuzz_state *st) {
    const tw_header *request = &st->last.header;
    return (tw_header){
        .client = request->client,
        .session = PEER_SESSION,
        .request = request->request,
        .op = st->op_next++,
        .timestamp = st->timestamp_next++,
        .release = request->release,
        .batch_size_max = request->command == tw_command_register ? st->batch_size : 0,
        .command = tw_command_reply,
        .operation = request->operation,
    };
}

static void chunk_reply_build(fuzz_state *st, uint8_t flags) {
    tw_header h = reply_header(st);
    uint32_t body_size = reply_body(st, (flags & reply_body_right) != 0);
    if ((flags & reply_client_other) != 0) h.client = client_other;
    if ((flags & reply_request_delta) != 0) h.request += (uint64_t)(int64_t)(int8_t)input_byte(st);
    if ((flags & reply_operation) != 0) h.operation = input_byte(st) & 7u;
    if ((flags & reply_timestamp_zero) != 0) h.timestamp = 0;
    peer_message_append(st, &h, st->body, body_size);
}

static void chunk_malformed_build(fuzz_state *st, uint8_t flags) {
    tw_header h = reply_header(st);
    uint32_t body_size = reply_body(st, true);
    h.size = TW_HEADER_SIZE + body_size;
    h.cluster = (flags & malformed_cluster) != 0 ? cluster_other : cluster;
    if ((flags & malformed_reserved) != 0) {
        uint8_t which = input_byte(st);
        uint32_t position = which % (uint32_t)(sizeof(h.reserved) + 1u);
        if (position == sizeof(h.reserved)) h.reserved_byte = (uint8_t)(which | 1u);
        else h.reserved[position] = (uint8_t)(which | 1u);
    }
    tw_header_seal(&h, st->body);
    if ((flags & malformed_size) != 0) {
        uint32_t low = input_byte(st);
        uint32_t high = input_byte(st);
        h.size = low | high << 8;
        tw_header_seal_header(&h);
    }
    if ((flags & malformed_body_checksum) != 0) {
        h.checksum_body.low ^= 1u;
        tw_header_seal_header(&h);
    }
    if ((flags & malformed_header_checksum) != 0) h.checksum.high ^= 1u;
    memcpy(st->last_message, &h, TW_HEADER_SIZE);
    if (body_size > 0) memcpy(st->last_message + TW_HEADER_SIZE, st->body, body_size);
    st->last_size = TW_HEADER_SIZE + body_size;
    peer_append(st, st->last_message, st->last_size);
}

/* Runs one chunk; false at an END (or when the input ran out). */
static bool chunk_run(fuzz_state *st) {
    if (st->offset >= st->size) return false;
    uint8_t control = input_byte(st);
    uint8_t flags = control & CHUNK_FLAGS_MASK;
    switch ((enum chunk_kind)(control >> CHUNK_KIND_SHIFT)) {
    case chunk_reply: chunk_reply_build(st, flags); return true;
    case chunk_eviction: {
        tw_header h = {
            .client = (flags & 8u) != 0 ? client_other : st->last.header.client,
            .session = PEER_SESSION,
            .release = st->last.header.release,
            .command = tw_command_eviction,
            .eviction_reason = flags & 7u,
        };
        peer_message_append(st, &h, NULL, 0);
        return true;
    }
    case chunk_other: {
        tw_header h = {
            .client = st->last.header.client,
            .session = PEER_SESSION,
            .request = st->last.header.request,
            .timestamp = st->timestamp_next++,
            .release = st->last.header.release,
            .command = flags & 7u,
            .eviction_reason = (flags & 7u) == tw_command_eviction ? (uint8_t)(flags >> 3) : 0u,
        };
        peer_message_append(st, &h, NULL, 0);
        return true;
    }
    case chunk_malformed: chunk_malformed_build(st, flags); return true;
    case chunk_raw: {
        uint32_t count = input_byte(st);
        for (uint32_t i = 0; i < count && st->offset < st->size; i++) {
            uint8_t b = st->data[st->offset++];
            peer_append(st, &b, 1);
        }
        return true;
    }
    case chunk_end:
        peer_flush(st);
        if ((flags & 1u) != 0) peer_conn_close(st, &st->conns[st->last.conn]);
        return false;
    case chunk_delay:
        peer_flush(st);
        TW_ASSERT(tw_loop_run_for(st->loop, (uint64_t)(flags + 1u) * DELAY_UNIT_NS) == tw_loop_ok);
        return true;
    case chunk_repeat:
        for (uint32_t i = 0; i <= (flags & REPEAT_MAX_MASK) && st->last_size > 0; i++) {
            peer_append(st, st->last_message, st->last_size);
        }
        return true;
    }
    return true;
}

/* The register, answered at once and rightly (unless the script answers registers). */
static void answer_register(fuzz_state *st) {
    tw_header h = reply_header(st);
    peer_message_append(st, &h, NULL, 0);
    peer_flush(st);
}

/* A message to answer, or no packet outstanding (the client then sends nothing). */
static bool message_or_idle(const fuzz_state *st) {
    return st->inbox_count > 0 || st->completed == st->submitted;
}

static uint32_t round_next(const fuzz_state *st) {
    uint32_t round = ROUNDS;
    for (uint32_t i = 0; i < st->packets_count; i++) {
        if (!packets[i].submitted && packets[i].round < round) round = packets[i].round;
    }
    return round;
}

static bool peer_idle(const fuzz_state *st) {
    for (uint32_t i = 0; i < PEER_CONNS; i++) {
        if (!peer_conn_idle(&st->conns[i])) return false;
    }
    return true;
}

/* ---- the world ---------------------------------------------------------------------------- */

static void world_main(void *arg) {
    fuzz_state *st = arg;
    tw_loop_options loop_options = {.timers_max = LOOP_TIMERS_MAX};
    TW_ASSERT(tw_loop_init(&st->loop, &loop_options) == tw_loop_ok);
    tw_address any;
    TW_ASSERT(tw_address_parse("127.0.0.1:0", &any) == tw_loop_ok);
    TW_ASSERT(tw_tcp_open(st->loop, &any, &st->listener) == tw_loop_ok);
    TW_ASSERT(tw_tcp_bind(st->loop, st->listener, &any) == tw_loop_ok);
    TW_ASSERT(tw_tcp_listen(st->loop, st->listener, PEER_CONNS) == tw_loop_ok);
    TW_ASSERT(tw_tcp_local_address(st->loop, st->listener, &st->address) == tw_loop_ok);
    accept_start(st);

    char address[TW_ADDRESS_TEXT_SIZE];
    tw_address_format(&st->address, address, sizeof(address));
    uint8_t world = st->size > 0 ? st->data[0] : 0;
    tw_client_options options = {
        .batching_off = (world & world_batching_off) != 0,
        .request_timeout_ns = CLIENT_REQUEST_TIMEOUT_NS,
        .backoff_min_ns = CLIENT_BACKOFF_MIN_NS,
        .backoff_max_ns = CLIENT_BACKOFF_MAX_NS,
        .message_size_max = CLIENT_MESSAGE_SIZE_MAX,
        .id = client_id,
    };
    tw_client_init_status init =
        tw_client_init(&st->client, cluster, address, (uintptr_t)CLIENT_ID_LOW, on_completion, &options);
    if (init != tw_client_init_ok) tw_fuzz_fail("tw_client_init: %s", tw_client_init_status_name(init));
    submit_round(st, 0);

    while (st->messages_answered < PEER_MESSAGES_MAX) {
        if (!run_until(st, message_or_idle)) {
            tw_fuzz_fail("the client sent nothing for %llu s with %u of %u packets outstanding",
                 (unsigned long long)(WAIT_NS / (1000u * MS_NS)), st->submitted - st->completed,
                 st->submitted);
        }
        if (st->inbox_count == 0) {
            /* Nothing outstanding: the next round now, or the end. */
            if (st->submitted == st->packets_count) break;
            submit_round(st, round_next(st));
            continue;
        }
        st->last = st->inbox[st->inbox_head];
        st->inbox_head = (st->inbox_head + 1u) % PEER_INBOX_MAX;
        st->inbox_count--;
        st->messages_answered++;
        if (st->last.header.command == tw_command_register && !st->register_scripted) {
            answer_register(st);
            continue;
        }
        if (st->last.header.command == tw_command_request) {
            st->requests_seen++;
            if (st->requests_seen < ROUNDS) submit_round(st, st->requests_seen);
        }
        if (st->offset >= st->size) break; /* the script is done */
        while (chunk_run(st)) {
        }
        peer_flush(st);
    }

    /* The script is done: the client takes in what was sent, then everything else is
     * submitted and the client deinit'ed; every packet must have completed by then. */
    TW_ASSERT(tw_loop_run_for(st->loop, SETTLE_NS) == tw_loop_ok);
    submit_round(st, ROUNDS);
    st->deinit_started = true;
    tw_client_status deinit = tw_client_deinit(&st->client);
    if (deinit != tw_client_ok) tw_fuzz_fail("tw_client_deinit: %s", tw_client_status_name(deinit));
    for (uint32_t i = 0; i < st->packets_count; i++) {
        if (packets[i].completions != 1) {
            tw_fuzz_fail("packet %u (%s) completed %u times by the end of deinit", i,
                 tw_operation_name((tw_operation)packets[i].operation), packets[i].completions);
        }
    }

    for (uint32_t i = 0; i < PEER_CONNS; i++) peer_conn_close(st, &st->conns[i]);
    tw_tcp_close(st->loop, &st->c_listener_close, st->listener, st, ignored_cb);
    if (tw_completion_active(&st->c_guard)) {
        tw_loop_cancel(st->loop, &st->c_guard_cancel, &st->c_guard, st, ignored_cb);
    }
    TW_ASSERT(tw_loop_run(st->loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(peer_idle(st));
    tw_loop_deinit(st->loop);
}

/* ---- seeds -------------------------------------------------------------------------------- */

/* The seed inputs of corpus/client_replies/, written by `fuzz_client_replies --write-seeds
 * DIR`: right replies to batches (results at each packet's first and last events, so that
 * rebasing shows), packets of every operation and every status, replies that fail each
 * check (client, request, operation, timestamp, results out of order or range, sizes),
 * malformed frames of every class, evictions of every reason in flight and pending, stale
 * duplicates, retries after a close and after a timeout, scripted registers, batching off,
 * and packets submitted while requests are in flight. */

#define SEED_SIZE_MAX 4096u

typedef struct seed {
    uint8_t bytes[SEED_SIZE_MAX];
    size_t size;
} seed;

static void seed_byte(seed *s, uint32_t byte) {
    TW_ASSERT(s->size < SEED_SIZE_MAX && byte <= UINT8_MAX);
    s->bytes[s->size++] = (uint8_t)byte;
}

static void seed_start(seed *s, uint32_t world, uint32_t packets_count) {
    TW_ASSERT(packets_count >= 1 && packets_count <= PACKETS_MAX);
    s->size = 0;
    seed_byte(s, world);
    seed_byte(s, packets_count - 1u);
}

static void seed_packet(seed *s, uint32_t operation, uint32_t events, uint32_t flags, uint32_t round) {
    TW_ASSERT(operation <= p0_operation_mask && events <= PACKET_EVENTS_MAX && round <= p1_round_mask);
    seed_byte(s, operation | events << p0_events_shift);
    seed_byte(s, flags | round << p1_round_shift);
}

static uint32_t control(enum chunk_kind kind, uint32_t flags) {
    TW_ASSERT(flags <= CHUNK_FLAGS_MASK);
    return (uint32_t)kind << CHUNK_KIND_SHIFT | flags;
}

/* A right reply: for creates, results at the given indexes (each < the request's events,
 * ascending: index byte % events keeps them); for lookups, count objects; echo and the
 * register: nothing to give. */
static void seed_reply(seed *s, const uint8_t *indexes, uint32_t count) {
    seed_byte(s, control(chunk_reply, reply_body_right));
    seed_byte(s, count);
    for (uint32_t i = 0; i < count && indexes != NULL; i++) seed_byte(s, indexes[i]);
}

static void seed_end(seed *s) { seed_byte(s, control(chunk_end, 0)); }

static int seed_write(const char *dir, const char *name, const seed *s) {
    char path[4096];
    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *file = fopen(path, "wb");
    if (file == NULL) {
        fprintf(stderr, "fuzz_client_replies: cannot write %s\n", path);
        return 1;
    }
    size_t written_count = fwrite(s->bytes, 1, s->size, file);
    int closed = fclose(file);
    if (written_count != s->size || closed != 0) {
        fprintf(stderr, "fuzz_client_replies: cannot write %s\n", path);
        return 1;
    }
    printf("fuzz_client_replies: wrote %s (%zu bytes)\n", path, s->size);
    return 0;
}

/* Seven packets: accounts 3 (alone: first), accounts 2 + accounts 4 (batched), echo 2 +
 * echo 1 (batched), transfers 2, lookup 2. Requests: 1 = A, 2 = B + C, 3 = D + E, 4 = F,
 * 5 = G. */
static void seed_seven_packets(seed *s, uint32_t world) {
    seed_start(s, world, 7);
    seed_packet(s, tw_operation_create_accounts, 3, 0, 0);
    seed_packet(s, tw_operation_create_accounts, 2, 0, 0);
    seed_packet(s, tw_operation_create_accounts, 4, 0, 0);
    seed_packet(s, tw_operation_echo, 2, 0, 0);
    seed_packet(s, tw_operation_echo, 1, 0, 0);
    seed_packet(s, tw_operation_create_transfers, 2, 0, 0);
    seed_packet(s, tw_operation_lookup_accounts, 2, 0, 0);
}

static const uint8_t first_last_3[] = {0, 2};
static const uint8_t first_last_2_4[] = {0, 1, 2, 5}; /* B: 0, 1; C: 0, 3 after rebasing */
static const uint8_t one_of_2[] = {1};

static void seed_seven_replies(seed *s) {
    seed_reply(s, first_last_3, sizeof(first_last_3));
    seed_end(s);
    seed_reply(s, first_last_2_4, sizeof(first_last_2_4));
    seed_end(s);
    seed_reply(s, NULL, 0); /* echo: the body back */
    seed_end(s);
    seed_reply(s, one_of_2, sizeof(one_of_2));
    seed_end(s);
    seed_reply(s, NULL, 2); /* two accounts found */
    seed_byte(s, 0x11);
    seed_byte(s, 0x22);
    seed_end(s);
}

static int write_seeds(const char *dir) {
    static seed s;
    int failed = 0;

    seed_seven_packets(&s, 0x00);
    seed_seven_replies(&s);
    failed |= seed_write(dir, "batches-ok-first-last", &s);

    seed_seven_packets(&s, 0x40 | 0x03); /* batching off: one request per packet */
    static const uint8_t first_last_4[] = {0, 3};
    seed_reply(&s, first_last_3, sizeof(first_last_3));
    seed_end(&s);
    seed_reply(&s, one_of_2, sizeof(one_of_2));
    seed_end(&s);
    seed_reply(&s, first_last_4, sizeof(first_last_4));
    seed_end(&s);
    seed_reply(&s, NULL, 0);
    seed_end(&s);
    seed_reply(&s, NULL, 0);
    seed_end(&s);
    seed_reply(&s, one_of_2, sizeof(one_of_2));
    seed_end(&s);
    seed_reply(&s, NULL, 1);
    seed_byte(&s, 0x55);
    seed_end(&s);
    failed |= seed_write(dir, "batching-off", &s);

    /* Every status: invalid operation, bad sizes, too much data at a batch of 80 bytes. */
    seed_start(&s, 0x30, 8);
    seed_packet(&s, 0, 1, 0, 0);
    seed_packet(&s, 6, 2, 0, 0);
    seed_packet(&s, tw_operation_create_accounts, 1, p1_bad_size, 0);
    seed_packet(&s, tw_operation_echo, 0, p1_bad_size, 0);
    seed_packet(&s, tw_operation_create_accounts, 2, 0, 0);  /* 1 at most at 80 bytes */
    seed_packet(&s, tw_operation_echo, 3, 0, 0);             /* 87 bytes: too much */
    seed_packet(&s, tw_operation_create_accounts, 1, 0, 0);
    seed_packet(&s, tw_operation_lookup_transfers, 1, 0, 0);
    seed_reply(&s, NULL, 0);
    seed_end(&s);
    seed_reply(&s, NULL, 1);
    seed_byte(&s, 0x33);
    seed_end(&s);
    failed |= seed_write(dir, "statuses-invalid-too-much", &s);

    /* Retries: a close with the request in flight, then a timeout, then the reply. */
    seed_start(&s, 0x01, 2);
    seed_packet(&s, tw_operation_create_transfers, 2, 0, 0);
    seed_packet(&s, tw_operation_create_transfers, 1, 0, 0);
    seed_byte(&s, control(chunk_end, 1));           /* closed: retried on a new connection */
    seed_byte(&s, control(chunk_delay, 15));        /* 64 ms: the request times out */
    seed_end(&s);
    seed_reply(&s, one_of_2, sizeof(one_of_2));
    seed_end(&s);
    seed_reply(&s, NULL, 0);
    seed_end(&s);
    failed |= seed_write(dir, "retries-close-timeout", &s);

    /* Evictions of every reason, with a request in flight and batches pending. */
    static const struct {
        const char *name;
        uint32_t reason;
    } evictions[] = {
        {"eviction-none", tw_eviction_none},
        {"eviction-no-session", tw_eviction_no_session},
        {"eviction-too-many-clients", tw_eviction_too_many_clients},
        {"eviction-release-too-low", tw_eviction_client_release_too_low},
        {"eviction-release-too-high", tw_eviction_client_release_too_high},
        {"eviction-protocol-violation", tw_eviction_protocol_violation},
        {"eviction-unknown-reason", 7},
    };
    for (size_t i = 0; i < sizeof(evictions) / sizeof(evictions[0]); i++) {
        seed_seven_packets(&s, 0x02 + (uint32_t)i);
        seed_reply(&s, first_last_3, sizeof(first_last_3));
        seed_end(&s);
        seed_byte(&s, control(chunk_eviction, evictions[i].reason));
        seed_end(&s);
        failed |= seed_write(dir, evictions[i].name, &s);
    }
    seed_seven_packets(&s, 0x80); /* the register answered by an eviction */
    seed_byte(&s, control(chunk_eviction, 8u | tw_eviction_too_many_clients)); /* another client: ignored */
    seed_byte(&s, control(chunk_eviction, tw_eviction_too_many_clients));
    seed_end(&s);
    failed |= seed_write(dir, "eviction-at-register", &s);

    /* Replies that fail a check, each followed by the retry's right reply. */
    static const struct {
        const char *name;
        uint32_t flags;
        uint32_t extra; /* the byte the flag reads */
    } wrong[] = {
        {"reply-other-client", reply_client_other, 0},
        {"reply-request-older", reply_request_delta, 0xff},
        {"reply-request-newer", reply_request_delta, 0x01},
        {"reply-other-operation", reply_operation, tw_operation_echo},
        {"reply-no-operation", reply_operation, tw_operation_none},
        {"reply-timestamp-zero", reply_timestamp_zero, 0},
    };
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        seed_start(&s, 0x04 + (uint32_t)i, 2);
        seed_packet(&s, tw_operation_create_accounts, 2, 0, 0);
        seed_packet(&s, tw_operation_create_accounts, 3, 0, 1);
        seed_byte(&s, control(chunk_reply, reply_body_right | wrong[i].flags));
        seed_byte(&s, 1);
        seed_byte(&s, 1);
        if ((wrong[i].flags & (reply_request_delta | reply_operation)) != 0) seed_byte(&s, wrong[i].extra);
        seed_end(&s);
        seed_reply(&s, one_of_2, sizeof(one_of_2));
        seed_end(&s);
        seed_reply(&s, first_last_3, sizeof(first_last_3));
        seed_end(&s);
        failed |= seed_write(dir, wrong[i].name, &s);
    }

    /* Results that cannot be right: out of order, out of range, too many; lookups of more
     * objects than ids; an echo of another size; a register reply with a body. */
    seed_start(&s, 0x85, 3);
    seed_packet(&s, tw_operation_create_accounts, 2, 0, 0);
    seed_packet(&s, tw_operation_lookup_accounts, 1, 0, 0);
    seed_packet(&s, tw_operation_echo, 1, 0, 0);
    seed_byte(&s, control(chunk_reply, 0)); /* register: 3 bytes of body */
    seed_byte(&s, 3);
    seed_end(&s);
    seed_reply(&s, NULL, 0);
    seed_end(&s);
    seed_byte(&s, control(chunk_reply, 0)); /* {1, 5}, {0, 5}: descending */
    seed_byte(&s, 2);
    seed_byte(&s, 1);
    seed_byte(&s, 5);
    seed_byte(&s, 0);
    seed_byte(&s, 5);
    seed_end(&s);
    seed_byte(&s, control(chunk_reply, 0)); /* {2, 5}: index out of range */
    seed_byte(&s, 1);
    seed_byte(&s, 2);
    seed_byte(&s, 5);
    seed_end(&s);
    seed_byte(&s, control(chunk_reply, 0)); /* 3 results for 2 events */
    seed_byte(&s, 3);
    for (uint32_t i = 0; i < 6; i++) seed_byte(&s, i);
    seed_end(&s);
    seed_reply(&s, first_last_3, 2);
    seed_end(&s);
    seed_byte(&s, control(chunk_reply, 0)); /* 2 accounts for 1 id */
    seed_byte(&s, 2);
    seed_byte(&s, 0x44);
    seed_byte(&s, 0x45);
    seed_end(&s);
    seed_reply(&s, NULL, 1);
    seed_byte(&s, 0x46);
    seed_end(&s);
    seed_byte(&s, control(chunk_reply, 0)); /* echo: 5 bytes back for 29 */
    seed_byte(&s, 5);
    seed_end(&s);
    seed_reply(&s, NULL, 0);
    seed_end(&s);
    failed |= seed_write(dir, "results-impossible", &s);

    /* Malformed frames of every class, each closing the connection; then the right reply. */
    static const struct {
        const char *name;
        uint32_t flags;
    } malformed[] = {
        {"malformed-header-checksum", malformed_header_checksum},
        {"malformed-body-checksum", malformed_body_checksum},
        {"malformed-cluster", malformed_cluster},
        {"malformed-reserved", malformed_reserved},
        {"malformed-size-below-header", malformed_size},
        {"malformed-size-above-max", malformed_size},
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
        seed_start(&s, 0x06, 1);
        seed_packet(&s, tw_operation_echo, 4, 0, 0);
        seed_byte(&s, control(chunk_malformed, malformed[i].flags));
        seed_byte(&s, 0); /* m: echo is the body anyway */
        if (malformed[i].flags == malformed_reserved) seed_byte(&s, 3);
        if (malformed[i].flags == malformed_size) {
            uint32_t size = i == 4 ? 100u : 4000u;
            seed_byte(&s, size & 0xffu);
            seed_byte(&s, size >> 8);
        }
        seed_end(&s);
        seed_reply(&s, NULL, 0);
        seed_end(&s);
        failed |= seed_write(dir, malformed[i].name, &s);
    }

    /* Other commands: a pong (ignored), then a ping (never from a server), an unknown one. */
    seed_start(&s, 0x07, 1);
    seed_packet(&s, tw_operation_lookup_transfers, 3, 0, 0);
    seed_byte(&s, control(chunk_other, tw_command_pong));
    seed_byte(&s, control(chunk_other, tw_command_ping));
    seed_end(&s);
    seed_byte(&s, control(chunk_other, 7));
    seed_end(&s);
    seed_byte(&s, control(chunk_other, tw_command_reply));
    seed_end(&s);
    seed_reply(&s, NULL, 3);
    seed_byte(&s, 1);
    seed_byte(&s, 2);
    seed_byte(&s, 3);
    seed_end(&s);
    failed |= seed_write(dir, "other-commands", &s);

    /* Stale duplicates: the right reply three times more, and raw bytes after it. */
    seed_start(&s, 0x08, 3);
    seed_packet(&s, tw_operation_echo, 1, 0, 0);
    seed_packet(&s, tw_operation_echo, 2, 0, 1);
    seed_packet(&s, tw_operation_echo, 3, 0, 1);
    seed_reply(&s, NULL, 0);
    seed_byte(&s, control(chunk_repeat, 2));
    seed_end(&s);
    seed_reply(&s, NULL, 0);
    seed_byte(&s, control(chunk_raw, 0));
    seed_byte(&s, 5);
    for (uint32_t i = 0; i < 5; i++) seed_byte(&s, 0xf0u + i);
    seed_end(&s);
    seed_reply(&s, NULL, 0);
    seed_end(&s);
    failed |= seed_write(dir, "stale-duplicates-raw", &s);

    /* Rounds: packets submitted while requests are in flight join the pending batch; linked
     * chains travel alone. */
    seed_start(&s, 0x09, 8);
    seed_packet(&s, tw_operation_create_accounts, 1, 0, 0);
    seed_packet(&s, tw_operation_create_accounts, 2, 0, 1);
    seed_packet(&s, tw_operation_create_accounts, 3, 0, 1);
    seed_packet(&s, tw_operation_create_accounts, 2, p1_linked, 1);
    seed_packet(&s, tw_operation_create_accounts, 0, 0, 2);
    seed_packet(&s, tw_operation_create_transfers, 2, p1_linked, 2);
    seed_packet(&s, tw_operation_create_transfers, 3, 0, 3);
    seed_packet(&s, tw_operation_create_transfers, 2, 0, 3);
    for (uint32_t i = 0; i < 6; i++) {
        static const uint8_t spread[] = {0, 1, 2, 3, 4, 5, 6};
        seed_reply(&s, spread, sizeof(spread));
        seed_end(&s);
    }
    failed |= seed_write(dir, "rounds-batches-linked", &s);

    /* The script ends with a request in flight and batches pending: deinit completes them. */
    seed_seven_packets(&s, 0x0a);
    seed_reply(&s, first_last_3, sizeof(first_last_3));
    seed_end(&s);
    failed |= seed_write(dir, "deinit-in-flight", &s);

    return failed;
}

/* ---- the target --------------------------------------------------------------------------- */

static void print_run(const tw_sim_report *report) {
    uint32_t by_status[TW_PACKET_STATUS_COUNT] = {0};
    for (uint32_t i = 0; i < state.packets_count; i++) {
        if (packets[i].completions == 0 || packets[i].status >= TW_PACKET_STATUS_COUNT) continue;
        by_status[packets[i].status]++;
    }
    char statuses[256] = "";
    size_t used = 0;
    for (uint32_t s = 0; s < TW_PACKET_STATUS_COUNT && used < sizeof(statuses); s++) {
        if (by_status[s] == 0) continue;
        used += (size_t)snprintf(statuses + used, sizeof(statuses) - used, "%s%s:%u", used > 0 ? "," : "",
                                 tw_packet_status_name((tw_packet_status)s), by_status[s]);
    }
    printf("fuzz_client_replies: outcome=%s packets=%u statuses=%s messages=%u requests=%u steps=%llu "
           "hash=%016llx\n",
           tw_sim_outcome_name(report->outcome), state.packets_count, statuses[0] != '\0' ? statuses : "none",
           state.messages_answered, state.requests_seen, (unsigned long long)report->steps,
           (unsigned long long)report->hash);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    if (*argc >= 3 && strcmp((*argv)[1], "--write-seeds") == 0) exit(write_seeds((*argv)[2]));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_state *st = &state;
    memset(st, 0, offsetof(fuzz_state, out));
    for (uint32_t i = 0; i < PEER_CONNS; i++) st->conns[i].index = i;
    st->data = data;
    st->size = size;
    st->offset = 0;
    uint8_t world = input_byte(st);
    st->batch_size = batch_sizes[(world >> world_batch_shift) & world_batch_mask];
    st->batch_body_max = st->batch_size < CLIENT_BODY_SIZE_MAX ? st->batch_size : CLIENT_BODY_SIZE_MAX;
    st->register_scripted = (world & world_register_scripted) != 0;
    st->op_next = PEER_OP_FIRST;
    st->timestamp_next = PEER_TIMESTAMP_FIRST;
    st->packets_count = 1u + input_byte(st) % PACKETS_MAX;
    for (uint32_t i = 0; i < st->packets_count; i++) packet_build(st, &packets[i], i);
    tw_sim_net_rates rates = {0};
    tw_sim_options options = {
        .seed = world & world_seed_mask,
        .strategy = tw_sim_strategy_random,
        .spurious_shift = -1,
        .steps_max = STEPS_MAX,
        .net = {.rates = &rates},
    };
    tw_sim_report report;
    tw_sim_run(&options, world_main, st, &report);
    if (tw_fuzz_verbose()) print_run(&report);
    if (report.outcome != tw_sim_passed) {
        fprintf(stderr, "fuzz_client_replies: %s: %s\n", tw_sim_outcome_name(report.outcome), report.message);
        abort();
    }
    if (report.allocations_live != 0) {
        fprintf(stderr, "fuzz_client_replies: %llu of the run's %llu blocks were never freed (a leak)\n",
                (unsigned long long)report.allocations_live, (unsigned long long)report.allocations);
        abort();
    }
    return 0;
}
