/* twin harness: the workload registry and the option helpers (see workload.h). */
#include "workload.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/pcg.h>

#include "workload_cluster.h"
#include "workload_locker.h"
#include "workload_echo.h"
#include "workload_pool.h"
#include "workload_server.h"

static const tw_workload tw_workload_locker_spec;
static const tw_workload tw_workload_pool_spec;
const tw_workload *const tw_workloads[] = {&tw_workload_cluster, &tw_workload_locker_spec,
                                           &tw_workload_pool_spec, &tw_workload_echo_spec,
                                           &tw_workload_server};
const uint32_t tw_workloads_count = sizeof(tw_workloads) / sizeof(tw_workloads[0]);

const tw_workload *tw_workload_find(const char *name) {
    TW_ASSERT(name != NULL);
    for (uint32_t i = 0; i < tw_workloads_count; i++) {
        if (strcmp(tw_workloads[i]->name, name) == 0) return tw_workloads[i];
    }
    return NULL;
}

int tw_workload_option_find(const tw_workload *workload, const char *name) {
    TW_ASSERT(workload != NULL && name != NULL);
    TW_ASSERT(workload->options_count <= TW_WORKLOAD_OPTIONS_MAX);
    for (uint32_t i = 0; i < workload->options_count; i++) {
        if (strcmp(workload->options[i].name, name) == 0) return (int)i;
    }
    return -1;
}

/* Salted so that each option has its own stream: "twin-opt" plus the salt. */
#define WORKLOAD_DRAW_STREAM 0x7477696e2d6f7074ULL

uint64_t tw_workload_draw(uint64_t seed, uint32_t salt, uint64_t min, uint64_t max) {
    TW_ASSERT(min <= max);
    tw_pcg32 random;
    tw_pcg32_seed(&random, seed, WORKLOAD_DRAW_STREAM + salt);
    uint64_t span = max - min;
    if (span == UINT64_MAX) return ((uint64_t)tw_pcg32_next(&random) << 32) | tw_pcg32_next(&random);
    uint64_t value = min + tw_pcg32_bounded64(&random, span + 1);
    TW_ASSERT(value >= min && value <= max);
    return value;
}

static void format_options(const tw_workload *workload, const uint64_t *values, char *out,
                           size_t out_size, const char *format) {
    TW_ASSERT(workload != NULL && values != NULL && out != NULL && out_size > 0);
    size_t used = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < workload->options_count && used < out_size; i++) {
        int n = snprintf(out + used, out_size - used, format, i == 0 ? "" : " ",
                         workload->options[i].name, values[i]);
        TW_ASSERT(n > 0);
        used += (size_t)n;
    }
    TW_ASSERT_MSG(used < out_size, "workload options: the line is longer than its buffer");
}

void tw_workload_format_values(const tw_workload *workload, const uint64_t *values, char *out,
                               size_t out_size) {
    format_options(workload, values, out, out_size, "%s%s=%" PRIu64);
}

void tw_workload_format_flags(const tw_workload *workload, const uint64_t *values, char *out,
                              size_t out_size) {
    format_options(workload, values, out, out_size, "%s--%s %" PRIu64);
}

const char *tw_workload_verdict_name(tw_workload_verdict verdict) {
    switch (verdict) {
    case tw_workload_passed: return "passed";
    case tw_workload_safety: return "safety";
    case tw_workload_liveness: return "liveness";
    }
    return "unknown";
}

/* ---- the locker (harness/workload_locker.c) as a twin-sim workload ---- */


enum { locker_option_threads, locker_option_iterations, locker_options_count };
#define LOCKER_THREADS_DEFAULT 8u
#define LOCKER_ITERATIONS_DEFAULT 100u
#define LOCKER_ITERATIONS_MAX 100000000u

static const tw_workload_option locker_options[locker_options_count] = {
    [locker_option_threads] = {"threads", 1, TW_WORKLOAD_LOCKER_THREADS_MAX,
                               "threads contending for the lock (default 8, not drawn)"},
    [locker_option_iterations] = {"iterations", 1, LOCKER_ITERATIONS_MAX,
                                  "lock/unlock rounds per thread (default 100, not drawn)"},
};

static void locker_draw(uint64_t seed, uint64_t *values, const bool *given) {
    (void)seed;
    TW_ASSERT(values != NULL && given != NULL);
    if (!given[locker_option_threads]) values[locker_option_threads] = LOCKER_THREADS_DEFAULT;
    if (!given[locker_option_iterations]) values[locker_option_iterations] = LOCKER_ITERATIONS_DEFAULT;
}

static void *locker_create(const uint64_t *values, tw_sim_options *sim) {
    TW_ASSERT(values != NULL && sim != NULL);
    tw_workload_locker *workload = calloc(1, sizeof(*workload));
    if (workload == NULL) return NULL;
    workload->threads_count = (uint32_t)values[locker_option_threads];
    workload->iterations = (uint32_t)values[locker_option_iterations];
    if (sim->pct_steps_expected == 0) {
        sim->pct_steps_expected = tw_workload_locker_steps_expected(workload);
    }
    return workload;
}

