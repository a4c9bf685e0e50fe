/* twin: the work-stealing thread pool (the design of kprotty's zap; docs/DESIGN.md).
 *
 * The sync word (32 bits, from the least significant bit): idle (14 bits), spawned
 * (14 bits), one unused bit, notified (1 bit), state (2 bits: pending, signaled, waking,
 * shutdown). Departures from upstream, on purpose:
 *   - shutdown drains (see pool.h): a worker that sees shutdown runs whatever it can still
 *     find, and leaves only when it finds nothing;
 *   - join always waits, and shutdown with no thread left notifies the join event (libxev's
 *     final fix for zap's join/shutdown race);
 *   - init starts the first thread (upstream spawns every thread lazily): a thread never
 *     leaves before shutdown, so scheduled work always has one to run it. Upstream, a
 *     spawn that fails while no thread exists strands the work for ever, and shutdown then
 *     returns with it never run (twin-sim's resource faults found that);
 *   - a magic word catches use of a pool after deinit. */
#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/os.h>
#include <twin/pool.h>
#include <twin/reach.h>

#include "lib/plant.h"

#define TW_POOL_MAGIC 0x706f6f6cu /* "pool" */
#define TW_POOL_MAGIC_DEAD 0xdeadu

/* ---- the sync word ---------------------------------------------------------------------- */

enum {
    sync_idle_mask = 0x3FFFu,
    sync_spawned_shift = 14,
    sync_spawned_one = 1u << 14,
    sync_spawned_mask = 0x3FFFu << 14,
    sync_notified = 1u << 29,
    sync_state_shift = 30,
};

enum pool_state {
    state_pending = 0,
    state_signaled = 1,
    state_waking = 2,
    state_shutdown = 3,
};

static uint32_t sync_idle(uint32_t s) { return s & sync_idle_mask; }
static uint32_t sync_spawned(uint32_t s) { return (s & sync_spawned_mask) >> sync_spawned_shift; }
static enum pool_state sync_state(uint32_t s) { return (enum pool_state)(s >> sync_state_shift); }
static uint32_t sync_with_state(uint32_t s, enum pool_state state) {
    return (s & ~(3u << sync_state_shift)) | ((uint32_t)state << sync_state_shift);
}

/* ---- events: a futex holding at most one token, and a shutdown state --------------- */

enum { event_empty = 0, event_waiting = 1, event_notified = 2, event_shutdown = 3 };
/* event_close: the shutdown state, which wakes and releases every waiter for good. */

static void event_wait(tw_pool_event *event) {
    uint32_t acquire_with = event_empty;
    uint32_t state = tw_atomic_load_u32(&event->state, tw_relaxed);
    for (;;) {
        TW_ASSERT(state <= event_shutdown);
        if (state == event_shutdown) {
            (void)tw_atomic_load_u32(&event->state, tw_acquire);
            return;
        }
        if (state == event_notified) {
            if (tw_atomic_cas_weak_u32(&event->state, &state, acquire_with, tw_acquire, tw_relaxed)) {
                return;
            }
            continue;
        }
        if (state != event_waiting) {
            if (!tw_atomic_cas_weak_u32(&event->state, &state, event_waiting, tw_relaxed, tw_relaxed)) {
                continue;
            }
        }
        (void)tw_futex_wait(&event->state, event_waiting, TW_TIMEOUT_NONE);
        state = tw_atomic_load_u32(&event->state, tw_relaxed);
        /* Other sleepers may remain: take the token leaving the state "waiting", so the
         * next notify still wakes someone (it may wake nobody, which is fine). */
        acquire_with = event_waiting;
    }
}

/* Never overwrites the shutdown state. Upstream swaps unconditionally, which hangs: a
 * notifier that won its sync-word CAS before shutdown, but reaches this swap after it,
 * turns "shutdown" back into "notified"; one sleeper takes that token and the others sleep
 * for ever. The simulator found it (pool_sim, seed 1003325, random). */
