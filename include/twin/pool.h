/* twin: a lock-free work-stealing thread pool (the design of kprotty's zap, as in libxev).
 *
 * Tasks are embedded in the user's structs (recover yours with TW_CONTAINER_OF); a batch
 * is an unordered list of tasks. init starts one thread; the others are spawned lazily, at
 * most threads_max in all, when work arrives and nobody idle can take it. No thread leaves
 * before shutdown, so work always has a thread to run it, even when later spawns fail. Each thread has a ring of 256 tasks (overflow
 * goes to its own queue), there is one global queue for tasks from outside, and an idle
 * thread steals half of another's ring. At most one thread is "waking" (searching) at a
 * time. No allocation anywhere: not in init, not in schedule.
 *
 * Shutdown drains: every task scheduled before tw_pool_shutdown, and every task a task
 * schedules afterwards, runs exactly once before tw_pool_deinit returns. Scheduling from
 * outside the pool after shutdown is a bug (it panics). deinit joins: it returns once
 * every thread has stopped using the pool, so the pool's memory may be freed right after
 * (threads are detached; the last steps of their exit touch only their own stacks).
 *
 * Threads: tw_pool_schedule from any thread; init, shutdown and deinit from one owner
 * thread, in that order. The pool uses tw_thread_current on its own workers. */
#ifndef TWIN_POOL_H
#define TWIN_POOL_H

#include <stddef.h>
#include <stdint.h>

#include <twin/atomic_types.h>
#include <twin/heap.h> /* TW_CONTAINER_OF */

#define TW_POOL_THREADS_MAX 16383u /* the sync word's 14-bit thread count */
#define TW_POOL_BUFFER_CAPACITY 256u

typedef struct tw_pool_task tw_pool_task;
typedef void (*tw_pool_callback)(tw_pool_task *task);

struct tw_pool_task {
    tw_pool_task *next; /* the pool's link while queued */
    tw_pool_callback callback;
};

typedef struct tw_pool_batch {
    uint32_t count;
    tw_pool_task *head;
    tw_pool_task *tail;
} tw_pool_batch;

static inline tw_pool_batch tw_pool_batch_of(tw_pool_task *task) {
    task->next = NULL;
    return (tw_pool_batch){.count = 1, .head = task, .tail = task};
}

/* Appends other to batch (order is not kept by the pool anyway). */
static inline void tw_pool_batch_push(tw_pool_batch *batch, tw_pool_batch other) {
    if (other.count == 0) return;
    if (batch->count == 0) {
        *batch = other;
        return;
    }
    batch->tail->next = other.head;
    batch->tail = other.tail;
    batch->count += other.count;
}

typedef struct tw_pool_options {
    uint32_t threads_max;    /* 0: the CPU count */
    size_t stack_size_bytes; /* 0: the OS default */
} tw_pool_options;

/* A queue many threads push to and one at a time consumes (internal). */
typedef struct tw_pool_queue {
    tw_atomic_usize stack; /* a task pointer with two tag bits */
    tw_pool_task *cache;
} tw_pool_queue;

typedef struct tw_pool_event {
    tw_atomic_u32 state;
} tw_pool_event;

typedef struct tw_pool {
    uint32_t magic;
    uint32_t threads_max;
    size_t stack_size_bytes;
    tw_atomic_u32 sync;
    tw_pool_event idle_event;
    tw_pool_event join_event;
    tw_pool_queue run_queue;
    tw_atomic_ptr threads; /* a stack of the workers' tw_pool_thread, on their own stacks */
} tw_pool;

typedef enum tw_pool_error {
    tw_pool_ok = 0,
    tw_pool_system_resources, /* init could not start the first thread */
} tw_pool_error;

/* On tw_pool_system_resources nothing is left running and the pool is unusable (only
 * another init may follow). */
tw_pool_error tw_pool_init(tw_pool *pool, const tw_pool_options *options);
/* Any thread. From a pool thread, into its own ring; from outside, into the global queue. */
void tw_pool_schedule(tw_pool *pool, tw_pool_batch batch);
void tw_pool_shutdown(tw_pool *pool);
/* After tw_pool_shutdown: waits for the queues to drain and every thread to leave. */
void tw_pool_deinit(tw_pool *pool);

#endif
