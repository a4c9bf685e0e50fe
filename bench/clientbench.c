/* twin-clientbench: the client (include/twin/client.h) with batching on and with batching off
 * (tw_client_options.batching_off), against a running twin-server, real build, e.g. on
 * loopback.
 *
 * Rounds: --rounds R (default 3) runs both modes R times, on then off, each with its own
 * nonce (ids never collide). Each mode's line per round is printed as it finishes; the table
 * shows each mode's median round (by events/s), and the ratio line gives the median and the
 * lowest of the rounds' on/off ratios. On a 2-CPU machine one round can be off by a factor
 * of two (another process, a slow wake-up): the median is the number to read.
 *
 * What is measured: throughput and latency of create_transfers packets submitted through the
 * public client API. Both modes run in the same process against the same server, one after
 * the other (batching on first), each with its own tw_client (so its own session, IO thread
 * and connection). Per mode:
 *   - setup (not timed): tw_client_init (release 1, message_size_max 0 = 1 MiB, the server's
 *     announced batch size caps it), then one create_accounts packet with two accounts per
 *     user thread; every create result must be empty (all accounts created).
 *   - timed: --threads user threads each submit their share of --packets create_transfers
 *     packets of --events transfers (amount 1, from the thread's first account to its
 *     second), keeping their share of --in-flight packets outstanding: each completion is
 *     answered by the next submit from the same thread. The clock runs from the moment the
 *     main thread releases the threads (each has its packets ready) until the last thread has
 *     seen its last completion. events_per_s = packets * events / seconds. Batching off runs
 *     --packets-off packets (default a quarter of --packets: it is the slow mode); the
 *     rates are per second, so the ratio on/off stays fair.
 *   - latency: per packet, from just before tw_client_submit to the start of its completion
 *     callback (on the client's IO thread), in ns, into a per-thread array allocated before
 *     the clock starts; p50 and p99 are over all packets of the mode.
 *   - requests: the packets of one request complete one after another with the reply's
 *     timestamp, so the completions also say how many requests the client sent and how many
 *     packets each carried (the second line of each mode; twin-server's requests_executed
 *     counts the same requests, plus one create_accounts per mode).
 * Every completion must be status ok with an empty result (no failed transfer): anything
 * else fails the run at once (exit 1), as does no reply to the accounts within 10 s (the
 * client itself retries for ever: wrong address or cluster).
 *
 * Reading the ratio: with batching off, each packet is one round trip after the last, so
 * the rate is set by wake-up latency; on a 2-vCPU VM it doubled (16,000 -> 34,000 packets/s)
 * with both CPUs kept busy by nice-19 spinners, while batching on barely moved. An idle
 * machine therefore shows a larger on/off ratio than a loaded one.
 *
 * Ids are unique per run: every account and transfer id has a run nonce (CLOCK_REALTIME ns
 * at start) in its high 64 bits, so a second run against the same server does not collide
 * with the first; the low 64 bits say account or transfer, mode, thread and sequence.
 *
 * The user threads wait on a futex (<twin/os.h>): the completion callback pushes the packet's
 * slot on the thread's single-producer single-consumer ring and wakes the thread only when it
 * has said it is going to sleep.
 *
 * Usage: twin-clientbench --address ADDR [--threads U] [--in-flight N] [--events K]
 *        [--packets P] [--packets-off P] [--batching on|off|both] [--cluster N] */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <twin/atomic.h>
#include <twin/client.h>
#include <twin/ledger.h>
#include <twin/os.h>
#include <twin/proto.h>

#include "bench_common.h"

#define CLIENTBENCH_THREADS_DEFAULT 4u
#define CLIENTBENCH_THREADS_MAX 64u /* fits the 8-bit thread field of an id */
#define CLIENTBENCH_IN_FLIGHT_DEFAULT 64u
#define CLIENTBENCH_IN_FLIGHT_MAX 65536u
#define CLIENTBENCH_EVENTS_DEFAULT 1u
/* One packet must fit one request: 3275 transfers at twin-server's default message size
 * (256 KiB); more would complete with too_much_data. */
#define CLIENTBENCH_EVENTS_MAX 1024u
/* Transfers per mode when --packets is not given: packets = this / events (200,000 packets
 * at K=1), so every K does the same amount of ledger work. */
#define CLIENTBENCH_TRANSFERS_DEFAULT 200000u
/* Batching off sends one packet per round trip (16,000 to 45,000 a second on loopback on 2
 * CPUs): by default it runs this many times fewer packets than batching on, which keeps it
 * to a few seconds (events_per_s is a rate, so the ratio stays fair). */
