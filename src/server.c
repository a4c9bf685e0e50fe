/* twin: the server (see include/twin/server.h for the protocol as it applies it): the
 * core (src/server_core.c: framing, sessions, evictions, requests, the ledger) on a loop's
 * sockets. This file accepts connections, reads each one into its peer's frame reader,
 * writes what the core sends, and closes what the core closes.
 *
 * Memory: every buffer comes from the limits at init. Each connection has a receive
 * buffer for its frame reader and a send buffer for one reply (a copy of the session's
 * cached reply, so that a later request of the same session cannot change bytes still
 * being written), plus TW_SERVER_SMALL_SENDS_MAX header-only slots (pong, eviction). */
#include <stddef.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/os.h>
#include <twin/reach.h>
#include <twin/server.h>
#include <twin/server_core.h>
#include <twin/tcp.h>

#define SERVER_MAGIC 0x7365727665727721ull /* "server!!" */

typedef struct connection {
    tw_server *server;
    tw_server_peer peer; /* the core's view: number, closing, frame reader */
    tw_tcp tcp;
    bool open;
    bool delivered;           /* a whole message has arrived on it */
    uint64_t last_message_ns; /* loop time of its last whole message, or of its accept */
    uint32_t pending; /* operations whose callbacks have not run: read, writes, close */
    uint8_t *receive_buffer;
    uint8_t *send_buffer;
    bool send_busy;
    bool small_busy[TW_SERVER_SMALL_SENDS_MAX];
    tw_header small[TW_SERVER_SMALL_SENDS_MAX];
    tw_completion c_read;
    tw_completion c_close;
    tw_write_queue queue;
    tw_write_request w_reply;
    tw_write_request w_small[TW_SERVER_SMALL_SENDS_MAX];
} connection;

struct tw_server {
    uint64_t magic;
    tw_loop *loop;
    tw_server_options options;
    tw_server_core core;
    tw_tcp listener;
    tw_address address;
    bool listener_open;
    bool accepting;    /* c_accept is pending */
    bool holding;      /* a connection accepted with every slot taken waits for one (held);
                          accepting stops until it has one */
    bool held_closing; /* c_held_close is pending (the server stopped while holding) */
    tw_tcp held;
    tw_completion c_held_close;
    bool stopping;
    tw_completion c_accept;
    tw_completion c_accept_retry;
    tw_completion c_cancel_retry;
    tw_completion c_listener_close;
    connection *connections;
    uint32_t connections_open;
    uint64_t connections_numbered;
    uint8_t *receive_buffers;
    uint8_t *send_buffers;
};

static void server_check(const tw_server *server) {
    TW_ASSERT_MSG(server != NULL && server->magic == SERVER_MAGIC,
                  "tw_server: not an initialised server (used after deinit?)");
}

static connection *connection_of(tw_server_peer *peer) {
    connection *conn = (connection *)(void *)((char *)peer - offsetof(connection, peer));
    TW_ASSERT(conn->open && &conn->peer == peer);
    return conn;
}

/* ---- the connection's sends ------------------------------------------------------------- */

static void accept_start(tw_server *server);
static void connection_start(tw_server *server, tw_tcp tcp);

/* A connection slot is free again once it is closing and no callback is outstanding. */
static void connection_release_if_done(connection *conn) {
    tw_server *server = conn->server;
    if (!conn->peer.closing || conn->pending != 0) return;
    TW_ASSERT(conn->open && server->connections_open > 0);
    TW_ASSERT(!conn->send_busy);
    conn->open = false;
    server->connections_open--;
    server->core.stats.connections_closed++;
    if (server->holding && !server->stopping) {
        server->holding = false;
        connection_start(server, server->held);
        accept_start(server);
    }
}

static void connection_close(connection *conn, const char *why) {
    TW_ASSERT(conn->open);
    tw_server_core_peer_close(&conn->server->core, &conn->peer, why);
}

static tw_action reply_written(void *userdata, tw_loop *loop, tw_completion *completion,
                               tw_result result) {
    (void)loop;
    connection *conn = userdata;
    TW_ASSERT(tw_write_request_of(completion) == &conn->w_reply);
    TW_ASSERT(conn->send_busy && conn->pending > 0);
    conn->send_busy = false;
    conn->pending--;
    if (result.error != tw_loop_ok) connection_close(conn, tw_loop_error_name(result.error));
    connection_release_if_done(conn);
    return tw_disarm;
}

