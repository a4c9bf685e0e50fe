/* twin: the client (see include/twin/client.h for what it promises).
 *
 * Who touches what. The handle (tw_client) holds the Locker, which guards the context
 * pointer, the submitted queue and shutdown_requested. Everything else in the context
 * belongs to the IO thread, except what init writes before the thread starts and deinit
 * reads after joining it. Submits notify the loop's async while holding the Locker, and
 * deinit clears the context pointer under it: once the IO thread has seen the shutdown
 * (under the Locker), no notify can still be running, so tw_async_deinit never waits.
 *
 * A packet's phases: submitted (in the handle's queue) -> pending (a root in the pending
 * queue) or batched (behind a root) -> sent (its request is in flight) -> complete. A
 * root carries its request's totals; the request's body is the packets' data, in order.
 *
 * The connection: idle (no socket) -> connecting -> open -> closing (waiting for the
 * socket's callbacks) -> backoff (a timer) -> idle. The request timer runs while a request
 * is in flight on a connection being made or open; a failure of any kind closes the
 * connection and retries after the backoff on the next address. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/client.h>
#include <twin/os.h>
#include <twin/pcg.h>
#include <twin/reach.h>
#include <twin/tcp.h>

#include "lib/plant.h"

#define CONTEXT_MAGIC 0x7477636f6e746578ull /* "twcontex" */
#define CONTEXT_MAGIC_DEAD 0x646561642d637478ull
#define BUFFER_ALIGN 16u
#define ADDRESS_TEXT_MAX 64u
#define PORT_MAX 65535u
/* Backoff doubles per failure in a row, up to 2^BACKOFF_SHIFT_MAX times the minimum. */
#define BACKOFF_SHIFT_MAX 32u

enum packet_phase {
    phase_none = 0,
    phase_submitted,
    phase_pending,
    phase_batched,
    phase_sent,
    phase_complete,
};

typedef enum conn_state {
    conn_idle = 0,
    conn_connecting,
    conn_open,
    conn_closing,
    conn_backoff,
} conn_state;

typedef enum timer_kind {
    timer_none = 0, /* armed or not, its firing means nothing */
    timer_request,  /* a request in flight (or its connection being made) took too long */
    timer_backoff,  /* the pause before the next connection */
} timer_kind;

struct tw_client_context {
    uint64_t magic;
    tw_client *handle;
    /* Set at init, read-only afterwards. */
    tw_u128 cluster;
    tw_u128 id;
    uint32_t release;
    bool batching;
    uint64_t request_timeout_ns;
    uint64_t backoff_min_ns;
    uint64_t backoff_max_ns;
    uint32_t message_size_max;
    tw_address addresses[TW_CLIENT_ADDRESSES_MAX];
    uint32_t addresses_count;
    uintptr_t completion_context;
    tw_client_completion_fn completion;
    tw_loop *loop;
    tw_async async;
    tw_thread io_thread;

    /* Guarded by handle->locker. */
    tw_packet *submitted_head;
    tw_packet *submitted_tail;
    bool shutdown_requested;
    uint64_t io_thread_id; /* tw_thread_self of the IO thread, once it runs */

    /* The IO thread's. */
    tw_packet *pending_head;
    tw_packet *pending_tail;
    bool registered;
    bool stopping;
    tw_packet_status evicted; /* ok: not evicted */
    uint64_t session;
    uint32_t batch_body_max;                       /* from the register reply */
    uint32_t events_max[tw_operation_echo + 1];    /* per operation, at batch_body_max */
    bool inflight_active;    /* a request (or the register) is in flight */
    tw_packet *inflight;     /* its root; NULL for the register */
    uint64_t inflight_request;
    uint64_t request_last;   /* the last request number used (the register is 0) */
    uint32_t inflight_sends; /* times the message in flight was queued on a connection */
    tw_header *message;      /* the request in flight, header then body: resent as is */
    uint8_t *reply;          /* an aligned copy of the reply's body, for the callbacks */
    /* The connection. */
    conn_state conn;
    tw_tcp tcp;
    uint32_t conn_pending;   /* callbacks outstanding on the socket */
    bool sent_on_conn;       /* the message in flight was queued on this connection */
    bool write_busy;
    bool send_wanted;        /* queue the message once the write in progress is done */
    uint32_t address_index;
    uint32_t failures;       /* connection failures since the last reply */
    tw_frame_reader reader;
    uint8_t *receive_buffer;
    tw_write_queue queue;
    tw_write_request w_message;
    tw_completion c_async;
    tw_completion c_connect;
    tw_completion c_read;
    tw_completion c_close;
    tw_completion c_timer;
    tw_completion c_timer_cancel;
    timer_kind timer;
    tw_pcg32 random;         /* backoff jitter, seeded from tw_random_u64 */
};

/* ---- names and checks --------------------------------------------------------------- */

const char *tw_client_init_status_name(tw_client_init_status status) {
    switch (status) {
    case tw_client_init_ok: return "ok";
    case tw_client_init_unexpected: return "unexpected";
    case tw_client_init_out_of_memory: return "out_of_memory";
    case tw_client_init_address_invalid: return "address_invalid";
    case tw_client_init_address_limit_exceeded: return "address_limit_exceeded";
    case tw_client_init_system_resources: return "system_resources";
    case tw_client_init_network_subsystem: return "network_subsystem";
    case tw_client_init_options_invalid: return "options_invalid";
    }
    return "unknown";
}

const char *tw_client_status_name(tw_client_status status) {
    switch (status) {
    case tw_client_ok: return "ok";
    case tw_client_invalid: return "invalid";
    case tw_client_on_io_thread: return "on_io_thread";
    }
    return "unknown";
}

const char *tw_packet_status_name(tw_packet_status status) {
    switch (status) {
    case tw_packet_ok: return "ok";
    case tw_packet_too_much_data: return "too_much_data";
    case tw_packet_client_evicted: return "client_evicted";
    case tw_packet_client_release_too_low: return "client_release_too_low";
    case tw_packet_client_release_too_high: return "client_release_too_high";
    case tw_packet_client_shutdown: return "client_shutdown";
    case tw_packet_invalid_operation: return "invalid_operation";
    case tw_packet_invalid_data_size: return "invalid_data_size";
    }
    return "unknown";
}

