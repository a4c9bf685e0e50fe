/* twin fuzz target: frames. The frame reader (src/proto.c: tw_frame_reader_*, tw_header_check,
 * tw_body_valid) alone, with no simulated world: the decoder every connection's bytes go
 * through, at the speed a decoder can be fuzzed (server_input covers what the server does
 * with the messages; this target covers how they are cut out of the stream).
 *
 * The input builds a byte stream. Byte 0: bits 0-1 the reader's message_size_max
 * (frame_sizes_max: 256, 1024, 4096 or 16384 bytes; the reader does nothing else at larger
 * sizes, and a large zero-filled body costs an execution more), bits 2-7 the seed of the split.
 * Then chunks, each a control byte c (kind c >> 6, flags c & 63) and what its kind reads;
 * missing bytes read as 0:
 *   0 MESSAGE  f0 = command (bits 0-2) | operation (bits 3-5); a body size (2 bytes,
 *              little-endian, modulo the largest body that fits) and that many body bytes
 *              (the input's, or 0 once it ends); sealed (tw_header_seal) unless a flag
 *              breaks it: bit 0 a header byte flipped after sealing (bad header checksum),
 *              bit 1 a body byte flipped (bad body checksum; a header-only message has none
 *              to flip), bit 2 another cluster, bit 3 a reserved byte set, bit 4 the size
 *              field from the next 2 bytes, header sealed again (a size below the header,
 *              above the maximum, or not the body that follows).
 *   1 RAW      n = next byte, then n bytes as they are.
 *   2 REPEAT   the last message again, (flags & 7) + 1 times.
 *   3 CUT      the stream ends here, less flags + 1 bytes: the last message is cut short.
 *
 * The stream is decoded three ways: fed whole (tw_frame_reader_feed), fed in pieces whose
 * sizes the split seed draws (1 byte, a few, a header's worth, or all the room there is), and,
 * once the reader has failed, fed once more. The oracle:
 *   - the messages delivered lie end to end from offset 0, each exactly the stream's bytes
 *     there, each well formed (header check, body checksum, size within the maximum);
 *   - the pieces deliver the same messages and end in the same error as the whole;
 *   - a reader with no error keeps exactly the undelivered tail (stream - delivered);
 *     a failed one delivers nothing more and keeps failing;
 *   - against what the input built: every message built well formed before the first
 *     broken one is delivered, in order; a message broken in a known way, with nothing
 *     unknown before it, ends the decoding with its error (the checks in proto.h's order:
 *     header checksum, size, command, operation, cluster, reserved bytes; then the body),
 *     once enough of it has arrived to tell; RAW bytes and a rewritten size make what
 *     follows unknown to the model, which then checks only the rules above.
 * A failure prints what differed and aborts (every engine reports a crash). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/pcg.h>
#include <twin/proto.h>

#include "common.h"

#define FRAMES_STREAM_SIZE_MAX (64u * 1024u) /* four of the largest messages */
#define FRAMES_MESSAGES_MAX 4096u /* expected messages the model tracks */
#define FRAMES_BUFFER_SIZE 16384u /* the largest message_size_max below */
#define FRAMES_PIECE_SMALL_MAX 7u

static const uint32_t frame_sizes_max[4] = {256u, 1024u, 4096u, FRAMES_BUFFER_SIZE};
static const tw_u128 cluster = {.low = 0x7477696eu, .high = 0};
static const tw_u128 cluster_other = {.low = 0x7477696fu, .high = 0};

enum chunk_kind { chunk_message = 0, chunk_raw = 1, chunk_repeat = 2, chunk_cut = 3 };
#define CHUNK_KIND_SHIFT 6u
#define CHUNK_FLAGS_MASK 63u

enum message_flag {
    flag_header_flip = 1u << 0,
    flag_body_flip = 1u << 1,
    flag_cluster = 1u << 2,
    flag_reserved = 1u << 3,
    flag_size = 1u << 4,
};

