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
    pb_schedule = schedule;
    if (o.tests & PB_TEST_OUTSIDE) pb_run_outside_test("glib", o.tasks);
    if (o.tests & PB_TEST_FANOUT) pb_run_fanout_test("glib", o.depth);
    BENCH_CHECK(g_thread_pool_unprocessed(pool) == 0);
    g_thread_pool_free(pool, FALSE /* immediate */, TRUE /* wait */);
    PB_TSAN_ACQUIRE(&pool_quiet);
    pb_tasks_free();
    return 0;
}
