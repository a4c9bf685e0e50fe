/* twin-lockbench: twin's futex Locker (include/twin/locker.h) against pthread_mutex_t under
 * contention, side by side in one run, at 2, 4 and 16 threads (or --threads N).
 *
 * What is measured: throughput of lock/unlock pairs on one shared lock. Each thread loops
 *   lock; counter++; sum += x (a second word the lock protects); unlock;
 *   LOCKBENCH_OUTSIDE_ROUNDS steps of a local xorshift64 (work outside the lock, so the
 *   lock is not passed back and forth with nothing in between)
 * All threads wait at a start flag; the clock runs from the moment the main thread raises
 * it until the last thread has finished its loop (thread exit and join are not timed).
 * ns_per_op is that wall time divided by all threads' lock/unlock pairs, so it is the
 * inverse of the aggregate throughput, not one thread's latency. Each (impl, threads) point
 * runs --runs times, the implementations interleaved run by run so that drift in the
 * machine hits both alike, and the median is reported. After every run the counter must
 * equal threads * ops and the sum must equal what the threads added (a lost update under
 * either lock fails the run).
 *
 * Why pthread_mutex_t: on Linux it is glibc's futex mutex (a PTHREAD_MUTEX_NORMAL mutex:
 * an atomic fast path, FUTEX_WAIT/FUTEX_WAKE_PRIVATE when contended, no spinning), the
 * lock a C program would otherwise use and the same design as the Locker, so the
 * comparison is of the two implementations rather than of two strategies. Both are called
 * as shipped: tw_locker_lock/unlock out of libtwin_real.a (not inlined, its TW_ASSERTs on),
 * pthread_mutex_lock/unlock out of libc. The lock and the data it protects share one cache
 * line, as in a typical struct.
 *
 * Usage: twin-lockbench [--threads N] [--ops N] [--impl twin|mutex|both] [--runs N] */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <twin/locker.h>

#include "bench_common.h"

#define LOCKBENCH_THREADS_MAX 64u
#define LOCKBENCH_OPS_MAX 1000000000u /* per thread; 64 threads * this fits a uint64_t */
/* Per thread at every thread count: the default run (2, 4 and 16 threads, both locks, 3
 * runs each: 132,000,000 pairs) takes a few seconds on 2 CPUs at ~20-25 ns per pair. */
#define LOCKBENCH_OPS_DEFAULT 1000000u
#define LOCKBENCH_RUNS_DEFAULT 3u
#define LOCKBENCH_RUNS_MAX 99u
#define LOCKBENCH_OUTSIDE_ROUNDS 8u /* xorshift64 steps between unlock and the next lock */
#define LOCKBENCH_CACHE_LINE 64u
#define LOCKBENCH_NS_PER_S 1e9
#define LOCKBENCH_OPS_PER_MOPS 1e6

static const unsigned lockbench_threads_default[] = {2, 4, 16};
#define LOCKBENCH_THREAD_COUNTS_MAX \
    (sizeof lockbench_threads_default / sizeof lockbench_threads_default[0])

typedef enum lockbench_impl {
    lockbench_twin = 0,
    lockbench_mutex = 1,
    lockbench_impls = 2,
} lockbench_impl;
static const char *const lockbench_impl_names[lockbench_impls] = {"twin", "mutex"};

/* ---- flags ---- */

#define LOCKBENCH_USAGE "[--threads N] [--ops N] [--impl twin|mutex|both] [--runs N]"

static void lockbench_usage(FILE *f) { fprintf(f, "usage: %s %s\n", bench_prog, LOCKBENCH_USAGE); }

static _Noreturn void lockbench_bad_flag(const char *format, ...)
    __attribute__((format(printf, 1, 2)));
static _Noreturn void lockbench_bad_flag(const char *format, ...) {
    char accepted[512];
    snprintf(accepted, sizeof accepted,
             "--threads N (integer 1..%u, default: 2, 4 and 16 in turn), --ops N (lock/unlock "
             "pairs per thread, integer 1..%u, default %u), --impl twin|mutex|both "
             "(default both), --runs N (integer 1..%u, default %u; the median is reported); "
             "--flag=value also accepted",
             LOCKBENCH_THREADS_MAX, LOCKBENCH_OPS_MAX, LOCKBENCH_OPS_DEFAULT,
             LOCKBENCH_RUNS_MAX, LOCKBENCH_RUNS_DEFAULT);
    va_list args;
    va_start(args, format);
    bench_bad_flag_v(accepted, LOCKBENCH_USAGE, format, args);
}

