/* twin: the loop core, shared by both builds: completion states, run modes, timers,
 * async wake-ups, cancellation and callbacks. IO goes through <twin/io.h>.
 *
 * Timer design: timers are a min-heap here, in user space, and the backend just waits
 * with a timeout (io_uring_submit_and_wait_timeout in the real build, a futex wait in
 * virtual time in the sim). Chosen over io_uring's own TIMEOUT ops because: arming,
 * resetting and cancelling cost no SQE and no syscall; there is no TIMEOUT_REMOVE race to
 * handle (ENOENT, EBUSY, "expiration in progress"); a reset is a heap update, with no
 * second completion; and the very same timer code runs in the simulator, so the sim tests
 * the timers the real build ships. */
#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/heap.h>
#include <twin/io.h>
#include <twin/loop.h>
#include <twin/reach.h>

#include "loop_internal.h"

#define TW_LOOP_ENTRIES_DEFAULT 256u
#define TW_LOOP_TIMERS_MAX_DEFAULT 1024u

enum completion_state {
    state_dead = 0,
    state_queued,    /* waiting to be handed to the backend */
    state_submitted, /* the backend owns it */
    state_timer,     /* in the timer heap */
    state_async,     /* waiting for a notify */
    state_completed, /* result known; callback pending */
};

typedef struct fifo {
    tw_completion *head;
    tw_completion *tail;
} fifo;

struct tw_loop {
    tw_io *io;
    uint64_t now_ns;
    uint32_t active;
    fifo queued;
    fifo completed;
    fifo async_waits;
    tw_heap timers;
    tw_heap_node **timers_storage;
    bool stopped;
    bool in_run;
};

const char *tw_loop_error_name(tw_loop_error error) {
    switch (error) {
    case tw_loop_ok: return "ok";
    case tw_loop_canceled: return "canceled";
    case tw_loop_eof: return "eof";
    case tw_loop_reset: return "reset";
    case tw_loop_refused: return "refused";
    case tw_loop_timed_out: return "timed_out";
    case tw_loop_broken_pipe: return "broken_pipe";
    case tw_loop_not_connected: return "not_connected";
    case tw_loop_bad_socket: return "bad_socket";
    case tw_loop_address_in_use: return "address_in_use";
    case tw_loop_address_invalid: return "address_invalid";
    case tw_loop_unreachable: return "unreachable";
    case tw_loop_not_found: return "not_found";
    case tw_loop_in_progress: return "in_progress";
    case tw_loop_system_resources: return "system_resources";
    case tw_loop_nested_run: return "nested_run";
    case tw_loop_unsupported: return "unsupported";
    case tw_loop_unexpected: return "unexpected";
    }
    return "unknown";
}

const char *tw_loop_error_advice(tw_loop_error error) {
    if (error != tw_loop_unsupported) return NULL;
    return "io_uring is refused here: the kernel has no io_uring, the kernel.io_uring_disabled "
           "sysctl forbids it (sysctl -w kernel.io_uring_disabled=0 allows it), or a seccomp "
           "policy does (a container's default profile: allow io_uring_setup, io_uring_enter and "
           "io_uring_register, e.g. docker run --security-opt seccomp=unconfined); the real build "
           "needs io_uring";
}

/* ---- intrusive FIFOs --------------------------------------------------------------- */

static void fifo_push(fifo *queue, tw_completion *completion) {
    completion->next = NULL;
    if (queue->tail != NULL) queue->tail->next = completion;
    else queue->head = completion;
    queue->tail = completion;
}

static tw_completion *fifo_pop(fifo *queue) {
    tw_completion *head = queue->head;
    if (head == NULL) return NULL;
    queue->head = head->next;
    if (queue->head == NULL) queue->tail = NULL;
    head->next = NULL;
    return head;
}

/* O(n): used only by cancel. */
static bool fifo_remove(fifo *queue, tw_completion *completion) {
    tw_completion *previous = NULL;
    for (tw_completion *c = queue->head; c != NULL; previous = c, c = c->next) {
        if (c != completion) continue;
        if (previous != NULL) previous->next = c->next;
        else queue->head = c->next;
        if (queue->tail == c) queue->tail = previous;
        c->next = NULL;
        return true;
    }
    return false;
}

/* ---- completion life cycle --------------------------------------------------------- */

bool tw_completion_active(const tw_completion *completion) {
    TW_ASSERT(completion != NULL);
    return completion->state != state_dead;
}

static void complete(tw_loop *loop, tw_completion *completion, tw_result result) {
    TW_ASSERT(completion->state != state_dead && completion->state != state_completed);
    completion->state = state_completed;
    completion->result = result;
    fifo_push(&loop->completed, completion);
}

