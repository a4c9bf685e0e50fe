/* twin: the server's message handling without IO (see include/twin/server_core.h; the
 * protocol as it applies it is in include/twin/server.h).
 *
 * Memory: every table comes from the limits at init. Each session caches its last reply
 * (header and body) in a buffer of tw_server_buffer_size bytes.
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
#include <twin/server_core.h>

#include "lib/plant.h"

#define CORE_MAGIC 0x7365727665726321ull /* "server!c" */
#define CORE_LOG_LINE_SIZE 256u
#define CLIENT_TEXT_SIZE 48u
#define CLOSE_WHY_SIZE 64u

_Static_assert(TW_EVICTION_REASON_COUNT == tw_eviction_protocol_violation + 1,
               "stats arrays hold every eviction reason");

typedef struct tw_server_session {
    uint64_t number; /* 0: the slot is free */
    tw_u128 client;
    uint64_t request_last;          /* 0: only the register so far */
    tw_u128 request_checksum_body;  /* of the last request: a retry must match it */
    uint8_t request_operation;
    uint64_t used_last;             /* the core's use counter at the last register or request */
    tw_server_peer *peer;           /* where its last message came from, while open */
    tw_header *reply;               /* the cached reply: header, then body */
} session;

typedef struct tw_server_evicted {
    tw_u128 client; /* zero: the entry is free */
    uint64_t session;
    uint64_t recorded; /* the core's eviction counter when recorded: the oldest goes first */
    uint8_t reason;
} evicted;

/* ---- small helpers -------------------------------------------------------------------- */

static bool u128_equal(tw_u128 a, tw_u128 b) { return a.low == b.low && a.high == b.high; }
static bool u128_zero(tw_u128 a) { return a.low == 0 && a.high == 0; }

/* A client id for a log line; nothing (and no formatting cost) when there is no log. */
static void client_text(const tw_server_core *core, tw_u128 client, char *text, size_t text_size) {
    TW_ASSERT(text_size > 0);
    text[0] = '\0';
    if (core->log == NULL) return;
    if (client.high == 0) {
        snprintf(text, text_size, "%llu", (unsigned long long)client.low);
    } else {
        snprintf(text, text_size, "0x%016llx%016llx", (unsigned long long)client.high,
                 (unsigned long long)client.low);
    }
}

void tw_server_core_log(tw_server_core *core, const char *format, ...) {
    if (core->log == NULL) return;
    char line[CORE_LOG_LINE_SIZE];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof(line), format, args);
    va_end(args);
    core->log(core->log_context, line);
}

static void core_check(const tw_server_core *core) {
    TW_ASSERT_MSG(core != NULL && core->magic == CORE_MAGIC,
                  "tw_server_core: not an initialised core (used after deinit?)");
}

