/* twin-sim: build a world from a seed, run a workload in it, check it, say what happened.
 *
 * One seed: the first line names the workload and every option (drawn from the seed unless
 * given), then the run's line, then what the workload did. A sweep (--seeds) runs seeds
 * from --seed-from, each with its own drawn options, optionally split into shards (--shard,
 * for many machines) and across processes (--jobs, this machine), within a wall-time budget
 * (--time-budget); it prints every failing seed with its reproduction line and a summary.
 *
 * Exit: 0 every run passed; 1 a safety failure (or a run that was not deterministic);
 * 3 a liveness failure and no safety failure; 2 bad usage. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <twin/assert.h>
#include <twin/sim.h>

#include "driver.h"
#include "fuzz_world.h"
#include "trace_chrome.h"
#include "workload.h"

/* The test-only twin_sim_planted (tests/CMakeLists.txt) is this program linked against the
 * planted library, with --plant NAME to switch one planted bug on. */
#ifdef TWIN_SIM_PLANTS
#include "twin_test.h"
#endif

#define TWIN_SIM_EXIT_PASSED 0
#define TWIN_SIM_EXIT_SAFETY 1
#define TWIN_SIM_EXIT_USAGE 2
#define TWIN_SIM_EXIT_LIVENESS 3
#define TWIN_SIM_JOBS_MAX 256u
#define TWIN_SIM_SHARDS_MAX 1000000u
#define TWIN_SIM_LINE_SIZE 4096u
#define TWIN_SIM_OPTIONS_SIZE 2048u /* fits a line with room to spare */
#define TWIN_SIM_BLOCK_SIZE 8192u
#define NS_PER_S 1000000000ull

static const char usage[] =
    "usage: twin-sim [--workload NAME] [--seed N | --seeds COUNT [--seed-from N]]\n"
    "                [--strategy random|pct|pos|seeded] [--twice] [--shard I/N] [--jobs J]\n"
    "                [--time-budget S] [--pct-depth N] [--pct-steps N] [--steps-max N]\n"
    "                [--check-determinism] [--record FILE] [--replay FILE] [--trace FILE]\n"
    "                [--shrink FILE]\n"
    "                [--reach-all] [--list]\n"
    "                [--WORKLOAD-OPTION VALUE ...]\n";

static const char help[] =
    "Runs a workload in a simulated world built from a seed, checks it, and prints what\n"
    "happened; a failure prints a 'repro:' line that runs it again exactly.\n"
    "\n"
    "  --workload NAME  what to run (default cluster; --list names them and their options)\n"
    "  --seed N         one run of seed N, decimal or 0x hex (default: a fresh random seed)\n"
    "  --seeds COUNT    a sweep of COUNT seeds from --seed-from (default 1)\n"
    "  --shard I/N      only the seeds whose position in the sweep is I modulo N (0 <= I < N):\n"
    "                   N machines with I = 0..N-1 cover the sweep once\n"
    "  --jobs J         run the sweep in J processes on this machine (default 1)\n"
    "  --time-budget S  start no seed after S seconds of wall time; the summary says how far\n"
    "                   it got\n"
    "  --stop-at-failure  each job of a sweep stops at its first failing seed (with --jobs 1,\n"
    "                   the sweep stops there: the summary's wall time is the time to it)\n"
    "  --reach-all      fail the sweep if a reachability marker (a rare path the code marks)\n"
    "                   was reached by no seed; every sweep prints how many seeds reached each\n"
    "  --strategy S     scheduler: random, pct, pos, or seeded (the seed picks; default)\n"
    "  --twice, --check-determinism\n"
    "                   run every seed twice in this process and fail if the runs differ,\n"
    "                   naming the first decision or event where they part (and for a\n"
    "                   decision, the source line that drew it)\n"
    "  --pct-depth N    pct priority-change points (1..8; default: from the seed)\n"
    "  --pct-steps N    pct: expected steps over which change points fall (default: estimated)\n"
    "  --steps-max N    fail as a livelock after N scheduling points (default 20000000)\n"
    "  --record FILE    write the run's decisions to FILE (one seed only)\n"
    "  --shrink FILE    FILE holds the decisions of a failing run (--record): delete and zero\n"
    "                   them while the run still fails the same way, write FILE.min, and\n"
    "                   replay it once more to check (at most 5000 runs, and --time-budget\n"
    "                   seconds: 60 unless given)\n"
    "  --trace FILE     write the run as Chrome trace-event JSON (open it in ui.perfetto.dev):\n"
    "                   a track per fiber, connection and node, faults as instant events\n"
    "  --replay FILE    take decisions from FILE, then from the seed\n"
    "  --OPTION VALUE   a workload option (see --list); the seed draws every one not given\n"
    "\n"
    "Exit: 0 passed, 1 a safety failure or nondeterminism, 3 a liveness failure, 2 bad usage.\n";

typedef struct flags {
    const tw_workload *workload;
    uint64_t values[TW_WORKLOAD_OPTIONS_MAX];
    bool given[TW_WORKLOAD_OPTIONS_MAX];
    uint64_t seed;
    bool seed_given;
    uint64_t seeds;
    bool seeds_given;
    tw_sim_strategy strategy;
    bool strategy_given;
    bool twice;
    uint64_t shard_index;
    uint64_t shard_count;
    uint64_t jobs;
    uint64_t time_budget_s;
    uint64_t pct_depth;
    uint64_t pct_steps;
    uint64_t steps_max;
    const char *record_path;
    const char *replay_path;
    const uint8_t *replay_bytes; /* --replay of a fuzzer's input: its decision bytes */
    size_t replay_bytes_count;
    bool workload_given;
    const char *trace_path;
    const char *shrink_path;
    const char *plant;
    bool reach_all;
    bool stop_at_failure; /* a sweep's jobs each stop at their first failing seed */
    bool nondeterministic; /* test-only (twin-sim-planted): a deliberately nondeterministic run */
} flags;

static int usage_error(const char *format, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *format, ...) {
    fprintf(stderr, "twin-sim: ");
    va_list args;
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fprintf(stderr, "\n%s", usage);
    return TWIN_SIM_EXIT_USAGE;
}

static bool number_in(const char *text, uint64_t low, uint64_t high, uint64_t *value) {
    return tw_driver_parse_u64(text, value) && *value >= low && *value <= high;
}