const char *tw_client_options_check(const tw_client_options *options) {
    if (options == NULL) return NULL;
    if (options->message_size_max != 0 && (options->message_size_max < TW_CLIENT_MESSAGE_SIZE_MIN ||
                                           options->message_size_max > TW_MESSAGE_SIZE_MAX)) {
        return "message_size_max must be 0 (the default) or 208..1048576 bytes";
    }
    uint64_t min_ns = options->backoff_min_ns != 0 ? options->backoff_min_ns
                                                   : TW_CLIENT_BACKOFF_MIN_NS_DEFAULT;
    uint64_t max_ns = options->backoff_max_ns != 0 ? options->backoff_max_ns
                                                   : TW_CLIENT_BACKOFF_MAX_NS_DEFAULT;
    if (min_ns > max_ns) return "backoff_min_ns must not be above backoff_max_ns";
    return NULL;
}

/* ---- addresses ------------------------------------------------------------------------ */

static bool parse_port(const char *text, size_t length, uint16_t *port) {
    if (length == 0) return false;
    uint32_t value = 0;
    for (size_t i = 0; i < length; i++) {
        if (text[i] < '0' || text[i] > '9') return false;
        value = value * 10u + (uint32_t)(text[i] - '0');
        if (value > PORT_MAX) return false;
    }
    if (value == 0) return false;
    *port = (uint16_t)value;
    return true;
}

/* One element of the list: [IP][:PORT] by the rules in client.h. */
static bool parse_one(const char *text, size_t length, tw_address *address) {
    TW_ASSERT(text != NULL && address != NULL);
    if (length == 0 || length >= ADDRESS_TEXT_MAX) return false;
    /* The last of ':', '.' and ']' decides what the element is. */
    size_t last = length;
    for (size_t i = 0; i < length; i++) {
        if (text[i] == ':' || text[i] == '.' || text[i] == ']') last = i;
    }
    const char *host = text;
    size_t host_length = length;
    uint16_t port = TW_CLIENT_PORT_DEFAULT;
    if (last == length) { /* only a port */
        if (!parse_port(text, length, &port)) return false;
        host = "127.0.0.1";
        host_length = strlen(host);
    } else if (text[last] == ':') {
        if (!parse_port(text + last + 1, length - last - 1, &port)) return false;
        host_length = last;
    }
    /* Brackets exactly around an IPv6 host; an IPv4 host has no ':', '[' or ']'. */
    bool bracketed = host_length >= 2 && host[0] == '[' && host[host_length - 1] == ']';
    if (!bracketed && (host_length == 0 || memchr(host, ':', host_length) != NULL ||
                       memchr(host, '[', host_length) != NULL || memchr(host, ']', host_length) != NULL)) {
        return false; /* IPv6 without brackets, or stray brackets */
    }
    /* Back to "IP:PORT" or "[IPv6]:PORT" for tw_address_parse. */
    char buffer[ADDRESS_TEXT_MAX + 8];
    memcpy(buffer, host, host_length);
    int written = snprintf(buffer + host_length, sizeof(buffer) - host_length, ":%u", port);
    TW_ASSERT(written > 0 && (size_t)written < sizeof(buffer) - host_length);
    return tw_address_parse(buffer, address) == tw_loop_ok && address->family == (bracketed ? 6 : 4);
}

tw_client_init_status tw_client_addresses_parse(const char *text, tw_address *addresses,
                                                uint32_t *count) {
    TW_ASSERT(addresses != NULL && count != NULL);
    *count = 0;
    if (text == NULL) return tw_client_init_address_invalid;
    uint32_t elements = 1;
    for (const char *c = text; *c != '\0'; c++) elements += *c == ',';
    if (elements > TW_CLIENT_ADDRESSES_MAX) return tw_client_init_address_limit_exceeded;
    const char *start = text;
    for (uint32_t i = 0; i < elements; i++) {
        const char *end = strchr(start, ',');
        size_t length = end != NULL ? (size_t)(end - start) : strlen(start);
        if (!parse_one(start, length, &addresses[i])) {
            *count = 0;
            return tw_client_init_address_invalid;
        }
        start += length + 1;
    }
    *count = elements;
    TW_ASSERT(*count >= 1 && *count <= TW_CLIENT_ADDRESSES_MAX);
    return tw_client_init_ok;
}

/* ---- packets ---------------------------------------------------------------------------- */

static bool operation_allowed(uint8_t operation) {
    return operation >= tw_operation_create_accounts && operation <= tw_operation_echo;
}

static bool operation_is_create(tw_operation operation) {
    return operation == tw_operation_create_accounts || operation == tw_operation_create_transfers;
}

/* The flags of the packet's last event have the linked bit (creates only). */
static bool last_event_linked(const tw_packet *packet) {
    tw_operation operation = (tw_operation)packet->operation;
    TW_ASSERT(operation_is_create(operation));
    uint32_t event_size = tw_operation_event_size(operation);
    if (packet->data_size == 0) return false;
    TW_ASSERT(packet->data_size % event_size == 0 && packet->data != NULL);
    size_t offset = operation == tw_operation_create_accounts ? offsetof(tw_account, flags)
                                                              : offsetof(tw_transfer, flags);
    uint16_t flags = 0;
    memcpy(&flags, (const uint8_t *)packet->data + packet->data_size - event_size + offset,
           sizeof(flags));
    _Static_assert((unsigned)tw_account_linked == (unsigned)tw_transfer_linked, "one linked bit");
    return (flags & tw_account_linked) != 0;
}

static void list_check_root(const tw_packet *root) {
    TW_ASSERT(root->links.batch_count >= 1);
    TW_ASSERT((root->links.batch_next == NULL) == (root->links.batch_tail == NULL));
    TW_ASSERT(root->links.batch_next == NULL || root->links.batch_count > 1);
}

/* Completes one packet: writes its status and runs the callback (the packet is the user's
 * again once it returns). */
static void packet_complete(tw_client_context *ctx, tw_packet *packet, tw_packet_status status,
                            uint64_t timestamp, const uint8_t *result, uint32_t result_size) {
    TW_ASSERT(packet->links.phase != phase_complete && packet->links.phase != phase_none);
    TW_ASSERT((status == tw_packet_ok) == (result != NULL));
    TW_ASSERT(status == tw_packet_ok ? timestamp > 0 : timestamp == 0 && result_size == 0);
    packet->status = (uint8_t)status;
    packet->links.phase = phase_complete;
    packet->links.next = NULL;
    packet->links.batch_next = NULL;
    packet->links.batch_tail = NULL;
    ctx->completion(ctx->completion_context, packet, timestamp, result, result_size);
}

