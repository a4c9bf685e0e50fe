/* twin: the server: connections, sessions with eviction, exactly-once requests, and the
 * ledger (<twin/ledger.h>), on one loop.
 *
 * All memory is allocated at init from the limits. One loop thread runs it: every call
 * here is made on that thread.
 *
 * The protocol (<twin/proto.h>), as the server applies it, message by message:
 * - Malformed input (every tw_proto_error: checksums, sizes, unknown command or operation,
 *   another cluster, reserved bytes, or a command the server never takes: reply, eviction,
 *   pong) closes that connection and is counted in stats.malformed; it changes nothing
 *   else. Well-formed messages before it in the stream are handled.
 * - Any message (pings too) whose release is outside [release_min, release_max] is answered
 *   with an eviction (client_release_too_low / _too_high) and nothing else; a session the
 *   client had is evicted.
 * - register (request 0, empty body): creates a session numbered by the op that committed
 *   it and replies (command reply, operation none) with session = op = that number and
 *   batch_size_max = message_size_max - TW_HEADER_SIZE. Client id 0 is no client: its
 *   registers and requests get protocol_violation (its pings get pongs). When clients_max sessions exist,
 *   the least recently used one (oldest register or request) is evicted first with
 *   too_many_clients. A register from a client that has a session and has sent no request
 *   since gets its register reply again; after a request it is an older request, ignored
 *   (a delayed duplicate must not evict a client that moved on). A register with a body
 *   or a request number other than 0 is a protocol_violation.
 * - request (request numbers 1, 2, 3, ... in the client's session): the next number is
 *   executed and its reply cached in the session; a retry of the last one (same operation
 *   and body checksum) gets the cached reply without executing again; an older one is
 *   ignored; a number that skips ahead, a retry with another body, a session number that
 *   is not the client's, or a body that is not whole events (or more events than
 *   tw_operation_events_max) is a protocol_violation. A client with no session gets an
 *   eviction with the reason it was evicted for, if it is still in the evicted table
 *   (clients_max entries, oldest forgotten first), else no_session.
 * - ping: answered with a pong carrying the ping's timestamp back (for round-trip times).
 *   A ping from an evicted client also gets its eviction, after the pong. A ping moves where the session's
 *   client is reached (its connection) but not its place in the LRU order: only registers
 *   and requests count as use, so an idle client that only pings is still evicted first.
 * - An evicted session's client hears the reason at once if its last message (a late
 *   duplicate, ignored, does not count) came on a connection that is still open, and again
 *   whenever it next speaks.
 * - Replies carry the op number and the op's timestamp (loop clock, strictly increasing).
 *   A reply, pong or eviction that cannot be queued at once (that connection is still
 *   writing an earlier reply, or has TW_SERVER_SMALL_SENDS_MAX headers queued) is dropped
 *   and counted: the client's retry gets the cached reply. Execution is never dropped. */
#ifndef TWIN_SERVER_H
#define TWIN_SERVER_H

#include <stdint.h>

#include <twin/loop.h>
#include <twin/proto.h>

#define TW_SERVER_CONNECTIONS_MAX 4096u
#define TW_SERVER_CLIENTS_MAX 4096u
/* Header-only messages (pong, eviction) a connection may have queued at once. */
#define TW_SERVER_SMALL_SENDS_MAX 4u
#define TW_SERVER_BACKLOG_DEFAULT 64u
/* A header and the largest event or result (a transfer), so every operation fits one. */
#define TW_SERVER_MESSAGE_SIZE_MIN (TW_HEADER_SIZE + 80u)
/* After a failed accept (e.g. out of descriptors), the next try waits this long. */
#define TW_SERVER_ACCEPT_RETRY_NS (10u * 1000u * 1000u)
/* When every connection slot is taken, the server makes room for the connections waiting
 * in the backlog by closing one that has delivered no whole message for at least
 * TW_SERVER_IDLE_RECLAIM_NS: first one that never delivered any (a peer that trickles bytes,
 * announces a body it never sends, or only holds the socket), else the one idle longest (a
 * client's next request reconnects). It looks again every TW_SERVER_RECLAIM_CHECK_NS while
 * it stays full and none qualifies. Without this, such peers could hold every slot. */
#define TW_SERVER_IDLE_RECLAIM_NS (2000ull * 1000u * 1000u)
#define TW_SERVER_RECLAIM_CHECK_NS (100u * 1000u * 1000u)