/* What the model knows of the stream past its last expected message. */
typedef enum model_state {
    model_clean,   /* every byte so far belongs to a well-formed message */
    model_error,   /* a message broken in a known way starts at error_offset */
    model_unknown, /* bytes the model does not follow start at unknown_offset */
} model_state;

typedef struct expected_message {
    uint32_t offset;
    uint32_t size;
} expected_message;

typedef struct delivered_log {
    const uint8_t *stream;
    uint32_t stream_size;
    uint32_t size_max;
    uint32_t count;
    uint32_t next_offset; /* where the next delivered message must start */
    uint32_t sizes[FRAMES_MESSAGES_MAX];
    bool overflow; /* more messages than sizes holds: only the rules are checked past it */
} delivered_log;

static uint8_t stream[FRAMES_STREAM_SIZE_MAX];
static uint8_t reader_buffer[FRAMES_BUFFER_SIZE];
static uint8_t last_message[FRAMES_BUFFER_SIZE];
static expected_message expected[FRAMES_MESSAGES_MAX];
static delivered_log log_whole;
static delivered_log log_pieces;
static delivered_log log_after;

typedef struct input {
    const uint8_t *data;
    size_t size;
    size_t offset;
} input;

static uint8_t input_byte(input *in) { return in->offset < in->size ? in->data[in->offset++] : 0; }

/* n bytes into out: the input's, then zeros once it ends (a bulk copy: bodies are large). */
static void input_bytes(input *in, uint8_t *out, uint32_t n) {
    size_t left = in->size - in->offset;
    size_t copied = n < left ? n : left;
    memcpy(out, in->data + in->offset, copied);
    memset(out + copied, 0, n - copied);
    in->offset += copied;
}

static uint32_t input_u16(input *in) {
    uint32_t low = input_byte(in);
    return low | ((uint32_t)input_byte(in) << 8);
}

/* ---- the model ---------------------------------------------------------------------------- */

typedef struct model {
    model_state state;
    uint32_t expected_count;
    uint32_t error_offset;
    uint32_t error_size;      /* the broken message's size as built: its body error needs it all */
    tw_proto_error error;     /* model_error: the error its first broken check gives */
    uint32_t unknown_offset;
    uint32_t last_size;       /* 0: none yet */
    bool last_unknown;        /* REPEAT adds the last message as the model saw it */
    tw_proto_error last_error;
} model;

/* The error a header built with these fields and flags gives, in proto.h's order; tw_proto_ok
 * for a well-formed one. flag_size is not modelled (the caller makes the rest unknown). */
static tw_proto_error expected_error(uint8_t command, uint8_t operation, uint32_t flags, bool has_body) {
    TW_ASSERT((flags & flag_size) == 0);
    if (flags & flag_header_flip) return tw_proto_bad_header_checksum;
    if (command < tw_command_register || command > tw_command_pong) return tw_proto_unknown_command;
    bool known = operation >= tw_operation_create_accounts && operation <= tw_operation_echo;
    bool operation_ok = operation == tw_operation_none;
    if (command == tw_command_request) operation_ok = known;
    if (command == tw_command_reply) operation_ok = operation_ok || known;
    if (!operation_ok) return tw_proto_unknown_operation;
    if (flags & flag_cluster) return tw_proto_wrong_cluster;
    if (flags & flag_reserved) return tw_proto_reserved_not_zero;
    if ((flags & flag_body_flip) && has_body) return tw_proto_bad_body_checksum;
    return tw_proto_ok;
}

static void model_add(model *m, uint32_t offset, uint32_t size, bool unknown, tw_proto_error error) {
    TW_ASSERT(size >= TW_HEADER_SIZE || unknown);
    if (m->state != model_clean) return; /* past a broken or unknown message, nothing is known */
    if (unknown) {
        m->state = model_unknown;
        m->unknown_offset = offset;
    } else if (error != tw_proto_ok) {
        m->state = model_error;
        m->error_offset = offset;
        m->error_size = size;
        m->error = error;
    } else if (m->expected_count < FRAMES_MESSAGES_MAX) {
        expected[m->expected_count++] = (expected_message){.offset = offset, .size = size};
    } else {
        m->state = model_unknown; /* too many to follow */
        m->unknown_offset = offset;
    }
}

