/* twin fuzz target: client replies. Arbitrary replies to an in-flight batch go into the
 * client's request machine (src/client_core.c: packet checks, batching, on_message, on_reply,
 * results_deliver, evictions, shutdown).
 *
 * No world, no loop, no thread: the target drives tw_client_core (include/twin/client_core.h)
 * directly and plays both of its neighbours, all of it inside the one call, so an input runs
 * in microseconds. (The first version of this target built a simulated world per input: a
 * tw_client with its IO thread, a scripted peer on the simulated network.)
 *   As the shell it does what src/client.c does around the core: packets submitted before
 * the register's reply are held, and the core takes them (port.submitted_take); after it, or
 * after an eviction, a submitted packet goes to tw_client_core_enqueue at once. A message in
 * flight with no connection gets one (tw_client_core_connected), and is written on it
 * (tw_client_core_message_send). A connection failure the core asks for
 * (port.connection_fail), the peer's close (END bit 0) or the request timer (armed at each
 * send, CLIENT_REQUEST_TIMEOUT_NS) closes the connection (tw_client_core_disconnected) and
 * opens the next, where the message in flight is sent again: the peer sees the retry as the
 * next message. port.stop (an eviction) closes it for good. At the end,
 * tw_client_core_shutdown with the packets the shell still holds, then deinit.
 *   As the scripted server peer it answers each message the client sends, in order, with
 * what the input says, and hands those bytes to the core in pieces (tw_client_core_read_space,
 * tw_client_core_receive) cut short at the rate byte 0 names.
 *   Writes. A send lends the core's message buffer until the write reports
 * (tw_client_core_message_written). The target keeps the pointer; the peer reads the bytes
 * from it only when the write reports, and that is either at once (once the core call that
 * sent it has returned, before the peer's answer to that message: but a reply in the same
 * piece of bytes is read first) or late: after the peer's answer to that message has been
 * written to the client (its first END or DELAY), so that the client reads a reply before its
 * request's write has reported, as it can in io_uring; byte 0 chooses. A write still pending
 * when its connection closes reports then: the peer reads it unless the peer closed that
 * connection (then the peer never had that message and does not answer it). Virtual time
 * moves only at a DELAY, and when the peer has nothing to answer while packets are
 * outstanding: it waits until the request timer fires.
 *
 * The input (the first version's format; byte 0's bits 0-3 were its world's seed). Byte 0:
 * bits 0-1 when writes report (0: at once, 1: late, 2 and 3: drawn for each write, late 1 in
 * WRITE_LATE_ONE_IN), bits 2-3 how often a piece of the bytes handed to the core is cut short
 * (never, 1 in 2, 4 or 16; the draws from a PCG32 seeded with bits 0-3), bits 4-5 the batch
 * size the peer announces (batch_sizes: 896, 320, 160 or 80 bytes, the least the client
 * takes), bit 6 batching off, bit 7: registers are answered by the script too (else at once,
 * validly). Byte 1: 1 + b % PACKETS_MAX packets, two bytes each: p0 = operation (bits 0-2:
 * 1..5 are the operations, 0, 6 and 7 invalid) | events (bits 3-7: 0..31; echo:
 * ECHO_BYTES_PER_EVENT bytes each); p1 = last event linked (bit 0), a bad data size (bit 1:
 * one byte more, or for echo data NULL, of 1 byte if it had none), the round it is submitted
 * in (bits 2-3: 0 at the start, r when the peer takes up the client's r-th request, or earlier
 * once no packet is outstanding), the events' contents (bits 4-7). Then the replies:
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
 *               the connection (the client reads its end and retries on a new one).
 *   6 DELAY     writes what is built, then (flags + 1) * DELAY_UNIT_NS of virtual time pass;
 *               50 ms after its last send the client's request timer fires (flags 12 and up
 *               on their own; smaller delays add up): it retries on a new connection.
 *   7 REPEAT    the last message built, (flags & 7) + 1 times more (stale duplicates).
 * A write to a connection the client no longer reads is lost. An input has budgets (the
 * first version's limits were 16 KiB written per connection and 256 messages answered):
 * INPUT_BUILT_TOTAL_MAX bytes built (past it nothing is appended), PEER_MESSAGES_MAX
 * messages answered and CHUNKS_MAX chunks run (then the script ends), CONNECTS_MAX
 * connections (then none opens, and the script ends). When the script ends, the pending
 * writes report, the packets not yet submitted are submitted, and the client shuts down
 * (tw_client_core_shutdown with the packets the shell still holds) and is deinit'ed.
 *
 * The oracle, besides no assertion failing in the core: every packet completes exactly
 * once (ok, or a status, by shutdown at the latest), with a status it can have:
 * invalid_operation only for the invalid operations, invalid_data_size only for bad sizes,
 * too_much_data only for more events than the announced batch size allows (and each of
 * these packets with nothing else but client_shutdown), an eviction status only for a
 * reason the peer sent, client_shutdown only once shutdown began; and once the client has
 * read an eviction, no packet is left outstanding. An ok packet has a timestamp and results
 * of the right size for ITS OWN events: creates {index, result} pairs, indexes ascending and
 * below its own event count (rebased to it), lookups whole objects, at most one per id, echo
 * exactly its own byte count. What the client sends is checked too: a send that is not of a
 * new message (port.message_ready since the last send) is a retry and carries the same bytes
 * as the send before it; when a write reports, the buffer it was lent still holds the bytes
 * it held when sent (the core never seals a message over bytes being written); what the peer
 * reads is one well-formed message a write (tw_header_check, tw_body_valid), a register
 * (request 0) only as the first message on a connection, request numbers increasing on each
 * connection (the peer may miss a message on a connection it closed), a number sent again
 * with the same operation and bytes, the session the peer gave, bodies of whole events within
 * the announced batch size. (Leaks: the core's deinit frees what its init allocated;
 * LeakSanitizer checks that in the libFuzzer build and the asan preset's replay.)
 *
 * A failure prints what was wrong and aborts (every engine reports it as a crash).
 * `fuzz_client_replies --write-seeds DIR` writes the seed inputs (corpus/client_replies/). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/client.h>
#include <twin/client_core.h>
#include <twin/ledger.h>
#include <twin/pcg.h>
#include <twin/proto.h>

#include "common.h"

#define MS_NS (1000ull * 1000ull)

/* The client. */
#define CLIENT_MESSAGE_SIZE_MAX 1024u
#define CLIENT_BODY_SIZE_MAX (CLIENT_MESSAGE_SIZE_MAX - TW_HEADER_SIZE)
#define CLIENT_REQUEST_TIMEOUT_NS (50ull * MS_NS)
#define CLIENT_RELEASE 1u
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
#define PEER_INBOX_MAX 8u
/* An input's budgets: REPEAT, DELAY and END-and-close bytes each multiply the work (a
 * 2-KiB input answered 256 messages over 250 connections, 400 us under ASan, with the
 * first version's limits), and every state is reached long before. What would go past a
 * budget does not happen: the bytes are not appended, the script ends (no chunk runs, no
 * message is answered), no connection opens. */
