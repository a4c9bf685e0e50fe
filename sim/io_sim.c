/* twin sim: the IO backend over the world's simulated TCP network.
 *
 * One network per world, shared by every loop in it; each loop is a node. Sockets are
 * small integers (from 3, in the order opened). A connection has two directions, each a
 * bounded byte ring (its capacity stands in for SO_SNDBUF): bytes a send accepts travel as
 * a segment that arrives after a seeded latency, in order, and wait in the reader's side
 * of the ring until a recv takes them. A full ring stalls sends until the reader drains
 * it (backpressure). Seeded faults, each with a per-run probability (some runs have it
 * off): partial sends and receives, latency spikes, resets (both ends see them), refused
 * and timed-out connects, partitions between two nodes (segments wait until the heal),
 * half-dead connections (one connection stops delivering, both ways, for 0.3..3 s while
 * it stays open and new connections work: what the peer sent arrives late, after the
 * client gave up on the connection and retried on another), and bit flips (only when asked
 * for). Bytes on a connection that is not reset arrive exactly
 * once and in order. A loop waiting for IO parks its fiber on a futex in virtual time.
 * As in Linux, a close with bytes unread resets the connection, and bytes that arrived
 * before a reset are still read before it is reported; tests/conformance compares this
 * network with the kernel's (DIFFERENCES.md lists where they still differ). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/io.h>

#include "world.h"

#define TW_SIM_SOCKETS_MAX 4096u
#define TW_SIM_SOCKET_CHUNK 32u /* sockets allocated at once */
_Static_assert(TW_SIM_SOCKETS_MAX % TW_SIM_SOCKET_CHUNK == 0, "whole chunks");
#define TW_SIM_FD_FIRST 3
#define TW_SIM_PORT_EPHEMERAL_FIRST 32768u
#define TW_SIM_PIPE_CAPACITY_DEFAULT (64u * 1024u)
#define TW_SIM_PIPE_CAPACITY_MIN 1024u
#define TW_SIM_PIPE_CAPACITY_MAX (4u * 1024u * 1024u)
#define TW_SIM_PIPE_RING_MIN (4u * 1024u) /* a ring's first size; it doubles as bytes wait */
#define TW_SIM_BACKLOG_MAX 128u
#define TW_SIM_CONNECT_TIMEOUT_NS (1000u * 1000u * 1000u)
#define TW_SIM_LATENCY_SPIKE_FACTOR 100u
#define TW_SIM_PARTITIONS_MAX 16u
#define TW_SIM_NODES_MAX 256u

/* The network's trace entries (tw_sim_net_event, sim.h), by their short names here. */
enum net_event_kind {
    net_event_connect = tw_sim_net_event_connect,
    net_event_accept = tw_sim_net_event_accept,
    net_event_deliver = tw_sim_net_event_deliver,
    net_event_reset = tw_sim_net_event_reset,
    net_event_partition = tw_sim_net_event_partition,
    net_event_heal = tw_sim_net_event_heal,
    net_event_corrupt = tw_sim_net_event_corrupt,
    net_event_close = tw_sim_net_event_close,
    net_event_half_dead = tw_sim_net_event_half_dead,
};

/* Per-run fault probabilities, as "1 in N" (0: off). */
typedef struct net_faults {
    uint64_t partial_send_one_in;
    uint64_t partial_recv_one_in;
    uint64_t spike_one_in;
    uint64_t reset_one_in;      /* per send */
    uint64_t refuse_one_in;     /* per connect */
    uint64_t connect_timeout_one_in;
    uint64_t partition_one_in;  /* per send */
    uint64_t corrupt_one_in;    /* per segment */
    uint64_t latency_base_ns;
    uint64_t latency_jitter_ns;
    uint64_t partition_ns_max;
    uint64_t half_dead_one_in;  /* per send */
} net_faults;

/* A half-dead connection delivers nothing for this long (longer than a client's request
 * timeout, so the client gives up on it while it is still open). */
#define TW_SIM_HALF_DEAD_NS_MIN (300u * 1000u * 1000u)
#define TW_SIM_HALF_DEAD_NS_SPAN (2700u * 1000u * 1000u)

typedef struct sim_op {
    tw_completion *next; /* in a socket's queue, or the node's ready list */
    tw_io *io;           /* the loop that submitted it: its result goes there, as with
                            io_uring, where any ring may work on any socket */
    tw_result result;
} sim_op;

_Static_assert(sizeof(sim_op) <= TW_COMPLETION_BACKEND_SIZE, "sim_op fits a completion");

typedef struct op_fifo {
    tw_completion *head;
    tw_completion *tail;
} op_fifo;

typedef struct segment {
    uint64_t end; /* stream offset just past the segment */
    uint64_t at_ns;
    bool fin;
} segment;

typedef struct sim_pipe {
    uint8_t *ring;
    uint32_t ring_size;
    uint32_t capacity; /* written - read may not exceed it */
    uint64_t written;  /* offsets in the stream */
    uint64_t delivered;
    uint64_t read;
    bool fin_sent;
    bool fin_delivered;
    segment *segments;
    uint32_t segments_head;
    uint32_t segments_count;
    uint32_t segments_size;
    uint64_t last_at_ns;
    tw_sim_event delivery;
    struct sim_conn *conn;
    uint8_t direction; /* 0: written by side 0 */
} sim_pipe;

typedef struct sim_conn {
    sim_pipe pipes[2];
    tw_fd sockets[2]; /* side 0 connected, side 1 accepted */
    uint32_t nodes[2];
    bool reset;
    uint32_t id;
    uint64_t dead_until_ns; /* half-dead: nothing is delivered before this */
} sim_conn;

typedef enum socket_state {
    socket_free = 0,
    socket_open,
    socket_listening,
    socket_connecting,
    socket_connected,
    socket_closed,
} socket_state;

typedef struct sim_socket {
    socket_state state;
    tw_fd fd;
    tw_io *owner;
    uint8_t family;
    bool bound;
    tw_address local;
    uint32_t backlog;
    tw_fd pending[TW_SIM_BACKLOG_MAX]; /* connections waiting for accept */
    uint32_t pending_head;
    uint32_t pending_count;
    sim_conn *conn;
    uint8_t side;
    bool shut_write;
    uint32_t send_capacity;
    op_fifo accepts;
    op_fifo recvs;
    op_fifo sends;
    tw_completion *connecting;
    tw_sim_event connect_event;
} sim_socket;

typedef struct partition {
    uint32_t nodes[2];
    uint64_t until_ns;
} partition;

