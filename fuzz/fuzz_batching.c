/* twin fuzz target: batching differential. A stream of packets goes through the client
 * (include/twin/client.h) to the real server (harness/server_thread.h) twice, in two
 * simulated worlds: once with batching on, all packets submitted at once by one user so
 * that they batch, and once with batching off (tw_client_options.batching_off), the same
 * packets one by one. Every packet must complete exactly once, with the same status and the
 * same result bytes in both worlds (lookups masked, see below).
 *
 * Input (every byte string is an input; missing bytes are filled from a PCG32 seeded from
 * the input's size, so the last packet and its events are always whole):
 *   byte 0   bits 0..2: the server's message_size_max, BATCHING_SERVER_MESSAGE_SIZES[]
 *            (body 80..4096 bytes: the batch limit); bits 3..4: the client's message_size_max
 *            (0: the server's; 1: the server's - BATCHING_CLIENT_SMALLER_BYTES, so the
 *            client's own limit binds; 2: the server's + BATCHING_CLIENT_LARGER_BYTES; 3: 0,
 *            the client's default, 1 MiB)
 *   byte 1   the ledger's limits: bits 0..3 accounts_max, bits 4..7 transfers_max, each
 *            BATCHING_LEDGER_LIMITS[] (1..64), so that too_many_accounts/_transfers happen
 *   byte 2   the world's seed (1 + byte): the schedule and latencies; the network has no
 *            faults
 *   then packets, up to BATCHING_PACKETS_MAX, until the input ends:
 *     byte P bits 0..2 the operation: 0 none (invalid), 1..5 create_accounts,
 *            create_transfers, lookup_accounts, lookup_transfers, echo; 6: an unknown
 *            operation 6 + (P >> 3); 7: operation 255. Bit 3: the last event is made
 *            linked (a create that ends in an open chain travels alone); bit 4: the last
 *            event is made unlinked (bit 3 wins). Bits 5..7, the shape: 4 the data of the
 *            latest earlier packet of the same operation again (ids collide on purpose; no
 *            event bytes are read, and with no such packet the shape is plain), 5 data
 *            NULL (invalid_data_size unless empty), 6 a size that is not whole events (1 ..
 *            event size - 1 bytes more: invalid_data_size; not for echo), else plain.
 *     byte C the event count (bytes for echo): 0xFF over the limit (events_max + 1 + the
 *            next byte % BATCHING_OVER_LIMIT_MAX: too_much_data, contents from the PCG);
 *            0xFE exactly the limit; else C % (limit + 1), 0 included
 *     events, each from a few bytes (the Python encoder in corpus/batching/make_seeds.py
 *            is the reference): an account from 2 bytes, A (bits 0..4 the id 0..31, 31 being
 *            "int max"; bit 5 linked; bits 6..7 both set: an anomaly byte follows) and B
 *            (bit 0 ledger 1 or 2, bit 1 code 1 or 2, bits 2 and 3 the balance flags), the
 *            anomaly byte % 8 breaking one rule (timestamp, reserved bytes, a reserved flag,
 *            debits or credits posted, ledger 0, code 0, or an id with high bits no other
 *            event names); a transfer from 3 (A as for accounts; the debit and credit account
 *            ids 0..15 in the low and high nibble; amount 0..63 in bits 0..5, bit 6 makes it
 *            2^64 - 1 - that, to overflow, bit 7 ledger 2; an anomaly byte % 8: timestamp,
 *            reserved, reserved flag, ledger 0, code 0, debit or credit int max, a high id); a
 *            lookup id from 1 byte (its bits 0..5: ids that exist, never did, and 0); echo
 *            and unknown operations' bytes as they are.
 *
 * The two runs, in worlds of the same seed with no network faults: a server (clients_max 1,
 * the ledger limits above) on its thread, one client, and the main fiber as the user.
 *   on:  the user submits every packet in input order right after tw_client_init, before the
 *        registration can have been answered (virtual time does not move while the user
 *        runs), so the client takes them all at once when the register reply comes.
 *   off: batching_off; the user submits the valid packets in the order the batching world
 *        executes them (below), then the invalid ones.
 * Batching reorders on purpose: a packet joins the first waiting request of its operation
 * with room, ahead of packets of other operations submitted before it (client.h). So the
 * one-by-one run must execute the packets in the batching run's order, or lookups and
 * creates that depend on earlier creates would differ for a legitimate reason. That order
 * is predicted here from client.h's rules (a model), and the batching run must follow it:
 *   - a packet's status: invalid_operation, invalid_data_size, too_much_data (events_max
 *     of tw_operation_events_max at the smaller of the two message sizes), else ok;
 *   - the first valid packet goes alone (nothing is in flight when the register reply
 *     comes); every later one joins the first waiting request of its operation that is
 *     batchable (creates whose last event is not linked, and echo) and has room (events
 *     within events_max), else waits as a request of its own; requests go in FIFO order.
 *
 * Oracle (any failure prints a message naming the packet and aborts):
 *   - each world passes (no assertion, deadlock or leak: report.allocations_live == 0), and
 *     every packet completes exactly once before the client's deinit (a second completion
 *     fails the run at once; one missing after BATCHING_WAIT_NS of virtual time is named);
 *   - per packet: the status is the model's, in both worlds;
 *   - per ok packet: the reply timestamp is > 0, and the result bytes are equal in both
 *     worlds, but for these masked fields, which legitimately differ:
 *       lookup_accounts: tw_account.timestamp of each account found, and
 *       lookup_transfers: tw_transfer.timestamp of each transfer found: the ledger stamps
 *       an object with its request's base time + its index in that request
 *       (src/ledger.c), and a batch is one request where one-by-one is many, at other
 *       virtual times. Masked fields must still be non-zero in both (the object exists).
 *     Create results (sparse {index, result}, indexes rebased to the packet) and echo bytes
 *     are compared whole;
 *   - batching structure: in the batching world, packets the model puts in one request
 *     share a reply timestamp (the op's), later requests have larger ones, and packets
 *     complete in the model's execution order; the server executed exactly as many requests
 *     as the model has batches. In the one-by-one world every valid packet is a request of
 *     its own (timestamps strictly increasing in submission order, requests = packets).
 *
 * Deterministic: no addresses in decisions or messages; all state is reset per input. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/client.h>
#include <twin/ledger.h>
#include <twin/os.h>
#include <twin/pcg.h>
#include <twin/proto.h>
#include <twin/server.h>
#include <twin/sim.h>

#include "common.h"
#include "server_thread.h"

#define BATCHING_PACKETS_MAX 64u
#define BATCHING_SERVER_MESSAGE_SIZES_COUNT 8u
#define BATCHING_BODY_SIZE_MAX 4096u /* the largest server body: every reply fits */
#define BATCHING_OVER_LIMIT_MAX 4u   /* a too_much_data packet has 1..4 events too many */
#define BATCHING_EVENT_SIZE_MAX 80u  /* a transfer */
/* Room for the largest packet: over the limit, or a size that is not whole events. */
#define BATCHING_PACKET_DATA_SIZE_MAX \
    (BATCHING_BODY_SIZE_MAX + (BATCHING_OVER_LIMIT_MAX + 1u) * BATCHING_EVENT_SIZE_MAX)
