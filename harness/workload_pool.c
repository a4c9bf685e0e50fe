/* twin harness: the pool workload (see workload_pool.h). */
#include "workload_pool.h"

#include <stdbool.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/os.h>

struct tw_workload_pool_work {
    tw_pool_task task;
    struct run *run;
    uint32_t index;
    uint32_t depth; /* B: levels below; C: 1 for a burst task */
    tw_atomic_u32 runs;
};
typedef struct tw_workload_pool_work work;

typedef struct run {
    tw_pool *pool;
    work *tasks;
    uint32_t tasks_count;
    tw_atomic_u32 completed;
    uint32_t expected;
    tw_atomic_u32 done; /* futex word: 1 once completed == expected */
} run;

/* The workload being run (one at a time per process: the sim runs one world at a time,
 * and a real test runs it once). */
static tw_workload_pool *current;

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
    for (uint32_t i = 0; i < TW_WORKLOAD_POOL_BURST_BATCH; i++) {
        tw_pool_batch_push(&batch, tw_pool_batch_of(&leaves[i].task));
    }
    tw_pool_schedule(w->run->pool, batch);
    complete_one(w->run);
}

static work *take(run *r, uint32_t count, tw_pool_callback callback) {
    TW_ASSERT(r->tasks_count + count <= current->tasks_count);
    work *slice = &current->tasks[r->tasks_count];
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
        TW_ASSERT_MSG(tw_atomic_load_u32(&current->tasks[i].runs, tw_relaxed) == 1,
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

void tw_workload_pool_run(void *arg) {
    current = arg;
    TW_ASSERT(current != NULL && current->tasks != NULL);
    tw_pool pool;
    TW_ASSERT(tw_pool_init(&pool, &(tw_pool_options){.threads_max = current->scale.threads}) == tw_pool_ok);
    run r = {.pool = &pool};

    /* A: from outside, singly and in batches. */
    expect(&r, current->scale.outside);
    work *a = take(&r, current->scale.outside, leaf);
    for (uint32_t i = 0; i < current->scale.outside;) {
        if (i % 2 == 0) {
            tw_pool_schedule(&pool, tw_pool_batch_of(&a[i].task));
            i++;
            continue;
        }
        tw_pool_batch batch = {0};
        for (uint32_t j = 0; j < TW_WORKLOAD_POOL_OUTSIDE_BATCH && i < current->scale.outside; j++, i++) {
            tw_pool_batch_push(&batch, tw_pool_batch_of(&a[i].task));
        }
        tw_pool_schedule(&pool, batch);
    }
    await(&r);
    check_all_ran_once(&r, 0, current->scale.outside);

    /* B: a fan-out tree from inside, after the threads have gone idle. */
    sleep_a_little();
    uint32_t tree = (1u << (current->scale.depth + 1)) - 1;
    uint32_t b_first = r.tasks_count;
    expect(&r, tree);
    work *b = take(&r, tree, tree_node);
    b[0].depth = current->scale.depth;
    tw_pool_schedule(&pool, tw_pool_batch_of(&b[0].task));
    await(&r);
    check_all_ran_once(&r, b_first, tree);

    /* C: bursts that overflow a ring. */
    uint32_t c_first = r.tasks_count;
    uint32_t c_count = current->scale.bursts * (1 + TW_WORKLOAD_POOL_BURST_BATCH);
    expect(&r, c_count);
    tw_pool_batch bursts = {0};
    for (uint32_t k = 0; k < current->scale.bursts; k++) {
        work *w = take(&r, 1, burst);
        (void)take(&r, TW_WORKLOAD_POOL_BURST_BATCH, leaf);
        tw_pool_batch_push(&bursts, tw_pool_batch_of(&w->task));
    }
    if (c_count > 0) { /* no bursts: nothing to wait for */
        tw_pool_schedule(&pool, bursts);
        await(&r);
    }
    check_all_ran_once(&r, c_first, c_count);

    /* D: shutdown and deinit with every thread asleep. */
    sleep_a_little();
    tw_pool_shutdown(&pool);
    tw_pool_deinit(&pool);

    /* E: shutdown with work in flight: everything scheduled before it still runs once. */
    tw_pool second;
    TW_ASSERT(tw_pool_init(&second, &(tw_pool_options){.threads_max = current->scale.threads}) == tw_pool_ok);
    run e = {.pool = &second, .tasks_count = r.tasks_count};
    uint32_t e_first = e.tasks_count;
    expect(&e, current->scale.in_flight);
    work *in_flight = take(&e, current->scale.in_flight, leaf);
    for (uint32_t i = 0; i < current->scale.in_flight; i++) tw_pool_schedule(&second, tw_pool_batch_of(&in_flight[i].task));
    tw_pool_shutdown(&second);
    tw_pool_deinit(&second);
    TW_ASSERT_MSG(tw_atomic_load_u32(&e.completed, tw_acquire) == current->scale.in_flight,
                  "pool: deinit returned before the queued tasks ran");
    check_all_ran_once(&e, e_first, current->scale.in_flight);

    /* F: a pool that never got work (only init's first thread, perhaps not even started
     * yet) shuts down without hanging. */
    tw_pool idle;
    TW_ASSERT(tw_pool_init(&idle, NULL) == tw_pool_ok);
    tw_pool_shutdown(&idle);
    tw_pool_deinit(&idle);
}

uint32_t tw_workload_pool_tasks_count(const tw_workload_pool_scale *scale) {
    TW_ASSERT(scale != NULL && scale->depth <= TW_WORKLOAD_POOL_DEPTH_MAX);
    return scale->outside + (1u << (scale->depth + 1)) - 1 +
           scale->bursts * (1 + TW_WORKLOAD_POOL_BURST_BATCH) + scale->in_flight;
}

bool tw_workload_pool_init(tw_workload_pool *workload, const tw_workload_pool_scale *scale) {
    TW_ASSERT(workload != NULL && scale != NULL);
    TW_ASSERT(scale->threads >= 1);
    uint32_t total = tw_workload_pool_tasks_count(scale);
    *workload = (tw_workload_pool){.scale = *scale, .tasks_count = total};
    workload->tasks = tw_allocate((size_t)total * sizeof(work));
    return workload->tasks != NULL;
}

void tw_workload_pool_free(tw_workload_pool *workload) {
    TW_ASSERT(workload != NULL);
    tw_free(workload->tasks);
    workload->tasks = NULL;
}

uint64_t tw_workload_pool_steps_expected(const tw_workload_pool *workload) {
    TW_ASSERT(workload != NULL);
    return (uint64_t)workload->tasks_count * 12u;
}
