/* The client's resource failures, in the sim: every tw_allocate and every tw_thread_spawn
 * that a client makes, from tw_client_init to tw_client_deinit, fails in turn
 * (tw_sim_resource_options), over seeds and both strategies, each run twice.
 *
 * A world: a server on its own thread, then a client, one echo packet (which must come back
 * ok with its own bytes), deinit, server stop. A fault-free run of the seed first measures
 * the calls made before tw_client_init, during it, and in the whole run:
 *   - after init there must be none: the client allocates and spawns only in init (its
 *     header promises it), so a running client never meets out-of-memory;
 *   - then each call N of init fails in turn: init returns out_of_memory (the client's own
 *     context and buffers, which come first) or system_resources (the loop's memory, or the
 *     IO thread's spawn); the handle is left unusable (submit, completion_context and deinit
 *     return invalid) and the world ends with no block of the run still allocated.
 * The per-call outcome is not hard-coded: the test asserts the order (all out_of_memory
 * before all system_resources), that the first allocation gives out_of_memory, that each
 * status occurs, and prints the totals.
 *
 * Usage: client_init_sim [--seeds N] (default 200 per strategy). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/client.h>
#include <twin/sim.h>

#include "client_packets.h"
#include "driver.h"
#include "server_thread.h"

#define SEEDS_DEFAULT 200u
#define ECHO_SIZE 24u
#define MESSAGE_SIZE_MAX (64u * 1024u)
#define RELEASE 1u
#define COMPLETION_CONTEXT 42u
static const tw_u128 cluster = {.low = 7, .high = 0};

typedef enum fail_kind {
    fail_allocation,
    fail_spawn,
} fail_kind;
static const char *const fail_kind_names[] = {"allocation", "spawn"};

/* What one run saw (written by the world's main fiber). */
typedef struct init_run {
    uint64_t before_init[2]; /* calls of each kind before tw_client_init */
    uint64_t after_init[2];  /* ... and after it returned */
    tw_client_init_status status;
    uint8_t echo_status;
    uint32_t echo_completions;
    bool echo_bytes_right;
} init_run;

static void run_calls(uint64_t calls[2]) {
    calls[fail_allocation] = tw_sim_allocation_calls();
    calls[fail_spawn] = tw_sim_spawn_calls();
}

static void init_main(void *arg) {
    init_run *r = arg;
    tw_test_server server;
    tw_server_options so = {
        .cluster = cluster,
        .connections_max = 4,
        .clients_max = 2,
        .message_size_max = MESSAGE_SIZE_MAX,
        .release_min = RELEASE,
        .release_max = RELEASE,
        .accounts_max = 4,
        .transfers_max = 4,
    };
    tw_test_server_start(&server, &so);
    char address[TW_ADDRESS_TEXT_SIZE];
    tw_address_format(&server.address, address, sizeof(address));

    tw_client client;
    tw_client_options options = {.release = RELEASE, .message_size_max = MESSAGE_SIZE_MAX};
    static tw_test_packet echo; /* static: 8 KiB, more than a fiber's stack should hold */
    tw_test_waiter waiter = {.completed = TW_ATOMIC_INIT(0)};
    tw_test_packet_init(&echo, &waiter, 1, tw_operation_echo, ECHO_SIZE);
    for (uint32_t i = 0; i < ECHO_SIZE; i++) echo.data[i] = (uint8_t)(0xa0 + i);

    run_calls(r->before_init);
    r->status = tw_client_init(&client, cluster, address, COMPLETION_CONTEXT,
                               tw_test_packet_completed, &options);
    run_calls(r->after_init);
    if (r->status != tw_client_init_ok) {
        uintptr_t context = 0;
        TW_ASSERT_MSG(tw_client_submit(&client, &echo.packet) == tw_client_invalid,
                      "submit on a handle whose init failed was accepted");
        TW_ASSERT_MSG(tw_client_completion_context(&client, &context) == tw_client_invalid,
                      "completion_context on a handle whose init failed was accepted");
        TW_ASSERT_MSG(tw_client_deinit(&client) == tw_client_invalid,
                      "deinit on a handle whose init failed was accepted");
    } else {
        tw_test_packet_submit(&client, &echo);
        tw_test_wait(&waiter, 1, "the echo after init");
        TW_ASSERT_MSG(tw_client_deinit(&client) == tw_client_ok, "deinit failed");
        r->echo_status = echo.status;
        r->echo_completions = echo.completions;
        r->echo_bytes_right = echo.result_size == ECHO_SIZE &&
                              memcmp(echo.result, echo.data, ECHO_SIZE) == 0;
    }
    tw_test_server_stop(&server);
}

static int failures;

static void failed(uint64_t seed, tw_sim_strategy strategy, fail_kind kind, uint64_t at,
                   const char *what, const char *detail) {
    printf("FAILED: seed %" PRIu64 " strategy %s, %s %" PRIu64 " failing: %s%s%s\n", seed,
           tw_sim_strategy_name(strategy), fail_kind_names[kind], at, what,
           detail != NULL ? ": " : "", detail != NULL ? detail : "");
    failures++;
}

