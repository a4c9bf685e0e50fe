/* The client (include/twin/client.h), case by case, in both builds, with no network faults:
 *
 *  1. addresses: every rule of the address list, valid and invalid forms;
 *  2. misuse: NULL, zeroed and garbage handles, failed inits, calls after deinit;
 *  3. statuses: invalid_operation, invalid_data_size, too_much_data and ok at the limits,
 *     against the server; client_release_too_low and _too_high from the server's range;
 *  4. batching: packets submitted from a completion callback (so they all wait behind one
 *     request) become one request, counted at the server, each getting exactly its own
 *     results (failures at the first and last events, indexes rebased); the same with
 *     batching off (one request each); echo packets get their own bytes; lookups are never
 *     batched; the linked-chain rule (all linked: alone; closed chain, single, empty: batched);
 *  5. eviction (a scripted server): packets queued, in flight, pending and later all
 *     complete with the reason's status, and the client never sends again;
 *  6. deinit with packets queued (nothing to connect to), in flight and pending (a scripted
 *     server that never replies), and deinit/submit/context from inside a callback;
 *  7. retries (a scripted server): a refused first address, a connection closed with a
 *     request in flight, a request that times out: each retried on a new connection with
 *     the same request number and bytes;
 *  8. memory after deinit: a heap-allocated handle and its packets freed right after
 *     deinit returns, while another thread was still submitting (ASan catches a late touch).
 * The sim sweeps seeds of the whole sequence (each seed twice, hashes compared). */
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
#include "script_peer.h"
#include "server_thread.h"
#include "twin_test.h"

#define MS_NS (1000ull * 1000u)
#define MESSAGE_SIZE_MAX 4096u
#define BODY_MAX (MESSAGE_SIZE_MAX - TW_HEADER_SIZE)
#define RELEASE_MIN 2u
#define RELEASE_MAX 3u
#define CLUSTER_LOW 11u
#define ACCOUNTS_MAX 4096u
#define BATCH_PACKETS 10u
#define BATCH_ACCOUNTS_PER_PACKET 4u
#define ECHO_PACKETS 8u
#define LOOKUP_PACKETS 5u
#define RACE_ROUNDS_SIM 3u
#define RACE_ROUNDS_REAL 200u
#define RACE_PACKETS 16u
/* Deinit with queued packets comes 0..this long after init (tw_random_u64: seeded in the sim). */
#define DEINIT_DELAY_NS_MAX (30ull * MS_NS)
/* Nothing listens there, in either build: a connect is refused. */
#define ADDRESS_REFUSED "127.0.0.1:1"

static const tw_u128 cluster = {.low = CLUSTER_LOW, .high = 0};
static char problem[512];
static uint32_t race_rounds;

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static const char *text(const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(problem, sizeof(problem), format, args);
    va_end(args);
    return problem;
}

static tw_client_options test_options(void) {
    return (tw_client_options){
        .release = RELEASE_MIN,
        .request_timeout_ns = 300 * MS_NS,
        .backoff_min_ns = 1 * MS_NS,
        .backoff_max_ns = 20 * MS_NS,
        .message_size_max = MESSAGE_SIZE_MAX,
    };
}

static tw_server_options server_options(uint32_t clients_max) {
    return (tw_server_options){
        .cluster = cluster,
        .connections_max = 16,
        .clients_max = clients_max,
        .message_size_max = MESSAGE_SIZE_MAX,
        .release_min = RELEASE_MIN,
        .release_max = RELEASE_MAX,
        .accounts_max = ACCOUNTS_MAX,
        .transfers_max = 16,
    };
}

static void address_text(const tw_address *address, char *out, size_t size) {
    tw_address_format(address, out, size);
}

static void client_start(tw_client *client, const tw_address *server, const tw_client_options *options) {
    char address[TW_ADDRESS_TEXT_SIZE];
    address_text(server, address, sizeof(address));
    tw_client_init_status status =
        tw_client_init(client, cluster, address, 42, tw_test_packet_completed, options);
    TW_ASSERT_MSG(status == tw_client_init_ok, tw_client_init_status_name(status));
}

static void client_stop(tw_client *client) {
    tw_client_status status = tw_client_deinit(client);
    TW_ASSERT_MSG(status == tw_client_ok, tw_client_status_name(status));
}

static tw_account account_event(uint64_t id, uint32_t ledger, uint16_t code, uint16_t flags) {
    return (tw_account){.id = {.low = id, .high = 0xacc0}, .ledger = ledger, .code = code, .flags = flags};
}

static void put_account(tw_test_packet *p, uint32_t index, tw_account account) {
    memcpy(p->data + index * sizeof(tw_account), &account, sizeof(account));
}

/* ---- 1. addresses ------------------------------------------------------------------------ */

typedef struct address_case {
    const char *text;
    tw_client_init_status status;
    uint32_t count;
    const char *first; /* the first address, formatted (ok only) */
    const char *last;
} address_case;

