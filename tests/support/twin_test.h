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
    /* Real only: the test needs io_uring (a loop, a client, a server). Where the kernel or a
     * policy refuses io_uring, the runner says so and exits TW_TEST_EXIT_SKIPPED. */
    bool real_uses_io_uring;
} tw_test_case;

/* ctest's SKIP_RETURN_CODE for real tests that need io_uring where it is refused. */
#define TW_TEST_EXIT_SKIPPED 77
/* Real: a watchdog fails the test when one phase lasts longer than this (the environment
 * variable TWIN_TEST_HANG_S, 1..3600, sets another limit), printing the phase and what each
 * thread waits on. */
#define TW_TEST_HANG_S_DEFAULT 30u
#define TW_TEST_HANG_S_MAX 3600u
#define TW_TEST_EXIT_HANG 3

/* Names the phase the test is in (a static string), for the hang report; resets the real
 * watchdog's clock. The sim runner ignores it (a sim hang is a deadlock the world reports). */
void tw_test_phase(const char *phase);
/* Real: starts the watchdog (the runner does, before the test body); exits 2 with a message
 * when TWIN_TEST_HANG_S is not a number in 1..3600. */
void tw_test_watchdog_start(const char *test_name);

int tw_test_main(int argc, char **argv, const tw_test_case *test);

/* Planted bugs (tests/support/plants.c in planted binaries, plants_none.c elsewhere). */
bool tw_test_plant_select(const char *name);
const char *tw_test_plant_names(void);

#endif
