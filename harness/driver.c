#include "driver.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <twin/assert.h>

void tw_driver_run_seed(const tw_sim_options *options, tw_thread_fn main_fn, void *arg, bool twice,
                        tw_driver_seed *seed) {
    TW_ASSERT(options != NULL && main_fn != NULL && seed != NULL);
    memset(seed, 0, sizeof(*seed));
    tw_sim_run(options, main_fn, arg, &seed->report);
    seed->deterministic = true;
    seed->hash_second = seed->report.hash;
    if (!twice) return;
    tw_sim_report *second = malloc(sizeof(*second));
    TW_ASSERT_MSG(second != NULL, "out of memory");
    tw_sim_run(options, main_fn, arg, second);
    seed->hash_second = second->hash;
    seed->deterministic =
        second->hash == seed->report.hash && second->outcome == seed->report.outcome;
    free(second);
    if (!seed->deterministic &&
        !tw_driver_diagnose(options, main_fn, arg, seed->divergence, sizeof(seed->divergence))) {
        snprintf(seed->divergence, sizeof(seed->divergence),
                 "the hashes differed, but two traced reruns matched: the difference depends "
                 "on something outside the seed (addresses, uninitialised memory, the clock)");
    }
}

bool tw_driver_diagnose(const tw_sim_options *options, tw_thread_fn main_fn, void *arg,
                        char *divergence, size_t divergence_size) {
    TW_ASSERT(options != NULL && divergence != NULL);
    tw_sim_trace traces[2] = {{0}, {0}};
    tw_sim_report *report = malloc(sizeof(*report));
    TW_ASSERT_MSG(report != NULL, "out of memory");
    for (int i = 0; i < 2; i++) {
        tw_sim_options traced = *options;
        traced.trace = &traces[i];
        tw_sim_run(&traced, main_fn, arg, report);
    }
    free(report);
    size_t index = 0;
    bool differ = tw_sim_trace_first_difference(&traces[0], &traces[1], &index);
    if (differ) {
        char first[256];
        char second[256];
        tw_sim_trace_describe(&traces[0], index, first, sizeof(first));
        tw_sim_trace_describe(&traces[1], index, second, sizeof(second));
        snprintf(divergence, divergence_size, "the runs part at trace entry %zu: first run: %s; "
                 "second run: %s", index, first, second);
    }
    tw_sim_trace_free(&traces[0]);
    tw_sim_trace_free(&traces[1]);
    return differ;
}

void tw_driver_print_line(FILE *out, const tw_sim_report *report) {
    TW_ASSERT(out != NULL && report != NULL);
    fprintf(out, "seed=%" PRIu64 " strategy=%s", report->seed, tw_sim_strategy_name(report->strategy));
    if (report->strategy == tw_sim_strategy_pct) {
        fprintf(out, " pct_depth=%" PRIu32 " pct_steps=%" PRIu64, report->pct_depth, report->pct_steps_expected);
    }
    else if (report->strategy == tw_sim_strategy_random) {
        fprintf(out, " switch=1/%" PRIu64, (uint64_t)1 << report->switch_shift);
    }
    fprintf(out,
            " steps=%" PRIu64 " switches=%" PRIu64 " futex_waits=%" PRIu64
            " spurious=%" PRIu64 " time_ns=%" PRIu64 " hash=%016" PRIx64 " outcome=%s\n",
            report->steps, report->switches, report->futex_waits,
            report->spurious_wakes + report->cas_spurious_failures, report->time_ns, report->hash,
            tw_sim_outcome_name(report->outcome));
}

void tw_driver_print_net(FILE *out, const char *name, const tw_sim_net_counts *n) {
    TW_ASSERT(out != NULL && name != NULL && n != NULL);
    fprintf(out,
            "%s: network: %" PRIu64 " connections, %" PRIu64 " segments, %" PRIu64
            " bytes; faults: %" PRIu64 " partial sends, %" PRIu64 " partial receives, %" PRIu64
            " latency spikes, %" PRIu64 " resets, %" PRIu64 " refused connects, %" PRIu64
            " timed-out connects, %" PRIu64 " partitions, %" PRIu64 " half-dead connections, %"
            PRIu64 " corruptions, %" PRIu64 " send stalls\n",
            name, n->connections, n->segments, n->bytes, n->partial_sends, n->partial_receives,
            n->latency_spikes, n->resets, n->refused, n->connect_timeouts, n->partitions,
            n->half_dead, n->corruptions, n->send_stalls);
}

bool tw_driver_parse_u64(const char *text, uint64_t *value) {
    TW_ASSERT(value != NULL);
    if (text == NULL || text[0] == '\0' || text[0] == '-' || text[0] == '+' || text[0] == ' ') {
        return false;
    }
    int base = 10;
    const char *digits = text;
    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        digits = text + 2;
        if (digits[0] == '\0') return false;
    }
    for (const char *c = digits; *c != '\0'; c++) {
        bool ok = base == 16 ? ((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') ||
                                (*c >= 'A' && *c <= 'F'))
                             : (*c >= '0' && *c <= '9');
        if (!ok) return false;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long parsed = strtoull(digits, &end, base);
    if (errno == ERANGE || end == NULL || *end != '\0') return false;
    *value = (uint64_t)parsed;
    return true;
}

enum { progress_interval_ns = 100 * 1000 * 1000 };

void tw_driver_progress(const char *what, uint64_t done, uint64_t total, uint64_t failed) {
    static uint64_t last_ns;
    if (!isatty(STDERR_FILENO)) return;
    /* Wall time here only paces the display; it never reaches a simulated world. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    if (done != total && now_ns - last_ns < progress_interval_ns) return;
    last_ns = now_ns;
    fprintf(stderr, "\r%s: %" PRIu64 "/%" PRIu64 " seeds, %" PRIu64 " failed%s", what, done, total,
            failed, done == total ? "\n" : "");
    fflush(stderr);
}