#define BATCHING_CLIENT_SMALLER_BYTES 48u
#define BATCHING_CLIENT_LARGER_BYTES 512u
#define BATCHING_LEDGER_LIMITS_COUNT 16u
#define BATCHING_CLUSTER_ID 0x6261u      /* "ba" */
#define BATCHING_CLIENT_ID_LOW 1u
#define BATCHING_RELEASE 1u
#define BATCHING_SERVER_CONNECTIONS_MAX 2u
#define BATCHING_SERVER_CLIENTS_MAX 1u
/* Virtual time the user waits for the next completion before naming the missing packet. */
#define BATCHING_WAIT_NS (60ull * 1000u * 1000u * 1000u)
#define BATCHING_STEPS_MAX (4u * 1000u * 1000u)
#define BATCHING_FILL_STREAM 0x66696c6cu /* "fill": the PCG stream past the input's end */
#define BATCHING_FAILURE_TEXT_SIZE 1024u
/* Packet byte P. */
#define BATCHING_OP_MASK 7u
#define BATCHING_OP_UNKNOWN 6u
#define BATCHING_OP_MAX_VALUE 7u
#define BATCHING_FLAG_LINK_LAST 0x08u
#define BATCHING_FLAG_UNLINK_LAST 0x10u
#define BATCHING_SHAPE_SHIFT 5u
#define BATCHING_SHAPE_REPEAT 4u
#define BATCHING_SHAPE_NULL 5u
#define BATCHING_SHAPE_BAD_SIZE 6u
/* Count byte C. */
#define BATCHING_COUNT_OVER 0xFFu
#define BATCHING_COUNT_AT_LIMIT 0xFEu
/* Event bytes. */
#define BATCHING_ID_MASK 0x1Fu
#define BATCHING_ID_INT_MAX 0x1Fu
#define BATCHING_LINKED_BIT 0x20u
#define BATCHING_ANOMALY_SHIFT 6u
#define BATCHING_ANOMALY_ON 3u
#define BATCHING_LOOKUP_ID_MASK 0x3Fu
#define BATCHING_ACCOUNT_ANOMALIES 8u
#define BATCHING_TRANSFER_ANOMALIES 8u
#define BATCHING_AMOUNT_MASK 0x3Fu
#define BATCHING_AMOUNT_HUGE_BIT 0x40u
#define BATCHING_RESERVED_FLAG 0x8000u

/* Server message sizes: header + body, body 80 (one transfer) .. 4096. */
static const uint32_t BATCHING_SERVER_MESSAGE_SIZES[BATCHING_SERVER_MESSAGE_SIZES_COUNT] = {
    TW_HEADER_SIZE + 80u,  TW_HEADER_SIZE + 128u,  TW_HEADER_SIZE + 192u,  TW_HEADER_SIZE + 336u,
    TW_HEADER_SIZE + 512u, TW_HEADER_SIZE + 1024u, TW_HEADER_SIZE + 2048u, TW_HEADER_SIZE + 4096u,
};
static const uint32_t BATCHING_LEDGER_LIMITS[BATCHING_LEDGER_LIMITS_COUNT] = {
    1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64,
};

_Static_assert(BATCHING_PACKETS_MAX <= UINT16_MAX, "a packet's index is its user_tag");

/* ---- the input, decoded ------------------------------------------------------------------ */

