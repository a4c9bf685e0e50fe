/* Shared helpers for the twin-poolbench-* peers (poolbench_glib.c, poolbench_openmp.c,
 * poolbench_mutex.c): always-on checks, flag parsing, the completion counter + signal,
 * the pre-allocated task structs, timing and the result line.
 *
 * The two benchmarks are the ones bench/poolbench.c runs on twin's own pool:
 *   outside: the main thread (not a pool thread) schedules N empty tasks one by one
 *            (one schedule call per task), then waits until all N have run.
 *   fanout:  the main thread schedules one root task of depth D; a task of depth d > 0
 *            schedules two children of depth d-1 from the worker running it, then returns.
 *            2^(D+1)-1 tasks in all, laid out as a heap (children of i: 2i+1, 2i+2).
 * Every task body ends with pb_finish_one(): a relaxed fetch_add on the completion counter;
 * whoever completes the last task sets a flag and wakes the main thread through a futex.
 * The task arrays are freed only after the pool has shut down: with a relaxed counter, a
 * worker's last touch of its task struct is not ordered before the main thread's wake-up. */
#ifndef TWIN_BENCH_POOLBENCH_COMMON_H
#define TWIN_BENCH_POOLBENCH_COMMON_H

#include <errno.h>

#include "bench_common.h"
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PB_TASKS_DEFAULT 1000000u
#define PB_DEPTH_DEFAULT 19u
#define PB_DEPTH_MAX 24u

/* ---- flags ---- */
enum { PB_TEST_OUTSIDE = 1u, PB_TEST_FANOUT = 2u };

struct pb_opts {
    unsigned tests; /* PB_TEST_* bits */
    uint64_t tasks; /* outside */
    unsigned depth; /* fanout */
};

#define PB_USAGE "[--test outside|fanout|all] [--tasks N] [--depth D]"

static inline void pb_usage(FILE *f) { fprintf(f, "usage: %s %s\n", bench_prog, PB_USAGE); }

