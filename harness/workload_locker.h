/* twin harness: the lock-contention workload. Backend-neutral (uses only the seam and
 * the Locker), so the same code runs on pthreads and on simulated fibers.
 *
 * threads_count threads each do iterations of { lock (every fourth through try_lock
 * first); check nobody else is inside; counter++; unlock }. The run checks mutual
 * exclusion inside the critical section and the exact total at the end, with
 * TW_ASSERT: a real run aborts, a simulated run fails with the seed. */
#ifndef TWIN_HARNESS_WORKLOAD_LOCKER_H
#define TWIN_HARNESS_WORKLOAD_LOCKER_H

#include <stdint.h>
#include <twin/atomic_types.h>
#include <twin/locker.h>

#define TW_WORKLOAD_LOCKER_THREADS_MAX 64u

typedef struct tw_workload_locker {
    /* configuration */
    uint32_t threads_count;
    uint32_t iterations;
    /* state, reset by each run */
    tw_locker locker;
    uint64_t counter;      /* plain: protected by locker */
    uint32_t holder;       /* plain: the thread inside the critical section, 0 if none */
    tw_atomic_u64 inside;  /* entries into the critical section (also a scheduling point) */
    tw_atomic_u64 try_lock_taken;
} tw_workload_locker;

/* A tw_thread_fn: arg is a tw_workload_locker with its configuration set. */
void tw_workload_locker_run(void *workload);

/* Roughly how many scheduling points a run takes (for PCT's change-point range). */
static inline uint64_t tw_workload_locker_steps_expected(const tw_workload_locker *workload) {
    return (uint64_t)workload->threads_count * workload->iterations * 4u + 64u;
}
#endif
