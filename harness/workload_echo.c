/* twin harness: the echo workload (see workload_echo.h). */
#include "workload_echo.h"

#include <stdio.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/loop.h>
#include <twin/os.h>
#include <twin/pcg.h>
#include <twin/tcp.h>

#define ECHO_CHUNK_BYTES 4096u
#define ECHO_CONNECT_ATTEMPTS_MAX 20u
#define ECHO_RETRY_NS (5u * 1000u * 1000u)
#define ECHO_SMALL_SEND_BUFFER_BYTES 2048u

/* The workload being run (one world at a time per process). */
static tw_workload_echo *current;

static uint8_t pattern_byte(uint32_t client, uint64_t offset) {
    return (uint8_t)((offset * 31u + client * 7u + (offset >> 8)) % 251u);
}

/* ---- server ---- */
typedef struct server_conn {
    struct server *server;
    tw_tcp tcp;
    uint8_t buffer[ECHO_CHUNK_BYTES];
    tw_completion c_read;
    tw_completion c_close;
    tw_write_queue queue;
    tw_write_request request;
    bool saw_reset;
    bool in_use;
} server_conn;

typedef struct server {
    tw_loop *loop;
    tw_tcp listener;
    tw_address address;
    tw_completion c_accept;
    tw_completion c_stop_cancel;
    tw_async stop;
    tw_completion c_stop;
    server_conn conns[TW_WORKLOAD_ECHO_CLIENTS_MAX * ECHO_CONNECT_ATTEMPTS_MAX];
    uint32_t conns_count;
    uint32_t resets_seen;
    tw_atomic_u32 ready; /* the listener is up */
    bool stopping;
} server;

static tw_action server_read_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result);

static tw_action server_closed_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    (void)result; /* a close reports ok, or bad_socket if it raced nothing: no state to keep */
    server_conn *conn = userdata;
    conn->in_use = false;
    return tw_disarm;
}

static void server_conn_end(server_conn *conn, tw_loop *loop, bool reset) {
    if (reset && !conn->saw_reset) {
        conn->saw_reset = true;
        conn->server->resets_seen++;
    }
    tw_tcp_close(loop, &conn->c_close, conn->tcp, conn, server_closed_cb);
}

static tw_action server_wrote_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)c;
    server_conn *conn = userdata;
    if (result.error != tw_loop_ok) {
        TW_ASSERT_MSG(result.error == tw_loop_reset, tw_loop_error_name(result.error));
        server_conn_end(conn, loop, true);
        return tw_disarm;
    }
    /* Stop and wait: read the next chunk only once this one is echoed in full. */
    tw_tcp_read(loop, &conn->c_read, conn->tcp, conn->buffer, sizeof(conn->buffer), conn, server_read_cb);
    return tw_disarm;
}

static tw_action server_shut_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)c;
    server_conn *conn = userdata;
    TW_ASSERT_MSG(result.error == tw_loop_ok || result.error == tw_loop_reset ||
                      result.error == tw_loop_not_connected,
                  tw_loop_error_name(result.error));
    server_conn_end(conn, loop, result.error == tw_loop_reset);
    return tw_disarm;
}

static tw_action server_read_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    server_conn *conn = userdata;
    if (result.error == tw_loop_eof) {
        tw_tcp_shutdown(loop, c, conn->tcp, conn, server_shut_cb);
        return tw_disarm;
    }
    if (result.error != tw_loop_ok) {
        TW_ASSERT_MSG(result.error == tw_loop_reset, tw_loop_error_name(result.error));
        server_conn_end(conn, loop, true);
        return tw_disarm;
    }
    tw_tcp_queue_write(loop, &conn->queue, &conn->request, conn->tcp, conn->buffer, result.value,
                       conn, server_wrote_cb);
    return tw_disarm;
}

static tw_action server_accept_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)c;
    server *s = userdata;
    if (result.error == tw_loop_canceled) return tw_disarm; /* stopping */
    TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
    TW_ASSERT(s->conns_count < sizeof(s->conns) / sizeof(s->conns[0]));
    server_conn *conn = &s->conns[s->conns_count++];
    memset(conn, 0, sizeof(*conn));
    conn->server = s;
    conn->tcp = tw_tcp_accepted(result);
    conn->in_use = true;
    tw_tcp_read(loop, &conn->c_read, conn->tcp, conn->buffer, sizeof(conn->buffer), conn, server_read_cb);
    return tw_rearm;
}

static tw_action server_listener_closed_cb(void *userdata, tw_loop *loop, tw_completion *c,
                                           tw_result result) {
    (void)userdata;
    (void)loop;
    (void)c;
    TW_ASSERT(result.error == tw_loop_ok);
    return tw_disarm;
}

static tw_action server_cancelled_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    server *s = userdata;
    TW_ASSERT(result.error == tw_loop_ok || result.error == tw_loop_not_found);
    tw_tcp_close(loop, c, s->listener, s, server_listener_closed_cb);
    return tw_disarm;
}