static void event_notify(tw_pool_event *event) {
    uint32_t state = tw_atomic_load_u32(&event->state, tw_relaxed);
    for (;;) {
        if (state == event_shutdown) return;
        if (tw_atomic_cas_weak_u32(&event->state, &state, event_notified, tw_release, tw_relaxed)) break;
    }
    if (state == event_waiting) (void)tw_futex_wake(&event->state, 1);
}

/* Wakes every sleeper whatever the old state was. Upstream wakes only when the old state
 * is "waiting", which hangs: with two sleepers, a notify (waiting -> notified) wakes one,
 * and a shutdown before that one runs sees "notified" and wakes nobody, so the second
 * sleeps for ever and join never returns. The simulator found it (pool_sim, seed 8, random). */
static void event_close(tw_pool_event *event) {
    uint32_t old = tw_atomic_exchange_u32(&event->state, event_shutdown, tw_release);
    if (old != event_shutdown) (void)tw_futex_wake(&event->state, TW_FUTEX_WAKE_ALL);
}

/* ---- the queue: many producers, one consumer at once, by try-lock ------------------ */

enum {
    queue_has_cache = 1,
    queue_is_consuming = 2,
    queue_tag_mask = 3,
};

_Static_assert(_Alignof(tw_pool_task) >= 4, "tasks leave two tag bits free in a pointer");

static tw_pool_task *queue_pointer(uintptr_t word) { return (tw_pool_task *)(word & ~(uintptr_t)queue_tag_mask); }

static void queue_push(tw_pool_queue *queue, tw_pool_batch batch) {
    TW_ASSERT(batch.count > 0 && batch.head != NULL && batch.tail != NULL);
    uintptr_t stack = tw_atomic_load_usize(&queue->stack, tw_relaxed);
    for (;;) {
        batch.tail->next = queue_pointer(stack);
        uintptr_t updated = (uintptr_t)batch.head | (stack & queue_tag_mask);
        if (tw_atomic_cas_weak_usize(&queue->stack, &stack, updated, tw_release, tw_relaxed)) return;
    }
}

/* Returns false when the queue is empty or another consumer holds it. */
static bool queue_acquire_consumer(tw_pool_queue *queue, tw_pool_task **cursor) {
    uintptr_t stack = tw_atomic_load_usize(&queue->stack, tw_relaxed);
    for (;;) {
        if ((stack & queue_is_consuming) != 0) return false;
        if ((stack & (queue_has_cache | ~(uintptr_t)queue_tag_mask)) == 0) return false;
        uintptr_t updated = stack | queue_has_cache | queue_is_consuming;
        if ((stack & queue_has_cache) == 0) updated &= queue_tag_mask; /* take the whole stack */
        if (tw_atomic_cas_weak_usize(&queue->stack, &stack, updated, tw_acquire, tw_relaxed)) {
            *cursor = queue->cache != NULL ? queue->cache : queue_pointer(stack);
            return true;
        }
    }
}

static tw_pool_task *queue_pop(tw_pool_queue *queue, tw_pool_task **cursor) {
    if (*cursor != NULL) {
        tw_pool_task *task = *cursor;
        *cursor = task->next;
        return task;
    }
    uintptr_t stack = tw_atomic_load_usize(&queue->stack, tw_relaxed);
    TW_ASSERT((stack & queue_is_consuming) != 0);
    if (queue_pointer(stack) == NULL) return NULL;
    stack = tw_atomic_exchange_usize(&queue->stack, queue_has_cache | queue_is_consuming, tw_acquire);
    tw_pool_task *task = queue_pointer(stack);
    TW_ASSERT(task != NULL);
    *cursor = task->next;
    return task;
}

static void queue_release_consumer(tw_pool_queue *queue, tw_pool_task *cursor) {
    uintptr_t remove = queue_is_consuming;
    if (cursor == NULL) remove |= queue_has_cache;
    queue->cache = cursor;
    uintptr_t old = tw_atomic_fetch_sub_usize(&queue->stack, remove, tw_release);
    TW_ASSERT((old & queue_is_consuming) != 0);
}

/* ---- the ring buffer: the owner pushes; the owner and stealers take from the head -- */

typedef struct pool_buffer {
    tw_atomic_u32 head;
    tw_atomic_u32 tail;
    tw_atomic_ptr slots[TW_POOL_BUFFER_CAPACITY];
} pool_buffer;