typedef struct tw_sim_net {
    tw_sim_world *world;
    net_faults faults;
    /* TW_SIM_SOCKETS_MAX sockets in chunks allocated as they are first used: a world that
     * opens a few sockets zeroes a few, not the whole table (a fuzz target builds a world per
     * input), and a socket's address never moves. */
    sim_socket *socket_chunks[TW_SIM_SOCKETS_MAX / TW_SIM_SOCKET_CHUNK];
    uint32_t sockets_count;
    sim_conn **conns;
    uint32_t conns_count;
    uint32_t conns_size;
    uint32_t nodes_count;
    uint16_t port_next;
    partition partitions[TW_SIM_PARTITIONS_MAX];
} tw_sim_net;

struct tw_io {
    tw_sim_world *world;
    tw_sim_net *net;
    uint32_t node;
    tw_atomic_u32 wake_word;
    /* wake_word when the loop last woke: a wake since then (even one that came before the
     * loop started to wait) makes the next wait return at once, like an eventfd. Sampling
     * the word only when about to sleep would lose a notify that arrives after the loop
     * checked its asyncs (the simulator found that one). */
    uint32_t wake_seen;
    op_fifo ready;
    uint64_t in_flight; /* operations submitted and not yet finished */
};

/* ---- small helpers ---------------------------------------------------------------- */

static sim_op *op_of(tw_completion *completion) { return (sim_op *)(void *)completion->backend; }

static void fifo_push(op_fifo *fifo, tw_completion *completion) {
    op_of(completion)->next = NULL;
    if (fifo->tail != NULL) op_of(fifo->tail)->next = completion;
    else fifo->head = completion;
    fifo->tail = completion;
}

static tw_completion *fifo_pop(op_fifo *fifo) {
    tw_completion *head = fifo->head;
    if (head == NULL) return NULL;
    fifo->head = op_of(head)->next;
    if (fifo->head == NULL) fifo->tail = NULL;
    op_of(head)->next = NULL;
    return head;
}

static bool fifo_remove(op_fifo *fifo, tw_completion *completion) {
    tw_completion *previous = NULL;
    for (tw_completion *c = fifo->head; c != NULL; previous = c, c = op_of(c)->next) {
        if (c != completion) continue;
        if (previous != NULL) op_of(previous)->next = op_of(c)->next;
        else fifo->head = op_of(c)->next;
        if (fifo->tail == c) fifo->tail = previous;
        op_of(c)->next = NULL;
        return true;
    }
    return false;
}

static tw_result ok_result(uint64_t value) {
    return (tw_result){.error = tw_loop_ok, .os_error = 0, .value = value};
}

static tw_result error_result(tw_loop_error error) {
    return (tw_result){.error = error, .os_error = 0, .value = 0};
}

/* True with probability 1 in one_in (never when one_in is 0). */
static bool chance(tw_sim_net *net, uint64_t one_in) {
    (void)net;
    return one_in != 0 && tw_sim_rare(tw_sim_decide(tw_sim_purpose_faults, one_in), one_in);
}

static void trace_net(tw_sim_net *net, enum net_event_kind kind, uint64_t a, uint64_t b) {
    tw_sim_trace_add(net->world, tw_sim_trace_net, kind, a, b);
}

/* A finished operation: to the ready list of the loop that submitted it, and wake it. */
static void finish(tw_completion *completion, tw_result result) {
    tw_io *io = op_of(completion)->io;
    TW_ASSERT(io != NULL && io->in_flight > 0);
    io->in_flight--;
    op_of(completion)->result = result;
    fifo_push(&io->ready, completion);
    atomic_fetch_add_explicit(&io->wake_word.raw, 1, memory_order_relaxed);
    (void)tw_sim_futex_wake_from_event(io->world, &io->wake_word, TW_FUTEX_WAKE_ALL);
}

/* The socket at an index below sockets_count (its chunk exists). */
static sim_socket *socket_at(tw_sim_net *net, uint32_t index) {
    TW_ASSERT(index < net->sockets_count);
    sim_socket *chunk = net->socket_chunks[index / TW_SIM_SOCKET_CHUNK];
    TW_ASSERT(chunk != NULL);
    return &chunk[index % TW_SIM_SOCKET_CHUNK];
}

static sim_socket *socket_of(tw_sim_net *net, tw_fd fd) {
    if (fd < TW_SIM_FD_FIRST || (uint32_t)(fd - TW_SIM_FD_FIRST) >= net->sockets_count) return NULL;
    sim_socket *socket = socket_at(net, fd - TW_SIM_FD_FIRST);
    if (socket->state == socket_free || socket->state == socket_closed) return NULL;
    return socket;
}

/* ---- the network ------------------------------------------------------------------ */

static void draw_faults(tw_sim_net *net, const tw_sim_net_options *options) {
    net_faults *f = &net->faults;
    /* Every draw is made, in a fixed order, whatever the options, so that switching one
     * fault off leaves the others as the seed chose them. */
    static const uint64_t often[] = {0, 2, 4, 16};
    static const uint64_t rare[] = {0, 0, 2000, 200};
    uint64_t partial_send = often[tw_sim_decide(tw_sim_purpose_network, 4)];
    uint64_t partial_recv = often[tw_sim_decide(tw_sim_purpose_network, 4)];
    uint64_t spike = rare[tw_sim_decide(tw_sim_purpose_network, 4)];
    uint64_t reset = rare[tw_sim_decide(tw_sim_purpose_network, 4)];
    uint64_t refuse = often[tw_sim_decide(tw_sim_purpose_network, 4)] * 8;
    uint64_t connect_timeout = often[tw_sim_decide(tw_sim_purpose_network, 4)] * 8;
    uint64_t partition_one_in = rare[tw_sim_decide(tw_sim_purpose_network, 4)];
    f->latency_base_ns = 10000 + tw_sim_decide(tw_sim_purpose_network, 990000);
    f->latency_jitter_ns = tw_sim_decide(tw_sim_purpose_network, f->latency_base_ns + 1);
    f->partition_ns_max = 1000000 + tw_sim_decide(tw_sim_purpose_network, 500000000);
    if (!options->faults_off) {
        f->partial_send_one_in = partial_send;
        f->partial_recv_one_in = partial_recv;
        f->spike_one_in = spike;
    }
    if (!options->faults_off && !options->disruptions_off) {
        f->reset_one_in = reset;
        f->refuse_one_in = refuse;
        f->connect_timeout_one_in = connect_timeout;
        f->partition_one_in = partition_one_in;
    }
    f->corrupt_one_in = options->corruption ? 1000 : 0;
    /* Drawn after the others, so that adding it left their draws as they were. */
    static const uint64_t half_dead_rates[] = {0, 500, 100, 25};
    uint64_t half_dead = half_dead_rates[tw_sim_decide(tw_sim_purpose_network, 4)];
    if (!options->faults_off && !options->disruptions_off) f->half_dead_one_in = half_dead;
    const tw_sim_net_rates *r = options->rates;
    if (r != NULL) { /* the caller's rates (the draws above were made all the same) */
        f->partial_send_one_in = r->partial_send_one_in;
        f->partial_recv_one_in = r->partial_receive_one_in;
        f->spike_one_in = r->spike_one_in;
        f->reset_one_in = r->reset_one_in;
        f->refuse_one_in = r->refuse_one_in;
        f->connect_timeout_one_in = r->connect_timeout_one_in;
        f->partition_one_in = r->partition_one_in;
        f->half_dead_one_in = r->half_dead_one_in;
        f->corrupt_one_in = r->corrupt_one_in;
    }
}

