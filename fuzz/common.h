/* twin fuzz: what every target shares (the plant from the environment, verbosity). */
#ifndef TWIN_FUZZ_COMMON_H
#define TWIN_FUZZ_COMMON_H

#include <stdbool.h>

/* TWIN_PLANT=NAME selects a planted bug in a *_planted target; elsewhere, or with a name
 * that is not a plant, it exits 2 with the names. */
void tw_fuzz_plant_from_env(void);
const char *tw_fuzz_plant_name(void); /* NULL: none */
/* TWIN_FUZZ_VERBOSE=1: a line per input (the replay program sets it for its runs). */
bool tw_fuzz_verbose(void);
/* A target's oracle failed: inside a running world it fails the run (tw_sim_fail, which
 * prints the world's failure), elsewhere it prints the message; either way it aborts, which
 * every engine sees as a crash. The text lives in one static buffer, as tw_sim_fail keeps
 * the pointer; a run fails once. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
_Noreturn void tw_fuzz_fail(const char *format, ...);

/* A target's own plumbing (the oracle's checks, its bookkeeping of connections and
 * writes) is left out of a fuzzer's coverage, as the simulated world is
 * (fuzz/coverage-ignore.txt): its branches are new to the target, not to twin, and under
 * -fsanitize=fuzzer each of its comparisons is a call (a fifth of an execution's time in
 * client_replies and server_input). What decodes a target's input stays covered. */
#if defined(__clang__)
#define HARNESS_UNCOVERED __attribute__((no_sanitize("coverage")))
#else
#define HARNESS_UNCOVERED
#endif

#endif
