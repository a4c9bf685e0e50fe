/* twin-sim: build a world from a seed, run the workload, check it, print one line.
 * On failure print the exact command that reproduces it. Exit 0 passed, 1 failed, 2 usage. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <twin/sim.h>

#include "driver.h"
#include "workload_locker.h"

#define TWIN_SIM_THREADS_DEFAULT 8u
#define TWIN_SIM_ITERATIONS_DEFAULT 100u
#define TWIN_SIM_ITERATIONS_MAX 100000000u

static const char usage[] =
    "usage: twin-sim [--seed N] [--strategy random|pct|seeded] [--count N] [--twice]\n"
    "                [--threads N] [--iterations N] [--pct-depth N] [--pct-steps N]\n"
    "                [--steps-max N] [--record FILE] [--replay FILE]\n";

static const char help[] =
    "Runs the lock-contention workload in a simulated world built from a seed.\n"
    "\n"
    "  --seed N         the seed, decimal or 0x hex (default: a fresh random seed, printed)\n"
    "  --strategy S     scheduler: random, pct, or seeded (the seed picks; default)\n"
    "  --count N        run N seeds from --seed on; print failures and a summary\n"
    "  --twice          run every seed twice and fail if the two runs differ\n"
    "  --threads N      simulated threads contending for the lock (1..64, default 8)\n"
    "  --iterations N   lock/unlock rounds per thread (default 100)\n"
    "  --pct-depth N    pct priority-change points (1..8; default: from the seed)\n"
    "  --pct-steps N    pct: expected steps over which change points fall (default: estimated)\n"
    "  --steps-max N    fail as a livelock after N scheduling points (default 20000000)\n"
    "  --record FILE    write the run's decisions to FILE (one seed only)\n"
    "  --replay FILE    take decisions from FILE, then from the seed\n"
    "\n"
    "Prints: seed strategy steps switches time_ns hash outcome. On failure exits 1 and\n"
    "prints a 'repro:' line; a bad flag exits 2.\n";

typedef struct flags {
    uint64_t seed;
    bool seed_given;
    tw_sim_strategy strategy;
    uint64_t count;
    bool twice;
    uint64_t threads;
    uint64_t iterations;
    uint64_t pct_depth;
    uint64_t pct_steps;
    uint64_t steps_max;
    const char *record_path;
    const char *replay_path;
} flags;

static int usage_error(const char *format, const char *value) {
    fprintf(stderr, "twin-sim: ");
    fprintf(stderr, format, value);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

/* Parses a numeric flag value in [low, high]. */
static bool number_in(const char *text, uint64_t low, uint64_t high, uint64_t *value) {
    return tw_driver_parse_u64(text, value) && *value >= low && *value <= high;
}

static int parse_flags(int argc, char **argv, flags *f) {
    *f = (flags){.strategy = tw_sim_strategy_seeded, .count = 1,
                 .threads = TWIN_SIM_THREADS_DEFAULT, .iterations = TWIN_SIM_ITERATIONS_DEFAULT};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            printf("%s\n%s", usage, help);
            exit(0);
        }
        if (strcmp(flag, "--twice") == 0) {
            f->twice = true;
            continue;
        }
        if (i + 1 >= argc) return usage_error("%s needs a value", flag);
        const char *value = argv[++i];
        if (strcmp(flag, "--seed") == 0) {
            if (!tw_driver_parse_u64(value, &f->seed)) {
                return usage_error("--seed takes a decimal or 0x-hex number below 2^64, not '%s'",
                                   value);
            }
            f->seed_given = true;
        } else if (strcmp(flag, "--strategy") == 0) {
            if (!tw_sim_strategy_parse(value, &f->strategy)) {
                return usage_error("--strategy takes random, pct or seeded, not '%s'", value);
            }
        } else if (strcmp(flag, "--count") == 0) {
            if (!number_in(value, 1, UINT64_MAX, &f->count)) {
                return usage_error("--count takes a number of seeds >= 1, not '%s'", value);
            }
        } else if (strcmp(flag, "--threads") == 0) {
            if (!number_in(value, 1, TW_WORKLOAD_LOCKER_THREADS_MAX, &f->threads)) {
                return usage_error("--threads takes 1..64, not '%s'", value);
            }
        } else if (strcmp(flag, "--iterations") == 0) {
            if (!number_in(value, 1, TWIN_SIM_ITERATIONS_MAX, &f->iterations)) {
                return usage_error("--iterations takes 1..100000000, not '%s'", value);
            }
        } else if (strcmp(flag, "--pct-depth") == 0) {
            if (!number_in(value, 1, TW_SIM_PCT_DEPTH_MAX, &f->pct_depth)) {
                return usage_error("--pct-depth takes 1..8, not '%s'", value);
            }
        } else if (strcmp(flag, "--pct-steps") == 0) {
            if (!number_in(value, 1, UINT64_MAX, &f->pct_steps)) {
                return usage_error("--pct-steps takes a number >= 1, not '%s'", value);
            }
        } else if (strcmp(flag, "--steps-max") == 0) {
            if (!number_in(value, 1, UINT64_MAX, &f->steps_max)) {
                return usage_error("--steps-max takes a number >= 1, not '%s'", value);
            }
        } else if (strcmp(flag, "--record") == 0) {
            f->record_path = value;
        } else if (strcmp(flag, "--replay") == 0) {
            f->replay_path = value;
        } else {
            return usage_error("unknown flag '%s'", flag);
        }
    }
    if (f->record_path != NULL && f->count != 1) {
        return usage_error("%s", "--record writes one run: use it without --count");
    }
    return 0;
}

