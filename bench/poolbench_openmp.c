/* twin-poolbench-openmp: the two poolbench tests (see poolbench_common.h) with OpenMP tasks:
 * `#pragma omp parallel` (ncpu threads) + `#pragma omp single`, the scheduling thread
 * creating one `#pragma omp task` per task with the task's index firstprivate.
 *
 * Differences forced by the model, kept as small as possible:
 *  - The scheduling ("main") thread is a member of the ncpu-thread team, not an outside
 *    thread; while it sits in the single it does not run tasks, except when the runtime
 *    throttles task creation (libgomp runs new tasks undeferred once too many are queued).
 *  - The wait for completion is the implicit barrier at the end of the parallel region
 *    (which runs every outstanding task); the last task still sets the run's done flag,
 *    so the per-task body is the same as for the other peers. That barrier also orders
 *    every task before the main thread, so the task arrays can be freed right after.
 *  - The runtime allocates its own task descriptor per `omp task`; the pre-allocated
 *    structs only carry the fanout depth.
 *  - Timing includes entering and leaving the parallel region, since that is how OpenMP
 *    runs tasks. Thread creation is excluded by a warm-up parallel region before timing
 *    (the runtime keeps its threads between regions). */
#include <omp.h>

#include "poolbench_common.h"

static pb_task *outside_tasks;
static pb_task *fanout_tasks;

static void outside_task(pb_task *t) {
    (void)t;
    pb_finish_one(&pb_run_outside);
}

static void fanout_task(pb_task *t) {
    if (t->depth > 0) {
        uint64_t left = 2 * (uint64_t)t->index + 1;
        uint64_t right = left + 1;
        fanout_tasks[left].depth = fanout_tasks[right].depth = t->depth - 1;
#pragma omp task firstprivate(left)
        fanout_task(&fanout_tasks[left]);
#pragma omp task firstprivate(right)
        fanout_task(&fanout_tasks[right]);
    }
    pb_finish_one(&pb_run_fanout);
}

static void run_outside(uint64_t count) {
    outside_tasks = pb_tasks_alloc(count, outside_task);
    pb_run_start(&pb_run_outside, count);
    uint64_t start = bench_now_ns(); /* includes the parallel region: see the top comment */
#pragma omp parallel
    {
#pragma omp single
        {
            for (uint64_t i = 0; i < count; i++) {
#pragma omp task firstprivate(i)
                outside_task(&outside_tasks[i]);
            }
        }
    } /* implicit barrier: every task has run */
    uint64_t end = bench_now_ns();
    pb_report("openmp", "outside", &pb_run_outside, start, end);
    free(outside_tasks);
}

static void run_fanout(unsigned depth) {
    uint64_t count = pb_tree_size(depth);
    fanout_tasks = pb_tasks_alloc(count, fanout_task);
    fanout_tasks[0].depth = depth;
    pb_run_start(&pb_run_fanout, count);
    uint64_t start = bench_now_ns(); /* includes the parallel region: see the top comment */
#pragma omp parallel
    {
#pragma omp single
        {
            uint64_t root = 0;
#pragma omp task firstprivate(root)
            fanout_task(&fanout_tasks[root]);
        }
    } /* implicit barrier: every task has run */
    uint64_t end = bench_now_ns();
    pb_report("openmp", "fanout", &pb_run_fanout, start, end);
    free(fanout_tasks);
}

int main(int argc, char **argv) {
    bench_prog = "twin-poolbench-openmp";
    struct pb_opts o = pb_parse_args(argc, argv);
    unsigned ncpu = pb_ncpu();
    BENCH_CHECK(ncpu <= (unsigned)INT_MAX);
    omp_set_dynamic(0);
    omp_set_num_threads((int)ncpu);
    /* Warm-up region: creates the team's threads before anything is timed. */
    int team = 0;
#pragma omp parallel shared(team)
    {
#pragma omp single
        team = omp_get_num_threads();
    }
    BENCH_CHECK(team == (int)ncpu);
    if (o.tests & PB_TEST_OUTSIDE) run_outside(o.tasks);
    if (o.tests & PB_TEST_FANOUT) run_fanout(o.depth);
    return 0;
}
