/* twin: the client: a thread-safe handle that batches packets into requests to the server
 * (<twin/server.h>), one request in flight, with retries, eviction and shutdown. The design
 * of TigerBeetle's tb_client in its first form ("logical batching"): only create operations
 * (and echo) are batched; a create packet whose last event is linked is never batched;
 * create results are sparse {index, result} pairs that the client hands to each packet with
 * the indexes rebased to that packet.
 *
 * Threads. tw_client_init spawns one IO thread, which runs a loop (<twin/loop.h>). Any
 * thread may call tw_client_submit, tw_client_completion_context and tw_client_deinit at
 * any time between init and deinit. Submit takes the handle's Locker (<twin/locker.h>),
 * pushes the packet on a queue and wakes the IO thread through the loop's async; the IO
 * thread checks the packet, batches it and sends it. Completion callbacks run on the IO
 * thread, one at a time, never with the Locker held.
 *
 * Life of a packet. The user fills five fields (user_data, operation, data, data_size,
 * user_tag) and submits it; the client owns it until its completion callback returns,
 * after which the packet (and its data) are the user's again, even inside the callback.
 * The data must stay unchanged while the client owns the packet (a retry sends it again).
 * Every submitted packet completes exactly once: with the results (status ok), or with a
 * status that says why not.
 *
 * When each status is produced (checked in this order when the IO thread takes a packet):
 *   invalid_operation   the operation is not create_accounts, create_transfers,
 *                       lookup_accounts, lookup_transfers or echo
 *   invalid_data_size   data_size is not a whole number of events (64-byte accounts,
 *                       80-byte transfers, 16-byte ids; echo takes any bytes)
 *   too_much_data       more events than one request may carry (tw_operation_events_max at
 *                       the batch size the server announced at registration, or the
 *                       client's message_size_max if smaller), so that the request and its
 *                       largest reply both fit one message
 *   client_evicted, client_release_too_low, client_release_too_high
 *                       the server evicted the session (the reason's status: release too
 *                       low or too high, or client_evicted for every other reason). Every
 *                       packet in flight, pending or submitted later completes so; the
 *                       client never sends again. Deinit is still needed.
 *   client_shutdown     tw_client_deinit was called before the packet completed
 *   ok                  the reply came: result points at result_size bytes (valid during the
 *                       callback only, 8-byte aligned; non-NULL even when result_size is 0)
 *                       and timestamp is the reply's (> 0). For creates: the failed events
 *                       of this packet, {index, result} ascending, indexes from 0 at this
 *                       packet's first event. For lookups: the objects found, in the order
 *                       asked. For echo: this packet's own bytes.
 * For every status but ok, result is NULL, result_size 0 and timestamp 0.
 *
 * Requests. Registration (request 0) comes first; packets submitted before its reply wait.
 * One request is in flight at a time; packets that come meanwhile wait in FIFO order, and a
 * packet joins the first waiting request of its operation that has room (batching): create
 * packets whose last event is not linked (empty ones too), and echo packets. Lookups, and
 * create packets that end inside an open linked chain, travel alone.
 *
 * Faults. A request with no reply within request_timeout_ns, and a connection that resets,
 * closes, fails to connect or sends a malformed or impossible message, are handled the same
 * way: the connection is closed; after a jittered exponential backoff (between
 * backoff_min_ns and backoff_max_ns, doubling per failure in a row) the client connects to
 * the next address of its list (round robin) and sends the same request again, with the
 * same request number and bytes, so that the server executes it at most once (a retry of
 * an executed request gets the cached reply). The client never gives up on its own: a
 * server that stays unreachable leaves packets waiting until deinit.
 *
 * Hazards, decided (TigerBeetle's notes list them for its own client):
 *   - Only operations whose results can be split per packet are batched (creates, echo);
 *     lookups never are.
 *   - Deinit owns the memory: the IO thread never frees the context. Deinit marks the handle
 *     dead under the Locker, wakes the IO thread, joins it (every outstanding packet has
 *     completed with client_shutdown by then) and only then frees the context, so no thread
 *     touches the handle or the context after deinit returns: the handle may be freed at once.
 *   - After an eviction the IO thread keeps running (completing later packets with the
 *     eviction's status) until deinit joins it: no thread is ever left unjoined.
 *   - Submit may be called from a completion callback (the packet waits for the next turn
 *     of the loop). Deinit from a callback would join its own thread: it returns
 *     tw_client_on_io_thread and changes nothing.
 *   - The client does not ping: a connection that stops delivering is noticed by the request
 *     timeout, and only while a request is in flight. */