static tw_sim_net *net_get(tw_sim_world *world) {
    if (world->net != NULL) return world->net;
    tw_sim_net *net = calloc(1, sizeof(*net));
    TW_ASSERT_MSG(net != NULL, "out of memory for the simulated network");
    net->world = world;
    net->port_next = TW_SIM_PORT_EPHEMERAL_FIRST;
    world->net = net;
    draw_faults(net, &world->options.net);
    return net;
}

void tw_sim_net_destroy(tw_sim_world *world) {
    tw_sim_net *net = world->net;
    TW_ASSERT(net != NULL);
    for (uint32_t i = 0; i < net->conns_count; i++) {
        for (int d = 0; d < 2; d++) {
            free(net->conns[i]->pipes[d].ring);
            free(net->conns[i]->pipes[d].segments);
        }
        free(net->conns[i]);
    }
    free(net->conns);
    for (uint32_t i = 0; i < TW_SIM_SOCKETS_MAX / TW_SIM_SOCKET_CHUNK; i++) free(net->socket_chunks[i]);
    free(net);
    world->net = NULL;
}

static uint64_t partitioned_until(tw_sim_net *net, uint32_t a, uint32_t b) {
    uint64_t now_ns = net->world->now_ns;
    for (uint32_t i = 0; i < TW_SIM_PARTITIONS_MAX; i++) {
        partition *p = &net->partitions[i];
        if (p->until_ns <= now_ns) continue;
        if ((p->nodes[0] == a && p->nodes[1] == b) || (p->nodes[0] == b && p->nodes[1] == a)) {
            return p->until_ns;
        }
    }
    return 0;
}

static void maybe_partition(tw_sim_net *net, uint32_t a, uint32_t b) {
    if (a == b || !chance(net, net->faults.partition_one_in)) return;
    if (partitioned_until(net, a, b) != 0) return;
    uint64_t now_ns = net->world->now_ns;
    for (uint32_t i = 0; i < TW_SIM_PARTITIONS_MAX; i++) {
        partition *p = &net->partitions[i];
        if (p->until_ns > now_ns) continue;
        uint64_t duration_ns = 1 + tw_sim_decide(tw_sim_purpose_faults, net->faults.partition_ns_max);
        *p = (partition){.nodes = {a, b}, .until_ns = now_ns + duration_ns};
        net->world->report->net.partitions++;
        trace_net(net, net_event_partition, ((uint64_t)a << 32) | b, duration_ns);
        return;
    }
}

static uint64_t latency_ns(tw_sim_net *net) {
    uint64_t latency = net->faults.latency_base_ns +
                       tw_sim_decide(tw_sim_purpose_network, net->faults.latency_jitter_ns + 1);
    if (chance(net, net->faults.spike_one_in)) {
        latency *= TW_SIM_LATENCY_SPIKE_FACTOR; /* clogging */
        net->world->report->net.latency_spikes++;
    }
    return latency;
}

static void pipe_schedule(tw_sim_net *net, struct sim_pipe *pipe);

void tw_sim_net_heal(void) {
    tw_sim_world *world = tw_sim_world_current();
    TW_ASSERT_MSG(world != NULL, "tw_sim_net_heal outside a run");
    tw_sim_net *net = net_get(world);
    uint64_t now_ns = world->now_ns;
    uint64_t latency_base_ns = net->faults.latency_base_ns;
    uint64_t latency_jitter_ns = net->faults.latency_jitter_ns;
    net->faults = (net_faults){.latency_base_ns = latency_base_ns, .latency_jitter_ns = latency_jitter_ns};
    /* Resource faults drawn "1 in N" stop too: a liveness check asks that the work finish
     * once the faults are over, and a socket that may fail to open after the heal can fail
     * every time (the simulator fuzz target found a run of 74, in
     * corpus/regressions/simulator/liveness-socket-faults-after-heal). A fault set for the
     * Nth call (allocation_fail_at, spawn_fail_at) is a test's, and stays. */
    tw_sim_resource_options *resources = &world->options.resources;
    resources->allocation_fail_one_in = 0;
    resources->spawn_fail_one_in = 0;
    resources->submit_full_one_in = 0;
    resources->accept_fail_one_in = 0;
    resources->socket_fail_one_in = 0;
    for (uint32_t i = 0; i < TW_SIM_PARTITIONS_MAX; i++) {
        if (net->partitions[i].until_ns > now_ns) net->partitions[i].until_ns = now_ns;
    }
    for (uint32_t i = 0; i < net->conns_count; i++) {
        sim_conn *conn = net->conns[i];
        if (conn->dead_until_ns > now_ns) conn->dead_until_ns = now_ns;
        for (int d = 0; d < 2; d++) { /* deliveries held back: due now, after the latency */
            sim_pipe *pipe = &conn->pipes[d];
            if (conn->reset || pipe->segments_count == 0) continue;
            tw_sim_event_cancel(world, &pipe->delivery);
            pipe_schedule(net, pipe);
        }
    }
    trace_net(net, net_event_heal, 0, now_ns);
}

/* ---- pipes ------------------------------------------------------------------------ */

static void pipe_deliver_fire(tw_sim_world *world, tw_sim_event *event);

static void pipe_init(sim_pipe *pipe, sim_conn *conn, uint8_t direction, uint32_t capacity) {
    memset(pipe, 0, sizeof(*pipe));
    pipe->conn = conn;
    pipe->direction = direction;
    pipe->capacity = capacity;
    tw_sim_event_init(&pipe->delivery, pipe_deliver_fire);
}