#define CLIENTBENCH_OFF_DIVISOR_DEFAULT 4u
#define CLIENTBENCH_PACKETS_MAX 100000000u
/* The sequence field of a transfer id: per thread, mode and run. */
#define CLIENTBENCH_SEQUENCE_BITS 48u
#define CLIENTBENCH_THREAD_SHIFT 48u
#define CLIENTBENCH_MODE_SHIFT 56u
#define CLIENTBENCH_ACCOUNT_BIT (UINT64_C(1) << 63)
#define CLIENTBENCH_ACCOUNTS_PER_THREAD 2u
#define CLIENTBENCH_LEDGER 1u
#define CLIENTBENCH_CODE 1u
#define CLIENTBENCH_TRANSFER_AMOUNT 1u
#define CLIENTBENCH_RELEASE 1u
#define CLIENTBENCH_CACHE_LINE 64u
/* The client retries for ever (a server that is down, or of another cluster, closes or
 * refuses the connection): the accounts' reply must come within this, or the run fails. */
#define CLIENTBENCH_SETUP_TIMEOUT_NS (UINT64_C(10) * 1000u * 1000u * 1000u)
#define CLIENTBENCH_SETUP_TIMEOUT_S 10u
#define CLIENTBENCH_NS_PER_S 1e9
#define CLIENTBENCH_NS_PER_US 1e3
#define CLIENTBENCH_PERCENTILE_P50 50u
#define CLIENTBENCH_PERCENTILE_P99 99u
#define CLIENTBENCH_PERCENT 100u
/* Rounds of both modes (on then off); the table shows each mode's median round, and the
 * ratio is the median of the rounds' ratios: one noisy round does not decide it. */
#define CLIENTBENCH_ROUNDS_DEFAULT 3u
#define CLIENTBENCH_ROUNDS_MAX 15u
/* A round's ids: the nonce plus the round, so rounds never collide. */

/* user_tag of a packet: what its completion is for. */
enum clientbench_tag {
    clientbench_tag_transfers = 1,
    clientbench_tag_accounts = 2,
};

typedef enum clientbench_mode {
    clientbench_batching_on = 0,
    clientbench_batching_off = 1,
    clientbench_modes = 2,
} clientbench_mode;
static const char *const clientbench_mode_names[clientbench_modes] = {"batching_on",
                                                                      "batching_off"};

/* ---- flags ---- */

#define CLIENTBENCH_USAGE                                                                    \
    "--address ADDR [--threads U] [--in-flight N] [--events K] [--packets P] "               \
    "[--packets-off P] [--batching on|off|both] [--rounds R] [--cluster N]"

static void clientbench_usage(FILE *f) {
    fprintf(f, "usage: %s %s\n", bench_prog, CLIENTBENCH_USAGE);
}

static _Noreturn void clientbench_bad_flag(const char *format, ...)
    __attribute__((format(printf, 1, 2)));
static _Noreturn void clientbench_bad_flag(const char *format, ...) {
    char accepted[1024];
    snprintf(accepted, sizeof accepted,
             "--address ADDR (required: the server, e.g. 127.0.0.1:3300; a client address list), "
             "--threads U (user threads, integer 1..%u, default %u), --in-flight N (packets "
             "outstanding across all threads, integer U..%u, default %u; each thread keeps N/U, "
             "the first N%%U threads one more), --events K (transfers per packet, integer 1..%u, "
             "default %u), --packets P (packets per mode with batching on, integer 1..%u, "
             "default %u/K), --packets-off P (packets with batching off, integer 1..%u, "
             "default the batching-on count / %u), --batching on|off|both (default both), "
             "--rounds R (rounds of every mode, integer 1..%u, default %u), "
             "--cluster N (integer 0..2^64-1, default 0; must match the server); "
             "--flag=value also accepted",
             CLIENTBENCH_THREADS_MAX, CLIENTBENCH_THREADS_DEFAULT, CLIENTBENCH_IN_FLIGHT_MAX,
             CLIENTBENCH_IN_FLIGHT_DEFAULT, CLIENTBENCH_EVENTS_MAX, CLIENTBENCH_EVENTS_DEFAULT,
             CLIENTBENCH_PACKETS_MAX, CLIENTBENCH_TRANSFERS_DEFAULT, CLIENTBENCH_PACKETS_MAX,
             CLIENTBENCH_OFF_DIVISOR_DEFAULT, CLIENTBENCH_ROUNDS_MAX, CLIENTBENCH_ROUNDS_DEFAULT);
    va_list args;
    va_start(args, format);
    bench_bad_flag_v(accepted, CLIENTBENCH_USAGE, format, args);
}

typedef struct clientbench_opts {
    const char *address;
    unsigned threads;
    uint32_t in_flight;
    uint32_t events;
    uint64_t packets[clientbench_modes];
    bool packets_given[clientbench_modes];
    bool mode_enabled[clientbench_modes];
    uint32_t rounds;
    uint64_t cluster;
} clientbench_opts;

static uint64_t clientbench_parse_or_fail(const char *name, const char *value, uint64_t min,
                                          uint64_t max) {
    uint64_t v = 0;
    if (!bench_parse_u64(value, min, max, &v)) {
        clientbench_bad_flag("bad value for %s: '%s' (want an integer in %" PRIu64 "..%" PRIu64 ")",
                             name, value, min, max);
    }
    return v;
}