#ifndef TWIN_CLIENT_H
#define TWIN_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <twin/locker.h>
#include <twin/loop.h>
#include <twin/proto.h>

/* Addresses in one client's list (TigerBeetle's replicas_max). */
#define TW_CLIENT_ADDRESSES_MAX 6u
/* The port when an address gives none: twin-server's default. */
#define TW_CLIENT_PORT_DEFAULT 3000u
#define TW_CLIENT_RELEASE_DEFAULT 1u
#define TW_CLIENT_REQUEST_TIMEOUT_NS_DEFAULT (2000u * 1000u * 1000u)
#define TW_CLIENT_BACKOFF_MIN_NS_DEFAULT (10u * 1000u * 1000u)
#define TW_CLIENT_BACKOFF_MAX_NS_DEFAULT (2000u * 1000u * 1000u)
/* The smallest message_size_max: a header and the largest event or result (a transfer). */
#define TW_CLIENT_MESSAGE_SIZE_MIN (TW_HEADER_SIZE + 80u)
/* The IO thread's stack. */
#define TW_CLIENT_STACK_SIZE (512u * 1024u)

/* Written into an initialised handle last, by init. */
#define TW_CLIENT_MAGIC 0x7477636c69656e74ull /* "twclient" */

typedef struct tw_client_context tw_client_context;

/* The handle: the user allocates it (static, stack or heap, zeroed or not) and keeps it at
 * one address from init until deinit returns. Its fields belong to the client. */
typedef struct tw_client {
    tw_locker locker;            /* guards context and the submitted queue */
    uint32_t reserved;
    uint64_t magic;              /* TW_CLIENT_MAGIC once init succeeded */
    tw_client_context *context;  /* NULL once deinit began */
} tw_client;

typedef enum tw_client_init_status {
    tw_client_init_ok = 0,
    tw_client_init_unexpected,             /* NULL handle or callback; an OS error with no name */
    tw_client_init_out_of_memory,          /* the client's own context or buffers */
    tw_client_init_address_invalid,        /* tw_client_addresses_parse says which rule */
    tw_client_init_address_limit_exceeded, /* more than TW_CLIENT_ADDRESSES_MAX addresses */
    tw_client_init_system_resources,       /* no thread, descriptor, ring or memory for
                                              the loop: free some, or raise the limits */
    tw_client_init_network_subsystem,      /* io_uring refused: the kernel has none, or a
                                              seccomp profile (a container's default) or
                                              the io_uring_disabled sysctl forbids it */
    tw_client_init_options_invalid,        /* tw_client_options_check says which and why */
} tw_client_init_status;

typedef enum tw_client_status {
    tw_client_ok = 0,
    /* NULL handle, a handle never initialised (or whose init failed), or deinit already
     * called: nothing was done. */
    tw_client_invalid = 1,
    /* tw_client_deinit from a completion callback (the IO thread would join itself):
     * nothing was done; deinit from another thread. */
    tw_client_on_io_thread = 2,
} tw_client_status;

typedef enum tw_packet_status {
    tw_packet_ok = 0,
    tw_packet_too_much_data = 1,
    tw_packet_client_evicted = 2,
    tw_packet_client_release_too_low = 3,
    tw_packet_client_release_too_high = 4,
    tw_packet_client_shutdown = 5,
    tw_packet_invalid_operation = 6,
    tw_packet_invalid_data_size = 7,
} tw_packet_status;

#define TW_PACKET_STATUS_COUNT 8u

typedef struct tw_packet tw_packet;