static tw_result result_of(tw_loop_error error, uint64_t value) {
    return (tw_result){.error = error, .os_error = 0, .value = value};
}

/* The backend reports a finished IO operation. */
static void io_completed(void *context, tw_completion *completion, tw_result result) {
    tw_loop *loop = context;
    TW_ASSERT(completion->state == state_submitted);
    if (completion->op == tw_op_recv && result.error == tw_loop_ok && result.value == 0 &&
        completion->args.recv.size > 0) {
        result.error = tw_loop_eof;
    }
    complete(loop, completion, result);
}

static void start_cancel(tw_loop *loop, tw_completion *cancel) {
    tw_completion *target = cancel->args.cancel.target;
    TW_ASSERT(target != NULL && target != cancel);
    switch ((enum completion_state)target->state) {
    case state_dead:
    case state_completed:
        complete(loop, cancel, result_of(tw_loop_not_found, 0));
        return;
    case state_queued: {
        bool removed = fifo_remove(&loop->queued, target);
        TW_ASSERT(removed);
        break;
    }
    case state_timer:
        TW_REACHED(tw_reach_loop_cancel_timer);
        tw_heap_remove(&loop->timers, &target->timer_node);
        break;
    case state_async: {
        bool removed = fifo_remove(&loop->async_waits, target);
        TW_ASSERT(removed);
        break;
    }
    case state_submitted:
        /* The backend owns it: the kernel (or the simulated network) cancels it. */
        cancel->state = state_queued;
        fifo_push(&loop->queued, cancel);
        return;
    }
    complete(loop, target, result_of(tw_loop_canceled, 0));
    complete(loop, cancel, result_of(tw_loop_ok, 0));
}

void tw_loop_add(tw_loop *loop, tw_completion *completion) {
    TW_ASSERT(loop != NULL && completion != NULL);
    TW_ASSERT_MSG(completion->state == state_dead, "tw_loop_add: the completion is already active");
    if (completion->op == tw_op_noop) return;
    loop->active++;
    completion->next = NULL;
    switch (completion->op) {
    case tw_op_noop: break;
    case tw_op_timer:
        completion->state = state_timer;
        tw_heap_node_init(&completion->timer_node);
        if (!tw_heap_push(&loop->timers, &completion->timer_node,
                          completion->args.timer.deadline_ns)) {
            complete(loop, completion, result_of(tw_loop_system_resources, 0));
        }
        break;
    case tw_op_async_wait:
        TW_ASSERT(completion->args.async_wait.async != NULL);
        TW_ASSERT(completion->args.async_wait.async->loop == loop);
        completion->state = state_async;
        fifo_push(&loop->async_waits, completion);
        break;
    case tw_op_cancel:
        completion->state = state_queued; /* for start_cancel's complete() */
        start_cancel(loop, completion);
        break;
    case tw_op_accept:
    case tw_op_connect:
    case tw_op_recv:
    case tw_op_send:
    case tw_op_shutdown:
    case tw_op_close:
        completion->state = state_queued;
        fifo_push(&loop->queued, completion);
        break;
    }
}

/* ---- the run ----------------------------------------------------------------------- */

static void flush_queued(tw_loop *loop) {
    while (loop->queued.head != NULL) {
        tw_completion *completion = loop->queued.head;
        completion->state = state_submitted;
        if (!tw_io_submit(loop->io, completion)) {
            TW_REACHED(tw_reach_loop_submit_deferred);
            completion->state = state_queued; /* the backend is full: retry after the wait */
            return;
        }
        (void)fifo_pop(&loop->queued);
    }
}

static void fire_timers(tw_loop *loop) {
    for (;;) {
        tw_heap_node *next = tw_heap_peek(&loop->timers);
        if (next == NULL || next->key > loop->now_ns) return;
        (void)tw_heap_pop(&loop->timers);
        tw_completion *timer = TW_CONTAINER_OF(next, tw_completion, timer_node);
        TW_ASSERT(timer->state == state_timer);
        complete(loop, timer, result_of(tw_loop_ok, tw_timer_expired));
    }
}

static void check_asyncs(tw_loop *loop) {
    tw_completion *completion = loop->async_waits.head;
    while (completion != NULL) {
        tw_completion *next = completion->next;
        tw_async *async = completion->args.async_wait.async;
        if (tw_atomic_load_u32(&async->pending, tw_relaxed) != 0 &&
            tw_atomic_exchange_u32(&async->pending, 0, tw_acq_rel) != 0) {
            bool removed = fifo_remove(&loop->async_waits, completion);
            TW_ASSERT(removed);
            complete(loop, completion, result_of(tw_loop_ok, 0));
        }
        completion = next;
    }
}