/* Completes a root and every packet batched behind it with one status. */
static void list_complete(tw_client_context *ctx, tw_packet *root, tw_packet_status status) {
    TW_ASSERT(status != tw_packet_ok);
    list_check_root(root);
    uint32_t count_expected = root->links.batch_count; /* before a callback reuses root */
    uint32_t count = 0;
    for (tw_packet *p = root; p != NULL;) {
        tw_packet *next = p->links.batch_next; /* read first: the callback may reuse p */
        packet_complete(ctx, p, status, 0, NULL, 0);
        count++;
        p = next;
    }
    TW_ASSERT(count == count_expected);
}

static tw_packet_status eviction_status(uint8_t reason) {
    switch ((tw_eviction_reason)reason) {
    case tw_eviction_client_release_too_low: return tw_packet_client_release_too_low;
    case tw_eviction_client_release_too_high: return tw_packet_client_release_too_high;
    case tw_eviction_none:
    case tw_eviction_no_session:
    case tw_eviction_too_many_clients:
    case tw_eviction_protocol_violation: break;
    }
    return tw_packet_client_evicted;
}

/* ---- the submitted queue (under the Locker) ------------------------------------------------ */

/* Takes every submitted packet, in order; with shutdown, also says whether deinit began. */
static tw_packet *submitted_take(tw_client_context *ctx, bool *shutdown) {
    tw_locker_lock(&ctx->handle->locker);
    tw_packet *all = ctx->submitted_head;
    ctx->submitted_head = NULL;
    ctx->submitted_tail = NULL;
    if (shutdown != NULL) *shutdown = ctx->shutdown_requested;
    tw_locker_unlock(&ctx->handle->locker);
    return all;
}

/* ---- the connection ------------------------------------------------------------------------ */

static void pump(tw_client_context *ctx);
static void pending_send_next(tw_client_context *ctx);
static void conn_fail(tw_client_context *ctx);
static void read_start(tw_client_context *ctx);

static tw_action timer_fired(void *userdata, tw_loop *loop, tw_completion *completion,
                             tw_result result) {
    (void)loop;
    tw_client_context *ctx = userdata;
    TW_ASSERT(completion == &ctx->c_timer);
    if (result.error == tw_loop_canceled) return tw_disarm;
    TW_ASSERT(result.error == tw_loop_ok);
    timer_kind kind = ctx->timer;
    ctx->timer = timer_none;
    if (kind == timer_request) {
        TW_REACHED(tw_reach_client_request_timeout);
        TW_ASSERT(ctx->inflight_active);
        TW_ASSERT(ctx->conn == conn_connecting || ctx->conn == conn_open);
        conn_fail(ctx);
    } else if (kind == timer_backoff) {
        TW_ASSERT(ctx->conn == conn_backoff);
        ctx->conn = conn_idle;
        pump(ctx);
    }
    return tw_disarm;
}

static void timer_arm(tw_client_context *ctx, timer_kind kind, uint64_t timeout_ns) {
    TW_ASSERT(kind != timer_none && !ctx->stopping && ctx->evicted == tw_packet_ok);
    ctx->timer = kind;
    tw_loop_timer_reset(ctx->loop, &ctx->c_timer, timeout_ns, ctx, timer_fired);
}

static tw_action timer_canceled(void *userdata, tw_loop *loop, tw_completion *completion,
                                tw_result result) {
    (void)userdata;
    (void)loop;
    (void)completion;
    TW_ASSERT(result.error == tw_loop_ok || result.error == tw_loop_not_found);
    return tw_disarm;
}

/* For good: eviction or shutdown. A backoff in progress ends here (no next connection). */
static void timer_stop(tw_client_context *ctx) {
    TW_ASSERT(ctx->stopping || ctx->evicted != tw_packet_ok);
    if (ctx->conn == conn_backoff) {
        TW_REACHED(tw_reach_client_backoff_canceled);
        ctx->conn = conn_idle;
    }
    ctx->timer = timer_none;
    if (tw_completion_active(&ctx->c_timer) && !tw_completion_active(&ctx->c_timer_cancel)) {
        tw_loop_cancel(ctx->loop, &ctx->c_timer_cancel, &ctx->c_timer, ctx, timer_canceled);
    }
}

/* Jittered exponential backoff: min + uniform[0, min(max - min, min * 2^failures)]. */
static uint64_t backoff_ns(tw_client_context *ctx) {
    TW_ASSERT(ctx->failures >= 1);
    TW_ASSERT(ctx->backoff_min_ns <= ctx->backoff_max_ns);
    uint32_t shift = ctx->failures < BACKOFF_SHIFT_MAX ? ctx->failures : BACKOFF_SHIFT_MAX;
    uint64_t span_ns = ctx->backoff_max_ns - ctx->backoff_min_ns;
    uint64_t base_ns = ctx->backoff_min_ns > 0 ? ctx->backoff_min_ns : 1;
    if (base_ns <= (span_ns >> shift)) span_ns = base_ns << shift;
    uint64_t jitter_ns = span_ns == UINT64_MAX ? tw_pcg32_bounded64(&ctx->random, UINT64_MAX)
                                               : tw_pcg32_bounded64(&ctx->random, span_ns + 1);
    return ctx->backoff_min_ns + jitter_ns;
}

/* Every callback on the socket has run: the connection is gone. */
static void conn_settled(tw_client_context *ctx) {
    TW_ASSERT(ctx->conn == conn_closing);
    if (ctx->conn_pending != 0) return;
    TW_ASSERT(!ctx->write_busy);
    if (ctx->stopping || ctx->evicted != tw_packet_ok) {
        ctx->conn = conn_idle; /* and stays so */
        return;
    }
    ctx->conn = conn_backoff;
    timer_arm(ctx, timer_backoff, backoff_ns(ctx));
}

static tw_action closed(void *userdata, tw_loop *loop, tw_completion *completion, tw_result result) {
    (void)loop;
    (void)result; /* closed either way */
    tw_client_context *ctx = userdata;
    TW_ASSERT(completion == &ctx->c_close && ctx->conn_pending > 0);
    ctx->conn_pending--;
    conn_settled(ctx);
    return tw_disarm;
}

