/* twin-poolbench-glib: the two poolbench tests (see poolbench_common.h) on GLib's
 * GThreadPool: one exclusive pool of ncpu threads (an exclusive pool starts all its threads
 * in g_thread_pool_new, so start-up is outside the timed part). g_thread_pool_push is given
 * the pre-allocated task struct as its data; GThreadPool has one function per pool, so it
 * calls the struct's fn. Note that g_thread_pool_push itself allocates a queue node per
 * push inside GLib (GAsyncQueue -> GQueue -> GList); that is part of what is measured. */
#include <glib.h>

#include "poolbench_common.h"

/* GLib's GMutex/GCond are futex-based code inside the (uninstrumented) GLib library, so
 * ThreadSanitizer cannot see the happens-before that g_thread_pool_push -> pool function
 * and g_thread_pool_free(wait) provide. Under TSan only, tell it about those two edges. */
#if defined(__SANITIZE_THREAD__)
#define PB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PB_TSAN 1
#endif
#endif
#ifdef PB_TSAN
#include <sanitizer/tsan_interface.h>
#define PB_TSAN_RELEASE(p) __tsan_release(p)
#define PB_TSAN_ACQUIRE(p) __tsan_acquire(p)
#else
#define PB_TSAN_RELEASE(p) ((void)(p))
#define PB_TSAN_ACQUIRE(p) ((void)(p))
#endif

static GThreadPool *pool;
static pb_task *outside_tasks; /* freed after the pool (see poolbench_common.h) */
static pb_task *fanout_tasks;
static int pool_quiet; /* TSan only: address for the "all pool functions returned" edge */

static void schedule(pb_task *t) {
    GError *err = NULL;
    PB_TSAN_RELEASE(t);
    gboolean ok = g_thread_pool_push(pool, t, &err);
    if (!ok || err != NULL) {
        fprintf(stderr, "%s: g_thread_pool_push failed: %s\n", bench_prog,
                err != NULL ? err->message : "(no message)");
        exit(1);
    }
}

static void pool_func(gpointer data, gpointer user_data) {
    (void)user_data;
    pb_task *t = data;
    PB_TSAN_ACQUIRE(t);
    t->fn(t);
    PB_TSAN_RELEASE(&pool_quiet);
}

static void outside_task(pb_task *t) {
    (void)t;
    pb_finish_one(&pb_run_outside);
}

static void fanout_task(pb_task *t) {
    if (t->depth > 0) {
        pb_task *left = &fanout_tasks[2 * (uint64_t)t->index + 1];
        pb_task *right = &fanout_tasks[2 * (uint64_t)t->index + 2];
        left->depth = right->depth = t->depth - 1;
        schedule(left);
        schedule(right);
    }
    pb_finish_one(&pb_run_fanout);
}

static void run_outside(uint64_t count) {
    outside_tasks = pb_tasks_alloc(count, outside_task);
    pb_run_start(&pb_run_outside, count);
    uint64_t start = bench_now_ns();
    for (uint64_t i = 0; i < count; i++) schedule(&outside_tasks[i]);
    pb_wait_done(&pb_run_outside);
    uint64_t end = bench_now_ns();
    pb_report("glib", "outside", &pb_run_outside, start, end);
}

static void run_fanout(unsigned depth) {
    uint64_t count = pb_tree_size(depth);
    fanout_tasks = pb_tasks_alloc(count, fanout_task);
    fanout_tasks[0].depth = depth;
    pb_run_start(&pb_run_fanout, count);
    uint64_t start = bench_now_ns();
    schedule(&fanout_tasks[0]);
    pb_wait_done(&pb_run_fanout);
    uint64_t end = bench_now_ns();
    pb_report("glib", "fanout", &pb_run_fanout, start, end);
}

int main(int argc, char **argv) {
    bench_prog = "twin-poolbench-glib";
    struct pb_opts o = pb_parse_args(argc, argv);
    unsigned ncpu = pb_ncpu();
    BENCH_CHECK(ncpu <= (unsigned)G_MAXINT);
    GError *err = NULL;
    pool = g_thread_pool_new(pool_func, NULL, (gint)ncpu, TRUE /* exclusive */, &err);
    if (pool == NULL || err != NULL) {
        fprintf(stderr, "%s: g_thread_pool_new failed: %s\n", bench_prog,
                err != NULL ? err->message : "(no message)");
        exit(1);
    }
    BENCH_CHECK(g_thread_pool_get_num_threads(pool) == ncpu);
    if (o.tests & PB_TEST_OUTSIDE) run_outside(o.tasks);
    if (o.tests & PB_TEST_FANOUT) run_fanout(o.depth);
    BENCH_CHECK(g_thread_pool_unprocessed(pool) == 0);
    g_thread_pool_free(pool, FALSE /* immediate */, TRUE /* wait */);
    PB_TSAN_ACQUIRE(&pool_quiet);
    free(outside_tasks);
    free(fanout_tasks);
    return 0;
}
