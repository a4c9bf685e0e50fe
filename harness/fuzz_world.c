/* twin harness: a world from a fuzzer's input (see fuzz_world.h). */
#include "fuzz_world.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>

#include "driver.h"

#define FUZZ_WORLD_TOKENS_MAX 128u
#define FUZZ_WORLD_LINE_SIZE 4096u
/* A small world's ranges (workload_cluster.c draws users 1..8 and packets 2..24 unless large):
 * the caps keep the fuzzer off large worlds, not off any a sweep's small ones reach. */
#define FUZZ_CLUSTER_USERS_MAX 8u
#define FUZZ_CLUSTER_PACKETS_MAX 24u
#define FUZZ_LOCKER_ITERATIONS_MAX 20u
#define FUZZ_ECHO_BYTES_MAX 8192u
#define FUZZ_POOL_OUTSIDE_MAX 50u
#define FUZZ_POOL_DEPTH_MAX 4u
#define FUZZ_POOL_BURSTS_MAX 1u
#define FUZZ_POOL_IN_FLIGHT_MAX 50u
#define FUZZ_SERVER_REQUESTS_MAX 12u

bool tw_fuzz_world_is_recording(const uint8_t *data, size_t size) {
    if (size == 0) return false;
    for (size_t i = 0; i < size; i++) {
        bool text = (data[i] >= 0x20 && data[i] < 0x7f) || data[i] == '\n' || data[i] == '\t' || data[i] == '\r';
        if (!text) return false;
    }
    return true;
}

static void cap_option(const tw_workload *workload, uint64_t *values, const char *name, uint64_t max) {
    int o = tw_workload_option_find(workload, name);
    TW_ASSERT(o >= 0); /* a cap names an option the workload has */
    if (values[o] > max) values[o] = max;
}

void tw_fuzz_world_cap(const tw_workload *workload, uint64_t *values) {
    TW_ASSERT(workload != NULL && values != NULL);
    if (strcmp(workload->name, "cluster") == 0) {
        cap_option(workload, values, "large", 0);
        /* draw() sized users and packets with large on or off: hold them to a small world's. */
        cap_option(workload, values, "users", FUZZ_CLUSTER_USERS_MAX);
        cap_option(workload, values, "packets", FUZZ_CLUSTER_PACKETS_MAX);
    } else if (strcmp(workload->name, "locker") == 0) {
        cap_option(workload, values, "iterations", FUZZ_LOCKER_ITERATIONS_MAX);
    } else if (strcmp(workload->name, "server") == 0) {
        cap_option(workload, values, "requests", FUZZ_SERVER_REQUESTS_MAX);
    } else if (strcmp(workload->name, "echo") == 0) {
        cap_option(workload, values, "bytes", FUZZ_ECHO_BYTES_MAX);
    } else if (strcmp(workload->name, "pool") == 0) {
        cap_option(workload, values, "outside", FUZZ_POOL_OUTSIDE_MAX);
        cap_option(workload, values, "depth", FUZZ_POOL_DEPTH_MAX);
        cap_option(workload, values, "bursts", FUZZ_POOL_BURSTS_MAX);
        cap_option(workload, values, "in-flight", FUZZ_POOL_IN_FLIGHT_MAX);
    }
}

static void world_from_bytes(const uint8_t *data, size_t size, const tw_workload *pinned,
                             tw_fuzz_world *world) {
    TW_ASSERT(tw_workloads_count > 0);
    world->kind = tw_fuzz_world_bytes;
    world->workload = pinned != NULL ? pinned : tw_workloads[size > 0 ? data[0] % tw_workloads_count : 0];
    world->seed = 0;
    for (size_t i = 1; i < TW_FUZZ_WORLD_HEADER_SIZE && i < size; i++) {
        world->seed |= (uint64_t)data[i] << (8 * (i - 1));
    }
    world->strategy = tw_sim_strategy_random;
    bool given[TW_WORKLOAD_OPTIONS_MAX] = {false};
    world->workload->draw(world->seed, world->values, given);
    tw_fuzz_world_cap(world->workload, world->values);
    size_t skip = size < TW_FUZZ_WORLD_HEADER_SIZE ? size : TW_FUZZ_WORLD_HEADER_SIZE;
    world->source = (tw_sim_source){.kind = tw_sim_source_bytes, .bytes = data + skip,
                                    .bytes_count = size - skip};
}

