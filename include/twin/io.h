/* twin: the IO seam under the loop (for src/loop.c; not a user API).
 *
 *   real/io_uring.c: io_uring through liburing, real sockets
 *   sim/io_sim.c:    the world's simulated network
 *
 * The loop (src/loop.c) keeps timers, run modes, queues and callbacks; a backend only
 * starts IO operations, waits for them with a timeout, and reports their results. */
#ifndef TWIN_IO_H
#define TWIN_IO_H

#include <stdbool.h>
#include <stdint.h>

#include <twin/loop.h>

typedef struct tw_io tw_io;

typedef void (*tw_io_complete_fn)(void *context, tw_completion *completion, tw_result result);

tw_loop_error tw_io_init(tw_io **io, uint32_t entries);
/* Closes nothing the user opened; drops operations still pending. */
void tw_io_deinit(tw_io *io);

/* Starts an IO operation: accept, connect, recv, send, shutdown, close or cancel (of an
 * operation this backend owns). Returns false when the backend has no room now; the loop
 * keeps the completion and offers it again after the next wait. A result of 0 bytes for
 * a non-empty recv is reported as 0 here (the loop applies the EOF rule). */
bool tw_io_submit(tw_io *io, tw_completion *completion);

/* Flushes submissions; waits until some operation completes, timeout_ns passes
 * (TW_TIMEOUT_NONE: no limit; 0: do not wait) or tw_io_wake is called; then reports each
 * finished operation through complete(). Returns how many it reported. */
uint32_t tw_io_wait(tw_io *io, uint64_t timeout_ns, tw_io_complete_fn complete, void *context);

/* Any thread: the current or next tw_io_wait returns soon. */
void tw_io_wake(tw_io *io);

/* Synchronous socket set-up. */
tw_loop_error tw_io_socket(tw_io *io, uint8_t family, tw_fd *fd);
tw_loop_error tw_io_bind(tw_io *io, tw_fd fd, const tw_address *address);
tw_loop_error tw_io_listen(tw_io *io, tw_fd fd, uint32_t backlog);
tw_loop_error tw_io_local_address(tw_io *io, tw_fd fd, tw_address *address);
tw_loop_error tw_io_set_send_buffer(tw_io *io, tw_fd fd, uint32_t size_bytes);
tw_loop_error tw_io_set_no_delay(tw_io *io, tw_fd fd, bool no_delay);

#endif
