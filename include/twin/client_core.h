/* twin: the client's request machine without IO: registration, packet checks (A5's
 * order), batching, the request in flight and its message, replies (validated and handed
 * back per packet), evictions and shutdown, as <twin/client.h> describes them.
 *
 * tw_client (src/client.c) is this core plus a thread, a loop and a connection: its IO
 * thread takes submitted packets from the handle's queue and enqueues them here, writes
 * the message the core seals, reads the connection into the core's frame reader, and does
 * what the core asks through its port (below). Anything else can drive the core the same
 * way with no loop, socket, timer or thread: a test hands it packets, takes the sealed
 * request bytes, and feeds it reply bytes in pieces of any size
 * (tests/client_core_test.c).
 *
 * The core never blocks, takes no lock and makes no allocation after init. It is not
 * thread-safe: one thread makes every call, and completion callbacks run on it, inside
 * the core call that completes the packet.
 *
 * The message. After init the register (request 0) is sealed and in flight. Exactly one
 * message is in flight at a time; while its request waits for a reply it is sent as is,
 * as many times as the owner likes (a retry on a new connection). Sending lends the
 * buffer (tw_client_core_message_send) until the write reports
 * (tw_client_core_message_written): a reply can be read before its request's write has
 * reported, and the next request is sealed only once the buffer is back, never over
 * bytes still being written.
 *
 * Order within a reply (A8): the reply is validated, the request is over
 * (port.reply_accepted), the next pending request is sealed (port.message_ready, if the
 * buffer is free), and only then do the packets' completion callbacks run. */
#ifndef TWIN_CLIENT_CORE_H
#define TWIN_CLIENT_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include <twin/client.h>
#include <twin/proto.h>

/* The message, receive and reply buffers are rounded up to this alignment. */
#define TW_CLIENT_BUFFER_ALIGN 16u

/* What the core asks of its owner. Each call is made during a core call, on its thread.
 * Calls back into the core from a port function are allowed only where said. */
typedef struct tw_client_port {
    void *context;
    /* The packets submitted since the last take, in order, linked by links.next (NULL:
     * none); the core enqueues each one. Asked when the register's reply is accepted (the
     * packets that waited for the batch size) and after an eviction (they complete with
     * its status). */
    tw_packet *(*submitted_take)(void *context);
    /* A new request was sealed and is in flight: send it (tw_client_core_message_send) now
     * or once a connection is open. The owner may call tw_client_core_message_send from
     * here. Not called for the register, which init seals. */
    void (*message_ready)(void *context);
    /* A reply to the request in flight was accepted: the server answers, so a failure
     * count and a request timer are over. Called before the next request is sealed and
     * before any completion callback. */
    void (*reply_accepted)(void *context);
    /* The connection delivered a malformed message, or one that cannot be right (a reply
     * to a request never sent, a bad register reply, a command a server never sends):
     * close it and send the message in flight again on another. The core takes no more
     * bytes from it (until tw_client_core_connected). */
    void (*connection_fail)(void *context);
    /* The client stops for good (evicted, or tw_client_core_shutdown): stop timers and
     * close the connection if one is open. Called at the eviction and again at shutdown,
     * each time after tw_client_core_active is false and before any packet completes. */
    void (*stop)(void *context);
} tw_client_port;

typedef struct tw_client_core_options {
    tw_u128 cluster;
    tw_u128 id;                        /* the client's id: not zero */
    uint32_t release;                  /* not zero */
    bool batching;                     /* false: every packet is its own request */
    uint32_t message_size_max;         /* TW_CLIENT_MESSAGE_SIZE_MIN .. TW_MESSAGE_SIZE_MAX */
    uintptr_t completion_context;
    tw_client_completion_fn completion; /* not NULL */
} tw_client_core_options;

/* The core's state. Its owner embeds it and may read its fields; only the core writes
 * them. */