/* Closes the socket; its pending connect, read and write complete (canceled) first. */
static void conn_close(tw_client_context *ctx) {
    TW_ASSERT(ctx->conn == conn_connecting || ctx->conn == conn_open);
    ctx->conn = conn_closing;
    ctx->send_wanted = false;
    /* One message at a time: nothing ever waits behind the one in flight. */
    TW_ASSERT(tw_write_queue_take_waiting(&ctx->queue) == NULL);
    ctx->conn_pending++;
    tw_tcp_close(ctx->loop, &ctx->c_close, ctx->tcp, ctx, closed);
}

/* Any failure of the connection or of the request on it: close, back off, next address,
 * the same message again. */
static void conn_fail(tw_client_context *ctx) {
    TW_ASSERT(ctx->conn == conn_connecting || ctx->conn == conn_open);
    ctx->failures++;
    ctx->address_index = (ctx->address_index + 1) % ctx->addresses_count;
    if (ctx->timer == timer_request) ctx->timer = timer_none;
    conn_close(ctx);
}

static tw_action written(void *userdata, tw_loop *loop, tw_completion *completion, tw_result result) {
    (void)loop;
    tw_client_context *ctx = userdata;
    TW_ASSERT(tw_write_request_of(completion) == &ctx->w_message);
    TW_ASSERT(ctx->write_busy && ctx->conn_pending > 0);
    ctx->write_busy = false;
    ctx->conn_pending--;
    if (ctx->conn != conn_open) {
        if (ctx->conn == conn_closing) conn_settled(ctx);
        return tw_disarm;
    }
    if (result.error != tw_loop_ok) {
        conn_fail(ctx);
        return tw_disarm;
    }
    /* The message buffer is free again: the request it held may be resent, or the next one
     * (held back while the write was busy) sealed into it. */
    ctx->send_wanted = false;
    pump(ctx);
    return tw_disarm;
}

static void message_queue(tw_client_context *ctx) {
    TW_ASSERT(ctx->conn == conn_open && ctx->inflight_active && !ctx->sent_on_conn);
    TW_ASSERT(ctx->message->size >= TW_HEADER_SIZE && ctx->message->size <= ctx->message_size_max);
    if (ctx->write_busy) { /* the previous message's write has not reported yet */
        ctx->send_wanted = true;
        return;
    }
    if (ctx->inflight_sends > 0) TW_REACHED(tw_reach_client_request_resent);
    if (ctx->inflight_sends > 0 && ctx->inflight != NULL &&
        TW_PLANTED(tw_plant_client_retry_new_number)) {
        ctx->message->request = ++ctx->request_last;
        ctx->inflight_request = ctx->request_last;
        tw_header_seal_header(ctx->message);
    }
    ctx->inflight_sends++;
    ctx->sent_on_conn = true;
    ctx->write_busy = true;
    ctx->conn_pending++;
    timer_arm(ctx, timer_request, ctx->request_timeout_ns);
    tw_tcp_queue_write(ctx->loop, &ctx->queue, &ctx->w_message, ctx->tcp, ctx->message,
                       ctx->message->size, ctx, written);
}

static tw_action connected(void *userdata, tw_loop *loop, tw_completion *completion,
                           tw_result result) {
    (void)loop;
    tw_client_context *ctx = userdata;
    TW_ASSERT(completion == &ctx->c_connect && ctx->conn_pending > 0);
    ctx->conn_pending--;
    if (ctx->conn != conn_connecting) {
        TW_ASSERT(ctx->conn == conn_closing);
        conn_settled(ctx);
        return tw_disarm;
    }
    if (result.error != tw_loop_ok) {
        TW_REACHED(tw_reach_client_connect_failed);
        conn_fail(ctx);
        return tw_disarm;
    }
    ctx->conn = conn_open;
    ctx->queue = (tw_write_queue){0};
    tw_frame_reader_init(&ctx->reader, ctx->receive_buffer, ctx->message_size_max, ctx->cluster);
    (void)tw_tcp_set_no_delay(ctx->loop, ctx->tcp, true);
    read_start(ctx);
    pump(ctx);
    return tw_disarm;
}

static void conn_start(tw_client_context *ctx) {
    TW_ASSERT(ctx->conn == conn_idle && ctx->conn_pending == 0);
    TW_ASSERT(ctx->address_index < ctx->addresses_count);
    const tw_address *address = &ctx->addresses[ctx->address_index];
    if (tw_tcp_open(ctx->loop, address, &ctx->tcp) != tw_loop_ok) {
        /* Out of descriptors: try again after the backoff, as after a failed connect. */
        TW_REACHED(tw_reach_client_socket_failed);
        ctx->failures++;
        ctx->conn = conn_backoff;
        timer_arm(ctx, timer_backoff, backoff_ns(ctx));
        return;
    }
    ctx->conn = conn_connecting;
    ctx->sent_on_conn = false;
    ctx->conn_pending++;
    timer_arm(ctx, timer_request, ctx->request_timeout_ns);
    tw_tcp_connect(ctx->loop, &ctx->c_connect, ctx->tcp, address, ctx, connected);
}

/* What the connection should do next for the request in flight. */
static void pump(tw_client_context *ctx) {
    if (ctx->stopping || ctx->evicted != tw_packet_ok) return;
    if (!ctx->inflight_active) {
        pending_send_next(ctx); /* which comes back here once it has sealed a message */
        return;
    }
    switch (ctx->conn) {
    case conn_idle: conn_start(ctx); return;
    case conn_open:
        if (!ctx->sent_on_conn) message_queue(ctx);
        return;
    case conn_connecting:
    case conn_closing:
    case conn_backoff: return; /* the connection's own callbacks come back here */
    }
}

/* ---- requests ------------------------------------------------------------------------------- */

static void message_seal(tw_client_context *ctx, uint64_t request, tw_command command,
                         tw_operation operation, uint32_t body_size) {
    TW_ASSERT(body_size <= ctx->message_size_max - TW_HEADER_SIZE);
    TW_ASSERT(command == tw_command_register ? request == 0 : request > 0);
    *ctx->message = (tw_header){
        .cluster = ctx->cluster,
        .client = ctx->id,
        .session = command == tw_command_register ? 0 : ctx->session,
        .request = request,
        .size = TW_HEADER_SIZE + body_size,
        .release = ctx->release,
        .command = (uint8_t)command,
        .operation = (uint8_t)operation,
    };
    tw_header_seal(ctx->message, ctx->message + 1);
    ctx->inflight_request = request;
    ctx->inflight_active = true;
    ctx->inflight_sends = 0;
    ctx->sent_on_conn = false;
}

