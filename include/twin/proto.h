/* twin: the wire protocol between clients and the server.
 *
 * A message is a fixed 128-byte header and a body of header.size - 128 bytes. Both carry
 * a 128-bit XXH3 checksum (libxxhash): header.checksum covers header bytes 16..127,
 * header.checksum_body the body. message_size_max is a runtime setting, at most
 * TW_MESSAGE_SIZE_MAX. All fields are little-endian (the only byte order twin builds for).
 *
 * The frame reader turns a byte stream split anyhow (a byte at a time, or many messages
 * per read) into whole, checked messages. The first malformed message is an error the
 * caller answers by closing the connection; nothing of it is delivered. */
#ifndef TWIN_PROTO_H
#define TWIN_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <twin/ledger.h>

#define TW_HEADER_SIZE 128u
#define TW_MESSAGE_SIZE_MAX (1024u * 1024u)

typedef enum tw_command {
    tw_command_none = 0,
    tw_command_register = 1,
    tw_command_request = 2,
    tw_command_reply = 3,
    tw_command_eviction = 4,
    tw_command_ping = 5,
    tw_command_pong = 6,
} tw_command;

typedef enum tw_operation {
    tw_operation_none = 0, /* every command but request and reply */
    tw_operation_create_accounts = 1,
    tw_operation_create_transfers = 2,
    tw_operation_lookup_accounts = 3,
    tw_operation_lookup_transfers = 4,
    tw_operation_echo = 5,
} tw_operation;

typedef enum tw_eviction_reason {
    tw_eviction_none = 0,
    tw_eviction_no_session = 1,
    tw_eviction_too_many_clients = 2,
    tw_eviction_client_release_too_low = 3,
    tw_eviction_client_release_too_high = 4,
    tw_eviction_protocol_violation = 5,
} tw_eviction_reason;

/* 128 bytes, the wire layout. */
typedef struct tw_header {
    tw_u128 checksum;        /* XXH3-128 of bytes 16..127 */
    tw_u128 checksum_body;   /* XXH3-128 of the body */
    tw_u128 cluster;
    tw_u128 client;
    uint64_t session;        /* register reply: the session; requests: the client's session */
    uint64_t request;        /* the client's request number (register is request 0) */
    uint64_t op;             /* reply: the op number that committed it */
    uint64_t timestamp;      /* reply: the commit timestamp */
    uint32_t size;           /* header + body, bytes */
    uint32_t release;        /* the sender's release */
    uint32_t batch_size_max; /* register reply: the largest request body the server takes */
    uint8_t command;         /* tw_command */
    uint8_t operation;       /* tw_operation: known in a request; known or none (a
                              * register's reply) in a reply; none otherwise */
    uint8_t eviction_reason; /* tw_eviction_reason, in an eviction */
    uint8_t reserved_byte;   /* zero */
    uint8_t reserved[16];    /* zero */
} tw_header;

_Static_assert(sizeof(tw_header) == TW_HEADER_SIZE, "the header is 128 bytes on the wire");

typedef enum tw_proto_error {
    tw_proto_ok = 0,
    tw_proto_bad_header_checksum,
    tw_proto_bad_body_checksum,
    tw_proto_size_below_header,
    tw_proto_size_above_max,
    tw_proto_unknown_command,
    tw_proto_unknown_operation,
    tw_proto_wrong_cluster,
    tw_proto_reserved_not_zero,
    /* Well-formed, but a command this end never takes (a reply, eviction or pong sent to
     * the server). The frame reader does not know the direction: the receiver checks. */
    tw_proto_unexpected_command,
    tw_proto_error_count,
} tw_proto_error;

const char *tw_proto_error_name(tw_proto_error error);
const char *tw_command_name(tw_command command);
const char *tw_operation_name(tw_operation operation);
const char *tw_eviction_reason_name(tw_eviction_reason reason);

/* Fills checksum_body from body (header->size - TW_HEADER_SIZE bytes), then checksum. */
void tw_header_seal(tw_header *header, const void *body);
/* Recomputes only checksum (after a header field changed; the body is unchanged). */
void tw_header_seal_header(tw_header *header);
/* Checks a header on its own (not the body): checksum, size, command, operation,
 * cluster, reserved bytes. */
tw_proto_error tw_header_check(const tw_header *header, tw_u128 cluster, uint32_t message_size_max);
bool tw_body_valid(const tw_header *header, const void *body);

/* Events of an operation: their size, or 0 for echo (any bytes) and none. */
uint32_t tw_operation_event_size(tw_operation operation);
/* Results of an operation, per result: a sparse create result (8), an account (64) or a
 * transfer (80); 0 for echo (the body comes back) and none. */
uint32_t tw_operation_result_size(tw_operation operation);
/* The most events one request of operation may carry so that both the request and its
 * largest reply fit in message_size_max: min(body / event size, body / result size), with
 * body = message_size_max - TW_HEADER_SIZE. For echo, the body size in bytes. */
uint32_t tw_operation_events_max(tw_operation operation, uint32_t message_size_max);

typedef void (*tw_frame_fn)(void *context, const tw_header *header, const uint8_t *body);

typedef struct tw_frame_reader {
    uint8_t *buffer; /* message_size_max bytes, the caller's */
    uint32_t message_size_max;
    uint32_t used;
    tw_u128 cluster;
    bool failed;
    /* The header at the front passed tw_header_check; its body is still coming. A message
     * that arrives a few bytes at a time is checked once, not once per read. */
    bool front_checked;
} tw_frame_reader;

void tw_frame_reader_init(tw_frame_reader *reader, uint8_t *buffer, uint32_t message_size_max,
                          tw_u128 cluster);
/* Where the next received bytes go: read at most *size bytes into the returned space. */
uint8_t *tw_frame_reader_space(tw_frame_reader *reader, uint32_t *size);
/* count bytes were written into the space: delivers each whole message to on_message (the
 * header and body stay valid only during the call). Returns the first error; after one,
 * the reader stays failed. */
tw_proto_error tw_frame_reader_commit(tw_frame_reader *reader, uint32_t count,
                                      tw_frame_fn on_message, void *context);
/* Copies bytes in through the space, as many times as it takes. */
tw_proto_error tw_frame_reader_feed(tw_frame_reader *reader, const uint8_t *bytes, size_t count,
                                    tw_frame_fn on_message, void *context);

#endif
