/* twin: the wire protocol: checksums, header checks, and the frame reader. */
#include <string.h>
#include <xxhash.h>

#include <twin/assert.h>
#include <twin/proto.h>

_Static_assert(sizeof(XXH128_hash_t) == sizeof(tw_u128), "XXH3-128 fills a tw_u128");

static tw_u128 checksum(const void *bytes, size_t size) {
    XXH128_hash_t hash = XXH3_128bits(bytes, size);
    return (tw_u128){.low = hash.low64, .high = hash.high64};
}

static bool u128_equal(tw_u128 a, tw_u128 b) { return a.low == b.low && a.high == b.high; }

enum { header_checksum_offset = 16 };

void tw_header_seal_header(tw_header *header) {
    TW_ASSERT(header != NULL);
    header->checksum = checksum((const uint8_t *)header + header_checksum_offset,
                                TW_HEADER_SIZE - header_checksum_offset);
}

void tw_header_seal(tw_header *header, const void *body) {
    TW_ASSERT(header != NULL);
    TW_ASSERT(header->size >= TW_HEADER_SIZE);
    TW_ASSERT(body != NULL || header->size == TW_HEADER_SIZE);
    header->checksum_body = checksum(body, header->size - TW_HEADER_SIZE);
    tw_header_seal_header(header);
}

bool tw_body_valid(const tw_header *header, const void *body) {
    TW_ASSERT(header != NULL && header->size >= TW_HEADER_SIZE);
    return u128_equal(header->checksum_body, checksum(body, header->size - TW_HEADER_SIZE));
}

static bool operation_known(uint8_t operation) {
    return operation >= tw_operation_create_accounts && operation <= tw_operation_echo;
}

tw_proto_error tw_header_check(const tw_header *header, tw_u128 cluster, uint32_t message_size_max) {
    TW_ASSERT(header != NULL);
    TW_ASSERT(message_size_max >= TW_HEADER_SIZE && message_size_max <= TW_MESSAGE_SIZE_MAX);
    tw_u128 expected = checksum((const uint8_t *)header + header_checksum_offset,
                                TW_HEADER_SIZE - header_checksum_offset);
    if (!u128_equal(header->checksum, expected)) return tw_proto_bad_header_checksum;
    if (header->size < TW_HEADER_SIZE) return tw_proto_size_below_header;
    if (header->size > message_size_max) return tw_proto_size_above_max;
    if (header->command < tw_command_register || header->command > tw_command_pong) {
        return tw_proto_unknown_command;
    }
    bool operation_ok = header->operation == tw_operation_none;
    if (header->command == tw_command_request) operation_ok = operation_known(header->operation);
    if (header->command == tw_command_reply) operation_ok = operation_ok || operation_known(header->operation);
    if (!operation_ok) return tw_proto_unknown_operation;
    if (!u128_equal(header->cluster, cluster)) return tw_proto_wrong_cluster;
    if (header->reserved_byte != 0) return tw_proto_reserved_not_zero;
    for (size_t i = 0; i < sizeof(header->reserved); i++) {
        if (header->reserved[i] != 0) return tw_proto_reserved_not_zero;
    }
    return tw_proto_ok;
}

uint32_t tw_operation_event_size(tw_operation operation) {
    switch (operation) {
    case tw_operation_create_accounts: return sizeof(tw_account);
    case tw_operation_create_transfers: return sizeof(tw_transfer);
    case tw_operation_lookup_accounts:
    case tw_operation_lookup_transfers: return sizeof(tw_u128);
    case tw_operation_echo:
    case tw_operation_none: return 0;
    }
    return 0;
}

uint32_t tw_operation_result_size(tw_operation operation) {
    switch (operation) {
    case tw_operation_create_accounts:
    case tw_operation_create_transfers: return sizeof(tw_create_result);
    case tw_operation_lookup_accounts: return sizeof(tw_account);
    case tw_operation_lookup_transfers: return sizeof(tw_transfer);
    case tw_operation_echo:
    case tw_operation_none: return 0;
    }
    return 0;
}

uint32_t tw_operation_events_max(tw_operation operation, uint32_t message_size_max) {
    TW_ASSERT(message_size_max > TW_HEADER_SIZE && message_size_max <= TW_MESSAGE_SIZE_MAX);
    TW_ASSERT(operation_known(operation));
    uint32_t body_max = message_size_max - TW_HEADER_SIZE;
    uint32_t event_size = tw_operation_event_size(operation);
    uint32_t result_size = tw_operation_result_size(operation);
    if (event_size == 0) return body_max; /* echo: bytes */
    uint32_t by_events = body_max / event_size;
    uint32_t by_results = body_max / result_size;
    return by_events < by_results ? by_events : by_results;
}

void tw_frame_reader_init(tw_frame_reader *reader, uint8_t *buffer, uint32_t message_size_max,
                          tw_u128 cluster) {
    TW_ASSERT(reader != NULL && buffer != NULL);
    TW_ASSERT(message_size_max >= TW_HEADER_SIZE && message_size_max <= TW_MESSAGE_SIZE_MAX);
    *reader = (tw_frame_reader){.buffer = buffer, .message_size_max = message_size_max, .cluster = cluster};
}