typedef struct lockbench_opts {
    unsigned thread_counts[LOCKBENCH_THREAD_COUNTS_MAX];
    size_t thread_counts_count;
    uint64_t ops_per_thread;
    bool impl_enabled[lockbench_impls];
    unsigned runs;
} lockbench_opts;

static lockbench_opts lockbench_parse_args(int argc, char **argv) {
    lockbench_opts o = {.ops_per_thread = LOCKBENCH_OPS_DEFAULT, .runs = LOCKBENCH_RUNS_DEFAULT};
    memcpy(o.thread_counts, lockbench_threads_default, sizeof lockbench_threads_default);
    o.thread_counts_count = LOCKBENCH_THREAD_COUNTS_MAX;
    o.impl_enabled[lockbench_twin] = o.impl_enabled[lockbench_mutex] = true;
    for (int i = 1; i < argc; i++) {
        static const char *const names[] = {"--threads", "--ops", "--impl", "--runs"};
        const char *name = NULL;
        const char *val = NULL;
        switch (bench_next_flag(argc, argv, &i, names, sizeof names / sizeof names[0], &name,
                                &val)) {
        case bench_flag_help:
            lockbench_usage(stdout);
            exit(0);
        case bench_flag_unknown: lockbench_bad_flag("unknown flag '%s'", argv[i]);
        case bench_flag_no_value: lockbench_bad_flag("flag %s needs a value", name);
        case bench_flag_ok: break;
        }
        uint64_t v = 0;
        if (strcmp(name, "--threads") == 0) {
            if (!bench_parse_u64(val, 1, LOCKBENCH_THREADS_MAX, &v))
                lockbench_bad_flag("bad value for --threads: '%s' (want an integer in 1..%u)", val,
                                   LOCKBENCH_THREADS_MAX);
            o.thread_counts[0] = (unsigned)v;
            o.thread_counts_count = 1;
        } else if (strcmp(name, "--ops") == 0) {
            if (!bench_parse_u64(val, 1, LOCKBENCH_OPS_MAX, &v))
                lockbench_bad_flag("bad value for --ops: '%s' (want an integer in 1..%u)", val,
                                   LOCKBENCH_OPS_MAX);
            o.ops_per_thread = v;
        } else if (strcmp(name, "--impl") == 0) {
            bool twin = strcmp(val, "twin") == 0;
            bool mutex = strcmp(val, "mutex") == 0;
            bool both = strcmp(val, "both") == 0;
            if (!twin && !mutex && !both)
                lockbench_bad_flag("bad value for --impl: '%s' (want twin, mutex or both)", val);
            o.impl_enabled[lockbench_twin] = twin || both;
            o.impl_enabled[lockbench_mutex] = mutex || both;
        } else {
            if (!bench_parse_u64(val, 1, LOCKBENCH_RUNS_MAX, &v))
                lockbench_bad_flag("bad value for --runs: '%s' (want an integer in 1..%u)", val,
                                   LOCKBENCH_RUNS_MAX);
            o.runs = (unsigned)v;
        }
    }
    return o;
}

/* ---- the shared lock and the threads ---- */

/* Only one of the two locks is used in a run; the other is idle in the same line. The
 * struct is one 64-byte line on x86_64 (a 40-byte pthread_mutex_t). */
typedef struct lockbench_shared {
    _Alignas(LOCKBENCH_CACHE_LINE) tw_locker locker;
    pthread_mutex_t mutex;
    uint64_t counter; /* protected by the lock of the run */
    uint64_t sum;     /* protected by the lock of the run */
} lockbench_shared;

typedef struct lockbench_thread {
    _Alignas(LOCKBENCH_CACHE_LINE) pthread_t handle;
    uint64_t ops;
    uint64_t seed;
    uint64_t added;  /* out: what this thread added to shared.sum (mod 2^64) */
    uint64_t end_ns; /* out: when its loop finished */
} lockbench_thread;

static lockbench_shared shared;
static lockbench_thread threads_state[LOCKBENCH_THREADS_MAX];
static _Alignas(LOCKBENCH_CACHE_LINE) atomic_uint start_ready; /* threads at the start flag */
static _Alignas(LOCKBENCH_CACHE_LINE) atomic_bool start_go;

static inline uint64_t lockbench_xorshift64(uint64_t x) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