/* Copies between a ring (indexed by stream offset) and flat memory, in at most two pieces. */
static void ring_copy(sim_pipe *pipe, uint64_t offset, uint8_t *flat, uint64_t size, bool into_ring) {
    TW_ASSERT(size <= pipe->ring_size);
    uint64_t start = offset % pipe->ring_size;
    uint64_t first = pipe->ring_size - start < size ? pipe->ring_size - start : size;
    if (into_ring) {
        memcpy(pipe->ring + start, flat, first);
        memcpy(pipe->ring, flat + first, size - first);
    } else {
        memcpy(flat, pipe->ring + start, first);
        memcpy(flat + first, pipe->ring, size - first);
    }
}

/* Grows the ring to hold capacity bytes, keeping the bytes not yet read. */
static void pipe_reserve(sim_pipe *pipe, uint32_t capacity) {
    if (pipe->ring_size >= capacity) return;
    uint8_t *ring = malloc(capacity);
    TW_ASSERT_MSG(ring != NULL, "out of memory for a simulated connection");
    for (uint64_t offset = pipe->read; offset < pipe->written; offset++) {
        ring[offset % capacity] = pipe->ring[offset % pipe->ring_size];
    }
    free(pipe->ring);
    pipe->ring = ring;
    pipe->ring_size = capacity;
}

/* The ring's size for `unread` bytes: doubling from TW_SIM_PIPE_RING_MIN up to the
 * capacity, so that a connection that carries little holds little (a fuzz target builds
 * hundreds of worlds a second, and 64 KiB rings per direction were most of their cost). */
static uint32_t pipe_ring_size_for(const sim_pipe *pipe, uint64_t unread) {
    TW_ASSERT(unread <= pipe->capacity);
    uint64_t size = pipe->ring_size != 0 ? pipe->ring_size : TW_SIM_PIPE_RING_MIN;
    while (size < unread) size *= 2;
    return size < pipe->capacity ? (uint32_t)size : pipe->capacity;
}

static void pipe_push_segment(sim_pipe *pipe, segment s) {
    if (pipe->segments_count == pipe->segments_size) {
        uint32_t size = pipe->segments_size == 0 ? 16 : pipe->segments_size * 2;
        segment *grown = malloc(size * sizeof(*grown));
        TW_ASSERT_MSG(grown != NULL, "out of memory for a simulated connection");
        for (uint32_t i = 0; i < pipe->segments_count; i++) {
            grown[i] = pipe->segments[(pipe->segments_head + i) % pipe->segments_size];
        }
        free(pipe->segments);
        pipe->segments = grown;
        pipe->segments_size = size;
        pipe->segments_head = 0;
    }
    pipe->segments[(pipe->segments_head + pipe->segments_count) % pipe->segments_size] = s;
    pipe->segments_count++;
}

/* Until when the pipe delivers nothing: a partition between its nodes, or its connection
 * being half-dead (0: it delivers). */
static uint64_t pipe_blocked_until(tw_sim_net *net, const sim_pipe *pipe) {
    uint64_t heal_ns = partitioned_until(net, pipe->conn->nodes[0], pipe->conn->nodes[1]);
    uint64_t dead_ns = pipe->conn->dead_until_ns > net->world->now_ns ? pipe->conn->dead_until_ns : 0;
    return heal_ns > dead_ns ? heal_ns : dead_ns;
}

static void pipe_schedule(tw_sim_net *net, sim_pipe *pipe) {
    if (pipe->segments_count == 0 || tw_heap_node_queued(&pipe->delivery.node)) return;
    segment *first = &pipe->segments[pipe->segments_head];
    uint64_t at_ns = first->at_ns;
    uint64_t heal_ns = pipe_blocked_until(net, pipe);
    if (heal_ns > at_ns) at_ns = heal_ns; /* cut off: the bytes wait for the heal */
    tw_sim_event_schedule(net->world, &pipe->delivery, at_ns);
}

/* A segment of n bytes (or a FIN) leaves the writer now and arrives later, in order. */
static void pipe_send(tw_sim_net *net, sim_pipe *pipe, bool fin) {
    uint64_t at_ns = net->world->now_ns + latency_ns(net);
    if (at_ns < pipe->last_at_ns) at_ns = pipe->last_at_ns; /* TCP delivers in order */
    pipe->last_at_ns = at_ns;
    pipe_push_segment(pipe, (segment){.end = pipe->written, .at_ns = at_ns, .fin = fin});
    net->world->report->net.segments++;
    pipe_schedule(net, pipe);
}

static sim_socket *pipe_reader(tw_sim_net *net, sim_pipe *pipe) {
    return socket_at(net, pipe->conn->sockets[1 - pipe->direction] - TW_SIM_FD_FIRST);
}

static sim_socket *pipe_writer(tw_sim_net *net, sim_pipe *pipe) {
    return socket_at(net, pipe->conn->sockets[pipe->direction] - TW_SIM_FD_FIRST);
}

static void service_recvs(tw_sim_net *net, sim_socket *socket);
static void service_sends(tw_sim_net *net, sim_socket *socket);

static void pipe_deliver_fire(tw_sim_world *world, tw_sim_event *event) {
    sim_pipe *pipe = TW_CONTAINER_OF(event, sim_pipe, delivery);
    tw_sim_net *net = world->net;
    if (pipe->conn->reset) return;
    uint64_t heal_ns = pipe_blocked_until(net, pipe);
    if (heal_ns > world->now_ns) {
        tw_sim_event_schedule(world, &pipe->delivery, heal_ns);
        return;
    }
    while (pipe->segments_count > 0 && pipe->segments[pipe->segments_head].at_ns <= world->now_ns) {
        segment s = pipe->segments[pipe->segments_head];
        pipe->segments_head = (pipe->segments_head + 1) % pipe->segments_size;
        pipe->segments_count--;
        if (s.end > pipe->delivered && chance(net, net->faults.corrupt_one_in)) {
            uint64_t offset = pipe->delivered + tw_sim_decide(tw_sim_purpose_faults, s.end - pipe->delivered);
            uint8_t bit = (uint8_t)(1u << tw_sim_decide(tw_sim_purpose_faults, 8));
            pipe->ring[offset % pipe->ring_size] ^= bit;
            world->report->net.corruptions++;
            trace_net(net, net_event_corrupt, pipe->conn->id, offset);
        }
        TW_ASSERT(s.end >= pipe->delivered);
        pipe->delivered = s.end;
        if (s.fin) pipe->fin_delivered = true;
        trace_net(net, net_event_deliver, pipe->conn->id, s.end);
    }
    service_recvs(net, pipe_reader(net, pipe));
    pipe_schedule(net, pipe);
}