/* One world, twice (the hashes must match). Returns false when the run failed. */
static bool run_world(uint64_t seed, tw_sim_strategy strategy, fail_kind kind, uint64_t at,
                      init_run *r, tw_sim_report *report) {
    tw_sim_options options = {.seed = seed, .strategy = strategy};
    options.net.faults_off = true; /* the failures are the resources' */
    if (kind == fail_allocation) options.resources.allocation_fail_at = at;
    else options.resources.spawn_fail_at = at;
    uint64_t hash = 0;
    for (int pass = 0; pass < 2; pass++) {
        *r = (init_run){0};
        tw_sim_run(&options, init_main, r, report);
        if (report->outcome != tw_sim_passed) {
            failed(seed, strategy, kind, at, tw_sim_outcome_name(report->outcome), report->message);
            return false;
        }
        if (pass == 1 && report->hash != hash) {
            failed(seed, strategy, kind, at, "the second run's hash differs", NULL);
            return false;
        }
        hash = report->hash;
    }
    if (report->allocations_live != 0) {
        char detail[96];
        snprintf(detail, sizeof(detail), "%" PRIu64 " of %" PRIu64 " blocks", report->allocations_live,
                 report->allocations);
        failed(seed, strategy, kind, at, "blocks left allocated at the end (a leak)", detail);
        return false;
    }
    return true;
}

typedef struct sweep_totals {
    uint64_t runs;
    uint64_t statuses[tw_client_init_options_invalid + 1]; /* by init status, failed calls */
} sweep_totals;

/* Fails each call of kind after the server is up, one per run. */
static void sweep(uint64_t seed, tw_sim_strategy strategy, fail_kind kind, sweep_totals *totals) {
    init_run clean;
    tw_sim_report report;
    if (!run_world(seed, strategy, kind, 0, &clean, &report)) return;
    uint64_t last = kind == fail_allocation ? report.allocations : report.spawns;
    if (clean.status != tw_client_init_ok || clean.echo_completions != 1 ||
        clean.echo_status != tw_packet_ok || !clean.echo_bytes_right) {
        failed(seed, strategy, kind, 0, "the fault-free run's echo did not come back ok once",
               tw_packet_status_name((tw_packet_status)clean.echo_status));
        return;
    }
    if (last != clean.after_init[kind]) {
        char detail[96];
        snprintf(detail, sizeof(detail), "%" PRIu64 " calls after init, %" PRIu64 " before",
                 last - clean.after_init[kind], clean.after_init[kind]);
        failed(seed, strategy, kind, 0, "the client (or the server) called after init", detail);
        return;
    }
    bool seen_system_resources = false;
    for (uint64_t at = clean.before_init[kind] + 1; at <= clean.after_init[kind]; at++) {
        init_run r;
        if (!run_world(seed, strategy, kind, at, &r, &report)) return;
        totals->runs++;
        uint64_t failed_calls = kind == fail_allocation ? report.allocations_failed : report.spawns_failed;
        if (failed_calls != 1) {
            failed(seed, strategy, kind, at, "the call did not fail (the run changed before it)", NULL);
            return;
        }
        /* The run is the fault-free one up to the failing call: init spans the same calls. */
        TW_ASSERT(r.before_init[kind] == clean.before_init[kind]);
        totals->statuses[r.status]++;
        if (r.status == tw_client_init_system_resources) seen_system_resources = true;
        bool expected = r.status == tw_client_init_system_resources ||
                        (r.status == tw_client_init_out_of_memory && !seen_system_resources &&
                         kind == fail_allocation);
        if (!expected) {
            failed(seed, strategy, kind, at, "init returned",
                   tw_client_init_status_name(r.status));
            return;
        }
        if (at == clean.before_init[kind] + 1 && kind == fail_allocation &&
            r.status != tw_client_init_out_of_memory) {
            failed(seed, strategy, kind, at, "the context (the first allocation) gave",
                   tw_client_init_status_name(r.status));
            return;
        }
    }
}

int main(int argc, char **argv) {
    uint64_t seeds = SEEDS_DEFAULT;
    if (argc == 3 && strcmp(argv[1], "--seeds") == 0) {
        if (!tw_driver_parse_u64(argv[2], &seeds) || seeds == 0) {
            fprintf(stderr, "%s: --seeds takes a count >= 1, not '%s'\n", argv[0], argv[2]);
            return 2;
        }
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [--seeds N]   (default %u per strategy)\n", argv[0], SEEDS_DEFAULT);
        return 2;
    }
    static const tw_sim_strategy strategies[] = {tw_sim_strategy_random, tw_sim_strategy_pct};
    for (int kind = fail_allocation; kind <= fail_spawn; kind++) {
        sweep_totals totals = {0};
        for (size_t s = 0; s < sizeof(strategies) / sizeof(strategies[0]); s++) {
            for (uint64_t seed = 1; seed <= seeds; seed++) {
                sweep(seed, strategies[s], (fail_kind)kind, &totals);
            }
        }
        printf("%s failures: %" PRIu64 " runs (each twice), each failing one call of init: "
               "out_of_memory %" PRIu64 ", system_resources %" PRIu64 "; no leak\n",
               fail_kind_names[kind], totals.runs, totals.statuses[tw_client_init_out_of_memory],
               totals.statuses[tw_client_init_system_resources]);
        /* Each kind must reach what it is here for. */
        if (kind == fail_allocation && (totals.statuses[tw_client_init_out_of_memory] == 0 ||
                                        totals.statuses[tw_client_init_system_resources] == 0)) {
            printf("FAILED: the allocation sweep missed out_of_memory or system_resources\n");
            failures++;
        }
        if (kind == fail_spawn && totals.statuses[tw_client_init_system_resources] == 0) {
            printf("FAILED: the spawn sweep never failed the IO thread's spawn\n");
            failures++;
        }
    }
    printf("%s: %d failure%s\n", failures == 0 ? "PASSED" : "FAILED", failures,
           failures == 1 ? "" : "s");
    return failures == 0 ? 0 : 1;
}
