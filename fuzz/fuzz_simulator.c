/* twin fuzz target 5, the simulator: the fuzzer's bytes become a world's decisions.
 *
 * Byte 0 picks the workload, bytes 1..8 are the seed (which draws the world's options), and
 * the rest feed every decision the world asks for (scheduler, network, faults, workload) in
 * order; when they run out the seed's PCG takes over (harness/fuzz_world.h). A recording
 * written by `twin-sim --record` (text, with its "#! world:" line) replays here to the same
 * trace hash, and any input here replays in `twin-sim --replay FILE`. Coverage of the product
 * code (src/) then steers the search for schedules and fault sequences.
 *
 * A failure (an oracle, an assertion, a deadlock, a leak, work unfinished) prints the
 * workload's message and the twin-sim command that replays the input, then aborts, which
 * every engine reports as a crash. TWIN_FUZZ_WORKLOAD=NAME reads every input as that
 * workload's (byte 0 ignored; `twin-sim --replay FILE --workload NAME` does the same). The planted build (fuzz_simulator_planted) takes TWIN_PLANT=NAME. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>

#include "common.h"
#include "fuzz_world.h"
#include "workload.h"

static const tw_workload *workload_pinned;

/* TWIN_FUZZ_REACH=1: the reachability markers (include/twin/reach.h) as extra coverage for
 * libFuzzer: a counter per marker (how often the run passed it) and one per pair of markers
 * passed in the same run, so that an input reaching a rare state, or two rare states in one
 * run (an eviction while a batch waits), is kept even when it covers no new line. Other
 * engines ignore the section. */
#define REACH_PAIRS ((size_t)tw_reach_count * (size_t)tw_reach_count)
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t reach_counters[tw_reach_count + REACH_PAIRS];
static bool reach_signal;

static void reach_signal_set(const tw_sim_report *report) {
    TW_ASSERT(report != NULL);
    memset(reach_counters, 0, sizeof(reach_counters));
    for (size_t i = 0; i < tw_reach_count; i++) {
        uint32_t count = report->reached[i];
        reach_counters[i] = (uint8_t)(count > UINT8_MAX ? UINT8_MAX : count);
        if (count == 0) continue;
        for (size_t j = i + 1; j < tw_reach_count; j++) {
            if (report->reached[j] != 0) reach_counters[tw_reach_count + i * tw_reach_count + j] = 1;
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    tw_fuzz_plant_from_env();
    const char *reach = getenv("TWIN_FUZZ_REACH");
    reach_signal = reach != NULL && strcmp(reach, "1") == 0;
    const char *name = getenv("TWIN_FUZZ_WORKLOAD");
    if (name != NULL && name[0] != '\0') {
        workload_pinned = tw_workload_find(name);
        if (workload_pinned == NULL) {
            fprintf(stderr, "fuzz_simulator: TWIN_FUZZ_WORKLOAD=%s is not a workload (twin-sim --list)\n", name);
            exit(2);
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tw_fuzz_world world;
    char error[TW_FUZZ_WORLD_ERROR_SIZE];
    if (!tw_fuzz_world_read(data, size, "input", workload_pinned, &world, error, sizeof(error))) {
        /* A recording that does not parse is not interesting: reject it, so it stays out
         * of the corpus (libFuzzer: -1). */
        tw_fuzz_world_free(&world);
        return -1;
    }
    tw_fuzz_world_result result;
    tw_fuzz_world_run(&world, NULL, &result);
    if (reach_signal) reach_signal_set(&result.report);
    if (tw_fuzz_verbose()) {
        printf("fuzz_simulator: workload=%s seed=%llu verdict=%s steps=%llu hash=%016llx\n",
               world.workload->name, (unsigned long long)world.seed,
               tw_workload_verdict_name(result.verdict), (unsigned long long)result.report.steps,
               (unsigned long long)result.report.hash);
    }
    if (result.verdict != tw_workload_passed) {
        char flags[4096];
        tw_fuzz_world_format(&world, flags, sizeof(flags));
        fprintf(stderr, "fuzz_simulator: %s failure: %s\nfuzz_simulator: the world:%s\n"
                        "fuzz_simulator: replay it: twin-sim%s --replay CRASH_FILE%s%s%s%s\n",
                tw_workload_verdict_name(result.verdict), result.message, flags,
                tw_fuzz_plant_name() != NULL ? "-planted" : "",
                workload_pinned != NULL && world.kind == tw_fuzz_world_bytes ? " --workload " : "",
                workload_pinned != NULL && world.kind == tw_fuzz_world_bytes ? workload_pinned->name : "",
                tw_fuzz_plant_name() != NULL ? " --plant " : "",
                tw_fuzz_plant_name() != NULL ? tw_fuzz_plant_name() : "");
        tw_fuzz_world_free(&world);
        abort();
    }
    tw_fuzz_world_free(&world);
    return 0;
}