static void list_workloads(void) {
    for (uint32_t w = 0; w < tw_workloads_count; w++) {
        const tw_workload *workload = tw_workloads[w];
        printf("%s%s: %s\n", workload->name, w == 0 ? " (default)" : "", workload->summary);
        for (uint32_t i = 0; i < workload->options_count; i++) {
            const tw_workload_option *o = &workload->options[i];
            printf("  --%-22s %" PRIu64 "..%" PRIu64 ": %s\n", o->name, o->min, o->max, o->help);
        }
    }
}

static int parse_flags(int argc, char **argv, flags *f) {
    *f = (flags){.workload = tw_workloads[0], .strategy = tw_sim_strategy_seeded, .seeds = 1,
                 .shard_count = 1, .jobs = 1};
    /* The workload first: its options are flags too. */
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--workload") == 0) {
            f->workload_given = true;
            f->workload = tw_workload_find(argv[i + 1]);
            if (f->workload == NULL) {
                char names[256] = "";
                for (uint32_t w = 0; w < tw_workloads_count; w++) {
                    strncat(names, w == 0 ? "" : ", ", sizeof(names) - strlen(names) - 1);
                    strncat(names, tw_workloads[w]->name, sizeof(names) - strlen(names) - 1);
                }
                return usage_error("--workload takes one of %s, not '%s'", names, argv[i + 1]);
            }
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            printf("%s\n%s", usage, help);
            exit(TWIN_SIM_EXIT_PASSED);
        }
        if (strcmp(flag, "--list") == 0) {
            list_workloads();
            exit(TWIN_SIM_EXIT_PASSED);
        }
        if (strcmp(flag, "--twice") == 0 || strcmp(flag, "--check-determinism") == 0) {
            f->twice = true;
            continue;
        }
#ifdef TWIN_SIM_PLANTS
        if (strcmp(flag, "--nondeterministic") == 0) {
            f->nondeterministic = true;
            continue;
        }
#endif
        if (strcmp(flag, "--reach-all") == 0) {
            f->reach_all = true;
            continue;
        }
        if (strcmp(flag, "--stop-at-failure") == 0) {
            f->stop_at_failure = true;
            continue;
        }
        if (i + 1 >= argc) return usage_error("%s needs a value", flag);
        const char *value = argv[++i];
        if (strcmp(flag, "--workload") == 0) {
            continue; /* taken above */
        } else if (strcmp(flag, "--seed") == 0) {
            if (!tw_driver_parse_u64(value, &f->seed)) {
                return usage_error("--seed takes a decimal or 0x-hex number below 2^64, not '%s'", value);
            }
            f->seed_given = true;
        } else if (strcmp(flag, "--seeds") == 0) {
            if (!number_in(value, 1, UINT64_MAX, &f->seeds)) {
                return usage_error("--seeds takes a number of seeds >= 1, not '%s'", value);
            }
            f->seeds_given = true;
        } else if (strcmp(flag, "--seed-from") == 0) {
            if (!tw_driver_parse_u64(value, &f->seed)) {
                return usage_error("--seed-from takes a decimal or 0x-hex seed, not '%s'", value);
            }
            f->seed_given = true;
        } else if (strcmp(flag, "--shard") == 0) {
            char index_text[32];
            const char *slash = strchr(value, '/');
            size_t length = slash == NULL ? 0 : (size_t)(slash - value);
            if (slash == NULL || length == 0 || length >= sizeof(index_text)) {
                return usage_error("--shard takes I/N (e.g. 0/4), not '%s'", value);
            }
            memcpy(index_text, value, length);
            index_text[length] = '\0';
            if (!number_in(slash + 1, 1, TWIN_SIM_SHARDS_MAX, &f->shard_count) ||
                !number_in(index_text, 0, f->shard_count - 1, &f->shard_index)) {
                return usage_error("--shard takes I/N with 1 <= N <= %u and 0 <= I < N, not '%s'",
                                   TWIN_SIM_SHARDS_MAX, value);
            }
        } else if (strcmp(flag, "--jobs") == 0) {
            if (!number_in(value, 1, TWIN_SIM_JOBS_MAX, &f->jobs)) {
                return usage_error("--jobs takes 1..%u, not '%s'", TWIN_SIM_JOBS_MAX, value);
            }
        } else if (strcmp(flag, "--time-budget") == 0) {
            if (!number_in(value, 1, UINT64_MAX / NS_PER_S, &f->time_budget_s)) {
                return usage_error("--time-budget takes a number of seconds >= 1, not '%s'", value);
            }
        } else if (strcmp(flag, "--strategy") == 0) {
            if (!tw_sim_strategy_parse(value, &f->strategy)) {
                return usage_error("--strategy takes random, pct, pos or seeded, not '%s'", value);
            }
            f->strategy_given = true;
        } else if (strcmp(flag, "--pct-depth") == 0) {
            if (!number_in(value, 1, TW_SIM_PCT_DEPTH_MAX, &f->pct_depth)) {
                return usage_error("--pct-depth takes 1..%u, not '%s'", TW_SIM_PCT_DEPTH_MAX, value);
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
        } else if (strcmp(flag, "--trace") == 0) {
            f->trace_path = value;
        } else if (strcmp(flag, "--shrink") == 0) {
            f->shrink_path = value;
#ifdef TWIN_SIM_PLANTS
        } else if (strcmp(flag, "--plant") == 0) {
            if (!tw_test_plant_select(value)) {
                return usage_error("--plant takes one of %s, not '%s'", tw_test_plant_names(), value);
            }
            f->plant = value;
#endif
        } else if (strncmp(flag, "--", 2) == 0 && tw_workload_option_find(f->workload, flag + 2) >= 0) {
            int o = tw_workload_option_find(f->workload, flag + 2);
            const tw_workload_option *option = &f->workload->options[o];
            if (!number_in(value, option->min, option->max, &f->values[o])) {
                return usage_error("%s (workload %s) takes %" PRIu64 "..%" PRIu64 ", not '%s'", flag,
                                   f->workload->name, option->min, option->max, value);
            }
            f->given[o] = true;
        } else {
            return usage_error("unknown flag '%s' (workload %s: --list shows its options)", flag,
                               f->workload->name);
        }
    }
    if ((f->record_path != NULL || f->trace_path != NULL || f->shrink_path != NULL) && f->seeds_given) {
        return usage_error("%s", "--record, --trace and --shrink are about one run: use them without --seeds");
    }
    if (f->shrink_path != NULL && (f->replay_path != NULL || f->record_path != NULL || f->twice)) {
        return usage_error("%s", "--shrink replays its own file: use it without --replay, --record "
                                 "and --twice");
    }
    if (!f->seeds_given && (f->shard_count != 1 || f->jobs != 1 ||
                            (f->time_budget_s != 0 && f->shrink_path == NULL) || f->reach_all ||
                            f->stop_at_failure)) {
        return usage_error("%s", "--shard, --jobs, --time-budget, --reach-all and --stop-at-failure are "
                                 "for a sweep: add --seeds COUNT");
    }
    if (f->seeds_given && !f->seed_given) f->seed = 1;
    return 0;
}