/* ---- connections and resets -------------------------------------------------------- */

static void fail_all(sim_socket *socket, tw_loop_error error) {
    tw_completion *c;
    while ((c = fifo_pop(&socket->recvs)) != NULL) finish(c, error_result(error));
    while ((c = fifo_pop(&socket->sends)) != NULL) finish(c, error_result(error));
}

/* Completes with canceled the operations `io` has pending in fifo; others stay, as with
 * io_uring, where a cancel reaches only its own ring. */
static void cancel_ops_of(op_fifo *fifo, tw_io *io) {
    tw_completion *c = fifo->head;
    while (c != NULL) {
        tw_completion *next = op_of(c)->next;
        if (op_of(c)->io == io) {
            (void)fifo_remove(fifo, c);
            finish(c, error_result(tw_loop_canceled));
        }
        c = next;
    }
}

static void conn_reset(tw_sim_net *net, sim_conn *conn) {
    if (conn->reset) return;
    conn->reset = true;
    net->world->report->net.resets++;
    trace_net(net, net_event_reset, conn->id, 0);
    for (int side = 0; side < 2; side++) {
        sim_pipe *pipe = &conn->pipes[side];
        tw_sim_event_cancel(net->world, &pipe->delivery);
        sim_socket *socket = socket_at(net, conn->sockets[side] - TW_SIM_FD_FIRST);
        if (socket->state == socket_connected) fail_all(socket, tw_loop_reset);
    }
}

static sim_conn *conn_create(tw_sim_net *net, sim_socket *client, sim_socket *server) {
    if (net->conns_count == net->conns_size) {
        uint32_t size = net->conns_size == 0 ? 16 : net->conns_size * 2;
        sim_conn **grown = realloc(net->conns, size * sizeof(*grown));
        TW_ASSERT_MSG(grown != NULL, "out of memory for simulated connections");
        net->conns = grown;
        net->conns_size = size;
    }
    sim_conn *conn = calloc(1, sizeof(*conn));
    TW_ASSERT_MSG(conn != NULL, "out of memory for a simulated connection");
    conn->id = net->conns_count;
    net->conns[net->conns_count++] = conn;
    conn->sockets[0] = client->fd;
    conn->sockets[1] = server->fd;
    conn->nodes[0] = client->owner->node;
    conn->nodes[1] = server->owner->node;
    pipe_init(&conn->pipes[0], conn, 0, client->send_capacity);
    pipe_init(&conn->pipes[1], conn, 1, server->send_capacity);
    client->conn = conn;
    client->side = 0;
    client->state = socket_connected;
    server->conn = conn;
    server->side = 1;
    server->state = socket_connected;
    net->world->report->net.connections++;
    return conn;
}

static sim_socket *socket_new(tw_sim_net *net, tw_io *owner, uint8_t family) {
    if (net->sockets_count == TW_SIM_SOCKETS_MAX) return NULL;
    uint32_t chunk = net->sockets_count / TW_SIM_SOCKET_CHUNK;
    if (net->socket_chunks[chunk] == NULL) {
        net->socket_chunks[chunk] = malloc(TW_SIM_SOCKET_CHUNK * sizeof(sim_socket));
        TW_ASSERT_MSG(net->socket_chunks[chunk] != NULL, "out of memory for the simulated network");
    }
    sim_socket *socket = &net->socket_chunks[chunk][net->sockets_count % TW_SIM_SOCKET_CHUNK];
    memset(socket, 0, sizeof(*socket));
    socket->fd = (tw_fd)(TW_SIM_FD_FIRST + net->sockets_count);
    net->sockets_count++;
    socket->state = socket_open;
    socket->owner = owner;
    socket->family = family;
    socket->send_capacity = TW_SIM_PIPE_CAPACITY_DEFAULT;
    return socket;
}

static sim_socket *listener_at(tw_sim_net *net, const tw_address *address) {
    for (uint32_t i = 0; i < net->sockets_count; i++) {
        sim_socket *s = socket_at(net, i);
        if (s->state != socket_listening || s->local.port != address->port) continue;
        if (s->local.family != address->family) continue;
        bool any = true;
        for (int b = 0; b < (address->family == 4 ? 4 : 16); b++) any = any && s->local.ip[b] == 0;
        if (any || tw_address_equal(&s->local, address)) return s;
    }
    return NULL;
}

static void connect_fire(tw_sim_world *world, tw_sim_event *event) {
    sim_socket *client = TW_CONTAINER_OF(event, sim_socket, connect_event);
    tw_sim_net *net = world->net;
    tw_completion *completion = client->connecting;
    TW_ASSERT(completion != NULL && client->state == socket_connecting);
    client->connecting = NULL;
    sim_socket *listener = listener_at(net, &completion->args.connect.address);
    uint64_t heal_ns = listener == NULL ? 0
                                        : partitioned_until(net, client->owner->node, listener->owner->node);
    if (heal_ns != 0) {
        client->state = socket_open;
        world->report->net.connect_timeouts++;
        trace_net(net, net_event_connect, (uint64_t)client->fd, tw_loop_timed_out);
        finish(completion, error_result(tw_loop_timed_out));
        return;
    }
    if (listener == NULL || listener->pending_count == TW_SIM_BACKLOG_MAX ||
        listener->pending_count >= listener->backlog + 1) {
        client->state = socket_open;
        world->report->net.refused++;
        trace_net(net, net_event_connect, (uint64_t)client->fd, tw_loop_refused);
        finish(completion, error_result(tw_loop_refused));
        return;
    }
    sim_socket *server = socket_new(net, listener->owner, listener->family);
    if (server == NULL) {
        client->state = socket_open;
        finish(completion, error_result(tw_loop_refused));
        return;
    }
    server->local = listener->local;
    (void)conn_create(net, client, server);
    trace_net(net, net_event_connect, (uint64_t)client->fd, (uint64_t)server->fd);
    finish(completion, ok_result(0));
    tw_completion *accept = fifo_pop(&listener->accepts);
    if (accept != NULL) {
        finish(accept, ok_result((uint64_t)server->fd));
    } else {
        listener->pending[(listener->pending_head + listener->pending_count) % TW_SIM_BACKLOG_MAX] =
            server->fd;
        listener->pending_count++;
    }
}