static tw_action small_written(void *userdata, tw_loop *loop, tw_completion *completion,
                               tw_result result) {
    (void)loop;
    connection *conn = userdata;
    size_t slot = (size_t)(tw_write_request_of(completion) - conn->w_small);
    TW_ASSERT(slot < TW_SERVER_SMALL_SENDS_MAX && conn->small_busy[slot]);
    TW_ASSERT(conn->pending > 0);
    conn->small_busy[slot] = false;
    conn->pending--;
    if (result.error != tw_loop_ok) connection_close(conn, tw_loop_error_name(result.error));
    connection_release_if_done(conn);
    return tw_disarm;
}

/* ---- the core's port ---------------------------------------------------------------------- */

static uint64_t port_now_ns(void *context) {
    tw_server *server = context;
    return tw_loop_now_ns(server->loop);
}

/* Queues a whole reply (header and body) from a session's cache; drops it if the
 * connection is still writing the previous one. */
static void port_send_reply(void *context, tw_server_peer *peer, const tw_header *reply) {
    tw_server *server = context;
    connection *conn = connection_of(peer);
    TW_ASSERT(!peer->closing && reply->size <= server->options.message_size_max);
    if (conn->send_busy) {
        server->core.stats.sends_dropped++;
        return;
    }
    memcpy(conn->send_buffer, reply, reply->size);
    conn->send_busy = true;
    conn->pending++;
    tw_tcp_queue_write(server->loop, &conn->queue, &conn->w_reply, conn->tcp, conn->send_buffer,
                       reply->size, conn, reply_written);
}

/* Queues a header-only message (pong, eviction) in a free small slot, or drops it. */
static void port_send_small(void *context, tw_server_peer *peer, const tw_header *header) {
    tw_server *server = context;
    connection *conn = connection_of(peer);
    TW_ASSERT(!peer->closing && header->size == TW_HEADER_SIZE);
    for (uint32_t slot = 0; slot < TW_SERVER_SMALL_SENDS_MAX; slot++) {
        if (conn->small_busy[slot]) continue;
        conn->small[slot] = *header;
        conn->small_busy[slot] = true;
        conn->pending++;
        tw_tcp_queue_write(server->loop, &conn->queue, &conn->w_small[slot], conn->tcp,
                           &conn->small[slot], TW_HEADER_SIZE, conn, small_written);
        return;
    }
    server->core.stats.sends_dropped++;
}

static tw_action connection_closed(void *userdata, tw_loop *loop, tw_completion *completion,
                                   tw_result result) {
    (void)loop;
    (void)result; /* ok, or an error on a socket the peer already reset: closed either way */
    connection *conn = userdata;
    TW_ASSERT(completion == &conn->c_close && conn->pending > 0);
    conn->pending--;
    connection_release_if_done(conn);
    return tw_disarm;
}

/* The core closed the peer: queued sends are dropped, the one in flight and the read are
 * canceled by the close, and the slot is free once their callbacks have run. */
static void port_close(void *context, tw_server_peer *peer, const char *why) {
    (void)why; /* the core logged it */
    tw_server *server = context;
    connection *conn = connection_of(peer);
    TW_ASSERT(peer->closing);
    for (tw_write_request *r = tw_write_queue_take_waiting(&conn->queue); r != NULL;) {
        tw_write_request *next = r->next;
        r->next = NULL;
        if (r == &conn->w_reply) {
            conn->send_busy = false;
        } else {
            size_t slot = (size_t)(r - conn->w_small);
            TW_ASSERT(slot < TW_SERVER_SMALL_SENDS_MAX && conn->small_busy[slot]);
            conn->small_busy[slot] = false;
        }
        TW_ASSERT(conn->pending > 0);
        conn->pending--;
        r = next;
    }
    conn->pending++;
    tw_tcp_close(server->loop, &conn->c_close, conn->tcp, conn, connection_closed);
}

/* ---- reading ------------------------------------------------------------------------------ */

static tw_action read_done(void *userdata, tw_loop *loop, tw_completion *completion, tw_result result);

static void read_start(connection *conn) {
    TW_ASSERT(!conn->peer.closing);
    uint32_t room = 0;
    uint8_t *space = tw_server_core_peer_space(&conn->peer, &room);
    TW_ASSERT(room > 0);
    conn->pending++;
    tw_tcp_read(conn->server->loop, &conn->c_read, conn->tcp, space, room, conn, read_done);
}

