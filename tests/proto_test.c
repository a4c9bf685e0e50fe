/* The wire protocol: any split of a valid stream parses the same messages; every class of
 * malformed input is detected, named, and stops delivery at that message. Pure code, run
 * in both builds. */
#include <stdio.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/pcg.h>
#include <twin/proto.h>

#include "twin_test.h"

#define PROTO_TEST_SIZE_MAX 4096u
#define PROTO_TEST_MESSAGES_MAX 8u
#define PROTO_TEST_STREAM_MAX (PROTO_TEST_MESSAGES_MAX * PROTO_TEST_SIZE_MAX)

static const tw_u128 cluster = {.low = 0x1234, .high = 0x5678};

typedef struct stream {
    uint8_t bytes[PROTO_TEST_STREAM_MAX];
    uint32_t size;
    uint32_t offsets[PROTO_TEST_MESSAGES_MAX];
    uint32_t count;
} stream;

typedef struct received {
    uint8_t bytes[PROTO_TEST_STREAM_MAX];
    uint32_t size;
    uint32_t count;
} received;

static void append(stream *s, uint8_t command, uint8_t operation, const void *body, uint32_t body_size) {
    TW_ASSERT(s->count < PROTO_TEST_MESSAGES_MAX);
    tw_header header = {.cluster = cluster, .client = {.low = 7}, .session = 3, .request = s->count,
                        .size = TW_HEADER_SIZE + body_size, .release = 1, .command = command,
                        .operation = operation};
    tw_header_seal(&header, body);
    s->offsets[s->count++] = s->size;
    memcpy(s->bytes + s->size, &header, TW_HEADER_SIZE);
    if (body_size > 0) memcpy(s->bytes + s->size + TW_HEADER_SIZE, body, body_size);
    s->size += header.size;
}

static void on_message(void *context, const tw_header *header, const uint8_t *body) {
    received *r = context;
    memcpy(r->bytes + r->size, header, TW_HEADER_SIZE);
    memcpy(r->bytes + r->size + TW_HEADER_SIZE, body, header->size - TW_HEADER_SIZE);
    r->size += header->size;
    r->count++;
}

static uint8_t reader_buffer[PROTO_TEST_SIZE_MAX];

/* Feeds s in pieces whose sizes come from sizes() and checks the messages come out whole. */
static tw_proto_error parse(const stream *s, uint32_t (*piece)(uint32_t offset, void *), void *state,
                            received *r) {
    tw_frame_reader reader;
    tw_frame_reader_init(&reader, reader_buffer, PROTO_TEST_SIZE_MAX, cluster);
    memset(r, 0, sizeof(*r));
    uint32_t offset = 0;
    while (offset < s->size) {
        uint32_t size = piece(offset, state);
        if (size > s->size - offset) size = s->size - offset;
        TW_ASSERT(size > 0);
        tw_proto_error error = tw_frame_reader_feed(&reader, s->bytes + offset, size, on_message, r);
        if (error != tw_proto_ok) return error;
        offset += size;
    }
    TW_ASSERT(reader.used == 0); /* nothing left over */
    return tw_proto_ok;
}

static uint32_t piece_all(uint32_t offset, void *state) { (void)offset; (void)state; return PROTO_TEST_STREAM_MAX; }
static uint32_t piece_one(uint32_t offset, void *state) { (void)offset; (void)state; return 1; }
static uint32_t piece_split(uint32_t offset, void *state) {
    uint32_t split = *(uint32_t *)state;
    return offset < split ? split - offset : PROTO_TEST_STREAM_MAX;
}
static uint32_t piece_random(uint32_t offset, void *state) {
    (void)offset;
    return 1 + tw_pcg32_bounded(state, 700);
}

static void expect_same(const stream *s, const received *r) {
    TW_ASSERT(r->count == s->count);
    TW_ASSERT(r->size == s->size);
    TW_ASSERT(memcmp(r->bytes, s->bytes, s->size) == 0);
}

static stream valid;
static stream bad;
static received got;

static void build_valid(void) {
    memset(&valid, 0, sizeof(valid));
    tw_account accounts[2] = {{.id = {.low = 1}, .ledger = 1, .code = 10},
                              {.id = {.low = 2}, .ledger = 1, .code = 10}};
    static const char echo[13] = "hello, twin!";
    append(&valid, tw_command_register, tw_operation_none, NULL, 0);
    append(&valid, tw_command_request, tw_operation_create_accounts, accounts, sizeof(accounts));
    append(&valid, tw_command_request, tw_operation_echo, echo, sizeof(echo));
    append(&valid, tw_command_ping, tw_operation_none, NULL, 0);
    uint8_t large[PROTO_TEST_SIZE_MAX - TW_HEADER_SIZE];
    for (uint32_t i = 0; i < sizeof(large); i++) large[i] = (uint8_t)(i * 7);
    append(&valid, tw_command_request, tw_operation_echo, large, sizeof(large)); /* exactly the max */
}

/* Headers in a stream sit at any offset: change them through an aligned copy. */
static tw_header bad_header_get(uint32_t index) {
    tw_header header;
    memcpy(&header, bad.bytes + bad.offsets[index], sizeof(header));
    return header;
}

static void bad_header_put(uint32_t index, const tw_header *header) {
    memcpy(bad.bytes + bad.offsets[index], header, sizeof(*header));
}