/* "--workload W --seed S --strategy X --pct-depth D --pct-steps K --steps-max M --opt v ..." */
static bool world_line_parse(char *line, const char *name, tw_fuzz_world *world, char *error,
                             size_t error_size) {
    char *tokens[FUZZ_WORLD_TOKENS_MAX];
    size_t count = 0;
    for (char *save = NULL, *t = strtok_r(line, " \t\r\n", &save); t != NULL;
         t = strtok_r(NULL, " \t\r\n", &save)) {
        if (count == FUZZ_WORLD_TOKENS_MAX) {
            snprintf(error, error_size, "%s: the world line has more than %u words", name, FUZZ_WORLD_TOKENS_MAX);
            return false;
        }
        tokens[count++] = t;
    }
    world->workload = tw_workloads[0];
    for (size_t i = 0; i + 1 < count; i++) {
        if (strcmp(tokens[i], "--workload") == 0) {
            world->workload = tw_workload_find(tokens[i + 1]);
            if (world->workload == NULL) {
                snprintf(error, error_size, "%s: the world line names workload '%s', which twin does not have",
                         name, tokens[i + 1]);
                return false;
            }
        }
    }
    bool given[TW_WORKLOAD_OPTIONS_MAX] = {false};
    bool seed_given = false;
    for (size_t i = 0; i < count; i++) {
        const char *flag = tokens[i];
        if (strcmp(flag, "--twice") == 0) continue;
        if (i + 1 >= count) {
            snprintf(error, error_size, "%s: the world line's %s has no value", name, flag);
            return false;
        }
        const char *value = tokens[++i];
        uint64_t number = 0;
        bool numeric = tw_driver_parse_u64(value, &number);
        int o = strncmp(flag, "--", 2) == 0 ? tw_workload_option_find(world->workload, flag + 2) : -1;
        if (strcmp(flag, "--workload") == 0 || strcmp(flag, "--plant") == 0 || strcmp(flag, "--replay") == 0) {
            continue; /* the workload is taken above; a plant is the binary's to choose */
        } else if (strcmp(flag, "--strategy") == 0) {
            if (!tw_sim_strategy_parse(value, &world->strategy)) {
                snprintf(error, error_size, "%s: the world line's --strategy '%s' is not random, pct or pos", name, value);
                return false;
            }
            continue;
        } else if (!numeric) {
            snprintf(error, error_size, "%s: the world line's %s takes a number, not '%s'", name, flag, value);
            return false;
        } else if (strcmp(flag, "--seed") == 0) {
            world->seed = number;
            seed_given = true;
        } else if (strcmp(flag, "--pct-depth") == 0) {
            world->pct_depth = number;
        } else if (strcmp(flag, "--pct-steps") == 0) {
            world->pct_steps = number;
        } else if (strcmp(flag, "--steps-max") == 0) {
            world->steps_max = number;
        } else if (o >= 0 && number >= world->workload->options[o].min && number <= world->workload->options[o].max) {
            world->values[o] = number;
            given[o] = true;
        } else {
            snprintf(error, error_size, "%s: the world line's %s %s is not an option of workload %s in its range "
                     "(twin-sim --list shows them)", name, flag, value, world->workload->name);
            return false;
        }
    }
    if (!seed_given) {
        snprintf(error, error_size, "%s: the world line has no --seed", name);
        return false;
    }
    world->workload->draw(world->seed, world->values, given);
    return true;
}