static const address_case address_cases[] = {
    {"3000", tw_client_init_ok, 1, "127.0.0.1:3000", "127.0.0.1:3000"},
    {"127.0.0.1", tw_client_init_ok, 1, "127.0.0.1:3000", "127.0.0.1:3000"},
    {"127.0.0.1:3002", tw_client_init_ok, 1, "127.0.0.1:3002", "127.0.0.1:3002"},
    {"3000,3001,3002", tw_client_init_ok, 3, "127.0.0.1:3000", "127.0.0.1:3002"},
    {"127.0.0.1,127.0.0.2,172.0.0.3", tw_client_init_ok, 3, "127.0.0.1:3000", "172.0.0.3:3000"},
    {"127.0.0.1:3000,127.0.0.1:3002,127.0.0.1:3003", tw_client_init_ok, 3, "127.0.0.1:3000",
     "127.0.0.1:3003"},
    {"[::1]", tw_client_init_ok, 1, "[::1]:3000", "[::1]:3000"},
    {"[::1]:3005", tw_client_init_ok, 1, "[::1]:3005", "[::1]:3005"},
    {"[fe80::1]:1,10.0.0.1:65535", tw_client_init_ok, 2, "[fe80::1]:1", "10.0.0.1:65535"},
    {"1,2,3,4,5,6", tw_client_init_ok, 6, "127.0.0.1:1", "127.0.0.1:6"},
    /* More than six: refused before any element is parsed. */
    {"1,2,3,4,5,6,7", tw_client_init_address_limit_exceeded, 0, NULL, NULL},
    {",,,,,,", tw_client_init_address_limit_exceeded, 0, NULL, NULL},
    /* Empty list or element. */
    {"", tw_client_init_address_invalid, 0, NULL, NULL},
    {",", tw_client_init_address_invalid, 0, NULL, NULL},
    {"3000,", tw_client_init_address_invalid, 0, NULL, NULL},
    {",3000", tw_client_init_address_invalid, 0, NULL, NULL},
    {"3000,,3001", tw_client_init_address_invalid, 0, NULL, NULL},
    /* Ports. */
    {"invalid", tw_client_init_address_invalid, 0, NULL, NULL},
    {"127.0.0.1:", tw_client_init_address_invalid, 0, NULL, NULL},
    {"127.0.0.1:0", tw_client_init_address_invalid, 0, NULL, NULL},
    {"0", tw_client_init_address_invalid, 0, NULL, NULL},
    {"127.0.0.1:65536", tw_client_init_address_invalid, 0, NULL, NULL},
    {"127.0.0.1:-1", tw_client_init_address_invalid, 0, NULL, NULL},
    {"127.0.0.1:30a0", tw_client_init_address_invalid, 0, NULL, NULL},
    {"127.0.0.1:3000:3001", tw_client_init_address_invalid, 0, NULL, NULL},
    {" 3000", tw_client_init_address_invalid, 0, NULL, NULL},
    /* Hosts. */
    {"256.0.0.1", tw_client_init_address_invalid, 0, NULL, NULL},
    {"1.2.3", tw_client_init_address_invalid, 0, NULL, NULL},
    {"localhost:3000", tw_client_init_address_invalid, 0, NULL, NULL},
    {":3000", tw_client_init_address_invalid, 0, NULL, NULL},
    {"127.0.0.1, 127.0.0.2", tw_client_init_address_invalid, 0, NULL, NULL},
    /* IPv6 needs brackets, and brackets only IPv6. */
    {"::1", tw_client_init_address_invalid, 0, NULL, NULL},
    {"::1:3000", tw_client_init_address_invalid, 0, NULL, NULL},
    {"[::1", tw_client_init_address_invalid, 0, NULL, NULL},
    {"::1]", tw_client_init_address_invalid, 0, NULL, NULL},
    {"[]:3000", tw_client_init_address_invalid, 0, NULL, NULL},
    {"[127.0.0.1]:3000", tw_client_init_address_invalid, 0, NULL, NULL},
    {"[::1]3000", tw_client_init_address_invalid, 0, NULL, NULL},
    {"[[::1]]:3000", tw_client_init_address_invalid, 0, NULL, NULL},
};

static void case_addresses(void) {
    uint32_t count = sizeof(address_cases) / sizeof(address_cases[0]);
    for (uint32_t i = 0; i < count; i++) {
        const address_case *c = &address_cases[i];
        tw_address addresses[TW_CLIENT_ADDRESSES_MAX];
        uint32_t parsed = 99;
        tw_client_init_status status = tw_client_addresses_parse(c->text, addresses, &parsed);
        TW_ASSERT_MSG(status == c->status,
                      text("addresses '%s': %s, expected %s", c->text, tw_client_init_status_name(status),
                           tw_client_init_status_name(c->status)));
        TW_ASSERT_MSG(parsed == c->count, text("addresses '%s': %u parsed, expected %u", c->text,
                                               parsed, c->count));
        if (status != tw_client_init_ok) continue;
        char first[TW_ADDRESS_TEXT_SIZE];
        char last[TW_ADDRESS_TEXT_SIZE];
        address_text(&addresses[0], first, sizeof(first));
        address_text(&addresses[parsed - 1], last, sizeof(last));
        TW_ASSERT_MSG(strcmp(first, c->first) == 0 && strcmp(last, c->last) == 0,
                      text("addresses '%s': first %s last %s, expected %s and %s", c->text, first,
                           last, c->first, c->last));
    }
    uint32_t parsed = 99;
    tw_address addresses[TW_CLIENT_ADDRESSES_MAX];
    TW_ASSERT(tw_client_addresses_parse(NULL, addresses, &parsed) == tw_client_init_address_invalid);
    TW_ASSERT(parsed == 0);
}

/* ---- 2. misuse ------------------------------------------------------------------------------ */