/* Sends a root and its batch as the next request. */
static void request_send(tw_client_context *ctx, tw_packet *root) {
    TW_ASSERT(ctx->registered && !ctx->inflight_active && ctx->evicted == tw_packet_ok);
    TW_ASSERT(root->links.phase == phase_pending);
    list_check_root(root);
    uint8_t *body = (uint8_t *)(ctx->message + 1);
    uint32_t body_size = 0;
    uint32_t count = 0;
    for (tw_packet *p = root; p != NULL; p = p->links.batch_next) {
        TW_ASSERT(p->operation == root->operation);
        TW_ASSERT(p == root ? p->links.phase == phase_pending : p->links.phase == phase_batched);
        TW_ASSERT(body_size + p->data_size <= ctx->batch_body_max);
        if (p->data_size > 0) memcpy(body + body_size, p->data, p->data_size);
        body_size += p->data_size;
        p->links.phase = phase_sent;
        count++;
    }
    TW_ASSERT(count == root->links.batch_count);
    uint64_t request = ctx->request_last + 1;
    TW_ASSERT(request > ctx->request_last); /* strictly increasing, never reused */
    ctx->request_last = request;
    ctx->inflight = root;
    message_seal(ctx, request, tw_command_request, (tw_operation)root->operation, body_size);
    pump(ctx);
}

/* The next pending root, if nothing is in flight and the message buffer is free: a reply can
 * be read before its request's write reports (the completions come in either order), and
 * sealing the next request then would overwrite the bytes still being written. written()
 * calls pump(), which comes back here. */
static void pending_send_next(tw_client_context *ctx) {
    if (ctx->inflight_active || ctx->write_busy || ctx->pending_head == NULL) return;
    tw_packet *root = ctx->pending_head;
    ctx->pending_head = root->links.next;
    if (ctx->pending_head == NULL) ctx->pending_tail = NULL;
    root->links.next = NULL;
    request_send(ctx, root);
}

/* A5's order: operation, data size, too much data, then the client's state. */
static tw_packet_status packet_check(const tw_client_context *ctx, tw_packet *packet) {
    TW_ASSERT(ctx->registered || ctx->evicted != tw_packet_ok);
    if (!operation_allowed(packet->operation)) return tw_packet_invalid_operation;
    tw_operation operation = (tw_operation)packet->operation;
    uint32_t event_size = tw_operation_event_size(operation);
    if (event_size != 0 && packet->data_size % event_size != 0) return tw_packet_invalid_data_size;
    if (packet->data_size > 0 && packet->data == NULL) return tw_packet_invalid_data_size;
    packet->links.events = event_size == 0 ? packet->data_size : packet->data_size / event_size;
    /* Before registration ends in an eviction there is no batch size to check against. */
    if (ctx->registered && packet->links.events > ctx->events_max[operation]) {
        return tw_packet_too_much_data;
    }
    return ctx->evicted;
}

/* A submitted packet joins a waiting request of its operation, or waits as a new one. */
static void packet_enqueue(tw_client_context *ctx, tw_packet *packet) {
    TW_ASSERT(packet->links.phase == phase_submitted && !ctx->stopping);
    tw_packet_status status = packet_check(ctx, packet);
    if (status != tw_packet_ok) {
        packet_complete(ctx, packet, status, 0, NULL, 0);
        return;
    }
    TW_ASSERT(ctx->registered);
    tw_operation operation = (tw_operation)packet->operation;
    packet->links.batchable =
        ctx->batching && (operation == tw_operation_echo ||
                          (operation_is_create(operation) && !last_event_linked(packet)));
    if (packet->links.batchable) {
        for (tw_packet *root = ctx->pending_head; root != NULL; root = root->links.next) {
            TW_ASSERT(root->links.phase == phase_pending);
            if (root->operation != packet->operation || !root->links.batchable) continue;
            if (TW_PLANTED(tw_plant_client_batch_full_not_fits)) {
                if (root->links.batch_events >= ctx->events_max[operation]) continue;
            } else if (root->links.batch_events + packet->links.events > ctx->events_max[operation]) {
                continue;
            }
            TW_REACHED(tw_reach_client_packet_batched);
            packet->links.phase = phase_batched;
            if (root->links.batch_tail != NULL) root->links.batch_tail->links.batch_next = packet;
            else root->links.batch_next = packet;
            root->links.batch_tail = packet;
            root->links.batch_count++;
            root->links.batch_events += packet->links.events;
            list_check_root(root);
            return;
        }
    }
    packet->links.phase = phase_pending;
    packet->links.batch_count = 1;
    packet->links.batch_events = packet->links.events;
    if (ctx->pending_tail != NULL) ctx->pending_tail->links.next = packet;
    else ctx->pending_head = packet;
    ctx->pending_tail = packet;
    pending_send_next(ctx);
}

static void submitted_enqueue_all(tw_client_context *ctx, tw_packet *list) {
    while (list != NULL && !ctx->stopping) {
        tw_packet *next = list->links.next;
        list->links.next = NULL;
        packet_enqueue(ctx, list);
        list = next;
    }
    TW_ASSERT(list == NULL);
}

/* ---- replies ---------------------------------------------------------------------------------- */

/* Creates: sparse results, ascending, each naming an event of the request. */
static bool create_results_valid(const tw_client_context *ctx, uint32_t body_size,
                                 uint32_t events) {
    if (body_size % sizeof(tw_create_result) != 0) return false;
    uint32_t count = body_size / (uint32_t)sizeof(tw_create_result);
    if (count > events) return false;
    const tw_create_result *results = (const tw_create_result *)(const void *)ctx->reply;
    for (uint32_t i = 0; i < count; i++) {
        if (results[i].index >= events) return false;
        if (i > 0 && results[i].index <= results[i - 1].index) return false;
    }
    return true;
}

