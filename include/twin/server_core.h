/* twin: the server's message handling without IO: framing, sessions, evictions,
 * exactly-once requests and the ledger, as <twin/server.h> describes them.
 *
 * tw_server (src/server.c) is this core plus sockets: it accepts connections, reads into
 * each connection's frame reader, and writes what the core asks it to send. Anything else
 * can drive the core the same way without a loop: a fuzz target feeds it bytes and reads
 * its answers in the same call (fuzz/fuzz_server_input.c), and a test can check it message
 * by message.
 *
 * The core never blocks and never calls back into itself: each call runs to completion,
 * calling the port (below) for every message to send and every connection to close. It
 * is not thread-safe: one thread makes every call. */
#ifndef TWIN_SERVER_CORE_H
#define TWIN_SERVER_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include <twin/ledger.h>
#include <twin/proto.h>
#include <twin/server.h>

/* Buffers (receive, send, cached replies) are rounded up to this alignment. */
#define TW_SERVER_BUFFER_ALIGN 16u

typedef struct tw_server_core tw_server_core;

/* A connection as the core sees it. Its owner keeps it (the server embeds one in each
 * connection) and gives it a receive buffer of tw_server_buffer_size bytes. */
typedef struct tw_server_peer {
    tw_server_core *core;
    uint64_t number;        /* for logs: the owner's name for it (the server: n-th accepted) */
    bool closing;           /* closed by tw_server_core_peer_close: nothing more is handled */
    tw_frame_reader reader; /* what arrived and is not yet a whole message */
} tw_server_peer;

/* What the core asks of its owner. Each call is made during a core call, on its thread. */
typedef struct tw_server_port {
    void *context;
    /* The clock for op timestamps (the core makes them strictly increasing itself). */
    uint64_t (*now_ns)(void *context);
    /* Send a reply (header, then header->size - TW_HEADER_SIZE body bytes). The bytes are
     * the session's cached reply: copy them before returning, or drop the send (count it
     * in stats.sends_dropped; the client's retry gets the cached reply again). */
    void (*send_reply)(void *context, tw_server_peer *peer, const tw_header *reply);
    /* Send a header-only message (pong, eviction), copied before returning, or drop it. */
    void (*send_small)(void *context, tw_server_peer *peer, const tw_header *header);
    /* The peer is closing (peer->closing is set, no session reaches its client there any
     * more): close the connection. Called once per peer, by tw_server_core_peer_close. */
    void (*close)(void *context, tw_server_peer *peer, const char *why);
} tw_server_port;

struct tw_server_session;
struct tw_server_evicted;

struct tw_server_core {
    uint64_t magic;
    tw_server_options options;
    tw_server_port port;
    tw_ledger *ledger;
    struct tw_server_session *sessions;
    uint32_t sessions_count;
    struct tw_server_evicted *evicted;
    uint64_t evictions_recorded;
    uint8_t *reply_buffers;
    void *events; /* an aligned copy of a request's events (bodies may sit unaligned) */
    uint64_t timestamp_last;
    uint64_t used_counter;
    /* The server's counters; its owner adds the connection counters and dropped sends. */
    tw_server_stats stats;
    tw_server_log_fn log;
    void *log_context;
    tw_server_commit_fn commit_observer;
    void *commit_context;
};

/* message_size_max rounded up to TW_SERVER_BUFFER_ALIGN: one buffer's size. */
uint32_t tw_server_buffer_size(uint32_t message_size_max);

/* Allocates the tables (sessions, evicted clients, cached replies) and the ledger from
 * options (which tw_server_options_check must accept). Every table is asked for before
 * any failure is reported, and then the ledger: tw_server_system_resources when one is
 * missing, with nothing left allocated. */
tw_server_error tw_server_core_init(tw_server_core *core, const tw_server_options *options,
                                    const tw_server_port *port);
void tw_server_core_deinit(tw_server_core *core);

/* A new connection: its reader takes receive_buffer (tw_server_buffer_size bytes). */
void tw_server_core_peer_init(tw_server_core *core, tw_server_peer *peer, uint8_t *receive_buffer,
                              uint64_t number);
/* Where the peer's next bytes go: at most *size bytes into the returned space. */
uint8_t *tw_server_core_peer_space(tw_server_peer *peer, uint32_t *size);
/* count bytes arrived in the space: every whole message is handled, in order, and
 * answered through the port. Malformed input closes the peer (tw_server_core_peer_close)
 * after the well-formed messages before it; a closing peer's bytes are ignored. */
void tw_server_core_receive(tw_server_core *core, tw_server_peer *peer, uint32_t count);
/* Closes the peer, once (later calls do nothing): sessions no longer reach their clients
 * there, it is logged with why, and the port's close is called. */
void tw_server_core_peer_close(tw_server_core *core, tw_server_peer *peer, const char *why);

/* Sessions held now. */
uint32_t tw_server_core_sessions(const tw_server_core *core);

/* A line to the core's log (core->log; nothing when it is NULL), printf-style. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void tw_server_core_log(tw_server_core *core, const char *format, ...);

#endif