static void case_misuse(void) {
    tw_test_waiter waiter = {0};
    static tw_test_packet p;
    tw_test_packet_init(&p, &waiter, 1, tw_operation_echo, 1);
    uintptr_t context = 0;
    /* NULL, zeroed and garbage handles. */
    TW_ASSERT(tw_client_submit(NULL, &p.packet) == tw_client_invalid);
    TW_ASSERT(tw_client_deinit(NULL) == tw_client_invalid);
    TW_ASSERT(tw_client_completion_context(NULL, &context) == tw_client_invalid);
    tw_client zeroed;
    memset(&zeroed, 0, sizeof(zeroed));
    TW_ASSERT(tw_client_submit(&zeroed, &p.packet) == tw_client_invalid);
    TW_ASSERT(tw_client_deinit(&zeroed) == tw_client_invalid);
    TW_ASSERT(tw_client_completion_context(&zeroed, &context) == tw_client_invalid);
    tw_client garbage;
    memset(&garbage, 0xab, sizeof(garbage));
    TW_ASSERT(tw_client_submit(&garbage, &p.packet) == tw_client_invalid);
    TW_ASSERT(tw_client_deinit(&garbage) == tw_client_invalid);
    /* Failed inits leave the handle invalid (even one that held garbage). */
    tw_client client;
    memset(&client, 0xab, sizeof(client));
    TW_ASSERT(tw_client_init(&client, cluster, "nope", 1, tw_test_packet_completed, NULL) ==
              tw_client_init_address_invalid);
    TW_ASSERT(tw_client_submit(&client, &p.packet) == tw_client_invalid);
    TW_ASSERT(tw_client_init(&client, cluster, "1,2,3,4,5,6,7", 1, tw_test_packet_completed, NULL) ==
              tw_client_init_address_limit_exceeded);
    TW_ASSERT(tw_client_deinit(&client) == tw_client_invalid);
    tw_client_options bad = {.message_size_max = TW_CLIENT_MESSAGE_SIZE_MIN - 1};
    TW_ASSERT(tw_client_options_check(&bad) != NULL);
    TW_ASSERT(tw_client_init(&client, cluster, "3000", 1, tw_test_packet_completed, &bad) ==
              tw_client_init_options_invalid);
    bad = (tw_client_options){.backoff_min_ns = 2, .backoff_max_ns = 1};
    TW_ASSERT(tw_client_init(&client, cluster, "3000", 1, tw_test_packet_completed, &bad) ==
              tw_client_init_options_invalid);
    TW_ASSERT(tw_client_init(&client, cluster, "3000", 1, NULL, NULL) == tw_client_init_unexpected);
    TW_ASSERT(tw_client_completion_context(&client, &context) == tw_client_invalid);
    /* A good init (nothing listens: the client keeps trying), then deinit twice. */
    tw_client_options options = test_options();
    TW_ASSERT(tw_client_init(&client, cluster, ADDRESS_REFUSED, 77, tw_test_packet_completed,
                             &options) == tw_client_init_ok);
    TW_ASSERT(tw_client_completion_context(&client, &context) == tw_client_ok && context == 77);
    TW_ASSERT(tw_client_completion_context(&client, NULL) == tw_client_invalid);
    TW_ASSERT(tw_client_submit(&client, NULL) == tw_client_invalid);
    TW_ASSERT(tw_client_deinit(&client) == tw_client_ok);
    TW_ASSERT(tw_client_deinit(&client) == tw_client_invalid);
    TW_ASSERT(tw_client_submit(&client, &p.packet) == tw_client_invalid);
    TW_ASSERT(tw_client_completion_context(&client, &context) == tw_client_invalid);
    TW_ASSERT(p.completions == 0); /* refused submits never complete */
}

/* ---- 3. statuses ------------------------------------------------------------------------------ */

#define STATUS_PACKETS 19u
static tw_test_packet status_packets[STATUS_PACKETS];