#define INPUT_BUILT_TOTAL_MAX (16u * 1024u) /* bytes the peer builds (and writes) */
#define PEER_MESSAGES_MAX 64u               /* messages the peer answers */
#define CONNECTS_MAX 64u                    /* connections the client opens */
#define CHUNKS_MAX 512u                     /* chunks run */
#define PEER_OUT_SIZE INPUT_BUILT_TOTAL_MAX /* bytes built for one write */
#define MESSAGE_BUILT_SIZE_MAX (TW_HEADER_SIZE + 1024u)
#define CREATE_RESULTS_MAX 31u
#define CREATE_EVENTS_MAX (CLIENT_BODY_SIZE_MAX / sizeof(tw_account)) /* the smaller create event */
_Static_assert(CREATE_EVENTS_MAX <= 64u, "a create request's result indexes fit a uint64_t's bits");
#define REPEAT_MAX_MASK 7u
#define DELAY_UNIT_NS (4ull * MS_NS)
#define REQUESTS_RECORDED 512u /* request numbers whose bytes are remembered */

/* Time, virtual: it starts here and moves only at DELAY and while the peer waits. */
#define TIME_START_NS (1000ull * MS_NS)

/* Byte patterns (i & 0xff from an offset) are copied out of a ramp, not built byte by byte:
 * an echo packet of 899 bytes is one copy. */
#define RAMP_SIZE (2u * 1024u)
_Static_assert(RAMP_SIZE >= UINT8_MAX + PACKET_EVENTS_MAX * ECHO_BYTES_PER_EVENT, "an echo packet's ramp");
_Static_assert(RAMP_SIZE >= MESSAGE_BUILT_SIZE_MAX, "a raw body's ramp");

/* Writes: drawn late 1 in this many (world write order 2 and 3). */
#define WRITE_LATE_ONE_IN 2u

static const uint32_t batch_sizes[4] = {CLIENT_BODY_SIZE_MAX, 320u, 160u,
                                        TW_CLIENT_MESSAGE_SIZE_MIN - TW_HEADER_SIZE};
static const uint32_t cut_rates[4] = {0, 2, 4, 16};
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
    world_write_mask = 3u,
    world_cut_shift = 2u,
    world_cut_mask = 3u,
    world_seed_mask = 15u,
    world_batch_shift = 4u,
    world_batch_mask = 3u,
    world_batching_off = 1u << 6,
    world_register_scripted = 1u << 7,
};

/* When a write reports (world bits 0-1; 3 is drawn too). */
enum write_order {
    write_at_once = 0, /* once the core call that sent it has returned */
    write_late = 1,    /* after the peer's answer to its message has been written */
    write_drawn = 2,   /* late 1 in WRITE_LATE_ONE_IN, else at once */
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
    uint64_t input; /* the input that recorded it: seen in this one if it is the current one */
    uint8_t operation;
    tw_u128 checksum_body;
} request_record;

/* A message the client sent, as it was when sent: what the peer answers. */
typedef struct peer_message {
    tw_header header;
    uint32_t conn; /* the connection it was sent on */
    uint32_t send; /* the client's send it was (1, 2, ...) */
    _Alignas(16) uint8_t body[CLIENT_BODY_SIZE_MAX];
} peer_message;

/* The peer's end of the client's latest connection. */
typedef struct peer_conn {
    uint32_t index;
    bool closed;           /* by the peer */
    uint32_t messages;     /* read from the client */
    uint64_t request_last; /* of its last message */
} peer_conn;

/* The client's write in progress: at most one, as the core lends one buffer. */
typedef struct client_write {
    bool active;
    bool report_now; /* at once, or its message has been answered */
    bool late;       /* it waits for the answer to its message */
    uint32_t conn;
    uint32_t send;
    uint32_t size;
    const uint8_t *bytes; /* the core's message buffer, lent */
} client_write;

