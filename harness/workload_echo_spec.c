/* twin harness: the echo workload (workload_echo.c) as a twin-sim workload. Sim only. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <twin/assert.h>

#include "workload.h"
#include "workload_echo.h"

enum { echo_option_clients, echo_option_bytes, echo_option_faults, echo_options_count };
#define ECHO_BYTES_MAX (16u * 1024u * 1024u)
enum { echo_faults_off = 0, echo_faults_mild = 1, echo_faults_all = 2 };

static const tw_workload_option echo_options[echo_options_count] = {
    [echo_option_clients] = {"clients", 1, TW_WORKLOAD_ECHO_CLIENTS_MAX, "client threads (drawn 1..4)"},
    [echo_option_bytes] = {"bytes", 1, ECHO_BYTES_MAX, "bytes each client streams (drawn 1024..131072)"},
    [echo_option_faults] = {"faults", 0, 2,
                            "network faults: 0 none, 1 partial IO and latency, 2 every fault but "
                            "bit flips (which the oracle would catch by design) (drawn 0: 1/8, "
                            "1: 1/4, 2: 5/8)"},
};

static void echo_draw(uint64_t seed, uint64_t *values, const bool *given) {
    TW_ASSERT(values != NULL && given != NULL);
    if (!given[echo_option_clients]) values[echo_option_clients] = tw_workload_draw(seed, echo_option_clients, 1, 4);
    if (!given[echo_option_bytes]) values[echo_option_bytes] = tw_workload_draw(seed, echo_option_bytes, 1024, 131072);
    if (!given[echo_option_faults]) {
        uint64_t f = tw_workload_draw(seed, echo_option_faults, 0, 7);
        values[echo_option_faults] = f == 0 ? echo_faults_off : f <= 2 ? echo_faults_mild : echo_faults_all;
    }
}

static void *echo_create(const uint64_t *values, tw_sim_options *sim) {
    TW_ASSERT(values != NULL && sim != NULL);
    tw_workload_echo *workload = calloc(1, sizeof(*workload));
    if (workload == NULL) return NULL;
    workload->clients = (uint32_t)values[echo_option_clients];
    workload->bytes_per_client = values[echo_option_bytes];
    sim->net.faults_off = values[echo_option_faults] == echo_faults_off;
    sim->net.disruptions_off = values[echo_option_faults] == echo_faults_mild;
    return workload;
}

static void echo_describe(void *state, char *line, size_t line_size) {
    tw_workload_echo *workload = state;
    TW_ASSERT(workload != NULL && line_size > 0);
    snprintf(line, line_size, "clients=%" PRIu32 " bytes_each=%" PRIu64 " connects=%" PRIu32
             " resets=%" PRIu32 " (every byte back in order on every connection not reset)",
             workload->clients, workload->bytes_per_client, workload->connects, workload->resets);
}

const tw_workload tw_workload_echo_spec = {
    .name = "echo",
    .summary = "clients stream bytes to an echo server over TCP under network faults; every "
               "byte comes back once and in order, and both ends see every reset",
    .options = echo_options,
    .options_count = echo_options_count,
    .draw = echo_draw,
    .create = echo_create,
    .run = tw_workload_echo_run,
    .check = tw_workload_check_outcome,
    .describe = echo_describe,
    .destroy = free,
};