static tw_action server_stop_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)c;
    server *s = userdata;
    TW_ASSERT(result.error == tw_loop_ok);
    s->stopping = true;
    tw_loop_cancel(loop, &s->c_stop_cancel, &s->c_accept, s, server_cancelled_cb);
    return tw_disarm;
}

static void server_main(void *arg) {
    server *s = arg;
    TW_ASSERT(tw_loop_init(&s->loop, NULL) == tw_loop_ok);
    TW_ASSERT(tw_address_parse("127.0.0.1:0", &s->address) == tw_loop_ok);
    TW_ASSERT(tw_tcp_open(s->loop, &s->address, &s->listener) == tw_loop_ok);
    TW_ASSERT(tw_tcp_bind(s->loop, s->listener, &s->address) == tw_loop_ok);
    TW_ASSERT(tw_tcp_listen(s->loop, s->listener, 64) == tw_loop_ok);
    TW_ASSERT(tw_tcp_local_address(s->loop, s->listener, &s->address) == tw_loop_ok);
    tw_async_init(s->loop, &s->stop);
    tw_async_wait(s->loop, &s->stop, &s->c_stop, s, server_stop_cb);
    tw_tcp_accept(s->loop, &s->c_accept, s->listener, s, server_accept_cb);
    tw_atomic_store_u32(&s->ready, 1, tw_release);
    (void)tw_futex_wake(&s->ready, TW_FUTEX_WAKE_ALL);
    TW_ASSERT(tw_loop_run(s->loop, tw_run_until_done) == tw_loop_ok);
    for (uint32_t i = 0; i < s->conns_count; i++) TW_ASSERT(!s->conns[i].in_use);
    tw_async_deinit(&s->stop); /* the main thread's notify may still be returning */
    tw_loop_deinit(s->loop);
}

/* ---- clients ---- */
typedef struct client {
    uint32_t id;
    const tw_address *address;
    tw_loop *loop;
    tw_tcp tcp;
    uint8_t send_buffer[ECHO_CHUNK_BYTES];
    uint8_t recv_buffer[ECHO_CHUNK_BYTES];
    uint64_t sent;   /* completed writes */
    uint64_t queued; /* handed to the write queue: the echo may outrun the write's completion */
    uint64_t received;
    uint32_t attempts;
    tw_completion c_connect;
    tw_completion c_read;
    tw_completion c_retry;
    tw_completion c_close;
    tw_write_queue queue;
    tw_write_request request;
    bool connected;
    bool saw_reset;
    bool finished;
    bool gave_up;
} client;

static void client_connect(client *cl);
static tw_action client_connected_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result);

static tw_action client_retry_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    (void)result;
    client_connect(userdata);
    return tw_disarm;
}

static tw_action client_closed_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)c;
    client *cl = userdata;
    TW_ASSERT(result.error == tw_loop_ok);
    if (!cl->connected) tw_loop_timer(loop, &cl->c_retry, ECHO_RETRY_NS, cl, client_retry_cb);
    return tw_disarm;
}

static void client_end(client *cl, bool reset) {
    cl->saw_reset = cl->saw_reset || reset;
    cl->finished = true;
    tw_tcp_close(cl->loop, &cl->c_close, cl->tcp, cl, client_closed_cb);
}

static void client_send_next(client *cl);

static tw_action client_shut_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    (void)userdata;
    TW_ASSERT_MSG(result.error == tw_loop_ok || result.error == tw_loop_reset,
                  tw_loop_error_name(result.error));
    return tw_disarm; /* the read side ends the connection */
}

static tw_action client_wrote_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    client *cl = userdata;
    if (result.error != tw_loop_ok) {
        TW_ASSERT_MSG(result.error == tw_loop_reset || result.error == tw_loop_canceled,
                      tw_loop_error_name(result.error));
        return tw_disarm; /* the pending read sees the reset too and ends the connection */
    }
    cl->sent += result.value;
    if (cl->sent == current->bytes_per_client) {
        tw_tcp_shutdown(loop, c, cl->tcp, cl, client_shut_cb);
    } else {
        client_send_next(cl);
    }
    return tw_disarm;
}

static void client_send_next(client *cl) {
    uint64_t left = current->bytes_per_client - cl->sent;
    uint32_t size = left < ECHO_CHUNK_BYTES ? (uint32_t)left : ECHO_CHUNK_BYTES;
    for (uint32_t i = 0; i < size; i++) cl->send_buffer[i] = pattern_byte(cl->id, cl->sent + i);
    cl->queued = cl->sent + size;
    tw_tcp_queue_write(cl->loop, &cl->queue, &cl->request, cl->tcp, cl->send_buffer, size, cl,
                       client_wrote_cb);
}