/* Hands each packet of the finished request its own results. */
static void results_deliver(tw_client_context *ctx, tw_packet *root, uint64_t timestamp,
                            uint32_t body_size) {
    list_check_root(root);
    TW_ASSERT(timestamp > 0);
    /* Read before any callback: a completed packet is the user's, who may submit it again
     * (rewriting its links) while the rest of the batch is still being delivered. */
    tw_operation operation = (tw_operation)root->operation;
    uint32_t batch_events = root->links.batch_events;
    if (operation == tw_operation_lookup_accounts || operation == tw_operation_lookup_transfers) {
        TW_ASSERT(root->links.batch_count == 1);
        packet_complete(ctx, root, tw_packet_ok, timestamp, ctx->reply, body_size);
        return;
    }
    uint32_t offset = 0; /* events (bytes for echo) of the packets before this one */
    uint32_t taken = 0;  /* results (bytes for echo) handed out */
    tw_create_result *results = (tw_create_result *)(void *)ctx->reply;
    uint32_t results_count = body_size / (uint32_t)sizeof(tw_create_result);
    for (tw_packet *p = root; p != NULL;) {
        /* Read first: the callback may reuse p. */
        tw_packet *next = p->links.batch_next;
        uint32_t events = p->links.events;
        TW_ASSERT(p->links.phase == phase_sent);
        if (operation == tw_operation_echo) {
            TW_ASSERT(offset + events <= body_size);
            packet_complete(ctx, p, tw_packet_ok, timestamp, ctx->reply + offset, events);
            taken += events;
        } else {
            uint32_t first = taken;
            while (taken < results_count && results[taken].index < offset + events) {
                TW_ASSERT(results[taken].index >= offset);
                if (!TW_PLANTED(tw_plant_client_demux_no_rebase)) results[taken].index -= offset;
                taken++;
            }
            packet_complete(ctx, p, tw_packet_ok, timestamp, (const uint8_t *)&results[first],
                            (taken - first) * (uint32_t)sizeof(tw_create_result));
        }
        offset += events;
        p = next;
    }
    TW_ASSERT(offset == batch_events);
    TW_ASSERT(taken == (operation == tw_operation_echo ? body_size : results_count));
}

/* A reply to the request in flight; false when it cannot be right (the connection is
 * then dropped, as for a malformed message). */
static bool on_reply(tw_client_context *ctx, const tw_header *reply, const uint8_t *body) {
    TW_ASSERT(ctx->inflight_active && reply->request == ctx->inflight_request);
    uint32_t body_size = reply->size - TW_HEADER_SIZE;
    if (ctx->inflight == NULL) { /* the register */
        uint32_t body_max = ctx->message_size_max - TW_HEADER_SIZE;
        if (reply->operation != tw_operation_none || body_size != 0 || reply->session == 0 ||
            reply->batch_size_max < TW_CLIENT_MESSAGE_SIZE_MIN - TW_HEADER_SIZE) {
            return false;
        }
        ctx->session = reply->session;
        ctx->batch_body_max = reply->batch_size_max < body_max ? reply->batch_size_max : body_max;
        for (uint32_t op = tw_operation_create_accounts; op <= tw_operation_echo; op++) {
            ctx->events_max[op] = tw_operation_events_max((tw_operation)op,
                                                          ctx->batch_body_max + TW_HEADER_SIZE);
            TW_ASSERT(ctx->events_max[op] >= 1);
        }
        ctx->registered = true;
        ctx->inflight_active = false;
        ctx->failures = 0;
        ctx->timer = timer_none;
        submitted_enqueue_all(ctx, submitted_take(ctx, NULL));
        return true;
    }
    tw_packet *root = ctx->inflight;
    tw_operation operation = (tw_operation)root->operation;
    uint32_t events = root->links.batch_events;
    if (reply->operation != root->operation || reply->timestamp == 0) return false;
    memcpy(ctx->reply, body, body_size); /* aligned, and ours to rebase in place */
    bool valid = false;
    switch (operation) {
    case tw_operation_create_accounts:
    case tw_operation_create_transfers: valid = create_results_valid(ctx, body_size, events); break;
    case tw_operation_lookup_accounts:
    case tw_operation_lookup_transfers: {
        uint32_t result_size = tw_operation_result_size(operation);
        valid = body_size % result_size == 0 && body_size / result_size <= events;
        break;
    }
    case tw_operation_echo: valid = body_size == events; break;
    case tw_operation_none: break;
    }
    if (!valid) return false;
    ctx->inflight = NULL;
    ctx->inflight_active = false;
    ctx->failures = 0;
    ctx->timer = timer_none;
    /* Start the next request before the callbacks of this one (A8): less waiting. */
    pending_send_next(ctx);
    results_deliver(ctx, root, reply->timestamp, body_size);
    return true;
}

/* A request (in flight or pending) of an evicted client: its root and every packet batched
 * behind it complete with the eviction's status. */
static void evicted_complete(tw_client_context *ctx, tw_packet *root) {
    TW_ASSERT(ctx->evicted != tw_packet_ok);
    if (TW_PLANTED(tw_plant_client_eviction_drops_batched)) {
        packet_complete(ctx, root, ctx->evicted, 0, NULL, 0); /* the batch behind it is lost */
        return;
    }
    list_complete(ctx, root, ctx->evicted);
}

/* Evicted: every packet, now and later, completes with the reason's status. */
static void on_eviction(tw_client_context *ctx, uint8_t reason) {
    TW_ASSERT(ctx->evicted == tw_packet_ok && !ctx->stopping);
    ctx->evicted = eviction_status(reason);
    TW_ASSERT(ctx->evicted != tw_packet_ok);
    timer_stop(ctx);
    if (ctx->conn == conn_connecting || ctx->conn == conn_open) conn_close(ctx);
    tw_packet *inflight = ctx->inflight;
    if (inflight != NULL) TW_REACHED(tw_reach_client_evicted_inflight);
    if (ctx->pending_head != NULL) TW_REACHED(tw_reach_client_evicted_pending);
    ctx->inflight = NULL;
    ctx->inflight_active = false;
    if (inflight != NULL) evicted_complete(ctx, inflight);
    if (!TW_PLANTED(tw_plant_client_eviction_forgets_pending)) {
        while (ctx->pending_head != NULL) {
            tw_packet *root = ctx->pending_head;
            ctx->pending_head = root->links.next;
            if (ctx->pending_head == NULL) ctx->pending_tail = NULL;
            root->links.next = NULL;
            evicted_complete(ctx, root);
        }
    }
    submitted_enqueue_all(ctx, submitted_take(ctx, NULL));
}

