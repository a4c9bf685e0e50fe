/* twin: the server (see include/twin/server.h for the protocol as it applies it).
 *
 * Memory: every buffer comes from the limits at init. Each connection has a receive
 * buffer for the frame reader and a send buffer for one reply (a copy of the session's
 * cached reply, so that a later request of the same session cannot change bytes still
 * being written), plus TW_SERVER_SMALL_SENDS_MAX header-only slots (pong, eviction).
 * Each session caches its last reply (header and body) in a message_size_max slot.
 *
 * Lookups by client id scan the session table and the evicted table. That is a choice:
 * the tables hold at most TW_SERVER_CLIENTS_MAX entries and a scan of 16-byte ids is a
 * few microseconds at that size, next to a network round trip per message; it keeps the
 * eviction code (LRU by a counter) free of a second index to keep consistent. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/os.h>
#include <twin/reach.h>
#include <twin/server.h>
#include <twin/tcp.h>

#include "lib/plant.h"

#define SERVER_MAGIC 0x7365727665727721ull /* "server!!" */
#define SERVER_LOG_LINE_SIZE 256u
#define SERVER_BUFFER_ALIGN 16u
#define CLIENT_TEXT_SIZE 48u

_Static_assert(TW_EVICTION_REASON_COUNT == tw_eviction_protocol_violation + 1,
               "stats arrays hold every eviction reason");

typedef struct connection connection;

typedef struct session {
    uint64_t number; /* 0: the slot is free */
    tw_u128 client;
    uint64_t request_last;          /* 0: only the register so far */
    tw_u128 request_checksum_body;  /* of the last request: a retry must match it */
    uint8_t request_operation;
    uint64_t used_last;             /* the server's use counter at the last register or request */
    connection *connection;         /* where its last message came from, while open */
    tw_header *reply;               /* the cached reply: header, then body */
} session;

typedef struct evicted {
    tw_u128 client; /* zero: the entry is free */
    uint64_t session;
    uint64_t recorded; /* the server's eviction counter when recorded: the oldest goes first */
    uint8_t reason;
} evicted;

struct connection {
    tw_server *server;
    uint64_t number; /* for logs: the n-th connection accepted */
    tw_tcp tcp;
    bool open;
    bool closing;
    uint32_t pending; /* operations whose callbacks have not run: read, writes, close */
    tw_frame_reader reader;
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
};

struct tw_server {
    uint64_t magic;
    tw_loop *loop;
    tw_server_options options;
    tw_ledger *ledger;
    tw_tcp listener;
    tw_address address;
    bool listener_open;
    bool accepting;    /* c_accept is pending */
    bool accept_full;  /* not accepting: every connection slot is taken */
    bool stopping;
    tw_completion c_accept;
    tw_completion c_accept_retry;
    tw_completion c_cancel_retry;
    tw_completion c_listener_close;
    connection *connections;
    uint32_t connections_open;
    uint64_t connections_numbered;
    session *sessions;
    uint32_t sessions_count;
    evicted *evicted;
    uint64_t evictions_recorded;
    uint8_t *reply_buffers;
    uint8_t *receive_buffers;
    uint8_t *send_buffers;
    uint32_t buffer_stride;
    void *events; /* an aligned copy of a request's events (bodies may sit unaligned) */
    uint64_t timestamp_last;
    uint64_t used_counter;
    tw_server_stats stats;
    tw_server_log_fn log;
    void *log_context;
    tw_server_commit_fn commit_observer;
    void *commit_context;
};

/* ---- small helpers -------------------------------------------------------------------- */

static bool u128_equal(tw_u128 a, tw_u128 b) { return a.low == b.low && a.high == b.high; }
static bool u128_zero(tw_u128 a) { return a.low == 0 && a.high == 0; }

static void client_text(tw_u128 client, char *text, size_t text_size) {
    if (client.high == 0) {
        snprintf(text, text_size, "%llu", (unsigned long long)client.low);
    } else {
        snprintf(text, text_size, "0x%016llx%016llx", (unsigned long long)client.high,
                 (unsigned long long)client.low);
    }
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void server_log(tw_server *server, const char *format, ...) {
    if (server->log == NULL) return;
    char line[SERVER_LOG_LINE_SIZE];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof(line), format, args);
    va_end(args);
    server->log(server->log_context, line);
}