typedef struct pool_found {
    tw_pool_task *task;
    bool pushed; /* more tasks were moved into the ring: someone else should look too */
} pool_found;

/* Pushes the batch; what does not fit (and half the ring, to make room) comes back as
 * the overflow, for the owner's queue. */
static tw_pool_batch buffer_push(pool_buffer *buffer, tw_pool_batch batch) {
    uint32_t tail = tw_atomic_load_u32(&buffer->tail, tw_relaxed);
    uint32_t head = tw_atomic_load_u32(&buffer->head, tw_relaxed);
    for (;;) {
        uint32_t size = tail - head;
        TW_ASSERT(size <= TW_POOL_BUFFER_CAPACITY);
        if (size < TW_POOL_BUFFER_CAPACITY) {
            while (batch.count > 0 && size < TW_POOL_BUFFER_CAPACITY) {
                tw_pool_task *task = batch.head;
                batch.head = task->next;
                batch.count--;
                tw_atomic_store_ptr(&buffer->slots[tail % TW_POOL_BUFFER_CAPACITY], task, tw_relaxed);
                tail++;
                size++;
            }
            tw_atomic_store_u32(&buffer->tail, tail, tw_release);
            if (batch.count == 0) return (tw_pool_batch){0};
            tw_spin_hint();
            head = tw_atomic_load_u32(&buffer->head, tw_relaxed);
            continue;
        }
        /* Full: move half of it out, with the rest of the batch, to the overflow queue. */
        uint32_t migrate = TW_POOL_BUFFER_CAPACITY / 2;
        if (!tw_atomic_cas_weak_u32(&buffer->head, &head, head + migrate, tw_acquire, tw_relaxed)) {
            continue;
        }
        tw_pool_batch overflow = {0};
        for (uint32_t i = 0; i < migrate; i++) {
            tw_pool_task *task = tw_atomic_load_ptr(&buffer->slots[(head + i) % TW_POOL_BUFFER_CAPACITY], tw_relaxed);
            tw_pool_batch_push(&overflow, tw_pool_batch_of(task));
        }
        if (batch.count > 0) {
            batch.tail->next = NULL;
            tw_pool_batch_push(&overflow, batch);
        }
        return overflow;
    }
}

static tw_pool_task *buffer_pop(pool_buffer *buffer) {
    uint32_t head = tw_atomic_load_u32(&buffer->head, tw_relaxed);
    uint32_t tail = tw_atomic_load_u32(&buffer->tail, tw_relaxed); /* ours */
    for (;;) {
        if (tail == head) return NULL;
        TW_ASSERT(tail - head <= TW_POOL_BUFFER_CAPACITY);
        if (tw_atomic_cas_weak_u32(&buffer->head, &head, head + 1, tw_acquire, tw_relaxed)) {
            return tw_atomic_load_ptr(&buffer->slots[head % TW_POOL_BUFFER_CAPACITY], tw_relaxed);
        }
    }
}

/* Moves tasks from a queue into the (empty) ring; returns one to run. */
static pool_found buffer_consume(pool_buffer *buffer, tw_pool_queue *queue) {
    tw_pool_task *cursor = NULL;
    if (!queue_acquire_consumer(queue, &cursor)) return (pool_found){0};
    uint32_t head = tw_atomic_load_u32(&buffer->head, tw_relaxed);
    uint32_t tail = tw_atomic_load_u32(&buffer->tail, tw_relaxed);
    uint32_t room = TW_POOL_BUFFER_CAPACITY - (tail - head);
    uint32_t pushed = 0;
    while (pushed < room) {
        tw_pool_task *task = queue_pop(queue, &cursor);
        if (task == NULL) break;
        tw_atomic_store_ptr(&buffer->slots[(tail + pushed) % TW_POOL_BUFFER_CAPACITY], task, tw_relaxed);
        pushed++;
    }
    tw_pool_task *task = queue_pop(queue, &cursor);
    if (task == NULL && pushed > 0) {
        pushed--;
        task = tw_atomic_load_ptr(&buffer->slots[(tail + pushed) % TW_POOL_BUFFER_CAPACITY], tw_relaxed);
    }
    if (pushed > 0) tw_atomic_store_u32(&buffer->tail, tail + pushed, tw_release);
    queue_release_consumer(queue, cursor);
    return (pool_found){.task = task, .pushed = pushed > 0};
}