typedef struct tw_client_core {
    uint64_t magic;
    tw_client_core_options options;
    tw_client_port port;
    /* Requests. */
    tw_packet *pending_head;  /* roots waiting for their turn, FIFO by links.next */
    tw_packet *pending_tail;
    bool registered;          /* the register's reply came: session and limits are known */
    bool shutdown;            /* tw_client_core_shutdown ran: every packet has completed */
    tw_packet_status evicted; /* ok: not evicted; else what every packet completes with */
    uint64_t session;
    uint32_t batch_body_max;                    /* from the register reply */
    uint32_t events_max[tw_operation_echo + 1]; /* per operation, at batch_body_max */
    bool inflight_active;     /* a request (or the register) is in flight */
    tw_packet *inflight;      /* its root; NULL for the register */
    uint64_t inflight_request;
    uint64_t request_last;    /* the last request number used (the register is 0) */
    uint32_t inflight_sends;  /* times the message in flight was sent */
    bool message_lent;        /* a write holds the message buffer */
    tw_header *message;       /* the request in flight, header then body: resent as is */
    uint8_t *reply;           /* an aligned copy of a reply's body, for the callbacks */
    /* The connection's bytes. */
    bool connected;           /* the reader takes the current connection's bytes */
    tw_frame_reader reader;
    uint8_t *receive_buffer;
} tw_client_core;

/* message_size_max rounded up to TW_CLIENT_BUFFER_ALIGN: one buffer's size. */
uint32_t tw_client_buffer_size(uint32_t message_size_max);

/* Allocates the message, receive and reply buffers (in that order, each asked for before
 * any failure is reported) and seals the register. tw_client_init_out_of_memory when one
 * is missing: nothing is left allocated and the core is zeroed. Makes no port call. */
tw_client_init_status tw_client_core_init(tw_client_core *core, const tw_client_core_options *options,
                                          const tw_client_port *port);
/* Frees the buffers. A zeroed core (one whose init failed) is fine too. Packets still
 * held are not completed: shut down first. */
void tw_client_core_deinit(tw_client_core *core);

/* Makes a packet the client's: status ok, links cleared, phase submitted. The owner calls
 * it when the user hands the packet over (tw_client_submit), before it is enqueued. */
void tw_client_core_packet_submitted(tw_packet *packet);

/* Takes a submitted packet: checks it (operation, data size, too much data, then an
 * eviction; a failed check completes it at once) and batches it into a waiting request or
 * queues it as a new one; a request may be sealed at once (port.message_ready). Only once
 * registered or evicted: before that the owner holds submitted packets, and the core asks
 * for them (port.submitted_take) when the register's reply comes. */
void tw_client_core_enqueue(tw_client_core *core, tw_packet *packet);
/* Each packet of a list linked by links.next, in order (the list may be NULL). */
void tw_client_core_enqueue_list(tw_client_core *core, tw_packet *list);

/* Seals the first pending request if nothing is in flight and the message buffer is free
 * (port.message_ready then). The owner calls it when it could send and nothing is in
 * flight, e.g. once a write has reported. */
void tw_client_core_send_next(tw_client_core *core);

/* The owner is about to write the message in flight (the first time or again): returns
 * it (header->size bytes) and lends the buffer until tw_client_core_message_written.
 * Counts the send. */
const tw_header *tw_client_core_message_send(tw_client_core *core);
/* The write of the lent message has reported (done or failed): the buffer is free. Seals
 * nothing by itself (tw_client_core_send_next does). */
void tw_client_core_message_written(tw_client_core *core);

/* A connection is open: the frame reader starts afresh and takes its bytes. */
void tw_client_core_connected(tw_client_core *core);
/* The connection is closing (the owner's reasons or the core's): no more of its bytes. */
void tw_client_core_disconnected(tw_client_core *core);
/* Where the connection's next bytes go: at most *size bytes into the returned space. */
uint8_t *tw_client_core_read_space(tw_client_core *core, uint32_t *size);
/* count bytes arrived in the space: each whole message is handled in order (a reply to
 * the request in flight, a stale duplicate ignored, an eviction). Malformed input, or a
 * message that cannot be right, calls port.connection_fail once, after the messages
 * before it; the rest of the connection's bytes are ignored. */
void tw_client_core_receive(tw_client_core *core, uint32_t count);

/* Completes every packet the core holds (in flight, pending) and each packet of submitted
 * (a list by links.next, phase submitted) with client_shutdown, after port.stop. Once. */
void tw_client_core_shutdown(tw_client_core *core, tw_packet *submitted);

/* Neither evicted nor shut down: the client still sends. */
bool tw_client_core_active(const tw_client_core *core);

#endif
