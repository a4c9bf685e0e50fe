/* The client's core (include/twin/client_core.h) driven directly: no world, no loop, no
 * socket, no thread. The test plays the shell (its port records every call) and the
 * server (it builds sealed replies and feeds them through the core's frame reader in
 * pieces of various sizes), and checks specific values:
 *   - the register sealed at init; packets that waited for it checked in A5's order
 *     (invalid operation, invalid data size, too much data) when its reply comes;
 *   - no request sealed while a write holds the message buffer; then three create packets
 *     in one request, a reply failing the first and last event of each, rebased per packet,
 *     and the next request sealed before those callbacks run (A8);
 *   - a create packet whose last event is linked travels alone; an echo batch split back
 *     into each packet's own bytes; a stale duplicate and another client's reply ignored;
 *     two lookups, never batched, each in its own request;
 *   - a malformed reply and a reply to a request never sent each ask the shell to fail the
 *     connection; the retry on the next connection sends the same bytes;
 *   - a packet that would take a waiting batch past its limit waits as a request of its own;
 *   - shutdown completes the request in flight, the pending ones and the submitted ones with
 *     client_shutdown, after port.stop;
 *   - an eviction (release too low) completes the request in flight, the pending ones and
 *     the ones submitted meanwhile with client_release_too_low, and every later packet at
 *     once; an eviction before registration (too many clients) maps to client_evicted.
 * Linked against the real library (or the sim library outside any world): the core does
 * no IO, so either works the same. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/client_core.h>
#include <twin/proto.h>

#define MESSAGE_SIZE_MAX 4096u
#define BATCH_SIZE_MAX 1024u /* what the test's server announces: the client batches within */
#define RELEASE 3u
#define SESSION 99u
#define COMPLETIONS_MAX 32u
#define RESULT_COPY_MAX 1024u
#define STREAM_MAX (4u * MESSAGE_SIZE_MAX)

static const tw_u128 cluster = {.low = 7, .high = 0};
static const tw_u128 client_id = {.low = 0x11, .high = 0x22};
static const tw_u128 other_id = {.low = 0x33, .high = 0};

/* ---- the test's shell: a port that records ------------------------------------------- */

typedef struct completion_record {
    tw_packet *packet;
    uint8_t status;
    uint64_t timestamp;
    bool result_present;
    uint32_t result_size;
    uint8_t result[RESULT_COPY_MAX];
    uint32_t sequence; /* when, among every port call and completion */
} completion_record;

typedef struct shell {
    tw_client_core core;
    uint32_t sequence;
    uint32_t takes;
    uint32_t readies;
    uint32_t ready_sequence;    /* of the last message_ready */
    uint32_t accepts;
    uint32_t fails;
    uint32_t stops;
    uint32_t stop_sequence;     /* of the last stop */
    tw_packet *submitted;       /* what the next submitted_take hands over */
    completion_record completions[COMPLETIONS_MAX];
    uint32_t completions_count;
} shell;

static void check_u64(const char *what, uint64_t got, uint64_t expected) {
    if (got == expected) return;
    fprintf(stderr, "client_core: %s: got %llu, expected %llu\n", what, (unsigned long long)got,
            (unsigned long long)expected);
    abort();
}

static tw_packet *port_submitted_take(void *context) {
    shell *s = context;
    s->takes++;
    s->sequence++;
    tw_packet *all = s->submitted;
    s->submitted = NULL;
    return all;
}

static void port_message_ready(void *context) {
    shell *s = context;
    TW_ASSERT(s->core.inflight_active);
    s->readies++;
    s->ready_sequence = ++s->sequence;
}

static void port_reply_accepted(void *context) {
    shell *s = context;
    s->accepts++;
    s->sequence++;
}

static void port_connection_fail(void *context) {
    shell *s = context;
    TW_ASSERT(!s->core.connected); /* the core takes no more of its bytes */
    s->fails++;
    s->sequence++;
}