/* Takes half (rounded up) of another thread's ring into this (empty) one. */
static pool_found buffer_steal(pool_buffer *buffer, pool_buffer *target) {
    uint32_t tail = tw_atomic_load_u32(&buffer->tail, tw_relaxed);
    for (;;) {
        uint32_t target_head = tw_atomic_load_u32(&target->head, tw_acquire);
        uint32_t target_tail = tw_atomic_load_u32(&target->tail, tw_acquire);
        uint32_t size = target_tail - target_head;
        if (size > TW_POOL_BUFFER_CAPACITY) { /* a torn read: the tail moved on */
            tw_spin_hint();
            continue;
        }
        uint32_t count = size - size / 2;
        if (count == 0) return (pool_found){0};
        bool commit_first = TW_PLANTED(tw_plant_pool_steal_commits_before_copy);
        if (commit_first) {
            uint32_t expected = target_head;
            if (!tw_atomic_cas_weak_u32(&target->head, &expected, target_head + count, tw_acq_rel, tw_relaxed)) {
                tw_spin_hint();
                continue;
            }
        }
        for (uint32_t i = 0; i < count; i++) {
            tw_pool_task *task = tw_atomic_load_ptr(&target->slots[(target_head + i) % TW_POOL_BUFFER_CAPACITY], tw_relaxed);
            tw_atomic_store_ptr(&buffer->slots[(tail + i) % TW_POOL_BUFFER_CAPACITY], task, tw_relaxed);
        }
        /* Commit after the copy: once head moves, the owner may reuse those slots. */
        if (!commit_first &&
            !tw_atomic_cas_weak_u32(&target->head, &target_head, target_head + count, tw_acq_rel, tw_relaxed)) {
            tw_spin_hint();
            continue;
        }
        count--;
        tw_pool_task *task = tw_atomic_load_ptr(&buffer->slots[(tail + count) % TW_POOL_BUFFER_CAPACITY], tw_relaxed);
        if (count > 0) tw_atomic_store_u32(&buffer->tail, tail + count, tw_release);
        return (pool_found){.task = task, .pushed = count > 0};
    }
}

/* ---- workers ------------------------------------------------------------------------ */

typedef struct pool_thread {
    struct pool_thread *next; /* in pool->threads */
    struct pool_thread *target; /* the steal cursor */
    tw_pool_event join_event;
    tw_pool_queue run_queue; /* overflow of run_buffer */
    pool_buffer run_buffer;
    tw_pool *pool;
} pool_thread;

static void pool_check(const tw_pool *pool) {
    TW_ASSERT(pool != NULL);
    TW_ASSERT_MSG(pool->magic == TW_POOL_MAGIC, "a tw_pool used before tw_pool_init or after tw_pool_deinit");
}

static void thread_main(void *arg);