static void case_statuses(void) {
    tw_test_server server;
    tw_server_options so = server_options(8);
    tw_test_server_start(&server, &so);
    tw_client_options options = test_options();
    tw_client client;
    client_start(&client, &server.address, &options);
    tw_test_waiter waiter = {0};
    uint32_t accounts_max = tw_operation_events_max(tw_operation_create_accounts, MESSAGE_SIZE_MAX);
    uint32_t transfers_max = tw_operation_events_max(tw_operation_create_transfers, MESSAGE_SIZE_MAX);
    uint32_t ids_max = tw_operation_events_max(tw_operation_lookup_accounts, MESSAGE_SIZE_MAX);
    TW_ASSERT(accounts_max == 62 && transfers_max == 49 && ids_max == 62);
    struct {
        uint8_t operation;
        uint32_t size;
        tw_packet_status status;
    } cases[STATUS_PACKETS] = {
        {0, 0, tw_packet_invalid_operation},
        {6, 16, tw_packet_invalid_operation},
        {255, 0, tw_packet_invalid_operation},
        {tw_operation_create_accounts, 63, tw_packet_invalid_data_size},
        {tw_operation_create_transfers, 81, tw_packet_invalid_data_size},
        {tw_operation_lookup_accounts, 17, tw_packet_invalid_data_size},
        {tw_operation_lookup_transfers, 40, tw_packet_invalid_data_size},
        {tw_operation_create_accounts, (accounts_max + 1) * 64, tw_packet_too_much_data},
        {tw_operation_create_transfers, (transfers_max + 1) * 80, tw_packet_too_much_data},
        {tw_operation_lookup_accounts, (ids_max + 1) * 16, tw_packet_too_much_data},
        {tw_operation_echo, BODY_MAX + 1, tw_packet_too_much_data},
        {tw_operation_create_accounts, 0, tw_packet_ok},
        {tw_operation_create_accounts, accounts_max * 64, tw_packet_ok},
        {tw_operation_lookup_accounts, ids_max * 16, tw_packet_ok},
        {tw_operation_lookup_transfers, 0, tw_packet_ok},
        {tw_operation_echo, BODY_MAX, tw_packet_ok},
        {tw_operation_echo, 0, tw_packet_ok},
        {tw_operation_create_transfers, transfers_max * 80, tw_packet_ok},
        {tw_operation_create_accounts, 64, tw_packet_invalid_data_size}, /* data NULL */
    };
    for (uint32_t i = 0; i < STATUS_PACKETS; i++) {
        tw_test_packet *p = &status_packets[i];
        TW_ASSERT(cases[i].size <= TW_TEST_PACKET_DATA_MAX);
        tw_test_packet_init(p, &waiter, i, cases[i].operation, cases[i].size);
        for (uint32_t b = 0; b < cases[i].size; b++) p->data[b] = (uint8_t)(b * 7u + i);
        if (cases[i].operation == tw_operation_create_accounts && cases[i].status == tw_packet_ok) {
            for (uint32_t e = 0; e < cases[i].size / 64; e++) put_account(p, e, account_event(1000 + e, 1, 1, 0));
        }
        if (i == STATUS_PACKETS - 1) p->packet.data = NULL;
        tw_test_packet_submit(&client, p);
    }
    tw_test_wait(&waiter, STATUS_PACKETS, "statuses");
    for (uint32_t i = 0; i < STATUS_PACKETS; i++) {
        tw_test_packet_expect(&status_packets[i], cases[i].status, "statuses");
    }
    /* ok at the limits: 62 accounts created (no failures), 62 lookups of them (all found),
     * the 3968-byte echo came back whole, the transfers all failed (no such accounts). */
    TW_ASSERT(status_packets[11].result_size == 0 && status_packets[12].result_size == 0);
    TW_ASSERT(status_packets[13].result_size == 0 || status_packets[13].result_size == 62 * 64);
    TW_ASSERT(status_packets[15].result_size == BODY_MAX &&
              memcmp(status_packets[15].result, status_packets[15].data, BODY_MAX) == 0);
    TW_ASSERT(status_packets[17].result_size == transfers_max * sizeof(tw_create_result));
    client_stop(&client);

    /* Releases outside the server's range: every packet completes with the reason. */
    for (uint32_t r = 0; r < 2; r++) {
        tw_client_options o = test_options();
        o.release = r == 0 ? RELEASE_MIN - 1 : RELEASE_MAX + 1;
        tw_packet_status want = r == 0 ? tw_packet_client_release_too_low : tw_packet_client_release_too_high;
        client_start(&client, &server.address, &o);
        tw_test_waiter w = {0};
        for (uint32_t i = 0; i < 3; i++) {
            tw_test_packet_init(&status_packets[i], &w, i, tw_operation_echo, 8);
            tw_test_packet_submit(&client, &status_packets[i]);
        }
        tw_test_wait(&w, 3, "release out of range");
        for (uint32_t i = 0; i < 3; i++) tw_test_packet_expect(&status_packets[i], want, "release");
        /* Later packets too; an invalid operation is still named as such (checked first). */
        tw_test_packet_init(&status_packets[3], &w, 3, tw_operation_echo, 8);
        tw_test_packet_init(&status_packets[4], &w, 4, 0, 0);
        tw_test_packet_submit(&client, &status_packets[3]);
        tw_test_packet_submit(&client, &status_packets[4]);
        tw_test_wait(&w, 5, "release out of range, later packets");
        tw_test_packet_expect(&status_packets[3], want, "release, later");
        tw_test_packet_expect(&status_packets[4], tw_packet_invalid_operation, "release, later");
        client_stop(&client);
    }
    tw_test_server_stop(&server);
    TW_ASSERT(server.stats.sessions_evicted[tw_eviction_client_release_too_low] +
                  server.stats.evictions_sent[tw_eviction_client_release_too_low] >= 1);
    TW_ASSERT(server.stats.evictions_sent[tw_eviction_client_release_too_high] >= 1);
    TW_ASSERT(server.stats.registrations == 1);
}

/* ---- 4. batching ------------------------------------------------------------------------------- */

#define BATCH_SET_MAX 16u
typedef struct batch_set {
    tw_client client;
    tw_test_waiter waiter;
    tw_test_packet trigger;
    tw_test_packet packets[BATCH_SET_MAX];
    uint32_t count;
} batch_set;

static batch_set batch;

/* In the trigger's callback, on the IO thread: every packet is submitted before the client
 * gets to look, so they all meet one request in flight (or none). */
static void submit_all(tw_test_packet *trigger) {
    batch_set *set = trigger->context;
    for (uint32_t i = 0; i < set->count; i++) tw_test_packet_submit(&set->client, &set->packets[i]);
}

/* Packet i of the create batch: BATCH_ACCOUNTS_PER_PACKET accounts; the first and the last
 * fail in even packets (id 0, code 0), one in the middle in odd ones (ledger 0). */
static uint32_t batch_expected(uint32_t i, tw_create_result *out) {
    uint32_t n = 0;
    if (i % 2 == 0) {
        out[n++] = (tw_create_result){0, tw_create_account_id_must_not_be_zero};
        out[n++] = (tw_create_result){BATCH_ACCOUNTS_PER_PACKET - 1, tw_create_account_code_must_not_be_zero};
    } else {
        out[n++] = (tw_create_result){1, tw_create_account_ledger_must_not_be_zero};
    }
    return n;
}

static void batch_fill(tw_test_packet *p, uint32_t i, uint64_t id_base) {
    for (uint32_t e = 0; e < BATCH_ACCOUNTS_PER_PACKET; e++) {
        tw_account a = account_event(id_base + i * 100u + e, 1, 1, 0);
        if (i % 2 == 0 && e == 0) a.id = (tw_u128){0, 0};
        if (i % 2 == 0 && e == BATCH_ACCOUNTS_PER_PACKET - 1) a.code = 0;
        if (i % 2 == 1 && e == 1) a.ledger = 0;
        put_account(p, e, a);
    }
}

