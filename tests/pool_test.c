/* The thread pool, one source for both builds. Every task counts its own runs, and the
 * test fails on any task that runs twice or never:
 *   A. tasks scheduled from outside, one at a time and in batches
 *   B. a fan-out tree scheduled from inside
 *   C. bursts: tasks that schedule 300-task batches from inside (the ring overflows)
 *   D. shutdown and deinit with every thread asleep
 *   E. shutdown with work in flight (it drains), on a second pool
 *   F. shutdown and deinit of a pool that never got work */
#include <stdio.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/os.h>
#include <twin/pool.h>

#include "twin_test.h"

#define POOL_TEST_BURST_BATCH 300u
#define POOL_TEST_OUTSIDE_BATCH 64u

typedef struct scale {
    uint32_t outside;   /* phase A tasks */
    uint32_t depth;     /* phase B tree depth: 2^(depth+1) - 1 tasks */
    uint32_t bursts;    /* phase C: each schedules POOL_TEST_BURST_BATCH leaves */
    uint32_t in_flight; /* phase E tasks */
    uint32_t threads;
} scale;

static scale config;

typedef struct work {
    tw_pool_task task;
    struct run *run;
    uint32_t index;
    uint32_t depth; /* B: levels below; C: 1 for a burst task */
    tw_atomic_u32 runs;
} work;

typedef struct run {
    tw_pool *pool;
    work *tasks;
    uint32_t tasks_count;
    tw_atomic_u32 completed;
    uint32_t expected;
    tw_atomic_u32 done; /* futex word: 1 once completed == expected */
} run;

static work *tasks_storage;
static uint32_t tasks_storage_count;

static void complete_one(run *r) {
    /* Read before the increment: once the last increment is seen, the main thread moves
     * on and rewrites expected for the next phase (TSan caught a read after it). */
    uint32_t expected = r->expected;
    uint32_t completed = tw_atomic_fetch_add_u32(&r->completed, 1, tw_acq_rel) + 1;
    TW_ASSERT(completed <= expected);
    if (completed == expected) {
        tw_atomic_store_u32(&r->done, 1, tw_release);
        (void)tw_futex_wake(&r->done, TW_FUTEX_WAKE_ALL);
    }
}

static void leaf(tw_pool_task *task) {
    work *w = TW_CONTAINER_OF(task, work, task);
    TW_ASSERT_MSG(tw_atomic_fetch_add_u32(&w->runs, 1, tw_relaxed) == 0, "pool: a task ran twice");
    complete_one(w->run);
}

static void tree_node(tw_pool_task *task) {
    work *w = TW_CONTAINER_OF(task, work, task);
    TW_ASSERT_MSG(tw_atomic_fetch_add_u32(&w->runs, 1, tw_relaxed) == 0, "pool: a task ran twice");
    if (w->depth > 0) {
        /* Children in a heap-shaped array: 2i+1 and 2i+2 of this phase's slice. */
        work *base = w - w->index;
        tw_pool_batch children = {0};
        for (uint32_t c = 1; c <= 2; c++) {
            work *child = &base[2 * w->index + c];
            child->depth = w->depth - 1;
            tw_pool_batch_push(&children, tw_pool_batch_of(&child->task));
        }
        tw_pool_schedule(w->run->pool, children);
    }
    complete_one(w->run);
}

static void burst(tw_pool_task *task) {
    work *w = TW_CONTAINER_OF(task, work, task);
    TW_ASSERT_MSG(tw_atomic_fetch_add_u32(&w->runs, 1, tw_relaxed) == 0, "pool: a task ran twice");
    tw_pool_batch batch = {0};
    work *leaves = w + 1; /* a burst task is followed by its leaves */
    for (uint32_t i = 0; i < POOL_TEST_BURST_BATCH; i++) {
        tw_pool_batch_push(&batch, tw_pool_batch_of(&leaves[i].task));
    }
    tw_pool_schedule(w->run->pool, batch);
    complete_one(w->run);
}

static work *take(run *r, uint32_t count, tw_pool_callback callback) {
    TW_ASSERT(r->tasks_count + count <= tasks_storage_count);
    work *slice = &tasks_storage[r->tasks_count];
    for (uint32_t i = 0; i < count; i++) {
        slice[i] = (work){.task = {.callback = callback}, .run = r, .index = i};
        tw_atomic_store_u32(&slice[i].runs, 0, tw_relaxed);
    }
    r->tasks_count += count;
    return slice;
}

static void expect(run *r, uint32_t count) {
    r->expected = count;
    tw_atomic_store_u32(&r->completed, 0, tw_relaxed);
    tw_atomic_store_u32(&r->done, 0, tw_relaxed);
}

static void await(run *r) {
    while (tw_atomic_load_u32(&r->done, tw_acquire) == 0) {
        (void)tw_futex_wait(&r->done, 0, TW_TIMEOUT_NONE);
    }
    TW_ASSERT(tw_atomic_load_u32(&r->completed, tw_acquire) == r->expected);
}

static void check_all_ran_once(run *r, uint32_t first, uint32_t count) {
    for (uint32_t i = first; i < first + count; i++) {
        TW_ASSERT_MSG(tw_atomic_load_u32(&tasks_storage[i].runs, tw_relaxed) == 1,
                      "pool: a task never ran");
    }
    (void)r;
}

