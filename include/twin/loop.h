/* twin: a completion-based event loop (the design of libxev), one API for both builds.
 *
 * The caller owns every tw_completion (a stable address until its callback has run).
 * Starting an operation only queues it; tw_loop_run submits and runs callbacks. A
 * callback returns tw_disarm (done: the completion may be reused or freed, even inside
 * the callback, and the loop does not touch it again) or tw_rearm (run the identical
 * operation again with the same completion).
 *
 * Threads: a loop belongs to the one thread that runs it. Every function here must be
 * called from that thread, except tw_async_notify, which any thread may call at any time
 * while the loop exists. Callbacks run on the loop's thread, inside tw_loop_run.
 *
 * Timers live in the loop (a heap in user space), not in the kernel: see src/loop.c. */
#ifndef TWIN_LOOP_H
#define TWIN_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <twin/atomic_types.h>
#include <twin/heap.h>
#include <twin/os.h>

typedef struct tw_loop tw_loop;
typedef struct tw_completion tw_completion;

/* A socket: a file descriptor in the real build, a simulated socket in the sim. */
typedef int32_t tw_fd;
#define TW_FD_INVALID (-1)

typedef enum tw_loop_error {
    tw_loop_ok = 0,
    tw_loop_canceled,         /* the operation was canceled (cancel, timer cancel, deinit) */
    tw_loop_eof,              /* recv: the peer shut down its side (0 bytes into a non-empty buffer) */
    tw_loop_reset,            /* the connection was reset */
    tw_loop_refused,          /* connect: nothing listens at that address */
    tw_loop_timed_out,        /* connect: no answer in time */
    tw_loop_broken_pipe,      /* send on a connection this side has shut down or the peer closed,
                                 or on a socket that never connected (Linux's EPIPE) */
    tw_loop_not_connected,    /* shutdown or recv on a socket that is not connected */
    tw_loop_bad_socket,       /* the socket is closed, or was never opened */
    tw_loop_address_in_use,   /* bind: the address is taken */
    tw_loop_address_invalid,  /* an address string or family that is not accepted */
    tw_loop_unreachable,      /* connect: no route to the host or network */
    tw_loop_not_found,        /* cancel: the target was not pending (finished, or never started) */
    tw_loop_in_progress,      /* cancel: the target is completing and cannot be stopped */
    tw_loop_system_resources, /* out of memory, descriptors, timers or ring entries */
    tw_loop_nested_run,       /* tw_loop_run from inside a callback of the same loop */
    tw_loop_unsupported,      /* init: the kernel has no io_uring, or a policy (seccomp, as in
                                 a container's default profile, or the io_uring_disabled
                                 sysctl) refuses it */
    tw_loop_unexpected,       /* an OS error with no name here: tw_result.os_error has errno */
} tw_loop_error;

const char *tw_loop_error_name(tw_loop_error error);
/* What a user can do about an error that stops a program from starting (today:
 * tw_loop_unsupported), as one sentence; NULL for errors with no such advice. */
const char *tw_loop_error_advice(tw_loop_error error);

typedef struct tw_result {
    tw_loop_error error;
    int32_t os_error; /* errno, for tw_loop_unexpected */
    /* recv/send: bytes; accept: the new socket (a tw_fd); timer: a tw_timer_trigger */
    uint64_t value;
} tw_result;

typedef enum tw_timer_trigger {
    tw_timer_expired = 1,
} tw_timer_trigger;

typedef enum tw_action {
    tw_disarm = 0,
    tw_rearm = 1,
} tw_action;

typedef enum tw_run_mode {
    tw_run_no_wait = 0, /* one pass: run what is ready, never block */
    tw_run_once,        /* block until at least one callback has run */
    tw_run_until_done,  /* until no operation is pending */
} tw_run_mode;

typedef tw_action (*tw_callback)(void *userdata, tw_loop *loop, tw_completion *completion,
                                 tw_result result);

/* An IPv4 or IPv6 address and port. Parsed from "1.2.3.4:80" or "[::1]:80". */
typedef struct tw_address {
    uint8_t family; /* 4 or 6 */
    uint16_t port;
    uint8_t ip[16]; /* IPv4 in the first 4 bytes */
} tw_address;

#define TW_ADDRESS_TEXT_SIZE 64

/* tw_loop_ok or tw_loop_address_invalid. */
tw_loop_error tw_address_parse(const char *text, tw_address *address);
void tw_address_format(const tw_address *address, char *text, size_t text_size);
bool tw_address_equal(const tw_address *a, const tw_address *b);