/* ---- building the stream ------------------------------------------------------------------- */

static uint32_t append(uint32_t used, const void *bytes, uint32_t size) {
    uint32_t room = FRAMES_STREAM_SIZE_MAX - used;
    uint32_t n = size < room ? size : room;
    memcpy(stream + used, bytes, n);
    return used + n;
}

/* Builds one message into last_message; returns its size and what the model expects of it. */
static uint32_t message_build(input *in, uint32_t flags, uint32_t size_max, bool *unknown,
                              tw_proto_error *error) {
    uint8_t f0 = input_byte(in);
    uint8_t command = f0 & 7u;
    uint8_t operation = (f0 >> 3) & 7u;
    uint32_t body_max = size_max - TW_HEADER_SIZE;
    uint32_t body_size = input_u16(in) % (body_max + 1u);
    tw_header header = {
        .cluster = (flags & flag_cluster) ? cluster_other : cluster,
        .client = {.low = 1, .high = 0},
        .session = 1,
        .request = 1,
        .size = TW_HEADER_SIZE + body_size,
        .release = 1,
        .command = command,
        .operation = operation,
    };
    uint8_t *body = last_message + TW_HEADER_SIZE;
    input_bytes(in, body, body_size);
    if (flags & flag_reserved) header.reserved[input_byte(in) % sizeof(header.reserved)] = 1;
    tw_header_seal(&header, body);
    uint32_t size = header.size;
    *unknown = false;
    if (flags & flag_size) {
        header.size = input_u16(in);
        tw_header_seal_header(&header);
        *unknown = true;
    }
    memcpy(last_message, &header, TW_HEADER_SIZE);
    if (flags & flag_header_flip) last_message[16u + input_byte(in) % (TW_HEADER_SIZE - 16u)] ^= 0x01u;
    if ((flags & flag_body_flip) && body_size > 0) body[input_byte(in) % body_size] ^= 0x80u;
    *error = *unknown ? tw_proto_ok : expected_error(command, operation, flags & ~flag_size, body_size > 0);
    TW_ASSERT(size >= TW_HEADER_SIZE && size <= size_max);
    return size;
}

static uint32_t stream_build(input *in, uint32_t size_max, model *m) {
    uint32_t used = 0;
    *m = (model){.state = model_clean};
    while (in->offset < in->size && used < FRAMES_STREAM_SIZE_MAX) {
        uint8_t c = input_byte(in);
        uint32_t flags = c & CHUNK_FLAGS_MASK;
        switch ((enum chunk_kind)(c >> CHUNK_KIND_SHIFT)) {
        case chunk_message: {
            bool unknown = false;
            tw_proto_error error = tw_proto_ok;
            uint32_t size = message_build(in, flags, size_max, &unknown, &error);
            uint32_t offset = used;
            used = append(used, last_message, size);
            if (used - offset < size) unknown = true; /* the stream is full: cut short */
            model_add(m, offset, size, unknown, error);
            m->last_size = size;
            m->last_unknown = unknown;
            m->last_error = error;
            break;
        }
        case chunk_raw: {
            uint32_t n = input_byte(in);
            uint32_t offset = used;
            uint8_t bytes[UINT8_MAX];
            input_bytes(in, bytes, n);
            used = append(used, bytes, n);
            if (n > 0) model_add(m, offset, n, true, tw_proto_ok);
            break;
        }
        case chunk_repeat:
            if (m->last_size == 0) break;
            for (uint32_t r = 0; r <= (flags & 7u); r++) {
                uint32_t offset = used;
                used = append(used, last_message, m->last_size);
                bool whole = used - offset == m->last_size;
                model_add(m, offset, m->last_size, !whole || m->last_unknown, m->last_error);
            }
            break;
        case chunk_cut: {
            uint32_t less = flags + 1u;
            used = used > less ? used - less : 0;
            in->offset = in->size; /* the stream ends here */
            break;
        }
        }
    }
    /* A cut: a well-formed message cut short is not delivered (the reader waits for the rest),
     * and the model knows nothing from it on. */
    while (m->expected_count > 0 &&
           expected[m->expected_count - 1].offset + expected[m->expected_count - 1].size > used) {
        m->expected_count--;
        m->state = model_unknown;
        m->unknown_offset = expected[m->expected_count].offset;
    }
    return used;
}

