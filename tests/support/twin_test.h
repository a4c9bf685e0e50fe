/* twin tests: one test source, two builds.
 *
 * A test file defines a tw_test_case and calls tw_test_main from main(). The build links
 * one of two runners: test_main_real.c runs the case once on real threads; test_main_sim.c
 * sweeps seeds of a simulated world (each seed run twice, hashes compared), and can
 * instead assert that a planted bug is caught. Run a sim test with --help for its flags. */
#ifndef TWIN_TEST_H
#define TWIN_TEST_H

#include <stdbool.h>
#include <stdint.h>

#include <twin/os.h>

typedef enum tw_test_build {
    tw_test_build_real,
    tw_test_build_sim,
    tw_test_build_sim_large, /* the sim runner's --large: fewer seeds, bigger runs */
} tw_test_build;

typedef struct tw_test_case {
    const char *name;
    /* Returns the argument for main_fn, scaled for the build (real runs are larger). */
    void *(*prepare)(tw_test_build build);
    /* Runs the test body; checks with TW_ASSERT. In the sim it is the world's main fiber. */
    tw_thread_fn main_fn;
    /* Optional: scheduling points one run takes, roughly (PCT's change-point range). */
    uint64_t (*steps_expected)(void *arg);
    /* Sim only: which network faults the seed may draw (default: all but corruption). */
    bool sim_faults_off;
    bool sim_disruptions_off;
} tw_test_case;

int tw_test_main(int argc, char **argv, const tw_test_case *test);

/* Planted bugs (tests/support/plants.c in planted binaries, plants_none.c elsewhere). */
bool tw_test_plant_select(const char *name);
const char *tw_test_plant_names(void);

#endif