/* ---- one seed ---- */

/* The test-only --nondeterministic: each run draws one decision whose bound depends on a
 * count kept across runs in this process (a per-process value in a decision, which the
 * determinism rules forbid), then runs the workload. --check-determinism must name it. */
typedef struct nondeterministic_arg {
    const tw_workload *workload;
    void *state;
} nondeterministic_arg;

static void nondeterministic_run(void *arg) {
    static uint32_t runs; /* outlives the runs: the nondeterminism */
    nondeterministic_arg *a = arg;
    (void)tw_sim_decide(tw_sim_purpose_workload, 2u + (runs++ % 2u));
    a->workload->run(a->state);
}

typedef struct seed_result {
    tw_driver_seed run;
    tw_workload_verdict verdict; /* nondeterminism counts as safety */
    uint64_t values[TW_WORKLOAD_OPTIONS_MAX];
    uint64_t wall_ns;
    char message[TW_WORKLOAD_MESSAGE_SIZE];
    char described[TW_SIM_MESSAGE_SIZE];
    tw_workload_counts counts;
} seed_result;

static uint64_t wall_now_ns(void) {
    /* Wall time only measures; it never reaches a simulated world. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * NS_PER_S + (uint64_t)now.tv_nsec;
}

static void run_seed(const flags *f, uint64_t seed, const tw_sim_source *source,
                     tw_sim_trace *trace, seed_result *out) {
    const tw_workload *w = f->workload;
    memcpy(out->values, f->values, sizeof(out->values));
    w->draw(seed, out->values, f->given);
    tw_sim_options options = {
        .seed = seed,
        .strategy = f->strategy,
        .pct_depth = (uint32_t)f->pct_depth,
        .pct_steps_expected = f->pct_steps,
        .steps_max = f->steps_max,
        .source = source,
        .trace = trace,
    };
    void *state = w->create(out->values, &options);
    TW_ASSERT_MSG(state != NULL, "twin-sim: out of memory for the workload's state");
    /* PCT's k: the run's length, measured by a calibration run of the same world under the
     * random strategy (a fixed guess misses bugs in short runs: the change points fall past
     * their end). --pct-steps overrides it. */
    if (f->pct_steps == 0 && tw_sim_strategy_resolve(&options) == tw_sim_strategy_pct &&
        source->kind == tw_sim_source_seed) {
        tw_sim_options calibration = options;
        calibration.strategy = tw_sim_strategy_random;
        calibration.trace = NULL;
        tw_sim_run(&calibration, w->run, state, &out->run.report);
        options.pct_steps_expected = out->run.report.steps > 0 ? out->run.report.steps : 1;
    }
    uint64_t start_ns = wall_now_ns();
    tw_driver_run_seed(&options, f->nondeterministic ? nondeterministic_run : w->run,
                       f->nondeterministic ? (void *)&(nondeterministic_arg){w, state} : state,
                       f->twice, &out->run);
    out->wall_ns = wall_now_ns() - start_ns;
    out->message[0] = '\0';
    out->verdict = w->check(state, &out->run.report, out->message, sizeof(out->message));
    if (out->verdict == tw_workload_passed && out->run.report.allocations_live != 0) {
        out->verdict = tw_workload_safety;
        snprintf(out->message, sizeof(out->message),
                 "%" PRIu64 " of the run's %" PRIu64 " blocks were never freed (a leak)",
                 out->run.report.allocations_live, out->run.report.allocations);
    }
    if (!out->run.deterministic) out->verdict = tw_workload_safety;
    out->described[0] = '\0';
    if (w->describe != NULL) w->describe(state, out->described, sizeof(out->described));
    out->counts = (tw_workload_counts){0};
    if (w->counts != NULL) w->counts(state, &out->counts);
    w->destroy(state);
}

/* "repro: twin-sim --workload W --seed S --strategy X --option value ..." */
static void format_repro(const char *program, const flags *f, const seed_result *r, char *out,
                         size_t size) {
    char options[TWIN_SIM_OPTIONS_SIZE];
    tw_workload_format_flags(f->workload, r->values, options, sizeof(options));
    int n = snprintf(out, size, "repro: %s --workload %s --seed %" PRIu64 " --strategy %s %s",
                     program, f->workload->name, r->run.report.seed,
                     tw_sim_strategy_name(r->run.report.strategy), options);
    size_t used = n > 0 ? (size_t)n : 0;
    if (f->pct_depth != 0 && used < size) used += (size_t)snprintf(out + used, size - used, " --pct-depth %" PRIu64, f->pct_depth);
    if (f->pct_steps != 0 && used < size) used += (size_t)snprintf(out + used, size - used, " --pct-steps %" PRIu64, f->pct_steps);
    if (f->steps_max != 0 && used < size) used += (size_t)snprintf(out + used, size - used, " --steps-max %" PRIu64, f->steps_max);
    if (f->replay_path != NULL && used < size) used += (size_t)snprintf(out + used, size - used, " --replay %s", f->replay_path);
    if (f->plant != NULL && used < size) used += (size_t)snprintf(out + used, size - used, " --plant %s", f->plant);
    if (f->twice && used < size) (void)snprintf(out + used, size - used, " --twice");
}

/* "#! world: --workload W --seed S --strategy X --option value ...": a recording's first
 * line, which names its world for the fuzz target and for twin-sim --replay (fuzz_world.h). */
static void format_world_line(const flags *f, const seed_result *r, char *out, size_t size) {
    tw_fuzz_world world = {.workload = f->workload, .seed = r->run.report.seed,
                           .strategy = r->run.report.strategy, .steps_max = f->steps_max};
    memcpy(world.values, r->values, sizeof(world.values));
    if (world.strategy == tw_sim_strategy_pct) {
        world.pct_depth = r->run.report.pct_depth;
        world.pct_steps = r->run.report.pct_steps_expected;
    }
    char flags_text[TWIN_SIM_OPTIONS_SIZE];
    tw_fuzz_world_format(&world, flags_text, sizeof(flags_text));
    snprintf(out, size, "%s%s", TW_FUZZ_WORLD_LINE, flags_text);
}