/* ---- operations --------------------------------------------------------------------- */

static void service_recvs(tw_sim_net *net, sim_socket *socket) {
    if (socket->state != socket_connected) return;
    sim_pipe *pipe = &socket->conn->pipes[1 - socket->side];
    bool drained = false;
    while (socket->recvs.head != NULL) {
        tw_completion *c = socket->recvs.head;
        uint64_t available = pipe->delivered - pipe->read;
        size_t size = c->args.recv.size;
        if (available == 0 && size > 0 && !pipe->fin_delivered) break;
        (void)fifo_pop(&socket->recvs);
        uint64_t n = available < size ? available : size;
        if (n > 1 && chance(net, net->faults.partial_recv_one_in)) {
            n = 1 + tw_sim_decide(tw_sim_purpose_faults, n - 1);
            net->world->report->net.partial_receives++;
        }
        if (n > 0) ring_copy(pipe, pipe->read, c->args.recv.buffer, n, false);
        pipe->read += n;
        drained = drained || n > 0;
        finish(c, ok_result(n)); /* n == 0 here means EOF (or an empty read) */
    }
    if (drained) service_sends(net, pipe_writer(net, pipe));
}

static void service_sends(tw_sim_net *net, sim_socket *socket) {
    if (socket->state != socket_connected) return;
    sim_pipe *pipe = &socket->conn->pipes[socket->side];
    while (socket->sends.head != NULL) {
        tw_completion *c = socket->sends.head;
        size_t size = c->args.send.size;
        uint64_t space = pipe->capacity - (pipe->written - pipe->read);
        if (space == 0 && size > 0) break;
        (void)fifo_pop(&socket->sends);
        if (chance(net, net->faults.reset_one_in)) {
            finish(c, error_result(tw_loop_reset));
            conn_reset(net, socket->conn);
            return;
        }
        maybe_partition(net, socket->conn->nodes[0], socket->conn->nodes[1]);
        if (socket->conn->dead_until_ns <= net->world->now_ns &&
            chance(net, net->faults.half_dead_one_in)) {
            socket->conn->dead_until_ns = net->world->now_ns + TW_SIM_HALF_DEAD_NS_MIN +
                                          tw_sim_decide(tw_sim_purpose_faults, TW_SIM_HALF_DEAD_NS_SPAN);
            net->world->report->net.half_dead++;
            trace_net(net, net_event_half_dead, socket->conn->id, socket->conn->dead_until_ns);
        }
        uint64_t n = space < size ? space : size;
        if (n > 1 && chance(net, net->faults.partial_send_one_in)) {
            n = 1 + tw_sim_decide(tw_sim_purpose_faults, n - 1);
            net->world->report->net.partial_sends++;
        }
        pipe_reserve(pipe, pipe_ring_size_for(pipe, (pipe->written - pipe->read) + n));
        if (n > 0) ring_copy(pipe, pipe->written, (uint8_t *)(uintptr_t)c->args.send.buffer, n, true);
        pipe->written += n;
        net->world->report->net.bytes += n;
        if (n > 0) pipe_send(net, pipe, false);
        finish(c, ok_result(n));
    }
}

static tw_loop_error socket_error(tw_sim_net *net, tw_fd fd, sim_socket **socket) {
    *socket = socket_of(net, fd);
    return *socket == NULL ? tw_loop_bad_socket : tw_loop_ok;
}

/* Closes a socket for `io`: its pending operations from that loop complete canceled. */
static void close_socket(tw_sim_net *net, sim_socket *socket, tw_io *io) {
    cancel_ops_of(&socket->accepts, io);
    cancel_ops_of(&socket->recvs, io);
    cancel_ops_of(&socket->sends, io);
    if (socket->connecting != NULL && op_of(socket->connecting)->io == io) {
        tw_sim_event_cancel(net->world, &socket->connect_event);
        finish(socket->connecting, error_result(tw_loop_canceled));
        socket->connecting = NULL;
    }
    if (socket->state == socket_listening) {
        /* Connections nobody accepted: their clients see a reset. */
        while (socket->pending_count > 0) {
            sim_socket *server = socket_at(net, socket->pending[socket->pending_head] - TW_SIM_FD_FIRST);
            socket->pending_head = (socket->pending_head + 1) % TW_SIM_BACKLOG_MAX;
            socket->pending_count--;
            conn_reset(net, server->conn);
            server->state = socket_closed;
        }
    }
    if (socket->state == socket_connected && !socket->conn->reset &&
        socket->conn->pipes[1 - socket->side].written > socket->conn->pipes[1 - socket->side].read) {
        /* Closed with bytes unread (arrived or on their way): Linux sends a RST, not a FIN
         * (tcp_close; RFC 2525 2.17), and bytes still in flight draw one from the closed
         * socket: the peer sees a reset (tests/conformance/reset-unread.scn). */
        socket->state = socket_closed;
        trace_net(net, net_event_close, (uint64_t)socket->fd, 0);
        conn_reset(net, socket->conn);
        return;
    }
    if (socket->state == socket_connected && !socket->conn->reset) {
        sim_pipe *out = &socket->conn->pipes[socket->side];
        if (!out->fin_sent) {
            out->fin_sent = true;
            pipe_send(net, out, true);
        }
        /* The peer's later sends get a reset, as from a closed socket. */
        sim_socket *peer = socket_at(net, socket->conn->sockets[1 - socket->side] - TW_SIM_FD_FIRST);
        socket->state = socket_closed;
        trace_net(net, net_event_close, (uint64_t)socket->fd, 0);
        if (peer->sends.head != NULL) conn_reset(net, socket->conn);
        return;
    }
    socket->state = socket_closed;
    trace_net(net, net_event_close, (uint64_t)socket->fd, 0);
}

static bool cancel_target(tw_sim_net *net, tw_completion *target) {
    for (uint32_t i = 0; i < net->sockets_count; i++) {
        sim_socket *s = socket_at(net, i);
        if (fifo_remove(&s->accepts, target) || fifo_remove(&s->recvs, target) ||
            fifo_remove(&s->sends, target)) {
            finish(target, error_result(tw_loop_canceled));
            return true;
        }
        if (s->connecting == target) {
            tw_sim_event_cancel(net->world, &s->connect_event);
            s->connecting = NULL;
            s->state = socket_open;
            finish(target, error_result(tw_loop_canceled));
            return true;
        }
    }
    return false;
}