static void server_check(const tw_server *server) {
    TW_ASSERT_MSG(server != NULL && server->magic == SERVER_MAGIC,
                  "tw_server: not an initialised server (used after deinit?)");
}

const char *tw_server_error_name(tw_server_error error) {
    switch (error) {
    case tw_server_ok: return "ok";
    case tw_server_invalid_options: return "invalid_options";
    case tw_server_system_resources: return "system_resources";
    case tw_server_listen_failed: return "listen_failed";
    }
    return "unknown";
}

const char *tw_server_options_check(const tw_server_options *options) {
    TW_ASSERT(options != NULL);
    if (options->connections_max == 0 || options->connections_max > TW_SERVER_CONNECTIONS_MAX) {
        return "connections_max must be 1..4096";
    }
    if (options->clients_max == 0 || options->clients_max > TW_SERVER_CLIENTS_MAX) {
        return "clients_max must be 1..4096";
    }
    if (options->message_size_max < TW_SERVER_MESSAGE_SIZE_MIN ||
        options->message_size_max > TW_MESSAGE_SIZE_MAX) {
        return "message_size_max must be 208..1048576 bytes (a header and the largest event)";
    }
    if (options->release_min > options->release_max) {
        return "release_min must not be above release_max";
    }
    if (options->accounts_max == 0) return "accounts_max must be at least 1";
    if (options->transfers_max == 0) return "transfers_max must be at least 1";
    return NULL;
}

/* ---- the connection's sends ------------------------------------------------------------- */

static void connection_close(connection *conn, const char *why);
static void accept_start(tw_server *server);