static clientbench_opts clientbench_parse_args(int argc, char **argv) {
    clientbench_opts o = {
        .threads = CLIENTBENCH_THREADS_DEFAULT,
        .in_flight = CLIENTBENCH_IN_FLIGHT_DEFAULT,
        .events = CLIENTBENCH_EVENTS_DEFAULT,
        .mode_enabled = {true, true},
        .rounds = CLIENTBENCH_ROUNDS_DEFAULT,
    };
    for (int i = 1; i < argc; i++) {
        static const char *const names[] = {"--address", "--threads",     "--in-flight",
                                            "--events",  "--packets-off", "--packets",
                                            "--batching", "--rounds",      "--cluster"};
        const char *name = NULL;
        const char *val = NULL;
        switch (bench_next_flag(argc, argv, &i, names, sizeof names / sizeof names[0], &name,
                                &val)) {
        case bench_flag_help:
            clientbench_usage(stdout);
            exit(0);
        case bench_flag_unknown: clientbench_bad_flag("unknown flag '%s'", argv[i]);
        case bench_flag_no_value: clientbench_bad_flag("flag %s needs a value", name);
        case bench_flag_ok: break;
        }
        if (strcmp(name, "--address") == 0) {
            tw_address addresses[TW_CLIENT_ADDRESSES_MAX];
            uint32_t count = 0;
            tw_client_init_status parsed = tw_client_addresses_parse(val, addresses, &count);
            if (parsed != tw_client_init_ok) {
                clientbench_bad_flag("bad value for --address: '%s' (%s; want e.g. "
                                     "127.0.0.1:3300)",
                                     val, tw_client_init_status_name(parsed));
            }
            o.address = val;
        } else if (strcmp(name, "--threads") == 0) {
            o.threads = (unsigned)clientbench_parse_or_fail(name, val, 1, CLIENTBENCH_THREADS_MAX);
        } else if (strcmp(name, "--in-flight") == 0) {
            o.in_flight =
                (uint32_t)clientbench_parse_or_fail(name, val, 1, CLIENTBENCH_IN_FLIGHT_MAX);
        } else if (strcmp(name, "--events") == 0) {
            o.events = (uint32_t)clientbench_parse_or_fail(name, val, 1, CLIENTBENCH_EVENTS_MAX);
        } else if (strcmp(name, "--packets") == 0) {
            o.packets[clientbench_batching_on] =
                clientbench_parse_or_fail(name, val, 1, CLIENTBENCH_PACKETS_MAX);
            o.packets_given[clientbench_batching_on] = true;
        } else if (strcmp(name, "--packets-off") == 0) {
            o.packets[clientbench_batching_off] =
                clientbench_parse_or_fail(name, val, 1, CLIENTBENCH_PACKETS_MAX);
            o.packets_given[clientbench_batching_off] = true;
        } else if (strcmp(name, "--batching") == 0) {
            bool on = strcmp(val, "on") == 0;
            bool off = strcmp(val, "off") == 0;
            bool both = strcmp(val, "both") == 0;
            if (!on && !off && !both) {
                clientbench_bad_flag("bad value for --batching: '%s' (want on, off or both)", val);
            }
            o.mode_enabled[clientbench_batching_on] = on || both;
            o.mode_enabled[clientbench_batching_off] = off || both;
        } else if (strcmp(name, "--rounds") == 0) {
            o.rounds = (uint32_t)clientbench_parse_or_fail(name, val, 1, CLIENTBENCH_ROUNDS_MAX);
        } else {
            o.cluster = clientbench_parse_or_fail(name, val, 0, UINT64_MAX);
        }
    }
    if (o.address == NULL) clientbench_bad_flag("--address is required");
    if (o.in_flight < o.threads) {
        clientbench_bad_flag("--in-flight %" PRIu32 " is below --threads %u (each thread keeps "
                             "at least one packet outstanding)",
                             o.in_flight, o.threads);
    }
    if (!o.packets_given[clientbench_batching_on]) {
        uint64_t packets = CLIENTBENCH_TRANSFERS_DEFAULT / o.events;
        o.packets[clientbench_batching_on] = packets > 0 ? packets : 1;
    }
    if (!o.packets_given[clientbench_batching_off]) {
        uint64_t packets = o.packets[clientbench_batching_on] / CLIENTBENCH_OFF_DIVISOR_DEFAULT;
        o.packets[clientbench_batching_off] = packets > 0 ? packets : 1;
    }
    return o;
}

/* ---- one mode: the client, the user threads, the completions ---- */

typedef struct clientbench_thread clientbench_thread;

