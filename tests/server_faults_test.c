/* The server under network faults: exactly-once execution and robustness, one source for
 * both builds. The workload and its oracle are harness/workload_server.c (which says what
 * it checks and why no eviction is legitimate); this runs it at a scale per build: sim 3
 * clients x 20 requests with every network fault but bit flips (bit flips too with
 * --net-corruption), real 4 clients x 500 requests on loopback, no faults.
 *
 * Counts are printed per run in the real build and for a single sim seed (--seed); a sim
 * sweep prints their totals at exit. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/proto.h>

#include "twin_test.h"
#include "workload_server.h"

/* Workload sizes. */
#define CLIENTS_SIM 3u
#define CLIENTS_REAL 4u
#define REQUESTS_SIM 20u
#define REQUESTS_REAL 500u

static struct tw_workload_server workload;
static bool print_runs;          /* the real build, or a single sim seed */
static bool corruption_possible; /* the sim runner's --net-corruption */

static void print_counts(const char *what, const tw_workload_server_counts *counts) {
    const tw_workload_server_client_counts *clients = &counts->clients;
    printf("server_faults: %s: client connections=%" PRIu64 " reconnects=%" PRIu64 " (", what,
           clients->connections, clients->reconnects);
    for (uint32_t i = 0; i < TW_WORKLOAD_SERVER_FAILURE_KINDS; i++) {
        printf("%s%s=%" PRIu64, i == 0 ? "" : " ", tw_workload_server_failure_name(i),
               clients->failures[i]);
    }
    printf(") retries=%" PRIu64 " stale_replies=%" PRIu64 " gave_up=%" PRIu64 "\n", clients->retries,
           clients->stale_replies, clients->gave_up);
    printf("server_faults: %s: client malformed:", what);
    for (uint32_t i = 1; i < tw_proto_error_count; i++) {
        printf(" %s=%" PRIu64, tw_proto_error_name((tw_proto_error)i), clients->malformed[i]);
    }
    printf("\nserver_faults: %s: server malformed:", what);
    for (uint32_t i = 1; i < tw_proto_error_count; i++) {
        printf(" %s=%" PRIu64, tw_proto_error_name((tw_proto_error)i), counts->server_malformed[i]);
    }
    printf("\nserver_faults: %s: server connections_accepted=%" PRIu64 " retries_answered=%" PRIu64
           " requests_ignored=%" PRIu64 " sends_dropped=%" PRIu64 "\n",
           what, counts->connections_accepted, counts->retries_answered, counts->requests_ignored,
           counts->sends_dropped);
}

/* Called by each run before its final checks, so a failing run's counts are printed too. */
static void print_run(const struct tw_workload_server *w) {
    const tw_workload_server_counts *run = &w->last;
    printf("server_faults: run: clients=%u requests=%u lookups=%" PRIu64 " accounts=%" PRIu64
           " executed=%" PRIu64 " registrations=%" PRIu64 "\n",
           w->config.clients, w->config.requests, run->lookups, run->accounts,
           run->requests_executed, run->registrations);
    print_counts("run", run);
}

static void print_totals_at_exit(void) {
    if (workload.totals.runs == 0) return;
    char what[64];
    snprintf(what, sizeof(what), "totals over %" PRIu64 " runs", workload.totals.runs);
    print_counts(what, &workload.totals);
}

static void *prepare(tw_test_build build) {
    bool real = build == tw_test_build_real;
    tw_workload_server_config config = {
        .clients = real ? CLIENTS_REAL : CLIENTS_SIM,
        .requests = real ? REQUESTS_REAL : REQUESTS_SIM,
        .request_timeout_ns = real ? TW_WORKLOAD_SERVER_REQUEST_TIMEOUT_REAL_NS
                                   : TW_WORKLOAD_SERVER_REQUEST_TIMEOUT_SIM_NS,
        .corruption_possible = corruption_possible,
    };
    /* Outside any run: the storage is kept across the sweep's runs. */
    TW_ASSERT(tw_workload_server_init(&workload, &config));
    if (real) print_runs = true;
    else if (!print_runs) TW_ASSERT(atexit(print_totals_at_exit) == 0);
    if (print_runs) workload.run_ended = print_run;
    return &workload;
}

static uint64_t steps_expected(void *arg) { return tw_workload_server_steps_expected(arg); }

int main(int argc, char **argv) {
    /* The runner owns the flags; two only change what this test prints and expects. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0) print_runs = true;
        if (strcmp(argv[i], "--net-corruption") == 0) corruption_possible = true;
    }
    tw_test_case test = {.name = "server_faults", .real_uses_io_uring = true,
                         .prepare = prepare,
                         .main_fn = tw_workload_server_run,
                         .steps_expected = steps_expected};
    return tw_test_main(argc, argv, &test);
}
