/* The client under contention and network faults, against the real server.
 *
 * USERS user threads (sim: fibers) share one client and submit packets through it, each
 * keeping WINDOW packets outstanding while replies arrive; in the sim the network has
 * every seeded fault but bit flips (resets, partitions, refused and timed-out connects,
 * latency spikes, partial sends and receives), so the client reconnects and retries.
 * Packet (thread t, number i) is one of three kinds:
 *   - create_accounts of 1..3 accounts, some with id 0 (id_must_not_be_zero);
 *   - create_accounts with a closed linked chain of two and one more account; in some
 *     packets the chain's second account has code 0 (the chain fails: linked_event_failed,
 *     code_must_not_be_zero) while the third is created;
 *   - echo of a body patterned by (t, i).
 * Account ids are unique per (t, i, event), so every create's results are known in advance:
 * a request executed twice would answer `exists`, a demultiplexing slip would shift
 * indexes. The oracle, per packet: status ok, and results equal to the expected ones, byte
 * for byte (echo: its own bytes). After the threads: the accounts that must exist are
 * looked up (batches of tw_operation_events_max) and each is found once, with its ledger
 * and code; the server executed no more requests than packets were sent (batching) and
 * evicted nobody. The real build runs the same workload on pthreads, larger (and under
 * TSan in the tsan preset). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/client.h>
#include <twin/ledger.h>
#include <twin/os.h>
#include <twin/server.h>

#include "client_packets.h"
#include "server_thread.h"
#include "twin_test.h"

#define MS_NS (1000ull * 1000u)
#define USERS 16u
#define WINDOW 3u
/* Before each window a user pauses 0..THINK_NS_MAX (tw_random_u64: the seed's "random"
 * stream in the sim), so submits meet replies, registration and retries at varied times. */
#define THINK_NS_MAX (2ull * MS_NS)
#define PACKETS_SIM 4u
#define PACKETS_REAL 400u
#define MESSAGE_SIZE_MAX 4096u
#define CLUSTER_LOW 21u
#define RELEASE 1u
#define ACCOUNTS_PER_PACKET_MAX 3u
#define ACCOUNTS_MAX (USERS * PACKETS_REAL * ACCOUNTS_PER_PACKET_MAX)
#define ECHO_SIZE_MAX 700u
#define ID_HIGH_BASE 0xfa00u
/* Longer than the sim's largest one-way latency (a spike: ~200 ms), so a retry is not the
 * rule; shorter would only mean more retries, which the server answers from its cache. */
#define REQUEST_TIMEOUT_SIM_NS (300ull * MS_NS)
#define REQUEST_TIMEOUT_REAL_NS (5000ull * MS_NS)
/* Scheduling points per packet, roughly (measured), for PCT's change points. */
#define STEPS_PER_PACKET 60u

typedef enum packet_kind {
    kind_accounts = 0,
    kind_chain,
    kind_echo,
    kind_count,
} packet_kind;

#define MESSAGE_TEXT_SIZE 512u

typedef struct user {
    uint32_t number;
    char message[MESSAGE_TEXT_SIZE]; /* this thread's failure text (tw_panic keeps it) */
    tw_client *client;
    tw_test_waiter waiter;
    tw_test_packet slots[WINDOW];
} user;

static const tw_u128 cluster = {.low = CLUSTER_LOW, .high = 0};
static uint32_t packets_per_user;
static uint64_t request_timeout_ns;
static bool print_runs;
static user users[USERS];
static tw_client the_client;
static tw_test_packet lookup_packet;
static char problem[MESSAGE_TEXT_SIZE]; /* the main thread's failure text */

typedef struct totals {
    uint64_t runs;
    uint64_t requests_min; /* per run */
    uint64_t requests_max;
    uint64_t packets;
    uint64_t requests;
    uint64_t retries_answered;
    uint64_t requests_ignored;
    uint64_t connections;
} totals;
static totals sweep;

/* A failure text in buffer (one per thread: threads fail at once in the real build). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static const char *text_in(char *buffer, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(buffer, MESSAGE_TEXT_SIZE, format, args);
    va_end(args);
    return buffer;
}

/* ---- the workload: what each packet carries and must get back ----------------------------- */

static packet_kind kind_of(uint32_t t, uint32_t i) { return (packet_kind)((t + i) % kind_count); }

static uint32_t accounts_in(uint32_t t, uint32_t i) {
    return kind_of(t, i) == kind_chain ? 3u : 1u + (t * 7u + i) % ACCOUNTS_PER_PACKET_MAX;
}

