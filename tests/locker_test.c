/* The Locker, one source for both builds.
 * real: 4 threads x 1,000,000 lock/increment/unlock, exact total (and under TSan).
 * sim:  8 fibers x 100 per seed, over many seeds, each twice; planted bugs caught. */
#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/locker.h>

#include "twin_test.h"
#include "workload_locker.h"

enum {
    real_threads = 4,
    real_iterations = 1000000,
    sim_threads = 8,
    sim_iterations = 100,
};

static tw_workload_locker workload;

/* Upstream's smoke test: try_lock on a free lock succeeds, on a held one fails. */
static void smoke(void) {
    tw_locker locker = TW_LOCKER_INIT;
    TW_ASSERT(tw_locker_try_lock(&locker));
    TW_ASSERT(!tw_locker_try_lock(&locker));
    tw_locker_unlock(&locker);
    tw_locker_lock(&locker);
    TW_ASSERT(!tw_locker_try_lock(&locker));
    tw_locker_unlock(&locker);
    TW_ASSERT(tw_atomic_load_u32(&locker.state, tw_relaxed) == 0);
}

static void locker_main(void *arg) {
    smoke();
    tw_workload_locker_run(arg);
}

static void *prepare(tw_test_build build) {
    workload.threads_count = build == tw_test_build_real ? real_threads : sim_threads;
    workload.iterations = build == tw_test_build_real ? real_iterations : sim_iterations;
    return &workload;
}

static uint64_t steps_expected(void *arg) { return tw_workload_locker_steps_expected(arg); }

int main(int argc, char **argv) {
    tw_test_case test = {.name = "locker", .prepare = prepare, .main_fn = locker_main,
                         .steps_expected = steps_expected};
    return tw_test_main(argc, argv, &test);
}