tw_workload_verdict tw_workload_check_outcome(void *state, const tw_sim_report *report,
                                              char *message, size_t message_size) {
    TW_ASSERT(state != NULL && report != NULL);
    if (report->outcome == tw_sim_passed) return tw_workload_passed;
    snprintf(message, message_size, "%s", report->message);
    return tw_workload_safety;
}

static void locker_describe(void *state, char *line, size_t line_size) {
    tw_workload_locker *workload = state;
    TW_ASSERT(workload != NULL && line_size > 0);
    snprintf(line, line_size, "lock entries=%" PRIu64 " try_lock_taken=%" PRIu64,
             tw_atomic_load_u64(&workload->inside, tw_relaxed),
             tw_atomic_load_u64(&workload->try_lock_taken, tw_relaxed));
}

static const tw_workload tw_workload_locker_spec = {
    .name = "locker",
    .summary = "threads contend for one Locker; mutual exclusion and the exact count",
    .options = locker_options,
    .options_count = locker_options_count,
    .draw = locker_draw,
    .create = locker_create,
    .run = tw_workload_locker_run,
    .check = tw_workload_check_outcome,
    .describe = locker_describe,
    .destroy = free,
};

/* ---- the pool (harness/workload_pool.c) as a twin-sim workload ---- */

enum {
    pool_option_outside,
    pool_option_depth,
    pool_option_bursts,
    pool_option_in_flight,
    pool_option_threads,
    pool_options_count,
};
#define POOL_OUTSIDE_MAX 1000000u
#define POOL_BURSTS_MAX 1000u
#define POOL_IN_FLIGHT_MAX 1000000u

static const tw_workload_option pool_options[pool_options_count] = {
    [pool_option_outside] = {"outside", 1, POOL_OUTSIDE_MAX,
                             "tasks scheduled from outside, singly and in batches (drawn 1..400)"},
    [pool_option_depth] = {"depth", 0, TW_WORKLOAD_POOL_DEPTH_MAX,
                           "a fan-out tree of 2^(depth+1)-1 tasks from inside (drawn 0..7)"},
    [pool_option_bursts] = {"bursts", 0, POOL_BURSTS_MAX,
                            "tasks that each schedule 300 from inside, overflowing the ring "
                            "(drawn 0..3)"},
    [pool_option_in_flight] = {"in-flight", 1, POOL_IN_FLIGHT_MAX,
                               "tasks still queued at shutdown, which must drain (drawn 1..200)"},
    [pool_option_threads] = {"threads", 1, TW_POOL_THREADS_MAX, "pool threads at most (drawn 1..6)"},
};

static void pool_draw(uint64_t seed, uint64_t *values, const bool *given) {
    TW_ASSERT(values != NULL && given != NULL);
    static const uint64_t low[pool_options_count] = {1, 0, 0, 1, 1};
    static const uint64_t high[pool_options_count] = {400, 7, 3, 200, 6};
    for (uint32_t o = 0; o < pool_options_count; o++) {
        if (!given[o]) values[o] = tw_workload_draw(seed, o, low[o], high[o]);
    }
}

static void *pool_create(const uint64_t *values, tw_sim_options *sim) {
    TW_ASSERT(values != NULL && sim != NULL);
    tw_workload_pool *workload = calloc(1, sizeof(*workload));
    if (workload == NULL) return NULL;
    tw_workload_pool_scale scale = {
        .outside = (uint32_t)values[pool_option_outside],
        .depth = (uint32_t)values[pool_option_depth],
        .bursts = (uint32_t)values[pool_option_bursts],
        .in_flight = (uint32_t)values[pool_option_in_flight],
        .threads = (uint32_t)values[pool_option_threads],
    };
    if (!tw_workload_pool_init(workload, &scale)) { /* outside the world: kept across runs */
        free(workload);
        return NULL;
    }
    if (sim->pct_steps_expected == 0) sim->pct_steps_expected = tw_workload_pool_steps_expected(workload);
    return workload;
}

static void pool_describe(void *state, char *line, size_t line_size) {
    tw_workload_pool *workload = state;
    TW_ASSERT(workload != NULL && line_size > 0);
    snprintf(line, line_size, "tasks=%" PRIu32 " (each must run exactly once)", workload->tasks_count);
}

static void pool_destroy(void *state) {
    tw_workload_pool *workload = state;
    if (workload == NULL) return;
    tw_workload_pool_free(workload);
    free(workload);
}

static const tw_workload tw_workload_pool_spec = {
    .name = "pool",
    .summary = "the work-stealing pool: tasks from outside and inside, overflowing rings, "
               "shutdown with work queued; every task runs exactly once",
    .options = pool_options,
    .options_count = pool_options_count,
    .draw = pool_draw,
    .create = pool_create,
    .run = tw_workload_pool_run,
    .check = tw_workload_check_outcome,
    .describe = pool_describe,
    .destroy = pool_destroy,
};