static void format_options_line(const flags *f, uint64_t seed, const uint64_t *values, char *out,
                                size_t size) {
    char options[TWIN_SIM_OPTIONS_SIZE];
    tw_workload_format_values(f->workload, values, options, sizeof(options));
    snprintf(out, size, "twin-sim: workload=%s seed=%" PRIu64 " %s", f->workload->name, seed, options);
}

/* What a failing seed prints: its options, its run line, what failed, and the repro. */
static void format_failure(const char *program, const flags *f, const seed_result *r, char *out,
                           size_t size) {
    char options[TWIN_SIM_LINE_SIZE];
    char repro[TWIN_SIM_LINE_SIZE];
    char line[TWIN_SIM_LINE_SIZE];
    format_options_line(f, r->run.report.seed, r->values, options, sizeof(options));
    format_repro(program, f, r, repro, sizeof(repro));
    FILE *stream = fmemopen(line, sizeof(line), "w");
    TW_ASSERT(stream != NULL);
    tw_driver_print_line(stream, &r->run.report);
    fclose(stream);
    line[sizeof(line) - 1] = '\0';
    size_t used = (size_t)snprintf(out, size, "%s\n%s", options, line);
    if (r->verdict != tw_workload_passed && r->message[0] != '\0' && used < size) {
        used += (size_t)snprintf(out + used, size - used, "%s failure: %s\n",
                                 tw_workload_verdict_name(r->verdict), r->message);
    }
    if (!r->run.deterministic && used < size) {
        used += (size_t)snprintf(out + used, size - used,
                                 "nondeterminism: hashes %016" PRIx64 " and %016" PRIx64 "; %s\n",
                                 r->run.report.hash, r->run.hash_second, r->run.divergence);
    }
    if (used < size) (void)snprintf(out + used, size - used, "%s\n", repro);
}

static int exit_of(uint64_t safety, uint64_t liveness) {
    if (safety > 0) return TWIN_SIM_EXIT_SAFETY;
    return liveness > 0 ? TWIN_SIM_EXIT_LIVENESS : TWIN_SIM_EXIT_PASSED;
}

/* "name:count," for each fault of the run that happened, or "none". */
static void format_faults(const tw_sim_report *report, char *out, size_t size) {
    const tw_sim_net_counts *n = &report->net;
    const struct {
        const char *name;
        uint64_t count;
    } faults[] = {
        {"partial_sends", n->partial_sends},       {"partial_receives", n->partial_receives},
        {"latency_spikes", n->latency_spikes},     {"resets", n->resets},
        {"refused_connects", n->refused},          {"connect_timeouts", n->connect_timeouts},
        {"partitions", n->partitions},             {"half_dead", n->half_dead},
        {"corruptions", n->corruptions},           {"allocations_failed", report->allocations_failed},
        {"spawns_failed", report->spawns_failed},  {"submits_refused", report->submits_refused},
        {"accepts_failed", report->accepts_failed}, {"sockets_failed", report->sockets_failed},
    };
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]) && used < size; i++) {
        if (faults[i].count == 0) continue;
        used += (size_t)snprintf(out + used, size - used, "%s%s:%" PRIu64, used == 0 ? "" : ",",
                                 faults[i].name, faults[i].count);
    }
    if (used == 0) snprintf(out, size, "none");
}

/* The run in one line: what it did, what went wrong on purpose, how long, its hash. */
static void print_summary(const flags *f, const seed_result *r) {
    char faults[512];
    format_faults(&r->run.report, faults, sizeof(faults));
    double wall_s = (double)r->wall_ns / (double)NS_PER_S;
    double runs = f->twice ? 2.0 : 1.0;
    printf("summary: workload=%s seed=%" PRIu64 " verdict=%s requests=%" PRIu64 " events=%" PRIu64
           " evictions=%" PRIu64 " faults=%s simulated_s=%.3f wall_s=%.4f events_per_wall_s=%.0f"
           " hash=%016" PRIx64 "\n",
           f->workload->name, r->run.report.seed, tw_workload_verdict_name(r->verdict),
           r->counts.requests, r->counts.events, r->counts.evictions, faults,
           (double)r->run.report.time_ns / (double)NS_PER_S, wall_s,
           wall_s > 0 ? (double)r->counts.events * runs / wall_s : 0.0, r->run.report.hash);
}

