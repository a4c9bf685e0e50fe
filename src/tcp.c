/* twin: TCP over the loop, and the ordered write queue. */
#include <twin/assert.h>
#include <twin/io.h>
#include <twin/tcp.h>

#include "loop_internal.h"

tw_loop_error tw_tcp_open(tw_loop *loop, const tw_address *address, tw_tcp *tcp) {
    TW_ASSERT(loop != NULL && address != NULL && tcp != NULL);
    tcp->fd = TW_FD_INVALID;
    if (address->family != 4 && address->family != 6) return tw_loop_address_invalid;
    return tw_io_socket(tw_loop_io(loop), address->family, &tcp->fd);
}

tw_loop_error tw_tcp_bind(tw_loop *loop, tw_tcp tcp, const tw_address *address) {
    TW_ASSERT(loop != NULL && address != NULL);
    return tw_io_bind(tw_loop_io(loop), tcp.fd, address);
}

tw_loop_error tw_tcp_listen(tw_loop *loop, tw_tcp tcp, uint32_t backlog) {
    TW_ASSERT(loop != NULL);
    return tw_io_listen(tw_loop_io(loop), tcp.fd, backlog);
}

tw_loop_error tw_tcp_local_address(tw_loop *loop, tw_tcp tcp, tw_address *address) {
    TW_ASSERT(loop != NULL && address != NULL);
    return tw_io_local_address(tw_loop_io(loop), tcp.fd, address);
}

tw_loop_error tw_tcp_set_send_buffer(tw_loop *loop, tw_tcp tcp, uint32_t size_bytes) {
    TW_ASSERT(loop != NULL);
    return tw_io_set_send_buffer(tw_loop_io(loop), tcp.fd, size_bytes);
}

tw_loop_error tw_tcp_set_no_delay(tw_loop *loop, tw_tcp tcp, bool no_delay) {
    TW_ASSERT(loop != NULL);
    return tw_io_set_no_delay(tw_loop_io(loop), tcp.fd, no_delay);
}

static void start(tw_loop *loop, tw_completion *completion, tw_op op, void *userdata,
                  tw_callback callback) {
    TW_ASSERT(completion != NULL && callback != NULL);
    completion->op = op;
    completion->userdata = userdata;
    completion->callback = callback;
    tw_loop_add(loop, completion);
}

void tw_tcp_accept(tw_loop *loop, tw_completion *completion, tw_tcp listener, void *userdata,
                   tw_callback callback) {
    completion->args.accept.socket = listener.fd;
    start(loop, completion, tw_op_accept, userdata, callback);
}

void tw_tcp_connect(tw_loop *loop, tw_completion *completion, tw_tcp tcp,
                    const tw_address *address, void *userdata, tw_callback callback) {
    TW_ASSERT(address != NULL);
    completion->args.connect.socket = tcp.fd;
    completion->args.connect.address = *address;
    start(loop, completion, tw_op_connect, userdata, callback);
}

void tw_tcp_read(tw_loop *loop, tw_completion *completion, tw_tcp tcp, void *buffer, size_t size,
                 void *userdata, tw_callback callback) {
    TW_ASSERT(buffer != NULL || size == 0);
    completion->args.recv.socket = tcp.fd;
    completion->args.recv.buffer = buffer;
    completion->args.recv.size = size;
    start(loop, completion, tw_op_recv, userdata, callback);
}

void tw_tcp_write(tw_loop *loop, tw_completion *completion, tw_tcp tcp, const void *buffer,
                  size_t size, void *userdata, tw_callback callback) {
    TW_ASSERT(buffer != NULL || size == 0);
    completion->args.send.socket = tcp.fd;
    completion->args.send.buffer = buffer;
    completion->args.send.size = size;
    start(loop, completion, tw_op_send, userdata, callback);
}

void tw_tcp_shutdown(tw_loop *loop, tw_completion *completion, tw_tcp tcp, void *userdata,
                     tw_callback callback) {
    completion->args.shutdown.socket = tcp.fd;
    start(loop, completion, tw_op_shutdown, userdata, callback);
}