uint32_t tw_server_buffer_size(uint32_t message_size_max) {
    TW_ASSERT(message_size_max >= TW_HEADER_SIZE && message_size_max <= TW_MESSAGE_SIZE_MAX);
    return (message_size_max + TW_SERVER_BUFFER_ALIGN - 1) / TW_SERVER_BUFFER_ALIGN * TW_SERVER_BUFFER_ALIGN;
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


/* ---- sends ------------------------------------------------------------------------------ */

/* The session's cached reply, to the peer unless it is closing. */
static void send_reply(tw_server_core *core, tw_server_peer *peer, const tw_header *reply) {
    TW_ASSERT(reply->size >= TW_HEADER_SIZE && reply->size <= core->options.message_size_max);
    TW_ASSERT(peer->core == core);
    if (peer->closing) return;
    core->port.send_reply(core->port.context, peer, reply);
}

static void send_small(tw_server_core *core, tw_server_peer *peer, const tw_header *header) {
    TW_ASSERT(header->size == TW_HEADER_SIZE);
    TW_ASSERT(peer->core == core);
    if (peer->closing) return;
    core->port.send_small(core->port.context, peer, header);
}

static void send_eviction(tw_server_peer *peer, tw_u128 client, uint64_t session_number,
                          uint32_t release, tw_eviction_reason reason) {
    tw_server_core *core = peer->core;
    TW_ASSERT(reason > tw_eviction_none && reason < TW_EVICTION_REASON_COUNT);
    tw_header header = {
        .cluster = core->options.cluster,
        .client = client,
        .session = session_number,
        .size = TW_HEADER_SIZE,
        .release = release,
        .command = tw_command_eviction,
        .eviction_reason = (uint8_t)reason,
    };
    tw_header_seal(&header, NULL);
    core->stats.evictions_sent[reason]++;
    char text[CLIENT_TEXT_SIZE];
    client_text(core, client, text, sizeof(text));
    tw_server_core_log(core, "connection %llu: eviction sent to client %s: %s (session %llu)",
                       (unsigned long long)peer->number, text, tw_eviction_reason_name(reason),
                       (unsigned long long)session_number);
    send_small(core, peer, &header);
}

/* ---- sessions and the evicted table ------------------------------------------------------ */

static session *session_find(tw_server_core *core, tw_u128 client) {
    for (uint32_t i = 0; i < core->options.clients_max; i++) {
        session *s = &core->sessions[i];
        if (s->number != 0 && u128_equal(s->client, client)) return s;
    }
    return NULL;
}

static evicted *evicted_find(tw_server_core *core, tw_u128 client) {
    TW_ASSERT(!u128_zero(client));
    for (uint32_t i = 0; i < core->options.clients_max; i++) {
        if (u128_equal(core->evicted[i].client, client)) return &core->evicted[i];
    }
    return NULL;
}

static void evicted_record(tw_server_core *core, tw_u128 client, uint64_t session_number,
                           tw_eviction_reason reason) {
    evicted *entry = evicted_find(core, client);
    /* A free entry (never used, or cleared by a new register), else the oldest: that
     * client then hears no_session, which is still true. */
    for (uint32_t i = 0; entry == NULL && i < core->options.clients_max; i++) {
        if (u128_zero(core->evicted[i].client)) entry = &core->evicted[i];
    }
    if (entry == NULL) {
        entry = &core->evicted[0];
        for (uint32_t i = 1; i < core->options.clients_max; i++) {
            if (core->evicted[i].recorded < entry->recorded) entry = &core->evicted[i];
        }
    }
    TW_ASSERT(entry != NULL && entry->recorded <= core->evictions_recorded);
    *entry = (evicted){.client = client, .session = session_number, .reason = (uint8_t)reason,
                       .recorded = ++core->evictions_recorded};
}

/* Evicts a session: records why, tells its client now if its connection is open, and
 * also on also (the connection the current message came on) when that is another. */
static void session_evict(tw_server_core *core, session *s, tw_eviction_reason reason,
                          tw_server_peer *also, uint32_t release) {
    TW_ASSERT(s->number != 0 && core->sessions_count > 0);
    char client[CLIENT_TEXT_SIZE];
    client_text(core, s->client, client, sizeof(client));
    tw_server_core_log(core, "client %s evicted: %s (session %llu)", client,
                       tw_eviction_reason_name(reason), (unsigned long long)s->number);
    core->stats.sessions_evicted[reason]++;
    evicted_record(core, s->client, s->number, reason);
    if (s->peer != NULL) send_eviction(s->peer, s->client, s->number, release, reason);
    if (also != NULL && also != s->peer) send_eviction(also, s->client, s->number, release, reason);
    s->number = 0;
    s->peer = NULL;
    core->sessions_count--;
}

static session *session_least_recently_used(tw_server_core *core) {
    session *oldest = NULL;
    for (uint32_t i = 0; i < core->options.clients_max; i++) {
        session *s = &core->sessions[i];
        if (s->number != 0 && (oldest == NULL || s->used_last < oldest->used_last)) oldest = s;
    }
    TW_ASSERT(oldest != NULL);
    return oldest;
}

static session *session_free_slot(tw_server_core *core) {
    TW_ASSERT(core->sessions_count < core->options.clients_max);
    for (uint32_t i = 0; i < core->options.clients_max; i++) {
        if (core->sessions[i].number == 0) return &core->sessions[i];
    }
    TW_ASSERT_MSG(false, "tw_server: sessions_count disagrees with the session table");
    return NULL;
}

static void session_touch(tw_server_core *core, session *s, tw_server_peer *peer) {
    s->used_last = ++core->used_counter;
    s->peer = peer;
}

/* ---- commits ----------------------------------------------------------------------------- */

/* Tells the commit observer, if any, of the op the session's reply was just made for. */
static void commit_observe(tw_server_core *core, const session *s, const tw_header *header,
                           const uint8_t *body) {
    TW_ASSERT(s->reply->op == core->stats.op && s->reply->request == header->request);
    if (core->commit_observer == NULL) return;
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
    core->commit_observer(core->commit_context, &commit);
}

/* The next op: its number and a timestamp after every earlier one (ledger events too). */
static uint64_t op_begin(tw_server_core *core, uint64_t *timestamp) {
    uint64_t now_ns = core->port.now_ns(core->port.context);
    uint64_t after = core->timestamp_last + 1;
    uint64_t ledger_after = tw_ledger_timestamp_last(core->ledger) + 1;
    if (ledger_after > after) after = ledger_after;
    *timestamp = now_ns > after ? now_ns : after;
    core->timestamp_last = *timestamp;
    core->stats.op++;
    return core->stats.op;
}

static void reply_header(tw_server_core *core, const tw_header *request, session *s, uint64_t op,
                         uint64_t timestamp, uint32_t body_size) {
    TW_ASSERT(body_size <= core->options.message_size_max - TW_HEADER_SIZE);
    *s->reply = (tw_header){
        .cluster = core->options.cluster,
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

static void on_register(tw_server_core *core, tw_server_peer *peer, const tw_header *header) {
    session *s = session_find(core, header->client);
    if (header->size != TW_HEADER_SIZE || header->request != 0) {
        if (s != NULL) {
            session_evict(core, s, tw_eviction_protocol_violation, peer, header->release);
        } else {
            send_eviction(peer, header->client, 0, header->release, tw_eviction_protocol_violation);
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
            core->stats.requests_ignored++;
            return;
        }
        if (TW_PLANTED(tw_plant_server_register_again_new_session)) {
            /* A register opens a session, whatever the client had: drop the old one. */
            s->number = 0;
            s->peer = NULL;
            core->sessions_count--;
            s = NULL;
        } else {
            TW_REACHED(tw_reach_server_register_answered_again);
            session_touch(core, s, peer);
            core->stats.retries_answered++;
            send_reply(core, peer, s->reply);
            return;
        }
    }
    evicted *was = evicted_find(core, header->client);
    if (was != NULL) *was = (evicted){0}; /* a new session: the old eviction is history */
    if (core->sessions_count == core->options.clients_max) {
        TW_REACHED(tw_reach_server_evicted_lru);
        session_evict(core, session_least_recently_used(core), tw_eviction_too_many_clients,
                      NULL, header->release);
    }
    s = session_free_slot(core);
    uint64_t timestamp = 0;
    uint64_t op = op_begin(core, &timestamp);
    s->number = op;
    s->client = header->client;
    core->sessions_count++;
    session_touch(core, s, peer);
    memset(s->reply, 0, TW_HEADER_SIZE);
    reply_header(core, header, s, op, timestamp, 0);
    s->reply->batch_size_max = core->options.message_size_max - TW_HEADER_SIZE;
    tw_header_seal_header(s->reply);
    commit_observe(core, s, header, NULL);
    core->stats.registrations++;
    char client[CLIENT_TEXT_SIZE];
    client_text(core, header->client, client, sizeof(client));
    tw_server_core_log(core, "client %s registered: session %llu on connection %llu", client,
                       (unsigned long long)op, (unsigned long long)peer->number);
    send_reply(core, peer, s->reply);
}

/* Runs the request's operation against the ledger; the results go into the session's
 * reply body. Returns the body size. */
static uint32_t execute(tw_server_core *core, const tw_header *header, const uint8_t *body,
                        uint64_t timestamp, void *results) {
    uint32_t body_size = header->size - TW_HEADER_SIZE;
    uint32_t event_size = tw_operation_event_size((tw_operation)header->operation);
    uint32_t count = event_size == 0 ? body_size : body_size / event_size;
    memcpy(core->events, body, body_size); /* aligned for the event structs */
    switch ((tw_operation)header->operation) {
    case tw_operation_create_accounts:
        return (uint32_t)sizeof(tw_create_result) *
               tw_ledger_create_accounts(core->ledger, timestamp, core->events, count, results);
    case tw_operation_create_transfers:
        return (uint32_t)sizeof(tw_create_result) *
               tw_ledger_create_transfers(core->ledger, timestamp, core->events, count, results);
    case tw_operation_lookup_accounts:
        return (uint32_t)sizeof(tw_account) *
               tw_ledger_lookup_accounts(core->ledger, core->events, count, results);
    case tw_operation_lookup_transfers:
        return (uint32_t)sizeof(tw_transfer) *
               tw_ledger_lookup_transfers(core->ledger, core->events, count, results);
    case tw_operation_echo:
        memcpy(results, core->events, body_size);
        return body_size;
    case tw_operation_none: break;
    }
    TW_ASSERT_MSG(false, "tw_server: a request without an operation reached execute");
    return 0;
}

/* Whole events, and no more than the operation's maximum. */
static bool request_body_valid(const tw_server_core *core, const tw_header *header) {
    tw_operation operation = (tw_operation)header->operation;
    uint32_t body_size = header->size - TW_HEADER_SIZE;
    uint32_t event_size = tw_operation_event_size(operation);
    uint32_t events_max = tw_operation_events_max(operation, core->options.message_size_max);
    if (event_size == 0) return body_size <= events_max;
    return body_size % event_size == 0 && body_size / event_size <= events_max;
}

static void on_request(tw_server_core *core, tw_server_peer *peer, const tw_header *header,
                       const uint8_t *body) {
    session *s = session_find(core, header->client);
    if (s == NULL) {
        evicted *was = evicted_find(core, header->client);
        tw_eviction_reason reason = was != NULL ? (tw_eviction_reason)was->reason : tw_eviction_no_session;
        if (was != NULL) TW_REACHED(tw_reach_server_eviction_repeated);
        send_eviction(peer, header->client, was != NULL ? was->session : 0, header->release, reason);
        return;
    }
    TW_ASSERT(s->number != 0 && u128_equal(s->client, header->client));
    TW_ASSERT(s->request_last == 0 || s->reply->request == s->request_last);
    if (header->session == s->number && header->request != 0 && header->request < s->request_last) {
        /* A late duplicate (from a connection the client gave up on): ignored, and the
         * session is still reached where the client is now. */
        TW_REACHED(tw_reach_server_request_older_ignored);
        core->stats.requests_ignored++;
        return;
    }
    s->peer = peer; /* where it is reached now, whatever this message turns out to be */
    if (header->session != s->number || header->request == 0 ||
        header->request > s->request_last + 1) {
        session_evict(core, s, tw_eviction_protocol_violation, peer, header->release);
        return;
    }
    if (header->request == s->request_last && !TW_PLANTED(tw_plant_server_retry_executes_again)) {
        if (!u128_equal(header->checksum_body, s->request_checksum_body) ||
            header->operation != s->request_operation) {
            session_evict(core, s, tw_eviction_protocol_violation, peer, header->release);
            return;
        }
        TW_REACHED(tw_reach_server_retry_answered);
        /* A retry of the last request: its cached reply answers it, unchanged. */
        TW_ASSERT(s->reply->request == header->request && s->reply->command == tw_command_reply);
        session_touch(core, s, peer);
        core->stats.retries_answered++;
        send_reply(core, peer, s->reply);
        return;
    }
    if (!request_body_valid(core, header)) {
        session_evict(core, s, tw_eviction_protocol_violation, peer, header->release);
        return;
    }
    /* Exactly once: only the next number executes (the planted bug, which lets a retry
     * through to here, is caught right here). */
    TW_ASSERT_MSG(header->request == s->request_last + 1,
                  "exactly once: a request other than the session's next was about to execute");
    uint64_t op_previous = core->stats.op;
    uint64_t timestamp_previous = core->timestamp_last;
    uint64_t timestamp = 0;
    uint64_t op = op_begin(core, &timestamp);
    TW_ASSERT(op == op_previous + 1 && timestamp > timestamp_previous);
    uint32_t reply_body_size = execute(core, header, body, timestamp, s->reply + 1);
    reply_header(core, header, s, op, timestamp, reply_body_size);
    TW_ASSERT(s->request_last == header->request && s->reply->op == op);
    commit_observe(core, s, header, body);
    session_touch(core, s, peer);
    core->stats.requests_executed++;
    send_reply(core, peer, s->reply);
}

static void on_ping(tw_server_core *core, tw_server_peer *peer, const tw_header *header) {
    core->stats.pings++;
    session *s = session_find(core, header->client);
    tw_header pong = {
        .cluster = core->options.cluster,
        .client = header->client,
        .session = s != NULL ? s->number : 0,
        .timestamp = header->timestamp,
        .size = TW_HEADER_SIZE,
        .release = header->release,
        .command = tw_command_pong,
    };
    tw_header_seal(&pong, NULL);
    send_small(core, peer, &pong);
    if (s != NULL) {
        s->peer = peer;
    } else if (!u128_zero(header->client)) {
        evicted *was = evicted_find(core, header->client);
        if (was != NULL) {
            send_eviction(peer, header->client, was->session, header->release,
                          (tw_eviction_reason)was->reason);
        }
    }
}

static void on_message(void *context, const tw_header *header, const uint8_t *body) {
    tw_server_peer *peer = context;
    tw_server_core *core = peer->core;
    core_check(core);
    TW_ASSERT(header->size >= TW_HEADER_SIZE && header->size <= core->options.message_size_max);
    if (peer->closing) return; /* an earlier message of this read closed it */
    tw_command command = (tw_command)header->command;
    if (command != tw_command_register && command != tw_command_request && command != tw_command_ping) {
        core->stats.malformed[tw_proto_unexpected_command]++;
        tw_server_core_peer_close(core, peer, "malformed input (unexpected_command)");
        return;
    }
    core->stats.messages_received++;
    if (header->release < core->options.release_min || header->release > core->options.release_max) {
        tw_eviction_reason reason = header->release < core->options.release_min
                                        ? tw_eviction_client_release_too_low
                                        : tw_eviction_client_release_too_high;
        TW_REACHED(tw_reach_server_evicted_release);
        session *s = u128_zero(header->client) ? NULL : session_find(core, header->client);
        if (s != NULL) session_evict(core, s, reason, peer, header->release);
        else send_eviction(peer, header->client, 0, header->release, reason);
        return;
    }
    if (command == tw_command_ping) {
        on_ping(core, peer, header);
        return;
    }
    if (u128_zero(header->client)) { /* 0 is no client's id */
        send_eviction(peer, header->client, 0, header->release, tw_eviction_protocol_violation);
        return;
    }
    if (command == tw_command_register) on_register(core, peer, header);
    else on_request(core, peer, header, body);
}


/* ---- the core's calls ------------------------------------------------------------------------- */

void tw_server_core_peer_init(tw_server_core *core, tw_server_peer *peer, uint8_t *receive_buffer,
                              uint64_t number) {
    core_check(core);
    TW_ASSERT(peer != NULL && receive_buffer != NULL);
    *peer = (tw_server_peer){.core = core, .number = number};
    tw_frame_reader_init(&peer->reader, receive_buffer, core->options.message_size_max,
                         core->options.cluster);
}

uint8_t *tw_server_core_peer_space(tw_server_peer *peer, uint32_t *size) {
    TW_ASSERT(peer != NULL && size != NULL);
    TW_ASSERT(!peer->closing);
    return tw_frame_reader_space(&peer->reader, size);
}

void tw_server_core_receive(tw_server_core *core, tw_server_peer *peer, uint32_t count) {
    core_check(core);
    TW_ASSERT(peer->core == core && count > 0);
    if (peer->closing) return;
    tw_proto_error error = tw_frame_reader_commit(&peer->reader, count, on_message, peer);
    if (error != tw_proto_ok && !peer->closing) { /* one count per connection closed */
        TW_REACHED(tw_reach_server_malformed_closed);
        core->stats.malformed[error]++;
        char why[CLOSE_WHY_SIZE];
        snprintf(why, sizeof(why), "malformed input (%s)", tw_proto_error_name(error));
        tw_server_core_peer_close(core, peer, why);
    }
}

void tw_server_core_peer_close(tw_server_core *core, tw_server_peer *peer, const char *why) {
    core_check(core);
    TW_ASSERT(peer->core == core && why != NULL);
    if (peer->closing) return;
    peer->closing = true;
    tw_server_core_log(core, "connection %llu closed: %s", (unsigned long long)peer->number, why);
    for (uint32_t i = 0; i < core->options.clients_max; i++) {
        if (core->sessions[i].peer == peer) core->sessions[i].peer = NULL;
    }
    core->port.close(core->port.context, peer, why);
}

uint32_t tw_server_core_sessions(const tw_server_core *core) {
    core_check(core);
    return core->sessions_count;
}

/* ---- life cycle ------------------------------------------------------------------------------ */

void tw_server_core_deinit(tw_server_core *core) {
    TW_ASSERT(core != NULL);
    if (core->ledger != NULL) tw_ledger_deinit(core->ledger);
    tw_free(core->events);
    tw_free(core->reply_buffers);
    tw_free(core->evicted);
    tw_free(core->sessions);
    *core = (tw_server_core){0};
}

tw_server_error tw_server_core_init(tw_server_core *core, const tw_server_options *options,
                                    const tw_server_port *port) {
    TW_ASSERT(core != NULL && options != NULL && port != NULL);
    TW_ASSERT(port->now_ns != NULL && port->send_reply != NULL && port->send_small != NULL &&
              port->close != NULL);
    TW_ASSERT_MSG(tw_server_options_check(options) == NULL,
                  "tw_server_core_init: options that tw_server_options_check refuses");
    *core = (tw_server_core){.options = *options, .port = *port};
    size_t stride = tw_server_buffer_size(options->message_size_max);
    core->sessions = tw_allocate(sizeof(session) * options->clients_max);
    core->evicted = tw_allocate(sizeof(evicted) * options->clients_max);
    core->reply_buffers = tw_allocate(stride * options->clients_max);
    core->events = tw_allocate(stride);
    if (core->sessions == NULL || core->evicted == NULL || core->reply_buffers == NULL ||
        core->events == NULL ||
        tw_ledger_init(&core->ledger, options->accounts_max, options->transfers_max) != tw_ledger_ok) {
        tw_server_core_deinit(core);
        return tw_server_system_resources;
    }
    for (uint32_t i = 0; i < options->clients_max; i++) {
        core->sessions[i].reply = (tw_header *)(void *)(core->reply_buffers + stride * i);
    }
    core->magic = CORE_MAGIC;
    return tw_server_ok;
}