/* The exact command that reruns seed with the flags that shaped this run. */
static void print_repro(const char *program, const flags *f, const tw_sim_report *report) {
    printf("repro: %s --seed %" PRIu64 " --strategy %s", program, report->seed,
           tw_sim_strategy_name(report->strategy));
    if (f->threads != TWIN_SIM_THREADS_DEFAULT) printf(" --threads %" PRIu64, f->threads);
    if (f->iterations != TWIN_SIM_ITERATIONS_DEFAULT) printf(" --iterations %" PRIu64, f->iterations);
    if (f->pct_depth != 0) printf(" --pct-depth %" PRIu64, f->pct_depth);
    if (f->pct_steps != 0) printf(" --pct-steps %" PRIu64, f->pct_steps);
    if (f->steps_max != 0) printf(" --steps-max %" PRIu64, f->steps_max);
    if (f->replay_path != NULL) printf(" --replay %s", f->replay_path);
    printf("\n");
}

static void print_failure(const char *program, const flags *f, const tw_driver_seed *run) {
    tw_driver_print_line(stdout, &run->report);
    if (run->report.outcome != tw_sim_passed) printf("failure: %s\n", run->report.message);
    if (!run->deterministic) {
        printf("nondeterminism: hashes %016" PRIx64 " and %016" PRIx64 "; %s\n", run->report.hash,
               run->hash_second, run->divergence);
    }
    print_repro(program, f, &run->report);
}

int main(int argc, char **argv) {
    flags f;
    int rc = parse_flags(argc, argv, &f);
    if (rc != 0) return rc;
    if (!f.seed_given) {
        /* No seed given: pick one (outside any world) and print it, so the run can be repeated. */
        if (getrandom(&f.seed, sizeof(f.seed), 0) != (ssize_t)sizeof(f.seed)) f.seed = 0;
    }

    tw_workload_locker workload = {.threads_count = (uint32_t)f.threads,
                                   .iterations = (uint32_t)f.iterations};
    tw_sim_source source = {.kind = tw_sim_source_seed};
    tw_sim_decision *replayed = NULL;
    if (f.replay_path != NULL) {
        char error[512];
        size_t count = 0;
        replayed = tw_sim_decisions_read(f.replay_path, &count, error, sizeof(error));
        if (replayed == NULL) {
            fprintf(stderr, "twin-sim: --replay: %s\n", error);
            return 2;
        }
        source = (tw_sim_source){.kind = tw_sim_source_replay, .decisions = replayed,
                                 .decisions_count = count};
    }
    tw_sim_trace trace = {0};
    tw_sim_options options = {
        .strategy = f.strategy,
        .pct_depth = (uint32_t)f.pct_depth,
        .pct_steps_expected =
            f.pct_steps != 0 ? f.pct_steps : tw_workload_locker_steps_expected(&workload),
        .steps_max = f.steps_max,
        .source = &source,
        .trace = f.record_path != NULL ? &trace : NULL,
    };

    uint64_t failed = 0;
    uint64_t steps_total = 0;
    uint64_t sweep_hash = 0;
    tw_driver_seed *run = malloc(sizeof(*run));
    if (run == NULL) {
        fprintf(stderr, "twin-sim: out of memory\n");
        return 1;
    }
    for (uint64_t i = 0; i < f.count; i++) {
        options.seed = f.seed + i;
        tw_driver_run_seed(&options, tw_workload_locker_run, &workload, f.twice, run);
        steps_total += run->report.steps;
        sweep_hash = sweep_hash * 0x100000001b3ULL ^ run->report.hash;
        bool ok = run->report.outcome == tw_sim_passed && run->deterministic;
        if (!ok) {
            failed++;
            print_failure(argv[0], &f, run);
        } else if (f.count == 1) {
            tw_driver_print_line(stdout, &run->report);
        }
        if (f.count > 1) tw_driver_progress("twin-sim", i + 1, f.count, failed);
    }
    if (f.count > 1) {
        printf("twin-sim: seeds %" PRIu64 "..%" PRIu64 ": %" PRIu64 " passed, %" PRIu64
               " failed%s, %" PRIu64 " steps, sweep_hash=%016" PRIx64 "\n",
               f.seed, f.seed + f.count - 1, f.count - failed, failed,
               f.twice ? " (each run twice)" : "", steps_total, sweep_hash);
    }
    if (f.record_path != NULL) {
        size_t count = 0;
        tw_sim_decision *decisions = tw_sim_trace_decisions(&trace, &count);
        if (decisions == NULL || trace.truncated ||
            !tw_sim_decisions_write(f.record_path, decisions, count)) {
            fprintf(stderr, "twin-sim: --record: cannot write %s\n", f.record_path);
            failed++;
        } else {
            printf("twin-sim: recorded %zu decisions to %s\n", count, f.record_path);
        }
        free(decisions);
        tw_sim_trace_free(&trace);
    }
    free(run);
    free(replayed);
    return failed == 0 ? 0 : 1;
}