static void on_message(void *context, const tw_header *header, const uint8_t *body) {
    tw_client_context *ctx = context;
    TW_ASSERT(header->size >= TW_HEADER_SIZE && header->size <= ctx->message_size_max);
    /* An earlier message of this read closed the connection, or ended the client. */
    if (ctx->conn != conn_open || ctx->evicted != tw_packet_ok || ctx->stopping) return;
    if (header->client.low != ctx->id.low || header->client.high != ctx->id.high) return;
    switch ((tw_command)header->command) {
    case tw_command_eviction: on_eviction(ctx, header->eviction_reason); return;
    case tw_command_pong: return; /* the client does not ping */
    case tw_command_reply:
        /* A stale duplicate (an older request, or nothing in flight) is ignored. */
        if (!ctx->inflight_active || header->request < ctx->inflight_request) return;
        if (header->request == ctx->inflight_request && on_reply(ctx, header, body)) return;
        break; /* a reply to a request never sent, or one that cannot be right */
    case tw_command_none:
    case tw_command_register:
    case tw_command_request:
    case tw_command_ping: break; /* a server never sends these */
    }
    conn_fail(ctx);
}

static tw_action read_done(void *userdata, tw_loop *loop, tw_completion *completion,
                           tw_result result) {
    (void)loop;
    tw_client_context *ctx = userdata;
    TW_ASSERT(completion == &ctx->c_read && ctx->conn_pending > 0);
    ctx->conn_pending--;
    if (ctx->conn != conn_open) {
        if (ctx->conn == conn_closing) conn_settled(ctx);
        return tw_disarm;
    }
    if (result.error != tw_loop_ok) {
        conn_fail(ctx);
        return tw_disarm;
    }
    tw_proto_error error =
        tw_frame_reader_commit(&ctx->reader, (uint32_t)result.value, on_message, ctx);
    if (ctx->conn != conn_open) return tw_disarm; /* a message closed it */
    if (error != tw_proto_ok) {
        conn_fail(ctx);
        return tw_disarm;
    }
    read_start(ctx);
    return tw_disarm;
}

static void read_start(tw_client_context *ctx) {
    TW_ASSERT(ctx->conn == conn_open);
    uint32_t room = 0;
    uint8_t *space = tw_frame_reader_space(&ctx->reader, &room);
    TW_ASSERT(room > 0);
    ctx->conn_pending++;
    tw_tcp_read(ctx->loop, &ctx->c_read, ctx->tcp, space, room, ctx, read_done);
}

/* ---- the IO thread ------------------------------------------------------------------------------ */

/* Deinit: every packet the client holds completes with client_shutdown. */
static void shutdown_all(tw_client_context *ctx, tw_packet *submitted) {
    TW_ASSERT(!ctx->stopping);
    ctx->stopping = true;
    timer_stop(ctx);
    if (ctx->conn == conn_connecting || ctx->conn == conn_open) conn_close(ctx);
    tw_packet *inflight = ctx->inflight;
    ctx->inflight = NULL;
    ctx->inflight_active = false;
    if (inflight != NULL) list_complete(ctx, inflight, tw_packet_client_shutdown);
    while (ctx->pending_head != NULL) {
        tw_packet *root = ctx->pending_head;
        ctx->pending_head = root->links.next;
        if (ctx->pending_head == NULL) ctx->pending_tail = NULL;
        root->links.next = NULL;
        list_complete(ctx, root, tw_packet_client_shutdown);
    }
    while (submitted != NULL) {
        tw_packet *next = submitted->links.next;
        TW_ASSERT(submitted->links.phase == phase_submitted);
        packet_complete(ctx, submitted, tw_packet_client_shutdown, 0, NULL, 0);
        submitted = next;
    }
}

static tw_action async_fired(void *userdata, tw_loop *loop, tw_completion *completion,
                             tw_result result) {
    (void)loop;
    tw_client_context *ctx = userdata;
    TW_ASSERT(completion == &ctx->c_async && result.error == tw_loop_ok);
    TW_ASSERT(!ctx->stopping);
    /* Before registration the packets wait (no batch size yet), unless evicted already. */
    bool shutdown = false;
    tw_locker_lock(&ctx->handle->locker);
    shutdown = ctx->shutdown_requested;
    tw_packet *list = NULL;
    if (shutdown || ctx->registered || ctx->evicted != tw_packet_ok) {
        list = ctx->submitted_head;
        ctx->submitted_head = NULL;
        ctx->submitted_tail = NULL;
    } else if (ctx->submitted_head != NULL) {
        TW_REACHED(tw_reach_client_waits_for_register);
    }
    tw_locker_unlock(&ctx->handle->locker);
    if (shutdown) {
        shutdown_all(ctx, list);
        return tw_disarm; /* the loop runs out once the connection and timer are done */
    }
    submitted_enqueue_all(ctx, list);
    return tw_rearm;
}

static void io_main(void *arg) {
    tw_client_context *ctx = arg;
    TW_ASSERT(ctx->magic == CONTEXT_MAGIC && !ctx->inflight_active);
    tw_locker_lock(&ctx->handle->locker);
    ctx->io_thread_id = tw_thread_self().handle;
    tw_locker_unlock(&ctx->handle->locker);
    message_seal(ctx, 0, tw_command_register, tw_operation_none, 0);
    tw_async_wait(ctx->loop, &ctx->async, &ctx->c_async, ctx, async_fired);
    pump(ctx);
    TW_ASSERT(tw_loop_run(ctx->loop, tw_run_until_done) == tw_loop_ok);
    /* Only deinit ends the loop: everything has completed and closed. */
    TW_ASSERT(ctx->stopping && ctx->conn == conn_idle && ctx->conn_pending == 0);
    TW_ASSERT(ctx->pending_head == NULL && ctx->inflight == NULL);
    tw_async_deinit(&ctx->async);
}

/* ---- the handle ---------------------------------------------------------------------------------- */

static void context_free(tw_client_context *ctx) {
    if (ctx->loop != NULL) tw_loop_deinit(ctx->loop);
    tw_free(ctx->message);
    tw_free(ctx->receive_buffer);
    tw_free(ctx->reply);
    ctx->magic = CONTEXT_MAGIC_DEAD;
    tw_free(ctx);
}

static tw_u128 random_id(void) {
    tw_u128 id = {0};
    while (id.low == 0 && id.high == 0) id = (tw_u128){.low = tw_random_u64(), .high = tw_random_u64()};
    return id;
}