typedef struct fuzz_state {
    const uint8_t *data;
    size_t size;
    size_t offset;
    /* The world's choices. */
    uint32_t batch_size;     /* what the peer announces */
    uint32_t batch_body_max; /* what the client then uses: min(batch_size, its own) */
    bool register_scripted;
    uint32_t write_order;
    uint32_t cut_one_in;
    tw_pcg32 draws; /* cut points, and which writes are late */
    /* The packets. */
    uint32_t packets_count;
    uint32_t submitted;
    uint32_t completed;
    bool shutdown_started;
    uint32_t eviction_statuses; /* bit per tw_packet_status an eviction sent may give */
    /* The shell (src/client.c's part). */
    tw_client_core core;
    tw_packet *held_head; /* submitted before registration: the core takes them */
    tw_packet *held_tail;
    bool connected;       /* a connection is open and its bytes go to the core */
    uint32_t conn;        /* its index: 0, 1, 2, ... */
    uint32_t connects;    /* of CONNECTS_MAX */
    bool closing;         /* closed; pump once its write has reported (the backoff's end) */
    bool sent_on_conn;    /* the message in flight was written on this connection */
    bool send_wanted;     /* it waits for the buffer (a write of the last one holds it) */
    bool message_new;     /* message_ready since the last send: the next send is no retry */
    bool settle_wanted;   /* a write may report, a connection closed, or a message waits */
    bool timer_armed;     /* the request timer */
    uint64_t deadline_ns;
    uint64_t now_ns;
    client_write write;
    uint32_t sent_size;   /* of the last send, whose bytes are in sent */
    /* Counters, for the verbose line. */
    uint32_t sends;
    uint32_t retries;
    uint32_t writes_late;
    uint32_t writes_lost;
    uint32_t pieces;
    uint32_t timeouts;
    uint32_t connection_fails;
    uint32_t peer_closes;
    /* The peer. */
    peer_conn peer;
    uint32_t inbox_head;
    uint32_t inbox_count;
    uint32_t inbox_dropped;
    uint64_t op_next;
    uint64_t timestamp_next;
    uint32_t messages_answered;
    uint32_t requests_seen;
    uint32_t built_total;   /* of INPUT_BUILT_TOTAL_MAX */
    uint32_t chunks;        /* of CHUNKS_MAX */
    /* The reply being built, and the last message built (REPEAT). */
    uint32_t out_size;
    uint32_t last_size;
    uint64_t input; /* inputs run so far, this one included (kept over the clearing) */
    /* Below: written before read, not cleared per input. */
    peer_message last; /* the message being answered */
    /* What the client sent so far in this input (its own oracle): records of the input. */
    request_record requests[REQUESTS_RECORDED];
    peer_message inbox[PEER_INBOX_MAX];
    _Alignas(16) uint8_t out[PEER_OUT_SIZE];
    _Alignas(16) uint8_t last_message[MESSAGE_BUILT_SIZE_MAX];
    _Alignas(16) uint8_t body[MESSAGE_BUILT_SIZE_MAX];
    _Alignas(16) uint8_t sent[CLIENT_MESSAGE_SIZE_MAX]; /* the last send's bytes, as lent */
} fuzz_state;

/* HARNESS_UNCOVERED (fuzz/common.h): the shell's and the peer's bookkeeping and the oracle's
 * checks; what decodes the input (packet_build, chunk_run and the reply builders) stays
 * covered. */

static fuzz_state state;
static packet_record packets[PACKETS_MAX];
static uint8_t ramp[RAMP_SIZE]; /* ramp[i] = i & 0xff */
static bool verbose; /* TWIN_FUZZ_VERBOSE=1, read once */

HARNESS_UNCOVERED static bool u128_equal(tw_u128 a, tw_u128 b) { return a.low == b.low && a.high == b.high; }

static uint8_t input_byte(fuzz_state *st) { return st->offset < st->size ? st->data[st->offset++] : 0; }

/* ---- the packets and their oracle ---------------------------------------------------------- */

static bool operation_valid(uint8_t operation) {
    return operation >= tw_operation_create_accounts && operation <= tw_operation_echo;
}

HARNESS_UNCOVERED static uint32_t events_max_of(const fuzz_state *st, uint8_t operation) {
    TW_ASSERT(operation_valid(operation));
    return tw_operation_events_max((tw_operation)operation, st->batch_body_max + TW_HEADER_SIZE);
}

HARNESS_UNCOVERED static tw_packet_status eviction_status_of(uint8_t reason) {
    if (reason == tw_eviction_client_release_too_low) return tw_packet_client_release_too_low;
    if (reason == tw_eviction_client_release_too_high) return tw_packet_client_release_too_high;
    return tw_packet_client_evicted;
}