/* A connection slot is free again once it is closing and no callback is outstanding. */
static void connection_release_if_done(connection *conn) {
    tw_server *server = conn->server;
    if (!conn->closing || conn->pending != 0) return;
    TW_ASSERT(conn->open && server->connections_open > 0);
    TW_ASSERT(!conn->send_busy);
    conn->open = false;
    server->connections_open--;
    server->stats.connections_closed++;
    if (server->accept_full && !server->stopping) {
        server->accept_full = false;
        accept_start(server);
    }
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

/* Queues a whole reply (header and body) from a session's cache; drops it if the
 * connection is still writing the previous one. */
static void send_reply(connection *conn, const tw_header *reply) {
    tw_server *server = conn->server;
    TW_ASSERT(reply->size >= TW_HEADER_SIZE && reply->size <= server->options.message_size_max);
    if (conn->closing) return;
    if (conn->send_busy) {
        server->stats.sends_dropped++;
        return;
    }
    memcpy(conn->send_buffer, reply, reply->size);
    conn->send_busy = true;
    conn->pending++;
    tw_tcp_queue_write(server->loop, &conn->queue, &conn->w_reply, conn->tcp, conn->send_buffer,
                       reply->size, conn, reply_written);
}

/* Queues a header-only message (pong, eviction) in a free small slot, or drops it. */
static void send_small(connection *conn, const tw_header *header) {
    tw_server *server = conn->server;
    TW_ASSERT(header->size == TW_HEADER_SIZE);
    if (conn->closing) return;
    for (uint32_t slot = 0; slot < TW_SERVER_SMALL_SENDS_MAX; slot++) {
        if (conn->small_busy[slot]) continue;
        conn->small[slot] = *header;
        conn->small_busy[slot] = true;
        conn->pending++;
        tw_tcp_queue_write(server->loop, &conn->queue, &conn->w_small[slot], conn->tcp,
                           &conn->small[slot], TW_HEADER_SIZE, conn, small_written);
        return;
    }
    server->stats.sends_dropped++;
}

static void send_eviction(connection *conn, tw_u128 client, uint64_t session_number,
                          uint32_t release, tw_eviction_reason reason) {
    tw_server *server = conn->server;
    TW_ASSERT(reason > tw_eviction_none && reason < TW_EVICTION_REASON_COUNT);
    tw_header header = {
        .cluster = server->options.cluster,
        .client = client,
        .session = session_number,
        .size = TW_HEADER_SIZE,
        .release = release,
        .command = tw_command_eviction,
        .eviction_reason = (uint8_t)reason,
    };
    tw_header_seal(&header, NULL);
    server->stats.evictions_sent[reason]++;
    char text[CLIENT_TEXT_SIZE];
    client_text(client, text, sizeof(text));
    server_log(server, "connection %llu: eviction sent to client %s: %s (session %llu)",
               (unsigned long long)conn->number, text, tw_eviction_reason_name(reason),
               (unsigned long long)session_number);
    send_small(conn, &header);
}

/* ---- sessions and the evicted table ------------------------------------------------------ */

static session *session_find(tw_server *server, tw_u128 client) {
    for (uint32_t i = 0; i < server->options.clients_max; i++) {
        session *s = &server->sessions[i];
        if (s->number != 0 && u128_equal(s->client, client)) return s;
    }
    return NULL;
}

static evicted *evicted_find(tw_server *server, tw_u128 client) {
    TW_ASSERT(!u128_zero(client));
    for (uint32_t i = 0; i < server->options.clients_max; i++) {
        if (u128_equal(server->evicted[i].client, client)) return &server->evicted[i];
    }
    return NULL;
}

static void evicted_record(tw_server *server, tw_u128 client, uint64_t session_number,
                           tw_eviction_reason reason) {
    evicted *entry = evicted_find(server, client);
    /* A free entry (never used, or cleared by a new register), else the oldest: that
     * client then hears no_session, which is still true. */
    for (uint32_t i = 0; entry == NULL && i < server->options.clients_max; i++) {
        if (u128_zero(server->evicted[i].client)) entry = &server->evicted[i];
    }
    if (entry == NULL) {
        entry = &server->evicted[0];
        for (uint32_t i = 1; i < server->options.clients_max; i++) {
            if (server->evicted[i].recorded < entry->recorded) entry = &server->evicted[i];
        }
    }
    TW_ASSERT(entry != NULL && entry->recorded <= server->evictions_recorded);
    *entry = (evicted){.client = client, .session = session_number, .reason = (uint8_t)reason,
                       .recorded = ++server->evictions_recorded};
}

/* Evicts a session: records why, tells its client now if its connection is open, and
 * also on also (the connection the current message came on) when that is another. */
static void session_evict(tw_server *server, session *s, tw_eviction_reason reason,
                          connection *also, uint32_t release) {
    TW_ASSERT(s->number != 0 && server->sessions_count > 0);
    char client[CLIENT_TEXT_SIZE];
    client_text(s->client, client, sizeof(client));
    server_log(server, "client %s evicted: %s (session %llu)", client,
               tw_eviction_reason_name(reason), (unsigned long long)s->number);
    server->stats.sessions_evicted[reason]++;
    evicted_record(server, s->client, s->number, reason);
    if (s->connection != NULL) send_eviction(s->connection, s->client, s->number, release, reason);
    if (also != NULL && also != s->connection) send_eviction(also, s->client, s->number, release, reason);
    s->number = 0;
    s->connection = NULL;
    server->sessions_count--;
}

static session *session_least_recently_used(tw_server *server) {
    session *oldest = NULL;
    for (uint32_t i = 0; i < server->options.clients_max; i++) {
        session *s = &server->sessions[i];
        if (s->number != 0 && (oldest == NULL || s->used_last < oldest->used_last)) oldest = s;
    }
    TW_ASSERT(oldest != NULL);
    return oldest;
}

static session *session_free_slot(tw_server *server) {
    TW_ASSERT(server->sessions_count < server->options.clients_max);
    for (uint32_t i = 0; i < server->options.clients_max; i++) {
        if (server->sessions[i].number == 0) return &server->sessions[i];
    }
    TW_ASSERT_MSG(false, "tw_server: sessions_count disagrees with the session table");
    return NULL;
}

static void session_touch(tw_server *server, session *s, connection *conn) {
    s->used_last = ++server->used_counter;
    s->connection = conn;
}

/* ---- commits ----------------------------------------------------------------------------- */

/* Tells the commit observer, if any, of the op the session's reply was just made for. */
static void commit_observe(tw_server *server, const session *s, const tw_header *header,
                           const uint8_t *body) {
    TW_ASSERT(s->reply->op == server->stats.op && s->reply->request == header->request);
    if (server->commit_observer == NULL) return;
    uint32_t body_size = header->size - TW_HEADER_SIZE;
    TW_ASSERT(body != NULL || body_size == 0);
    tw_server_commit commit = {
        .op = s->reply->op,
        .timestamp = s->reply->timestamp,
        .client = header->client,
        .session = s->number,
        .request = header->request,
        .operation = (tw_operation)header->operation,
        .body = body,
        .body_size = body_size,
        .reply = (const uint8_t *)(s->reply + 1),
        .reply_size = s->reply->size - TW_HEADER_SIZE,
    };
    server->commit_observer(server->commit_context, &commit);
}

/* The next op: its number and a timestamp after every earlier one (ledger events too). */
static uint64_t op_begin(tw_server *server, uint64_t *timestamp) {
    uint64_t now_ns = tw_loop_now_ns(server->loop);
    uint64_t after = server->timestamp_last + 1;
    uint64_t ledger_after = tw_ledger_timestamp_last(server->ledger) + 1;
    if (ledger_after > after) after = ledger_after;
    *timestamp = now_ns > after ? now_ns : after;
    server->timestamp_last = *timestamp;
    server->stats.op++;
    return server->stats.op;
}

static void reply_header(tw_server *server, const tw_header *request, session *s, uint64_t op,
                         uint64_t timestamp, uint32_t body_size) {
    TW_ASSERT(body_size <= server->options.message_size_max - TW_HEADER_SIZE);
    *s->reply = (tw_header){
        .cluster = server->options.cluster,
        .client = request->client,
        .session = s->number,
        .request = request->request,
        .op = op,
        .timestamp = timestamp,
        .size = TW_HEADER_SIZE + body_size,
        .release = request->release,
        .command = tw_command_reply,
        .operation = request->operation,
    };
    tw_header_seal(s->reply, s->reply + 1);
    s->request_last = request->request;
    s->request_checksum_body = request->checksum_body;
    s->request_operation = request->operation;
}

static void on_register(tw_server *server, connection *conn, const tw_header *header) {
    char client[CLIENT_TEXT_SIZE];
    client_text(header->client, client, sizeof(client));
    session *s = session_find(server, header->client);
    if (header->size != TW_HEADER_SIZE || header->request != 0) {
        if (s != NULL) {
            session_evict(server, s, tw_eviction_protocol_violation, conn, header->release);
        } else {
            send_eviction(conn, header->client, 0, header->release, tw_eviction_protocol_violation);
        }
        return;
    }
    if (s != NULL) {
        /* Where the client is reached changes only with a message that is not a late
         * duplicate (session_touch below): the client has moved on from that connection. */
        if (s->request_last != 0) {
            /* Request 0 is older than the session's last: a delayed duplicate (say, from a
             * connection the client gave up on) must not hurt the session. */
            TW_REACHED(tw_reach_server_register_older_ignored);
            server->stats.requests_ignored++;
            return;
        }
        if (TW_PLANTED(tw_plant_server_register_again_new_session)) {
            /* A register opens a session, whatever the client had: drop the old one. */
            s->number = 0;
            s->connection = NULL;
            server->sessions_count--;
            s = NULL;
        } else {
            TW_REACHED(tw_reach_server_register_answered_again);
            session_touch(server, s, conn);
            server->stats.retries_answered++;
            send_reply(conn, s->reply);
            return;
        }
    }
    evicted *was = evicted_find(server, header->client);
    if (was != NULL) *was = (evicted){0}; /* a new session: the old eviction is history */
    if (server->sessions_count == server->options.clients_max) {
        TW_REACHED(tw_reach_server_evicted_lru);
        session_evict(server, session_least_recently_used(server), tw_eviction_too_many_clients,
                      NULL, header->release);
    }
    s = session_free_slot(server);
    uint64_t timestamp = 0;
    uint64_t op = op_begin(server, &timestamp);
    s->number = op;
    s->client = header->client;
    server->sessions_count++;
    session_touch(server, s, conn);
    memset(s->reply, 0, TW_HEADER_SIZE);
    reply_header(server, header, s, op, timestamp, 0);
    s->reply->batch_size_max = server->options.message_size_max - TW_HEADER_SIZE;
    tw_header_seal_header(s->reply);
    commit_observe(server, s, header, NULL);
    server->stats.registrations++;
    server_log(server, "client %s registered: session %llu on connection %llu", client,
               (unsigned long long)op, (unsigned long long)conn->number);
    send_reply(conn, s->reply);
}

/* Runs the request's operation against the ledger; the results go into the session's
 * reply body. Returns the body size. */
static uint32_t execute(tw_server *server, const tw_header *header, const uint8_t *body,
                        uint64_t timestamp, void *results) {
    uint32_t body_size = header->size - TW_HEADER_SIZE;
    uint32_t event_size = tw_operation_event_size((tw_operation)header->operation);
    uint32_t count = event_size == 0 ? body_size : body_size / event_size;
    memcpy(server->events, body, body_size); /* aligned for the event structs */
    switch ((tw_operation)header->operation) {
    case tw_operation_create_accounts:
        return (uint32_t)sizeof(tw_create_result) *
               tw_ledger_create_accounts(server->ledger, timestamp, server->events, count, results);
    case tw_operation_create_transfers:
        return (uint32_t)sizeof(tw_create_result) *
               tw_ledger_create_transfers(server->ledger, timestamp, server->events, count, results);
    case tw_operation_lookup_accounts:
        return (uint32_t)sizeof(tw_account) *
               tw_ledger_lookup_accounts(server->ledger, server->events, count, results);
    case tw_operation_lookup_transfers:
        return (uint32_t)sizeof(tw_transfer) *
               tw_ledger_lookup_transfers(server->ledger, server->events, count, results);
    case tw_operation_echo:
        memcpy(results, server->events, body_size);
        return body_size;
    case tw_operation_none: break;
    }
    TW_ASSERT_MSG(false, "tw_server: a request without an operation reached execute");
    return 0;
}

/* Whole events, and no more than the operation's maximum. */
static bool request_body_valid(const tw_server *server, const tw_header *header) {
    tw_operation operation = (tw_operation)header->operation;
    uint32_t body_size = header->size - TW_HEADER_SIZE;
    uint32_t event_size = tw_operation_event_size(operation);
    uint32_t events_max = tw_operation_events_max(operation, server->options.message_size_max);
    if (event_size == 0) return body_size <= events_max;
    return body_size % event_size == 0 && body_size / event_size <= events_max;
}

static void on_request(tw_server *server, connection *conn, const tw_header *header,
                       const uint8_t *body) {
    session *s = session_find(server, header->client);
    if (s == NULL) {
        evicted *was = evicted_find(server, header->client);
        tw_eviction_reason reason = was != NULL ? (tw_eviction_reason)was->reason : tw_eviction_no_session;
        if (was != NULL) TW_REACHED(tw_reach_server_eviction_repeated);
        send_eviction(conn, header->client, was != NULL ? was->session : 0, header->release, reason);
        return;
    }
    TW_ASSERT(s->number != 0 && u128_equal(s->client, header->client));
    TW_ASSERT(s->request_last == 0 || s->reply->request == s->request_last);
    if (header->session == s->number && header->request != 0 && header->request < s->request_last) {
        /* A late duplicate (from a connection the client gave up on): ignored, and the
         * session is still reached where the client is now. */
        TW_REACHED(tw_reach_server_request_older_ignored);
        server->stats.requests_ignored++;
        return;
    }
    s->connection = conn; /* where it is reached now, whatever this message turns out to be */
    if (header->session != s->number || header->request == 0 ||
        header->request > s->request_last + 1) {
        session_evict(server, s, tw_eviction_protocol_violation, conn, header->release);
        return;
    }
    if (header->request == s->request_last && !TW_PLANTED(tw_plant_server_retry_executes_again)) {
        if (!u128_equal(header->checksum_body, s->request_checksum_body) ||
            header->operation != s->request_operation) {
            session_evict(server, s, tw_eviction_protocol_violation, conn, header->release);
            return;
        }
        TW_REACHED(tw_reach_server_retry_answered);
        /* A retry of the last request: its cached reply answers it, unchanged. */
        TW_ASSERT(s->reply->request == header->request && s->reply->command == tw_command_reply);
        session_touch(server, s, conn);
        server->stats.retries_answered++;
        send_reply(conn, s->reply);
        return;
    }
    if (!request_body_valid(server, header)) {
        session_evict(server, s, tw_eviction_protocol_violation, conn, header->release);
        return;
    }
    /* Exactly once: only the next number executes (the planted bug, which lets a retry
     * through to here, is caught right here). */
    TW_ASSERT_MSG(header->request == s->request_last + 1,
                  "exactly once: a request other than the session's next was about to execute");
    uint64_t op_previous = server->stats.op;
    uint64_t timestamp_previous = server->timestamp_last;
    uint64_t timestamp = 0;
    uint64_t op = op_begin(server, &timestamp);
    TW_ASSERT(op == op_previous + 1 && timestamp > timestamp_previous);
    uint32_t reply_body_size = execute(server, header, body, timestamp, s->reply + 1);
    reply_header(server, header, s, op, timestamp, reply_body_size);
    TW_ASSERT(s->request_last == header->request && s->reply->op == op);
    commit_observe(server, s, header, body);
    session_touch(server, s, conn);
    server->stats.requests_executed++;
    send_reply(conn, s->reply);
}

static void on_ping(tw_server *server, connection *conn, const tw_header *header) {
    server->stats.pings++;
    session *s = session_find(server, header->client);
    tw_header pong = {
        .cluster = server->options.cluster,
        .client = header->client,
        .session = s != NULL ? s->number : 0,
        .timestamp = header->timestamp,
        .size = TW_HEADER_SIZE,
        .release = header->release,
        .command = tw_command_pong,
    };
    tw_header_seal(&pong, NULL);
    send_small(conn, &pong);
    if (s != NULL) {
        s->connection = conn;
    } else if (!u128_zero(header->client)) {
        evicted *was = evicted_find(server, header->client);
        if (was != NULL) {
            send_eviction(conn, header->client, was->session, header->release,
                          (tw_eviction_reason)was->reason);
        }
    }
}

static void on_message(void *context, const tw_header *header, const uint8_t *body) {
    connection *conn = context;
    tw_server *server = conn->server;
    TW_ASSERT(header->size >= TW_HEADER_SIZE && header->size <= server->options.message_size_max);
    if (conn->closing) return; /* an earlier message of this read closed it */
    tw_command command = (tw_command)header->command;
    if (command != tw_command_register && command != tw_command_request && command != tw_command_ping) {
        server->stats.malformed[tw_proto_unexpected_command]++;
        connection_close(conn, "malformed input (unexpected_command)");
        return;
    }
    server->stats.messages_received++;
    if (header->release < server->options.release_min || header->release > server->options.release_max) {
        tw_eviction_reason reason = header->release < server->options.release_min
                                        ? tw_eviction_client_release_too_low
                                        : tw_eviction_client_release_too_high;
        TW_REACHED(tw_reach_server_evicted_release);
        session *s = u128_zero(header->client) ? NULL : session_find(server, header->client);
        if (s != NULL) session_evict(server, s, reason, conn, header->release);
        else send_eviction(conn, header->client, 0, header->release, reason);
        return;
    }
    if (command == tw_command_ping) {
        on_ping(server, conn, header);
        return;
    }
    if (u128_zero(header->client)) { /* 0 is no client's id */
        send_eviction(conn, header->client, 0, header->release, tw_eviction_protocol_violation);
        return;
    }
    if (command == tw_command_register) on_register(server, conn, header);
    else on_request(server, conn, header, body);
}

/* ---- reading and closing ------------------------------------------------------------------ */

static tw_action read_done(void *userdata, tw_loop *loop, tw_completion *completion, tw_result result);

static void read_start(connection *conn) {
    TW_ASSERT(!conn->closing);
    uint32_t room = 0;
    uint8_t *space = tw_frame_reader_space(&conn->reader, &room);
    TW_ASSERT(room > 0);
    conn->pending++;
    tw_tcp_read(conn->server->loop, &conn->c_read, conn->tcp, space, room, conn, read_done);
}

static tw_action read_done(void *userdata, tw_loop *loop, tw_completion *completion, tw_result result) {
    (void)loop;
    connection *conn = userdata;
    TW_ASSERT(completion == &conn->c_read && conn->pending > 0);
    conn->pending--;
    if (conn->closing) {
        connection_release_if_done(conn);
        return tw_disarm;
    }
    if (result.error != tw_loop_ok) {
        connection_close(conn, result.error == tw_loop_eof ? "the client closed it"
                                                            : tw_loop_error_name(result.error));
        connection_release_if_done(conn);
        return tw_disarm;
    }
    tw_proto_error error = tw_frame_reader_commit(&conn->reader, (uint32_t)result.value, on_message, conn);
    if (error != tw_proto_ok && !conn->closing) { /* one count per connection closed */
        TW_REACHED(tw_reach_server_malformed_closed);
        conn->server->stats.malformed[error]++;
        char why[64];
        snprintf(why, sizeof(why), "malformed input (%s)", tw_proto_error_name(error));
        connection_close(conn, why);
    }
    if (conn->closing) {
        connection_release_if_done(conn);
        return tw_disarm;
    }
    read_start(conn);
    return tw_disarm;
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

/* Starts closing: queued sends are dropped, the one in flight and the read are canceled
 * by the close, and the slot is free once their callbacks have run. */
static void connection_close(connection *conn, const char *why) {
    tw_server *server = conn->server;
    TW_ASSERT(conn->open);
    if (conn->closing) return;
    conn->closing = true;
    server_log(server, "connection %llu closed: %s", (unsigned long long)conn->number, why);
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
    for (uint32_t i = 0; i < server->options.clients_max; i++) {
        if (server->sessions[i].connection == conn) server->sessions[i].connection = NULL;
    }
    conn->pending++;
    tw_tcp_close(server->loop, &conn->c_close, conn->tcp, conn, connection_closed);
}

/* ---- accepting ----------------------------------------------------------------------------- */

static tw_action accept_done(void *userdata, tw_loop *loop, tw_completion *completion, tw_result result);

static tw_action accept_retry(void *userdata, tw_loop *loop, tw_completion *completion, tw_result result) {
    (void)loop;
    (void)completion;
    tw_server *server = userdata;
    if (result.error == tw_loop_ok && !server->stopping) accept_start(server);
    return tw_disarm;
}

static void accept_start(tw_server *server) {
    TW_ASSERT(server->listener_open && !server->accepting);
    if (server->stopping) return;
    if (server->connections_open == server->options.connections_max) {
        if (!server->accept_full) {
            server_log(server, "connections_max (%u) reached: not accepting until one closes",
                       server->options.connections_max);
        }
        server->accept_full = true;
        return;
    }
    server->accepting = true;
    tw_tcp_accept(server->loop, &server->c_accept, server->listener, server, accept_done);
}

static connection *connection_free_slot(tw_server *server) {
    for (uint32_t i = 0; i < server->options.connections_max; i++) {
        if (!server->connections[i].open) return &server->connections[i];
    }
    TW_ASSERT_MSG(false, "tw_server: accepted with no free connection slot");
    return NULL;
}

static tw_action accept_done(void *userdata, tw_loop *loop, tw_completion *completion, tw_result result) {
    tw_server *server = userdata;
    TW_ASSERT(completion == &server->c_accept && server->accepting);
    server->accepting = false;
    if (result.error == tw_loop_canceled) return tw_disarm;
    if (result.error != tw_loop_ok) {
        TW_REACHED(tw_reach_server_accept_failed);
        server->stats.accept_errors++;
        server_log(server, "accept failed: %s; trying again in %u ms", tw_loop_error_name(result.error),
                   (unsigned)(TW_SERVER_ACCEPT_RETRY_NS / 1000000u));
        if (!server->stopping) {
            tw_loop_timer(loop, &server->c_accept_retry, TW_SERVER_ACCEPT_RETRY_NS, server, accept_retry);
        }
        return tw_disarm;
    }
    connection *conn = connection_free_slot(server);
    uint8_t *receive_buffer = conn->receive_buffer;
    uint8_t *send_buffer = conn->send_buffer;
    memset(conn, 0, sizeof(*conn));
    conn->server = server;
    conn->receive_buffer = receive_buffer;
    conn->send_buffer = send_buffer;
    conn->tcp = tw_tcp_accepted(result);
    conn->open = true;
    conn->number = ++server->connections_numbered;
    tw_frame_reader_init(&conn->reader, receive_buffer, server->options.message_size_max,
                         server->options.cluster);
    server->connections_open++;
    server->stats.connections_accepted++;
    server_log(server, "connection %llu accepted (%u open)", (unsigned long long)conn->number,
               server->connections_open);
    if (server->stopping) {
        connection_close(conn, "the server is stopping");
        return tw_disarm;
    }
    read_start(conn);
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
    if (server->ledger != NULL) tw_ledger_deinit(server->ledger);
    tw_free(server->events);
    tw_free(server->send_buffers);
    tw_free(server->receive_buffers);
    tw_free(server->reply_buffers);
    tw_free(server->evicted);
    tw_free(server->sessions);
    tw_free(server->connections);
    server->magic = 0;
    tw_free(server);
}

static tw_server_error server_allocate(tw_server *server) {
    const tw_server_options *o = &server->options;
    server->buffer_stride = (o->message_size_max + SERVER_BUFFER_ALIGN - 1) / SERVER_BUFFER_ALIGN *
                            SERVER_BUFFER_ALIGN;
    size_t stride = server->buffer_stride;
    server->connections = tw_allocate(sizeof(connection) * o->connections_max);
    server->sessions = tw_allocate(sizeof(session) * o->clients_max);
    server->evicted = tw_allocate(sizeof(evicted) * o->clients_max);
    server->reply_buffers = tw_allocate(stride * o->clients_max);
    server->receive_buffers = tw_allocate(stride * o->connections_max);
    server->send_buffers = tw_allocate(stride * o->connections_max);
    server->events = tw_allocate(stride);
    if (server->connections == NULL || server->sessions == NULL || server->evicted == NULL ||
        server->reply_buffers == NULL || server->receive_buffers == NULL ||
        server->send_buffers == NULL || server->events == NULL) {
        return tw_server_system_resources;
    }
    if (tw_ledger_init(&server->ledger, o->accounts_max, o->transfers_max) != tw_ledger_ok) {
        return tw_server_system_resources;
    }
    for (uint32_t i = 0; i < o->clients_max; i++) {
        server->sessions[i].reply = (tw_header *)(void *)(server->reply_buffers + stride * i);
    }
    for (uint32_t i = 0; i < o->connections_max; i++) {
        server->connections[i].receive_buffer = server->receive_buffers + stride * i;
        server->connections[i].send_buffer = server->send_buffers + stride * i;
    }
    return tw_server_ok;
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
    return &server->stats;
}

uint32_t tw_server_sessions(const tw_server *server) {
    server_check(server);
    return server->sessions_count;
}

void tw_server_set_commit_observer(tw_server *server, tw_server_commit_fn observer, void *context) {
    server_check(server);
    server->commit_observer = observer;
    server->commit_context = context;
}

void tw_server_set_log(tw_server *server, tw_server_log_fn log, void *context) {
    server_check(server);
    server->log = log;
    server->log_context = context;
}

void tw_server_stop(tw_server *server) {
    server_check(server);
    if (server->stopping) return;
    server->stopping = true;
    server_log(server, "stopping: closing the listener and %u connection(s)", server->connections_open);
    if (tw_completion_active(&server->c_accept_retry)) {
        tw_loop_cancel(server->loop, &server->c_cancel_retry, &server->c_accept_retry, server,
                       accept_canceled);
    }
    /* The close cancels the accept pending on the listener (tcp.h: a close cancels the
     * loop's operations on that socket). */
    tw_tcp_close(server->loop, &server->c_listener_close, server->listener, server, listener_closed);
    for (uint32_t i = 0; i < server->options.connections_max; i++) {
        connection *conn = &server->connections[i];
        if (conn->open && !conn->closing) connection_close(conn, "the server is stopping");
    }
}

void tw_server_deinit(tw_server *server) {
    server_check(server);
    TW_ASSERT_MSG(server->stopping && !server->listener_open && !server->accepting &&
                      server->connections_open == 0,
                  "tw_server_deinit: call tw_server_stop and run the loop until done first");
    TW_ASSERT(!tw_completion_active(&server->c_accept_retry));
    server_free(server);
}