typedef struct input_packet {
    uint8_t operation;
    bool data_null;
    uint32_t data_size;
    uint32_t events;          /* whole events (bytes for echo); meaningful when valid */
    tw_packet_status expected; /* the model's status */
    bool batchable;
    uint32_t batch;           /* the model's request, in execution order (valid packets) */
    uint8_t data[BATCHING_PACKET_DATA_SIZE_MAX];
} input_packet;

typedef struct batching_input {
    uint32_t server_message_size;
    uint32_t client_message_size; /* 0: the client's default */
    uint32_t batch_body_max;      /* what the client batches within */
    uint32_t accounts_max;
    uint32_t transfers_max;
    uint64_t seed;
    uint32_t count;
    uint32_t valid;   /* packets whose status is ok */
    uint32_t batches; /* the model's requests */
    uint32_t execution[BATCHING_PACKETS_MAX]; /* valid packets in the model's execution order */
    input_packet packets[BATCHING_PACKETS_MAX];
} batching_input;

static batching_input input;

typedef struct reader {
    const uint8_t *data;
    size_t size;
    size_t at;
    tw_pcg32 fill;
} reader;

static bool reader_exhausted(const reader *r) { return r->at >= r->size; }

static uint8_t reader_byte(reader *r) {
    if (r->at < r->size) return r->data[r->at++];
    return (uint8_t)tw_pcg32_next(&r->fill);
}

static bool operation_valid(uint8_t operation) {
    return operation >= tw_operation_create_accounts && operation <= tw_operation_echo;
}

static bool operation_is_create(uint8_t operation) {
    return operation == tw_operation_create_accounts || operation == tw_operation_create_transfers;
}

static const char *operation_text(uint8_t operation) {
    if (operation == tw_operation_none) return "none";
    return operation_valid(operation) ? tw_operation_name((tw_operation)operation) : "unknown operation";
}

static uint32_t events_max_of(uint8_t operation) {
    TW_ASSERT(operation_valid(operation));
    return tw_operation_events_max((tw_operation)operation, input.batch_body_max + TW_HEADER_SIZE);
}

static tw_u128 id_of(uint8_t bits) {
    uint32_t small = bits & BATCHING_ID_MASK;
    if (small == BATCHING_ID_INT_MAX) return (tw_u128){.low = UINT64_MAX, .high = UINT64_MAX};
    return (tw_u128){.low = small, .high = 0};
}

static void account_decode(reader *r, tw_account *a) {
    uint8_t first = reader_byte(r);
    uint8_t second = reader_byte(r);
    *a = (tw_account){
        .id = id_of(first),
        .ledger = 1u + (second & 1u),
        .code = (uint16_t)(1u + ((second >> 1) & 1u)),
    };
    if ((first & BATCHING_LINKED_BIT) != 0) a->flags |= tw_account_linked;
    if ((second & 4u) != 0) a->flags |= tw_account_debits_must_not_exceed_credits;
    if ((second & 8u) != 0) a->flags |= tw_account_credits_must_not_exceed_debits;
    if ((first >> BATCHING_ANOMALY_SHIFT) != BATCHING_ANOMALY_ON) return;
    uint8_t anomaly = reader_byte(r);
    switch (anomaly % BATCHING_ACCOUNT_ANOMALIES) {
    case 0: a->timestamp = 1u + anomaly; break;
    case 1: a->reserved[anomaly % sizeof(a->reserved)] = 1; break;
    case 2: a->flags |= BATCHING_RESERVED_FLAG; break;
    case 3: a->debits_posted = 1u + anomaly; break;
    case 4: a->credits_posted = 1u + anomaly; break;
    case 5: a->ledger = 0; break;
    case 6: a->code = 0; break;
    default: a->id.high = 1u; break; /* an id no other event names */
    }
}

static void transfer_decode(reader *r, tw_transfer *t) {
    uint8_t first = reader_byte(r);
    uint8_t accounts = reader_byte(r);
    uint8_t amount = reader_byte(r);
    *t = (tw_transfer){
        .id = id_of(first),
        .debit_account_id = {.low = accounts & 0x0Fu},
        .credit_account_id = {.low = (uint32_t)accounts >> 4},
        .amount = (amount & BATCHING_AMOUNT_HUGE_BIT) != 0 ? UINT64_MAX - (amount & BATCHING_AMOUNT_MASK)
                                                          : (uint64_t)(amount & BATCHING_AMOUNT_MASK),
        .ledger = 1u + ((uint32_t)amount >> 7),
        .code = 1,
    };
    if ((first & BATCHING_LINKED_BIT) != 0) t->flags |= tw_transfer_linked;
    if ((first >> BATCHING_ANOMALY_SHIFT) != BATCHING_ANOMALY_ON) return;
    uint8_t anomaly = reader_byte(r);
    switch (anomaly % BATCHING_TRANSFER_ANOMALIES) {
    case 0: t->timestamp = 1u + anomaly; break;
    case 1: t->reserved = 1u + anomaly; break;
    case 2: t->flags |= BATCHING_RESERVED_FLAG; break;
    case 3: t->ledger = 0; break;
    case 4: t->code = 0; break;
    case 5: t->debit_account_id = (tw_u128){.low = UINT64_MAX, .high = UINT64_MAX}; break;
    case 6: t->credit_account_id = (tw_u128){.low = UINT64_MAX, .high = UINT64_MAX}; break;
    default: t->id.high = 1u; break;
    }
}

