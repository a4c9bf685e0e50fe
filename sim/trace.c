/* twin sim: traces of runs: comparing two, naming an entry, decision files. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/sim.h>

void tw_sim_trace_reset(tw_sim_trace *trace) {
    TW_ASSERT(trace != NULL);
    trace->count = 0;
    trace->truncated = false;
}

void tw_sim_trace_free(tw_sim_trace *trace) {
    TW_ASSERT(trace != NULL);
    free(trace->entries);
    trace->entries = NULL;
    trace->count = 0;
    trace->capacity = 0;
    trace->truncated = false;
}

static bool entries_equal(const tw_sim_trace_entry *a, const tw_sim_trace_entry *b) {
    return a->step == b->step && a->kind == b->kind && a->detail == b->detail && a->a == b->a &&
           a->b == b->b;
}

bool tw_sim_trace_first_difference(const tw_sim_trace *a, const tw_sim_trace *b, size_t *index) {
    TW_ASSERT(a != NULL && b != NULL && index != NULL);
    size_t common = a->count < b->count ? a->count : b->count;
    for (size_t i = 0; i < common; i++) {
        if (!entries_equal(&a->entries[i], &b->entries[i])) {
            *index = i;
            return true;
        }
    }
    *index = common;
    return a->count != b->count;
}

void tw_sim_trace_describe(const tw_sim_trace *trace, size_t index, char *buffer,
                           size_t buffer_size) {
    TW_ASSERT(trace != NULL && buffer != NULL && buffer_size > 0);
    if (index >= trace->count) {
        snprintf(buffer, buffer_size, "(end of trace after %zu entries)", trace->count);
        return;
    }
    const tw_sim_trace_entry *e = &trace->entries[index];
    switch ((tw_sim_trace_kind)e->kind) {
    case tw_sim_trace_decision:
        snprintf(buffer, buffer_size,
                 "entry %zu, step %" PRIu64 ": decision purpose=%s bound=%" PRIu64
                 " value=%" PRIu64 " (fiber %" PRIu32 "'s decision %" PRIu64 ", drawn at %s:%" PRIu32 ")",
                 index, e->step, tw_sim_purpose_name((tw_sim_purpose)e->detail), e->a, e->b,
                 e->fiber, e->ordinal, e->file != NULL ? e->file : "?", e->line);
        return;
    case tw_sim_trace_point:
        snprintf(buffer, buffer_size,
                 "entry %zu, step %" PRIu64 ": scheduling point kind=%" PRIu32 " fiber=%" PRIu64,
                 index, e->step, e->detail, e->a);
        return;
    case tw_sim_trace_switch:
        snprintf(buffer, buffer_size,
                 "entry %zu, step %" PRIu64 ": switch fiber %" PRIu64 " -> fiber %" PRIu64, index,
                 e->step, e->a, e->b);
        return;
    case tw_sim_trace_futex_wait:
        snprintf(buffer, buffer_size,
                 "entry %zu, step %" PRIu64 ": futex_wait fiber=%" PRIu64 " expected=%" PRIu64
                 " result=%s",
                 index, e->step, e->a, e->b, tw_os_result_name((tw_os_result)e->detail));
        return;
    case tw_sim_trace_futex_wake:
        snprintf(buffer, buffer_size,
                 "entry %zu, step %" PRIu64 ": futex_wake fiber=%" PRIu64 " woken=%" PRIu64,
                 index, e->step, e->a, e->b);
        return;
    case tw_sim_trace_clock:
        snprintf(buffer, buffer_size, "entry %zu, step %" PRIu64 ": clock advances to %" PRIu64 " ns",
                 index, e->step, e->a);
        return;
    case tw_sim_trace_spawn:
        snprintf(buffer, buffer_size,
                 "entry %zu, step %" PRIu64 ": fiber %" PRIu64 " spawns fiber %" PRIu64, index,
                 e->step, e->a, e->b);
        return;
    case tw_sim_trace_net:
        snprintf(buffer, buffer_size,
                 "entry %zu, step %" PRIu64 ": network event %" PRIu32 " (%" PRIu64 ", %" PRIu64 ")",
                 index, e->step, e->detail, e->a, e->b);
        return;
    case tw_sim_trace_exit:
        snprintf(buffer, buffer_size, "entry %zu, step %" PRIu64 ": fiber %" PRIu64 " exits", index,
                 e->step, e->a);
        return;
    }
    snprintf(buffer, buffer_size, "entry %zu: unknown kind %" PRIu32, index, e->kind);
}

tw_sim_decision *tw_sim_trace_decisions(const tw_sim_trace *trace, size_t *count) {
    TW_ASSERT(trace != NULL && count != NULL);
    size_t total = 0;
    for (size_t i = 0; i < trace->count; i++) total += trace->entries[i].kind == tw_sim_trace_decision;
    tw_sim_decision *decisions = malloc((total == 0 ? 1 : total) * sizeof(*decisions));
    if (decisions == NULL) return NULL;
    size_t used = 0;
    for (size_t i = 0; i < trace->count; i++) {
        const tw_sim_trace_entry *e = &trace->entries[i];
        if (e->kind != tw_sim_trace_decision) continue;
        decisions[used++] = (tw_sim_decision){.purpose = e->detail, .fiber = e->fiber,
                                              .ordinal = e->ordinal, .bound = e->a, .value = e->b};
    }
    TW_ASSERT(used == total);
    *count = total;
    return decisions;
}

/* The directive a shrunk recording starts with (tw_sim_source.unrecorded_zero). */
#define DECISIONS_UNRECORDED_ZERO "#! unrecorded: zero"