static bool world_from_recording(const uint8_t *data, size_t size, const char *name,
                                 tw_fuzz_world *world, char *error, size_t error_size) {
    world->kind = tw_fuzz_world_recording;
    FILE *stream = fmemopen((void *)data, size, "r");
    if (stream == NULL) {
        snprintf(error, error_size, "%s: cannot read it (fmemopen failed)", name);
        return false;
    }
    size_t count = 0;
    bool unrecorded_zero = false;
    world->decisions = tw_sim_decisions_read_stream(stream, name, &count, &unrecorded_zero, error, error_size);
    fclose(stream);
    if (world->decisions == NULL) return false;
    /* The world line, if any: the first line that starts with it. */
    const char *line_start = NULL;
    size_t line_size = 0;
    for (size_t at = 0; at < size;) {
        const uint8_t *end = memchr(data + at, '\n', size - at);
        size_t length = end != NULL ? (size_t)(end - (data + at)) : size - at;
        size_t magic = strlen(TW_FUZZ_WORLD_LINE);
        if (length >= magic && memcmp(data + at, TW_FUZZ_WORLD_LINE, magic) == 0) {
            line_start = (const char *)data + at + magic;
            line_size = length - magic;
            break;
        }
        at += length + 1;
    }
    if (line_start == NULL) {
        snprintf(error, error_size, "%s: a recording without a \"" TW_FUZZ_WORLD_LINE "\" line (one that "
                 "twin-sim --record writes) does not say which world it is: replay it with "
                 "twin-sim --replay FILE --seed S and the run's flags", name);
        return false;
    }
    char line[FUZZ_WORLD_LINE_SIZE];
    if (line_size >= sizeof(line)) {
        snprintf(error, error_size, "%s: the world line is longer than %u bytes", name, FUZZ_WORLD_LINE_SIZE);
        return false;
    }
    memcpy(line, line_start, line_size);
    line[line_size] = '\0';
    if (!world_line_parse(line, name, world, error, error_size)) return false;
    world->source = (tw_sim_source){.kind = tw_sim_source_replay, .decisions = world->decisions,
                                    .decisions_count = count, .unrecorded_zero = unrecorded_zero};
    return true;
}

bool tw_fuzz_world_read(const uint8_t *data, size_t size, const char *name, const tw_workload *pinned,
                        tw_fuzz_world *world, char *error, size_t error_size) {
    TW_ASSERT(data != NULL || size == 0);
    TW_ASSERT(world != NULL && name != NULL && error != NULL && error_size > 0);
    *world = (tw_fuzz_world){0};
    error[0] = '\0';
    if (tw_fuzz_world_is_recording(data, size)) {
        return world_from_recording(data, size, name, world, error, error_size);
    }
    world_from_bytes(data, size, pinned, world);
    return true;
}

void tw_fuzz_world_free(tw_fuzz_world *world) {
    TW_ASSERT(world != NULL);
    free(world->decisions);
    *world = (tw_fuzz_world){0};
}

void tw_fuzz_world_format(const tw_fuzz_world *world, char *out, size_t out_size) {
    TW_ASSERT(world != NULL && world->workload != NULL && out != NULL);
    char options[FUZZ_WORLD_LINE_SIZE];
    tw_workload_format_flags(world->workload, world->values, options, sizeof(options));
    int used = snprintf(out, out_size, " --workload %s --seed %" PRIu64 " --strategy %s %s",
                        world->workload->name, world->seed, tw_sim_strategy_name(world->strategy), options);
    size_t at = used > 0 ? (size_t)used : 0;
    if (world->pct_depth != 0 && at < out_size) at += (size_t)snprintf(out + at, out_size - at, " --pct-depth %" PRIu64, world->pct_depth);
    if (world->pct_steps != 0 && at < out_size) at += (size_t)snprintf(out + at, out_size - at, " --pct-steps %" PRIu64, world->pct_steps);
    if (world->steps_max != 0 && at < out_size) (void)snprintf(out + at, out_size - at, " --steps-max %" PRIu64, world->steps_max);
}

void tw_fuzz_world_run(const tw_fuzz_world *world, tw_sim_trace *trace, tw_fuzz_world_result *result) {
    TW_ASSERT(world != NULL && world->workload != NULL && result != NULL);
    const tw_workload *w = world->workload;
    uint64_t values[TW_WORKLOAD_OPTIONS_MAX];
    memcpy(values, world->values, sizeof(values));
    tw_sim_options options = {
        .seed = world->seed,
        .strategy = world->strategy,
        .pct_depth = (uint32_t)world->pct_depth,
        .pct_steps_expected = world->pct_steps,
        .steps_max = world->steps_max,
        .source = &world->source,
        .trace = trace,
    };
    void *state = w->create(values, &options);
    TW_ASSERT_MSG(state != NULL, "fuzz_world: out of memory for the workload's state");
    memset(&result->report, 0, sizeof(result->report));
    tw_sim_run(&options, w->run, state, &result->report);
    result->message[0] = '\0';
    result->verdict = w->check(state, &result->report, result->message, sizeof(result->message));
    if (result->verdict == tw_workload_passed && result->report.allocations_live != 0) {
        result->verdict = tw_workload_safety;
        snprintf(result->message, sizeof(result->message),
                 "%" PRIu64 " of the run's %" PRIu64 " blocks were never freed (a leak)",
                 result->report.allocations_live, result->report.allocations);
    }
    w->destroy(state);
}
