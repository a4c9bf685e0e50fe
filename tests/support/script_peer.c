/* twin tests: a scripted server (see script_peer.h). */
#include <stdio.h>
#include <string.h>

#include <twin/assert.h>

#include "script_peer.h"

static char problem[256]; /* tw_panic keeps the pointer */

static tw_action step_done(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    *(tw_result *)userdata = result;
    return tw_disarm;
}

/* Runs the peer's loop until its one operation has completed, or fails the run. */
static void step_wait(tw_peer *peer, const char *what) {
    tw_loop_update_now(peer->loop);
    uint64_t deadline_ns = tw_loop_now_ns(peer->loop) + TW_PEER_WAIT_NS;
    while (tw_completion_active(&peer->c)) {
        tw_loop_update_now(peer->loop);
        uint64_t now_ns = tw_loop_now_ns(peer->loop);
        if (now_ns >= deadline_ns) {
            snprintf(problem, sizeof(problem), "script peer: waited %llu s for %s",
                     (unsigned long long)(TW_PEER_WAIT_NS / 1000000000u), what);
            TW_ASSERT_MSG(false, problem);
        }
        TW_ASSERT(tw_loop_run_for(peer->loop, deadline_ns - now_ns) == tw_loop_ok);
    }
}

void tw_peer_listen(tw_peer *peer, tw_u128 cluster) {
    TW_ASSERT(peer != NULL);
    memset(peer, 0, sizeof(*peer));
    peer->cluster = cluster;
    TW_ASSERT(tw_loop_init(&peer->loop, NULL) == tw_loop_ok);
    tw_address any;
    TW_ASSERT(tw_address_parse("127.0.0.1:0", &any) == tw_loop_ok);
    TW_ASSERT(tw_tcp_open(peer->loop, &any, &peer->listener) == tw_loop_ok);
    TW_ASSERT(tw_tcp_bind(peer->loop, peer->listener, &any) == tw_loop_ok);
    TW_ASSERT(tw_tcp_listen(peer->loop, peer->listener, 16) == tw_loop_ok);
    TW_ASSERT(tw_tcp_local_address(peer->loop, peer->listener, &peer->address) == tw_loop_ok);
}

static void close_fd(tw_peer *peer, tw_tcp tcp) {
    tw_result result = {0};
    tw_tcp_close(peer->loop, &peer->c, tcp, &result, step_done);
    step_wait(peer, "a close");
}

void tw_peer_close_conn(tw_peer *peer) {
    TW_ASSERT(peer->conn_open);
    close_fd(peer, peer->conn);
    peer->conn_open = false;
}

void tw_peer_accept(tw_peer *peer) {
    if (peer->conn_open) tw_peer_close_conn(peer);
    tw_result result = {0};
    tw_tcp_accept(peer->loop, &peer->c, peer->listener, &result, step_done);
    step_wait(peer, "the client to connect");
    TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
    peer->conn = tw_tcp_accepted(result);
    peer->conn_open = true;
    peer->eof = false;
    peer->accepted++;
    peer->queue_count = 0;
    tw_frame_reader_init(&peer->reader, peer->receive_buffer, TW_PEER_MESSAGE_SIZE_MAX, peer->cluster);
}

static void on_message(void *context, const tw_header *header, const uint8_t *body) {
    tw_peer *peer = context;
    TW_ASSERT_MSG(peer->queue_count < TW_PEER_QUEUE_MAX, "script peer: too many messages unread");
    tw_peer_message *m = &peer->queue[(peer->queue_head + peer->queue_count) % TW_PEER_QUEUE_MAX];
    m->header = *header;
    memcpy(m->body, body, header->size - TW_HEADER_SIZE);
    peer->queue_count++;
}

bool tw_peer_read(tw_peer *peer, const char *waiting_for) {
    TW_ASSERT(peer->conn_open);
    while (peer->queue_count == 0) {
        if (peer->eof) return false;
        uint32_t room = 0;
        uint8_t *space = tw_frame_reader_space(&peer->reader, &room);
        tw_result result = {0};
        tw_tcp_read(peer->loop, &peer->c, peer->conn, space, room, &result, step_done);
        step_wait(peer, waiting_for);
        if (result.error == tw_loop_eof || result.error == tw_loop_reset) {
            peer->eof = true;
            continue;
        }
        TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
        tw_proto_error error = tw_frame_reader_commit(&peer->reader, (uint32_t)result.value, on_message, peer);
        TW_ASSERT_MSG(error == tw_proto_ok, "script peer: the client sent a malformed message");
    }
    peer->last = peer->queue[peer->queue_head];
    peer->queue_head = (peer->queue_head + 1) % TW_PEER_QUEUE_MAX;
    peer->queue_count--;
    return true;
}

void tw_peer_send(tw_peer *peer, const tw_header *header, const void *body, uint32_t body_size) {
    TW_ASSERT(peer->conn_open && body_size <= sizeof(peer->out.body));
    peer->out.header = *header;
    peer->out.header.cluster = peer->cluster;
    peer->out.header.size = TW_HEADER_SIZE + body_size;
    if (body_size > 0) memcpy(peer->out.body, body, body_size);
    tw_header_seal(&peer->out.header, peer->out.body);
    const uint8_t *bytes = (const uint8_t *)&peer->out;
    uint32_t sent = 0;
    while (sent < peer->out.header.size) {
        tw_result result = {0};
        tw_tcp_write(peer->loop, &peer->c, peer->conn, bytes + sent, peer->out.header.size - sent,
                     &result, step_done);
        step_wait(peer, "a send to the client");
        if (result.error != tw_loop_ok) return; /* the client is gone: it sees nothing */
        sent += (uint32_t)result.value;
    }
}

void tw_peer_reply(tw_peer *peer, uint64_t session, uint64_t op, const void *body, uint32_t body_size) {
    const tw_header *request = &peer->last.header;
    TW_ASSERT(request->command == tw_command_register || request->command == tw_command_request);
    tw_header reply = {
        .client = request->client,
        .session = session,
        .request = request->request,
        .op = op,
        .timestamp = 1000u + op,
        .release = request->release,
        .batch_size_max = request->command == tw_command_register
                              ? TW_PEER_MESSAGE_SIZE_MAX - TW_HEADER_SIZE
                              : 0,
        .command = tw_command_reply,
        .operation = request->operation,
    };
    tw_peer_send(peer, &reply, body, body_size);
}

void tw_peer_evict(tw_peer *peer, tw_eviction_reason reason) {
    tw_header eviction = {
        .client = peer->last.header.client,
        .release = peer->last.header.release,
        .command = tw_command_eviction,
        .eviction_reason = (uint8_t)reason,
    };
    tw_peer_send(peer, &eviction, NULL, 0);
}

void tw_peer_close(tw_peer *peer) {
    if (peer->conn_open) tw_peer_close_conn(peer);
    close_fd(peer, peer->listener);
    tw_loop_deinit(peer->loop);
}
