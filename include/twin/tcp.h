/* twin: TCP over the loop, and an ordered write queue.
 *
 * A tw_tcp is a value (a socket). Set-up calls (open, bind, listen, options) are
 * synchronous; accept, connect, read, write, shutdown and close are loop operations with
 * the callback conventions of <twin/loop.h>. A read of 0 bytes into a non-empty buffer
 * completes with tw_loop_eof. Same threading rules as the loop. */
#ifndef TWIN_TCP_H
#define TWIN_TCP_H

#include <twin/loop.h>

typedef struct tw_tcp {
    tw_fd fd;
} tw_tcp;

/* A socket for address's family. */
tw_loop_error tw_tcp_open(tw_loop *loop, const tw_address *address, tw_tcp *tcp);
/* Binds with SO_REUSEADDR. Port 0 picks a free port: see tw_tcp_local_address. */
tw_loop_error tw_tcp_bind(tw_loop *loop, tw_tcp tcp, const tw_address *address);
tw_loop_error tw_tcp_listen(tw_loop *loop, tw_tcp tcp, uint32_t backlog);
tw_loop_error tw_tcp_local_address(tw_loop *loop, tw_tcp tcp, tw_address *address);
/* SO_SNDBUF (in the sim: the capacity of the connection's outgoing direction). */
tw_loop_error tw_tcp_set_send_buffer(tw_loop *loop, tw_tcp tcp, uint32_t size_bytes);
tw_loop_error tw_tcp_set_no_delay(tw_loop *loop, tw_tcp tcp, bool no_delay);

/* Result value: the accepted socket; tw_tcp_accepted turns it into a tw_tcp. */
void tw_tcp_accept(tw_loop *loop, tw_completion *completion, tw_tcp listener, void *userdata,
                   tw_callback callback);
static inline tw_tcp tw_tcp_accepted(tw_result result) { return (tw_tcp){.fd = (tw_fd)result.value}; }
void tw_tcp_connect(tw_loop *loop, tw_completion *completion, tw_tcp tcp,
                    const tw_address *address, void *userdata, tw_callback callback);
/* One recv: may return fewer bytes than size. */
void tw_tcp_read(tw_loop *loop, tw_completion *completion, tw_tcp tcp, void *buffer, size_t size,
                 void *userdata, tw_callback callback);
/* One send: may write fewer bytes than size (use the write queue for all of it). */
void tw_tcp_write(tw_loop *loop, tw_completion *completion, tw_tcp tcp, const void *buffer,
                  size_t size, void *userdata, tw_callback callback);
/* Shuts down the write side (SHUT_WR): the peer reads EOF after the bytes already sent. */
void tw_tcp_shutdown(tw_loop *loop, tw_completion *completion, tw_tcp tcp, void *userdata,
                     tw_callback callback);
/* Closes the socket. This loop's operations still pending on it (a read, a write, an
 * accept) complete as tw_loop_canceled. */
void tw_tcp_close(tw_loop *loop, tw_completion *completion, tw_tcp tcp, void *userdata,
                  tw_callback callback);

/* The write queue: writes complete in the order queued, each in full. Only the head
 * request is in flight; a partial write continues from where it stopped. The callback
 * runs once per request: value = the whole length, or the error (bytes written before an
 * error are not reported). Returning tw_rearm queues the whole buffer again at the tail. */
typedef struct tw_write_request tw_write_request;
typedef struct tw_write_queue {
    tw_write_request *head;
    tw_write_request *tail;
    bool stopped; /* set by tw_write_queue_take_waiting: nothing more is sent */
} tw_write_queue;

struct tw_write_request {
    tw_completion completion; /* the callback receives this; tw_write_request_of recovers the request */
    tw_write_queue *queue;
    tw_tcp tcp;
    const uint8_t *buffer;
    size_t size;
    size_t written;
    void *userdata;
    tw_callback callback;
    tw_write_request *next;
};

static inline tw_write_request *tw_write_request_of(tw_completion *completion) {
    return (tw_write_request *)completion; /* completion is the first member */
}

void tw_tcp_queue_write(tw_loop *loop, tw_write_queue *queue, tw_write_request *request,
                        tw_tcp tcp, const void *buffer, size_t size, void *userdata,
                        tw_callback callback);

/* Stops the queue before its socket is closed, so that nothing more starts on a closed
 * (or reused) descriptor. Detaches the requests that wait behind the one in flight (all
 * of them, inside a write callback, where none is in flight) and returns them as a list
 * (linked by next, in queue order; NULL if none): their callbacks never run, the caller
 * owns them again. The request in flight completes once more: with its error, or
 * tw_loop_canceled (by the close, or because it was partly written and is not continued).
 * A stopped queue takes no new requests; zero it to use it on another socket. */
tw_write_request *tw_write_queue_take_waiting(tw_write_queue *queue);

#endif