/* Runs the callbacks of everything completed so far (not of what completes meanwhile). */
static uint32_t run_callbacks(tw_loop *loop) {
    fifo ready = loop->completed;
    loop->completed = (fifo){NULL, NULL};
    uint32_t count = 0;
    tw_completion *completion;
    while ((completion = fifo_pop(&ready)) != NULL) {
        TW_ASSERT(completion->state == state_completed);
        TW_ASSERT(loop->active > 0);
        completion->state = state_dead;
        loop->active--;
        count++;
        tw_action action = completion->callback(completion->userdata, loop, completion,
                                                completion->result);
        if (action == tw_rearm) {
            TW_ASSERT_MSG(completion->state == state_dead,
                          "a callback both restarted its completion and returned tw_rearm");
            tw_loop_add(loop, completion);
        } else {
            TW_ASSERT(action == tw_disarm);
        }
    }
    return count;
}

static uint32_t dispatch(tw_loop *loop) {
    fire_timers(loop);
    if (loop->async_waits.head != NULL) check_asyncs(loop);
    return run_callbacks(loop);
}

static uint64_t wait_timeout_ns(const tw_loop *loop, tw_run_mode mode, uint64_t deadline_ns) {
    if (mode == tw_run_no_wait || loop->completed.head != NULL) return 0;
    uint64_t timeout_ns = TW_TIMEOUT_NONE;
    tw_heap_node *next = tw_heap_peek(&loop->timers);
    if (next != NULL) timeout_ns = next->key > loop->now_ns ? next->key - loop->now_ns : 0;
    if (deadline_ns != TW_TIMEOUT_NONE) {
        uint64_t left_ns = deadline_ns > loop->now_ns ? deadline_ns - loop->now_ns : 0;
        if (left_ns < timeout_ns) timeout_ns = left_ns;
    }
    return timeout_ns;
}

static tw_loop_error run(tw_loop *loop, tw_run_mode mode, uint64_t deadline_ns) {
    TW_ASSERT(loop != NULL);
    TW_ASSERT(mode == tw_run_no_wait || mode == tw_run_once || mode == tw_run_until_done);
    if (loop->in_run) return tw_loop_nested_run;
    loop->in_run = true;
    uint64_t processed = 0;
    bool waited = false;
    for (;;) {
        if (loop->stopped) break;
        tw_loop_update_now(loop);
        processed += dispatch(loop);
        if (mode == tw_run_once && processed > 0) break;
        if (loop->active == 0) break;
        if (deadline_ns != TW_TIMEOUT_NONE && loop->now_ns >= deadline_ns) break;
        if (mode == tw_run_no_wait && waited) break;
        flush_queued(loop);
        (void)tw_io_wait(loop->io, wait_timeout_ns(loop, mode, deadline_ns), io_completed, loop);
        waited = true;
    }
    loop->in_run = false;
    return tw_loop_ok;
}

tw_loop_error tw_loop_run(tw_loop *loop, tw_run_mode mode) {
    return run(loop, mode, TW_TIMEOUT_NONE);
}

tw_loop_error tw_loop_run_for(tw_loop *loop, uint64_t duration_ns) {
    TW_ASSERT(loop != NULL);
    tw_loop_update_now(loop);
    uint64_t deadline_ns = UINT64_MAX - loop->now_ns <= duration_ns ? TW_TIMEOUT_NONE - 1
                                                                    : loop->now_ns + duration_ns;
    return run(loop, tw_run_until_done, deadline_ns);
}

/* ---- set-up and small calls --------------------------------------------------------- */

tw_loop_error tw_loop_init(tw_loop **loop_out, const tw_loop_options *options) {
    TW_ASSERT(loop_out != NULL);
    *loop_out = NULL;
    uint32_t entries = options != NULL && options->entries != 0 ? options->entries
                                                                 : TW_LOOP_ENTRIES_DEFAULT;
    uint32_t timers_max = options != NULL && options->timers_max != 0 ? options->timers_max
                                                                       : TW_LOOP_TIMERS_MAX_DEFAULT;
    tw_loop *loop = tw_allocate(sizeof(*loop));
    if (loop == NULL) return tw_loop_system_resources;
    loop->timers_storage = tw_allocate((size_t)timers_max * sizeof(*loop->timers_storage));
    if (loop->timers_storage == NULL) {
        tw_free(loop);
        return tw_loop_system_resources;
    }
    tw_heap_init(&loop->timers, loop->timers_storage, timers_max);
    tw_loop_error error = tw_io_init(&loop->io, entries);
    if (error != tw_loop_ok) {
        tw_free(loop->timers_storage);
        tw_free(loop);
        return error;
    }
    tw_loop_update_now(loop);
    *loop_out = loop;
    return tw_loop_ok;
}

