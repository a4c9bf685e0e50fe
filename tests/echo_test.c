/* The echo workload over TCP (harness/workload_echo.c, which says what it checks), one
 * source for both builds: in the sim every network fault is on but corruption (and
 * echo_sim_catches_corruption shows the oracle sees bit flips); the real build has none. */
#include "twin_test.h"
#include "workload_echo.h"

static tw_workload_echo workload;

static void *prepare(tw_test_build build) {
    workload = (tw_workload_echo){
        .clients = build == tw_test_build_real ? 8 : 3,
        .bytes_per_client = build == tw_test_build_real ? 4 * 1024 * 1024 : 64 * 1024,
    };
    return &workload;
}

int main(int argc, char **argv) {
    tw_test_case test = {.name = "echo", .real_uses_io_uring = true, .prepare = prepare, .main_fn = tw_workload_echo_run};
    return tw_test_main(argc, argv, &test);
}