HARNESS_UNCOVERED static void check_ok(const packet_record *r, uint64_t timestamp, const uint8_t *result,
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

HARNESS_UNCOVERED static void on_completion(uintptr_t context, tw_packet *packet, uint64_t timestamp,
                                            const uint8_t *result, uint32_t result_size) {
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
        if (st->shutdown_started) return;
        break;
    }
    tw_fuzz_fail("packet %u (operation %u, %u events, %u bytes%s%s) completed %s, which it cannot (shutdown %s, "
         "evictions sent 0x%x, at most %u events)",
         index, r->operation, r->events, r->data_size, r->operation_valid ? "" : ", invalid operation",
         r->size_valid ? "" : ", bad size", tw_packet_status_name(status),
         st->shutdown_started ? "began" : "not begun", st->eviction_statuses,
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
    case tw_operation_echo: /* byte i is index * 31 + i + content */
        size = count * ECHO_BYTES_PER_EVENT;
        memcpy(r->data, ramp + ((index * 31u + content) & UINT8_MAX), size);
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

static void settle(fuzz_state *st);

/* Hands the packets of a round to the client: held until registration (the core takes them
 * then), else enqueued at once, as the shell's IO thread does with its queue. */
HARNESS_UNCOVERED static void submit_round(fuzz_state *st, uint32_t round) {
    for (uint32_t i = 0; i < st->packets_count; i++) {
        packet_record *r = &packets[i];
        if (r->submitted || r->round > round) continue;
        r->submitted = true;
        st->submitted++;
        tw_client_core_packet_submitted(&r->packet);
        if (st->core.registered || st->core.evicted != tw_packet_ok) {
            tw_client_core_enqueue(&st->core, &r->packet);
            st->settle_wanted = true; /* and, once evicted, the check that it completed */
            settle(st);
            continue;
        }
        if (st->held_tail != NULL) st->held_tail->links.next = &r->packet;
        else st->held_head = &r->packet;
        st->held_tail = &r->packet;
    }
}

/* ---- the peer: what the client sends ----------------------------------------------------- */

HARNESS_UNCOVERED static void on_client_message(void *context, const tw_header *h, const uint8_t *body) {
    (void)body;
    fuzz_state *st = context;
    peer_conn *conn = &st->peer;
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
        } else if (same != NULL && same->input == st->input &&
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
                .input = st->input,
                .checksum_body = h->checksum_body,
                .operation = h->operation,
            };
        }
    }
    conn->messages++;
    conn->request_last = h->request;
}

/* The client sent a message: the peer will answer it in turn (its oldest unanswered first;
 * while it is busy, a ninth is one too many and the oldest is missed). */
HARNESS_UNCOVERED static void inbox_push(fuzz_state *st, const tw_header *message) {
    if (st->inbox_count == PEER_INBOX_MAX) {
        st->inbox_head = (st->inbox_head + 1u) % PEER_INBOX_MAX;
        st->inbox_count--;
        st->inbox_dropped++;
    }
    peer_message *m = &st->inbox[(st->inbox_head + st->inbox_count) % PEER_INBOX_MAX];
    m->header = *message;
    m->conn = st->conn;
    m->send = st->sends;
    uint32_t body_size = message->size - TW_HEADER_SIZE;
    if (body_size > 0) memcpy(m->body, (const uint8_t *)message + TW_HEADER_SIZE, body_size);
    st->inbox_count++;
}

/* A write the peer never read (it had closed the connection): its message is not answered.
 * Only the newest send can be still writing. */
HARNESS_UNCOVERED static void inbox_forget(fuzz_state *st, uint32_t send) {
    if (st->inbox_count == 0) return;
    uint32_t newest = (st->inbox_head + st->inbox_count - 1u) % PEER_INBOX_MAX;
    if (st->inbox[newest].send == send) st->inbox_count--;
}

/* ---- the shell: connection, writes, timer (src/client.c's part) --------------------------- */

static void pump(fuzz_state *st);

HARNESS_UNCOVERED static void write_report(fuzz_state *st) {
    client_write *w = &st->write;
    TW_ASSERT(w->active && st->core.message_lent && st->peer.index == w->conn);
    TW_ASSERT(w->size == st->sent_size);
    w->active = false;
    if (w->late) st->writes_late++;
    /* The buffer was lent to this write: it must still hold what was sent. */
    if (memcmp(w->bytes, st->sent, w->size) != 0) {
        tw_header was;
        tw_header now;
        memcpy(&was, st->sent, sizeof(was));
        memcpy(&now, w->bytes, sizeof(now));
        tw_fuzz_fail("the write of the client's %s %llu (%u bytes, send %u, connection %u) reported, but the "
                     "buffer it was lent no longer holds those bytes: it holds a %s %llu of %u bytes now (a "
                     "message was sealed over bytes still being written)",
                     tw_command_name((tw_command)was.command), (unsigned long long)was.request, w->size, w->send,
                     w->conn, tw_command_name((tw_command)now.command), (unsigned long long)now.request, now.size);
    }
    if (st->peer.closed) {
        st->writes_lost++;
        inbox_forget(st, w->send);
    } else {
        /* The peer reads the bytes now, from the buffer: one whole message a write, checked
         * as a frame reader would (without its copy). */
        const tw_header *header = (const tw_header *)(const void *)w->bytes;
        tw_proto_error error = tw_header_check(header, cluster, CLIENT_MESSAGE_SIZE_MAX);
        if (error == tw_proto_ok && !tw_body_valid(header, w->bytes + TW_HEADER_SIZE)) {
            error = tw_proto_bad_body_checksum;
        }
        if (error != tw_proto_ok) {
            tw_fuzz_fail("the client sent a malformed message (%s)", tw_proto_error_name(error));
        }
        if (header->size != w->size) {
            tw_fuzz_fail("the client's write of %u bytes holds a message of %u bytes", w->size, header->size);
        }
        on_client_message(st, header, w->bytes + TW_HEADER_SIZE);
    }
    tw_client_core_message_written(&st->core);
    if (!st->connected || w->conn != st->conn) return; /* its close goes on (settle) */
    /* The buffer is free again: the request it held may be resent, or the next one sealed. */
    st->send_wanted = false;
    pump(st);
}

