/* The sim-build runner: sweeps seeds, each run twice with the hashes compared, or proves
 * that a planted bug is caught. Every failure prints its seed and the command that
 * reproduces it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/sim.h>

#include "driver.h"
#include "twin_test.h"

#define TW_TEST_SEEDS_DEFAULT 1000u

static const char usage_format[] =
    "usage: %s [--seeds N] [--seed-first N] [--strategy random|pct|pos|seeded]\n"
    "          [--seed N] [--plant NAME] [--net-corruption] [--large]\n"
    "          [--expect-failure lost_wakeup|deadlock|panic|steps_exceeded|any]\n"
    "          [--expect-message TEXT]\n"
    "  --seeds N           sweep N seeds (default 1000), each run twice, hashes compared\n"
    "  --seed-first N      first seed of the sweep (default 1)\n"
    "  --seed N            run this one seed and print its line (a repro)\n"
    "  --strategy S        scheduler strategy (default: the seed picks)\n"
    "  --plant NAME        switch on a planted bug: %s\n"
    "  --net-corruption    let the simulated network flip bits (off by default)\n"
    "  --large             the test's larger sim workload\n"
    "  --expect-failure O  pass only if some seed of the sweep fails with outcome O\n"
    "                      (lost_wakeup: a deadlock whose report names a lost wake-up)\n"
    "  --expect-message T  with --expect-failure: the failure's message must contain T\n";

typedef struct runner_flags {
    uint64_t seeds;
    uint64_t seed_first;
    uint64_t seed_one;
    bool seed_one_given;
    tw_sim_strategy strategy;
    const char *plant;
    const char *expect; /* NULL: every seed must pass */
    const char *expect_message; /* NULL: any message */
    bool net_corruption;
    bool large;
} runner_flags;

static int usage(const char *program, const char *problem, const char *value) {
    fprintf(stderr, "%s: %s '%s'\n", program, problem, value);
    fprintf(stderr, usage_format, program, tw_test_plant_names());
    return 2;
}

static int parse(int argc, char **argv, runner_flags *f) {
    *f = (runner_flags){.seeds = TW_TEST_SEEDS_DEFAULT, .seed_first = 1};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--help") == 0) {
            printf(usage_format, argv[0], tw_test_plant_names());
            exit(0);
        }
        if (strcmp(flag, "--net-corruption") == 0) {
            f->net_corruption = true;
            continue;
        }
        if (strcmp(flag, "--large") == 0) {
            f->large = true;
            continue;
        }
        if (i + 1 >= argc) return usage(argv[0], "a value is missing after", flag);
        const char *value = argv[++i];
        if (strcmp(flag, "--seeds") == 0) {
            if (!tw_driver_parse_u64(value, &f->seeds) || f->seeds == 0) {
                return usage(argv[0], "--seeds takes a count >= 1, not", value);
            }
        } else if (strcmp(flag, "--seed-first") == 0) {
            if (!tw_driver_parse_u64(value, &f->seed_first)) {
                return usage(argv[0], "--seed-first takes a decimal or 0x-hex seed, not", value);
            }
        } else if (strcmp(flag, "--seed") == 0) {
            if (!tw_driver_parse_u64(value, &f->seed_one)) {
                return usage(argv[0], "--seed takes a decimal or 0x-hex seed, not", value);
            }
            f->seed_one_given = true;
        } else if (strcmp(flag, "--strategy") == 0) {
            if (!tw_sim_strategy_parse(value, &f->strategy)) {
                return usage(argv[0], "--strategy takes random, pct, pos or seeded, not", value);
            }
        } else if (strcmp(flag, "--plant") == 0) {
            if (!tw_test_plant_select(value)) {
                return usage(argv[0], "this binary has no planted bug named", value);
            }
            f->plant = value;
        } else if (strcmp(flag, "--expect-message") == 0) {
            if (value[0] == '\0') return usage(argv[0], "--expect-message takes a non-empty text, not", value);
            f->expect_message = value;
        } else if (strcmp(flag, "--expect-failure") == 0) {
            if (strcmp(value, "any") != 0 && strcmp(value, "deadlock") != 0 &&
                strcmp(value, "lost_wakeup") != 0 && strcmp(value, "panic") != 0 &&
                strcmp(value, "steps_exceeded") != 0) {
                return usage(argv[0], "--expect-failure takes lost_wakeup, deadlock, panic, "
                             "steps_exceeded or any, not", value);
            }
            f->expect = value;
        } else {
            return usage(argv[0], "unknown flag", flag);
        }
    }
    return 0;
}

static void print_repro(const char *program, const runner_flags *f, const tw_sim_report *report) {
    printf("repro: %s --seed %" PRIu64 " --strategy %s%s%s%s%s\n", program, report->seed,
           tw_sim_strategy_name(report->strategy), f->plant != NULL ? " --plant " : "",
           f->plant != NULL ? f->plant : "", f->net_corruption ? " --net-corruption" : "",
           f->large ? " --large" : "");
}

typedef struct sweep_totals {
    uint64_t steps;
    uint64_t switches;
    uint64_t futex_waits;
    uint64_t spurious;
    uint64_t sweep_hash;
    tw_sim_net_counts net;
} sweep_totals;

void tw_test_phase(const char *phase) { TW_ASSERT(phase != NULL); }