/* The client's bookkeeping inside a packet; the user need not initialise it. */
typedef struct tw_packet_links {
    tw_packet *next;        /* in the submitted or pending queue */
    tw_packet *batch_next;  /* the packets batched behind a root, in order */
    tw_packet *batch_tail;  /* root only */
    uint32_t batch_count;   /* root only: packets in its request (>= 1) */
    uint32_t batch_events;  /* root only: events in its request (bytes for echo) */
    uint32_t events;        /* this packet's events (bytes for echo) */
    uint8_t phase;
    bool batchable;
    uint8_t reserved[2];
} tw_packet_links;

struct tw_packet {
    void *user_data;
    const void *data;    /* data_size bytes of events; may be NULL when data_size is 0 */
    uint32_t data_size;
    uint16_t user_tag;
    uint8_t operation;   /* tw_operation */
    uint8_t status;      /* tw_packet_status, written before the completion callback */
    tw_packet_links links;
};

/* Runs on the IO thread. result is NULL unless packet->status is tw_packet_ok (see above). */
typedef void (*tw_client_completion_fn)(uintptr_t context, tw_packet *packet, uint64_t timestamp,
                                        const uint8_t *result, uint32_t result_size);

typedef struct tw_client_options {
    uint32_t release;            /* 0: TW_CLIENT_RELEASE_DEFAULT */
    bool batching_off;           /* every packet its own request (for measurements) */
    uint64_t request_timeout_ns; /* 0: TW_CLIENT_REQUEST_TIMEOUT_NS_DEFAULT */
    uint64_t backoff_min_ns;     /* 0: TW_CLIENT_BACKOFF_MIN_NS_DEFAULT */
    uint64_t backoff_max_ns;     /* 0: TW_CLIENT_BACKOFF_MAX_NS_DEFAULT; >= backoff_min_ns */
    /* The largest message the client sends or takes, TW_CLIENT_MESSAGE_SIZE_MIN ..
     * TW_MESSAGE_SIZE_MAX (0: the latter); three buffers of it are allocated at init. Batches
     * stay within both this and the server's announced batch size. */
    uint32_t message_size_max;
    tw_u128 id;                  /* the client's id; 0: a random one */
} tw_client_options;

const char *tw_client_init_status_name(tw_client_init_status status);
const char *tw_client_status_name(tw_client_status status);
const char *tw_packet_status_name(tw_packet_status status);

/* NULL when the options are valid, else a sentence naming the option and what is accepted.
 * options may be NULL (the defaults). */
const char *tw_client_options_check(const tw_client_options *options);

/* Parses an address list (TigerBeetle's rules): comma-separated, at most
 * TW_CLIENT_ADDRESSES_MAX (counted before anything is parsed: more is
 * address_limit_exceeded); each "IP:PORT", "IP" (port TW_CLIENT_PORT_DEFAULT) or "PORT"
 * (IP 127.0.0.1); IPv6 in brackets ("[::1]" or "[::1]:3000"); ports 1..65535. An empty
 * list or element, a bad IP or port, and an IPv6 address without brackets are
 * address_invalid. On ok, fills addresses (room for TW_CLIENT_ADDRESSES_MAX) and *count. */
tw_client_init_status tw_client_addresses_parse(const char *text, tw_address *addresses,
                                                uint32_t *count);

/* Initialises *client (whatever it held) and starts its IO thread; registration starts at
 * once. On any status but ok, nothing is left running or allocated and the handle is
 * invalid. options may be NULL. Every allocation and the thread are made here: a client
 * that started allocates nothing more (tests/client_init_sim_test.c checks both). */
tw_client_init_status tw_client_init(tw_client *client, tw_u128 cluster, const char *addresses,
                                     uintptr_t completion_context,
                                     tw_client_completion_fn completion,
                                     const tw_client_options *options);

/* Hands the packet to the client (it completes later, on the IO thread). */
tw_client_status tw_client_submit(tw_client *client, tw_packet *packet);

tw_client_status tw_client_completion_context(tw_client *client, uintptr_t *context);

/* Completes every outstanding packet with client_shutdown, stops and joins the IO thread,
 * frees everything. The handle is invalid afterwards (a second deinit returns invalid). */
tw_client_status tw_client_deinit(tw_client *client);

#endif
