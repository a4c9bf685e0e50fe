/* twin harness: the server under faults (workload_server.c) as a twin-sim workload. Sim only.
 *
 * From the seed, unless given: the number of clients, the requests each sends, and whether
 * the network flips bits. The network has every other fault (partial sends and receives,
 * latency spikes, resets, refused and timed-out connects, partitions, half-dead
 * connections), as in tests/server_faults_test.c. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <twin/assert.h>
#include <twin/sim.h>

#include "workload.h"
#include "workload_server.h"

enum {
    server_option_clients,
    server_option_requests,
    server_option_corruption,
    server_options_count,
};

static const tw_workload_option server_options[server_options_count] = {
    [server_option_clients] = {"clients", 1, TW_WORKLOAD_SERVER_CLIENTS_MAX,
                               "clients that register and send requests, besides the one that "
                               "looks up every account at the end (drawn 1..4)"},
    [server_option_requests] = {"requests", 1, TW_WORKLOAD_SERVER_REQUESTS_MAX,
                                "requests per client, create_accounts and echo alternating "
                                "(drawn 2..30)"},
    [server_option_corruption] = {"corruption", 0, 1,
                                  "1: the network also flips bits, which the checksums must "
                                  "catch (drawn: 1 in 8 seeds)"},
};

static void server_draw(uint64_t seed, uint64_t *values, const bool *given) {
    TW_ASSERT(values != NULL && given != NULL);
    if (!given[server_option_clients]) {
        values[server_option_clients] = tw_workload_draw(seed, server_option_clients, 1, 4);
    }
    if (!given[server_option_requests]) {
        values[server_option_requests] = tw_workload_draw(seed, server_option_requests, 2, 30);
    }
    if (!given[server_option_corruption]) {
        values[server_option_corruption] = tw_workload_draw(seed, server_option_corruption, 0, 7) == 0;
    }
}

static void *server_create(const uint64_t *values, tw_sim_options *sim) {
    TW_ASSERT(values != NULL && sim != NULL);
    struct tw_workload_server *workload = calloc(1, sizeof(*workload));
    if (workload == NULL) return NULL;
    tw_workload_server_config config = {
        .clients = (uint32_t)values[server_option_clients],
        .requests = (uint32_t)values[server_option_requests],
        .request_timeout_ns = TW_WORKLOAD_SERVER_REQUEST_TIMEOUT_SIM_NS,
        .corruption_possible = values[server_option_corruption] != 0,
    };
    if (!tw_workload_server_init(workload, &config)) { /* outside the world: kept across runs */
        free(workload);
        return NULL;
    }
    /* Every fault; bit flips only when drawn (the oracle then allows malformed input). */
    sim->net.faults_off = false;
    sim->net.disruptions_off = false;
    sim->net.corruption = config.corruption_possible;
    if (sim->pct_steps_expected == 0) {
        sim->pct_steps_expected = tw_workload_server_steps_expected(workload);
    }
    return workload;
}

static void server_describe(void *state, char *line, size_t line_size) {
    const struct tw_workload_server *workload = state;
    TW_ASSERT(workload != NULL && line_size > 0);
    const tw_workload_server_counts *run = &workload->last;
    if (run->runs == 0) { /* the run failed before its server stopped */
        snprintf(line, line_size, "no counts (the run ended before the server stopped)");
        return;
    }
    uint64_t malformed_server = 0;
    uint64_t malformed_clients = 0;
    for (uint32_t i = 0; i < tw_proto_error_count; i++) {
        malformed_server += run->server_malformed[i];
        malformed_clients += run->clients.malformed[i];
    }
    snprintf(line, line_size,
             "executed=%" PRIu64 " registrations=%" PRIu64 " retries_answered=%" PRIu64
             " ignored=%" PRIu64 " malformed_at_server=%" PRIu64 " malformed_at_clients=%" PRIu64
             " connections=%" PRIu64 " failed_connections=%" PRIu64
             " resent=%" PRIu64 " gave_up=%" PRIu64,
             run->requests_executed, run->registrations, run->retries_answered,
             run->requests_ignored, malformed_server, malformed_clients,
             run->connections_accepted, run->clients.reconnects, run->clients.retries, run->clients.gave_up);
}

static void server_destroy(void *state) {
    struct tw_workload_server *workload = state;
    if (workload == NULL) return;
    tw_workload_server_free(workload);
    free(workload);
}

const tw_workload tw_workload_server = {
    .name = "server",
    .summary = "clients that reconnect and retry against the server under every network "
               "fault; every request executes exactly once, nobody is evicted",
    .options = server_options,
    .options_count = server_options_count,
    .draw = server_draw,
    .create = server_create,
    .run = tw_workload_server_run,
    .check = tw_workload_check_outcome,
    .describe = server_describe,
    .destroy = server_destroy,
};