static int run_one(const char *program, const flags *f) {
    tw_sim_source source = {.kind = tw_sim_source_seed};
    tw_sim_decision *replayed = NULL;
    if (f->replay_bytes != NULL) {
        source = (tw_sim_source){.kind = tw_sim_source_bytes, .bytes = f->replay_bytes,
                                 .bytes_count = f->replay_bytes_count};
    } else if (f->replay_path != NULL) {
        char error[512];
        size_t count = 0;
        bool unrecorded_zero = false;
        replayed = tw_sim_decisions_read(f->replay_path, &count, &unrecorded_zero, error, sizeof(error));
        if (replayed == NULL) {
            fprintf(stderr, "twin-sim: --replay: %s\n", error);
            return TWIN_SIM_EXIT_USAGE;
        }
        source = (tw_sim_source){.kind = tw_sim_source_replay, .decisions = replayed,
                                 .decisions_count = count, .unrecorded_zero = unrecorded_zero};
    }
    tw_sim_trace trace = {0};
    seed_result *r = calloc(1, sizeof(*r));
    TW_ASSERT_MSG(r != NULL, "twin-sim: out of memory");
    bool traced = f->record_path != NULL || f->trace_path != NULL;
    run_seed(f, f->seed, &source, traced ? &trace : NULL, r);
    char block[TWIN_SIM_BLOCK_SIZE];
    if (r->verdict != tw_workload_passed) {
        format_failure(program, f, r, block, sizeof(block));
        fputs(block, stdout);
    } else {
        format_options_line(f, f->seed, r->values, block, sizeof(block));
        puts(block);
        tw_driver_print_line(stdout, &r->run.report);
    }
    double wall_s = (double)r->wall_ns / (double)NS_PER_S;
    printf("%s: %s; wall_s=%.3f steps_per_wall_s=%.0f\n", f->workload->name,
           r->described[0] != '\0' ? r->described : "-", wall_s,
           wall_s > 0 ? (double)r->run.report.steps * (f->twice ? 2 : 1) / wall_s : 0.0);
    if (r->run.report.net.connections > 0) {
        tw_driver_print_net(stdout, f->workload->name, &r->run.report.net);
    }
    print_summary(f, r);
    if (f->replay_bytes != NULL) {
        printf("replay: %s is a fuzzer's input: workload byte, 8 seed bytes, then %zu bytes of "
               "decisions (the seed's PCG after them)\n", f->replay_path, f->replay_bytes_count);
    }
    if (replayed != NULL) {
        const tw_sim_report *rep = &r->run.report;
        printf("replay: %" PRIu64 " decisions taken from %s (matched by purpose, fiber and ordinal), "
               "%" PRIu64 " asked for and not recorded, %" PRIu64 " recorded with another bound "
               "(these %s)%s%s\n",
               rep->replay_used, f->replay_path, rep->replay_missing, rep->replay_mismatches,
               source.unrecorded_zero ? "took 0: the file is a shrunk recording" : "came from the seed",
               rep->replay_mismatches > 0 ? "; first: " : "", rep->replay_mismatch_first);
    }
    int rc = exit_of(r->verdict == tw_workload_safety, r->verdict == tw_workload_liveness);
    if (f->trace_path != NULL) {
        char error[256] = "";
        char title[128];
        snprintf(title, sizeof(title), "twin-sim workload=%s seed=%" PRIu64, f->workload->name, f->seed);
        if (!tw_trace_chrome_write(&trace, f->trace_path, title, error, sizeof(error))) {
            fprintf(stderr, "twin-sim: --trace: %s\n", error);
            rc = TWIN_SIM_EXIT_SAFETY;
        } else {
            printf("twin-sim: wrote the run's %zu trace entries to %s as Chrome trace-event JSON "
                   "(open it in ui.perfetto.dev, or offline: ./scripts/view-trace FILE)%s%s\n", trace.count, f->trace_path,
                   error[0] != '\0' ? "; " : "", error);
        }
    }
    if (f->record_path != NULL) {
        size_t count = 0;
        tw_sim_decision *decisions = tw_sim_trace_decisions(&trace, &count);
        char world[TWIN_SIM_LINE_SIZE];
        format_world_line(f, r, world, sizeof(world));
        if (decisions == NULL || trace.truncated ||
            !tw_sim_decisions_write(f->record_path, decisions, count, false, world)) {
            fprintf(stderr, "twin-sim: --record: cannot write %s\n", f->record_path);
            rc = TWIN_SIM_EXIT_SAFETY;
        } else {
            printf("twin-sim: recorded %zu decisions to %s\n", count, f->record_path);
        }
        free(decisions);
    }
    tw_sim_trace_free(&trace);
    free(r);
    free(replayed);
    return rc;
}

/* ---- shrinking a failing run's decisions ---- */

#define SHRINK_RUNS_MAX 5000u
#define SHRINK_TIME_BUDGET_S_DEFAULT 60u
#define SHRINK_SHAPE_SIZE 160u

/* A failure's shape: its verdict, outcome and message with every number made '#', so that
 * "packet 48 ... index 10" and "packet 12 ... index 3" are the same failure. */
static void failure_shape(const seed_result *r, char *shape, size_t size) {
    size_t used = (size_t)snprintf(shape, size, "%s/%s/", tw_workload_verdict_name(r->verdict),
                                   tw_sim_outcome_name(r->run.report.outcome));
    bool in_number = false;
    for (const char *c = r->message; *c != '\0' && *c != '\n' && used + 1 < size; c++) {
        bool digit = *c >= '0' && *c <= '9';
        if (digit && in_number) continue;
        shape[used++] = digit ? '#' : *c;
        in_number = digit;
    }
    shape[used] = '\0';
}

typedef struct shrinker {
    const flags *f;
    seed_result *r;
    char target[SHRINK_SHAPE_SIZE];
    uint64_t runs;
    uint64_t deadline_ns;
} shrinker;

/* Whether the shrinker may try another run: within its run count and its time. */
static bool shrink_more(const shrinker *s) {
    return s->runs < SHRINK_RUNS_MAX && wall_now_ns() < s->deadline_ns;
}

/* Replays decisions; true when the run fails the way the original did. */
static bool shrink_try(shrinker *s, const tw_sim_decision *decisions, size_t count) {
    s->runs++;
    tw_sim_source source = {.kind = tw_sim_source_replay, .decisions = decisions, .decisions_count = count,
                            .unrecorded_zero = true};
    run_seed(s->f, s->f->seed, &source, NULL, s->r);
    if (s->r->verdict == tw_workload_passed) return false;
    char shape[SHRINK_SHAPE_SIZE];
    failure_shape(s->r, shape, sizeof(shape));
    return strcmp(shape, s->target) == 0;
}