/* A packet and its transfers; reused for the thread's next submit once it completed. */
typedef struct clientbench_slot {
    tw_packet packet;
    clientbench_thread *thread;
    uint32_t index;       /* in thread->slots */
    uint64_t submit_ns;   /* written by the user thread before the submit */
    tw_transfer *transfers;
} clientbench_slot;

struct clientbench_thread {
    _Alignas(CLIENTBENCH_CACHE_LINE) pthread_t handle;
    uint32_t events;             /* transfers per packet */
    uint64_t packets;            /* this thread's share of the mode's packets */
    uint32_t slots_count;        /* its share of in-flight packets (at most packets) */
    clientbench_slot *slots;
    tw_transfer *transfers;      /* slots_count * events, the slots' data */
    tw_client *client;
    tw_u128 debit_id;
    tw_u128 credit_id;
    uint64_t id_high;            /* the run nonce */
    uint64_t id_low_base;        /* mode and thread fields of its transfer ids */
    uint64_t sequence;           /* the next transfer's sequence (from 1) */
    uint64_t end_ns;             /* out: when it saw its last completion */
    /* The completion ring: the IO thread pushes completed slot indexes, the user thread
     * pops them. ring_mask + 1 is a power of two >= slots_count. */
    uint32_t *ring;
    uint32_t ring_mask;
    uint32_t ring_head;          /* the user thread's */
    /* The IO thread's: latencies_ns[latencies_count++] per completion. */
    uint64_t *latencies_ns;
    uint64_t latencies_count;
    _Alignas(CLIENTBENCH_CACHE_LINE) tw_atomic_u32 ring_tail; /* the futex word */
    tw_atomic_u32 sleeping;      /* the user thread is about to wait on ring_tail */
};

typedef struct clientbench_setup {
    tw_atomic_u32 done; /* the futex word the main thread waits on */
} clientbench_setup;

/* The requests the client sent, as the completions show them (the IO thread's): the packets
 * of one request complete one after another, each with the reply's timestamp, and every
 * reply has its own, so a new timestamp starts a new request. */
typedef struct clientbench_batches {
    uint64_t timestamp_last;
    uint32_t current;   /* packets of the request being completed */
    uint32_t size_max;  /* the most packets a request can carry: every packet in flight */
    uint64_t *requests; /* requests[n]: requests that carried n packets, n <= size_max */
} clientbench_batches;

static _Alignas(CLIENTBENCH_CACHE_LINE) tw_atomic_u32 start_ready;
static _Alignas(CLIENTBENCH_CACHE_LINE) tw_atomic_u32 start_go;

/* On the client's IO thread. */
static void clientbench_on_complete(uintptr_t context, tw_packet *packet, uint64_t timestamp,
                                    const uint8_t *result, uint32_t result_size) {
    (void)result;
    if (packet->status != tw_packet_ok) {
        fprintf(stderr, "%s: a packet completed with status %s\n", bench_prog,
                tw_packet_status_name((tw_packet_status)packet->status));
    }
    BENCH_CHECK(packet->status == tw_packet_ok);
    BENCH_CHECK(timestamp > 0);
    if (result_size != 0) {
        const tw_create_result *first = (const tw_create_result *)(const void *)result;
        fprintf(stderr,
                "%s: a packet had %" PRIu32 " failed events; the first: index %" PRIu32
                ", result %s\n",
                bench_prog, result_size / (uint32_t)sizeof(tw_create_result), first->index,
                packet->user_tag == clientbench_tag_accounts
                    ? tw_create_account_result_name((tw_create_account_result)first->result)
                    : tw_create_transfer_result_name((tw_create_transfer_result)first->result));
    }
    BENCH_CHECK(result_size == 0);
    if (packet->user_tag == clientbench_tag_accounts) {
        clientbench_setup *setup = packet->user_data;
        tw_atomic_store_u32(&setup->done, 1, tw_release);
        (void)tw_futex_wake(&setup->done, TW_FUTEX_WAKE_ALL);
        return;
    }
    BENCH_CHECK(packet->user_tag == clientbench_tag_transfers);
    clientbench_batches *batches = (clientbench_batches *)context;
    if (timestamp != batches->timestamp_last) {
        BENCH_CHECK(timestamp > batches->timestamp_last);
        batches->requests[batches->current]++;
        batches->timestamp_last = timestamp;
        batches->current = 0;
    }
    batches->current++;
    BENCH_CHECK(batches->current <= batches->size_max);
    clientbench_slot *slot = packet->user_data;
    clientbench_thread *t = slot->thread;
    BENCH_CHECK(t->latencies_count < t->packets);
    t->latencies_ns[t->latencies_count++] = bench_now_ns() - slot->submit_ns;
    uint32_t tail = tw_atomic_load_u32(&t->ring_tail, tw_relaxed); /* only this thread writes it */
    /* No overflow: the thread has at most slots_count <= ring_mask + 1 packets outstanding,
     * and pops a slot before it submits it again. From here on the user thread may refill
     * and resubmit the packet: the client touches no packet once its callback has begun
     * (client.h: the packet is the user's again, even inside the callback), and this
     * callback touches the slot no more. */
    t->ring[tail & t->ring_mask] = slot->index;
    /* seq_cst store then seq_cst load, against the user thread's seq_cst store of sleeping
     * then load of ring_tail: at least one of the two sees the other's write. */
    tw_atomic_store_u32(&t->ring_tail, tail + 1, tw_seq_cst);
    if (tw_atomic_load_u32(&t->sleeping, tw_seq_cst) != 0) (void)tw_futex_wake(&t->ring_tail, 1);
}