/* The flags of the last create event, set or cleared as the packet byte asks. */
static void last_event_link(input_packet *p, bool linked) {
    uint32_t event_size = tw_operation_event_size((tw_operation)p->operation);
    TW_ASSERT(operation_is_create(p->operation) && p->data_size >= event_size);
    size_t offset = p->data_size - event_size +
                    (p->operation == tw_operation_create_accounts ? offsetof(tw_account, flags)
                                                                  : offsetof(tw_transfer, flags));
    uint16_t flags = 0;
    memcpy(&flags, p->data + offset, sizeof(flags));
    flags = linked ? (uint16_t)(flags | tw_account_linked) : (uint16_t)(flags & ~(uint16_t)tw_account_linked);
    memcpy(p->data + offset, &flags, sizeof(flags));
}

static bool last_event_linked(const input_packet *p) {
    if (!operation_is_create(p->operation) || p->data_size == 0) return false;
    uint32_t event_size = tw_operation_event_size((tw_operation)p->operation);
    size_t offset = p->data_size - event_size +
                    (p->operation == tw_operation_create_accounts ? offsetof(tw_account, flags)
                                                                  : offsetof(tw_transfer, flags));
    uint16_t flags = 0;
    memcpy(&flags, p->data + offset, sizeof(flags));
    return (flags & tw_account_linked) != 0;
}

/* Events (bytes for echo) of one packet; over the limit, they come from the PCG alone. */
static void events_decode(reader *r, input_packet *p, uint32_t count, bool from_fill) {
    uint8_t operation = p->operation;
    uint32_t event_size = operation_valid(operation) ? tw_operation_event_size((tw_operation)operation) : 0;
    uint32_t size = event_size == 0 ? count : count * event_size;
    TW_ASSERT(size <= BATCHING_PACKET_DATA_SIZE_MAX);
    reader fill_only = {.fill = r->fill};
    reader *source = from_fill ? &fill_only : r;
    for (uint32_t i = 0; i < count; i++) {
        switch (operation) {
        case tw_operation_create_accounts: {
            tw_account a;
            account_decode(source, &a);
            memcpy(p->data + i * sizeof(a), &a, sizeof(a));
            break;
        }
        case tw_operation_create_transfers: {
            tw_transfer t;
            transfer_decode(source, &t);
            memcpy(p->data + i * sizeof(t), &t, sizeof(t));
            break;
        }
        case tw_operation_lookup_accounts:
        case tw_operation_lookup_transfers: {
            tw_u128 id = {.low = reader_byte(source) & BATCHING_LOOKUP_ID_MASK};
            memcpy(p->data + i * sizeof(id), &id, sizeof(id));
            break;
        }
        default: p->data[i] = reader_byte(source); break; /* echo and unknown operations: bytes */
        }
    }
    if (from_fill) r->fill = fill_only.fill;
    p->data_size = size;
}

static void packet_decode(reader *r, uint32_t index) {
    input_packet *p = &input.packets[index];
    uint8_t header = reader_byte(r);
    uint8_t count_byte = reader_byte(r);
    uint8_t op_bits = header & BATCHING_OP_MASK;
    uint8_t shape = header >> BATCHING_SHAPE_SHIFT;
    p->operation = op_bits == BATCHING_OP_UNKNOWN  ? (uint8_t)(BATCHING_OP_UNKNOWN + (header >> 3))
                   : op_bits == BATCHING_OP_MAX_VALUE ? UINT8_MAX
                                                      : op_bits;
    p->data_null = false;
    p->data_size = 0;
    /* The limit an unknown operation's count is read against: echo's (bytes). */
    uint8_t limit_operation = operation_valid(p->operation) ? p->operation : (uint8_t)tw_operation_echo;
    uint32_t limit = events_max_of(limit_operation);
    bool repeated = false;
    if (shape == BATCHING_SHAPE_REPEAT) {
        for (uint32_t j = index; j > 0 && !repeated; j--) {
            const input_packet *previous = &input.packets[j - 1];
            if (previous->operation != p->operation || previous->data_null || previous->data_size == 0) continue;
            memcpy(p->data, previous->data, previous->data_size);
            p->data_size = previous->data_size;
            repeated = true;
        }
    }
    if (!repeated && count_byte == BATCHING_COUNT_OVER) {
        uint32_t over = 1u + reader_byte(r) % BATCHING_OVER_LIMIT_MAX;
        events_decode(r, p, limit + over, true);
    } else if (!repeated) {
        uint32_t count = count_byte == BATCHING_COUNT_AT_LIMIT ? limit : count_byte % (limit + 1u);
        events_decode(r, p, count, false);
    }
    if (operation_is_create(p->operation) &&
        p->data_size >= tw_operation_event_size((tw_operation)p->operation)) {
        if ((header & BATCHING_FLAG_LINK_LAST) != 0) last_event_link(p, true);
        else if ((header & BATCHING_FLAG_UNLINK_LAST) != 0) last_event_link(p, false);
    }
    if (shape == BATCHING_SHAPE_NULL) p->data_null = true;
    if (shape == BATCHING_SHAPE_BAD_SIZE && operation_valid(p->operation) && p->operation != tw_operation_echo) {
        uint32_t event_size = tw_operation_event_size((tw_operation)p->operation);
        uint32_t extra = 1u + count_byte % (event_size - 1u);
        memset(p->data + p->data_size, (int)count_byte, extra);
        p->data_size += extra;
    }
    TW_ASSERT(p->data_size <= BATCHING_PACKET_DATA_SIZE_MAX);
}