/* Writes the message in flight on the open connection, unless a write still holds it. */
HARNESS_UNCOVERED static void message_queue(fuzz_state *st) {
    TW_ASSERT(st->connected && st->core.inflight_active && !st->sent_on_conn);
    if (st->core.message_lent) {
        st->send_wanted = true;
        return;
    }
    const tw_header *message = tw_client_core_message_send(&st->core);
    TW_ASSERT(message != NULL && message->size >= TW_HEADER_SIZE && message->size <= CLIENT_MESSAGE_SIZE_MAX);
    const uint8_t *bytes = (const uint8_t *)message;
    if (!st->message_new) {
        /* No new message since the last send: this is a retry, byte for byte. */
        st->retries++;
        if (message->size != st->sent_size || memcmp(bytes, st->sent, message->size) != 0) {
            tw_header before;
            memcpy(&before, st->sent, sizeof(before));
            tw_fuzz_fail("the client sent its %s %llu (%s, %u bytes) again on connection %u as %s %llu (%s, %u "
                         "bytes): a retry must be the same bytes",
                         tw_command_name((tw_command)before.command), (unsigned long long)before.request,
                         tw_operation_name((tw_operation)before.operation), before.size, st->conn,
                         tw_command_name((tw_command)message->command), (unsigned long long)message->request,
                         tw_operation_name((tw_operation)message->operation), message->size);
        }
    }
    st->message_new = false;
    memcpy(st->sent, bytes, message->size);
    st->sent_size = message->size;
    st->sends++;
    st->sent_on_conn = true;
    st->settle_wanted = true;
    st->timer_armed = true;
    st->deadline_ns = st->now_ns + CLIENT_REQUEST_TIMEOUT_NS;
    bool late = st->write_order == write_late ||
                (st->write_order >= write_drawn && tw_pcg32_bounded(&st->draws, WRITE_LATE_ONE_IN) == 0);
    st->write = (client_write){
        .active = true,
        .report_now = !late,
        .late = late,
        .conn = st->conn,
        .send = st->sends,
        .size = message->size,
        .bytes = bytes,
    };
    inbox_push(st, message);
}

/* What the connection should do next for the request in flight (src/client.c pump). */
HARNESS_UNCOVERED static void pump(fuzz_state *st) {
    if (!tw_client_core_active(&st->core)) return;
    if (!st->core.inflight_active) {
        /* The core seals the next request, if any, and comes back here (message_ready). */
        tw_client_core_send_next(&st->core);
        return;
    }
    if (!st->connected) return; /* settle opens one */
    if (!st->sent_on_conn) message_queue(st);
}

HARNESS_UNCOVERED static void conn_open(fuzz_state *st) {
    TW_ASSERT(!st->connected && !st->write.active && tw_client_core_active(&st->core));
    if (st->connects > 0) st->conn++;
    st->connects++;
    st->connected = true;
    st->sent_on_conn = false;
    st->send_wanted = false;
    st->peer = (peer_conn){.index = st->conn};
    tw_client_core_connected(&st->core);
    pump(st);
}

/* The client closes its connection (its write, if any, reports in settle). */
HARNESS_UNCOVERED static void conn_close(fuzz_state *st) {
    TW_ASSERT(st->connected);
    st->connected = false;
    st->send_wanted = false;
    st->closing = true;
    st->settle_wanted = true;
    tw_client_core_disconnected(&st->core);
}

/* Any failure of the connection or of the request on it: close, and (settle) the next
 * connection, the same message again. */
HARNESS_UNCOVERED static void conn_fail(fuzz_state *st) {
    TW_ASSERT(st->connected);
    st->timer_armed = false;
    conn_close(st);
}

/* What the shell does between the core's calls, as its loop would: a write that may report
 * does; a closed connection's backoff ends; a message in flight with no connection gets one
 * (while the budget lasts). Then the oracle: an evicted client holds no packet. Called
 * after every core call (never from inside one), it does something only when asked
 * (settle_wanted: a send, a close, a new message, a write let report, a packet enqueued). */
HARNESS_UNCOVERED static void settle(fuzz_state *st) {
    if (!st->settle_wanted) return;
    for (;;) {
        client_write *w = &st->write;
        if (w->active && (w->report_now || !st->connected || w->conn != st->conn)) {
            write_report(st);
            continue;
        }
        if (st->closing) {
            st->closing = false;
            pump(st);
            continue;
        }
        if (tw_client_core_active(&st->core) && !st->connected && st->core.inflight_active &&
            st->connects < CONNECTS_MAX) {
            conn_open(st);
            continue;
        }
        break;
    }
    st->settle_wanted = false;
    if (!st->shutdown_started && st->core.evicted != tw_packet_ok && st->completed != st->submitted) {
        uint32_t index = 0;
        while (index < st->packets_count && (!packets[index].submitted || packets[index].completions > 0)) {
            index++;
        }
        TW_ASSERT(index < st->packets_count);
        tw_fuzz_fail("the client read an eviction (its packets complete with %s), but packet %u (%s, %u bytes) "
                     "is still outstanding: %u of %u submitted packets completed",
                     tw_packet_status_name((tw_packet_status)st->core.evicted), index,
                     tw_operation_name((tw_operation)packets[index].operation), packets[index].data_size,
                     st->completed, st->submitted);
    }
}

/* Virtual time passes; the request timer may fire (a timeout: the client retries). */
HARNESS_UNCOVERED static void time_pass(fuzz_state *st, uint64_t ns) {
    st->now_ns += ns;
    if (!st->timer_armed || st->now_ns < st->deadline_ns) return;
    TW_ASSERT(st->connected && st->core.inflight_active);
    st->timeouts++;
    conn_fail(st);
    settle(st);
}

/* ---- the core's port ----------------------------------------------------------------------- */

HARNESS_UNCOVERED static tw_packet *port_submitted_take(void *context) {
    fuzz_state *st = context;
    TW_ASSERT(st->core.registered || st->core.evicted != tw_packet_ok);
    tw_packet *all = st->held_head;
    st->held_head = NULL;
    st->held_tail = NULL;
    return all;
}