static tw_u128 clientbench_account_id(uint64_t nonce, clientbench_mode mode, unsigned thread,
                                      unsigned which) {
    return (tw_u128){
        .low = CLIENTBENCH_ACCOUNT_BIT | ((uint64_t)mode << CLIENTBENCH_MODE_SHIFT) |
               ((uint64_t)thread << CLIENTBENCH_THREAD_SHIFT) | which,
        .high = nonce,
    };
}

/* Fills the slot's packet with the thread's next transfers and submits it. */
static void clientbench_submit(clientbench_thread *t, clientbench_slot *slot) {
    for (uint32_t e = 0; e < t->events; e++) {
        BENCH_CHECK(t->sequence < (UINT64_C(1) << CLIENTBENCH_SEQUENCE_BITS));
        slot->transfers[e] = (tw_transfer){
            .id = {.low = t->id_low_base | t->sequence++, .high = t->id_high},
            .debit_account_id = t->debit_id,
            .credit_account_id = t->credit_id,
            .amount = CLIENTBENCH_TRANSFER_AMOUNT,
            .ledger = CLIENTBENCH_LEDGER,
            .code = CLIENTBENCH_CODE,
        };
    }
    slot->packet = (tw_packet){
        .user_data = slot,
        .data = slot->transfers,
        .data_size = t->events * (uint32_t)sizeof(tw_transfer),
        .user_tag = clientbench_tag_transfers,
        .operation = tw_operation_create_transfers,
    };
    slot->submit_ns = bench_now_ns();
    BENCH_CHECK(tw_client_submit(t->client, &slot->packet) == tw_client_ok);
}

static void *clientbench_worker(void *arg) {
    clientbench_thread *t = arg;
    tw_atomic_fetch_add_u32(&start_ready, 1, tw_release);
    while (tw_atomic_load_u32(&start_go, tw_acquire) == 0) sched_yield();

    uint64_t submitted = 0;
    uint64_t completed = 0;
    for (uint32_t s = 0; s < t->slots_count; s++) {
        clientbench_submit(t, &t->slots[s]);
        submitted++;
    }
    while (completed < t->packets) {
        uint32_t tail = tw_atomic_load_u32(&t->ring_tail, tw_acquire);
        if (tail == t->ring_head) {
            tw_atomic_store_u32(&t->sleeping, 1, tw_seq_cst);
            tail = tw_atomic_load_u32(&t->ring_tail, tw_seq_cst);
            if (tail == t->ring_head) (void)tw_futex_wait(&t->ring_tail, tail, TW_TIMEOUT_NONE);
            tw_atomic_store_u32(&t->sleeping, 0, tw_relaxed);
            continue;
        }
        while (t->ring_head != tail) {
            uint32_t index = t->ring[t->ring_head & t->ring_mask];
            t->ring_head++;
            completed++;
            BENCH_CHECK(index < t->slots_count);
            if (submitted < t->packets) {
                clientbench_submit(t, &t->slots[index]);
                submitted++;
            }
        }
    }
    t->end_ns = bench_now_ns();
    return NULL;
}

static void *clientbench_allocate(size_t count, size_t size_bytes) {
    void *block = calloc(count > 0 ? count : 1, size_bytes);
    if (block == NULL) bench_fail("out of memory");
    return block;
}

static int clientbench_compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile of sorted values. */
static uint64_t clientbench_percentile(const uint64_t *sorted, uint64_t count, unsigned percent) {
    BENCH_CHECK(count > 0);
    uint64_t rank = (count * percent + CLIENTBENCH_PERCENT - 1) / CLIENTBENCH_PERCENT;
    if (rank == 0) rank = 1;
    return sorted[rank - 1];
}

/* Power-of-two buckets of packets per request: 1, 2-3, 4-7, ... */
#define CLIENTBENCH_BATCH_BUCKETS 18u

typedef struct clientbench_result {
    bool done;
    uint64_t packets;
    uint64_t requests;
    uint32_t packets_per_request_p50; /* over requests */
    uint32_t packets_per_request_max;
    uint64_t request_buckets[CLIENTBENCH_BATCH_BUCKETS];
    double seconds;
    double events_per_s;
    double packets_per_s;
    double latency_p50_us;
    double latency_p99_us;
} clientbench_result;