static tw_action read_done(void *userdata, tw_loop *loop, tw_completion *completion, tw_result result) {
    (void)loop;
    connection *conn = userdata;
    TW_ASSERT(completion == &conn->c_read && conn->pending > 0);
    conn->pending--;
    if (conn->peer.closing) {
        connection_release_if_done(conn);
        return tw_disarm;
    }
    if (result.error != tw_loop_ok) {
        connection_close(conn, result.error == tw_loop_eof ? "the client closed it"
                                                            : tw_loop_error_name(result.error));
        connection_release_if_done(conn);
        return tw_disarm;
    }
    tw_server *server = conn->server;
    uint64_t messages_before = server->core.stats.messages_received;
    tw_server_core_receive(&server->core, &conn->peer, (uint32_t)result.value);
    if (server->core.stats.messages_received != messages_before) {
        conn->delivered = true;
        conn->last_message_ns = tw_loop_now_ns(server->loop);
    }
    if (conn->peer.closing) {
        connection_release_if_done(conn);
        return tw_disarm;
    }
    read_start(conn);
    return tw_disarm;
}

/* ---- accepting ----------------------------------------------------------------------------- */

static tw_action accept_done(void *userdata, tw_loop *loop, tw_completion *completion, tw_result result);
static void reclaim_idle(tw_server *server);

/* Fires after a failed accept, and every TW_SERVER_RECLAIM_CHECK_NS while a connection is
 * held; a slot freed meanwhile may have restarted accepting or taken the held one. */
static tw_action accept_retry(void *userdata, tw_loop *loop, tw_completion *completion, tw_result result) {
    (void)loop;
    (void)completion;
    tw_server *server = userdata;
    if (result.error != tw_loop_ok || server->stopping) return tw_disarm;
    if (server->holding) reclaim_idle(server);
    else if (!server->accepting) accept_start(server);
    return tw_disarm;
}

/* A connection is held and every slot is taken: closes the one TW_SERVER_IDLE_RECLAIM_NS has
 * made a candidate (server.h says which), or looks again later. The slot it frees goes to
 * the held connection (connection_release_if_done). */
static void reclaim_idle(tw_server *server) {
    TW_ASSERT(server->holding && !server->stopping);
    TW_ASSERT(server->connections_open == server->options.connections_max);
    uint64_t now_ns = tw_loop_now_ns(server->loop);
    connection *victim = NULL;
    for (uint32_t i = 0; i < server->options.connections_max; i++) {
        connection *conn = &server->connections[i];
        TW_ASSERT(conn->open);
        if (conn->peer.closing) return; /* a slot is being freed already */
        if (now_ns - conn->last_message_ns < TW_SERVER_IDLE_RECLAIM_NS) continue;
        if (victim == NULL || (victim->delivered && !conn->delivered) ||
            (victim->delivered == conn->delivered && conn->last_message_ns < victim->last_message_ns)) {
            victim = conn;
        }
    }
    if (victim != NULL) {
        TW_REACHED(tw_reach_server_connection_reclaimed);
        server->core.stats.connections_reclaimed++;
        tw_server_core_log(&server->core,
                           "connection %llu reclaimed for a waiting one: no whole message%s for %llu ms",
                           (unsigned long long)victim->peer.number, victim->delivered ? "" : " ever",
                           (unsigned long long)((now_ns - victim->last_message_ns) / 1000000u));
        connection_close(victim, "reclaimed: idle while a connection waited for its slot");
        return;
    }
    if (!tw_completion_active(&server->c_accept_retry)) {
        tw_loop_timer(server->loop, &server->c_accept_retry, TW_SERVER_RECLAIM_CHECK_NS, server, accept_retry);
    }
}

/* Accepts while a slot is free, and one more when none is: that one is held (no read) until
 * a slot frees, and only then are idle connections reclaimed, so that a full server with
 * nobody waiting closes nothing. */
static void accept_start(tw_server *server) {
    TW_ASSERT(server->listener_open && !server->accepting);
    TW_ASSERT(!server->holding); /* a held connection takes the next free slot first */
    if (server->stopping) return;
    server->accepting = true;
    tw_tcp_accept(server->loop, &server->c_accept, server->listener, server, accept_done);
}

static connection *connection_free_slot(tw_server *server) {
    for (uint32_t i = 0; i < server->options.connections_max; i++) {
        if (!server->connections[i].open) return &server->connections[i];
    }
    TW_ASSERT_MSG(false, "tw_server: a connection started with no free slot");
    return NULL;
}