HARNESS_UNCOVERED static void port_message_ready(void *context) {
    fuzz_state *st = context;
    TW_ASSERT(st->core.inflight_active && st->core.inflight != NULL && tw_client_core_active(&st->core));
    st->message_new = true;
    st->sent_on_conn = false;
    st->settle_wanted = true; /* it may need a connection */
    pump(st);
}

HARNESS_UNCOVERED static void port_reply_accepted(void *context) {
    fuzz_state *st = context;
    TW_ASSERT(st->connected && !st->core.inflight_active);
    st->timer_armed = false;
}

HARNESS_UNCOVERED static void port_connection_fail(void *context) {
    fuzz_state *st = context;
    TW_ASSERT(st->connected && !st->core.connected);
    st->connection_fails++;
    conn_fail(st);
}

HARNESS_UNCOVERED static void port_stop(void *context) {
    fuzz_state *st = context;
    TW_ASSERT(!tw_client_core_active(&st->core) && !st->core.connected);
    st->timer_armed = false;
    if (st->connected) conn_close(st);
}

/* ---- the peer: writing to the client ------------------------------------------------------- */

/* A piece of at most room bytes: all of it, or cut short 1 in cut_one_in times. */
HARNESS_UNCOVERED static uint32_t piece_size(fuzz_state *st, uint32_t room) {
    TW_ASSERT(room > 0);
    if (st->cut_one_in != 0 && tw_pcg32_bounded(&st->draws, st->cut_one_in) == 0) {
        return 1u + tw_pcg32_bounded(&st->draws, room);
    }
    return room;
}

/* Hands out[0, size) to the core in pieces, as its reader asks, while the client reads
 * connection conn (a connection it has closed reads nothing more). */
HARNESS_UNCOVERED static void feed(fuzz_state *st, uint32_t size, uint32_t conn) {
    uint32_t from = 0;
    while (from < size && st->connected && st->conn == conn) {
        uint32_t room = 0;
        uint8_t *space = tw_client_core_read_space(&st->core, &room);
        TW_ASSERT(space != NULL && room > 0);
        uint32_t left = size - from;
        uint32_t count = piece_size(st, room < left ? room : left);
        memcpy(space, st->out + from, count);
        from += count;
        st->pieces++;
        tw_client_core_receive(&st->core, count);
        settle(st);
    }
}

/* Writes what the chunks built to the connection the message came on, if the client still
 * reads it; then the write of that message reports, if it waited for its answer. */
HARNESS_UNCOVERED static void peer_flush(fuzz_state *st) {
    uint32_t size = st->out_size;
    uint32_t conn = st->last.conn;
    st->out_size = 0;
    bool open = st->connected && st->conn == conn && st->peer.index == conn && !st->peer.closed;
    if (size > 0 && open) feed(st, size, conn);
    if (st->write.active && st->write.send == st->last.send) {
        st->write.report_now = true;
        st->settle_wanted = true;
        settle(st);
    }
}

/* The peer closes the connection; the client, if it still reads it, reads its end. */
HARNESS_UNCOVERED static void peer_close(fuzz_state *st, uint32_t conn) {
    if (st->peer.index != conn || st->peer.closed) return;
    st->peer.closed = true;
    if (!st->connected || st->conn != conn) return;
    st->peer_closes++;
    conn_fail(st);
    settle(st);
}

/* Appends to the write being built; past the input's budget, dropped. */
HARNESS_UNCOVERED static void peer_append(fuzz_state *st, const void *bytes, uint32_t size) {
    if (size > INPUT_BUILT_TOTAL_MAX - st->built_total) return;
    st->built_total += size;
    TW_ASSERT(size <= PEER_OUT_SIZE - st->out_size);
    memcpy(st->out + st->out_size, bytes, size);
    st->out_size += size;
}

/* ---- the peer: building replies ------------------------------------------------------------ */