static void proto_main(void *arg) {
    (void)arg;
    build_valid();

    /* Splits: all at once, a byte at a time, every two-piece split, random pieces. */
    TW_ASSERT(parse(&valid, piece_all, NULL, &got) == tw_proto_ok);
    expect_same(&valid, &got);
    TW_ASSERT(parse(&valid, piece_one, NULL, &got) == tw_proto_ok);
    expect_same(&valid, &got);
    for (uint32_t split = 1; split < valid.size; split++) {
        TW_ASSERT(parse(&valid, piece_split, &split, &got) == tw_proto_ok);
        expect_same(&valid, &got);
    }
    tw_pcg32 rng;
    tw_pcg32_seed(&rng, 1, 2);
    for (int i = 0; i < 1000; i++) {
        TW_ASSERT(parse(&valid, piece_random, &rng, &got) == tw_proto_ok);
        expect_same(&valid, &got);
    }

    /* Malformed classes, each in message 2 of the stream: messages 0 and 1 are delivered,
     * nothing after, and the error is named. */
    struct {
        const char *name;
        tw_proto_error expected;
    } classes[] = {
        {"a flipped header byte", tw_proto_bad_header_checksum},
        {"a flipped body byte", tw_proto_bad_body_checksum},
        {"size below the header", tw_proto_size_below_header},
        {"size above the maximum", tw_proto_size_above_max},
        {"unknown command", tw_proto_unknown_command},
        {"unknown operation", tw_proto_unknown_operation},
        {"an operation on a ping", tw_proto_unknown_operation},
        {"another cluster", tw_proto_wrong_cluster},
        {"a reserved byte set", tw_proto_reserved_not_zero},
    };
    uint32_t classes_count = sizeof(classes) / sizeof(classes[0]);
    for (uint32_t k = 0; k < classes_count; k++) {
        bad = valid;
        uint32_t index = k == 6 ? 3 : 2;
        tw_header header = bad_header_get(index);
        tw_header *h = &header;
        /* Each change but the first two is resealed, so the class itself is what fails. */
        switch (k) {
        case 0: h->session ^= 1; break;
        case 1: break; /* a body byte, below */
        case 2: h->size = TW_HEADER_SIZE - 1; tw_header_seal_header(h); break;
        case 3: h->size = PROTO_TEST_SIZE_MAX + 1; tw_header_seal_header(h); break;
        case 4: h->command = 99; tw_header_seal_header(h); break;
        case 5: h->operation = 99; tw_header_seal_header(h); break;
        case 6: h->operation = tw_operation_echo; tw_header_seal_header(h); break;
        case 7: h->cluster.low ^= 1; tw_header_seal_header(h); break;
        case 8: h->reserved[5] = 1; tw_header_seal_header(h); break;
        }
        bad_header_put(index, h);
        if (k == 1) bad.bytes[bad.offsets[2] + TW_HEADER_SIZE + 3] ^= 0x10;
        /* Byte at a time and all at once: the same error, the same messages before it. */
        for (int mode = 0; mode < 2; mode++) {
            tw_proto_error error = parse(&bad, mode == 0 ? piece_all : piece_one, NULL, &got);
            if (error != classes[k].expected) {
                printf("proto: %s: got %s, expected %s\n", classes[k].name, tw_proto_error_name(error),
                       tw_proto_error_name(classes[k].expected));
            }
            TW_ASSERT_MSG(error == classes[k].expected, classes[k].name);
            uint32_t delivered_before = k == 6 ? 3 : 2;
            TW_ASSERT(got.count == delivered_before);
        }
    }
    /* Which commands carry an operation: a register's reply has none, a request must. */
    tw_header reply = {.cluster = cluster, .client = {.low = 7}, .size = TW_HEADER_SIZE,
                       .command = tw_command_reply, .operation = tw_operation_none};
    tw_header_seal(&reply, NULL);
    TW_ASSERT(tw_header_check(&reply, cluster, PROTO_TEST_SIZE_MAX) == tw_proto_ok);
    reply.command = tw_command_request;
    tw_header_seal_header(&reply);
    TW_ASSERT(tw_header_check(&reply, cluster, PROTO_TEST_SIZE_MAX) == tw_proto_unknown_operation);
    TW_ASSERT(strcmp(tw_proto_error_name(tw_proto_unexpected_command), "unexpected_command") == 0);

    /* Events per request: the request and its largest reply both fit (4096: 3968-byte body). */
    TW_ASSERT(tw_operation_events_max(tw_operation_create_accounts, 4096) == 3968 / 64);
    TW_ASSERT(tw_operation_events_max(tw_operation_create_transfers, 4096) == 3968 / 80);
    TW_ASSERT(tw_operation_events_max(tw_operation_lookup_accounts, 4096) == 3968 / 64);
    TW_ASSERT(tw_operation_events_max(tw_operation_lookup_transfers, 4096) == 3968 / 80);
    TW_ASSERT(tw_operation_events_max(tw_operation_echo, 4096) == 3968);
    TW_ASSERT(tw_operation_events_max(tw_operation_create_transfers, TW_MESSAGE_SIZE_MAX) ==
              (TW_MESSAGE_SIZE_MAX - TW_HEADER_SIZE) / 80);

    printf("proto: %u messages parse the same over every 2-piece split (%u bytes), byte by byte, "
           "and 1000 random splits; %u malformed classes detected and named\n",
           valid.count, valid.size, classes_count);
}

static void *prepare(tw_test_build build) {
    (void)build;
    return NULL;
}

int main(int argc, char **argv) {
    tw_test_case test = {.name = "proto", .prepare = prepare, .main_fn = proto_main};
    return tw_test_main(argc, argv, &test);
}