static void port_stop(void *context) {
    shell *s = context;
    TW_ASSERT(!tw_client_core_active(&s->core));
    s->stops++;
    s->stop_sequence = ++s->sequence;
}

static void completed(uintptr_t context, tw_packet *packet, uint64_t timestamp, const uint8_t *result,
                      uint32_t result_size) {
    shell *s = (shell *)context;
    TW_ASSERT(s->completions_count < COMPLETIONS_MAX && result_size <= RESULT_COPY_MAX);
    completion_record *r = &s->completions[s->completions_count++];
    *r = (completion_record){.packet = packet, .status = packet->status, .timestamp = timestamp,
                             .result_present = result != NULL, .result_size = result_size,
                             .sequence = ++s->sequence};
    if (result_size > 0) memcpy(r->result, result, result_size);
}

static void shell_init(shell *s) {
    memset(s, 0, sizeof(*s));
    tw_client_core_options options = {
        .cluster = cluster,
        .id = client_id,
        .release = RELEASE,
        .batching = true,
        .message_size_max = MESSAGE_SIZE_MAX,
        .completion_context = (uintptr_t)s,
        .completion = completed,
    };
    tw_client_port port = {
        .context = s,
        .submitted_take = port_submitted_take,
        .message_ready = port_message_ready,
        .reply_accepted = port_reply_accepted,
        .connection_fail = port_connection_fail,
        .stop = port_stop,
    };
    TW_ASSERT(tw_client_core_init(&s->core, &options, &port) == tw_client_init_ok);
    /* Init makes no port call. */
    TW_ASSERT(s->sequence == 0 && s->readies == 0);
}

/* The packets the user hands over (tw_client_submit's part), linked for submitted_take. */
static void submitted_set(shell *s, tw_packet **packets, uint32_t count) {
    TW_ASSERT(s->submitted == NULL && count > 0);
    for (uint32_t i = 0; i < count; i++) {
        tw_client_core_packet_submitted(packets[i]);
        if (i > 0) packets[i - 1]->links.next = packets[i];
    }
    s->submitted = packets[0];
}

static void packet_set(tw_packet *packet, tw_operation operation, const void *data, uint32_t data_size) {
    *packet = (tw_packet){.operation = (uint8_t)operation, .data = data, .data_size = data_size};
}

static void expect_completion(const shell *s, uint32_t index, const tw_packet *packet,
                              tw_packet_status status, uint64_t timestamp, const void *result,
                              uint32_t result_size) {
    TW_ASSERT_MSG(index < s->completions_count, "a completion that did not happen");
    const completion_record *r = &s->completions[index];
    TW_ASSERT_MSG(r->packet == packet, "completions in another order");
    check_u64("status", r->status, (uint64_t)status);
    check_u64("timestamp", r->timestamp, timestamp);
    check_u64("result size", r->result_size, result_size);
    TW_ASSERT(r->result_present == (status == tw_packet_ok));
    if (result_size > 0) TW_ASSERT_MSG(memcmp(r->result, result, result_size) == 0, "result bytes differ");
}

/* ---- messages both ways --------------------------------------------------------------- */

/* Takes the sealed message as the shell would write it, checks it is well formed and says
 * what is expected, and (written) reports the write. Returns its size. */
static uint32_t expect_message(shell *s, uint8_t *copy, uint64_t request, tw_command command,
                               tw_operation operation, const void *body, uint32_t body_size,
                               bool written) {
    const tw_header *message = tw_client_core_message_send(&s->core);
    TW_ASSERT(s->core.message_lent);
    TW_ASSERT(tw_header_check(message, cluster, MESSAGE_SIZE_MAX) == tw_proto_ok);
    TW_ASSERT(tw_body_valid(message, message + 1));
    check_u64("request", message->request, request);
    check_u64("command", message->command, (uint64_t)command);
    check_u64("operation", message->operation, (uint64_t)operation);
    check_u64("message size", message->size, TW_HEADER_SIZE + body_size);
    check_u64("session", message->session, command == tw_command_register ? 0 : SESSION);
    check_u64("release", message->release, RELEASE);
    TW_ASSERT(message->client.low == client_id.low && message->client.high == client_id.high);
    if (body_size > 0) TW_ASSERT_MSG(memcmp(message + 1, body, body_size) == 0, "request body differs");
    memcpy(copy, message, message->size);
    if (written) tw_client_core_message_written(&s->core);
    return message->size;
}