/* A seeded resource fault of the world's options (1 in one_in; never when 0). */
static bool resource_fault(uint64_t one_in) {
    return one_in != 0 && tw_sim_rare(tw_sim_decide(tw_sim_purpose_resources, one_in), one_in);
}

bool tw_io_submit(tw_io *io, tw_completion *completion) {
    TW_ASSERT(io != NULL && completion != NULL);
    tw_sim_net *net = io->net;
    /* A full queue, as io_uring refuses submissions (EBUSY) while its completion queue holds
     * completions not yet reaped: only then, since reaping them is what makes room (the
     * loop keeps the operation and submits it again after its next wait, which returns at
     * once). Refusing with nothing to reap would model no real ring, and hang the loop. */
    if (io->ready.head != NULL && resource_fault(io->world->options.resources.submit_full_one_in)) {
        io->world->report->submits_refused++;
        return false;
    }
    op_of(completion)->io = io;
    io->in_flight++;
    sim_socket *socket = NULL;
    tw_loop_error error = tw_loop_unexpected;
    switch (completion->op) {
    case tw_op_accept:
        error = socket_error(net, completion->args.accept.socket, &socket);
        if (error == tw_loop_ok && socket->state != socket_listening) error = tw_loop_address_invalid;
        if (error != tw_loop_ok) break;
        if (socket->pending_count > 0 && resource_fault(io->world->options.resources.accept_fail_one_in)) {
            /* EMFILE: no descriptor for the waiting connection, which stays queued. */
            io->world->report->accepts_failed++;
            finish(completion, error_result(tw_loop_system_resources));
        } else if (socket->pending_count > 0) {
            tw_fd fd = socket->pending[socket->pending_head];
            socket->pending_head = (socket->pending_head + 1) % TW_SIM_BACKLOG_MAX;
            socket->pending_count--;
            finish(completion, ok_result((uint64_t)fd));
        } else {
            fifo_push(&socket->accepts, completion);
        }
        return true;
    case tw_op_connect:
        error = socket_error(net, completion->args.connect.socket, &socket);
        if (error == tw_loop_ok && socket->state != socket_open) error = tw_loop_address_invalid;
        if (error != tw_loop_ok) break;
        socket->state = socket_connecting;
        socket->connecting = completion;
        tw_sim_event_init(&socket->connect_event, connect_fire);
        if (chance(net, net->faults.refuse_one_in)) {
            socket->state = socket_open;
            socket->connecting = NULL;
            net->world->report->net.refused++;
            finish(completion, error_result(tw_loop_refused));
        } else if (chance(net, net->faults.connect_timeout_one_in)) {
            /* No answer: the connect times out (the event finds no listener reachable). */
            socket->state = socket_open;
            socket->connecting = NULL;
            net->world->report->net.connect_timeouts++;
            finish(completion, error_result(tw_loop_timed_out));
        } else {
            tw_sim_event_schedule(net->world, &socket->connect_event,
                                  net->world->now_ns + 2 * latency_ns(net));
        }
        return true;
    case tw_op_recv:
        error = socket_error(net, completion->args.recv.socket, &socket);
        if (error == tw_loop_ok && socket->state != socket_connected) error = tw_loop_not_connected;
        if (error == tw_loop_ok && socket->conn->reset) {
            /* Bytes that arrived before the reset are still read first, as from Linux's
             * receive queue (tcp_recvmsg reads it before it reports the error); bytes still
             * in flight were lost (tests/conformance/reset-with-data.scn). */
            const sim_pipe *in = &socket->conn->pipes[1 - socket->side];
            if (in->delivered == in->read || completion->args.recv.size == 0) error = tw_loop_reset;
        }
        if (error != tw_loop_ok) break;
        fifo_push(&socket->recvs, completion);
        service_recvs(net, socket);
        return true;
    case tw_op_send:
        error = socket_error(net, completion->args.send.socket, &socket);
        /* Linux: a send on a TCP socket that never connected (or listens) is EPIPE, not
         * ENOTCONN (sk_stream_wait_connect); tests/conformance/not-connected.scn. */
        if (error == tw_loop_ok && (socket->state == socket_open || socket->state == socket_listening)) {
            error = tw_loop_broken_pipe;
        }
        if (error == tw_loop_ok && socket->state != socket_connected) error = tw_loop_not_connected;
        if (error == tw_loop_ok && socket->conn->reset) error = tw_loop_reset;
        if (error == tw_loop_ok && socket->shut_write) error = tw_loop_broken_pipe;
        if (error == tw_loop_ok) {
            sim_socket *peer = socket_at(net, socket->conn->sockets[1 - socket->side] - TW_SIM_FD_FIRST);
            if (peer->state == socket_closed) {
                conn_reset(net, socket->conn);
                error = tw_loop_reset;
            }
        }
        if (error != tw_loop_ok) break;
        fifo_push(&socket->sends, completion);
        service_sends(net, socket);
        if (fifo_remove(&socket->sends, completion)) {
            fifo_push(&socket->sends, completion); /* still waiting: a stall */
            net->world->report->net.send_stalls++;
        }
        return true;
    case tw_op_shutdown:
        error = socket_error(net, completion->args.shutdown.socket, &socket);
        if (error == tw_loop_ok && socket->state == socket_listening) {
            /* Linux: SHUT_WR on a listener succeeds and changes nothing (inet_shutdown);
             * tests/conformance/misuse.scn. */
            finish(completion, ok_result(0));
            return true;
        }
        if (error == tw_loop_ok && socket->state != socket_connected) error = tw_loop_not_connected;
        if (error != tw_loop_ok) break;
        if (!socket->shut_write && !socket->conn->reset) {
            socket->shut_write = true;
            sim_pipe *out = &socket->conn->pipes[socket->side];
            out->fin_sent = true;
            pipe_send(net, out, true);
        }
        finish(completion, ok_result(0));
        return true;
    case tw_op_close:
        error = socket_error(net, completion->args.close.socket, &socket);
        if (error != tw_loop_ok) break;
        close_socket(net, socket, io);
        finish(completion, ok_result(0));
        return true;
    case tw_op_cancel:
        finish(completion, cancel_target(net, completion->args.cancel.target)
                                   ? ok_result(0)
                                   : error_result(tw_loop_not_found));
        return true;
    case tw_op_noop:
    case tw_op_timer:
    case tw_op_async_wait:
        tw_panic(__FILE__, __LINE__, "tw_io_submit: not an IO operation");
    }
    finish(completion, error_result(error));
    return true;
}