/* The model: each packet's status, and the requests the batching client makes of them. */
static void model_compute(void) {
    typedef struct root {
        uint8_t operation;
        bool batchable;
        uint32_t events;
        uint32_t batch;
    } root;
    root pending[BATCHING_PACKETS_MAX];
    uint32_t pending_count = 0;
    input.valid = 0;
    input.batches = 0;
    for (uint32_t i = 0; i < input.count; i++) {
        input_packet *p = &input.packets[i];
        p->batch = UINT32_MAX;
        p->batchable = false;
        p->events = 0;
        if (!operation_valid(p->operation)) {
            p->expected = tw_packet_invalid_operation;
            continue;
        }
        uint32_t event_size = tw_operation_event_size((tw_operation)p->operation);
        if ((event_size != 0 && p->data_size % event_size != 0) || (p->data_size > 0 && p->data_null)) {
            p->expected = tw_packet_invalid_data_size;
            continue;
        }
        p->events = event_size == 0 ? p->data_size : p->data_size / event_size;
        if (p->events > events_max_of(p->operation)) {
            p->expected = tw_packet_too_much_data;
            continue;
        }
        p->expected = tw_packet_ok;
        p->batchable = p->operation == tw_operation_echo ||
                       (operation_is_create(p->operation) && !last_event_linked(p));
        input.valid++;
        if (input.batches == 0) { /* the first goes out at once, alone */
            p->batch = input.batches++;
            continue;
        }
        if (p->batchable) {
            for (uint32_t k = 0; k < pending_count && p->batch == UINT32_MAX; k++) {
                root *candidate = &pending[k];
                if (candidate->operation != p->operation || !candidate->batchable) continue;
                if (candidate->events + p->events > events_max_of(p->operation)) continue;
                candidate->events += p->events;
                p->batch = candidate->batch;
            }
            if (p->batch != UINT32_MAX) continue;
        }
        TW_ASSERT(pending_count < BATCHING_PACKETS_MAX);
        p->batch = input.batches++;
        pending[pending_count++] =
            (root){.operation = p->operation, .batchable = p->batchable, .events = p->events, .batch = p->batch};
    }
    /* Execution order: by request, then by submission within a request. */
    uint32_t at = 0;
    for (uint32_t b = 0; b < input.batches; b++) {
        for (uint32_t i = 0; i < input.count; i++) {
            if (input.packets[i].expected == tw_packet_ok && input.packets[i].batch == b) input.execution[at++] = i;
        }
    }
    TW_ASSERT(at == input.valid);
}

static void input_decode(const uint8_t *data, size_t size) {
    reader r = {.data = data, .size = size};
    tw_pcg32_seed(&r.fill, (uint64_t)size, BATCHING_FILL_STREAM);
    uint8_t sizes = reader_byte(&r);
    uint8_t limits = reader_byte(&r);
    uint8_t seed = reader_byte(&r);
    input.server_message_size = BATCHING_SERVER_MESSAGE_SIZES[sizes % BATCHING_SERVER_MESSAGE_SIZES_COUNT];
    switch ((sizes >> 3) & 3u) {
    case 0: input.client_message_size = input.server_message_size; break;
    case 1:
        input.client_message_size = input.server_message_size - BATCHING_CLIENT_SMALLER_BYTES;
        if (input.client_message_size < TW_CLIENT_MESSAGE_SIZE_MIN) input.client_message_size = TW_CLIENT_MESSAGE_SIZE_MIN;
        break;
    case 2: input.client_message_size = input.server_message_size + BATCHING_CLIENT_LARGER_BYTES; break;
    default: input.client_message_size = 0; break;
    }
    uint32_t client_body = (input.client_message_size != 0 ? input.client_message_size : TW_MESSAGE_SIZE_MAX) - TW_HEADER_SIZE;
    uint32_t server_body = input.server_message_size - TW_HEADER_SIZE;
    input.batch_body_max = client_body < server_body ? client_body : server_body;
    input.accounts_max = BATCHING_LEDGER_LIMITS[limits % BATCHING_LEDGER_LIMITS_COUNT];
    input.transfers_max = BATCHING_LEDGER_LIMITS[(limits >> 4) % BATCHING_LEDGER_LIMITS_COUNT];
    input.seed = 1u + seed;
    input.count = 0;
    while (!reader_exhausted(&r) && input.count < BATCHING_PACKETS_MAX) {
        packet_decode(&r, input.count);
        input.count++;
    }
    model_compute();
}

/* ---- a world: server, client, and the main fiber as the user ------------------------------ */

typedef struct packet_record {
    uint32_t completions;
    uint32_t order; /* the completion's place in this world (0, 1, ...) */
    uint8_t status;
    uint64_t timestamp;
    bool result_null;
    uint32_t result_size;
    uint8_t result[BATCHING_BODY_SIZE_MAX];
} packet_record;