/* A server's message: header fields from the template, size and checksums filled. */
static uint32_t message_build(uint8_t *out, tw_header header, const void *body, uint32_t body_size) {
    TW_ASSERT(TW_HEADER_SIZE + body_size <= MESSAGE_SIZE_MAX);
    header.cluster = cluster;
    header.size = TW_HEADER_SIZE + body_size;
    header.release = RELEASE;
    tw_header_seal(&header, body);
    memcpy(out, &header, TW_HEADER_SIZE);
    if (body_size > 0) memcpy(out + TW_HEADER_SIZE, body, body_size);
    return header.size;
}

static uint32_t reply_build(uint8_t *out, uint64_t request, tw_operation operation, uint64_t timestamp,
                            const void *body, uint32_t body_size) {
    tw_header header = {.client = client_id, .session = SESSION, .request = request, .op = request,
                        .timestamp = timestamp, .command = tw_command_reply,
                        .operation = (uint8_t)operation};
    return message_build(out, header, body, body_size);
}

static uint32_t eviction_build(uint8_t *out, tw_eviction_reason reason) {
    tw_header header = {.client = client_id, .command = tw_command_eviction,
                        .eviction_reason = (uint8_t)reason};
    return message_build(out, header, NULL, 0);
}

/* Feeds bytes to the core piece_bytes at a time (or less, where the reader has less
 * room), as reads would; stops where the core stops taking the connection's bytes. */
static uint32_t feed(shell *s, const uint8_t *bytes, uint32_t size, uint32_t piece_bytes) {
    TW_ASSERT(piece_bytes > 0);
    uint32_t fed = 0;
    while (fed < size && s->core.connected) {
        uint32_t room = 0;
        uint8_t *space = tw_client_core_read_space(&s->core, &room);
        TW_ASSERT(room > 0);
        uint32_t count = size - fed;
        if (count > piece_bytes) count = piece_bytes;
        if (count > room) count = room;
        memcpy(space, bytes + fed, count);
        tw_client_core_receive(&s->core, count);
        fed += count;
    }
    return fed;
}

/* ---- events --------------------------------------------------------------------------- */

static void accounts_fill(tw_account *accounts, uint32_t count, uint64_t id_first, bool last_linked) {
    for (uint32_t i = 0; i < count; i++) {
        accounts[i] = (tw_account){.id = {.low = id_first + i}, .ledger = 1, .code = 1};
    }
    if (last_linked) accounts[count - 1].flags = tw_account_linked;
}

/* ---- the scenarios ---------------------------------------------------------------------- */