static void lockbench_wait_for_start(void) {
    atomic_fetch_add_explicit(&start_ready, 1, memory_order_release);
    /* Yield rather than spin hard: with more threads than CPUs, spinners would delay the
     * threads still being created (this is before the clock starts). */
    while (!atomic_load_explicit(&start_go, memory_order_acquire)) sched_yield();
}

/* The timed loop; inlined into one worker per implementation, so the choice of lock is
 * made at compile time and costs neither implementation a branch or an indirect call. */
static inline __attribute__((always_inline)) void lockbench_loop(lockbench_thread *t,
                                                                 lockbench_impl impl) {
    uint64_t x = t->seed;
    uint64_t added = 0;
    for (uint64_t i = 0; i < t->ops; i++) {
        if (impl == lockbench_twin) {
            tw_locker_lock(&shared.locker);
        } else {
            BENCH_CHECK_ERRNUM(pthread_mutex_lock(&shared.mutex), "pthread_mutex_lock");
        }
        shared.counter++;
        shared.sum += x;
        if (impl == lockbench_twin) {
            tw_locker_unlock(&shared.locker);
        } else {
            BENCH_CHECK_ERRNUM(pthread_mutex_unlock(&shared.mutex), "pthread_mutex_unlock");
        }
        added += x;
        for (unsigned r = 0; r < LOCKBENCH_OUTSIDE_ROUNDS; r++) x = lockbench_xorshift64(x);
    }
    t->added = added;
    t->end_ns = bench_now_ns();
}

static void *lockbench_worker_twin(void *arg) {
    lockbench_wait_for_start();
    lockbench_loop(arg, lockbench_twin);
    return NULL;
}

static void *lockbench_worker_mutex(void *arg) {
    lockbench_wait_for_start();
    lockbench_loop(arg, lockbench_mutex);
    return NULL;
}

/* One run: fresh lock and data, `threads` threads of `ops` pairs each; returns the wall
 * time in ns from the start flag to the last thread's end, after checking the results. */
static uint64_t lockbench_run(lockbench_impl impl, unsigned threads, uint64_t ops, unsigned run) {
    tw_locker_init(&shared.locker);
    BENCH_CHECK_ERRNUM(pthread_mutex_init(&shared.mutex, NULL), "pthread_mutex_init");
    shared.counter = 0;
    shared.sum = 0;
    atomic_store_explicit(&start_ready, 0, memory_order_relaxed);
    atomic_store_explicit(&start_go, false, memory_order_relaxed);

    void *(*worker)(void *) =
        impl == lockbench_twin ? lockbench_worker_twin : lockbench_worker_mutex;
    for (unsigned k = 0; k < threads; k++) {
        lockbench_thread *t = &threads_state[k];
        t->ops = ops;
        /* Distinct nonzero seeds per thread and run (xorshift64 must not start at 0). */
        t->seed = (UINT64_C(0x9e3779b97f4a7c15) * (k + 1)) ^ ((uint64_t)run << 32) ^ 1u;
        BENCH_CHECK(t->seed != 0);
        t->added = 0;
        t->end_ns = 0;
        BENCH_CHECK_ERRNUM(pthread_create(&t->handle, NULL, worker, t), "pthread_create");
    }
    while (atomic_load_explicit(&start_ready, memory_order_acquire) < threads) sched_yield();
    uint64_t start_ns = bench_now_ns();
    atomic_store_explicit(&start_go, true, memory_order_release);

    uint64_t end_ns = start_ns;
    uint64_t added = 0;
    for (unsigned k = 0; k < threads; k++) {
        lockbench_thread *t = &threads_state[k];
        BENCH_CHECK_ERRNUM(pthread_join(t->handle, NULL), "pthread_join");
        if (t->end_ns > end_ns) end_ns = t->end_ns;
        added += t->added;
    }
    /* Joined: every thread's writes under the lock are visible here. */
    BENCH_CHECK(shared.counter == (uint64_t)threads * ops);
    BENCH_CHECK(shared.sum == added);
    BENCH_CHECK(tw_locker_try_lock(&shared.locker)); /* left unlocked */
    tw_locker_unlock(&shared.locker);
    BENCH_CHECK_ERRNUM(pthread_mutex_destroy(&shared.mutex), "pthread_mutex_destroy");
    return end_ns - start_ns;
}

/* ---- results ---- */

static int lockbench_compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sorts elapsed_ns in place; an even count takes the mean of the middle two. */
static double lockbench_median_ns(uint64_t *elapsed_ns, unsigned count) {
    qsort(elapsed_ns, count, sizeof elapsed_ns[0], lockbench_compare_u64);
    if (count % 2 == 1) return (double)elapsed_ns[count / 2];
    return ((double)elapsed_ns[count / 2 - 1] + (double)elapsed_ns[count / 2]) / 2.0;
}