bool tw_sim_decisions_write(const char *path, const tw_sim_decision *decisions, size_t count,
                            bool unrecorded_zero, const char *comment) {
    TW_ASSERT(path != NULL);
    FILE *file = fopen(path, "w");
    if (file == NULL) return false;
    if (comment != NULL) fprintf(file, "%s\n", comment);
    if (unrecorded_zero) {
        fprintf(file, DECISIONS_UNRECORDED_ZERO " (a decision not listed takes 0, not the seed's)\n");
    }
    fprintf(file, "# twin-sim decisions: purpose fiber ordinal bound value (replayed by key: "
                  "purpose, fiber, ordinal)\n");
    for (size_t i = 0; i < count; i++) {
        fprintf(file, "%s %" PRIu32 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
                tw_sim_purpose_name((tw_sim_purpose)decisions[i].purpose), decisions[i].fiber,
                decisions[i].ordinal, decisions[i].bound, decisions[i].value);
    }
    bool ok = ferror(file) == 0;
    return fclose(file) == 0 && ok;
}

static bool purpose_parse(const char *text, uint32_t *purpose) {
    for (uint32_t p = 0; p < tw_sim_purpose_count; p++) {
        if (strcmp(text, tw_sim_purpose_name((tw_sim_purpose)p)) == 0) {
            *purpose = p;
            return true;
        }
    }
    return false;
}

enum { decision_line_size_max = 256 };

tw_sim_decision *tw_sim_decisions_read(const char *path, size_t *count, bool *unrecorded_zero, char *error,
                                       size_t error_size) {
    TW_ASSERT(path != NULL && count != NULL && error != NULL);
    *count = 0;
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        snprintf(error, error_size, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    tw_sim_decision *decisions = tw_sim_decisions_read_stream(file, path, count, unrecorded_zero, error, error_size);
    fclose(file);
    return decisions;
}

tw_sim_decision *tw_sim_decisions_read_stream(FILE *file, const char *path, size_t *count,
                                              bool *unrecorded_zero, char *error, size_t error_size) {
    TW_ASSERT(file != NULL && path != NULL && count != NULL && error != NULL);
    *count = 0;
    bool zero = false;
    size_t capacity = 1024;
    size_t used = 0;
    tw_sim_decision *decisions = malloc(capacity * sizeof(*decisions));
    char line[decision_line_size_max];
    size_t line_number = 0;
    while (decisions != NULL && fgets(line, sizeof(line), file) != NULL) {
        line_number++;
        bool whole = strchr(line, '\n') != NULL || feof(file);
        if (strncmp(line, DECISIONS_UNRECORDED_ZERO, strlen(DECISIONS_UNRECORDED_ZERO)) == 0) zero = true;
        if (line[0] == '#' && !whole) {
            /* A long comment (twin-sim's world line): skip the rest of it. */
            int c;
            while ((c = fgetc(file)) != EOF && c != '\n') {}
            continue;
        }
        if (line[0] == '#' || line[0] == '\n') continue;
        char name[32];
        uint32_t fiber = 0;
        uint64_t ordinal = 0;
        uint64_t bound = 0;
        uint64_t value = 0;
        uint32_t purpose = 0;
        if (sscanf(line, "%31s %" SCNu32 " %" SCNu64 " %" SCNu64 " %" SCNu64, name, &fiber, &ordinal,
                   &bound, &value) != 5 ||
            !purpose_parse(name, &purpose) || ordinal == 0 || bound == 0 || value >= bound) {
            char purposes[256] = "";
            for (uint32_t p = 0; p < tw_sim_purpose_count; p++) {
                strncat(purposes, p == 0 ? "" : ", ", sizeof(purposes) - strlen(purposes) - 1);
                strncat(purposes, tw_sim_purpose_name((tw_sim_purpose)p),
                        sizeof(purposes) - strlen(purposes) - 1);
            }
            snprintf(error, error_size,
                     "%s:%zu: expected \"PURPOSE FIBER ORDINAL BOUND VALUE\" with PURPOSE one "
                     "of %s, ORDINAL >= 1 and 0 <= VALUE < BOUND (a file of the older "
                     "\"PURPOSE BOUND VALUE\" form must be recorded again)",
                     path, line_number, purposes);
            free(decisions);
            return NULL;
        }
        if (used == capacity) {
            capacity *= 2;
            tw_sim_decision *grown = realloc(decisions, capacity * sizeof(*decisions));
            if (grown == NULL) free(decisions);
            decisions = grown;
            if (decisions == NULL) break;
        }
        decisions[used++] = (tw_sim_decision){.purpose = purpose, .fiber = fiber, .ordinal = ordinal,
                                              .bound = bound, .value = value};
    }
    if (decisions == NULL) {
        snprintf(error, error_size, "out of memory reading %s", path);
        return NULL;
    }
    *count = used;
    if (unrecorded_zero != NULL) *unrecorded_zero = zero;
    return decisions;
}

void tw_sim_net_counts_add(tw_sim_net_counts *total, const tw_sim_net_counts *one) {
    TW_ASSERT(total != NULL && one != NULL);
    total->connections += one->connections;
    total->segments += one->segments;
    total->bytes += one->bytes;
    total->partial_sends += one->partial_sends;
    total->partial_receives += one->partial_receives;
    total->latency_spikes += one->latency_spikes;
    total->resets += one->resets;
    total->refused += one->refused;
    total->connect_timeouts += one->connect_timeouts;
    total->partitions += one->partitions;
    total->corruptions += one->corruptions;
    total->send_stalls += one->send_stalls;
    total->half_dead += one->half_dead;
}