typedef struct batching_world {
    bool batching;
    const char *name;
    uint32_t submission[BATCHING_PACKETS_MAX]; /* packet indexes, in the order submitted */
    tw_packet packets[BATCHING_PACKETS_MAX];
    packet_record records[BATCHING_PACKETS_MAX];
    tw_atomic_u32 completed;
    uint32_t completion_next; /* the IO thread's */
    tw_test_server server;
    tw_client client;
    uint64_t requests_executed;
    tw_sim_report report;
    char failure[BATCHING_FAILURE_TEXT_SIZE]; /* tw_sim_fail keeps the pointer */
} batching_world;

static batching_world worlds[2];

static void packet_completed(uintptr_t context, tw_packet *packet, uint64_t timestamp, const uint8_t *result,
                             uint32_t result_size) {
    batching_world *w = (batching_world *)context;
    TW_ASSERT(w != NULL && packet != NULL && packet->user_tag < input.count);
    uint32_t index = packet->user_tag;
    TW_ASSERT(packet == &w->packets[index]);
    packet_record *rec = &w->records[index];
    rec->completions++;
    if (rec->completions > 1) {
        snprintf(w->failure, sizeof(w->failure),
                 "batching %s: packet %u (%s, %u bytes) completed %u times (status %s, then %s)", w->name,
                 index, operation_text(input.packets[index].operation), input.packets[index].data_size,
                 rec->completions, tw_packet_status_name((tw_packet_status)rec->status),
                 tw_packet_status_name((tw_packet_status)packet->status));
        tw_sim_fail(w->failure);
    }
    if (result_size > BATCHING_BODY_SIZE_MAX) {
        snprintf(w->failure, sizeof(w->failure), "batching %s: packet %u got %u result bytes, more than any reply",
                 w->name, index, result_size);
        tw_sim_fail(w->failure);
    }
    rec->status = packet->status;
    rec->timestamp = timestamp;
    rec->result_null = result == NULL;
    rec->result_size = result_size;
    if (result != NULL && result_size > 0) memcpy(rec->result, result, result_size);
    rec->order = w->completion_next++;
    (void)tw_atomic_fetch_add_u32(&w->completed, 1, tw_release);
    (void)tw_futex_wake(&w->completed, TW_FUTEX_WAKE_ALL);
}

/* Waits (virtual time) until every packet completed; names the first missing one. */
static void wait_all(batching_world *w) {
    uint32_t seen = tw_atomic_load_u32(&w->completed, tw_acquire);
    uint64_t deadline_ns = tw_clock_monotonic_ns() + BATCHING_WAIT_NS;
    while (seen < input.count) {
        uint64_t now_ns = tw_clock_monotonic_ns();
        if (now_ns >= deadline_ns) {
            uint32_t missing = 0;
            while (missing < input.count && w->records[missing].completions > 0) missing++;
            TW_ASSERT(missing < input.count);
            snprintf(w->failure, sizeof(w->failure),
                     "batching %s: packet %u (%s, %u bytes) never completed (%u of %u did; none for %llu s)",
                     w->name, missing, operation_text(input.packets[missing].operation),
                     input.packets[missing].data_size, seen, input.count,
                     (unsigned long long)(BATCHING_WAIT_NS / 1000000000u));
            tw_sim_fail(w->failure);
        }
        (void)tw_futex_wait(&w->completed, seen, deadline_ns - now_ns);
        uint32_t now_seen = tw_atomic_load_u32(&w->completed, tw_acquire);
        if (now_seen != seen) deadline_ns = tw_clock_monotonic_ns() + BATCHING_WAIT_NS;
        seen = now_seen;
    }
}

static void world_main(void *arg) {
    batching_world *w = arg;
    tw_server_options so = {
        .cluster = {.low = BATCHING_CLUSTER_ID},
        .connections_max = BATCHING_SERVER_CONNECTIONS_MAX,
        .clients_max = BATCHING_SERVER_CLIENTS_MAX,
        .message_size_max = input.server_message_size,
        .release_min = BATCHING_RELEASE,
        .release_max = BATCHING_RELEASE,
        .accounts_max = input.accounts_max,
        .transfers_max = input.transfers_max,
    };
    tw_test_server_start(&w->server, &so);
    char address[TW_ADDRESS_TEXT_SIZE];
    tw_address_format(&w->server.address, address, sizeof(address));
    tw_client_options co = {
        .release = BATCHING_RELEASE,
        .batching_off = !w->batching,
        .message_size_max = input.client_message_size,
        .id = {.low = BATCHING_CLIENT_ID_LOW, .high = BATCHING_CLUSTER_ID},
    };
    tw_client_init_status status = tw_client_init(&w->client, so.cluster, address, (uintptr_t)w, packet_completed, &co);
    if (status != tw_client_init_ok) {
        snprintf(w->failure, sizeof(w->failure), "batching %s: tw_client_init: %s", w->name,
                 tw_client_init_status_name(status));
        tw_sim_fail(w->failure);
    }
    /* Every packet before anything can come back: virtual time stands still meanwhile. */
    for (uint32_t k = 0; k < input.count; k++) {
        uint32_t index = w->submission[k];
        const input_packet *p = &input.packets[index];
        w->packets[index] = (tw_packet){
            .user_data = NULL,
            .data = p->data_null ? NULL : p->data,
            .data_size = p->data_size,
            .user_tag = (uint16_t)index,
            .operation = p->operation,
        };
        TW_ASSERT_MSG(tw_client_submit(&w->client, &w->packets[index]) == tw_client_ok, "tw_client_submit refused");
    }
    wait_all(w);
    TW_ASSERT_MSG(tw_client_deinit(&w->client) == tw_client_ok, "tw_client_deinit failed");
    uint32_t after = tw_atomic_load_u32(&w->completed, tw_acquire);
    if (after != input.count) {
        snprintf(w->failure, sizeof(w->failure), "batching %s: %u completions for %u packets after deinit",
                 w->name, after, input.count);
        tw_sim_fail(w->failure);
    }
    tw_test_server_stop(&w->server);
    w->requests_executed = w->server.stats.requests_executed;
}