static tw_account account_of(uint32_t t, uint32_t i, uint32_t e) {
    tw_account a = {.id = {.low = ((uint64_t)i << 8) | e, .high = ID_HIGH_BASE + t},
                    .ledger = 1u + t % 3u,
                    .code = (uint16_t)(1u + i % 100u)};
    if (kind_of(t, i) == kind_accounts && (t + i + e) % 5u == 0) a.id = (tw_u128){0, 0};
    if (kind_of(t, i) == kind_chain) {
        if (e == 0) a.flags = tw_account_linked;
        if (e == 1 && (t + i) % 4u == 0) a.code = 0;
    }
    return a;
}

/* The results the ledger must give, and whether event e creates its account. */
static uint32_t expected_results(uint32_t t, uint32_t i, tw_create_result *out, bool *created) {
    uint32_t n = 0;
    uint32_t count = accounts_in(t, i);
    for (uint32_t e = 0; e < count; e++) created[e] = true;
    if (kind_of(t, i) == kind_accounts) {
        for (uint32_t e = 0; e < count; e++) {
            if ((t + i + e) % 5u != 0) continue;
            out[n++] = (tw_create_result){e, tw_create_account_id_must_not_be_zero};
            created[e] = false;
        }
    } else if ((t + i) % 4u == 0) { /* the chain's second event has code 0 */
        out[n++] = (tw_create_result){0, tw_create_account_linked_event_failed};
        out[n++] = (tw_create_result){1, tw_create_account_code_must_not_be_zero};
        created[0] = created[1] = false;
    }
    return n;
}

static uint32_t echo_size(uint32_t t, uint32_t i) { return 1u + (t * 131u + i * 17u) % ECHO_SIZE_MAX; }

static uint8_t echo_byte(uint32_t t, uint32_t i, uint32_t b) { return (uint8_t)(t * 37u + i * 11u + b * 3u); }

static void packet_fill(tw_test_packet *p, user *u, uint32_t i) {
    uint32_t t = u->number;
    if (kind_of(t, i) == kind_echo) {
        uint32_t size = echo_size(t, i);
        tw_test_packet_init(p, &u->waiter, i, tw_operation_echo, size);
        for (uint32_t b = 0; b < size; b++) p->data[b] = echo_byte(t, i, b);
        return;
    }
    uint32_t count = accounts_in(t, i);
    tw_test_packet_init(p, &u->waiter, i, tw_operation_create_accounts, count * (uint32_t)sizeof(tw_account));
    for (uint32_t e = 0; e < count; e++) {
        tw_account a = account_of(t, i, e);
        memcpy(p->data + e * sizeof(a), &a, sizeof(a));
    }
}

static void packet_check(const tw_test_packet *p, user *u) {
    uint32_t t = u->number;
    uint32_t i = p->number;
    char what[64];
    snprintf(what, sizeof(what), "user %u packet %u", t, i);
    tw_test_packet_expect(p, tw_packet_ok, what);
    if (kind_of(t, i) == kind_echo) {
        TW_ASSERT_MSG(p->result_size == echo_size(t, i) && memcmp(p->result, p->data, p->result_size) == 0,
                      text_in(u->message, "user %u packet %u: echo of %u bytes came back as %u other bytes", t, i,
                           echo_size(t, i), p->result_size));
        return;
    }
    tw_create_result want[ACCOUNTS_PER_PACKET_MAX];
    bool created[ACCOUNTS_PER_PACKET_MAX];
    uint32_t n = expected_results(t, i, want, created);
    uint32_t got_count = p->result_size / (uint32_t)sizeof(tw_create_result);
    for (uint32_t r = 0; r < got_count || r < n; r++) {
        tw_create_result got = {UINT32_MAX, 0};
        if (r < got_count) memcpy(&got, p->result + r * sizeof(got), sizeof(got));
        tw_create_result expected = r < n ? want[r] : (tw_create_result){UINT32_MAX, 0};
        TW_ASSERT_MSG(r < got_count && r < n && got.index == expected.index && got.result == expected.result,
                      text_in(u->message, "user %u packet %u: result %u is {index %d, %s}, expected {index %d, %s} (%u "
                           "results, expected %u)",
                           t, i, r, r < got_count ? (int)got.index : -1,
                           r < got_count ? tw_create_account_result_name((tw_create_account_result)got.result) : "none",
                           r < n ? (int)expected.index : -1,
                           r < n ? tw_create_account_result_name((tw_create_account_result)expected.result) : "none",
                           got_count, n));
    }
}