/* Registration, batching, demultiplexing, malformed input, a retry, shutdown. */
static void test_requests(void) {
    static shell s;
    static uint8_t stream[STREAM_MAX];
    static uint8_t sent[MESSAGE_SIZE_MAX];
    static uint8_t sent_again[MESSAGE_SIZE_MAX];
    shell_init(&s);
    TW_ASSERT(s.core.inflight_active && s.core.inflight == NULL && !s.core.registered);

    /* The register, sent; its write has not reported when the reply comes. */
    expect_message(&s, sent, 0, tw_command_register, tw_operation_none, NULL, 0, false);
    tw_client_core_connected(&s.core);

    /* Packets submitted before registration, handed over when its reply is accepted. */
    static tw_account c1[3], c2[2], c3[4], c_linked[1];
    static tw_transfer too_much[13];
    static uint8_t bad_size[65];
    static uint8_t bad_operation[3];
    static const uint8_t e1[5] = {1, 2, 3, 4, 5};
    static const uint8_t e2[7] = {10, 11, 12, 13, 14, 15, 16};
    static const tw_u128 l1[2] = {{.low = 100}, {.low = 101}};
    static const tw_u128 l2[1] = {{.low = 102}};
    accounts_fill(c1, 3, 1, false);
    accounts_fill(c2, 2, 4, false);
    accounts_fill(c3, 4, 6, false);
    accounts_fill(c_linked, 1, 10, true);
    static tw_packet p_c1, p_c2, p_c3, p_linked, p_too_much, p_bad_size, p_bad_operation;
    static tw_packet p_e1, p_e2, p_l1, p_l2;
    packet_set(&p_c1, tw_operation_create_accounts, c1, sizeof(c1));
    packet_set(&p_bad_operation, tw_operation_none, bad_operation, sizeof(bad_operation));
    p_bad_operation.operation = 9; /* and a data size no event size divides: the operation first */
    packet_set(&p_c2, tw_operation_create_accounts, c2, sizeof(c2));
    packet_set(&p_bad_size, tw_operation_create_accounts, bad_size, sizeof(bad_size));
    packet_set(&p_linked, tw_operation_create_accounts, c_linked, sizeof(c_linked));
    packet_set(&p_c3, tw_operation_create_accounts, c3, sizeof(c3));
    packet_set(&p_too_much, tw_operation_create_transfers, too_much, sizeof(too_much));
    packet_set(&p_e1, tw_operation_echo, e1, sizeof(e1));
    packet_set(&p_l1, tw_operation_lookup_accounts, l1, sizeof(l1));
    packet_set(&p_e2, tw_operation_echo, e2, sizeof(e2));
    packet_set(&p_l2, tw_operation_lookup_accounts, l2, sizeof(l2));
    tw_packet *before[] = {&p_c1, &p_bad_operation, &p_c2, &p_bad_size, &p_linked, &p_c3,
                           &p_too_much, &p_e1, &p_l1, &p_e2, &p_l2};
    submitted_set(&s, before, sizeof(before) / sizeof(before[0]));

    /* The register's reply, a byte at a time. */
    tw_header register_reply = {.client = client_id, .session = SESSION, .request = 0, .op = 1,
                                .timestamp = 500, .command = tw_command_reply,
                                .batch_size_max = BATCH_SIZE_MAX};
    uint32_t size = message_build(stream, register_reply, NULL, 0);
    check_u64("fed", feed(&s, stream, size, 1), size);
    TW_ASSERT(s.core.registered && s.core.connected);
    check_u64("session", s.core.session, SESSION);
    check_u64("batch_body_max", s.core.batch_body_max, BATCH_SIZE_MAX);
    check_u64("events_max create_accounts", s.core.events_max[tw_operation_create_accounts], 16);
    check_u64("events_max create_transfers", s.core.events_max[tw_operation_create_transfers], 12);
    check_u64("events_max lookup_accounts", s.core.events_max[tw_operation_lookup_accounts], 16);
    check_u64("events_max echo", s.core.events_max[tw_operation_echo], BATCH_SIZE_MAX);
    check_u64("accepts", s.accepts, 1);
    check_u64("takes", s.takes, 1);
    /* A5: each bad packet completes at once with the first rule it breaks. */
    check_u64("completions", s.completions_count, 3);
    expect_completion(&s, 0, &p_bad_operation, tw_packet_invalid_operation, 0, NULL, 0);
    expect_completion(&s, 1, &p_bad_size, tw_packet_invalid_data_size, 0, NULL, 0);
    expect_completion(&s, 2, &p_too_much, tw_packet_too_much_data, 0, NULL, 0);
    /* The register's write still holds the message buffer: nothing is sealed over it. */
    check_u64("readies before the write reported", s.readies, 0);
    TW_ASSERT(!s.core.inflight_active);
    /* Pending: c1 (c2, c3 behind it), the linked one alone, e1 (e2), l1, l2. */
    TW_ASSERT(s.core.pending_head == &p_c1);
    check_u64("c1 batch count", p_c1.links.batch_count, 3);
    check_u64("c1 batch events", p_c1.links.batch_events, 9);
    TW_ASSERT(p_c1.links.next == &p_linked && p_linked.links.batch_count == 1);
    TW_ASSERT(p_linked.links.next == &p_e1 && p_e1.links.batch_count == 2);
    TW_ASSERT(p_e1.links.next == &p_l1 && p_l1.links.next == &p_l2 && s.core.pending_tail == &p_l2);
    check_u64("l1 batch count", p_l1.links.batch_count, 1);

    /* The write reports; the shell asks for the next request: c1, c2, c3 in one. */
    tw_client_core_message_written(&s.core);
    tw_client_core_send_next(&s.core);
    check_u64("readies", s.readies, 1);
    static tw_account creates_body[9];
    memcpy(creates_body, c1, sizeof(c1));
    memcpy(creates_body + 3, c2, sizeof(c2));
    memcpy(creates_body + 5, c3, sizeof(c3));
    expect_message(&s, sent, 1, tw_command_request, tw_operation_create_accounts, creates_body,
                   sizeof(creates_body), true);

    /* Failures at the first and last event of each packet: 0, 2 | 3, 4 | 5, 8. */
    const tw_create_result results[] = {{0, 6}, {2, 11}, {3, 12}, {4, 16}, {5, 13}, {8, 14}};
    size = reply_build(stream, 1, tw_operation_create_accounts, 1000, results, sizeof(results));
    uint32_t completions_before = s.completions_count;
    check_u64("fed", feed(&s, stream, size, 7), size);
    check_u64("accepts", s.accepts, 2);
    check_u64("completions", s.completions_count, completions_before + 3);
    const tw_create_result c1_results[] = {{0, 6}, {2, 11}};
    const tw_create_result c2_results[] = {{0, 12}, {1, 16}};
    const tw_create_result c3_results[] = {{0, 13}, {3, 14}};
    expect_completion(&s, completions_before + 0, &p_c1, tw_packet_ok, 1000, c1_results, sizeof(c1_results));
    expect_completion(&s, completions_before + 1, &p_c2, tw_packet_ok, 1000, c2_results, sizeof(c2_results));
    expect_completion(&s, completions_before + 2, &p_c3, tw_packet_ok, 1000, c3_results, sizeof(c3_results));
    /* A8: the next request (the linked packet) was sealed before those callbacks. */
    check_u64("readies", s.readies, 2);
    TW_ASSERT(s.ready_sequence < s.completions[completions_before].sequence);

    /* The linked packet, alone; its reply has no failures (an empty, non-NULL result). */
    expect_message(&s, sent, 2, tw_command_request, tw_operation_create_accounts, c_linked,
                   sizeof(c_linked), true);
    size = reply_build(stream, 2, tw_operation_create_accounts, 1001, NULL, 0);
    check_u64("fed", feed(&s, stream, size, size), size);
    expect_completion(&s, completions_before + 3, &p_linked, tw_packet_ok, 1001, NULL, 0);

    /* The echo batch. Before its reply: a stale duplicate of request 2's reply, and a reply
     * for another client; both ignored, all in one stream cut into 5-byte pieces. */
    uint8_t echo_body[sizeof(e1) + sizeof(e2)];
    memcpy(echo_body, e1, sizeof(e1));
    memcpy(echo_body + sizeof(e1), e2, sizeof(e2));
    expect_message(&s, sent, 3, tw_command_request, tw_operation_echo, echo_body, sizeof(echo_body), true);
    uint32_t stream_size = reply_build(stream, 2, tw_operation_create_accounts, 1001, NULL, 0);
    tw_header foreign = {.client = other_id, .session = SESSION, .request = 3, .timestamp = 1002,
                         .command = tw_command_reply, .operation = tw_operation_echo};
    stream_size += message_build(stream + stream_size, foreign, echo_body, sizeof(echo_body));
    stream_size += reply_build(stream + stream_size, 3, tw_operation_echo, 1003, echo_body, sizeof(echo_body));
    completions_before = s.completions_count;
    check_u64("fed", feed(&s, stream, stream_size, 5), stream_size);
    check_u64("fails", s.fails, 0);
    check_u64("completions", s.completions_count, completions_before + 2);
    expect_completion(&s, completions_before + 0, &p_e1, tw_packet_ok, 1003, e1, sizeof(e1));
    expect_completion(&s, completions_before + 1, &p_e2, tw_packet_ok, 1003, e2, sizeof(e2));

    /* Lookups are never batched: l1 alone, then l2 alone. */
    expect_message(&s, sent, 4, tw_command_request, tw_operation_lookup_accounts, l1, sizeof(l1), true);
    tw_account found = {.id = {.low = 101}, .ledger = 1, .code = 1, .timestamp = 77};
    size = reply_build(stream, 4, tw_operation_lookup_accounts, 1004, &found, sizeof(found));
    check_u64("fed", feed(&s, stream, size, 100), size);
    expect_completion(&s, completions_before + 2, &p_l1, tw_packet_ok, 1004, &found, sizeof(found));
    uint32_t l2_size = expect_message(&s, sent, 5, tw_command_request, tw_operation_lookup_accounts,
                                      l2, sizeof(l2), true);
    TW_ASSERT(s.core.pending_head == NULL);

    /* A malformed reply (its body changed after sealing): the connection fails, the request
     * stays in flight, nothing completes. */
    completions_before = s.completions_count;
    size = reply_build(stream, 5, tw_operation_lookup_accounts, 1005, &found, sizeof(found));
    stream[TW_HEADER_SIZE + 3] ^= 0x40;
    feed(&s, stream, size, 64);
    check_u64("fails", s.fails, 1);
    TW_ASSERT(!s.core.connected && s.core.inflight_active && s.core.inflight == &p_l2);
    check_u64("completions", s.completions_count, completions_before);

    /* The retry, on a new connection: the same bytes, the same request number. */
    tw_client_core_connected(&s.core);
    check_u64("retry size",
              expect_message(&s, sent_again, 5, tw_command_request, tw_operation_lookup_accounts, l2,
                             sizeof(l2), true),
              l2_size);
    TW_ASSERT(memcmp(sent, sent_again, l2_size) == 0);
    check_u64("sends of request 5", s.core.inflight_sends, 2);

    /* A reply to a request never sent (6) cannot be right: the connection fails too. */
    size = reply_build(stream, 6, tw_operation_lookup_accounts, 1006, NULL, 0);
    feed(&s, stream, size, size);
    check_u64("fails", s.fails, 2);
    TW_ASSERT(!s.core.connected && s.core.inflight == &p_l2);

    /* More packets wait (two creates batch); one more is still the shell's. Shutdown
     * completes them all, in flight first, with client_shutdown, after port.stop. */
    tw_client_core_connected(&s.core);
    static tw_account c4[1], c5[2], c6[1], c7[14];
    accounts_fill(c4, 1, 20, false);
    accounts_fill(c5, 2, 21, false);
    accounts_fill(c6, 1, 23, false);
    accounts_fill(c7, 14, 30, false);
    static tw_packet p_c4, p_c5, p_c6, p_c7;
    packet_set(&p_c4, tw_operation_create_accounts, c4, sizeof(c4));
    packet_set(&p_c5, tw_operation_create_accounts, c5, sizeof(c5));
    packet_set(&p_c6, tw_operation_create_accounts, c6, sizeof(c6));
    packet_set(&p_c7, tw_operation_create_accounts, c7, sizeof(c7));
    tw_client_core_packet_submitted(&p_c4);
    tw_client_core_enqueue(&s.core, &p_c4);
    tw_client_core_packet_submitted(&p_c5);
    tw_client_core_enqueue(&s.core, &p_c5);
    TW_ASSERT(s.core.pending_head == &p_c4 && p_c4.links.batch_count == 2);
    /* 3 + 14 events would pass the batch's 16: c7 waits as a request of its own. */
    tw_client_core_packet_submitted(&p_c7);
    tw_client_core_enqueue(&s.core, &p_c7);
    check_u64("c4 batch events", p_c4.links.batch_events, 3);
    TW_ASSERT(p_c4.links.next == &p_c7 && s.core.pending_tail == &p_c7 && p_c7.links.batch_count == 1);
    tw_client_core_packet_submitted(&p_c6);
    completions_before = s.completions_count;
    tw_client_core_shutdown(&s.core, &p_c6);
    check_u64("stops", s.stops, 1);
    TW_ASSERT(s.core.shutdown && !s.core.connected && !tw_client_core_active(&s.core));
    check_u64("completions", s.completions_count, completions_before + 5);
    expect_completion(&s, completions_before + 0, &p_l2, tw_packet_client_shutdown, 0, NULL, 0);
    expect_completion(&s, completions_before + 1, &p_c4, tw_packet_client_shutdown, 0, NULL, 0);
    expect_completion(&s, completions_before + 2, &p_c5, tw_packet_client_shutdown, 0, NULL, 0);
    expect_completion(&s, completions_before + 3, &p_c7, tw_packet_client_shutdown, 0, NULL, 0);
    expect_completion(&s, completions_before + 4, &p_c6, tw_packet_client_shutdown, 0, NULL, 0);
    TW_ASSERT(s.stop_sequence < s.completions[completions_before].sequence);
    TW_ASSERT(s.core.pending_head == NULL && s.core.inflight == NULL && !s.core.inflight_active);
    check_u64("completions in all", s.completions_count, 15);
    tw_client_core_deinit(&s.core);
    printf("client_core: requests: 15 packets completed, 5 requests, 2 failed connections\n");
}