static void batch_check_creates(const batch_set *set, const char *what) {
    for (uint32_t i = 0; i < set->count; i++) {
        const tw_test_packet *p = &set->packets[i];
        tw_test_packet_expect(p, tw_packet_ok, what);
        tw_create_result want[BATCH_ACCOUNTS_PER_PACKET];
        uint32_t n = batch_expected(i, want);
        TW_ASSERT_MSG(p->result_size == n * sizeof(tw_create_result),
                      text("%s: packet %u of %u got %u results, expected %u", what, i + 1, set->count,
                           p->result_size / (uint32_t)sizeof(tw_create_result), n));
        for (uint32_t r = 0; r < n; r++) {
            tw_create_result got;
            memcpy(&got, p->result + r * sizeof(got), sizeof(got));
            TW_ASSERT_MSG(got.index == want[r].index && got.result == want[r].result,
                          text("%s: packet %u of %u: result %u is {index %u, %s}, expected {index %u, "
                               "%s}",
                               what, i + 1, set->count, r, got.index,
                               tw_create_account_result_name((tw_create_account_result)got.result),
                               want[r].index,
                               tw_create_account_result_name((tw_create_account_result)want[r].result)));
        }
    }
}

/* Runs a set: the trigger (an echo) completes, its callback submits the set; returns the
 * requests the server executed for the set (not the trigger). */
static uint64_t batch_run(const tw_client_options *options, const char *what) {
    tw_test_server server;
    tw_server_options so = server_options(8);
    tw_test_server_start(&server, &so);
    client_start(&batch.client, &server.address, options);
    batch.waiter = (tw_test_waiter){0};
    tw_test_packet_init(&batch.trigger, &batch.waiter, 0, tw_operation_echo, 1);
    batch.trigger.on_complete = submit_all;
    batch.trigger.context = &batch;
    tw_test_packet_submit(&batch.client, &batch.trigger);
    tw_test_wait(&batch.waiter, 1 + batch.count, what);
    tw_test_packet_expect(&batch.trigger, tw_packet_ok, what);
    client_stop(&batch.client);
    tw_test_server_stop(&server);
    TW_ASSERT(server.stats.registrations == 1 && server.stats.requests_executed >= 1);
    return server.stats.requests_executed - 1;
}

static void batch_prepare(uint32_t count) {
    TW_ASSERT(count <= BATCH_SET_MAX);
    batch.count = count;
    for (uint32_t i = 0; i < count; i++) {
        batch.packets[i] = (tw_test_packet){0};
    }
}

static void case_batching(void) {
    tw_client_options options = test_options();
    /* Creates: the first goes alone (nothing in flight), the other nine in one request. */
    for (uint32_t off = 0; off < 2; off++) {
        batch_prepare(BATCH_PACKETS);
        for (uint32_t i = 0; i < BATCH_PACKETS; i++) {
            tw_test_packet_init(&batch.packets[i], &batch.waiter, i + 1, tw_operation_create_accounts,
                                BATCH_ACCOUNTS_PER_PACKET * sizeof(tw_account));
            batch_fill(&batch.packets[i], i, 10000);
        }
        options.batching_off = off == 1;
        uint64_t requests = batch_run(&options, off ? "creates, batching off" : "creates, batching on");
        uint64_t want = off ? BATCH_PACKETS : 2;
        TW_ASSERT_MSG(requests == want, text("creates (batching %s): %" PRIu64 " requests for %u "
                                             "packets, expected %" PRIu64,
                                             off ? "off" : "on", requests, BATCH_PACKETS, want));
        batch_check_creates(&batch, off ? "creates, batching off" : "creates, batching on");
    }
    options.batching_off = false;

    /* Echo: each packet its own bytes back, all but the first in one request. */
    batch_prepare(ECHO_PACKETS);
    for (uint32_t i = 0; i < ECHO_PACKETS; i++) {
        uint32_t size = i == 3 ? 0 : 17u + i * 61u;
        tw_test_packet_init(&batch.packets[i], &batch.waiter, i + 1, tw_operation_echo, size);
        for (uint32_t b = 0; b < size; b++) batch.packets[i].data[b] = (uint8_t)(i * 31u + b);
    }
    uint64_t requests = batch_run(&options, "echo");
    TW_ASSERT_MSG(requests == 2, text("echo: %" PRIu64 " requests for %u packets, expected 2",
                                      requests, ECHO_PACKETS));
    for (uint32_t i = 0; i < ECHO_PACKETS; i++) {
        const tw_test_packet *p = &batch.packets[i];
        tw_test_packet_expect(p, tw_packet_ok, "echo");
        TW_ASSERT_MSG(p->result_size == p->packet.data_size &&
                          memcmp(p->result, p->data, p->result_size) == 0,
                      text("echo: packet %u got %u bytes back, not its own %u", i + 1, p->result_size,
                           p->packet.data_size));
    }

    /* Lookups are never batched. */
    batch_prepare(LOOKUP_PACKETS);
    for (uint32_t i = 0; i < LOOKUP_PACKETS; i++) {
        tw_test_packet_init(&batch.packets[i], &batch.waiter, i + 1, tw_operation_lookup_accounts, 32);
    }
    requests = batch_run(&options, "lookups");
    TW_ASSERT_MSG(requests == LOOKUP_PACKETS, text("lookups: %" PRIu64 " requests for %u packets",
                                                   requests, LOOKUP_PACKETS));
    for (uint32_t i = 0; i < LOOKUP_PACKETS; i++) {
        tw_test_packet_expect(&batch.packets[i], tw_packet_ok, "lookups");
        TW_ASSERT(batch.packets[i].result_size == 0); /* no such accounts */
    }

    /* The linked-chain rule: A alone (first), then B closed chain, C single, D empty,
     * E all linked (never batched), F single: requests A, {B C D F}, {E}. */
    batch_prepare(6);
    const uint32_t events[6] = {1, 3, 1, 0, 3, 1};
    for (uint32_t i = 0; i < 6; i++) {
        tw_test_packet *p = &batch.packets[i];
        tw_test_packet_init(p, &batch.waiter, i + 1, tw_operation_create_accounts, events[i] * 64);
        for (uint32_t e = 0; e < events[i]; e++) {
            bool linked = (i == 1 && e < 2) || i == 4;
            put_account(p, e, account_event(20000 + i * 10u + e, 1, 1, linked ? tw_account_linked : 0));
        }
    }
    requests = batch_run(&options, "linked chains");
    TW_ASSERT_MSG(requests == 3, text("linked chains: %" PRIu64 " requests, expected 3", requests));
    for (uint32_t i = 0; i < 6; i++) {
        const tw_test_packet *p = &batch.packets[i];
        tw_test_packet_expect(p, tw_packet_ok, "linked chains");
        uint32_t want = i == 4 ? 3 : 0; /* E's chain is open at its end: all three fail */
        TW_ASSERT_MSG(p->result_size == want * sizeof(tw_create_result),
                      text("linked chains: packet %u got %u results, expected %u", i + 1,
                           p->result_size / 8u, want));
    }
    tw_create_result e_results[3];
    memcpy(e_results, batch.packets[4].result, sizeof(e_results));
    TW_ASSERT(e_results[0].index == 0 && e_results[0].result == tw_create_account_linked_event_failed);
    TW_ASSERT(e_results[1].index == 1 && e_results[1].result == tw_create_account_linked_event_failed);
    TW_ASSERT(e_results[2].index == 2 && e_results[2].result == tw_create_account_linked_event_chain_open);
}

