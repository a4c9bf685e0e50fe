/* twin: the client's request machine without IO (see include/twin/client_core.h; what it
 * promises the user is in include/twin/client.h).
 *
 * A packet's phases: submitted (the owner's queue) -> pending (a root in the pending
 * queue) or batched (behind a root) -> sent (its request is in flight) -> complete. A
 * root carries its request's totals; the request's body is the packets' data, in order. */
#include <stddef.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/client_core.h>
#include <twin/os.h>
#include <twin/reach.h>

#include "lib/plant.h"

#define CORE_MAGIC 0x7477636c636f7265ull /* "twclcore" */

enum packet_phase {
    phase_none = 0,
    phase_submitted,
    phase_pending,
    phase_batched,
    phase_sent,
    phase_complete,
};

static void core_check(const tw_client_core *core) {
    TW_ASSERT_MSG(core != NULL && core->magic == CORE_MAGIC,
                  "tw_client_core: not an initialised core (used after deinit?)");
}

uint32_t tw_client_buffer_size(uint32_t message_size_max) {
    TW_ASSERT(message_size_max >= TW_CLIENT_MESSAGE_SIZE_MIN && message_size_max <= TW_MESSAGE_SIZE_MAX);
    return (message_size_max + TW_CLIENT_BUFFER_ALIGN - 1) / TW_CLIENT_BUFFER_ALIGN * TW_CLIENT_BUFFER_ALIGN;
}

