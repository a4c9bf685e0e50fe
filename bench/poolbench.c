/* twin-poolbench: twin's pool on the two benchmarks its peers run (bench/poolbench_*.c):
 *   outside: the main thread schedules N empty tasks one by one, then waits for them
 *   fanout:  one root task; each task of depth d > 0 schedules two children from inside
 * Task structs are allocated before timing; the clock runs from the first schedule until
 * the main thread sees the last task done. Prints one line per test. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/os.h>
#include <twin/pool.h>

#define POOLBENCH_TASKS_DEFAULT 1000000u
#define POOLBENCH_DEPTH_DEFAULT 19u
#define POOLBENCH_DEPTH_MAX 24u

/* Each test has its own completion state: a worker that finished the last task of one
 * test may still be returning from it while the next test starts. */
typedef struct bench_run {
    tw_atomic_u64 completed;
    uint64_t expected;
    tw_atomic_u32 done;
} bench_run;

typedef struct bench_task {
    tw_pool_task task;
    bench_run *run;
    uint32_t index;
    uint32_t depth;
} bench_task;

static tw_pool pool;
static bench_task *tasks;
static bench_run run_outside;
static bench_run run_fanout;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void finish_one(bench_run *run) {
    if (tw_atomic_fetch_add_u64(&run->completed, 1, tw_acq_rel) + 1 == run->expected) {
        tw_atomic_store_u32(&run->done, 1, tw_release);
        (void)tw_futex_wake(&run->done, TW_FUTEX_WAKE_ALL);
    }
}

static void empty_task(tw_pool_task *task) { finish_one(TW_CONTAINER_OF(task, bench_task, task)->run); }

static void fanout_task(tw_pool_task *task) {
    bench_task *t = TW_CONTAINER_OF(task, bench_task, task);
    if (t->depth > 0) {
        bench_task *left = &tasks[2 * t->index + 1];
        bench_task *right = &tasks[2 * t->index + 2];
        left->depth = right->depth = t->depth - 1;
        tw_pool_batch children = tw_pool_batch_of(&left->task);
        tw_pool_batch_push(&children, tw_pool_batch_of(&right->task));
        tw_pool_schedule(&pool, children);
    }
    finish_one(t->run);
}

static void wait_done(bench_run *run) {
    while (tw_atomic_load_u32(&run->done, tw_acquire) == 0) (void)tw_futex_wait(&run->done, 0, TW_TIMEOUT_NONE);
}

static void report(bench_run *run, const char *test, uint64_t count, uint64_t elapsed_ns) {
    TW_ASSERT(tw_atomic_load_u64(&run->completed, tw_acquire) == count);
    double seconds = (double)elapsed_ns / 1e9;
    printf("poolbench: impl=twin test=%s tasks=%" PRIu64 " seconds=%.6f tasks_per_s=%.1f\n", test,
           count, seconds, (double)count / seconds);
}

static void prepare(bench_run *run, uint64_t count, tw_pool_callback callback) {
    for (uint64_t i = 0; i < count; i++) {
        tasks[i] = (bench_task){.task = {.callback = callback}, .run = run, .index = (uint32_t)i};
    }
    run->expected = count;
}

static int usage(const char *problem, const char *value) {
    fprintf(stderr, "twin-poolbench: %s '%s'\nusage: twin-poolbench [--test outside|fanout|all] "
                    "[--tasks N >= 1] [--depth 1..24]\n", problem, value);
    return 2;
}

int main(int argc, char **argv) {
    const char *test = "all";
    uint64_t count = POOLBENCH_TASKS_DEFAULT;
    uint64_t depth = POOLBENCH_DEPTH_DEFAULT;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) return usage("a value is missing after", argv[i]);
        const char *flag = argv[i];
        const char *value = argv[++i];
        char *end = NULL;
        if (strcmp(flag, "--test") == 0) {
            if (strcmp(value, "outside") != 0 && strcmp(value, "fanout") != 0 && strcmp(value, "all") != 0) {
                return usage("--test takes outside, fanout or all, not", value);
            }
            test = value;
        } else if (strcmp(flag, "--tasks") == 0) {
            count = strtoull(value, &end, 10);
            if (end == value || *end != '\0' || count == 0 || value[0] == '-') return usage("--tasks takes a number >= 1, not", value);
        } else if (strcmp(flag, "--depth") == 0) {
            depth = strtoull(value, &end, 10);
            if (end == value || *end != '\0' || depth < 1 || depth > POOLBENCH_DEPTH_MAX) return usage("--depth takes 1..24, not", value);
        } else {
            return usage("unknown flag", flag);
        }
    }
    uint64_t tree = (1ull << (depth + 1)) - 1;
    tasks = calloc(count > tree ? count : tree, sizeof(*tasks));
    TW_ASSERT_MSG(tasks != NULL, "out of memory for the task array");
    if (tw_pool_init(&pool, NULL) != tw_pool_ok) {
        fprintf(stderr, "twin-poolbench: tw_pool_init: no thread could be started\n");
        return 1;
    }

    if (strcmp(test, "fanout") != 0) {
        prepare(&run_outside, count, empty_task);
        uint64_t start = now_ns();
        for (uint64_t i = 0; i < count; i++) tw_pool_schedule(&pool, tw_pool_batch_of(&tasks[i].task));
        wait_done(&run_outside);
        report(&run_outside, "outside", count, now_ns() - start);
    }
    if (strcmp(test, "outside") != 0) {
        /* The outside test's tasks are all done (its run said so), so their structs may be
         * reused; a worker may still be returning from the last one, touching only run_outside. */
        prepare(&run_fanout, tree, fanout_task);
        tasks[0].depth = (uint32_t)depth;
        uint64_t start = now_ns();
        tw_pool_schedule(&pool, tw_pool_batch_of(&tasks[0].task));
        wait_done(&run_fanout);
        report(&run_fanout, "fanout", tree, now_ns() - start);
    }
    tw_pool_shutdown(&pool);
    tw_pool_deinit(&pool);
    free(tasks);
    return 0;
}