static void connection_start(tw_server *server, tw_tcp tcp) {
    TW_ASSERT(!server->stopping);
    TW_ASSERT(server->connections_open < server->options.connections_max);
    connection *conn = connection_free_slot(server);
    uint8_t *receive_buffer = conn->receive_buffer;
    uint8_t *send_buffer = conn->send_buffer;
    memset(conn, 0, sizeof(*conn));
    conn->server = server;
    conn->receive_buffer = receive_buffer;
    conn->send_buffer = send_buffer;
    conn->tcp = tcp;
    conn->open = true;
    conn->last_message_ns = tw_loop_now_ns(server->loop);
    tw_server_core_peer_init(&server->core, &conn->peer, receive_buffer,
                             ++server->connections_numbered);
    server->connections_open++;
    tw_server_core_log(&server->core, "connection %llu accepted (%u open)",
                       (unsigned long long)conn->peer.number, server->connections_open);
    read_start(conn);
}

static tw_action held_closed(void *userdata, tw_loop *loop, tw_completion *completion, tw_result result) {
    (void)loop;
    (void)result; /* closed either way */
    tw_server *server = userdata;
    TW_ASSERT(completion == &server->c_held_close && server->held_closing);
    server->held_closing = false;
    server->core.stats.connections_closed++;
    return tw_disarm;
}

static tw_action accept_done(void *userdata, tw_loop *loop, tw_completion *completion, tw_result result) {
    tw_server *server = userdata;
    TW_ASSERT(completion == &server->c_accept && server->accepting);
    server->accepting = false;
    if (result.error == tw_loop_canceled) return tw_disarm;
    if (result.error != tw_loop_ok) {
        TW_REACHED(tw_reach_server_accept_failed);
        server->core.stats.accept_errors++;
        tw_server_core_log(&server->core, "accept failed: %s; trying again in %u ms",
                           tw_loop_error_name(result.error),
                           (unsigned)(TW_SERVER_ACCEPT_RETRY_NS / 1000000u));
        if (!server->stopping && !tw_completion_active(&server->c_accept_retry)) {
            tw_loop_timer(loop, &server->c_accept_retry, TW_SERVER_ACCEPT_RETRY_NS, server, accept_retry);
        }
        return tw_disarm;
    }
    server->core.stats.connections_accepted++;
    if (server->stopping) {
        /* The listener's close raced this accept: the socket is closed at once. */
        server->held = tw_tcp_accepted(result);
        server->held_closing = true;
        tw_tcp_close(loop, &server->c_held_close, server->held, server, held_closed);
        return tw_disarm;
    }
    if (server->connections_open == server->options.connections_max) {
        server->held = tw_tcp_accepted(result);
        server->holding = true;
        tw_server_core_log(&server->core,
                           "connections_max (%u) reached: a connection waits for a slot (one idle for "
                           "%llu ms is reclaimed for it)",
                           server->options.connections_max,
                           (unsigned long long)(TW_SERVER_IDLE_RECLAIM_NS / 1000000u));
        reclaim_idle(server);
        return tw_disarm;
    }
    connection_start(server, tw_tcp_accepted(result));
    accept_start(server);
    return tw_disarm;
}

static tw_action listener_closed(void *userdata, tw_loop *loop, tw_completion *completion,
                                 tw_result result) {
    (void)loop;
    (void)completion;
    (void)result; /* closed either way: nothing is pending on it */
    tw_server *server = userdata;
    if (server != NULL) server->listener_open = false;
    return tw_disarm;
}

static tw_action accept_canceled(void *userdata, tw_loop *loop, tw_completion *completion,
                                 tw_result result) {
    (void)loop;
    (void)completion;
    TW_ASSERT(result.error == tw_loop_ok || result.error == tw_loop_not_found ||
              result.error == tw_loop_in_progress);
    (void)userdata;
    return tw_disarm;
}

/* ---- life cycle ------------------------------------------------------------------------------ */

static void server_free(tw_server *server) {
    tw_server_core_deinit(&server->core);
    tw_free(server->send_buffers);
    tw_free(server->receive_buffers);
    tw_free(server->connections);
    server->magic = 0;
    tw_free(server);
}

/* The connections and their buffers, then the core's tables and ledger (only once the
 * connections have theirs). */
static tw_server_error server_allocate(tw_server *server) {
    const tw_server_options *o = &server->options;
    size_t stride = tw_server_buffer_size(o->message_size_max);
    server->connections = tw_allocate(sizeof(connection) * o->connections_max);
    server->receive_buffers = tw_allocate(stride * o->connections_max);
    server->send_buffers = tw_allocate(stride * o->connections_max);
    if (server->connections == NULL || server->receive_buffers == NULL || server->send_buffers == NULL) {
        return tw_server_system_resources;
    }
    for (uint32_t i = 0; i < o->connections_max; i++) {
        server->connections[i].receive_buffer = server->receive_buffers + stride * i;
        server->connections[i].send_buffer = server->send_buffers + stride * i;
    }
    tw_server_port port = {
        .context = server,
        .now_ns = port_now_ns,
        .send_reply = port_send_reply,
        .send_small = port_send_small,
        .close = port_close,
    };
    return tw_server_core_init(&server->core, o, &port);
}