static int run_shrink(const flags *f) {
    char error[512];
    size_t count = 0;
    tw_sim_decision *decisions = tw_sim_decisions_read(f->shrink_path, &count, NULL, error, sizeof(error));
    if (decisions == NULL) {
        fprintf(stderr, "twin-sim: --shrink: %s\n", error);
        return TWIN_SIM_EXIT_USAGE;
    }
    tw_sim_decision *trial = malloc((count == 0 ? 1 : count) * sizeof(*trial));
    uint64_t budget_s = f->time_budget_s != 0 ? f->time_budget_s : SHRINK_TIME_BUDGET_S_DEFAULT;
    shrinker s = {.f = f, .r = calloc(1, sizeof(seed_result)), .deadline_ns = wall_now_ns() + budget_s * NS_PER_S};
    TW_ASSERT_MSG(trial != NULL && s.r != NULL, "twin-sim: out of memory");
    size_t original = count;
    s.runs++;
    tw_sim_source source = {.kind = tw_sim_source_replay, .decisions = decisions, .decisions_count = count,
                            .unrecorded_zero = true};
    run_seed(f, f->seed, &source, NULL, s.r);
    if (s.r->verdict == tw_workload_passed) {
        fprintf(stderr, "twin-sim: --shrink: %s replays to a passing run (seed %" PRIu64
                        ", workload %s): record a failing run with --record, with the same "
                        "seed and options\n", f->shrink_path, f->seed, f->workload->name);
        free(trial), free(decisions), free(s.r);
        return TWIN_SIM_EXIT_USAGE;
    }
    failure_shape(s.r, s.target, sizeof(s.target));
    printf("twin-sim: shrinking %zu decisions of a run that fails as: %s\n", count, s.target);
    /* Delete chunks, halving their size; then zero values one by one; until a pass finds
     * nothing more, or the run budget is spent. */
    bool progress = true;
    while (progress && shrink_more(&s)) {
        progress = false;
        for (size_t chunk = count / 2 > 0 ? count / 2 : 1; chunk >= 1 && shrink_more(&s); chunk /= 2) {
            for (size_t at = 0; at < count && shrink_more(&s);) {
                size_t cut = at + chunk <= count ? chunk : count - at;
                memcpy(trial, decisions, at * sizeof(*trial));
                memcpy(trial + at, decisions + at + cut, (count - at - cut) * sizeof(*trial));
                if (shrink_try(&s, trial, count - cut)) {
                    memcpy(decisions, trial, (count - cut) * sizeof(*trial));
                    count -= cut;
                    progress = true;
                } else {
                    at += cut;
                }
                tw_driver_progress("twin-sim: shrink", s.runs, SHRINK_RUNS_MAX, 0);
            }
            if (chunk == 1) break;
        }
        for (size_t i = 0; i < count && shrink_more(&s); i++) {
            if (decisions[i].value == 0) continue;
            uint64_t value = decisions[i].value;
            decisions[i].value = 0;
            if (shrink_try(&s, decisions, count)) {
                progress = true;
            } else {
                decisions[i].value = value;
            }
        }
    }
    uint64_t nonzero = 0;
    for (size_t i = 0; i < count; i++) nonzero += decisions[i].value != 0;
    /* The check: the shrunk file, read back, still fails the same way. */
    char out_path[4096];
    snprintf(out_path, sizeof(out_path), "%s.min", f->shrink_path);
    int rc = TWIN_SIM_EXIT_PASSED;
    size_t read_count = 0;
    tw_sim_decision *read_back = NULL;
    bool read_zero = false;
    char world[TWIN_SIM_LINE_SIZE];
    format_world_line(f, s.r, world, sizeof(world));
    if (!tw_sim_decisions_write(out_path, decisions, count, true, world) ||
        (read_back = tw_sim_decisions_read(out_path, &read_count, &read_zero, error, sizeof(error))) == NULL ||
        !read_zero) {
        fprintf(stderr, "twin-sim: --shrink: cannot write %s\n", out_path);
        rc = TWIN_SIM_EXIT_SAFETY;
    } else if (!shrink_try(&s, read_back, read_count)) {
        fprintf(stderr, "twin-sim: --shrink: %s no longer reproduces the failure\n", out_path);
        rc = TWIN_SIM_EXIT_SAFETY;
    } else {
        printf("twin-sim: shrank %zu decisions to %zu (%" PRIu64 " not zero) in %" PRIu64
               " runs%s; %s still fails as: %s\n", original, count, nonzero, s.runs,
               shrink_more(&s) ? "" : " (its budget ran out: a longer --time-budget may shrink it more)",
               out_path, s.target);
        printf("replay it: twin-sim --replay %s (its first line names the world)\n", out_path);
    }
    free(read_back);
    free(trial);
    free(decisions);
    free(s.r);
    return rc;
}

/* ---- sweeps ---- */

/* What a worker tells the parent, per seed: a fixed record, then the failure's text. */
typedef struct seed_record {
    uint64_t position; /* in the sweep */
    uint64_t hash;
    uint64_t steps;
    uint64_t wall_ns;
    uint32_t verdict;
    uint32_t text_size; /* bytes of failure text that follow */
    tw_sim_net_counts net;
    uint8_t reached[tw_reach_count]; /* 1: the run passed the marker */
} seed_record;

typedef struct sweep_totals {
    uint64_t ran;
    uint64_t safety;
    uint64_t liveness;
    uint64_t steps;
    tw_sim_net_counts net;
    uint64_t seeds_reaching[tw_reach_count];
    uint64_t *hashes; /* by position; 0: not run */
} sweep_totals;