/* ---- decoding ------------------------------------------------------------------------------ */

static void on_message(void *context, const tw_header *header, const uint8_t *body) {
    delivered_log *dlog = context;
    TW_ASSERT(dlog != NULL && header != NULL);
    uint32_t size = header->size;
    if (size < TW_HEADER_SIZE || size > dlog->size_max) {
        tw_fuzz_fail("message %u delivered with size %u (max %u)", dlog->count, size, dlog->size_max);
    }
    if (tw_header_check(header, cluster, dlog->size_max) != tw_proto_ok || !tw_body_valid(header, body)) {
        tw_fuzz_fail("message %u delivered malformed", dlog->count);
    }
    if (dlog->next_offset + size > dlog->stream_size) {
        tw_fuzz_fail("message %u (%u bytes) delivered past the stream's end (offset %u, stream %u bytes)",
                    dlog->count, size, dlog->next_offset, dlog->stream_size);
    }
    const uint8_t *at = dlog->stream + dlog->next_offset;
    if (memcmp(at, header, TW_HEADER_SIZE) != 0 || memcmp(at + TW_HEADER_SIZE, body, size - TW_HEADER_SIZE) != 0) {
        tw_fuzz_fail("message %u delivered is not the stream's bytes at offset %u", dlog->count, dlog->next_offset);
    }
    if (dlog->count < FRAMES_MESSAGES_MAX) dlog->sizes[dlog->count] = size;
    else dlog->overflow = true;
    dlog->count++;
    dlog->next_offset += size;
}

static void log_init(delivered_log *dlog, uint32_t stream_size, uint32_t size_max) {
    dlog->stream = stream;
    dlog->stream_size = stream_size;
    dlog->size_max = size_max;
    dlog->count = 0;
    dlog->next_offset = 0;
    dlog->overflow = false;
}

static tw_proto_error decode_pieces(tw_frame_reader *reader, uint32_t stream_size, uint8_t split_seed) {
    tw_pcg32 rng;
    tw_pcg32_seed(&rng, split_seed, stream_size);
    uint32_t fed = 0;
    while (fed < stream_size) {
        uint32_t room = 0;
        uint8_t *space = tw_frame_reader_space(reader, &room);
        TW_ASSERT(room > 0);
        uint32_t cap = room;
        switch (tw_pcg32_bounded(&rng, 4)) {
        case 0: cap = 1; break;
        case 1: cap = 1u + tw_pcg32_bounded(&rng, FRAMES_PIECE_SMALL_MAX); break;
        case 2: cap = TW_HEADER_SIZE; break;
        default: break;
        }
        uint32_t left = stream_size - fed;
        uint32_t n = cap < room ? cap : room;
        if (n > left) n = left;
        memcpy(space, stream + fed, n);
        fed += n;
        tw_proto_error error = tw_frame_reader_commit(reader, n, on_message, &log_pieces);
        if (error != tw_proto_ok) return error;
    }
    return tw_proto_ok;
}