static clientbench_result clientbench_run_mode(const clientbench_opts *o, clientbench_mode mode,
                                               uint64_t nonce) {
    uint64_t packets = o->packets[mode];
    tw_client client;
    tw_client_options options = {
        .release = CLIENTBENCH_RELEASE,
        .batching_off = mode == clientbench_batching_off,
        .message_size_max = 0,
    };
    clientbench_batches batches = {
        .size_max = o->in_flight,
        .requests = clientbench_allocate((size_t)o->in_flight + 1, sizeof(uint64_t)),
    };
    tw_client_init_status init =
        tw_client_init(&client, (tw_u128){.low = o->cluster}, o->address, (uintptr_t)&batches,
                       clientbench_on_complete, &options);
    if (init != tw_client_init_ok) {
        fprintf(stderr, "%s: tw_client_init failed: %s\n", bench_prog,
                tw_client_init_status_name(init));
        exit(1);
    }

    /* Setup: the accounts, two per thread, in one packet. */
    uint32_t accounts_count = o->threads * CLIENTBENCH_ACCOUNTS_PER_THREAD;
    tw_account *accounts = clientbench_allocate(accounts_count, sizeof(tw_account));
    for (unsigned k = 0; k < o->threads; k++) {
        for (unsigned which = 0; which < CLIENTBENCH_ACCOUNTS_PER_THREAD; which++) {
            accounts[k * CLIENTBENCH_ACCOUNTS_PER_THREAD + which] = (tw_account){
                .id = clientbench_account_id(nonce, mode, k, which),
                .ledger = CLIENTBENCH_LEDGER,
                .code = CLIENTBENCH_CODE,
            };
        }
    }
    clientbench_setup setup = {.done = TW_ATOMIC_INIT(0)};
    tw_packet accounts_packet = {
        .user_data = &setup,
        .data = accounts,
        .data_size = accounts_count * (uint32_t)sizeof(tw_account),
        .user_tag = clientbench_tag_accounts,
        .operation = tw_operation_create_accounts,
    };
    uint64_t setup_start_ns = bench_now_ns();
    BENCH_CHECK(tw_client_submit(&client, &accounts_packet) == tw_client_ok);
    while (tw_atomic_load_u32(&setup.done, tw_acquire) == 0) {
        uint64_t waited_ns = bench_now_ns() - setup_start_ns;
        if (waited_ns >= CLIENTBENCH_SETUP_TIMEOUT_NS) {
            fprintf(stderr, "%s: no reply to create_accounts within %u s: is twin-server running "
                            "at %s, with --cluster %" PRIu64 "?\n",
                    bench_prog, CLIENTBENCH_SETUP_TIMEOUT_S, o->address, o->cluster);
            exit(1);
        }
        (void)tw_futex_wait(&setup.done, 0, CLIENTBENCH_SETUP_TIMEOUT_NS - waited_ns);
    }

    /* The threads, their slots, rings and latency arrays: all allocated before the clock. */
    clientbench_thread *threads = aligned_alloc(CLIENTBENCH_CACHE_LINE,
                                                o->threads * sizeof(clientbench_thread));
    if (threads == NULL) bench_fail("out of memory");
    memset(threads, 0, o->threads * sizeof(clientbench_thread));
    tw_atomic_store_u32(&start_ready, 0, tw_relaxed);
    tw_atomic_store_u32(&start_go, 0, tw_relaxed);
    for (unsigned k = 0; k < o->threads; k++) {
        clientbench_thread *t = &threads[k];
        t->events = o->events;
        t->packets = packets / o->threads + (k < packets % o->threads ? 1u : 0u);
        uint32_t share = o->in_flight / o->threads + (k < o->in_flight % o->threads ? 1u : 0u);
        t->slots_count = t->packets < share ? (uint32_t)t->packets : share;
        t->slots = clientbench_allocate(t->slots_count, sizeof(clientbench_slot));
        t->transfers =
            clientbench_allocate((size_t)t->slots_count * o->events, sizeof(tw_transfer));
        for (uint32_t s = 0; s < t->slots_count; s++) {
            t->slots[s].thread = t;
            t->slots[s].index = s;
            t->slots[s].transfers = t->transfers + (size_t)s * o->events;
        }
        t->client = &client;
        t->debit_id = clientbench_account_id(nonce, mode, k, 0);
        t->credit_id = clientbench_account_id(nonce, mode, k, 1);
        t->id_high = nonce;
        t->id_low_base = ((uint64_t)mode << CLIENTBENCH_MODE_SHIFT) |
                         ((uint64_t)k << CLIENTBENCH_THREAD_SHIFT);
        t->sequence = 1;
        uint32_t ring_size = 1;
        while (ring_size < t->slots_count) ring_size *= 2;
        t->ring = clientbench_allocate(ring_size, sizeof(uint32_t));
        t->ring_mask = ring_size - 1;
        t->latencies_ns = clientbench_allocate(t->packets, sizeof(uint64_t));
        /* Touch the pages now, not inside the timed run. */
        memset(t->latencies_ns, 0xff, t->packets > 0 ? t->packets * sizeof(uint64_t) : 0);
        tw_atomic_store_u32(&t->ring_tail, 0, tw_relaxed);
        tw_atomic_store_u32(&t->sleeping, 0, tw_relaxed);
        BENCH_CHECK_ERRNUM(pthread_create(&t->handle, NULL, clientbench_worker, t),
                           "pthread_create");
    }
    while (tw_atomic_load_u32(&start_ready, tw_acquire) < o->threads) sched_yield();
    uint64_t start_ns = bench_now_ns();
    tw_atomic_store_u32(&start_go, 1, tw_release);

    uint64_t end_ns = start_ns;
    for (unsigned k = 0; k < o->threads; k++) {
        BENCH_CHECK_ERRNUM(pthread_join(threads[k].handle, NULL), "pthread_join");
        if (threads[k].end_ns > end_ns) end_ns = threads[k].end_ns;
    }
    /* Every packet completed (the threads saw them all), so nothing is outstanding. */
    BENCH_CHECK(tw_client_deinit(&client) == tw_client_ok);

    uint64_t *latencies_ns = clientbench_allocate(packets, sizeof(uint64_t));
    uint64_t gathered = 0;
    for (unsigned k = 0; k < o->threads; k++) {
        clientbench_thread *t = &threads[k];
        BENCH_CHECK(t->latencies_count == t->packets);
        BENCH_CHECK(t->sequence == t->packets * o->events + 1);
        memcpy(latencies_ns + gathered, t->latencies_ns, t->packets * sizeof(uint64_t));
        gathered += t->packets;
        free(t->latencies_ns);
        free(t->ring);
        free(t->transfers);
        free(t->slots);
    }
    BENCH_CHECK(gathered == packets);
    qsort(latencies_ns, packets, sizeof(uint64_t), clientbench_compare_u64);

    double seconds = (double)(end_ns - start_ns) / CLIENTBENCH_NS_PER_S;
    clientbench_result r = {
        .done = true,
        .packets = packets,
        .seconds = seconds,
        .events_per_s = (double)packets * o->events / seconds,
        .packets_per_s = (double)packets / seconds,
        .latency_p50_us = (double)clientbench_percentile(latencies_ns, packets,
                                                         CLIENTBENCH_PERCENTILE_P50) /
                          CLIENTBENCH_NS_PER_US,
        .latency_p99_us = (double)clientbench_percentile(latencies_ns, packets,
                                                         CLIENTBENCH_PERCENTILE_P99) /
                          CLIENTBENCH_NS_PER_US,
    };
    /* The IO thread is joined: its counts are final. The last request is still open, and
     * requests[0] counted the start (timestamp 0 to the first reply's). */
    batches.requests[batches.current]++;
    batches.requests[0] = 0;
    uint64_t batched = 0;
    for (uint32_t n = 1; n <= batches.size_max; n++) {
        uint64_t count = batches.requests[n];
        if (count == 0) continue;
        r.requests += count;
        batched += count * n;
        r.packets_per_request_max = n;
        unsigned bucket = 0;
        while (bucket + 1 < CLIENTBENCH_BATCH_BUCKETS && (UINT32_C(2) << bucket) <= n) bucket++;
        r.request_buckets[bucket] += count;
    }
    BENCH_CHECK(batched == packets);
    uint64_t seen = 0;
    for (uint32_t n = 1; n <= batches.size_max; n++) {
        seen += batches.requests[n];
        if (seen * 2 >= r.requests) {
            r.packets_per_request_p50 = n;
            break;
        }
    }
    free(batches.requests);
    free(latencies_ns);
    free(threads);
    free(accounts);
    return r;
}