int tw_test_main(int argc, char **argv, const tw_test_case *test) {
    TW_ASSERT(test != NULL && test->main_fn != NULL && test->prepare != NULL);
    runner_flags f;
    int rc = parse(argc, argv, &f);
    if (rc != 0) return rc;
    if (f.expect_message != NULL && f.expect == NULL) {
        return usage(argv[0], "--expect-message needs --expect-failure too; got", f.expect_message);
    }
    void *arg = test->prepare(f.large ? tw_test_build_sim_large : tw_test_build_sim);
    tw_sim_options options = {.strategy = f.strategy,
                              .net = {.faults_off = test->sim_faults_off,
                                      .disruptions_off = test->sim_disruptions_off,
                                      .corruption = f.net_corruption}};
    if (test->steps_expected != NULL) options.pct_steps_expected = test->steps_expected(arg);

    tw_driver_seed *run = malloc(sizeof(*run));
    TW_ASSERT_MSG(run != NULL, "out of memory");
    if (f.seed_one_given) {
        options.seed = f.seed_one;
        tw_driver_run_seed(&options, test->main_fn, arg, true, run);
        printf("%s: ", test->name);
        tw_driver_print_line(stdout, &run->report);
        if (run->report.outcome != tw_sim_passed) printf("failure: %s\n", run->report.message);
        if (!run->deterministic) printf("nondeterminism: %s\n", run->divergence);
        bool ok = run->report.outcome == tw_sim_passed && run->deterministic;
        free(run);
        return ok ? 0 : 1;
    }

    sweep_totals totals = {0};
    for (uint64_t i = 0; i < f.seeds; i++) {
        options.seed = f.seed_first + i;
        tw_driver_run_seed(&options, test->main_fn, arg, true, run);
        const tw_sim_report *report = &run->report;
        totals.steps += report->steps;
        totals.switches += report->switches;
        totals.futex_waits += report->futex_waits;
        totals.spurious += report->spurious_wakes + report->cas_spurious_failures;
        totals.sweep_hash = totals.sweep_hash * 0x100000001b3ULL ^ report->hash;
        tw_sim_net_counts_add(&totals.net, &report->net);
        tw_driver_progress(test->name, i + 1, f.seeds, report->outcome != tw_sim_passed);

        if (!run->deterministic) {
            printf("%s: FAILED: seed %" PRIu64 " is not deterministic: hashes %016" PRIx64
                   " and %016" PRIx64 "\n  %s\n",
                   test->name, report->seed, report->hash, run->hash_second, run->divergence);
            print_repro(argv[0], &f, report);
            free(run);
            return 1;
        }
        if (report->outcome == tw_sim_passed && report->allocations_live != 0) {
            printf("%s: FAILED at seed %" PRIu64 ": the run passed but left %" PRIu64
                   " of its %" PRIu64 " allocations unfreed (a leak)\n",
                   test->name, report->seed, report->allocations_live, report->allocations);
            print_repro(argv[0], &f, report);
            free(run);
            return 1;
        }
        if (report->outcome == tw_sim_passed) continue;

        const char *outcome = tw_sim_outcome_name(report->outcome);
        if (report->outcome == tw_sim_deadlock && strstr(report->message, "lost wake-up") != NULL) {
            outcome = "lost_wakeup";
        }
        bool expected = f.expect != NULL &&
                        (strcmp(f.expect, "any") == 0 || strcmp(f.expect, outcome) == 0 ||
                         (strcmp(f.expect, "deadlock") == 0 && report->outcome == tw_sim_deadlock)) &&
                        (f.expect_message == NULL || strstr(report->message, f.expect_message) != NULL);
        if (expected) {
            printf("%s: %s%s caught (%s) at seed %" PRIu64 " (seed %" PRIu64
                   " of the sweep); the failure repeats with the same hash %016" PRIx64 "\n",
                   test->name, f.plant != NULL ? "planted bug " : "expected failure",
                   f.plant != NULL ? f.plant : "", outcome, report->seed, i + 1, report->hash);
            printf("  %s\n", report->message);
            print_repro(argv[0], &f, report);
            free(run);
            return 0;
        }
        printf("%s: FAILED at seed %" PRIu64 ": ", test->name, report->seed);
        tw_driver_print_line(stdout, report);
        printf("  %s\n", report->message);
        if (f.expect != NULL) {
            printf("  (expected a failure of kind %s%s%s%s, got %s)\n", f.expect,
                   f.expect_message != NULL ? " with a message containing '" : "",
                   f.expect_message != NULL ? f.expect_message : "", f.expect_message != NULL ? "'" : "",
                   outcome);
        }
        print_repro(argv[0], &f, report);
        free(run);
        return 1;
    }
    free(run);
    if (f.expect != NULL) {
        printf("%s: FAILED: %s%s was not caught in %" PRIu64 " seeds (%" PRIu64
               "..%" PRIu64 ", strategy %s)\n",
               test->name, f.plant != NULL ? "planted bug " : "the expected failure",
               f.plant != NULL ? f.plant : "", f.seeds, f.seed_first,
               f.seed_first + f.seeds - 1, tw_sim_strategy_name(f.strategy));
        return 1;
    }
    printf("%s: sim: %" PRIu64 " seeds (%" PRIu64 "..%" PRIu64 ", strategy %s) passed, each run "
           "twice with equal hashes; %" PRIu64 " steps, %" PRIu64 " switches, %" PRIu64
           " futex waits, %" PRIu64 " spurious wakes/CAS failures; sweep_hash=%016" PRIx64 "\n",
           test->name, f.seeds, f.seed_first, f.seed_first + f.seeds - 1,
           tw_sim_strategy_name(f.strategy), totals.steps, totals.switches, totals.futex_waits,
           totals.spurious, totals.sweep_hash);
    if (totals.net.connections > 0) tw_driver_print_net(stdout, test->name, &totals.net);
    return 0;
}
