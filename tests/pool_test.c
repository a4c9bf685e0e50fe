/* The thread pool, one source for both builds: the pool workload (harness/workload_pool.c,
 * which says what it checks), at a scale per build. */
#include <twin/assert.h>
#include <twin/os.h>

#include "twin_test.h"
#include "workload_pool.h"

static tw_workload_pool workload;

static void *prepare(tw_test_build build) {
    tw_workload_pool_scale scale;
    if (build == tw_test_build_real) {
        scale = (tw_workload_pool_scale){.outside = 1000000, .depth = 16, .bursts = 200,
                                         .in_flight = 100000, .threads = tw_cpu_count()};
    } else if (build == tw_test_build_sim_large) {
        scale = (tw_workload_pool_scale){.outside = 10000, .depth = 8, .bursts = 4,
                                         .in_flight = 1000, .threads = 4};
    } else {
        scale = (tw_workload_pool_scale){.outside = 200, .depth = 6, .bursts = 2,
                                         .in_flight = 100, .threads = 4};
    }
    /* Outside any run: the storage is kept across the sweep's runs. */
    TW_ASSERT(tw_workload_pool_init(&workload, &scale));
    return &workload;
}

static uint64_t steps_expected(void *arg) { return tw_workload_pool_steps_expected(arg); }

int main(int argc, char **argv) {
    tw_test_case test = {.name = "pool", .prepare = prepare, .main_fn = tw_workload_pool_run,
                         .steps_expected = steps_expected};
    return tw_test_main(argc, argv, &test);
}