uint32_t tw_io_wait(tw_io *io, uint64_t timeout_ns, tw_io_complete_fn complete, void *context) {
    TW_ASSERT(io != NULL && complete != NULL);
    TW_ASSERT_MSG(tw_sim_world_current() == io->world, "a simulated loop used outside its world");
    if (io->ready.head == NULL && timeout_ns != 0) {
        (void)tw_futex_wait(&io->wake_word, io->wake_seen, timeout_ns);
    }
    io->wake_seen = tw_atomic_load_u32(&io->wake_word, tw_acquire);
    uint32_t reported = 0;
    tw_completion *completion;
    while ((completion = fifo_pop(&io->ready)) != NULL) {
        complete(context, completion, op_of(completion)->result);
        reported++;
    }
    return reported;
}

void tw_io_wake(tw_io *io) {
    TW_ASSERT(io != NULL);
    (void)tw_atomic_fetch_add_u32(&io->wake_word, 1, tw_release);
    (void)tw_futex_wake(&io->wake_word, TW_FUTEX_WAKE_ALL);
}

tw_loop_error tw_io_init(tw_io **io_out, uint32_t entries) {
    TW_ASSERT(io_out != NULL);
    (void)entries;
    tw_sim_world *world = tw_sim_world_current();
    TW_ASSERT_MSG(world != NULL, "a simulated loop needs a running world (tw_sim_run)");
    tw_sim_net *net = net_get(world);
    if (net->nodes_count == TW_SIM_NODES_MAX) return tw_loop_system_resources;
    tw_io *io = tw_allocate(sizeof(*io));
    if (io == NULL) return tw_loop_system_resources;
    io->world = world;
    io->net = net;
    io->node = ++net->nodes_count;
    *io_out = io;
    return tw_loop_ok;
}

/* Removes from a socket's queue every operation this loop submitted. */
static void drop_ops_of(op_fifo *fifo, tw_io *io) {
    tw_completion *c = fifo->head;
    while (c != NULL) {
        tw_completion *next = op_of(c)->next;
        if (op_of(c)->io == io) (void)fifo_remove(fifo, c);
        c = next;
    }
}

void tw_io_deinit(tw_io *io) {
    TW_ASSERT(io != NULL);
    /* As io_uring_queue_exit cancels what is in flight: drop this loop's pending
     * operations, so nothing later reaches its freed ready list. Sockets stay in the
     * network's table until the world ends (fds are never reused). */
    tw_sim_net *net = io->net;
    for (uint32_t i = 0; i < net->sockets_count; i++) {
        sim_socket *socket = socket_at(net, i);
        drop_ops_of(&socket->accepts, io);
        drop_ops_of(&socket->recvs, io);
        drop_ops_of(&socket->sends, io);
        if (socket->connecting != NULL && op_of(socket->connecting)->io == io) {
            tw_sim_event_cancel(net->world, &socket->connect_event);
            socket->connecting = NULL;
            socket->state = socket_open;
        }
    }
    tw_free(io);
}

/* ---- synchronous set-up ---- */

tw_loop_error tw_io_socket(tw_io *io, uint8_t family, tw_fd *fd) {
    TW_ASSERT(io != NULL && fd != NULL);
    if (family != 4 && family != 6) return tw_loop_address_invalid;
    if (resource_fault(io->world->options.resources.socket_fail_one_in)) { /* EMFILE */
        io->world->report->sockets_failed++;
        return tw_loop_system_resources;
    }
    sim_socket *socket = socket_new(io->net, io, family);
    if (socket == NULL) return tw_loop_system_resources;
    *fd = socket->fd;
    return tw_loop_ok;
}

tw_loop_error tw_io_bind(tw_io *io, tw_fd fd, const tw_address *address) {
    TW_ASSERT(io != NULL && address != NULL);
    sim_socket *socket;
    tw_loop_error error = socket_error(io->net, fd, &socket);
    if (error != tw_loop_ok) return error;
    if (socket->bound || address->family != socket->family) return tw_loop_address_invalid;
    tw_address local = *address;
    if (local.port == 0) local.port = io->net->port_next++;
    for (uint32_t i = 0; i < io->net->sockets_count; i++) {
        sim_socket *other = socket_at(io->net, i);
        if (other->bound && other->state == socket_listening && other->local.port == local.port &&
            other->local.family == local.family) {
            return tw_loop_address_in_use;
        }
    }
    socket->local = local;
    socket->bound = true;
    return tw_loop_ok;
}

tw_loop_error tw_io_listen(tw_io *io, tw_fd fd, uint32_t backlog) {
    TW_ASSERT(io != NULL);
    sim_socket *socket;
    tw_loop_error error = socket_error(io->net, fd, &socket);
    if (error != tw_loop_ok) return error;
    if (!socket->bound || socket->state != socket_open) return tw_loop_address_invalid;
    socket->state = socket_listening;
    socket->backlog = backlog < TW_SIM_BACKLOG_MAX ? backlog : TW_SIM_BACKLOG_MAX;
    return tw_loop_ok;
}

tw_loop_error tw_io_local_address(tw_io *io, tw_fd fd, tw_address *address) {
    TW_ASSERT(io != NULL && address != NULL);
    sim_socket *socket;
    tw_loop_error error = socket_error(io->net, fd, &socket);
    if (error != tw_loop_ok) return error;
    *address = socket->local;
    return tw_loop_ok;
}

tw_loop_error tw_io_set_send_buffer(tw_io *io, tw_fd fd, uint32_t size_bytes) {
    TW_ASSERT(io != NULL);
    sim_socket *socket;
    tw_loop_error error = socket_error(io->net, fd, &socket);
    if (error != tw_loop_ok) return error;
    uint32_t capacity = size_bytes < TW_SIM_PIPE_CAPACITY_MIN ? TW_SIM_PIPE_CAPACITY_MIN
                        : size_bytes > TW_SIM_PIPE_CAPACITY_MAX ? TW_SIM_PIPE_CAPACITY_MAX
                                                                : size_bytes;
    socket->send_capacity = capacity;
    if (socket->state == socket_connected) {
        sim_pipe *out = &socket->conn->pipes[socket->side];
        if (out->written - out->read <= capacity) out->capacity = capacity;
    }
    return tw_loop_ok;
}

tw_loop_error tw_io_set_no_delay(tw_io *io, tw_fd fd, bool no_delay) {
    TW_ASSERT(io != NULL);
    (void)no_delay; /* the simulated network never delays small segments */
    sim_socket *socket;
    return socket_error(io->net, fd, &socket);
}