static _Noreturn void oracle_fail(const char *format, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void oracle_fail(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fprintf(stderr, "fuzz_batching: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n");
    va_end(args);
    fprintf(stderr, "fuzz_batching: input: server message size %u, client message size %u, batch body %u, "
                    "accounts_max %u, transfers_max %u, seed %llu, %u packets (%u valid, %u requests batched)\n",
            input.server_message_size, input.client_message_size, input.batch_body_max, input.accounts_max,
            input.transfers_max, (unsigned long long)input.seed, input.count, input.valid, input.batches);
    for (uint32_t i = 0; i < input.count; i++) {
        const input_packet *p = &input.packets[i];
        fprintf(stderr, "fuzz_batching: packet %u: %s (%u), %u bytes%s, %u events, expected %s", i,
                operation_text(p->operation), p->operation, p->data_size, p->data_null ? " (data NULL)" : "",
                p->events, tw_packet_status_name(p->expected));
        if (p->expected == tw_packet_ok) fprintf(stderr, ", request %u%s", p->batch, p->batchable ? "" : " (alone)");
        for (uint32_t w = 0; w < 2; w++) {
            const packet_record *rec = &worlds[w].records[i];
            fprintf(stderr, "; %s: %u completions, %s, timestamp %llu, %u result bytes", worlds[w].name,
                    rec->completions, tw_packet_status_name((tw_packet_status)rec->status),
                    (unsigned long long)rec->timestamp, rec->result_size);
        }
        fprintf(stderr, "\n");
    }
    abort();
}

static void world_run(batching_world *w, bool batching) {
    TW_ASSERT(w != NULL);
    memset(w, 0, sizeof(*w));
    w->batching = batching;
    w->name = batching ? "on" : "off";
    if (batching) {
        for (uint32_t i = 0; i < input.count; i++) w->submission[i] = i;
    } else {
        uint32_t at = 0;
        for (uint32_t k = 0; k < input.valid; k++) w->submission[at++] = input.execution[k];
        for (uint32_t i = 0; i < input.count; i++) {
            if (input.packets[i].expected != tw_packet_ok) w->submission[at++] = i;
        }
        TW_ASSERT(at == input.count);
    }
    tw_sim_options options = {
        .seed = input.seed,
        .strategy = tw_sim_strategy_random,
        .steps_max = BATCHING_STEPS_MAX,
        .net = {.faults_off = true},
    };
    tw_sim_run(&options, world_main, w, &w->report);
    if (w->report.outcome != tw_sim_passed) {
        oracle_fail("batching %s: the world failed: %s: %s", w->name, tw_sim_outcome_name(w->report.outcome),
                    w->report.message);
    }
    if (w->report.allocations_live != 0) {
        oracle_fail("batching %s: %llu of the run's %llu blocks were never freed (a leak)", w->name,
                    (unsigned long long)w->report.allocations_live, (unsigned long long)w->report.allocations);
    }
}

/* ---- the comparison ---------------------------------------------------------------------- */

/* Offset and size of the masked timestamp in one lookup result, or size 0: nothing masked. */
static void masked_field(uint8_t operation, uint32_t *result_size, size_t *offset) {
    *result_size = 0;
    *offset = 0;
    if (operation == tw_operation_lookup_accounts) {
        *result_size = (uint32_t)sizeof(tw_account);
        *offset = offsetof(tw_account, timestamp);
    } else if (operation == tw_operation_lookup_transfers) {
        *result_size = (uint32_t)sizeof(tw_transfer);
        *offset = offsetof(tw_transfer, timestamp);
    }
}

static void compare_results(uint32_t index) {
    const input_packet *p = &input.packets[index];
    const packet_record *on = &worlds[0].records[index];
    const packet_record *off = &worlds[1].records[index];
    if (on->result_size != off->result_size) {
        oracle_fail("packet %u (%s, %u events, request %u of the batching run): %u result bytes with batching, %u one by one",
                    index, operation_text(p->operation), p->events, p->batch, on->result_size, off->result_size);
    }
    uint32_t object_size = 0;
    size_t offset = 0;
    masked_field(p->operation, &object_size, &offset);
    /* Messages name the object (or create result) a byte belongs to. */
    uint32_t shown_size = object_size != 0 ? object_size
                          : operation_is_create(p->operation) ? (uint32_t)sizeof(tw_create_result)
                                                              : 1u;
    for (uint32_t b = 0; b < on->result_size; b++) {
        bool masked = object_size != 0 && b % object_size >= offset && b % object_size < offset + sizeof(uint64_t);
        if (masked || on->result[b] == off->result[b]) continue;
        oracle_fail("packet %u (%s, %u events, request %u of the batching run): result byte %u (%s %u, byte %u) is "
                    "%u with batching, %u one by one",
                    index, operation_text(p->operation), p->events, p->batch, b,
                    operation_is_create(p->operation) ? "create result" : p->operation == tw_operation_echo ? "echo byte" : "object",
                    b / shown_size, b % shown_size, on->result[b], off->result[b]);
    }
    if (object_size == 0) return;
    TW_ASSERT(on->result_size % object_size == 0);
    for (uint32_t o = 0; o < on->result_size / object_size; o++) {
        uint64_t stamp_on = 0;
        uint64_t stamp_off = 0;
        memcpy(&stamp_on, on->result + o * object_size + offset, sizeof(stamp_on));
        memcpy(&stamp_off, off->result + o * object_size + offset, sizeof(stamp_off));
        if (stamp_on == 0 || stamp_off == 0) {
            oracle_fail("packet %u (%s): object %u found with timestamp 0 (%s)", index, operation_text(p->operation),
                        o, stamp_on == 0 ? "with batching" : "one by one");
        }
    }
}

static void compare(void) {
    for (uint32_t w = 0; w < 2; w++) {
        for (uint32_t i = 0; i < input.count; i++) {
            const input_packet *p = &input.packets[i];
            const packet_record *rec = &worlds[w].records[i];
            if (rec->completions != 1) {
                oracle_fail("batching %s: packet %u (%s) completed %u times", worlds[w].name, i,
                            operation_text(p->operation), rec->completions);
            }
            if (rec->status != p->expected) {
                oracle_fail("batching %s: packet %u (%s, %u bytes, %u events%s) completed with %s, expected %s",
                            worlds[w].name, i, operation_text(p->operation), p->data_size, p->events,
                            p->data_null ? ", data NULL" : "", tw_packet_status_name((tw_packet_status)rec->status),
                            tw_packet_status_name(p->expected));
            }
            bool ok = rec->status == tw_packet_ok;
            if (ok ? (rec->timestamp == 0 || rec->result_null) : (rec->timestamp != 0 || !rec->result_null || rec->result_size != 0)) {
                oracle_fail("batching %s: packet %u (%s) completed %s with timestamp %llu and %s result of %u bytes",
                            worlds[w].name, i, operation_text(p->operation),
                            tw_packet_status_name((tw_packet_status)rec->status), (unsigned long long)rec->timestamp,
                            rec->result_null ? "a NULL" : "a", rec->result_size);
            }
        }
    }
    for (uint32_t i = 0; i < input.count; i++) {
        if (input.packets[i].expected == tw_packet_ok) compare_results(i);
    }
    /* The requests: the batching world's follow the model; the other's are one a packet. */
    for (uint32_t k = 1; k < input.valid; k++) {
        uint32_t before = input.execution[k - 1];
        uint32_t now = input.execution[k];
        const packet_record *a = &worlds[0].records[before];
        const packet_record *b = &worlds[0].records[now];
        bool together = input.packets[before].batch == input.packets[now].batch;
        if (together ? a->timestamp != b->timestamp : a->timestamp >= b->timestamp) {
            oracle_fail("batching on: packets %u and %u (%s, %s) should be in %s (requests %u and %u of the model), "
                        "but their reply timestamps are %llu and %llu",
                        before, now, operation_text(input.packets[before].operation),
                        operation_text(input.packets[now].operation), together ? "one request" : "successive requests",
                        input.packets[before].batch, input.packets[now].batch, (unsigned long long)a->timestamp,
                        (unsigned long long)b->timestamp);
        }
        if (a->order >= b->order) {
            oracle_fail("batching on: packet %u completed after packet %u, which the model executes later", before, now);
        }
        const packet_record *c = &worlds[1].records[before];
        const packet_record *d = &worlds[1].records[now];
        if (c->timestamp >= d->timestamp) {
            oracle_fail("batching off: packets %u and %u were submitted in this order but their reply timestamps are "
                        "%llu and %llu",
                        before, now, (unsigned long long)c->timestamp, (unsigned long long)d->timestamp);
        }
    }
    if (worlds[0].requests_executed != input.batches) {
        oracle_fail("batching on: the server executed %llu requests, the model batches %u valid packets into %u",
                    (unsigned long long)worlds[0].requests_executed, input.valid, input.batches);
    }
    if (worlds[1].requests_executed != input.valid) {
        oracle_fail("batching off: the server executed %llu requests for %u valid packets",
                    (unsigned long long)worlds[1].requests_executed, input.valid);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    tw_fuzz_plant_from_env();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    TW_ASSERT(data != NULL || size == 0);
    input_decode(data, size);
    world_run(&worlds[0], true);
    world_run(&worlds[1], false);
    compare();
    if (tw_fuzz_verbose()) {
        printf("fuzz_batching: %u packets, %u valid, %u requests batched, %u one by one; steps %llu + %llu; "
               "hashes %016llx %016llx\n",
               input.count, input.valid, input.batches, input.valid, (unsigned long long)worlds[0].report.steps,
               (unsigned long long)worlds[1].report.steps, (unsigned long long)worlds[0].report.hash,
               (unsigned long long)worlds[1].report.hash);
    }
    return 0;
}
