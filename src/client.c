/* twin: the client (see include/twin/client.h for what it promises): the core
 * (src/client_core.c: packet checks, batching, the request in flight, replies, evictions,
 * shutdown) on a thread, a loop and a connection. This file keeps the handle, the
 * submitted queue, the IO thread and the connection with its timers and retries.
 *
 * Who touches what. The handle (tw_client) holds the Locker, which guards the context
 * pointer, the submitted queue and shutdown_requested. Everything else in the context
 * belongs to the IO thread, except what init writes before the thread starts and deinit
 * reads after joining it. Submits notify the loop's async while holding the Locker, and
 * deinit clears the context pointer under it: once the IO thread has seen the shutdown
 * (under the Locker), no notify can still be running, so tw_async_deinit never waits.
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
#include <twin/client_core.h>
#include <twin/os.h>
#include <twin/pcg.h>
#include <twin/reach.h>
#include <twin/tcp.h>

#define CONTEXT_MAGIC 0x7477636f6e746578ull /* "twcontex" */
#define CONTEXT_MAGIC_DEAD 0x646561642d637478ull
#define ADDRESS_TEXT_MAX 64u
#define PORT_MAX 65535u
/* Backoff doubles per failure in a row, up to 2^BACKOFF_SHIFT_MAX times the minimum. */
#define BACKOFF_SHIFT_MAX 32u

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
    uint64_t request_timeout_ns;
    uint64_t backoff_min_ns;
    uint64_t backoff_max_ns;
    tw_address addresses[TW_CLIENT_ADDRESSES_MAX];
    uint32_t addresses_count;
    tw_loop *loop;
    tw_async async;
    tw_thread io_thread;

    /* Guarded by handle->locker. */
    tw_packet *submitted_head;
    tw_packet *submitted_tail;
    bool shutdown_requested;
    uint64_t io_thread_id; /* tw_thread_self of the IO thread, once it runs */

    /* The IO thread's (core's completion fields are set at init, read-only afterwards). */
    tw_client_core core;     /* packets, requests, the message, replies, the frame reader */
    /* The connection. */
    conn_state conn;
    tw_tcp tcp;
    uint32_t conn_pending;   /* callbacks outstanding on the socket */
    bool sent_on_conn;       /* the message in flight was queued on this connection */
    bool send_wanted;        /* queue the message once the write in progress is done */
    uint32_t address_index;
    uint32_t failures;       /* connection failures since the last reply */
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


/* ---- the core's port ------------------------------------------------------------------------ */

static void pump(tw_client_context *ctx);
static void conn_close(tw_client_context *ctx);
static void conn_fail(tw_client_context *ctx);
static void read_start(tw_client_context *ctx);
static void timer_stop(tw_client_context *ctx);

/* Takes every submitted packet, in order (under the Locker). */
static tw_packet *port_submitted_take(void *context) {
    tw_client_context *ctx = context;
    TW_ASSERT(ctx->magic == CONTEXT_MAGIC);
    /* The register's reply has come, or an eviction: the packets need no batch size now. */
    TW_ASSERT(ctx->core.registered || ctx->core.evicted != tw_packet_ok);
    tw_locker_lock(&ctx->handle->locker);
    tw_packet *all = ctx->submitted_head;
    ctx->submitted_head = NULL;
    ctx->submitted_tail = NULL;
    tw_locker_unlock(&ctx->handle->locker);
    return all;
}

/* A new request is in flight: it has not been queued on any connection yet. */
static void port_message_ready(void *context) {
    tw_client_context *ctx = context;
    TW_ASSERT(ctx->core.inflight_active && ctx->core.inflight != NULL);
    TW_ASSERT(tw_client_core_active(&ctx->core));
    ctx->sent_on_conn = false;
    pump(ctx);
}

/* The server answered: failures in a row are over, and the request timer means nothing. */
static void port_reply_accepted(void *context) {
    tw_client_context *ctx = context;
    TW_ASSERT(ctx->conn == conn_open && !ctx->core.inflight_active);
    ctx->failures = 0;
    ctx->timer = timer_none;
}

static void port_connection_fail(void *context) {
    tw_client_context *ctx = context;
    TW_ASSERT(ctx->conn == conn_open && !ctx->core.connected);
    conn_fail(ctx);
}

/* Evicted or shut down: no timer, no connection, and no next one. */
static void port_stop(void *context) {
    tw_client_context *ctx = context;
    TW_ASSERT(!tw_client_core_active(&ctx->core) && !ctx->core.connected);
    timer_stop(ctx);
    if (ctx->conn == conn_connecting || ctx->conn == conn_open) conn_close(ctx);
    TW_ASSERT(ctx->conn != conn_connecting && ctx->conn != conn_open);
}