typedef struct lockbench_point {
    bool done;
    double ops_per_s; /* median run */
} lockbench_point;

int main(int argc, char **argv) {
    bench_prog = "twin-lockbench";
    lockbench_opts o = lockbench_parse_args(argc, argv);

    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("lockbench: twin tw_locker vs pthread_mutex_t (glibc, default attributes); %ld CPUs; "
           "each thread: lock, 2 shared words updated, unlock, %u xorshift64 steps outside\n",
           cpus, LOCKBENCH_OUTSIDE_ROUNDS);
    printf("lockbench: threads");
    for (size_t c = 0; c < o.thread_counts_count; c++) printf(" %u", o.thread_counts[c]);
    printf("; %" PRIu64 " lock/unlock pairs per thread; impls", o.ops_per_thread);
    for (int impl = 0; impl < lockbench_impls; impl++)
        if (o.impl_enabled[impl]) printf(" %s", lockbench_impl_names[impl]);
    printf("; median of %u runs, implementations interleaved; ns_per_op = wall time / all "
           "threads' pairs\n", o.runs);
    BENCH_CHECK(fflush(stdout) == 0);

    lockbench_point points[LOCKBENCH_THREAD_COUNTS_MAX][lockbench_impls] = {{{0}}};
    uint64_t elapsed_ns[lockbench_impls][LOCKBENCH_RUNS_MAX];
    for (size_t c = 0; c < o.thread_counts_count; c++) {
        unsigned threads = o.thread_counts[c];
        uint64_t ops = o.ops_per_thread;
        uint64_t total_ops = (uint64_t)threads * ops;
        for (unsigned run = 0; run < o.runs; run++) {
            for (int impl = 0; impl < lockbench_impls; impl++) {
                if (!o.impl_enabled[impl]) continue;
                elapsed_ns[impl][run] = lockbench_run((lockbench_impl)impl, threads, ops, run);
            }
        }
        for (int impl = 0; impl < lockbench_impls; impl++) {
            if (!o.impl_enabled[impl]) continue;
            double median_ns = lockbench_median_ns(elapsed_ns[impl], o.runs);
            double min_ns = (double)elapsed_ns[impl][0];
            double max_ns = (double)elapsed_ns[impl][o.runs - 1];
            double ops_per_s = (double)total_ops * LOCKBENCH_NS_PER_S / median_ns;
            points[c][impl] = (lockbench_point){.done = true, .ops_per_s = ops_per_s};
            printf("impl=%s threads=%u ops_per_thread=%" PRIu64 " total_ops=%" PRIu64
                   " runs=%u ns_per_op=%.2f ops_per_s=%.0f ns_per_op_min=%.2f ns_per_op_max=%.2f\n",
                   lockbench_impl_names[impl], threads, ops, total_ops, o.runs,
                   median_ns / (double)total_ops, ops_per_s, min_ns / (double)total_ops,
                   max_ns / (double)total_ops);
        }
        BENCH_CHECK(fflush(stdout) == 0);
    }

    printf("lock/unlock pairs per second (median run); twin/mutex > 1: the Locker is faster\n");
    printf("%7s %12s %13s %11s\n", "threads", "twin Mops/s", "mutex Mops/s", "twin/mutex");
    for (size_t c = 0; c < o.thread_counts_count; c++) {
        const lockbench_point *twin = &points[c][lockbench_twin];
        const lockbench_point *mutex = &points[c][lockbench_mutex];
        char twin_text[32] = "-";
        char mutex_text[32] = "-";
        char ratio_text[32] = "-";
        if (twin->done)
            snprintf(twin_text, sizeof twin_text, "%.2f", twin->ops_per_s / LOCKBENCH_OPS_PER_MOPS);
        if (mutex->done)
            snprintf(mutex_text, sizeof mutex_text, "%.2f",
                     mutex->ops_per_s / LOCKBENCH_OPS_PER_MOPS);
        if (twin->done && mutex->done)
            snprintf(ratio_text, sizeof ratio_text, "%.2fx", twin->ops_per_s / mutex->ops_per_s);
        printf("%7u %12s %13s %11s\n", o.thread_counts[c], twin_text, mutex_text, ratio_text);
    }
    BENCH_CHECK(fflush(stdout) == 0);
    return 0;
}