void tw_loop_deinit(tw_loop *loop) {
    TW_ASSERT(loop != NULL);
    TW_ASSERT_MSG(!loop->in_run, "tw_loop_deinit from inside a callback of the loop");
    tw_io_deinit(loop->io);
    tw_free(loop->timers_storage);
    tw_free(loop);
}

void tw_loop_stop(tw_loop *loop) {
    TW_ASSERT(loop != NULL);
    loop->stopped = true;
}

uint64_t tw_loop_now_ns(const tw_loop *loop) {
    TW_ASSERT(loop != NULL);
    return loop->now_ns;
}

void tw_loop_update_now(tw_loop *loop) {
    TW_ASSERT(loop != NULL);
    uint64_t now_ns = tw_clock_monotonic_ns();
    TW_ASSERT(now_ns >= loop->now_ns);
    loop->now_ns = now_ns;
}

uint32_t tw_loop_active(const tw_loop *loop) {
    TW_ASSERT(loop != NULL);
    return loop->active;
}

static uint64_t deadline_after(const tw_loop *loop, uint64_t timeout_ns) {
    return UINT64_MAX - loop->now_ns < timeout_ns ? UINT64_MAX : loop->now_ns + timeout_ns;
}

void tw_loop_timer(tw_loop *loop, tw_completion *completion, uint64_t timeout_ns, void *userdata,
                   tw_callback callback) {
    TW_ASSERT(loop != NULL && completion != NULL && callback != NULL);
    completion->op = tw_op_timer;
    completion->args.timer.deadline_ns = deadline_after(loop, timeout_ns);
    completion->userdata = userdata;
    completion->callback = callback;
    tw_loop_add(loop, completion);
}

void tw_loop_timer_reset(tw_loop *loop, tw_completion *completion, uint64_t timeout_ns,
                         void *userdata, tw_callback callback) {
    TW_ASSERT(loop != NULL && completion != NULL && callback != NULL);
    if (completion->state != state_timer) {
        tw_loop_timer(loop, completion, timeout_ns, userdata, callback);
        return;
    }
    TW_REACHED(tw_reach_loop_timer_reset_armed);
    tw_heap_remove(&loop->timers, &completion->timer_node);
    completion->args.timer.deadline_ns = deadline_after(loop, timeout_ns);
    completion->userdata = userdata;
    completion->callback = callback;
    bool pushed = tw_heap_push(&loop->timers, &completion->timer_node,
                               completion->args.timer.deadline_ns);
    TW_ASSERT(pushed); /* it had a slot a moment ago */
}

void tw_loop_cancel(tw_loop *loop, tw_completion *completion, tw_completion *target,
                    void *userdata, tw_callback callback) {
    TW_ASSERT(loop != NULL && completion != NULL && target != NULL && callback != NULL);
    completion->op = tw_op_cancel;
    completion->args.cancel.target = target;
    completion->userdata = userdata;
    completion->callback = callback;
    tw_loop_add(loop, completion);
}

void tw_async_init(tw_loop *loop, tw_async *async) {
    TW_ASSERT(loop != NULL && async != NULL);
    tw_atomic_store_u32(&async->pending, 0, tw_relaxed);
    tw_atomic_store_u32(&async->notifying, 0, tw_relaxed);
    async->loop = loop;
}

void tw_async_notify(tw_async *async) {
    TW_ASSERT(async != NULL);
    (void)tw_atomic_fetch_add_u32(&async->notifying, 1, tw_acquire);
    tw_loop *loop = async->loop;
    TW_ASSERT_MSG(loop != NULL, "tw_async_notify after tw_async_deinit");
    /* Only the first notify since the loop last consumed one wakes the backend. */
    if (tw_atomic_exchange_u32(&async->pending, 1, tw_acq_rel) == 0) tw_io_wake(loop->io);
    (void)tw_atomic_fetch_sub_u32(&async->notifying, 1, tw_release);
}

void tw_async_deinit(tw_async *async) {
    TW_ASSERT(async != NULL && async->loop != NULL);
    while (tw_atomic_load_u32(&async->notifying, tw_acquire) != 0) tw_spin_hint();
    async->loop = NULL;
}

void tw_async_wait(tw_loop *loop, tw_async *async, tw_completion *completion, void *userdata,
                   tw_callback callback) {
    TW_ASSERT(loop != NULL && async != NULL && completion != NULL && callback != NULL);
    TW_ASSERT(async->loop == loop);
    completion->op = tw_op_async_wait;
    completion->args.async_wait.async = async;
    completion->userdata = userdata;
    completion->callback = callback;
    tw_loop_add(loop, completion);
}

tw_io *tw_loop_io(tw_loop *loop) {
    TW_ASSERT(loop != NULL && loop->io != NULL);
    return loop->io;
}