/* ---- the connection ------------------------------------------------------------------------ */

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
        TW_ASSERT(ctx->core.inflight_active);
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
    TW_ASSERT(kind != timer_none && tw_client_core_active(&ctx->core));
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
    TW_ASSERT(!tw_client_core_active(&ctx->core));
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
    TW_ASSERT(!ctx->core.message_lent);
    if (!tw_client_core_active(&ctx->core)) {
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
    tw_client_core_disconnected(&ctx->core);
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
    TW_ASSERT(ctx->core.message_lent && ctx->conn_pending > 0);
    tw_client_core_message_written(&ctx->core);
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
    TW_ASSERT(ctx->conn == conn_open && ctx->core.inflight_active && !ctx->sent_on_conn);
    if (ctx->core.message_lent) { /* the previous message's write has not reported yet */
        ctx->send_wanted = true;
        return;
    }
    const tw_header *message = tw_client_core_message_send(&ctx->core);
    ctx->sent_on_conn = true;
    ctx->conn_pending++;
    timer_arm(ctx, timer_request, ctx->request_timeout_ns);
    tw_tcp_queue_write(ctx->loop, &ctx->queue, &ctx->w_message, ctx->tcp, message, message->size,
                       ctx, written);
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
    tw_client_core_connected(&ctx->core);
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
    if (!tw_client_core_active(&ctx->core)) return;
    if (!ctx->core.inflight_active) {
        /* The core seals the next request, if any, and comes back here (message_ready). */
        tw_client_core_send_next(&ctx->core);
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
    /* Malformed input, or a message that cannot be right, fails the connection from inside
     * (port_connection_fail); an eviction closes it (port_stop). */
    tw_client_core_receive(&ctx->core, (uint32_t)result.value);
    if (ctx->conn != conn_open) return tw_disarm;
    read_start(ctx);
    return tw_disarm;
}

static void read_start(tw_client_context *ctx) {
    TW_ASSERT(ctx->conn == conn_open);
    uint32_t room = 0;
    uint8_t *space = tw_client_core_read_space(&ctx->core, &room);
    TW_ASSERT(room > 0);
    ctx->conn_pending++;
    tw_tcp_read(ctx->loop, &ctx->c_read, ctx->tcp, space, room, ctx, read_done);
}

/* ---- the IO thread ------------------------------------------------------------------------------ */

static tw_action async_fired(void *userdata, tw_loop *loop, tw_completion *completion,
                             tw_result result) {
    (void)loop;
    tw_client_context *ctx = userdata;
    TW_ASSERT(completion == &ctx->c_async && result.error == tw_loop_ok);
    TW_ASSERT(!ctx->core.shutdown);
    /* Before registration the packets wait (no batch size yet), unless evicted already. */
    bool shutdown = false;
    tw_locker_lock(&ctx->handle->locker);
    shutdown = ctx->shutdown_requested;
    tw_packet *list = NULL;
    if (shutdown || ctx->core.registered || ctx->core.evicted != tw_packet_ok) {
        list = ctx->submitted_head;
        ctx->submitted_head = NULL;
        ctx->submitted_tail = NULL;
    } else if (ctx->submitted_head != NULL) {
        TW_REACHED(tw_reach_client_waits_for_register);
    }
    tw_locker_unlock(&ctx->handle->locker);
    if (shutdown) {
        /* Every packet completes with client_shutdown; port_stop closes the connection. */
        tw_client_core_shutdown(&ctx->core, list);
        return tw_disarm; /* the loop runs out once the connection and timer are done */
    }
    tw_client_core_enqueue_list(&ctx->core, list);
    return tw_rearm;
}

static void io_main(void *arg) {
    tw_client_context *ctx = arg;
    TW_ASSERT(ctx->magic == CONTEXT_MAGIC);
    /* The core sealed the register at init: it goes out on the first connection. */
    TW_ASSERT(ctx->core.inflight_active && ctx->core.inflight == NULL && !ctx->core.registered);
    tw_locker_lock(&ctx->handle->locker);
    ctx->io_thread_id = tw_thread_self().handle;
    tw_locker_unlock(&ctx->handle->locker);
    tw_async_wait(ctx->loop, &ctx->async, &ctx->c_async, ctx, async_fired);
    pump(ctx);
    TW_ASSERT(tw_loop_run(ctx->loop, tw_run_until_done) == tw_loop_ok);
    /* Only deinit ends the loop: everything has completed and closed. */
    TW_ASSERT(ctx->core.shutdown && ctx->conn == conn_idle && ctx->conn_pending == 0);
    TW_ASSERT(ctx->core.pending_head == NULL && ctx->core.inflight == NULL);
    tw_async_deinit(&ctx->async);
}

/* ---- the handle ---------------------------------------------------------------------------------- */

static void context_free(tw_client_context *ctx) {
    if (ctx->loop != NULL) tw_loop_deinit(ctx->loop);
    tw_client_core_deinit(&ctx->core);
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
    tw_client_core_options core_options = {
        .cluster = cluster,
        .id = o.id.low != 0 || o.id.high != 0 ? o.id : random_id(),
        .release = o.release != 0 ? o.release : TW_CLIENT_RELEASE_DEFAULT,
        .batching = !o.batching_off,
        .message_size_max = o.message_size_max != 0 ? o.message_size_max : TW_MESSAGE_SIZE_MAX,
        .completion_context = completion_context,
        .completion = completion,
    };
    ctx->request_timeout_ns = o.request_timeout_ns != 0 ? o.request_timeout_ns
                                                        : TW_CLIENT_REQUEST_TIMEOUT_NS_DEFAULT;
    ctx->backoff_min_ns = o.backoff_min_ns != 0 ? o.backoff_min_ns : TW_CLIENT_BACKOFF_MIN_NS_DEFAULT;
    ctx->backoff_max_ns = o.backoff_max_ns != 0 ? o.backoff_max_ns : TW_CLIENT_BACKOFF_MAX_NS_DEFAULT;
    memcpy(ctx->addresses, parsed, sizeof(parsed));
    ctx->addresses_count = parsed_count;
    tw_pcg32_seed(&ctx->random, tw_random_u64(), core_options.id.low);
    tw_client_port port = {
        .context = ctx,
        .submitted_take = port_submitted_take,
        .message_ready = port_message_ready,
        .reply_accepted = port_reply_accepted,
        .connection_fail = port_connection_fail,
        .stop = port_stop,
    };
    if (tw_client_core_init(&ctx->core, &core_options, &port) != tw_client_init_ok) {
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
    tw_client_core_packet_submitted(packet);
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
    if (ctx != NULL) *context = ctx->core.options.completion_context;
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
    TW_ASSERT(ctx->core.shutdown && ctx->submitted_head == NULL);
    context_free(ctx);
    return tw_client_ok;
}