static bool write_all(int fd, const void *data, size_t size) {
    const uint8_t *bytes = data;
    while (size > 0) {
        ssize_t n = write(fd, bytes, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        bytes += n;
        size -= (size_t)n;
    }
    return true;
}

static bool read_all(int fd, void *data, size_t size) {
    uint8_t *bytes = data;
    while (size > 0) {
        ssize_t n = read(fd, bytes, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        bytes += n;
        size -= (size_t)n;
    }
    return true;
}

/* Runs the sweep positions job, job + jobs, ... of this shard; reports each to fd. */
/* Records go to the parent in batches (a pipe write per seed cost more than a small world's
 * run): when the batch is full, after a failure (shown at once), and every
 * SWEEP_FLUSH_NS (progress). */
#define SWEEP_BATCH_BYTES (64u * 1024u)
#define SWEEP_FLUSH_NS (100u * 1000u * 1000u)

static bool batch_flush(int fd, char *batch, size_t *used) {
    bool ok = write_all(fd, batch, *used);
    *used = 0;
    return ok;
}

static void sweep_worker(const char *program, const flags *f, uint64_t job, uint64_t deadline_ns, int fd) {
    seed_result *r = calloc(1, sizeof(*r));
    char *text = malloc(TWIN_SIM_BLOCK_SIZE);
    char *batch = malloc(SWEEP_BATCH_BYTES);
    TW_ASSERT_MSG(r != NULL && text != NULL && batch != NULL, "twin-sim: out of memory");
    _Static_assert(sizeof(seed_record) + TWIN_SIM_BLOCK_SIZE <= SWEEP_BATCH_BYTES, "a record fits a batch");
    size_t used = 0;
    uint64_t flushed_ns = wall_now_ns();
    uint64_t stride = f->shard_count * f->jobs;
    for (uint64_t position = f->shard_index + job * f->shard_count; position < f->seeds; position += stride) {
        if (deadline_ns != 0 && wall_now_ns() >= deadline_ns) break;
        tw_sim_source source = {.kind = tw_sim_source_seed};
        run_seed(f, f->seed + position, &source, NULL, r);
        seed_record record = {
            .position = position,
            .hash = r->run.report.hash,
            .steps = r->run.report.steps,
            .wall_ns = r->wall_ns,
            .verdict = r->verdict,
            .net = r->run.report.net,
        };
        for (uint32_t m = 0; m < tw_reach_count; m++) record.reached[m] = r->run.report.reached[m] != 0;
        text[0] = '\0';
        if (r->verdict != tw_workload_passed) format_failure(program, f, r, text, TWIN_SIM_BLOCK_SIZE);
        record.text_size = (uint32_t)strlen(text);
        if (used + sizeof(record) + record.text_size > SWEEP_BATCH_BYTES && !batch_flush(fd, batch, &used)) break;
        memcpy(batch + used, &record, sizeof(record));
        memcpy(batch + used + sizeof(record), text, record.text_size);
        used += sizeof(record) + record.text_size;
        uint64_t now_ns = wall_now_ns();
        if (record.text_size > 0 || now_ns - flushed_ns >= SWEEP_FLUSH_NS) {
            if (!batch_flush(fd, batch, &used)) break;
            flushed_ns = now_ns;
        }
        if (record.text_size > 0 && f->stop_at_failure) break;
        if (position > UINT64_MAX - stride) break;
    }
    (void)batch_flush(fd, batch, &used);
    free(batch);
    free(text);
    free(r);
}

static void sweep_take(sweep_totals *t, const seed_record *record, const char *text) {
    t->ran++;
    t->steps += record->steps;
    t->hashes[record->position] = record->hash | 1u; /* never 0: 0 marks "not run" */
    tw_sim_net_counts_add(&t->net, &record->net);
    for (uint32_t m = 0; m < tw_reach_count; m++) t->seeds_reaching[m] += record->reached[m];
    if (record->verdict == tw_workload_safety) t->safety++;
    if (record->verdict == tw_workload_liveness) t->liveness++;
    if (record->text_size > 0) {
        fputs(text, stdout);
        fflush(stdout);
    }
}

/* The reachability table: seeds that reached each marker, and the markers none reached. */
static uint64_t print_reach(const sweep_totals *t) {
    uint64_t unreached = 0;
    printf("twin-sim: reachability (seeds that passed each marker, of %" PRIu64 "):\n", t->ran);
    for (uint32_t m = 0; m < tw_reach_count; m++) {
        printf("  %-34s %10" PRIu64 "  %s%s\n", tw_reach_name((tw_reach)m), t->seeds_reaching[m],
               tw_reach_description((tw_reach)m), t->seeds_reaching[m] == 0 ? "  NOT REACHED" : "");
        if (t->seeds_reaching[m] == 0) unreached++;
    }
    printf("twin-sim: %" PRIu64 " of %u markers reached\n", (uint64_t)tw_reach_count - unreached,
           (unsigned)tw_reach_count);
    return unreached;
}

static int run_sweep(const char *program, const flags *f) {
    uint64_t shard_seeds = f->seeds / f->shard_count + (f->shard_index < f->seeds % f->shard_count);
    if (f->seeds > (UINT64_MAX >> 4)) return usage_error("%s", "--seeds is too large to track");
    sweep_totals totals = {.hashes = calloc(f->seeds, sizeof(uint64_t))};
    TW_ASSERT_MSG(totals.hashes != NULL, "twin-sim: out of memory for the sweep");
    uint64_t start_ns = wall_now_ns();
    uint64_t deadline_ns = f->time_budget_s != 0 ? start_ns + f->time_budget_s * NS_PER_S : 0;
    printf("twin-sim: workload=%s seeds %" PRIu64 "..%" PRIu64 " shard %" PRIu64 "/%" PRIu64
           " (%" PRIu64 " seeds) jobs=%" PRIu64 "%s%s\n",
           f->workload->name, f->seed, f->seed + f->seeds - 1, f->shard_index, f->shard_count,
           shard_seeds, f->jobs, f->twice ? " each run twice" : "",
           f->time_budget_s != 0 ? " within a time budget" : "");
    fflush(stdout);

    int fds[TWIN_SIM_JOBS_MAX];
    pid_t pids[TWIN_SIM_JOBS_MAX];
    for (uint64_t j = 0; j < f->jobs; j++) {
        int pipe_fds[2];
        if (pipe(pipe_fds) != 0) {
            perror("twin-sim: pipe");
            return TWIN_SIM_EXIT_SAFETY;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("twin-sim: fork");
            return TWIN_SIM_EXIT_SAFETY;
        }
        if (pid == 0) {
            close(pipe_fds[0]);
            for (uint64_t k = 0; k < j; k++) close(fds[k]);
            sweep_worker(program, f, j, deadline_ns, pipe_fds[1]);
            close(pipe_fds[1]);
            _exit(0);
        }
        close(pipe_fds[1]);
        fds[j] = pipe_fds[0];
        pids[j] = pid;
    }
    char *text = malloc(TWIN_SIM_BLOCK_SIZE + 1);
    TW_ASSERT_MSG(text != NULL, "twin-sim: out of memory");
    uint64_t open_count = f->jobs;
    struct pollfd polls[TWIN_SIM_JOBS_MAX];
    while (open_count > 0) {
        nfds_t n = 0;
        for (uint64_t j = 0; j < f->jobs; j++) {
            if (fds[j] >= 0) polls[n++] = (struct pollfd){.fd = fds[j], .events = POLLIN};
        }
        if (poll(polls, n, -1) < 0) {
            if (errno == EINTR) continue;
            perror("twin-sim: poll");
            break;
        }
        for (nfds_t k = 0; k < n; k++) {
            if (polls[k].revents == 0) continue;
            seed_record record;
            bool got = read_all(polls[k].fd, &record, sizeof(record)) &&
                       record.text_size < TWIN_SIM_BLOCK_SIZE && record.position < f->seeds &&
                       read_all(polls[k].fd, text, record.text_size);
            if (!got) {
                for (uint64_t j = 0; j < f->jobs; j++) {
                    if (fds[j] == polls[k].fd) fds[j] = -1;
                }
                close(polls[k].fd);
                open_count--;
                continue;
            }
            text[record.text_size] = '\0';
            sweep_take(&totals, &record, text);
            tw_driver_progress("twin-sim", totals.ran, shard_seeds, totals.safety + totals.liveness);
        }
    }
    free(text);
    uint64_t crashed = 0;
    for (uint64_t j = 0; j < f->jobs; j++) {
        int status = 0;
        if (waitpid(pids[j], &status, 0) != pids[j] || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            crashed++;
        }
    }
    uint64_t wall_ns = wall_now_ns() - start_ns;
    /* The sweep's hash: every seed's, in seed order. */
    uint64_t sweep_hash = 0;
    for (uint64_t p = 0; p < f->seeds; p++) {
        if (totals.hashes[p] != 0) sweep_hash = sweep_hash * 0x100000001b3ULL ^ totals.hashes[p];
    }
    double wall_s = (double)wall_ns / (double)NS_PER_S;
    if (totals.ran < shard_seeds && crashed == 0) {
        if (f->stop_at_failure && totals.safety + totals.liveness > 0) {
            printf("twin-sim: stopped at the first failure after %" PRIu64 " of %" PRIu64 " seeds\n",
                   totals.ran, shard_seeds);
        } else {
            printf("twin-sim: the time budget (%" PRIu64 " s) ended the sweep after %" PRIu64 " of %" PRIu64
                   " seeds\n", f->time_budget_s, totals.ran, shard_seeds);
        }
    }
    if (crashed > 0) {
        printf("twin-sim: %" PRIu64 " job(s) died before finishing; %" PRIu64 " of %" PRIu64
               " seeds reported\n", crashed, totals.ran, shard_seeds);
        totals.safety++;
    }
    printf("twin-sim: workload=%s seeds %" PRIu64 "..%" PRIu64 " shard %" PRIu64 "/%" PRIu64
           ": %" PRIu64 " run, %" PRIu64 " passed, %" PRIu64 " failed (%" PRIu64 " safety, %" PRIu64
           " liveness)%s, %" PRIu64 " steps, wall %.3f s, %.1f seeds/s, sweep_hash=%016" PRIx64 "\n",
           f->workload->name, f->seed, f->seed + f->seeds - 1, f->shard_index, f->shard_count,
           totals.ran, totals.ran - totals.safety - totals.liveness, totals.safety + totals.liveness,
           totals.safety, totals.liveness, f->twice ? " (each run twice)" : "", totals.steps, wall_s,
           wall_s > 0 ? (double)totals.ran / wall_s : 0.0, sweep_hash);
    if (totals.net.connections > 0) tw_driver_print_net(stdout, "twin-sim", &totals.net);
    uint64_t unreached = print_reach(&totals);
    free(totals.hashes);
    if (f->reach_all && unreached > 0) {
        printf("twin-sim: --reach-all: %" PRIu64 " marker(s) reached by no seed: a workload or fault "
               "is missing for them\n", unreached);
        totals.safety++;
    }
    return exit_of(totals.safety, totals.liveness);
}

#define REPLAY_FILE_SIZE_MAX (64u * 1024u * 1024u)

/* --replay FILE or --shrink FILE without --seed: the file names its world. A recording says it on its
 * "#! world:" line; a fuzzer's input (fuzz/fuzz_simulator) carries its workload, seed and
 * decisions as bytes (fuzz_world.h), and flags that would change that world are refused. */
static int replay_world_adopt(flags *f, const char *path, tw_fuzz_world *world, uint8_t **data_out) {
    const char *flag = path == f->shrink_path ? "--shrink" : "--replay";
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        return usage_error("%s: cannot open %s: %s", flag, path, strerror(errno));
    }
    uint8_t *data = malloc(REPLAY_FILE_SIZE_MAX);
    TW_ASSERT_MSG(data != NULL, "twin-sim: out of memory");
    size_t size = fread(data, 1, REPLAY_FILE_SIZE_MAX, file);
    bool too_big = size == REPLAY_FILE_SIZE_MAX && fgetc(file) != EOF;
    fclose(file);
    *data_out = data;
    if (too_big) return usage_error("%s: %s is larger than %u bytes", flag, path, REPLAY_FILE_SIZE_MAX);
    bool recording = tw_fuzz_world_is_recording(data, size);
    if (recording && f->seed_given) return 0; /* the flags name the world, as before */
    bool options_given = false;
    for (uint32_t i = 0; i < TW_WORKLOAD_OPTIONS_MAX; i++) options_given = options_given || f->given[i];
    if (!recording && f->shrink_path == path) {
        return usage_error("--shrink: %s is a fuzzer's input; shrink it with the fuzzer (libFuzzer "
                           "-minimize_crash=1, afl-tmin), or record its run first: twin-sim --replay "
                           "%s --record run.decisions, then --shrink run.decisions", path, path);
    }
    if (!recording && (f->seed_given || f->strategy_given || options_given)) {
        return usage_error("--replay: %s is a fuzzer's input, which carries its own seed, strategy "
                           "and options: drop --seed, --strategy and the workload's options "
                           "(--workload W reads its bytes as W's, as the fuzz target does under "
                           "TWIN_FUZZ_WORKLOAD=W)", path);
    }
    char error[TW_FUZZ_WORLD_ERROR_SIZE];
    if (!tw_fuzz_world_read(data, size, path, f->workload_given ? f->workload : NULL, world,
                            error, sizeof(error))) {
        return usage_error("%s: %s", flag, error);
    }
    f->workload = world->workload;
    f->seed = world->seed;
    f->seed_given = true;
    f->strategy = world->strategy;
    f->strategy_given = true;
    if (f->pct_depth == 0) f->pct_depth = world->pct_depth;
    if (f->pct_steps == 0) f->pct_steps = world->pct_steps;
    if (f->steps_max == 0) f->steps_max = world->steps_max;
    memcpy(f->values, world->values, sizeof(f->values));
    for (uint32_t i = 0; i < f->workload->options_count; i++) f->given[i] = true;
    if (world->kind == tw_fuzz_world_bytes) {
        f->replay_bytes = world->source.bytes;
        f->replay_bytes_count = world->source.bytes_count;
    }
    return 0;
}

int main(int argc, char **argv) {
    flags f;
    int rc = parse_flags(argc, argv, &f);
    if (rc != 0) return rc;
    tw_fuzz_world world = {0};
    uint8_t *replay_data = NULL;
    const char *world_path = f.shrink_path != NULL ? f.shrink_path : f.replay_path;
    if (world_path != NULL && !f.seeds_given) rc = replay_world_adopt(&f, world_path, &world, &replay_data);
    if (rc == 0) {
        if (!f.seed_given && !f.seeds_given) {
            /* No seed given: pick one (outside any world) and print it, so the run can be repeated. */
            if (getrandom(&f.seed, sizeof(f.seed), 0) != (ssize_t)sizeof(f.seed)) f.seed = 0;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (f.shrink_path != NULL) {
            rc = run_shrink(&f);
        } else {
            rc = f.seeds_given ? run_sweep(argv[0], &f) : run_one(argv[0], &f);
        }
    }
    /* Every path frees what it read: the asan preset's leak check runs on usage errors too. */
    tw_fuzz_world_free(&world);
    free(replay_data);
    return rc;
}
