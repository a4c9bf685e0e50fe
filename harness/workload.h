/* twin harness: workloads, the worlds twin-sim builds from a seed.
 *
 * A workload names its options (each a number in a range, a flag of twin-sim), draws the
 * ones not given from the seed alone (swarm testing: each seed a different shape of world),
 * makes its state, runs as the world's main fiber, and checks what only the end of a run
 * can show. Every option's value is printed with the run, and a repro line pins them all,
 * so a run is reproduced exactly even if the drawing changes later.
 *
 * Life of a seed: draw -> create (state, and the world's options: faults, PCT range) ->
 * tw_sim_run(run) [-> tw_sim_run(run) again with --twice: run starts by resetting the
 * state] -> check -> destroy. */
#ifndef TWIN_HARNESS_WORKLOAD_H
#define TWIN_HARNESS_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <twin/os.h>
#include <twin/sim.h>

#define TW_WORKLOAD_OPTIONS_MAX 32u
#define TW_WORKLOAD_MESSAGE_SIZE 4096u

typedef struct tw_workload_option {
    const char *name; /* the flag without "--" */
    uint64_t min;
    uint64_t max;
    const char *help; /* what it is, and how the seed draws it */
} tw_workload_option;

typedef enum tw_workload_verdict {
    tw_workload_passed = 0,
    tw_workload_safety,   /* something wrong happened (an oracle, an assertion, a deadlock) */
    tw_workload_liveness, /* nothing wrong, but the work did not finish in the time allowed */
} tw_workload_verdict;

/* What a run did, for the one-line summary (0 where a workload has no such thing). */
typedef struct tw_workload_counts {
    uint64_t requests;  /* requests executed */
    uint64_t events;    /* units of work checked: ledger events, bytes, tasks, lock entries */
    uint64_t evictions;
} tw_workload_counts;

typedef struct tw_workload {
    const char *name;
    const char *summary;
    const tw_workload_option *options;
    uint32_t options_count;
    /* Fills every value not given, from the seed alone. */
    void (*draw)(uint64_t seed, uint64_t *values, const bool *given);
    /* The state for one seed (NULL when memory is short), and what the world needs. */
    void *(*create)(const uint64_t *values, tw_sim_options *sim);
    tw_thread_fn run; /* the world's main fiber; its argument is the state */
    /* After the last run of the seed: the verdict (the run's own outcome included) and, when
     * it is not passed, a message naming what went wrong. */
    tw_workload_verdict (*check)(void *state, const tw_sim_report *report, char *message,
                                 size_t message_size);
    /* One line of what the run did (requests, evictions, ...), or nothing. */
    void (*describe)(void *state, char *line, size_t line_size);
    /* Optional: the counts of the summary line. */
    void (*counts)(void *state, tw_workload_counts *counts);
    void (*destroy)(void *state);
} tw_workload;

/* Every workload, the default first. */
extern const tw_workload *const tw_workloads[];
extern const uint32_t tw_workloads_count;
const tw_workload *tw_workload_find(const char *name);

/* The index of the option named name (without "--"), or -1. */
int tw_workload_option_find(const tw_workload *workload, const char *name);

/* A value in [min, max] from a generator made from the seed and a salt (one per option, so
 * adding an option does not change how the others are drawn). */
uint64_t tw_workload_draw(uint64_t seed, uint32_t salt, uint64_t min, uint64_t max);

/* "name=value name=value ..." for every option. */
void tw_workload_format_values(const tw_workload *workload, const uint64_t *values, char *out,
                               size_t out_size);
/* " --name value --name value ..." for every option. */
void tw_workload_format_flags(const tw_workload *workload, const uint64_t *values, char *out,
                              size_t out_size);

const char *tw_workload_verdict_name(tw_workload_verdict verdict);

/* A check for workloads whose oracle asserts as the run goes: the run's own outcome is the
 * verdict (passed, or safety with the report's message). */
tw_workload_verdict tw_workload_check_outcome(void *state, const tw_sim_report *report,
                                              char *message, size_t message_size);

#endif