uint8_t *tw_frame_reader_space(tw_frame_reader *reader, uint32_t *size) {
    TW_ASSERT(reader != NULL && size != NULL);
    TW_ASSERT(reader->used <= reader->message_size_max);
    *size = reader->message_size_max - reader->used;
    return reader->buffer + reader->used;
}

tw_proto_error tw_frame_reader_commit(tw_frame_reader *reader, uint32_t count,
                                      tw_frame_fn on_message, void *context) {
    TW_ASSERT(reader != NULL && on_message != NULL);
    TW_ASSERT(count <= reader->message_size_max - reader->used);
    if (reader->failed) return tw_proto_bad_header_checksum;
    reader->used += count;
    uint32_t start = 0;
    tw_proto_error error = tw_proto_ok;
    bool waiting = false; /* the header at start passed; its body is still coming */
    while (reader->used - start >= TW_HEADER_SIZE) {
        tw_header header;
        memcpy(&header, reader->buffer + start, TW_HEADER_SIZE); /* aligned copy */
        if (start > 0 || !reader->front_checked) {
            error = tw_header_check(&header, reader->cluster, reader->message_size_max);
            if (error != tw_proto_ok) break;
        }
        TW_ASSERT(header.size >= TW_HEADER_SIZE && header.size <= reader->message_size_max);
        if (reader->used - start < header.size) { /* the body is still coming */
            waiting = true;
            break;
        }
        const uint8_t *body = reader->buffer + start + TW_HEADER_SIZE;
        if (!tw_body_valid(&header, body)) {
            error = tw_proto_bad_body_checksum;
            break;
        }
        on_message(context, &header, body);
        start += header.size;
    }
    if (error != tw_proto_ok) {
        reader->failed = true;
        reader->used = 0;
        reader->front_checked = false;
        return error;
    }
    /* Keep the unfinished message at the front; a whole one fits (size <= max). */
    memmove(reader->buffer, reader->buffer + start, reader->used - start);
    reader->used -= start;
    reader->front_checked = waiting;
    return tw_proto_ok;
}

tw_proto_error tw_frame_reader_feed(tw_frame_reader *reader, const uint8_t *bytes, size_t count,
                                    tw_frame_fn on_message, void *context) {
    TW_ASSERT(reader != NULL && (bytes != NULL || count == 0));
    while (count > 0) {
        uint32_t room = 0;
        uint8_t *space = tw_frame_reader_space(reader, &room);
        TW_ASSERT(room > 0); /* a full buffer always holds at least one whole message */
        uint32_t chunk = count < room ? (uint32_t)count : room;
        memcpy(space, bytes, chunk);
        tw_proto_error error = tw_frame_reader_commit(reader, chunk, on_message, context);
        if (error != tw_proto_ok) return error;
        bytes += chunk;
        count -= chunk;
    }
    return tw_proto_ok;
}

const char *tw_proto_error_name(tw_proto_error error) {
    switch (error) {
    case tw_proto_ok: return "ok";
    case tw_proto_bad_header_checksum: return "bad_header_checksum";
    case tw_proto_bad_body_checksum: return "bad_body_checksum";
    case tw_proto_size_below_header: return "size_below_header";
    case tw_proto_size_above_max: return "size_above_max";
    case tw_proto_unknown_command: return "unknown_command";
    case tw_proto_unknown_operation: return "unknown_operation";
    case tw_proto_wrong_cluster: return "wrong_cluster";
    case tw_proto_reserved_not_zero: return "reserved_not_zero";
    case tw_proto_unexpected_command: return "unexpected_command";
    case tw_proto_error_count: break;
    }
    return "unknown";
}

const char *tw_command_name(tw_command command) {
    switch (command) {
    case tw_command_none: return "none";
    case tw_command_register: return "register";
    case tw_command_request: return "request";
    case tw_command_reply: return "reply";
    case tw_command_eviction: return "eviction";
    case tw_command_ping: return "ping";
    case tw_command_pong: return "pong";
    }
    return "unknown";
}

const char *tw_operation_name(tw_operation operation) {
    switch (operation) {
    case tw_operation_none: return "none";
    case tw_operation_create_accounts: return "create_accounts";
    case tw_operation_create_transfers: return "create_transfers";
    case tw_operation_lookup_accounts: return "lookup_accounts";
    case tw_operation_lookup_transfers: return "lookup_transfers";
    case tw_operation_echo: return "echo";
    }
    return "unknown";
}

const char *tw_eviction_reason_name(tw_eviction_reason reason) {
    switch (reason) {
    case tw_eviction_none: return "none";
    case tw_eviction_no_session: return "no_session";
    case tw_eviction_too_many_clients: return "too_many_clients";
    case tw_eviction_client_release_too_low: return "client_release_too_low";
    case tw_eviction_client_release_too_high: return "client_release_too_high";
    case tw_eviction_protocol_violation: return "protocol_violation";
    }
    return "unknown";
}