/* ---- 5. eviction (a scripted server) ------------------------------------------------------------- */

static tw_peer peer;
static tw_test_packet evict_packets[4];

static void peer_register(tw_peer *p, uint64_t session) {
    TW_ASSERT_MSG(tw_peer_read(p, "the register"), "the client closed before registering");
    TW_ASSERT_MSG(p->last.header.command == tw_command_register && p->last.header.request == 0,
                  "the client's first message is not its register");
    tw_peer_reply(p, session, session, NULL, 0);
}

static void case_eviction(void) {
    tw_client client;
    tw_client_options options = test_options();
    /* Queued: the register is answered with an eviction. */
    tw_peer_listen(&peer, cluster);
    client_start(&client, &peer.address, &options);
    tw_test_waiter waiter = {0};
    for (uint32_t i = 0; i < 2; i++) {
        tw_test_packet_init(&evict_packets[i], &waiter, i + 1, tw_operation_echo, 4);
        tw_test_packet_submit(&client, &evict_packets[i]);
    }
    tw_peer_accept(&peer);
    TW_ASSERT(tw_peer_read(&peer, "the register"));
    tw_peer_evict(&peer, tw_eviction_client_release_too_high);
    tw_test_wait(&waiter, 2, "eviction of queued packets");
    for (uint32_t i = 0; i < 2; i++) {
        tw_test_packet_expect(&evict_packets[i], tw_packet_client_release_too_high, "queued at eviction");
    }
    TW_ASSERT_MSG(!tw_peer_read(&peer, "the client to close"), "the client sent after its eviction");
    client_stop(&client);
    tw_peer_close(&peer);

    /* In flight (1), pending (2: an echo root, 3: a lookup root) and later (4). */
    tw_peer_listen(&peer, cluster);
    client_start(&client, &peer.address, &options);
    waiter = (tw_test_waiter){0};
    tw_test_packet_init(&evict_packets[0], &waiter, 1, tw_operation_create_accounts, 64);
    put_account(&evict_packets[0], 0, account_event(1, 1, 1, 0));
    tw_test_packet_init(&evict_packets[1], &waiter, 2, tw_operation_echo, 4);
    tw_test_packet_init(&evict_packets[2], &waiter, 3, tw_operation_lookup_accounts, 16);
    for (uint32_t i = 0; i < 3; i++) tw_test_packet_submit(&client, &evict_packets[i]);
    tw_peer_accept(&peer);
    peer_register(&peer, 5);
    TW_ASSERT(tw_peer_read(&peer, "request 1"));
    TW_ASSERT(peer.last.header.request == 1 && peer.last.header.session == 5 &&
              peer.last.header.operation == tw_operation_create_accounts);
    tw_peer_evict(&peer, tw_eviction_too_many_clients);
    tw_test_wait(&waiter, 3, "eviction with packets in flight and pending");
    for (uint32_t i = 0; i < 3; i++) {
        tw_test_packet_expect(&evict_packets[i], tw_packet_client_evicted, "in flight or pending at eviction");
    }
    tw_test_packet_init(&evict_packets[3], &waiter, 4, tw_operation_create_accounts, 0);
    tw_test_packet_submit(&client, &evict_packets[3]);
    tw_test_wait(&waiter, 4, "a packet after the eviction");
    tw_test_packet_expect(&evict_packets[3], tw_packet_client_evicted, "after the eviction");
    TW_ASSERT_MSG(!tw_peer_read(&peer, "the client to close"), "the client sent after its eviction");
    client_stop(&client);
    tw_peer_close(&peer);
}

/* ---- 6. deinit and callbacks ---------------------------------------------------------------------- */

