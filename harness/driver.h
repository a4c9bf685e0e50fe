/* twin harness: running seeds of a simulated world, for twin-sim and the sim tests. */
#ifndef TWIN_HARNESS_DRIVER_H
#define TWIN_HARNESS_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <twin/sim.h>

#define TW_DRIVER_DIVERGENCE_SIZE 1024u

typedef struct tw_driver_seed {
    tw_sim_report report;
    bool deterministic;      /* the second run gave the same hash and outcome */
    uint64_t hash_second;
    char divergence[TW_DRIVER_DIVERGENCE_SIZE]; /* where the runs part, when they do */
} tw_driver_seed;

/* Runs one world. With twice, runs it again and compares hashes; on a mismatch runs both
 * once more with traces and names the first entry where they part. */
void tw_driver_run_seed(const tw_sim_options *options, tw_thread_fn main_fn, void *arg, bool twice,
                        tw_driver_seed *seed);

/* Runs options twice with traces and writes where they first differ into divergence.
 * Returns false when the traces are equal. */
bool tw_driver_diagnose(const tw_sim_options *options, tw_thread_fn main_fn, void *arg,
                        char *divergence, size_t divergence_size);

/* "seed=42 strategy=pct steps=.. switches=.. time_ns=.. hash=0123456789abcdef outcome=passed" */
void tw_driver_print_line(FILE *out, const tw_sim_report *report);

/* "<name>: network: ... connections ...; faults: ..." */
void tw_driver_print_net(FILE *out, const char *name, const tw_sim_net_counts *net);

/* A seed or count: decimal or 0x-prefixed hex, the whole string, no sign. */
bool tw_driver_parse_u64(const char *text, uint64_t *value);

/* A progress line on stderr for sweeps, only when stderr is a terminal, at most ~10/s;
 * done == total ends the line. */
void tw_driver_progress(const char *what, uint64_t done, uint64_t total, uint64_t failed);

#endif