/* Seals and appends a message; an eviction that can reach the client is recorded. */
HARNESS_UNCOVERED static void peer_message_append(fuzz_state *st, tw_header *h, const uint8_t *body,
                                                  uint32_t body_size) {
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

/* A reply's body for the message being answered (see REPLY above). */
static uint32_t reply_body(fuzz_state *st, bool right) {
    const tw_header *request = &st->last.header;
    uint8_t m = input_byte(st);
    uint32_t request_body = request->size - TW_HEADER_SIZE;
    if (request->command == tw_command_register) {
        if (right) return 0;
        memcpy(st->body, ramp, m); /* byte i is i */
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
            /* The indexes, sorted and without duplicates: a bit each (a request holds at most
             * CREATE_EVENTS_MAX events); the k-th of them gets the k-th code drawn. */
            TW_ASSERT(events <= CREATE_EVENTS_MAX);
            uint64_t indexes = 0;
            uint32_t codes[CREATE_RESULTS_MAX];
            uint32_t drawn = 0;
            for (uint32_t i = 0; i < count; i++) {
                uint8_t e = input_byte(st); /* read even with no events: the layout stays */
                if (events == 0) continue;
                indexes |= 1ull << (e % events);
                codes[drawn++] = 1u + e % 17u;
            }
            uint32_t kept = 0;
            for (uint32_t index = 0; indexes != 0; index++, indexes >>= 1) {
                if ((indexes & 1u) == 0) continue;
                TW_ASSERT(kept < drawn);
                tw_create_result r = {.index = index, .result = codes[kept++]};
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
            /* byte i is the request's, past its end i */
            uint32_t copied = m < request_body ? m : request_body;
            memcpy(st->body, st->last.body, copied);
            memcpy(st->body + copied, ramp + copied, m - copied);
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


/* The input ran out, or its budget of chunks. */
static bool script_done(const fuzz_state *st) { return st->offset >= st->size || st->chunks == CHUNKS_MAX; }

/* Runs one chunk; false at an END (or when the script is done). */
static bool chunk_run(fuzz_state *st) {
    if (script_done(st)) return false;
    st->chunks++;
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
    case chunk_raw: { /* as many of the n bytes as the input has, and as the budget takes */
        uint32_t count = input_byte(st);
        if (count > st->size - st->offset) count = (uint32_t)(st->size - st->offset);
        uint32_t room = INPUT_BUILT_TOTAL_MAX - st->built_total;
        peer_append(st, st->data + st->offset, count < room ? count : room);
        st->offset += count;
        return true;
    }
    case chunk_end:
        peer_flush(st);
        if ((flags & 1u) != 0) peer_close(st, st->last.conn);
        return false;
    case chunk_delay:
        peer_flush(st);
        time_pass(st, (uint64_t)(flags + 1u) * DELAY_UNIT_NS);
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

/* The message to answer next, copied out of the inbox (its body only as long as it is). */
HARNESS_UNCOVERED static void message_take(fuzz_state *st, const peer_message *m) {
    st->last.header = m->header;
    st->last.conn = m->conn;
    st->last.send = m->send;
    uint32_t body_size = m->header.size - TW_HEADER_SIZE;
    if (body_size > 0) memcpy(st->last.body, m->body, body_size);
}

static uint32_t round_next(const fuzz_state *st) {
    uint32_t round = ROUNDS;
    for (uint32_t i = 0; i < st->packets_count; i++) {
        if (!packets[i].submitted && packets[i].round < round) round = packets[i].round;
    }
    return round;
}

/* Pending writes report (the world settles), and what they free may be sent. */
HARNESS_UNCOVERED static void writes_drain(fuzz_state *st) {
    settle(st);
    while (st->write.active) {
        st->write.report_now = true;
        st->settle_wanted = true;
        settle(st);
    }
}

/* ---- a run ------------------------------------------------------------------------------- */

static void run(fuzz_state *st) {
    uint8_t world = st->size > 0 ? st->data[0] : 0;
    tw_client_core_options options = {
        .cluster = cluster,
        .id = client_id,
        .release = CLIENT_RELEASE,
        .batching = (world & world_batching_off) == 0,
        .message_size_max = CLIENT_MESSAGE_SIZE_MAX,
        .completion_context = (uintptr_t)CLIENT_ID_LOW,
        .completion = on_completion,
    };
    tw_client_port port = {
        .context = st,
        .submitted_take = port_submitted_take,
        .message_ready = port_message_ready,
        .reply_accepted = port_reply_accepted,
        .connection_fail = port_connection_fail,
        .stop = port_stop,
    };
    tw_client_init_status init = tw_client_core_init(&st->core, &options, &port);
    if (init != tw_client_init_ok) tw_fuzz_fail("tw_client_core_init: %s", tw_client_init_status_name(init));
    /* The register, sealed at init, goes out on the first connection. */
    st->message_new = true;
    st->settle_wanted = true;
    settle(st);
    submit_round(st, 0);

    while (st->messages_answered < PEER_MESSAGES_MAX) {
        settle(st);
        if (!st->connected && st->connects == CONNECTS_MAX && tw_client_core_active(&st->core)) break;
        if (st->inbox_count == 0) {
            if (st->completed == st->submitted) {
                /* Nothing outstanding: the next round now, or the end. */
                if (st->submitted == st->packets_count) break;
                submit_round(st, round_next(st));
                continue;
            }
            /* Packets are outstanding and the peer has nothing to answer: it waits, and the
             * client's request timer must fire (then it retries). */
            if (!st->timer_armed) {
                tw_fuzz_fail("the client sent nothing and waits for no reply (no request timer) with %u of %u "
                             "packets outstanding",
                             st->submitted - st->completed, st->submitted);
            }
            time_pass(st, st->deadline_ns - st->now_ns);
            continue;
        }
        message_take(st, &st->inbox[st->inbox_head]);
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
        if (script_done(st)) break;
        while (chunk_run(st)) {
        }
        peer_flush(st);
    }

    /* The script is done: the writes report, then everything else is submitted and the
     * client shuts down; every packet must have completed by then. */
    writes_drain(st);
    submit_round(st, ROUNDS);
    writes_drain(st);
    st->shutdown_started = true;
    tw_packet *held = st->held_head;
    st->held_head = NULL;
    st->held_tail = NULL;
    tw_client_core_shutdown(&st->core, held);
    settle(st);
    TW_ASSERT(!st->write.active && !st->core.message_lent && !st->connected);
    tw_client_core_deinit(&st->core);
    for (uint32_t i = 0; i < st->packets_count; i++) {
        if (packets[i].completions != 1) {
            tw_fuzz_fail("packet %u (%s) completed %u times by the end of shutdown", i,
                 tw_operation_name((tw_operation)packets[i].operation), packets[i].completions);
        }
    }
}

/* ---- seeds -------------------------------------------------------------------------------- */

/* The seed inputs of corpus/client_replies/, written by `fuzz_client_replies --write-seeds
 * DIR`: right replies to batches (results at each packet's first and last events, so that
 * rebasing shows), packets of every operation and every status, replies that fail each
 * check (client, request, operation, timestamp, results out of order or range, sizes),
 * malformed frames of every class, evictions of every reason in flight and pending, stale
 * duplicates, retries after a close and after a timeout, scripted registers, batching off,
 * packets submitted while requests are in flight, writes that report late, bytes in pieces
 * cut short, and replies read before the write of their request has reported. (The names
 * and bytes of all but the last three are the first version's.) */

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

    /* The script ends with a request in flight and batches pending: shutdown completes them. */
    seed_seven_packets(&s, 0x0a);
    seed_reply(&s, first_last_3, sizeof(first_last_3));
    seed_end(&s);
    failed |= seed_write(dir, "deinit-in-flight", &s);

    /* Writes that report late: the register's reply is read before its write has reported,
     * so no request is sealed until then and the packets that waited for it batch by
     * operation: requests 1 = A + B + C, 2 = D + E, 3 = F, 4 = G; results at each packet's
     * first and last events (A: 0, 2; B: 3, 4; C: 5, 8 before rebasing). */
    static const uint8_t first_last_3_2_4[] = {0, 2, 3, 4, 5, 8};
    seed_seven_packets(&s, write_late);
    seed_reply(&s, first_last_3_2_4, sizeof(first_last_3_2_4));
    seed_end(&s);
    seed_reply(&s, NULL, 0);
    seed_end(&s);
    seed_reply(&s, one_of_2, sizeof(one_of_2));
    seed_end(&s);
    seed_reply(&s, NULL, 2);
    seed_byte(&s, 0x11);
    seed_byte(&s, 0x22);
    seed_end(&s);
    failed |= seed_write(dir, "writes-late-batches", &s);

    /* batches-ok-first-last with the bytes handed to the core in pieces cut short 1 in 2. */
    seed_seven_packets(&s, 1u << world_cut_shift);
    seed_seven_replies(&s);
    failed |= seed_write(dir, "batches-ok-cut-pieces", &s);

    /* Replies ahead of the writes (batching off, three echoes): the answer to request 1
     * carries replies to requests 2 and 3 too. Request 2 is sealed and sent when reply 1 is
     * taken, and reply 2 is read before that write has reported: it is taken, and request 3
     * waits for the buffer; reply 3 finds nothing in flight. Then the answers to requests 2
     * (stale by then) and 3. */
    seed_start(&s, world_batching_off, 3);
    seed_packet(&s, tw_operation_echo, 1, 0, 0);
    seed_packet(&s, tw_operation_echo, 1, 0, 0);
    seed_packet(&s, tw_operation_echo, 1, 0, 0);
    seed_reply(&s, NULL, 0);
    for (uint32_t ahead = 1; ahead <= 2; ahead++) {
        seed_byte(&s, control(chunk_reply, reply_body_right | reply_request_delta));
        seed_byte(&s, 0);
        seed_byte(&s, ahead);
    }
    seed_end(&s);
    seed_reply(&s, NULL, 0);
    seed_end(&s);
    seed_reply(&s, NULL, 0);
    seed_end(&s);
    failed |= seed_write(dir, "replies-ahead-of-writes", &s);

    return failed;
}

/* ---- the target --------------------------------------------------------------------------- */

/* One line per input (TWIN_FUZZ_VERBOSE=1, as the replay program sets): how the packets
 * completed and what the client and the peer did, by their counters. */
static void print_run(const fuzz_state *st) {
    uint32_t by_status[TW_PACKET_STATUS_COUNT] = {0};
    for (uint32_t i = 0; i < st->packets_count; i++) {
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
    printf("fuzz_client_replies: outcome=passed packets=%u statuses=%s messages=%u requests=%u connects=%u "
           "sends=%u retries=%u writes_late=%u writes_lost=%u pieces=%u timeouts=%u connection_fails=%u "
           "peer_closes=%u inbox_dropped=%u\n",
           st->packets_count, statuses[0] != '\0' ? statuses : "none", st->messages_answered, st->requests_seen,
           st->connects, st->sends, st->retries, st->writes_late, st->writes_lost, st->pieces, st->timeouts,
           st->connection_fails, st->peer_closes, st->inbox_dropped);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    if (*argc >= 3 && strcmp((*argv)[1], "--write-seeds") == 0) exit(write_seeds((*argv)[2]));
    verbose = tw_fuzz_verbose();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_state *st = &state;
    if (ramp[1] == 0) {
        for (uint32_t i = 0; i < RAMP_SIZE; i++) ramp[i] = (uint8_t)i;
    }
    uint64_t input = st->input + 1u;
    memset(st, 0, offsetof(fuzz_state, last));
    st->input = input;
    st->data = data;
    st->size = size;
    st->offset = 0;
    uint8_t world = input_byte(st);
    st->batch_size = batch_sizes[(world >> world_batch_shift) & world_batch_mask];
    st->batch_body_max = st->batch_size < CLIENT_BODY_SIZE_MAX ? st->batch_size : CLIENT_BODY_SIZE_MAX;
    st->register_scripted = (world & world_register_scripted) != 0;
    st->write_order = world & world_write_mask;
    st->cut_one_in = cut_rates[(world >> world_cut_shift) & world_cut_mask];
    tw_pcg32_seed(&st->draws, world & world_seed_mask, 0);
    st->now_ns = TIME_START_NS;
    st->op_next = PEER_OP_FIRST;
    st->timestamp_next = PEER_TIMESTAMP_FIRST;
    st->packets_count = 1u + input_byte(st) % PACKETS_MAX;
    for (uint32_t i = 0; i < st->packets_count; i++) packet_build(st, &packets[i], i);
    run(st);
    if (verbose) print_run(st);
    return 0;
}