static tw_action client_read_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    client *cl = userdata;
    if (result.error == tw_loop_eof) {
        TW_ASSERT_MSG(cl->received == current->bytes_per_client, "echo: EOF before every byte came back");
        client_end(cl, false);
        return tw_disarm;
    }
    if (result.error != tw_loop_ok) {
        TW_ASSERT_MSG(result.error == tw_loop_reset, tw_loop_error_name(result.error));
        client_end(cl, true);
        return tw_disarm;
    }
    for (uint64_t i = 0; i < result.value; i++) {
        TW_ASSERT_MSG(cl->received + i < cl->queued, "echo: a byte came back that was never sent");
        TW_ASSERT_MSG(cl->recv_buffer[i] == pattern_byte(cl->id, cl->received + i),
                      "echo: a byte came back lost, duplicated or out of order");
    }
    cl->received += result.value;
    tw_tcp_read(loop, c, cl->tcp, cl->recv_buffer, sizeof(cl->recv_buffer), cl, client_read_cb);
    return tw_disarm;
}

static tw_action client_connected_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)c;
    client *cl = userdata;
    if (result.error != tw_loop_ok) {
        TW_ASSERT_MSG(result.error == tw_loop_refused || result.error == tw_loop_timed_out,
                      tw_loop_error_name(result.error));
        /* Close this socket, then try again on a new one after a pause. */
        tw_tcp_close(loop, &cl->c_close, cl->tcp, cl, client_closed_cb);
        return tw_disarm;
    }
    cl->connected = true;
    tw_tcp_read(loop, &cl->c_read, cl->tcp, cl->recv_buffer, sizeof(cl->recv_buffer), cl, client_read_cb);
    client_send_next(cl);
    return tw_disarm;
}

/* One connect attempt on a fresh socket; a failed one is retried after ECHO_RETRY_NS. */
static void client_connect(client *cl) {
    if (cl->attempts == ECHO_CONNECT_ATTEMPTS_MAX) {
        cl->gave_up = true;
        return;
    }
    cl->attempts++;
    TW_ASSERT(tw_tcp_open(cl->loop, cl->address, &cl->tcp) == tw_loop_ok);
    /* Odd clients send through a small buffer, so their sends wait for the reader. */
    if (cl->id % 2 == 1) {
        TW_ASSERT(tw_tcp_set_send_buffer(cl->loop, cl->tcp, ECHO_SMALL_SEND_BUFFER_BYTES) == tw_loop_ok);
    }
    tw_tcp_connect(cl->loop, &cl->c_connect, cl->tcp, cl->address, cl, client_connected_cb);
}

static void client_main(void *arg) {
    client *cl = arg;
    TW_ASSERT(tw_loop_init(&cl->loop, NULL) == tw_loop_ok);
    client_connect(cl);
    TW_ASSERT(tw_loop_run(cl->loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(cl->finished || cl->gave_up);
    if (cl->finished && !cl->saw_reset) TW_ASSERT(cl->received == current->bytes_per_client);
    tw_loop_deinit(cl->loop);
}

static server the_server;
static client clients[TW_WORKLOAD_ECHO_CLIENTS_MAX];

void tw_workload_echo_run(void *arg) {
    current = arg;
    TW_ASSERT(current != NULL && current->clients >= 1 && current->clients <= TW_WORKLOAD_ECHO_CLIENTS_MAX);
    memset(&the_server, 0, sizeof(the_server));
    tw_thread server_thread;
    tw_thread_options server_options = {.name = "echo-server"};
    TW_ASSERT(tw_thread_spawn(&server_thread, &server_options, server_main, &the_server) == tw_os_ok);
    while (tw_atomic_load_u32(&the_server.ready, tw_acquire) == 0) {
        (void)tw_futex_wait(&the_server.ready, 0, TW_TIMEOUT_NONE);
    }
    tw_thread threads[TW_WORKLOAD_ECHO_CLIENTS_MAX];
    for (uint32_t i = 0; i < current->clients; i++) {
        memset(&clients[i], 0, sizeof(clients[i]));
        clients[i].id = i + 1;
        clients[i].address = &the_server.address;
        tw_thread_options options = {.name = "echo-client"};
        TW_ASSERT(tw_thread_spawn(&threads[i], &options, client_main, &clients[i]) == tw_os_ok);
    }
    uint32_t client_resets = 0;
    for (uint32_t i = 0; i < current->clients; i++) {
        TW_ASSERT(tw_thread_join(threads[i]) == tw_os_ok);
        client_resets += clients[i].saw_reset;
    }
    tw_async_notify(&the_server.stop);
    TW_ASSERT(tw_thread_join(server_thread) == tw_os_ok);
    /* Every reset is seen by both ends of its connection. */
    TW_ASSERT_MSG(client_resets == the_server.resets_seen, "echo: a reset seen by one end only");
    current->resets = client_resets;
    current->connects = 0;
    for (uint32_t i = 0; i < current->clients; i++) current->connects += clients[i].attempts;
    (void)tw_atomic_fetch_add_u64(&current->runs, 1, tw_relaxed);
}