static void sleep_a_little(void) {
    /* In the sim, virtual time moves only once every worker sleeps, so this returns with
     * all of them asleep; on real threads, 10 ms is ample for them to go idle. */
    tw_atomic_u32 never = TW_ATOMIC_INIT(0);
    (void)tw_futex_wait(&never, 0, 10u * 1000u * 1000u);
}

static void pool_main(void *arg) {
    (void)arg;
    tw_pool pool;
    TW_ASSERT(tw_pool_init(&pool, &(tw_pool_options){.threads_max = config.threads}) == tw_pool_ok);
    run r = {.pool = &pool};

    /* A: from outside, singly and in batches. */
    expect(&r, config.outside);
    work *a = take(&r, config.outside, leaf);
    for (uint32_t i = 0; i < config.outside;) {
        if (i % 2 == 0) {
            tw_pool_schedule(&pool, tw_pool_batch_of(&a[i].task));
            i++;
            continue;
        }
        tw_pool_batch batch = {0};
        for (uint32_t j = 0; j < POOL_TEST_OUTSIDE_BATCH && i < config.outside; j++, i++) {
            tw_pool_batch_push(&batch, tw_pool_batch_of(&a[i].task));
        }
        tw_pool_schedule(&pool, batch);
    }
    await(&r);
    check_all_ran_once(&r, 0, config.outside);

    /* B: a fan-out tree from inside, after the threads have gone idle. */
    sleep_a_little();
    uint32_t tree = (1u << (config.depth + 1)) - 1;
    uint32_t b_first = r.tasks_count;
    expect(&r, tree);
    work *b = take(&r, tree, tree_node);
    b[0].depth = config.depth;
    tw_pool_schedule(&pool, tw_pool_batch_of(&b[0].task));
    await(&r);
    check_all_ran_once(&r, b_first, tree);

    /* C: bursts that overflow a ring. */
    uint32_t c_first = r.tasks_count;
    uint32_t c_count = config.bursts * (1 + POOL_TEST_BURST_BATCH);
    expect(&r, c_count);
    tw_pool_batch bursts = {0};
    for (uint32_t k = 0; k < config.bursts; k++) {
        work *w = take(&r, 1, burst);
        (void)take(&r, POOL_TEST_BURST_BATCH, leaf);
        tw_pool_batch_push(&bursts, tw_pool_batch_of(&w->task));
    }
    tw_pool_schedule(&pool, bursts);
    await(&r);
    check_all_ran_once(&r, c_first, c_count);

    /* D: shutdown and deinit with every thread asleep. */
    sleep_a_little();
    tw_pool_shutdown(&pool);
    tw_pool_deinit(&pool);

    /* E: shutdown with work in flight: everything scheduled before it still runs once. */
    tw_pool second;
    TW_ASSERT(tw_pool_init(&second, &(tw_pool_options){.threads_max = config.threads}) == tw_pool_ok);
    run e = {.pool = &second, .tasks_count = r.tasks_count};
    uint32_t e_first = e.tasks_count;
    expect(&e, config.in_flight);
    work *in_flight = take(&e, config.in_flight, leaf);
    for (uint32_t i = 0; i < config.in_flight; i++) tw_pool_schedule(&second, tw_pool_batch_of(&in_flight[i].task));
    tw_pool_shutdown(&second);
    tw_pool_deinit(&second);
    TW_ASSERT_MSG(tw_atomic_load_u32(&e.completed, tw_acquire) == config.in_flight,
                  "pool: deinit returned before the queued tasks ran");
    check_all_ran_once(&e, e_first, config.in_flight);

    /* F: a pool that never got work (only init's first thread, perhaps not even started
     * yet) shuts down without hanging. */
    tw_pool idle;
    TW_ASSERT(tw_pool_init(&idle, NULL) == tw_pool_ok);
    tw_pool_shutdown(&idle);
    tw_pool_deinit(&idle);
}

static void *prepare(tw_test_build build) {
    if (build == tw_test_build_real) {
        config = (scale){.outside = 1000000, .depth = 16, .bursts = 200, .in_flight = 100000,
                         .threads = tw_cpu_count()};
    } else if (build == tw_test_build_sim_large) {
        config = (scale){.outside = 10000, .depth = 8, .bursts = 4, .in_flight = 1000, .threads = 4};
    } else {
        config = (scale){.outside = 200, .depth = 6, .bursts = 2, .in_flight = 100, .threads = 4};
    }
    uint32_t total = config.outside + (1u << (config.depth + 1)) - 1 +
                     config.bursts * (1 + POOL_TEST_BURST_BATCH) + config.in_flight;
    tasks_storage = tw_allocate((size_t)total * sizeof(work)); /* outside any run: kept */
    TW_ASSERT(tasks_storage != NULL);
    tasks_storage_count = total;
    return NULL;
}

static uint64_t steps_expected(void *arg) {
    (void)arg;
    return (uint64_t)tasks_storage_count * 12u;
}

int main(int argc, char **argv) {
    tw_test_case test = {.name = "pool", .prepare = prepare, .main_fn = pool_main,
                         .steps_expected = steps_expected};
    return tw_test_main(argc, argv, &test);
}