tw_server_error tw_server_init(tw_server **server_out, tw_loop *loop, const tw_address *listen,
                               const tw_server_options *options, tw_loop_error *listen_error) {
    TW_ASSERT(server_out != NULL && loop != NULL && listen != NULL && options != NULL);
    *server_out = NULL;
    if (listen_error != NULL) *listen_error = tw_loop_ok;
    if (tw_server_options_check(options) != NULL) return tw_server_invalid_options;
    tw_server *server = tw_allocate(sizeof(*server));
    if (server == NULL) {
        TW_REACHED(tw_reach_server_init_out_of_memory);
        return tw_server_system_resources;
    }
    server->magic = SERVER_MAGIC;
    server->loop = loop;
    server->options = *options;
    if (server->options.backlog == 0) server->options.backlog = TW_SERVER_BACKLOG_DEFAULT;
    tw_server_error error = server_allocate(server);
    if (error != tw_server_ok) {
        TW_REACHED(tw_reach_server_init_out_of_memory);
        server_free(server);
        return error;
    }
    tw_loop_error loop_error = tw_tcp_open(loop, listen, &server->listener);
    if (loop_error == tw_loop_ok) {
        server->listener_open = true;
        loop_error = tw_tcp_bind(loop, server->listener, listen);
    }
    if (loop_error == tw_loop_ok) loop_error = tw_tcp_listen(loop, server->listener, server->options.backlog);
    if (loop_error == tw_loop_ok) loop_error = tw_tcp_local_address(loop, server->listener, &server->address);
    if (loop_error != tw_loop_ok) {
        if (listen_error != NULL) *listen_error = loop_error;
        if (server->listener_open) {
            /* Close it now, through the loop (init is not called from a loop callback). */
            tw_completion close_completion = {0};
            tw_tcp_close(loop, &close_completion, server->listener, NULL, listener_closed);
            while (tw_completion_active(&close_completion)) {
                TW_ASSERT(tw_loop_run(loop, tw_run_once) == tw_loop_ok);
            }
        }
        server_free(server);
        return tw_server_listen_failed;
    }
    accept_start(server);
    *server_out = server;
    return tw_server_ok;
}

tw_address tw_server_address(const tw_server *server) {
    server_check(server);
    return server->address;
}

const tw_server_stats *tw_server_stats_get(const tw_server *server) {
    server_check(server);
    return &server->core.stats;
}

uint32_t tw_server_sessions(const tw_server *server) {
    server_check(server);
    return tw_server_core_sessions(&server->core);
}

void tw_server_set_commit_observer(tw_server *server, tw_server_commit_fn observer, void *context) {
    server_check(server);
    server->core.commit_observer = observer;
    server->core.commit_context = context;
}

void tw_server_set_log(tw_server *server, tw_server_log_fn log, void *context) {
    server_check(server);
    server->core.log = log;
    server->core.log_context = context;
}

void tw_server_stop(tw_server *server) {
    server_check(server);
    if (server->stopping) return;
    server->stopping = true;
    tw_server_core_log(&server->core, "stopping: closing the listener and %u connection(s)",
                       server->connections_open);
    if (tw_completion_active(&server->c_accept_retry)) {
        tw_loop_cancel(server->loop, &server->c_cancel_retry, &server->c_accept_retry, server,
                       accept_canceled);
    }
    /* The close cancels the accept pending on the listener (tcp.h: a close cancels the
     * loop's operations on that socket). */
    tw_tcp_close(server->loop, &server->c_listener_close, server->listener, server, listener_closed);
    for (uint32_t i = 0; i < server->options.connections_max; i++) {
        connection *conn = &server->connections[i];
        if (conn->open && !conn->peer.closing) connection_close(conn, "the server is stopping");
    }
    if (server->holding) {
        server->holding = false;
        server->held_closing = true;
        tw_tcp_close(server->loop, &server->c_held_close, server->held, server, held_closed);
    }
}

void tw_server_deinit(tw_server *server) {
    server_check(server);
    TW_ASSERT_MSG(server->stopping && !server->listener_open && !server->accepting &&
                      server->connections_open == 0 && !server->holding && !server->held_closing,
                  "tw_server_deinit: call tw_server_stop and run the loop until done first");
    TW_ASSERT(!tw_completion_active(&server->c_accept_retry));
    server_free(server);
}