bool tw_client_core_active(const tw_client_core *core) {
    core_check(core);
    return !core->shutdown && core->evicted == tw_packet_ok;
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
static void packet_complete(tw_client_core *core, tw_packet *packet, tw_packet_status status,
                            uint64_t timestamp, const uint8_t *result, uint32_t result_size) {
    TW_ASSERT(packet->links.phase != phase_complete && packet->links.phase != phase_none);
    TW_ASSERT((status == tw_packet_ok) == (result != NULL));
    TW_ASSERT(status == tw_packet_ok ? timestamp > 0 : timestamp == 0 && result_size == 0);
    packet->status = (uint8_t)status;
    packet->links.phase = phase_complete;
    packet->links.next = NULL;
    packet->links.batch_next = NULL;
    packet->links.batch_tail = NULL;
    core->options.completion(core->options.completion_context, packet, timestamp, result, result_size);
}

/* Completes a root and every packet batched behind it with one status. */
static void list_complete(tw_client_core *core, tw_packet *root, tw_packet_status status) {
    TW_ASSERT(status != tw_packet_ok);
    list_check_root(root);
    uint32_t count_expected = root->links.batch_count; /* before a callback reuses root */
    uint32_t count = 0;
    for (tw_packet *p = root; p != NULL;) {
        tw_packet *next = p->links.batch_next; /* read first: the callback may reuse p */
        packet_complete(core, p, status, 0, NULL, 0);
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

/* The first pending root, out of the queue. */
static tw_packet *pending_pop(tw_client_core *core) {
    tw_packet *root = core->pending_head;
    TW_ASSERT(root != NULL && core->pending_tail != NULL);
    core->pending_head = root->links.next;
    if (core->pending_head == NULL) core->pending_tail = NULL;
    root->links.next = NULL;
    return root;
}

void tw_client_core_packet_submitted(tw_packet *packet) {
    TW_ASSERT(packet != NULL);
    packet->status = tw_packet_ok;
    packet->links = (tw_packet_links){.phase = phase_submitted};
}

/* ---- requests ------------------------------------------------------------------------------- */

static void message_seal(tw_client_core *core, uint64_t request, tw_command command,
                         tw_operation operation, uint32_t body_size) {
    TW_ASSERT(body_size <= core->options.message_size_max - TW_HEADER_SIZE);
    TW_ASSERT(command == tw_command_register ? request == 0 : request > 0);
    TW_ASSERT(!core->message_lent && !core->inflight_active);
    *core->message = (tw_header){
        .cluster = core->options.cluster,
        .client = core->options.id,
        .session = command == tw_command_register ? 0 : core->session,
        .request = request,
        .size = TW_HEADER_SIZE + body_size,
        .release = core->options.release,
        .command = (uint8_t)command,
        .operation = (uint8_t)operation,
    };
    tw_header_seal(core->message, core->message + 1);
    core->inflight_request = request;
    core->inflight_active = true;
    core->inflight_sends = 0;
}

/* Sends a root and its batch as the next request. */
static void request_send(tw_client_core *core, tw_packet *root) {
    TW_ASSERT(core->registered && !core->inflight_active && core->evicted == tw_packet_ok);
    TW_ASSERT(root->links.phase == phase_pending);
    list_check_root(root);
    uint8_t *body = (uint8_t *)(core->message + 1);
    uint32_t body_size = 0;
    uint32_t count = 0;
    for (tw_packet *p = root; p != NULL; p = p->links.batch_next) {
        TW_ASSERT(p->operation == root->operation);
        TW_ASSERT(p == root ? p->links.phase == phase_pending : p->links.phase == phase_batched);
        TW_ASSERT(body_size + p->data_size <= core->batch_body_max);
        if (p->data_size > 0) memcpy(body + body_size, p->data, p->data_size);
        body_size += p->data_size;
        p->links.phase = phase_sent;
        count++;
    }
    TW_ASSERT(count == root->links.batch_count);
    uint64_t request = core->request_last + 1;
    TW_ASSERT(request > core->request_last); /* strictly increasing, never reused */
    core->request_last = request;
    core->inflight = root;
    message_seal(core, request, tw_command_request, (tw_operation)root->operation, body_size);
    core->port.message_ready(core->port.context);
}

/* The next pending root, if nothing is in flight and the message buffer is free: a reply can
 * be read before its request's write reports (the completions come in either order), and
 * sealing the next request then would overwrite the bytes still being written. The owner
 * calls tw_client_core_send_next once the write has reported. */
static void pending_send_next(tw_client_core *core) {
    if (core->inflight_active || core->message_lent || core->pending_head == NULL) return;
    request_send(core, pending_pop(core));
}

void tw_client_core_send_next(tw_client_core *core) {
    core_check(core);
    TW_ASSERT(tw_client_core_active(core));
    pending_send_next(core);
}

/* A5's order: operation, data size, too much data, then the client's state. */
static tw_packet_status packet_check(const tw_client_core *core, tw_packet *packet) {
    TW_ASSERT(core->registered || core->evicted != tw_packet_ok);
    if (!operation_allowed(packet->operation)) return tw_packet_invalid_operation;
    tw_operation operation = (tw_operation)packet->operation;
    uint32_t event_size = tw_operation_event_size(operation);
    if (event_size != 0 && packet->data_size % event_size != 0) return tw_packet_invalid_data_size;
    if (packet->data_size > 0 && packet->data == NULL) return tw_packet_invalid_data_size;
    packet->links.events = event_size == 0 ? packet->data_size : packet->data_size / event_size;
    /* Before registration ends in an eviction there is no batch size to check against. */
    if (core->registered && packet->links.events > core->events_max[operation]) {
        return tw_packet_too_much_data;
    }
    return core->evicted;
}

/* A submitted packet joins a waiting request of its operation, or waits as a new one. */
void tw_client_core_enqueue(tw_client_core *core, tw_packet *packet) {
    core_check(core);
    TW_ASSERT(packet != NULL && packet->links.phase == phase_submitted && !core->shutdown);
    tw_packet_status status = packet_check(core, packet);
    if (status != tw_packet_ok) {
        packet_complete(core, packet, status, 0, NULL, 0);
        return;
    }
    TW_ASSERT(core->registered);
    tw_operation operation = (tw_operation)packet->operation;
    packet->links.batchable =
        core->options.batching && (operation == tw_operation_echo ||
                                   (operation_is_create(operation) && !last_event_linked(packet)));
    if (packet->links.batchable) {
        for (tw_packet *root = core->pending_head; root != NULL; root = root->links.next) {
            TW_ASSERT(root->links.phase == phase_pending);
            if (root->operation != packet->operation || !root->links.batchable) continue;
            if (TW_PLANTED(tw_plant_client_batch_full_not_fits)) {
                if (root->links.batch_events >= core->events_max[operation]) continue;
            } else if (root->links.batch_events + packet->links.events > core->events_max[operation]) {
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
    if (core->pending_tail != NULL) core->pending_tail->links.next = packet;
    else core->pending_head = packet;
    core->pending_tail = packet;
    pending_send_next(core);
}

void tw_client_core_enqueue_list(tw_client_core *core, tw_packet *list) {
    core_check(core);
    while (list != NULL && !core->shutdown) {
        tw_packet *next = list->links.next;
        list->links.next = NULL;
        tw_client_core_enqueue(core, list);
        list = next;
    }
    TW_ASSERT(list == NULL);
}

/* ---- the message ------------------------------------------------------------------------------ */

const tw_header *tw_client_core_message_send(tw_client_core *core) {
    core_check(core);
    TW_ASSERT(core->inflight_active && !core->message_lent && tw_client_core_active(core));
    TW_ASSERT(core->message->size >= TW_HEADER_SIZE &&
              core->message->size <= core->options.message_size_max);
    if (core->inflight_sends > 0) TW_REACHED(tw_reach_client_request_resent);
    if (core->inflight_sends > 0 && core->inflight != NULL &&
        TW_PLANTED(tw_plant_client_retry_new_number)) {
        core->message->request = ++core->request_last;
        core->inflight_request = core->request_last;
        tw_header_seal_header(core->message);
    }
    core->inflight_sends++;
    core->message_lent = true;
    return core->message;
}

void tw_client_core_message_written(tw_client_core *core) {
    core_check(core);
    TW_ASSERT(core->message_lent);
    core->message_lent = false;
}

/* ---- replies ---------------------------------------------------------------------------------- */

/* The connection cannot be trusted any more: its bytes are ignored from here on, and the
 * owner closes it. */
static void connection_fail(tw_client_core *core) {
    TW_ASSERT(core->connected);
    core->connected = false;
    core->port.connection_fail(core->port.context);
}

/* Creates: sparse results, ascending, each naming an event of the request. */
static bool create_results_valid(const tw_client_core *core, uint32_t body_size, uint32_t events) {
    TW_ASSERT(body_size <= core->options.message_size_max - TW_HEADER_SIZE);
    TW_ASSERT(core->inflight != NULL && events == core->inflight->links.batch_events);
    if (body_size % sizeof(tw_create_result) != 0) return false;
    uint32_t count = body_size / (uint32_t)sizeof(tw_create_result);
    if (count > events) return false;
    const tw_create_result *results = (const tw_create_result *)(const void *)core->reply;
    for (uint32_t i = 0; i < count; i++) {
        if (results[i].index >= events) return false;
        if (i > 0 && results[i].index <= results[i - 1].index) return false;
    }
    return true;
}

/* Hands each packet of the finished request its own results. */
static void results_deliver(tw_client_core *core, tw_packet *root, uint64_t timestamp,
                            uint32_t body_size) {
    list_check_root(root);
    TW_ASSERT(timestamp > 0);
    /* Read before any callback: a completed packet is the user's, who may submit it again
     * (rewriting its links) while the rest of the batch is still being delivered. */
    tw_operation operation = (tw_operation)root->operation;
    uint32_t batch_events = root->links.batch_events;
    if (operation == tw_operation_lookup_accounts || operation == tw_operation_lookup_transfers) {
        TW_ASSERT(root->links.batch_count == 1);
        packet_complete(core, root, tw_packet_ok, timestamp, core->reply, body_size);
        return;
    }
    uint32_t offset = 0; /* events (bytes for echo) of the packets before this one */
    uint32_t taken = 0;  /* results (bytes for echo) handed out */
    tw_create_result *results = (tw_create_result *)(void *)core->reply;
    uint32_t results_count = body_size / (uint32_t)sizeof(tw_create_result);
    for (tw_packet *p = root; p != NULL;) {
        /* Read first: the callback may reuse p. */
        tw_packet *next = p->links.batch_next;
        uint32_t events = p->links.events;
        TW_ASSERT(p->links.phase == phase_sent);
        if (operation == tw_operation_echo) {
            TW_ASSERT(offset + events <= body_size);
            packet_complete(core, p, tw_packet_ok, timestamp, core->reply + offset, events);
            taken += events;
        } else {
            uint32_t first = taken;
            while (taken < results_count && results[taken].index < offset + events) {
                TW_ASSERT(results[taken].index >= offset);
                if (!TW_PLANTED(tw_plant_client_demux_no_rebase)) results[taken].index -= offset;
                taken++;
            }
            packet_complete(core, p, tw_packet_ok, timestamp, (const uint8_t *)&results[first],
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
static bool on_reply(tw_client_core *core, const tw_header *reply, const uint8_t *body) {
    TW_ASSERT(core->inflight_active && reply->request == core->inflight_request);
    uint32_t body_size = reply->size - TW_HEADER_SIZE;
    if (core->inflight == NULL) { /* the register */
        uint32_t body_max = core->options.message_size_max - TW_HEADER_SIZE;
        if (reply->operation != tw_operation_none || body_size != 0 || reply->session == 0 ||
            reply->batch_size_max < TW_CLIENT_MESSAGE_SIZE_MIN - TW_HEADER_SIZE) {
            return false;
        }
        core->session = reply->session;
        core->batch_body_max = reply->batch_size_max < body_max ? reply->batch_size_max : body_max;
        for (uint32_t op = tw_operation_create_accounts; op <= tw_operation_echo; op++) {
            core->events_max[op] = tw_operation_events_max((tw_operation)op,
                                                           core->batch_body_max + TW_HEADER_SIZE);
            TW_ASSERT(core->events_max[op] >= 1);
        }
        core->registered = true;
        core->inflight_active = false;
        core->port.reply_accepted(core->port.context);
        tw_client_core_enqueue_list(core, core->port.submitted_take(core->port.context));
        return true;
    }
    tw_packet *root = core->inflight;
    tw_operation operation = (tw_operation)root->operation;
    uint32_t events = root->links.batch_events;
    if (reply->operation != root->operation || reply->timestamp == 0) return false;
    memcpy(core->reply, body, body_size); /* aligned, and ours to rebase in place */
    bool valid = false;
    switch (operation) {
    case tw_operation_create_accounts:
    case tw_operation_create_transfers: valid = create_results_valid(core, body_size, events); break;
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
    core->inflight = NULL;
    core->inflight_active = false;
    core->port.reply_accepted(core->port.context);
    /* Start the next request before the callbacks of this one (A8): less waiting. */
    pending_send_next(core);
    results_deliver(core, root, reply->timestamp, body_size);
    return true;
}

/* A request (in flight or pending) of an evicted client: its root and every packet batched
 * behind it complete with the eviction's status. */
static void evicted_complete(tw_client_core *core, tw_packet *root) {
    TW_ASSERT(core->evicted != tw_packet_ok);
    if (TW_PLANTED(tw_plant_client_eviction_drops_batched)) {
        packet_complete(core, root, core->evicted, 0, NULL, 0); /* the batch behind it is lost */
        return;
    }
    list_complete(core, root, core->evicted);
}

/* Evicted: every packet, now and later, completes with the reason's status. */
static void on_eviction(tw_client_core *core, uint8_t reason) {
    TW_ASSERT(core->evicted == tw_packet_ok && !core->shutdown);
    core->evicted = eviction_status(reason);
    TW_ASSERT(core->evicted != tw_packet_ok);
    core->connected = false;
    core->port.stop(core->port.context);
    tw_packet *inflight = core->inflight;
    if (inflight != NULL) TW_REACHED(tw_reach_client_evicted_inflight);
    if (core->pending_head != NULL) TW_REACHED(tw_reach_client_evicted_pending);
    core->inflight = NULL;
    core->inflight_active = false;
    if (inflight != NULL) evicted_complete(core, inflight);
    if (!TW_PLANTED(tw_plant_client_eviction_forgets_pending)) {
        while (core->pending_head != NULL) evicted_complete(core, pending_pop(core));
    }
    tw_client_core_enqueue_list(core, core->port.submitted_take(core->port.context));
}

static void on_message(void *context, const tw_header *header, const uint8_t *body) {
    tw_client_core *core = context;
    core_check(core);
    TW_ASSERT(header->size >= TW_HEADER_SIZE && header->size <= core->options.message_size_max);
    /* An earlier message of this read closed the connection, or ended the client. */
    if (!core->connected || core->evicted != tw_packet_ok || core->shutdown) return;
    if (header->client.low != core->options.id.low || header->client.high != core->options.id.high) {
        return;
    }
    switch ((tw_command)header->command) {
    case tw_command_eviction: on_eviction(core, header->eviction_reason); return;
    case tw_command_pong: return; /* the client does not ping */
    case tw_command_reply:
        /* A stale duplicate (an older request, or nothing in flight) is ignored. */
        if (!core->inflight_active || header->request < core->inflight_request) return;
        if (header->request == core->inflight_request && on_reply(core, header, body)) return;
        break; /* a reply to a request never sent, or one that cannot be right */
    case tw_command_none:
    case tw_command_register:
    case tw_command_request:
    case tw_command_ping: break; /* a server never sends these */
    }
    connection_fail(core);
}

/* ---- the connection's bytes ------------------------------------------------------------------ */

void tw_client_core_connected(tw_client_core *core) {
    core_check(core);
    TW_ASSERT(!core->connected && tw_client_core_active(core));
    tw_frame_reader_init(&core->reader, core->receive_buffer, core->options.message_size_max,
                         core->options.cluster);
    core->connected = true;
}

void tw_client_core_disconnected(tw_client_core *core) {
    core_check(core);
    core->connected = false;
}

uint8_t *tw_client_core_read_space(tw_client_core *core, uint32_t *size) {
    core_check(core);
    TW_ASSERT(core->connected && size != NULL);
    return tw_frame_reader_space(&core->reader, size);
}

void tw_client_core_receive(tw_client_core *core, uint32_t count) {
    core_check(core);
    TW_ASSERT(core->connected);
    tw_proto_error error = tw_frame_reader_commit(&core->reader, count, on_message, core);
    if (!core->connected) return; /* a message closed it (or ended the client) */
    if (error != tw_proto_ok) connection_fail(core);
}

/* ---- the end ------------------------------------------------------------------------------------ */

void tw_client_core_shutdown(tw_client_core *core, tw_packet *submitted) {
    core_check(core);
    TW_ASSERT(!core->shutdown);
    core->shutdown = true;
    core->connected = false;
    core->port.stop(core->port.context);
    tw_packet *inflight = core->inflight;
    core->inflight = NULL;
    core->inflight_active = false;
    if (inflight != NULL) list_complete(core, inflight, tw_packet_client_shutdown);
    while (core->pending_head != NULL) list_complete(core, pending_pop(core), tw_packet_client_shutdown);
    while (submitted != NULL) {
        tw_packet *next = submitted->links.next;
        TW_ASSERT(submitted->links.phase == phase_submitted);
        packet_complete(core, submitted, tw_packet_client_shutdown, 0, NULL, 0);
        submitted = next;
    }
    TW_ASSERT(core->pending_head == NULL && core->pending_tail == NULL && core->inflight == NULL);
}

/* ---- life cycle ---------------------------------------------------------------------------------- */

void tw_client_core_deinit(tw_client_core *core) {
    TW_ASSERT(core != NULL);
    TW_ASSERT(core->magic == CORE_MAGIC || core->magic == 0);
    tw_free(core->message);
    tw_free(core->receive_buffer);
    tw_free(core->reply);
    *core = (tw_client_core){0};
}

tw_client_init_status tw_client_core_init(tw_client_core *core, const tw_client_core_options *options,
                                          const tw_client_port *port) {
    TW_ASSERT(core != NULL && options != NULL && port != NULL);
    TW_ASSERT(port->submitted_take != NULL && port->message_ready != NULL &&
              port->reply_accepted != NULL && port->connection_fail != NULL && port->stop != NULL);
    TW_ASSERT(options->completion != NULL && options->release != 0);
    TW_ASSERT(options->id.low != 0 || options->id.high != 0);
    uint32_t buffer_size = tw_client_buffer_size(options->message_size_max);
    *core = (tw_client_core){.options = *options, .port = *port};
    core->message = tw_allocate(buffer_size);
    core->receive_buffer = tw_allocate(buffer_size);
    core->reply = tw_allocate(buffer_size);
    if (core->message == NULL || core->receive_buffer == NULL || core->reply == NULL) {
        tw_client_core_deinit(core);
        return tw_client_init_out_of_memory;
    }
    core->magic = CORE_MAGIC;
    message_seal(core, 0, tw_command_register, tw_operation_none, 0);
    TW_ASSERT(core->inflight_active && core->inflight == NULL && core->request_last == 0);
    return tw_client_init_ok;
}
