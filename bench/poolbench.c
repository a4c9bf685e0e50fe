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

typedef struct bench_task {
    tw_pool_task task;
    uint32_t index;
    uint32_t depth;
} bench_task;

static tw_pool pool;
static bench_task *tasks;
static tw_atomic_u64 completed;
static uint64_t expected;
static tw_atomic_u32 done;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void finish_one(void) {
    if (tw_atomic_fetch_add_u64(&completed, 1, tw_relaxed) + 1 == expected) {
        tw_atomic_store_u32(&done, 1, tw_release);
        (void)tw_futex_wake(&done, TW_FUTEX_WAKE_ALL);
    }
}

static void empty_task(tw_pool_task *task) {
    (void)task;
    finish_one();
}

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
    finish_one();
}

static void wait_done(void) {
    while (tw_atomic_load_u32(&done, tw_acquire) == 0) (void)tw_futex_wait(&done, 0, TW_TIMEOUT_NONE);
}

static void report(const char *test, uint64_t count, uint64_t elapsed_ns) {
    TW_ASSERT(tw_atomic_load_u64(&completed, tw_acquire) == count);
    double seconds = (double)elapsed_ns / 1e9;
    printf("poolbench: impl=twin test=%s tasks=%" PRIu64 " seconds=%.6f tasks_per_s=%.1f\n", test,
           count, seconds, (double)count / seconds);
}

static void reset(uint64_t count, tw_pool_callback callback) {
    for (uint64_t i = 0; i < count; i++) tasks[i] = (bench_task){.task = {.callback = callback}, .index = (uint32_t)i};
    tw_atomic_store_u64(&completed, 0, tw_relaxed);
    tw_atomic_store_u32(&done, 0, tw_relaxed);
    expected = count;
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
    tw_pool_init(&pool, NULL);

    if (strcmp(test, "fanout") != 0) {
        reset(count, empty_task);
        uint64_t start = now_ns();
        for (uint64_t i = 0; i < count; i++) tw_pool_schedule(&pool, tw_pool_batch_of(&tasks[i].task));
        wait_done();
        report("outside", count, now_ns() - start);
    }
    if (strcmp(test, "outside") != 0) {
        reset(tree, fanout_task);
        tasks[0].depth = (uint32_t)depth;
        uint64_t start = now_ns();
        tw_pool_schedule(&pool, tw_pool_batch_of(&tasks[0].task));
        wait_done();
        report("fanout", tree, now_ns() - start);
    }
    tw_pool_shutdown(&pool);
    tw_pool_deinit(&pool);
    free(tasks);
    return 0;
}