/* ---- the run ----------------------------------------------------------------------------------- */

static void user_main(void *arg) {
    user *u = arg;
    uint32_t sent = 0;
    while (sent < packets_per_user) {
        tw_test_sleep(tw_random_u64() % (THINK_NS_MAX + 1));
        uint32_t window_max = 1u + (uint32_t)(tw_random_u64() % WINDOW);
        uint32_t window = packets_per_user - sent < window_max ? packets_per_user - sent : window_max;
        uint32_t before = tw_atomic_load_u32(&u->waiter.completed, tw_acquire);
        for (uint32_t s = 0; s < window; s++) {
            packet_fill(&u->slots[s], u, sent + s);
            tw_test_packet_submit(u->client, &u->slots[s]);
        }
        char what[64];
        snprintf(what, sizeof(what), "user %u, packets %u..%u", u->number, sent, sent + window - 1);
        tw_test_wait(&u->waiter, before + window, what);
        for (uint32_t s = 0; s < window; s++) packet_check(&u->slots[s], u);
        sent += window;
    }
}

/* Every account that must exist, found once with its ledger and code. */
static uint64_t lookups_check(void) {
    uint32_t batch = tw_operation_events_max(tw_operation_lookup_accounts, MESSAGE_SIZE_MAX);
    tw_test_waiter waiter = {0};
    uint32_t filled = 0;
    uint64_t found_total = 0;
    uint64_t lookups = 0;
    tw_account want[TW_TEST_PACKET_DATA_MAX / sizeof(tw_u128)];
    for (uint32_t t = 0; t < USERS; t++) {
        for (uint32_t i = 0; i < packets_per_user; i++) {
            if (kind_of(t, i) == kind_echo) continue;
            tw_create_result results[ACCOUNTS_PER_PACKET_MAX];
            bool created[ACCOUNTS_PER_PACKET_MAX];
            (void)expected_results(t, i, results, created);
            for (uint32_t e = 0; e < accounts_in(t, i); e++) {
                if (!created[e]) continue;
                want[filled] = account_of(t, i, e);
                memcpy(lookup_packet.data + filled * sizeof(tw_u128), &want[filled].id, sizeof(tw_u128));
                filled++;
                bool last = t == USERS - 1 && i == packets_per_user - 1 && e == accounts_in(t, i) - 1;
                if (filled < batch && !last) continue;
                /* (init leaves the data as filled above) */
                tw_test_packet_init(&lookup_packet, &waiter, (uint32_t)lookups, tw_operation_lookup_accounts,
                                    filled * (uint32_t)sizeof(tw_u128));
                tw_test_packet_submit(&the_client, &lookup_packet);
                lookups++;
                tw_test_wait(&waiter, (uint32_t)lookups, "a lookup of the accounts created");
                tw_test_packet_expect(&lookup_packet, tw_packet_ok, "lookup");
                uint32_t found = lookup_packet.result_size / (uint32_t)sizeof(tw_account);
                TW_ASSERT_MSG(found == filled && lookup_packet.result_size % sizeof(tw_account) == 0,
                              text_in(problem, "lookup %" PRIu64 ": %u of %u accounts that must exist were found",
                                   lookups, found, filled));
                for (uint32_t k = 0; k < found; k++) {
                    tw_account a;
                    memcpy(&a, lookup_packet.result + k * sizeof(a), sizeof(a));
                    TW_ASSERT_MSG(a.id.low == want[k].id.low && a.id.high == want[k].id.high &&
                                      a.ledger == want[k].ledger && a.code == want[k].code &&
                                      a.timestamp != 0,
                                  "a looked-up account differs from the one created");
                }
                found_total += found;
                filled = 0;
            }
        }
    }
    TW_ASSERT(filled == 0);
    (void)found_total;
    return lookups;
}