typedef struct tw_server_options {
    tw_u128 cluster;
    uint32_t connections_max;  /* 1 .. TW_SERVER_CONNECTIONS_MAX; one more is held (see
                                  TW_SERVER_IDLE_RECLAIM_NS), the rest wait in the backlog */
    uint32_t clients_max;      /* sessions: 1 .. TW_SERVER_CLIENTS_MAX */
    uint32_t message_size_max; /* TW_SERVER_MESSAGE_SIZE_MIN .. TW_MESSAGE_SIZE_MAX */
    uint32_t release_min;      /* clients outside [release_min, release_max] are evicted */
    uint32_t release_max;
    uint32_t accounts_max;     /* the ledger's limits (>= 1) */
    uint32_t transfers_max;
    uint32_t backlog;          /* listen backlog; 0: TW_SERVER_BACKLOG_DEFAULT */
} tw_server_options;

typedef enum tw_server_error {
    tw_server_ok = 0,
    tw_server_invalid_options, /* tw_server_options_check says which and why */
    tw_server_system_resources,
    tw_server_listen_failed, /* open, bind or listen failed: *listen_error says why */
} tw_server_error;

const char *tw_server_error_name(tw_server_error error);
/* NULL when the options are valid, else a sentence naming the option and what is accepted. */
const char *tw_server_options_check(const tw_server_options *options);

#define TW_EVICTION_REASON_COUNT 6u

typedef struct tw_server_stats {
    uint64_t connections_accepted;
    uint64_t connections_closed;
    uint64_t accept_errors;
    uint64_t malformed[tw_proto_error_count]; /* connections closed, by the class that closed it */
    uint64_t messages_received;                /* well-formed */
    uint64_t registrations;                    /* sessions created */
    uint64_t requests_executed;
    uint64_t retries_answered; /* cached replies sent again, not executed */
    uint64_t requests_ignored; /* older than the session's last */
    uint64_t pings;
    uint64_t sessions_evicted[TW_EVICTION_REASON_COUNT]; /* by tw_eviction_reason */
    uint64_t evictions_sent[TW_EVICTION_REASON_COUNT];   /* eviction messages queued */
    uint64_t sends_dropped; /* replies, pongs or evictions that could not be queued */
    uint64_t connections_reclaimed; /* closed to make room (TW_SERVER_IDLE_RECLAIM_NS) */
    uint64_t op;            /* the last op number committed (registers and requests) */
} tw_server_stats;

typedef struct tw_server tw_server;

/* Opens, binds and listens on *listen, and starts accepting on loop. */
tw_server_error tw_server_init(tw_server **server, tw_loop *loop, const tw_address *listen,
                               const tw_server_options *options, tw_loop_error *listen_error);
/* The address it listens on (the port the system chose, when 0 was asked). */
tw_address tw_server_address(const tw_server *server);
const tw_server_stats *tw_server_stats_get(const tw_server *server);
/* Sessions held now. */
uint32_t tw_server_sessions(const tw_server *server);
/* Stops accepting and closes every connection; run the loop until done, then deinit. */
void tw_server_stop(tw_server *server);
void tw_server_deinit(tw_server *server);

/* A committed op as the server executed it, for an audit log, a replica or an oracle
 * (twin-sim's reference model checks every reply against one). Registers come with
 * request 0, operation none and empty bodies. The pointers are valid during the call only. */
typedef struct tw_server_commit {
    uint64_t op;        /* 1, 2, 3, ...: every commit, in order */
    uint64_t timestamp; /* strictly increasing with op */
    tw_u128 client;
    uint64_t session;   /* the client's session (the op of its register) */
    uint64_t request;   /* the client's request number; 0: a register */
    tw_operation operation;
    const uint8_t *body;
    uint32_t body_size;
    const uint8_t *reply; /* the reply's body */
    uint32_t reply_size;
} tw_server_commit;

/* Called on the loop thread once per commit, after it executed and before its reply is
 * queued. NULL: none (the default). */
typedef void (*tw_server_commit_fn)(void *context, const tw_server_commit *commit);
void tw_server_set_commit_observer(tw_server *server, tw_server_commit_fn observer, void *context);

/* Info-level log lines (connections, evictions, malformed input), without a newline.
 * NULL: quiet (the default). */
typedef void (*tw_server_log_fn)(void *context, const char *line);
void tw_server_set_log(tw_server *server, tw_server_log_fn log, void *context);

#endif