/* Makes sure someone will look for work: wakes an idle thread or spawns one. */
static void notify(tw_pool *pool, bool is_waking) {
    uint32_t sync = tw_atomic_load_u32(&pool->sync, tw_relaxed);
    if (!is_waking && (sync & sync_notified) != 0) return; /* someone will look already */
    while (sync_state(sync) != state_shutdown) {
        bool can_wake = is_waking || sync_state(sync) == state_pending;
        if (is_waking) TW_ASSERT(sync_state(sync) == state_waking);
        uint32_t updated = sync | sync_notified;
        enum { wake_none, wake_idle, wake_spawn } action = wake_none;
        if (can_wake && sync_idle(sync) > 0 && !TW_PLANTED(tw_plant_pool_notify_skips_idle)) {
            updated = sync_with_state(updated, state_signaled);
            action = wake_idle;
        } else if (can_wake && sync_spawned(sync) < pool->threads_max) {
            updated = sync_with_state(updated, state_signaled) + sync_spawned_one;
            action = wake_spawn;
        } else if (is_waking) {
            updated = sync_with_state(updated, state_pending); /* nobody takes over: give it up */
        } else if ((sync & sync_notified) != 0) {
            return;
        }
        if (!tw_atomic_cas_weak_u32(&pool->sync, &sync, updated, tw_release, tw_relaxed)) continue;
        if (action == wake_idle) {
            event_notify(&pool->idle_event);
        } else if (action == wake_spawn) {
            tw_thread thread;
            tw_thread_options options = {.stack_size_bytes = pool->stack_size_bytes, .name = "pool-worker"};
            if (tw_thread_spawn(&thread, &options, thread_main, pool) == tw_os_ok) {
                TW_ASSERT(tw_thread_detach(thread) == tw_os_ok);
                if (sync_spawned(sync) > 0) TW_REACHED(tw_reach_pool_thread_spawned_more);
            } else {
                /* Undo the count; if that was the last thread of a shut-down pool, let join go.
                 * The work is not stranded: init's first thread stays until shutdown. */
                TW_REACHED(tw_reach_pool_spawn_failed);
                uint32_t old = tw_atomic_fetch_sub_u32(&pool->sync, sync_spawned_one, tw_release);
                TW_ASSERT(sync_spawned(old) > 0);
                if (sync_state(old) == state_shutdown && sync_spawned(old) == 1) event_notify(&pool->join_event);
            }
        }
        return;
    }
}

typedef enum wait_result { wait_shutdown = -1, wait_not_waking = 0, wait_waking = 1 } wait_result;

/* Sleeps until notified; returns whether this thread is now the waking one, or shutdown. */
static wait_result wait(tw_pool *pool, bool is_waking) {
    bool is_idle = false;
    uint32_t sync = tw_atomic_load_u32(&pool->sync, tw_relaxed);
    for (;;) {
        if (sync_state(sync) == state_shutdown) return wait_shutdown;
        if ((sync & sync_notified) != 0) {
            uint32_t updated = sync & ~(uint32_t)sync_notified;
            if (is_idle) {
                TW_ASSERT(sync_idle(updated) > 0);
                updated -= 1;
            }
            if (sync_state(sync) == state_signaled) updated = sync_with_state(updated, state_waking);
            if (tw_atomic_cas_weak_u32(&pool->sync, &sync, updated, tw_acquire, tw_relaxed)) {
                return (is_waking || sync_state(sync) == state_signaled) ? wait_waking : wait_not_waking;
            }
            continue;
        }
        if (!is_idle) {
            uint32_t updated = sync + 1;
            TW_ASSERT(sync_idle(sync) < sync_idle_mask);
            if (is_waking) updated = sync_with_state(updated, state_pending);
            if (tw_atomic_cas_weak_u32(&pool->sync, &sync, updated, tw_relaxed, tw_relaxed)) {
                is_waking = false;
                is_idle = true;
            }
            continue;
        }
        TW_REACHED(tw_reach_pool_thread_slept);
        event_wait(&pool->idle_event);
        sync = tw_atomic_load_u32(&pool->sync, tw_relaxed);
    }
}

/* The next task for this thread, or NULL (which may be spurious: the caller waits and
 * the notify protocol makes sure someone looks again). */
static pool_found thread_pop(pool_thread *self) {
    tw_pool *pool = self->pool;
    tw_pool_task *task = buffer_pop(&self->run_buffer);
    if (task != NULL) return (pool_found){.task = task};
    pool_found found = buffer_consume(&self->run_buffer, &self->run_queue);
    if (found.task != NULL) return found;
    found = buffer_consume(&self->run_buffer, &pool->run_queue);
    if (found.task != NULL) return found;
    uint32_t spawned = sync_spawned(tw_atomic_load_u32(&pool->sync, tw_relaxed));
    for (uint32_t attempt = 0; attempt < spawned; attempt++) {
        pool_thread *target = self->target != NULL ? self->target
                                                   : tw_atomic_load_ptr(&pool->threads, tw_acquire);
        if (target == NULL) break;
        self->target = target->next;
        /* Its queue first: its owner reaches for it last, so there is less contention. */
        found = buffer_consume(&self->run_buffer, &target->run_queue);
        if (found.task != NULL) return found;
        if (target == self) continue;
        found = buffer_steal(&self->run_buffer, &target->run_buffer);
        if (found.task != NULL) {
            TW_REACHED(tw_reach_pool_task_stolen);
            return found;
        }
    }
    return (pool_found){0};
}