static void faults_main(void *arg) {
    (void)arg;
    tw_test_server server;
    tw_server_options so = {
        .cluster = cluster,
        .connections_max = 16,
        .clients_max = 4,
        .message_size_max = MESSAGE_SIZE_MAX,
        .release_min = RELEASE,
        .release_max = RELEASE,
        .accounts_max = ACCOUNTS_MAX,
        .transfers_max = 1,
    };
    tw_test_server_start(&server, &so);
    char address[TW_ADDRESS_TEXT_SIZE];
    tw_address_format(&server.address, address, sizeof(address));
    tw_client_options options = {
        .release = RELEASE,
        .request_timeout_ns = request_timeout_ns,
        .backoff_min_ns = 1 * MS_NS,
        .backoff_max_ns = 50 * MS_NS,
        .message_size_max = MESSAGE_SIZE_MAX,
    };
    tw_client_init_status status =
        tw_client_init(&the_client, cluster, address, 7, tw_test_packet_completed, &options);
    TW_ASSERT_MSG(status == tw_client_init_ok, tw_client_init_status_name(status));
    tw_thread threads[USERS];
    for (uint32_t t = 0; t < USERS; t++) {
        users[t] = (user){.number = t, .client = &the_client};
        tw_thread_options thread_options = {.name = "user"};
        TW_ASSERT(tw_thread_spawn(&threads[t], &thread_options, user_main, &users[t]) == tw_os_ok);
    }
    for (uint32_t t = 0; t < USERS; t++) TW_ASSERT(tw_thread_join(threads[t]) == tw_os_ok);
    uint64_t lookups = lookups_check();
    TW_ASSERT(tw_client_deinit(&the_client) == tw_client_ok);
    tw_test_server_stop(&server);

    const tw_server_stats *stats = &server.stats;
    uint64_t packets = (uint64_t)USERS * packets_per_user;
    TW_ASSERT_MSG(stats->registrations == 1, text_in(problem, "%" PRIu64 " registrations for one client", stats->registrations));
    for (uint32_t r = 0; r < TW_EVICTION_REASON_COUNT; r++) {
        TW_ASSERT_MSG(stats->sessions_evicted[r] == 0,
                      text_in(problem, "the client was evicted (%s)", tw_eviction_reason_name((tw_eviction_reason)r)));
    }
    /* Batching: never more requests than packets (lookups travel alone). */
    uint64_t requests = stats->requests_executed - lookups;
    TW_ASSERT_MSG(stats->requests_executed >= lookups + 1 && requests <= packets,
                  text_in(problem, "the server executed %" PRIu64 " requests for %" PRIu64 " packets and %" PRIu64
                       " lookups",
                       stats->requests_executed, packets, lookups));
    if (sweep.runs == 0 || requests < sweep.requests_min) sweep.requests_min = requests;
    if (requests > sweep.requests_max) sweep.requests_max = requests;
    sweep.runs++;
    sweep.packets += packets;
    sweep.requests += requests;
    sweep.retries_answered += stats->retries_answered;
    sweep.requests_ignored += stats->requests_ignored;
    sweep.connections += stats->connections_accepted;
    if (print_runs) {
        printf("client_faults: run: %u users x %u packets = %" PRIu64 " packets in %" PRIu64
               " requests (%.2f packets per request), %" PRIu64 " lookups; server: %" PRIu64
               " connections, %" PRIu64 " retries answered from the cache, %" PRIu64
               " older requests ignored\n",
               USERS, packets_per_user, packets, requests, (double)packets / (double)requests, lookups,
               stats->connections_accepted, stats->retries_answered, stats->requests_ignored);
    }
}

static void print_totals(void) {
    if (sweep.runs == 0 || print_runs) return;
    printf("client_faults: totals over %" PRIu64 " runs: %" PRIu64 " packets in %" PRIu64
           " requests (%.2f packets per request; %" PRIu64 "..%" PRIu64 " requests per run); server: %"
           PRIu64 " connections, %" PRIu64 " retries answered from the cache, %" PRIu64
           " older requests ignored\n",
           sweep.runs, sweep.packets, sweep.requests, (double)sweep.packets / (double)sweep.requests,
           sweep.requests_min, sweep.requests_max,
           sweep.connections, sweep.retries_answered, sweep.requests_ignored);
}

static void *prepare(tw_test_build build) {
    bool real = build == tw_test_build_real;
    packets_per_user = real ? PACKETS_REAL : PACKETS_SIM;
    request_timeout_ns = real ? REQUEST_TIMEOUT_REAL_NS : REQUEST_TIMEOUT_SIM_NS;
    if (real) print_runs = true;
    else TW_ASSERT(atexit(print_totals) == 0);
    return NULL;
}

static uint64_t steps_expected(void *arg) {
    (void)arg;
    return (uint64_t)USERS * packets_per_user * STEPS_PER_PACKET;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0) print_runs = true;
    }
    tw_test_case test = {.name = "client_faults", .real_uses_io_uring = true, .prepare = prepare, .main_fn = faults_main,
                         .steps_expected = steps_expected};
    return tw_test_main(argc, argv, &test);
}