static tw_test_packet deinit_packets[4];
static tw_client callback_client;

static void in_callback(tw_test_packet *p) {
    /* On the IO thread: deinit refuses, the context is there, a submit works. */
    TW_ASSERT_MSG(tw_client_deinit(&callback_client) == tw_client_on_io_thread,
                  "deinit from a callback did not return on_io_thread");
    uintptr_t context = 0;
    TW_ASSERT(tw_client_completion_context(&callback_client, &context) == tw_client_ok && context == 42);
    if (p->number == 1) tw_test_packet_submit(&callback_client, &deinit_packets[1]);
}

static void case_deinit(void) {
    tw_client client;
    tw_client_options options = test_options();
    /* Queued: nothing listens at either address, so the client keeps trying. */
    TW_ASSERT(tw_client_init(&client, cluster, ADDRESS_REFUSED ",127.0.0.1:2", 42,
                             tw_test_packet_completed, &options) == tw_client_init_ok);
    tw_test_waiter waiter = {0};
    for (uint32_t i = 0; i < 3; i++) {
        tw_test_packet_init(&deinit_packets[i], &waiter, i + 1, tw_operation_echo, 2);
        tw_test_packet_submit(&client, &deinit_packets[i]);
    }
    /* Deinit while the client connects, closes or backs off (the refusals take a while). */
    tw_test_sleep(tw_random_u64() % DEINIT_DELAY_NS_MAX);
    client_stop(&client); /* returns after every packet completed */
    TW_ASSERT(tw_atomic_load_u32(&waiter.completed, tw_acquire) == 3);
    for (uint32_t i = 0; i < 3; i++) {
        tw_test_packet_expect(&deinit_packets[i], tw_packet_client_shutdown, "deinit, queued");
    }

    /* In flight (1) and pending (2 and 3 batched, 4 alone): a server that never replies. */
    tw_peer_listen(&peer, cluster);
    client_start(&client, &peer.address, &options);
    waiter = (tw_test_waiter){0};
    for (uint32_t i = 0; i < 4; i++) {
        tw_test_packet_init(&deinit_packets[i], &waiter, i + 1,
                            i == 3 ? tw_operation_lookup_transfers : tw_operation_echo, 16);
        tw_test_packet_submit(&client, &deinit_packets[i]);
    }
    tw_peer_accept(&peer);
    peer_register(&peer, 9);
    TW_ASSERT(tw_peer_read(&peer, "request 1"));
    TW_ASSERT(peer.last.header.request == 1 && peer.last.header.size == TW_HEADER_SIZE + 16);
    client_stop(&client);
    TW_ASSERT(tw_atomic_load_u32(&waiter.completed, tw_acquire) == 4);
    for (uint32_t i = 0; i < 4; i++) {
        tw_test_packet_expect(&deinit_packets[i], tw_packet_client_shutdown, "deinit, in flight or pending");
    }
    TW_ASSERT_MSG(!tw_peer_read(&peer, "the client to close"), "the client sent after deinit");
    tw_peer_close(&peer);

    /* From a callback: deinit refuses with on_io_thread, submit works. */
    tw_test_server server;
    tw_server_options so = server_options(8);
    tw_test_server_start(&server, &so);
    char address[TW_ADDRESS_TEXT_SIZE];
    address_text(&server.address, address, sizeof(address));
    TW_ASSERT(tw_client_init(&callback_client, cluster, address, 42, tw_test_packet_completed,
                             &options) == tw_client_init_ok);
    waiter = (tw_test_waiter){0};
    for (uint32_t i = 0; i < 2; i++) {
        tw_test_packet_init(&deinit_packets[i], &waiter, i + 1, tw_operation_echo, 3);
        deinit_packets[i].on_complete = in_callback;
    }
    tw_test_packet_submit(&callback_client, &deinit_packets[0]);
    tw_test_wait(&waiter, 2, "a submit from a callback");
    tw_test_packet_expect(&deinit_packets[0], tw_packet_ok, "callback");
    tw_test_packet_expect(&deinit_packets[1], tw_packet_ok, "submitted from a callback");
    client_stop(&callback_client);
    tw_test_server_stop(&server);
    TW_ASSERT(server.stats.requests_executed == 2);
}

/* ---- 7. retries (a scripted server) ----------------------------------------------------------- */

static tw_test_packet retry_packets[2];