static inline _Noreturn void pb_bad_flag(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static inline _Noreturn void pb_bad_flag(const char *fmt, ...) {
    char accepted[256];
    snprintf(accepted, sizeof(accepted), "--test outside|fanout|all (default all), --tasks N (integer 1..%" PRIu32
            ", default %u), --depth D (integer 1..%u, default %u); --flag=value also accepted",
            UINT32_MAX, PB_TASKS_DEFAULT, PB_DEPTH_MAX, PB_DEPTH_DEFAULT);
    va_list ap;
    va_start(ap, fmt);
    bench_bad_flag_v(accepted, PB_USAGE, fmt, ap);
}


static inline struct pb_opts pb_parse_args(int argc, char **argv) {
    struct pb_opts o = {PB_TEST_OUTSIDE | PB_TEST_FANOUT, PB_TASKS_DEFAULT, PB_DEPTH_DEFAULT};
    for (int i = 1; i < argc; i++) {
        static const char *const names[] = {"--test", "--tasks", "--depth"};
        const char *name = NULL;
        const char *val = NULL;
        switch (bench_next_flag(argc, argv, &i, names, sizeof names / sizeof names[0], &name, &val)) {
        case bench_flag_help:
            pb_usage(stdout);
            exit(0);
        case bench_flag_unknown: pb_bad_flag("unknown flag '%s'", argv[i]);
        case bench_flag_no_value: pb_bad_flag("flag %s needs a value", name);
        case bench_flag_ok: break;
        }
        uint64_t v = 0;
        if (strcmp(name, "--test") == 0) {
            if (strcmp(val, "outside") == 0) {
                o.tests = PB_TEST_OUTSIDE;
            } else if (strcmp(val, "fanout") == 0) {
                o.tests = PB_TEST_FANOUT;
            } else if (strcmp(val, "all") == 0) {
                o.tests = PB_TEST_OUTSIDE | PB_TEST_FANOUT;
            } else {
                pb_bad_flag("bad value for --test: '%s' (want outside, fanout or all)", val);
            }
        } else if (strcmp(name, "--tasks") == 0) {
            if (!bench_parse_u64(val, 1, UINT32_MAX, &v))
                pb_bad_flag("bad value for --tasks: '%s' (want an integer in 1..%" PRIu32 ")",
                            val, UINT32_MAX);
            o.tasks = v;
        } else {
            if (!bench_parse_u64(val, 1, PB_DEPTH_MAX, &v))
                pb_bad_flag("bad value for --depth: '%s' (want an integer in 1..%u)", val,
                            PB_DEPTH_MAX);
            o.depth = (unsigned)v;
        }
    }
    return o;
}

/* Number of workers every peer uses: the online CPUs. */
static inline unsigned pb_ncpu(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    BENCH_CHECK(n >= 1 && n <= 4096);
    return (unsigned)n;
}

/* ---- the pre-allocated task structs ---- */
/* One struct per task, allocated (and written, so the pages are resident) before timing;
 * tasks are handed out by index. `next` and `fn` are used by the mutex pool's intrusive
 * queue; GLib gets a pointer to the struct as its data; OpenMP gets the index. */
typedef struct pb_task pb_task;
struct pb_task {
    pb_task *next;
    void (*fn)(pb_task *t);
    uint32_t index;
    uint32_t depth; /* fanout: remaining depth; 0 = leaf (and for every outside task) */
};

static inline uint64_t pb_tree_size(unsigned depth) { return (UINT64_C(1) << (depth + 1)) - 1; }

static inline pb_task *pb_tasks_alloc(uint64_t count, void (*fn)(pb_task *t)) {
    BENCH_CHECK(count >= 1 && count <= (uint64_t)UINT32_MAX + 1);
    BENCH_CHECK(count <= SIZE_MAX / sizeof(pb_task));
    pb_task *tasks = malloc((size_t)count * sizeof(pb_task));
    if (tasks == NULL) {
        fprintf(stderr, "%s: out of memory for %llu task structs\n", bench_prog,
                (unsigned long long)count);
        exit(1);
    }
    for (uint64_t i = 0; i < count; i++)
        tasks[i] = (pb_task){.next = NULL, .fn = fn, .index = (uint32_t)i, .depth = 0};
    return tasks;
}

/* ---- completion: counter + futex-backed flag, one set per test ---- */
/* Each test has its own pb_run, reached from its own task function, and a run is used once
 * per process: a worker still finishing a task of the previous test (after its fetch_add,
 * e.g. reading `expected`) never meets the next test's fresh state. */
struct pb_run {
    _Atomic uint64_t completed;
    uint64_t expected; /* written before the first schedule; read-only while timed */
    atomic_uint done;  /* 0 -> 1 by whoever completes the last task; a futex word */
};

static struct pb_run pb_run_outside;
static struct pb_run pb_run_fanout;

_Static_assert(sizeof(atomic_uint) == sizeof(uint32_t), "futex word must be 32 bits");

static inline void pb_run_start(struct pb_run *r, uint64_t expected) {
    BENCH_CHECK(r->expected == 0 && expected > 0); /* each run is used once */
    atomic_store_explicit(&r->completed, 0, memory_order_relaxed);
    atomic_store_explicit(&r->done, 0, memory_order_relaxed);
    r->expected = expected;
}

/* The whole completion work of a task body. */
static inline void pb_finish_one(struct pb_run *r) {
    if (atomic_fetch_add_explicit(&r->completed, 1, memory_order_relaxed) + 1 == r->expected) {
        atomic_store_explicit(&r->done, 1, memory_order_release);
        long rc = syscall(SYS_futex, (uint32_t *)&r->done, FUTEX_WAKE_PRIVATE, INT_MAX, NULL,
                          NULL, 0);
        BENCH_CHECK(rc >= 0);
    }
}

/* Blocks the main thread (no spinning) until the last task has completed. */
static inline void pb_wait_done(struct pb_run *r) {
    while (atomic_load_explicit(&r->done, memory_order_acquire) == 0) {
        long rc = syscall(SYS_futex, (uint32_t *)&r->done, FUTEX_WAIT_PRIVATE, 0u, NULL, NULL, 0);
        BENCH_CHECK(rc == 0 || errno == EAGAIN || errno == EINTR);
    }
}

/* ---- timing and output ---- */

/* Verifies the run (every task completed exactly once, flag set) and prints the line. */
static inline void pb_report(const char *impl, const char *test, struct pb_run *r,
                             uint64_t start_ns, uint64_t end_ns) {
    uint64_t count = r->expected;
    uint64_t got = atomic_load_explicit(&r->completed, memory_order_relaxed);
    unsigned done = atomic_load_explicit(&r->done, memory_order_acquire);
    if (got != count || done != 1) {
        fprintf(stderr, "%s: error: test=%s completed %llu of %llu tasks (done flag %u)\n",
                bench_prog, test, (unsigned long long)got, (unsigned long long)count, done);
        exit(1);
    }
    double seconds = (double)(end_ns - start_ns) / 1e9;
    double rate = seconds > 0 ? (double)count / seconds : 0.0;
    printf("poolbench: impl=%s test=%s tasks=%llu seconds=%.6f tasks_per_s=%.1f\n", impl, test,
           (unsigned long long)count, seconds, rate);
    BENCH_CHECK(fflush(stdout) == 0);
}

/* ---- the two tests, for peers that schedule one task at a time (GLib, the mutex pool;
 * OpenMP spells them with pragmas instead). The peer sets pb_schedule. ---- */

static void (*pb_schedule)(pb_task *t);
static pb_task *pb_outside_tasks; /* freed after the pool has shut down: pb_tasks_free */
static pb_task *pb_fanout_tasks;

static inline void pb_outside_task(pb_task *t) {
    (void)t;
    pb_finish_one(&pb_run_outside);
}

static inline void pb_fanout_task(pb_task *t) {
    if (t->depth > 0) {
        pb_task *left = &pb_fanout_tasks[2 * (uint64_t)t->index + 1];
        pb_task *right = &pb_fanout_tasks[2 * (uint64_t)t->index + 2];
        left->depth = right->depth = t->depth - 1;
        pb_schedule(left);
        pb_schedule(right);
    }
    pb_finish_one(&pb_run_fanout);
}

static inline void pb_run_outside_test(const char *impl, uint64_t count) {
    BENCH_CHECK(pb_schedule != NULL);
    pb_outside_tasks = pb_tasks_alloc(count, pb_outside_task);
    pb_run_start(&pb_run_outside, count);
    uint64_t start = bench_now_ns();
    for (uint64_t i = 0; i < count; i++) pb_schedule(&pb_outside_tasks[i]);
    pb_wait_done(&pb_run_outside);
    uint64_t end = bench_now_ns();
    pb_report(impl, "outside", &pb_run_outside, start, end);
}

static inline void pb_run_fanout_test(const char *impl, unsigned depth) {
    BENCH_CHECK(pb_schedule != NULL);
    uint64_t count = pb_tree_size(depth);
    pb_fanout_tasks = pb_tasks_alloc(count, pb_fanout_task);
    pb_fanout_tasks[0].depth = depth;
    pb_run_start(&pb_run_fanout, count);
    uint64_t start = bench_now_ns();
    pb_schedule(&pb_fanout_tasks[0]);
    pb_wait_done(&pb_run_fanout);
    uint64_t end = bench_now_ns();
    pb_report(impl, "fanout", &pb_run_fanout, start, end);
}

static inline void pb_tasks_free(void) {
    free(pb_outside_tasks);
    free(pb_fanout_tasks);
}

#endif /* TWIN_BENCH_POOLBENCH_COMMON_H */