void tw_tcp_close(tw_loop *loop, tw_completion *completion, tw_tcp tcp, void *userdata,
                  tw_callback callback) {
    completion->args.close.socket = tcp.fd;
    start(loop, completion, tw_op_close, userdata, callback);
}

/* ---- the write queue ---------------------------------------------------------------- */

static tw_action write_queue_sent(void *userdata, tw_loop *loop, tw_completion *completion,
                                  tw_result result);

/* Sends what is left of the request, from where the last send stopped. */
static void write_queue_send(tw_loop *loop, tw_write_request *request) {
    TW_ASSERT(request->written <= request->size);
    tw_tcp_write(loop, &request->completion, request->tcp, request->buffer + request->written,
                 request->size - request->written, request, write_queue_sent);
}

static void write_queue_push(tw_write_queue *queue, tw_write_request *request) {
    request->next = NULL;
    if (queue->tail != NULL) queue->tail->next = request;
    else queue->head = request;
    queue->tail = request;
}

static tw_action write_queue_sent(void *userdata, tw_loop *loop, tw_completion *completion,
                                  tw_result result) {
    tw_write_request *request = userdata;
    tw_write_queue *queue = request->queue;
    TW_ASSERT(&request->completion == completion);
    TW_ASSERT(queue->head == request);
    if (result.error == tw_loop_ok) {
        TW_ASSERT(result.value <= request->size - request->written);
        request->written += result.value;
        if (request->written < request->size && queue->stopped) {
            result.error = tw_loop_canceled; /* partial, and the socket is being closed */
        } else if (request->written < request->size) {
            write_queue_send(loop, request); /* partial: continue, the user hears nothing yet */
            return tw_disarm;
        } else {
            result.value = request->size;
        }
    }
    queue->head = request->next;
    if (queue->head == NULL) queue->tail = NULL;
    request->next = NULL;

    tw_action action = request->callback(request->userdata, loop, completion, result);
    if (action == tw_rearm) {
        TW_ASSERT_MSG(!queue->stopped, "tw_tcp_queue_write: rearm on a stopped queue");
        /* The whole buffer again, at the tail (not just the last fragment). */
        request->written = 0;
        write_queue_push(queue, request);
    }
    if (queue->head != NULL && !queue->stopped && !tw_completion_active(&queue->head->completion)) {
        write_queue_send(loop, queue->head);
    }
    return tw_disarm;
}

void tw_tcp_queue_write(tw_loop *loop, tw_write_queue *queue, tw_write_request *request,
                        tw_tcp tcp, const void *buffer, size_t size, void *userdata,
                        tw_callback callback) {
    TW_ASSERT(loop != NULL && queue != NULL && request != NULL && callback != NULL);
    TW_ASSERT(buffer != NULL || size == 0);
    TW_ASSERT_MSG(!tw_completion_active(&request->completion),
                  "tw_tcp_queue_write: the request is still queued");
    TW_ASSERT_MSG(!queue->stopped, "tw_tcp_queue_write: the queue was stopped (its socket is closing)");
    request->queue = queue;
    request->tcp = tcp;
    request->buffer = buffer;
    request->size = size;
    request->written = 0;
    request->userdata = userdata;
    request->callback = callback;
    bool idle = queue->head == NULL;
    write_queue_push(queue, request);
    if (idle) write_queue_send(loop, request);
}

tw_write_request *tw_write_queue_take_waiting(tw_write_queue *queue) {
    TW_ASSERT(queue != NULL);
    TW_ASSERT((queue->head == NULL) == (queue->tail == NULL));
    queue->stopped = true;
    if (queue->head == NULL) return NULL;
    if (!tw_completion_active(&queue->head->completion)) {
        /* Inside a write callback the finished request is already off the queue and the
         * next has not started: all of it waits. */
        tw_write_request *all = queue->head;
        queue->head = queue->tail = NULL;
        return all;
    }
    tw_write_request *waiting = queue->head->next;
    queue->head->next = NULL;
    queue->tail = queue->head;
    return waiting;
}
