/* twin harness: a world from a fuzzer's input, shared by the simulator fuzz target
 * (fuzz/fuzz_simulator.c) and `twin-sim --replay`, so that each replays the other's files.
 *
 * An input is one of two things:
 *  - a recording written by `twin-sim --record` (text: every byte printable or a space): its
 *    "#! world: --workload W --seed S --strategy X --option value ..." line names the world,
 *    and its decisions are replayed by key (purpose, fiber, ordinal), as `twin-sim --replay`
 *    does;
 *  - anything else, a fuzzer's bytes: byte 0 picks the workload (tw_workloads[b0 % count]),
 *    bytes 1..8 are the seed (little-endian; missing bytes are 0), which draws the workload's
 *    options as a sweep would; the strategy is random, and the rest of the bytes are the
 *    world's decisions (scheduler, network, faults, workload), in the order asked; when they
 *    run out, the seed's PCG streams take over. Options are then held to the caps below, so
 *    that a world stays small enough to run a thousand times a second. */
#ifndef TWIN_HARNESS_FUZZ_WORLD_H
#define TWIN_HARNESS_FUZZ_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <twin/sim.h>

#include "workload.h"

#define TW_FUZZ_WORLD_LINE "#! world:"
#define TW_FUZZ_WORLD_HEADER_SIZE 9u /* workload byte + 8 seed bytes */
#define TW_FUZZ_WORLD_ERROR_SIZE 512u

typedef enum tw_fuzz_world_kind {
    tw_fuzz_world_bytes = 1,
    tw_fuzz_world_recording,
} tw_fuzz_world_kind;

typedef struct tw_fuzz_world {
    tw_fuzz_world_kind kind;
    const tw_workload *workload;
    uint64_t seed;
    tw_sim_strategy strategy;
    uint64_t pct_depth; /* 0: drawn */
    uint64_t pct_steps; /* 0: default */
    uint64_t steps_max; /* 0: default */
    uint64_t values[TW_WORKLOAD_OPTIONS_MAX]; /* every option, drawn or given */
    tw_sim_source source;
    tw_sim_decision *decisions; /* a recording's, owned */
} tw_fuzz_world;

/* Reads data (size bytes; name is for messages) into world. The bytes must outlive the
 * world (a bytes source points into them). pinned (NULL: none) reads a fuzzer's bytes as
 * that workload's, byte 0 ignored (`twin-sim --replay FILE --workload W`, and the fuzz
 * target under TWIN_FUZZ_WORKLOAD=W). Returns false with a message in error when the input
 * is a recording that cannot be read (a bad line, an unknown workload or option); a
 * fuzzer's bytes always make a world. */
bool tw_fuzz_world_read(const uint8_t *data, size_t size, const char *name, const tw_workload *pinned,
                        tw_fuzz_world *world, char *error, size_t error_size);
void tw_fuzz_world_free(tw_fuzz_world *world);

/* True when data is text (printable ASCII, tabs and line ends), which is read as a recording
 * (and rejected when it is not one); false for a fuzzer's bytes. */
bool tw_fuzz_world_is_recording(const uint8_t *data, size_t size);

/* Holds a drawn world to the fuzzing caps, the same in every reader (fuzz_world.c: cluster
 * never large, at most 8 users of 24 packets, a small world's ranges; locker 20 rounds; server 12 requests a
 * client; echo 8 KiB a client; pool 50 outside tasks, depth 4, 1 burst). */
void tw_fuzz_world_cap(const tw_workload *workload, uint64_t *values);

/* " --workload W --seed S --strategy X --option value ..." : the world, as twin-sim flags. */
void tw_fuzz_world_format(const tw_fuzz_world *world, char *out, size_t out_size);

/* What one run of the world gave. */
typedef struct tw_fuzz_world_result {
    tw_sim_report report;
    tw_workload_verdict verdict;
    char message[TW_WORKLOAD_MESSAGE_SIZE];
} tw_fuzz_world_result;

/* Runs the world once (trace may be NULL) and checks it as twin-sim does: the workload's
 * verdict, then every block freed. */
void tw_fuzz_world_run(const tw_fuzz_world *world, tw_sim_trace *trace, tw_fuzz_world_result *result);

#endif
