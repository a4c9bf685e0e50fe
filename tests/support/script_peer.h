/* twin tests: a scripted server for client tests. The test drives it step by step from its
 * own thread (accept, read one message, send one, close), each step running the peer's own
 * loop until that step is done, so a test decides exactly what the client sees and when:
 * a reply withheld, a connection closed mid-request, an eviction instead of a reply.
 * Every wait has a deadline (loop time: virtual in the sim): a client that never sends
 * what the script waits for fails the run with a message naming the step. */
#ifndef TWIN_TEST_SCRIPT_PEER_H
#define TWIN_TEST_SCRIPT_PEER_H

#include <stdbool.h>
#include <stdint.h>

#include <twin/loop.h>
#include <twin/proto.h>
#include <twin/tcp.h>

#define TW_PEER_MESSAGE_SIZE_MAX 4096u
#define TW_PEER_QUEUE_MAX 8u
#define TW_PEER_WAIT_NS (30ull * 1000u * 1000u * 1000u)

typedef struct tw_peer_message {
    tw_header header;
    uint8_t body[TW_PEER_MESSAGE_SIZE_MAX - TW_HEADER_SIZE];
} tw_peer_message;

typedef struct tw_peer {
    tw_loop *loop;
    tw_u128 cluster;
    tw_tcp listener;
    tw_address address; /* where it listens: 127.0.0.1 and a port the system chose */
    tw_tcp conn;
    bool conn_open;
    bool eof; /* the client closed the connection (or reset it) */
    uint64_t accepted;
    tw_frame_reader reader;
    uint8_t receive_buffer[TW_PEER_MESSAGE_SIZE_MAX];
    tw_peer_message queue[TW_PEER_QUEUE_MAX]; /* messages read, not yet taken */
    uint32_t queue_head;
    uint32_t queue_count;
    tw_peer_message last; /* the message tw_peer_read returned */
    tw_peer_message out;
    tw_completion c;
} tw_peer;

void tw_peer_listen(tw_peer *peer, tw_u128 cluster);
/* Waits for the next connection (closing the current one first, if any). */
void tw_peer_accept(tw_peer *peer);
/* Waits for one whole message on the connection into peer->last; false on EOF or reset. */
bool tw_peer_read(tw_peer *peer, const char *waiting_for);
/* Sends header (sealed here, with the cluster and size filled in) and body_size bytes. */
void tw_peer_send(tw_peer *peer, const tw_header *header, const void *body, uint32_t body_size);
/* Replies to peer->last: command reply, same client, request, operation and release. */
void tw_peer_reply(tw_peer *peer, uint64_t session, uint64_t op, const void *body, uint32_t body_size);
void tw_peer_evict(tw_peer *peer, tw_eviction_reason reason);
void tw_peer_close_conn(tw_peer *peer);
/* Closes everything and frees the loop. */
void tw_peer_close(tw_peer *peer);

#endif