/* True while a queue holds tasks or is held by a consumer (who may put some back). */
static bool queue_busy(tw_pool_queue *queue) {
    return tw_atomic_load_usize(&queue->stack, tw_acquire) != 0;
}

/* Work anywhere in a shut-down pool: its queue, or any listed thread's queue or ring.
 * Threads that left stay listed (each waits on its join event until deinit), and their
 * queues may still hold tasks that another consumer put back. */
static bool pool_work_left(tw_pool *pool) {
    if (queue_busy(&pool->run_queue)) return true;
    for (pool_thread *t = tw_atomic_load_ptr(&pool->threads, tw_acquire); t != NULL; t = t->next) {
        if (queue_busy(&t->run_queue)) return true;
        uint32_t head = tw_atomic_load_u32(&t->run_buffer.head, tw_acquire);
        if (tw_atomic_load_u32(&t->run_buffer.tail, tw_acquire) != head) return true;
    }
    return false;
}

/* The drain's search: every listed thread's queue and ring, those that left included
 * (thread_pop tries only as many targets as are still spawned). */
static pool_found drain_pop(pool_thread *self) {
    TW_ASSERT(self != NULL && self->pool != NULL);
    TW_ASSERT(sync_state(tw_atomic_load_u32(&self->pool->sync, tw_relaxed)) == state_shutdown);
    pool_found found = thread_pop(self);
    for (pool_thread *t = tw_atomic_load_ptr(&self->pool->threads, tw_acquire);
         found.task == NULL && t != NULL; t = t->next) {
        found = buffer_consume(&self->run_buffer, &t->run_queue);
        if (found.task == NULL && t != self) found = buffer_steal(&self->run_buffer, &t->run_buffer);
    }
    return found;
}

static void unregister(tw_pool *pool, pool_thread *self) {
    pool_check(pool);
    uint32_t old = tw_atomic_fetch_sub_u32(&pool->sync, sync_spawned_one, tw_release);
    TW_ASSERT(sync_spawned(old) > 0);
    if (sync_state(old) == state_shutdown && sync_spawned(old) == 1) event_notify(&pool->join_event);
    /* From here on the pool may be freed: wait on our own event, wake the next, leave. */
    event_wait(&self->join_event);
    if (self->next != NULL) event_notify(&self->next->join_event);
}

static void thread_main(void *arg) {
    tw_pool *pool = arg;
    pool_check(pool);
    pool_thread self = {.pool = pool};
    tw_thread_current_set(&self);
    self.next = tw_atomic_load_ptr(&pool->threads, tw_relaxed);
    void *expected = self.next;
    while (!tw_atomic_cas_weak_ptr(&pool->threads, &expected, &self, tw_release, tw_relaxed)) {
        self.next = expected;
    }
    bool is_waking = false;
    for (;;) {
        wait_result result = wait(pool, is_waking);
        if (result == wait_shutdown) break;
        is_waking = result == wait_waking;
        for (;;) {
            pool_found found = thread_pop(&self);
            if (found.task == NULL) break;
            if (found.pushed || is_waking) notify(pool, is_waking);
            is_waking = false;
            found.task->callback(found.task);
        }
    }
    /* Shutdown drains: run what can still be found, and leave only once no queue or ring
     * of the pool holds a task. Nothing found is not enough: another consumer may hold a
     * queue for a moment, and put back what its ring had no room for into the queue of a
     * thread that already left (the pool fuzz target found tasks stranded that way:
     * corpus/regressions/pool/shutdown-strands-overflow-queue). */
    for (;;) {
        pool_found found = drain_pop(&self);
        if (found.task != NULL) {
            found.task->callback(found.task);
            continue;
        }
        if (!pool_work_left(pool)) break;
        tw_spin_hint(); /* another thread is moving tasks: let it finish */
    }
    TW_ASSERT(tw_atomic_load_u32(&self.run_buffer.tail, tw_relaxed) ==
              tw_atomic_load_u32(&self.run_buffer.head, tw_relaxed));
    tw_thread_current_set(NULL);
    unregister(pool, &self);
}

