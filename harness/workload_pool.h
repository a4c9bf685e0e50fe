/* twin harness: the pool workload and its oracle (moved from tests/pool_test.c, which now
 * runs it). Backend-neutral: the same code runs on pthreads and on simulated fibers.
 *
 * Every task counts its own runs, and the run fails on any task that runs twice or never:
 *   A. tasks scheduled from outside, one at a time and in batches
 *   B. a fan-out tree scheduled from inside
 *   C. bursts: tasks that schedule TW_WORKLOAD_POOL_BURST_BATCH-task batches from inside
 *      (the ring overflows)
 *   D. shutdown and deinit with every thread asleep
 *   E. shutdown with work in flight (it drains), on a second pool
 *   F. shutdown and deinit of a pool that never got work */
#ifndef TWIN_HARNESS_WORKLOAD_POOL_H
#define TWIN_HARNESS_WORKLOAD_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include <twin/atomic_types.h>
#include <twin/pool.h>

#define TW_WORKLOAD_POOL_BURST_BATCH 300u
#define TW_WORKLOAD_POOL_OUTSIDE_BATCH 64u
#define TW_WORKLOAD_POOL_DEPTH_MAX 20u

typedef struct tw_workload_pool_scale {
    uint32_t outside;   /* phase A tasks */
    uint32_t depth;     /* phase B tree depth: 2^(depth+1) - 1 tasks */
    uint32_t bursts;    /* phase C: each schedules TW_WORKLOAD_POOL_BURST_BATCH leaves */
    uint32_t in_flight; /* phase E tasks */
    uint32_t threads;
} tw_workload_pool_scale;

typedef struct tw_workload_pool_work tw_workload_pool_work;

typedef struct tw_workload_pool {
    tw_workload_pool_scale scale;
    tw_workload_pool_work *tasks; /* tw_workload_pool_tasks_count of them */
    uint32_t tasks_count;
} tw_workload_pool;

/* Tasks the scale needs (for the storage). */
uint32_t tw_workload_pool_tasks_count(const tw_workload_pool_scale *scale);
/* Sets the scale and allocates the task storage with tw_allocate (call it outside any
 * simulated run, so that it outlives the runs); false when memory is short. */
bool tw_workload_pool_init(tw_workload_pool *workload, const tw_workload_pool_scale *scale);
void tw_workload_pool_free(tw_workload_pool *workload);
/* A tw_thread_fn: runs phases A..F on fresh pools; checks with TW_ASSERT. */
void tw_workload_pool_run(void *workload);
/* Scheduling points one run takes, roughly (PCT's change-point range). */
uint64_t tw_workload_pool_steps_expected(const tw_workload_pool *workload);

#endif