typedef enum tw_op {
    tw_op_noop = 0,
    tw_op_accept,
    tw_op_connect,
    tw_op_recv,
    tw_op_send,
    tw_op_shutdown, /* the write side: SHUT_WR */
    tw_op_close,
    tw_op_timer,
    tw_op_cancel,
    tw_op_async_wait,
} tw_op;

typedef struct tw_async tw_async;

#define TW_COMPLETION_BACKEND_SIZE 40

/* Zero-initialised, a completion is a dead noop. Fill op and args through the tw_loop_* or
 * tw_tcp_* starters; the fields below "loop-private" belong to the loop while it is active. */
struct tw_completion {
    tw_op op;
    union {
        struct { tw_fd socket; } accept;
        struct { tw_fd socket; tw_address address; } connect;
        struct { tw_fd socket; void *buffer; size_t size; } recv;
        struct { tw_fd socket; const void *buffer; size_t size; } send;
        struct { tw_fd socket; } shutdown;
        struct { tw_fd socket; } close;
        struct { uint64_t deadline_ns; } timer;
        struct { tw_completion *target; } cancel;
        struct { tw_async *async; } async_wait;
    } args;
    void *userdata;
    tw_callback callback;
    /* loop-private */
    uint32_t state;
    tw_completion *next;
    tw_result result;
    tw_heap_node timer_node;
    _Alignas(8) unsigned char backend[TW_COMPLETION_BACKEND_SIZE];
};

/* True while the loop owns the completion (from start until its callback returns). */
bool tw_completion_active(const tw_completion *completion);

typedef struct tw_loop_options {
    uint32_t entries;    /* io_uring ring entries (real) or the like; 0: 256 */
    uint32_t timers_max; /* timers armed at once; 0: 1024 */
} tw_loop_options;

/* loop_out receives the loop. tw_loop_system_resources when memory, descriptors or ring
 * entries run out; tw_loop_unsupported when the kernel or a policy refuses io_uring;
 * tw_loop_unexpected for any other refusal. */
tw_loop_error tw_loop_init(tw_loop **loop_out, const tw_loop_options *options);
/* Pending operations are dropped without callbacks: run the loop until done first. */
void tw_loop_deinit(tw_loop *loop);

tw_loop_error tw_loop_run(tw_loop *loop, tw_run_mode mode);
/* Runs until done or until duration_ns of loop time have passed. */
tw_loop_error tw_loop_run_for(tw_loop *loop, uint64_t duration_ns);
/* Every later run returns at once. */
void tw_loop_stop(tw_loop *loop);
/* The cached monotonic clock, refreshed once per loop iteration. */
uint64_t tw_loop_now_ns(const tw_loop *loop);
void tw_loop_update_now(tw_loop *loop);
/* Operations pending: started and whose callback has not yet run. */
uint32_t tw_loop_active(const tw_loop *loop);

/* Starts the operation described by completion->op and args (the starters below fill them). */
void tw_loop_add(tw_loop *loop, tw_completion *completion);

/* A timer that fires timeout_ns after the loop's cached now. Result value tw_timer_expired. */
void tw_loop_timer(tw_loop *loop, tw_completion *completion, uint64_t timeout_ns, void *userdata,
                   tw_callback callback);
/* Moves an armed timer to fire timeout_ns after now, without calling its callback; arms it
 * if it is not armed. */
void tw_loop_timer_reset(tw_loop *loop, tw_completion *completion, uint64_t timeout_ns,
                         void *userdata, tw_callback callback);
/* Cancels any pending operation. target completes with tw_loop_canceled (unless it finished
 * first); completion completes with ok, not_found (target not pending) or in_progress. */
void tw_loop_cancel(tw_loop *loop, tw_completion *completion, tw_completion *target,
                    void *userdata, tw_callback callback);

/* Async: wake a loop from any thread. Notifies before the wait is seen coalesce into one
 * completion of the wait. */
struct tw_async {
    tw_atomic_u32 pending;
    tw_atomic_u32 notifying; /* notifies in progress: deinit waits for them */
    tw_loop *loop;
};
void tw_async_init(tw_loop *loop, tw_async *async);
/* Any thread, between tw_async_init and tw_async_deinit. */
void tw_async_notify(tw_async *async);
/* Loop thread, before the loop or the async is freed: waits until no notify is still
 * inside tw_async_notify. (A notify can wake the loop, which may then finish and be freed
 * while the notifier is still returning; this closes that window.) No notify may start
 * after it. */
void tw_async_deinit(tw_async *async);
/* Loop thread: completion completes (ok) once after one or more notifies. */
void tw_async_wait(tw_loop *loop, tw_async *async, tw_completion *completion, void *userdata,
                   tw_callback callback);

#endif