static void check_model(const model *m, const delivered_log *dlog, tw_proto_error error, uint32_t stream_size) {
    TW_ASSERT(m != NULL && dlog != NULL);
    uint32_t known = m->expected_count < dlog->count ? m->expected_count : dlog->count;
    for (uint32_t i = 0; i < known; i++) { /* known <= expected_count <= FRAMES_MESSAGES_MAX */
        if (dlog->sizes[i] != expected[i].size) {
            tw_fuzz_fail("message %u delivered with %u bytes; it was built with %u at offset %u", i,
                        dlog->sizes[i], expected[i].size, expected[i].offset);
        }
    }
    if (dlog->count < m->expected_count) {
        tw_fuzz_fail("%u messages delivered (error %s); the input built %u well formed ones first "
                    "(the next at offset %u, %u bytes)", dlog->count, tw_proto_error_name(error),
                    m->expected_count, expected[dlog->count].offset, expected[dlog->count].size);
    }
    if (m->state == model_unknown) return;
    if (dlog->count != m->expected_count) {
        tw_fuzz_fail("%u messages delivered; the input built %u, then %s", dlog->count, m->expected_count,
                    m->state == model_clean ? "nothing" : "a broken one");
    }
    if (m->state == model_clean && error != tw_proto_ok) {
        tw_fuzz_fail("error %s, but the stream holds only well formed messages", tw_proto_error_name(error));
    }
    if (m->state == model_error) {
        uint32_t arrived = stream_size - m->error_offset;
        /* A header error shows once the header is in; a body error once the whole message is. */
        uint32_t needed = m->error == tw_proto_bad_body_checksum ? m->error_size : TW_HEADER_SIZE;
        tw_proto_error want = arrived >= needed ? m->error : tw_proto_ok;
        if (error != want) {
            tw_fuzz_fail("error %s; the message at offset %u was built to give %s (%u of its %u bytes arrived)",
                        tw_proto_error_name(error), m->error_offset, tw_proto_error_name(want), arrived,
                        m->error_size);
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    input in = {.data = data, .size = size, .offset = 1};
    uint32_t size_max = frame_sizes_max[data[0] & 3u];
    uint8_t split_seed = data[0] >> 2;
    model m;
    uint32_t stream_size = stream_build(&in, size_max, &m);

    tw_frame_reader whole;
    tw_frame_reader_init(&whole, reader_buffer, size_max, cluster);
    log_init(&log_whole, stream_size, size_max);
    tw_proto_error error_whole = tw_frame_reader_feed(&whole, stream, stream_size, on_message, &log_whole);
    if (error_whole == tw_proto_ok && whole.used != stream_size - log_whole.next_offset) {
        tw_fuzz_fail("the reader keeps %u bytes; %u were not delivered", whole.used,
                    stream_size - log_whole.next_offset);
    }
    if (error_whole == tw_proto_ok && whole.used >= TW_HEADER_SIZE) {
        tw_header header;
        memcpy(&header, reader_buffer, TW_HEADER_SIZE);
        if (header.size <= whole.used) {
            tw_fuzz_fail("the reader keeps a whole message (%u of %u bytes) undelivered", whole.used, header.size);
        }
    }
    check_model(&m, &log_whole, error_whole, stream_size);
    if (error_whole != tw_proto_ok) {
        log_init(&log_after, stream_size, size_max);
        uint8_t more = 0;
        tw_proto_error again = tw_frame_reader_feed(&whole, &more, 1, on_message, &log_after);
        if (again == tw_proto_ok || log_after.count != 0) {
            tw_fuzz_fail("after error %s the reader took more bytes (%s, %u delivered)",
                        tw_proto_error_name(error_whole), tw_proto_error_name(again), log_after.count);
        }
    }

    tw_frame_reader pieces;
    tw_frame_reader_init(&pieces, reader_buffer, size_max, cluster);
    log_init(&log_pieces, stream_size, size_max);
    tw_proto_error error_pieces = decode_pieces(&pieces, stream_size, split_seed);
    if (error_pieces != error_whole || log_pieces.count != log_whole.count ||
        log_pieces.next_offset != log_whole.next_offset) {
        tw_fuzz_fail("in pieces: %u messages, %u bytes, %s; whole: %u messages, %u bytes, %s", log_pieces.count,
                    log_pieces.next_offset, tw_proto_error_name(error_pieces), log_whole.count,
                    log_whole.next_offset, tw_proto_error_name(error_whole));
    }
    if (tw_fuzz_verbose()) {
        printf("frames: a %u-byte stream, message_size_max %u: %u messages delivered, then %s\n", stream_size,
               size_max, log_whole.count, tw_proto_error_name(error_whole));
    }
    return 0;
}