/* ---- the public calls ------------------------------------------------------------------ */

tw_pool_error tw_pool_init(tw_pool *pool, const tw_pool_options *options) {
    TW_ASSERT(pool != NULL);
    uint32_t threads_max = options != NULL && options->threads_max != 0 ? options->threads_max : tw_cpu_count();
    if (threads_max > TW_POOL_THREADS_MAX) threads_max = TW_POOL_THREADS_MAX;
    *pool = (tw_pool){
        .magic = TW_POOL_MAGIC,
        .threads_max = threads_max,
        .stack_size_bytes = options != NULL ? options->stack_size_bytes : 0,
    };
    TW_ASSERT(pool->threads_max >= 1);
    /* The first thread, counted before it starts (it goes idle until work comes). */
    tw_atomic_store_u32(&pool->sync, sync_spawned_one, tw_relaxed);
    tw_thread thread;
    tw_thread_options thread_options = {.stack_size_bytes = pool->stack_size_bytes, .name = "pool-worker"};
    if (tw_thread_spawn(&thread, &thread_options, thread_main, pool) != tw_os_ok) {
        TW_REACHED(tw_reach_pool_init_failed);
        pool->magic = TW_POOL_MAGIC_DEAD;
        return tw_pool_system_resources;
    }
    TW_ASSERT(tw_thread_detach(thread) == tw_os_ok);
    return tw_pool_ok;
}

void tw_pool_schedule(tw_pool *pool, tw_pool_batch batch) {
    pool_check(pool);
    if (batch.count == 0) return;
    TW_ASSERT(batch.head != NULL && batch.tail != NULL);
    batch.tail->next = NULL;
    pool_thread *self = tw_thread_current_get();
    if (self != NULL && self->pool == pool) {
        tw_pool_batch overflow = buffer_push(&self->run_buffer, batch);
        if (overflow.count > 0) queue_push(&self->run_queue, overflow);
    } else {
        TW_ASSERT_MSG(sync_state(tw_atomic_load_u32(&pool->sync, tw_relaxed)) != state_shutdown,
                      "tw_pool_schedule from outside the pool after tw_pool_shutdown");
        queue_push(&pool->run_queue, batch);
    }
    notify(pool, false);
}

void tw_pool_shutdown(tw_pool *pool) {
    pool_check(pool);
    uint32_t sync = tw_atomic_load_u32(&pool->sync, tw_relaxed);
    for (;;) {
        if (sync_state(sync) == state_shutdown) return;
        uint32_t updated = sync_with_state(sync | sync_notified, state_shutdown) & ~(uint32_t)sync_idle_mask;
        if (tw_atomic_cas_weak_u32(&pool->sync, &sync, updated, tw_acq_rel, tw_relaxed)) break;
    }
    if (sync_idle(sync) > 0) event_close(&pool->idle_event);
    /* Every thread is gone already: nobody else would wake the joiner. */
    if (sync_spawned(sync) == 0) event_notify(&pool->join_event);
}

void tw_pool_deinit(tw_pool *pool) {
    pool_check(pool);
    TW_ASSERT_MSG(sync_state(tw_atomic_load_u32(&pool->sync, tw_relaxed)) == state_shutdown,
                  "tw_pool_deinit before tw_pool_shutdown");
    if (!TW_PLANTED(tw_plant_pool_join_skips_wait)) event_wait(&pool->join_event);
    uint32_t sync = tw_atomic_load_u32(&pool->sync, tw_acquire);
    TW_ASSERT(sync_state(sync) == state_shutdown);
    TW_ASSERT_MSG(sync_spawned(sync) == 0, "tw_pool_deinit: a thread is still in the pool after the join");
    pool_thread *top = tw_atomic_load_ptr(&pool->threads, tw_acquire);
    pool->magic = TW_POOL_MAGIC_DEAD;
    if (top != NULL) event_notify(&top->join_event); /* each thread wakes the next, then leaves */
}