/* An eviction with a request in flight and others pending; then every packet at once. */
static void test_eviction(void) {
    static shell s;
    static uint8_t stream[STREAM_MAX];
    static uint8_t sent[MESSAGE_SIZE_MAX];
    shell_init(&s);
    expect_message(&s, sent, 0, tw_command_register, tw_operation_none, NULL, 0, true);
    tw_client_core_connected(&s.core);
    tw_header register_reply = {.client = client_id, .session = SESSION, .request = 0, .op = 1,
                                .timestamp = 500, .command = tw_command_reply,
                                .batch_size_max = BATCH_SIZE_MAX};
    uint32_t size = message_build(stream, register_reply, NULL, 0);
    feed(&s, stream, size, size);
    TW_ASSERT(s.core.registered && s.takes == 1 && s.readies == 0);

    /* p1 is sealed at once (nothing in flight, the buffer free) and sent; p2 and p3 batch;
     * p4 (a lookup) waits alone. */
    static const uint8_t e1[4] = {9, 8, 7, 6};
    static tw_account c2[1], c3[2];
    static const tw_u128 l4[1] = {{.low = 5}};
    static tw_transfer t5[1];
    accounts_fill(c2, 1, 1, false);
    accounts_fill(c3, 2, 2, false);
    static tw_packet p1, p2, p3, p4, q1, q2, later;
    packet_set(&p1, tw_operation_echo, e1, sizeof(e1));
    packet_set(&p2, tw_operation_create_accounts, c2, sizeof(c2));
    packet_set(&p3, tw_operation_create_accounts, c3, sizeof(c3));
    packet_set(&p4, tw_operation_lookup_accounts, l4, sizeof(l4));
    tw_packet *packets[] = {&p1, &p2, &p3, &p4};
    for (uint32_t i = 0; i < 4; i++) {
        tw_client_core_packet_submitted(packets[i]);
        tw_client_core_enqueue(&s.core, packets[i]);
        if (i == 0) {
            check_u64("readies", s.readies, 1);
            expect_message(&s, sent, 1, tw_command_request, tw_operation_echo, e1, sizeof(e1), false);
        }
    }
    TW_ASSERT(s.core.pending_head == &p2 && p2.links.batch_count == 2 && p2.links.next == &p4);

    /* Submitted meanwhile: a valid transfer and an invalid operation (A5: that first). */
    packet_set(&q1, tw_operation_create_transfers, t5, sizeof(t5));
    packet_set(&q2, tw_operation_none, NULL, 0);
    tw_packet *meanwhile[] = {&q1, &q2};
    submitted_set(&s, meanwhile, 2);

    /* The eviction, in two pieces. */
    size = eviction_build(stream, tw_eviction_client_release_too_low);
    feed(&s, stream, size, 50);
    check_u64("evicted", s.core.evicted, tw_packet_client_release_too_low);
    check_u64("stops", s.stops, 1);
    check_u64("takes", s.takes, 2);
    check_u64("fails", s.fails, 0);
    TW_ASSERT(!s.core.connected && !tw_client_core_active(&s.core) && !s.core.inflight_active);
    check_u64("completions", s.completions_count, 6);
    expect_completion(&s, 0, &p1, tw_packet_client_release_too_low, 0, NULL, 0);
    expect_completion(&s, 1, &p2, tw_packet_client_release_too_low, 0, NULL, 0);
    expect_completion(&s, 2, &p3, tw_packet_client_release_too_low, 0, NULL, 0);
    expect_completion(&s, 3, &p4, tw_packet_client_release_too_low, 0, NULL, 0);
    expect_completion(&s, 4, &q1, tw_packet_client_release_too_low, 0, NULL, 0);
    expect_completion(&s, 5, &q2, tw_packet_invalid_operation, 0, NULL, 0);
    TW_ASSERT(s.stop_sequence < s.completions[0].sequence);

    /* Later packets complete at once with the same status; the lent write may still report. */
    packet_set(&later, tw_operation_echo, e1, sizeof(e1));
    tw_client_core_packet_submitted(&later);
    tw_client_core_enqueue(&s.core, &later);
    expect_completion(&s, 6, &later, tw_packet_client_release_too_low, 0, NULL, 0);
    tw_client_core_message_written(&s.core);
    check_u64("readies", s.readies, 1);

    /* Shutdown has nothing left to complete. */
    tw_client_core_shutdown(&s.core, NULL);
    check_u64("stops", s.stops, 2);
    check_u64("completions", s.completions_count, 7);
    tw_client_core_deinit(&s.core);

    /* Evicted before registration (too many clients: client_evicted): the register in
     * flight has no packet; a packet then completes with the mapped status. */
    shell_init(&s);
    expect_message(&s, sent, 0, tw_command_register, tw_operation_none, NULL, 0, true);
    tw_client_core_connected(&s.core);
    size = eviction_build(stream, tw_eviction_too_many_clients);
    feed(&s, stream, size, 3);
    check_u64("evicted", s.core.evicted, tw_packet_client_evicted);
    TW_ASSERT(!s.core.registered && s.completions_count == 0 && s.stops == 1);
    packet_set(&later, tw_operation_echo, e1, sizeof(e1));
    tw_client_core_packet_submitted(&later);
    tw_client_core_enqueue(&s.core, &later);
    expect_completion(&s, 0, &later, tw_packet_client_evicted, 0, NULL, 0);
    tw_client_core_shutdown(&s.core, NULL);
    tw_client_core_deinit(&s.core);
    printf("client_core: eviction: 8 packets completed with the mapped status\n");
}

int main(void) {
    test_requests();
    test_eviction();
    printf("client_core: passed\n");
    return 0;
}