static void case_retries(void) {
    tw_client client;
    tw_client_options options = test_options();
    options.request_timeout_ns = 200 * MS_NS;
    tw_peer_listen(&peer, cluster);
    char address[2 * TW_ADDRESS_TEXT_SIZE];
    char listen[TW_ADDRESS_TEXT_SIZE];
    address_text(&peer.address, listen, sizeof(listen));
    snprintf(address, sizeof(address), "%s,%s", ADDRESS_REFUSED, listen);
    /* The first address refuses: the client rotates to the second. */
    TW_ASSERT(tw_client_init(&client, cluster, address, 42, tw_test_packet_completed, &options) ==
              tw_client_init_ok);
    tw_test_waiter waiter = {0};
    tw_peer_accept(&peer);
    peer_register(&peer, 3);
    tw_test_packet_init(&retry_packets[0], &waiter, 1, tw_operation_create_accounts, 64);
    put_account(&retry_packets[0], 0, account_event(77, 1, 1, 0));
    tw_test_packet_submit(&client, &retry_packets[0]);
    TW_ASSERT(tw_peer_read(&peer, "request 1"));
    tw_header first = peer.last.header;
    TW_ASSERT(first.request == 1 && first.session == 3);
    /* The connection drops with request 1 in flight: it comes again, on a new connection
     * (after the refusing address once more), with the same number and bytes. */
    tw_peer_close_conn(&peer);
    tw_peer_accept(&peer);
    TW_ASSERT(tw_peer_read(&peer, "request 1 again after a closed connection"));
    TW_ASSERT_MSG(peer.last.header.request == first.request,
                  text("retry: request %" PRIu64 " came again as request %" PRIu64 " on a new "
                       "connection",
                       first.request, peer.last.header.request));
    TW_ASSERT_MSG(peer.last.header.checksum_body.low == first.checksum_body.low &&
                      peer.last.header.checksum.low == first.checksum.low,
                  "retry: the request came again with other bytes");
    tw_peer_reply(&peer, 3, 10, NULL, 0);
    tw_test_wait(&waiter, 1, "a retried request");
    tw_test_packet_expect(&retry_packets[0], tw_packet_ok, "retried after a closed connection");

    /* No reply to request 2: the timeout closes the connection and it comes again. */
    tw_test_packet_init(&retry_packets[1], &waiter, 2, tw_operation_echo, 5);
    tw_test_packet_submit(&client, &retry_packets[1]);
    TW_ASSERT(tw_peer_read(&peer, "request 2"));
    tw_header second = peer.last.header;
    TW_ASSERT(second.request == 2);
    TW_ASSERT_MSG(!tw_peer_read(&peer, "the client to give up on the connection"),
                  "the client sent something else while waiting for a reply");
    tw_peer_accept(&peer);
    TW_ASSERT(tw_peer_read(&peer, "request 2 again after a timeout"));
    TW_ASSERT_MSG(peer.last.header.request == second.request,
                  text("retry: request %" PRIu64 " came again as request %" PRIu64 " after a timeout",
                       second.request, peer.last.header.request));
    tw_peer_reply(&peer, 3, 11, retry_packets[1].data, 5);
    tw_test_wait(&waiter, 2, "a request retried after a timeout");
    tw_test_packet_expect(&retry_packets[1], tw_packet_ok, "retried after a timeout");
    TW_ASSERT(retry_packets[1].result_size == 5 && memcmp(retry_packets[1].result, retry_packets[1].data, 5) == 0);
    client_stop(&client);
    TW_ASSERT(peer.accepted == 3);
    tw_peer_close(&peer);
}

/* ---- 8. memory after deinit ------------------------------------------------------------------ */

typedef struct race {
    tw_client *client;
    tw_test_packet *packets; /* RACE_PACKETS */
    tw_test_waiter waiter;
    tw_atomic_u32 submitted; /* accepted by submit */
} race;

static void race_submitter(void *arg) {
    race *r = arg;
    for (uint32_t i = 0; i < RACE_PACKETS; i++) {
        tw_test_packet_init(&r->packets[i], &r->waiter, i, tw_operation_echo, 8);
        if (tw_client_submit(r->client, &r->packets[i].packet) != tw_client_ok) return;
        (void)tw_atomic_fetch_add_u32(&r->submitted, 1, tw_relaxed);
    }
}

static void case_memory_after_deinit(void) {
    tw_test_server server;
    tw_server_options so = server_options(8);
    tw_test_server_start(&server, &so);
    tw_client_options options = test_options();
    for (uint32_t round = 0; round < race_rounds; round++) {
        race *r = tw_allocate(sizeof(*r));
        TW_ASSERT(r != NULL);
        r->client = tw_allocate(sizeof(tw_client));
        r->packets = tw_allocate(sizeof(tw_test_packet) * RACE_PACKETS);
        TW_ASSERT(r->client != NULL && r->packets != NULL);
        client_start(r->client, &server.address, &options);
        tw_thread thread;
        TW_ASSERT(tw_thread_spawn(&thread, NULL, race_submitter, r) == tw_os_ok);
        client_stop(r->client); /* while the other thread submits */
        /* Every packet accepted by submit completed by the time deinit returned... */
        uint32_t completed = tw_atomic_load_u32(&r->waiter.completed, tw_acquire);
        TW_ASSERT(tw_thread_join(thread) == tw_os_ok);
        uint32_t submitted = tw_atomic_load_u32(&r->submitted, tw_relaxed);
        TW_ASSERT_MSG(completed == submitted,
                      text("deinit returned with %u of %u submitted packets completed", completed,
                           submitted));
        /* ...and nothing touches the handle or the packets after it: free them now (a late
         * touch by the IO thread is a use-after-free under ASan). */
        tw_free(r->packets);
        tw_free(r->client);
        tw_free(r);
    }
    tw_test_server_stop(&server);
}

/* ---- the run ---------------------------------------------------------------------------------- */

static void client_main(void *arg) {
    (void)arg;
    tw_test_phase("client: addresses");
    case_addresses();
    tw_test_phase("client: misuse");
    case_misuse();
    tw_test_phase("client: statuses");
    case_statuses();
    tw_test_phase("client: batching");
    case_batching();
    tw_test_phase("client: eviction");
    case_eviction();
    tw_test_phase("client: deinit");
    case_deinit();
    tw_test_phase("client: retries");
    case_retries();
    tw_test_phase("client: memory_after_deinit");
    case_memory_after_deinit();
}

static void *prepare(tw_test_build build) {
    race_rounds = build == tw_test_build_real ? RACE_ROUNDS_REAL : RACE_ROUNDS_SIM;
    return NULL;
}

int main(int argc, char **argv) {
    tw_test_case test = {.name = "client", .real_uses_io_uring = true, .prepare = prepare, .main_fn = client_main,
                         .sim_faults_off = true};
    return tw_test_main(argc, argv, &test);
}