static void clientbench_print_mode(const clientbench_opts *o, uint32_t round,
                                   clientbench_mode mode, const clientbench_result *r) {
    printf("round=%" PRIu32 " mode=%s threads=%u in_flight=%" PRIu32 " events=%" PRIu32
           " packets=%" PRIu64 " seconds=%.3f events_per_s=%.0f packets_per_s=%.0f "
           "latency_p50_us=%.1f latency_p99_us=%.1f\n",
           round + 1, clientbench_mode_names[mode], o->threads, o->in_flight, o->events,
           r->packets, r->seconds, r->events_per_s, r->packets_per_s, r->latency_p50_us,
           r->latency_p99_us);
    printf("  requests=%" PRIu64 " packets_per_request_mean=%.1f packets_per_request_p50=%" PRIu32
           " packets_per_request_max=%" PRIu32 " requests_per_s=%.0f; requests by packets:",
           r->requests, (double)r->packets / (double)r->requests, r->packets_per_request_p50,
           r->packets_per_request_max, (double)r->requests / r->seconds);
    for (unsigned b = 0; b < CLIENTBENCH_BATCH_BUCKETS; b++) {
        if (r->request_buckets[b] == 0) continue;
        uint32_t low = UINT32_C(1) << b;
        if (low == 1) printf(" 1:%" PRIu64, r->request_buckets[b]);
        else printf(" %" PRIu32 "-%" PRIu32 ":%" PRIu64, low, 2 * low - 1, r->request_buckets[b]);
    }
    printf("\n");
    BENCH_CHECK(fflush(stdout) == 0);
}