tw_client_init_status tw_client_init(tw_client *client, tw_u128 cluster, const char *addresses,
                                     uintptr_t completion_context,
                                     tw_client_completion_fn completion,
                                     const tw_client_options *options) {
    if (client == NULL || completion == NULL) return tw_client_init_unexpected;
    memset(client, 0, sizeof(*client));
    tw_locker_init(&client->locker);
    if (tw_client_options_check(options) != NULL) return tw_client_init_options_invalid;
    tw_client_options o = options != NULL ? *options : (tw_client_options){0};
    tw_address parsed[TW_CLIENT_ADDRESSES_MAX];
    uint32_t parsed_count = 0;
    tw_client_init_status status = tw_client_addresses_parse(addresses, parsed, &parsed_count);
    if (status != tw_client_init_ok) return status;

    tw_client_context *ctx = tw_allocate(sizeof(*ctx));
    if (ctx == NULL) {
        TW_REACHED(tw_reach_client_init_out_of_memory);
        return tw_client_init_out_of_memory;
    }
    ctx->magic = CONTEXT_MAGIC;
    ctx->handle = client;
    ctx->cluster = cluster;
    ctx->id = o.id.low != 0 || o.id.high != 0 ? o.id : random_id();
    ctx->release = o.release != 0 ? o.release : TW_CLIENT_RELEASE_DEFAULT;
    ctx->batching = !o.batching_off;
    ctx->request_timeout_ns = o.request_timeout_ns != 0 ? o.request_timeout_ns
                                                        : TW_CLIENT_REQUEST_TIMEOUT_NS_DEFAULT;
    ctx->backoff_min_ns = o.backoff_min_ns != 0 ? o.backoff_min_ns : TW_CLIENT_BACKOFF_MIN_NS_DEFAULT;
    ctx->backoff_max_ns = o.backoff_max_ns != 0 ? o.backoff_max_ns : TW_CLIENT_BACKOFF_MAX_NS_DEFAULT;
    ctx->message_size_max = o.message_size_max != 0 ? o.message_size_max : TW_MESSAGE_SIZE_MAX;
    memcpy(ctx->addresses, parsed, sizeof(parsed));
    ctx->addresses_count = parsed_count;
    ctx->completion_context = completion_context;
    ctx->completion = completion;
    tw_pcg32_seed(&ctx->random, tw_random_u64(), ctx->id.low);
    size_t buffer_size = (ctx->message_size_max + BUFFER_ALIGN - 1) / BUFFER_ALIGN * BUFFER_ALIGN;
    ctx->message = tw_allocate(buffer_size);
    ctx->receive_buffer = tw_allocate(buffer_size);
    ctx->reply = tw_allocate(buffer_size);
    if (ctx->message == NULL || ctx->receive_buffer == NULL || ctx->reply == NULL) {
        TW_REACHED(tw_reach_client_init_out_of_memory);
        context_free(ctx);
        return tw_client_init_out_of_memory;
    }
    tw_loop_error loop_error = tw_loop_init(&ctx->loop, NULL);
    if (loop_error != tw_loop_ok) {
        TW_REACHED(tw_reach_client_init_loop_failed);
        ctx->loop = NULL;
        context_free(ctx);
        switch (loop_error) {
        case tw_loop_system_resources: return tw_client_init_system_resources;
        case tw_loop_unsupported: return tw_client_init_network_subsystem;
        default: return tw_client_init_unexpected;
        }
    }
    tw_async_init(ctx->loop, &ctx->async);
    client->context = ctx;
    tw_thread_options thread_options = {.stack_size_bytes = TW_CLIENT_STACK_SIZE, .name = "client-io"};
    if (tw_thread_spawn(&ctx->io_thread, &thread_options, io_main, ctx) != tw_os_ok) {
        TW_REACHED(tw_reach_client_init_spawn_failed);
        client->context = NULL;
        context_free(ctx);
        return tw_client_init_system_resources;
    }
    client->magic = TW_CLIENT_MAGIC; /* last: every call checks it first */
    return tw_client_init_ok;
}

tw_client_status tw_client_submit(tw_client *client, tw_packet *packet) {
    if (client == NULL || packet == NULL || client->magic != TW_CLIENT_MAGIC) return tw_client_invalid;
    tw_locker_lock(&client->locker);
    tw_client_context *ctx = client->context;
    if (ctx == NULL) {
        tw_locker_unlock(&client->locker);
        return tw_client_invalid;
    }
    TW_ASSERT(ctx->magic == CONTEXT_MAGIC && ctx->handle == client && !ctx->shutdown_requested);
    packet->status = tw_packet_ok;
    packet->links = (tw_packet_links){.phase = phase_submitted};
    bool was_empty = ctx->submitted_head == NULL;
    if (ctx->submitted_tail != NULL) ctx->submitted_tail->links.next = packet;
    else ctx->submitted_head = packet;
    ctx->submitted_tail = packet;
    /* A non-empty queue has had its notify, and the IO thread takes the whole queue at
     * once. The notify is made under the Locker: see the top of this file. */
    if (was_empty) tw_async_notify(&ctx->async);
    tw_locker_unlock(&client->locker);
    return tw_client_ok;
}

tw_client_status tw_client_completion_context(tw_client *client, uintptr_t *context) {
    if (client == NULL || context == NULL || client->magic != TW_CLIENT_MAGIC) return tw_client_invalid;
    tw_locker_lock(&client->locker);
    tw_client_context *ctx = client->context;
    if (ctx != NULL) *context = ctx->completion_context;
    tw_locker_unlock(&client->locker);
    return ctx != NULL ? tw_client_ok : tw_client_invalid;
}

tw_client_status tw_client_deinit(tw_client *client) {
    if (client == NULL || client->magic != TW_CLIENT_MAGIC) return tw_client_invalid;
    tw_locker_lock(&client->locker);
    tw_client_context *ctx = client->context;
    if (ctx == NULL) {
        tw_locker_unlock(&client->locker);
        return tw_client_invalid;
    }
    TW_ASSERT(ctx->magic == CONTEXT_MAGIC && !ctx->shutdown_requested);
    if (ctx->io_thread_id == tw_thread_self().handle) {
        tw_locker_unlock(&client->locker);
        return tw_client_on_io_thread;
    }
    client->context = NULL;
    ctx->shutdown_requested = true;
    tw_async_notify(&ctx->async);
    tw_locker_unlock(&client->locker);
    /* The IO thread completes every packet, closes, and leaves; only then is ctx freed, and
     * nothing touches the handle after the join. */
    TW_ASSERT(tw_thread_join(ctx->io_thread) == tw_os_ok);
    TW_ASSERT(ctx->stopping && ctx->submitted_head == NULL);
    context_free(ctx);
    return tw_client_ok;
}