static int clientbench_compare_double(const void *a, const void *b) {
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The round whose events/s is the median for this mode (the lower middle when even). */
static const clientbench_result *
clientbench_median_round(clientbench_result results[][clientbench_modes], uint32_t rounds,
                         int mode) {
    BENCH_CHECK(rounds >= 1 && rounds <= CLIENTBENCH_ROUNDS_MAX);
    uint32_t order[CLIENTBENCH_ROUNDS_MAX];
    for (uint32_t i = 0; i < rounds; i++) order[i] = i;
    for (uint32_t i = 1; i < rounds; i++) { /* insertion sort: at most 15 */
        for (uint32_t j = i; j > 0 && results[order[j]][mode].events_per_s <
                                          results[order[j - 1]][mode].events_per_s;
             j--) {
            uint32_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    }
    return &results[order[(rounds - 1) / 2]][mode];
}

int main(int argc, char **argv) {
    bench_prog = "twin-clientbench";
    clientbench_opts o = clientbench_parse_args(argc, argv);

    struct timespec now;
    BENCH_CHECK_SYS(clock_gettime(CLOCK_REALTIME, &now), "clock_gettime");
    uint64_t nonce = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    if (nonce == UINT64_MAX) nonce--; /* an id of all ones is not allowed */

    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("clientbench: server %s, %ld CPUs; %u user threads, %" PRIu32 " packets in flight, "
           "transfers per packet %" PRIu32 "; packets: batching on %" PRIu64
           ", batching off %" PRIu64 "; %" PRIu32 " rounds of both modes in this process, "
           "one after the other, against the same server; run nonce %" PRIu64 "\n",
           o.address, cpus, o.threads, o.in_flight, o.events, o.packets[clientbench_batching_on],
           o.packets[clientbench_batching_off], o.rounds, nonce);
    BENCH_CHECK(fflush(stdout) == 0);

    clientbench_result results[CLIENTBENCH_ROUNDS_MAX][clientbench_modes] = {{{0}}};
    for (uint32_t round = 0; round < o.rounds; round++) {
        for (int mode = 0; mode < clientbench_modes; mode++) {
            if (!o.mode_enabled[mode]) continue;
            clientbench_result r = clientbench_run_mode(&o, (clientbench_mode)mode, nonce + round);
            results[round][mode] = r;
            clientbench_print_mode(&o, round, (clientbench_mode)mode, &r);
        }
    }

    /* Each mode's median round (by events/s), and the median of the rounds' ratios. */
    printf("median of %" PRIu32 " round%s:\n", o.rounds, o.rounds == 1 ? "" : "s");
    printf("%-13s %10s %8s %12s %12s %10s %10s\n", "mode", "packets", "seconds", "events/s",
           "packets/s", "p50_us", "p99_us");
    for (int mode = 0; mode < clientbench_modes; mode++) {
        if (!o.mode_enabled[mode]) {
            printf("%-13s %10s %8s %12s %12s %10s %10s\n", clientbench_mode_names[mode], "-", "-",
                   "-", "-", "-", "-");
            continue;
        }
        const clientbench_result *r = clientbench_median_round(results, o.rounds, mode);
        printf("%-13s %10" PRIu64 " %8.3f %12.0f %12.0f %10.1f %10.1f\n",
               clientbench_mode_names[mode], r->packets, r->seconds, r->events_per_s,
               r->packets_per_s, r->latency_p50_us, r->latency_p99_us);
    }
    if (o.mode_enabled[clientbench_batching_on] && o.mode_enabled[clientbench_batching_off]) {
        double ratios[CLIENTBENCH_ROUNDS_MAX];
        printf("events/s batching on / off by round:");
        for (uint32_t round = 0; round < o.rounds; round++) {
            ratios[round] = results[round][clientbench_batching_on].events_per_s /
                            results[round][clientbench_batching_off].events_per_s;
            printf(" %.2fx", ratios[round]);
        }
        qsort(ratios, o.rounds, sizeof(double), clientbench_compare_double);
        printf("\nevents/s batching on / off: %.2fx median, %.2fx lowest (events=%" PRIu32
               ", in_flight=%" PRIu32 ")\n",
               ratios[(o.rounds - 1) / 2], ratios[0], o.events, o.in_flight);
    } else {
        printf("events/s batching on / off: - (one mode only)\n");
    }
    BENCH_CHECK(fflush(stdout) == 0);
    return 0;
}
