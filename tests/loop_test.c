/* The loop and TCP, one source for both builds (real: io_uring on loopback; sim: the
 * simulated network with partial sends/receives and seeded latency):
 *   1. accept, connect, send, receive, close (upstream TCP test 1)
 *   2. a queued write of 1,000,000 bytes behind an 8 KiB send buffer (upstream test 2)
 *   3. timers: order, reset, cancel; async wake from another thread, coalesced
 *   5. bad input: named errors, no crash
 *   and: cancel of pending IO, write-queue rearm, more operations than ring entries, run_for */
#include <stdio.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/loop.h>
#include <twin/os.h>
#include <twin/tcp.h>

#include "twin_test.h"

#define MS (1000u * 1000u)

static bool verbose; /* the real run prints its figures; sim sweeps stay quiet */

static tw_loop *loop_new(void) {
    tw_loop *loop = NULL;
    TW_ASSERT(tw_loop_init(&loop, NULL) == tw_loop_ok);
    return loop;
}

static tw_action expect_ok_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
    if (userdata != NULL) *(bool *)userdata = true;
    return tw_disarm;
}

/* ---- a connected pair, as in upstream's common set-up ---- */
typedef struct pair {
    tw_loop *loop;
    tw_tcp listener;
    tw_tcp client;
    tw_tcp server;
    bool accepted;
    bool connected;
} pair;

static tw_action accepted_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    pair *p = userdata;
    TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
    p->server = tw_tcp_accepted(result);
    p->accepted = true;
    return tw_disarm;
}

static void pair_open(pair *p) {
    memset(p, 0, sizeof(*p));
    p->loop = loop_new();
    tw_address address;
    TW_ASSERT(tw_address_parse("127.0.0.1:0", &address) == tw_loop_ok);
    TW_ASSERT(tw_tcp_open(p->loop, &address, &p->listener) == tw_loop_ok);
    TW_ASSERT(tw_tcp_bind(p->loop, p->listener, &address) == tw_loop_ok);
    TW_ASSERT(tw_tcp_listen(p->loop, p->listener, 1) == tw_loop_ok);
    TW_ASSERT(tw_tcp_local_address(p->loop, p->listener, &address) == tw_loop_ok);
    TW_ASSERT(address.port != 0);
    TW_ASSERT(tw_tcp_open(p->loop, &address, &p->client) == tw_loop_ok);
    tw_completion c_accept = {0};
    tw_completion c_connect = {0};
    tw_tcp_accept(p->loop, &c_accept, p->listener, p, accepted_cb);
    tw_tcp_connect(p->loop, &c_connect, p->client, &address, &p->connected, expect_ok_cb);
    TW_ASSERT(tw_loop_run(p->loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(p->accepted && p->connected);
    TW_ASSERT(tw_loop_active(p->loop) == 0);
}

static void pair_close(pair *p) {
    tw_completion closes[3] = {{0}, {0}, {0}};
    bool closed[3] = {false, false, false};
    tw_tcp_close(p->loop, &closes[0], p->server, &closed[0], expect_ok_cb);
    tw_tcp_close(p->loop, &closes[1], p->client, &closed[1], expect_ok_cb);
    tw_tcp_close(p->loop, &closes[2], p->listener, &closed[2], expect_ok_cb);
    TW_ASSERT(tw_loop_run(p->loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(closed[0] && closed[1] && closed[2]);
    tw_loop_deinit(p->loop);
}

/* ---- 1. accept, connect, send, receive, close ---- */
typedef struct transfer {
    const uint8_t *data;
    size_t size;
    size_t sent;
    uint8_t received[128];
    size_t received_size;
    tw_tcp tcp;
} transfer;

static tw_action sent_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    transfer *t = userdata;
    TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
    t->sent += result.value;
    if (t->sent < t->size) tw_tcp_write(loop, c, t->tcp, t->data + t->sent, t->size - t->sent, t, sent_cb);
    return tw_disarm;
}

static tw_action received_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    transfer *t = userdata;
    TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
    TW_ASSERT(result.value > 0);
    t->received_size += result.value;
    if (t->received_size < t->size) {
        tw_tcp_read(loop, c, t->tcp, t->received + t->received_size,
                    sizeof(t->received) - t->received_size, t, received_cb);
    }
    return tw_disarm;
}

static void test_accept_connect_send_recv_close(void) {
    static const uint8_t message[7] = {1, 1, 2, 3, 5, 8, 13};
    pair p;
    pair_open(&p);
    transfer out = {.data = message, .size = sizeof(message), .tcp = p.client};
    transfer in = {.size = sizeof(message), .tcp = p.server};
    tw_completion c_write = {0};
    tw_completion c_read = {0};
    tw_tcp_write(p.loop, &c_write, p.client, message, sizeof(message), &out, sent_cb);
    tw_tcp_read(p.loop, &c_read, p.server, in.received, sizeof(in.received), &in, received_cb);
    TW_ASSERT(tw_loop_run(p.loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(out.sent == sizeof(message));
    TW_ASSERT(in.received_size == sizeof(message));
    TW_ASSERT(memcmp(in.received, message, sizeof(message)) == 0);
    pair_close(&p);
}

/* ---- 2. queued writes ---- */
enum { queued_total = 1000000, unqueued_max = 100000, send_buffer_bytes = 8192 };
static uint8_t queued_send[queued_total];
static uint8_t queued_recv[queued_total];

typedef struct queued {
    tw_tcp client;
    tw_tcp server;
    size_t sent_unqueued;
    size_t sent_queued;
    size_t received;
    bool eof;
    tw_completion c_read;
} queued;

static tw_action unqueued_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    queued *q = userdata;
    TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
    q->sent_unqueued = result.value;
    return tw_disarm;
}

static tw_action noop_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)userdata;
    (void)loop;
    (void)c;
    (void)result;
    return tw_disarm;
}

static tw_action queued_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    queued *q = userdata;
    TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
    q->sent_queued = result.value;
    /* As upstream: reuse the request's completion for the shutdown. */
    tw_tcp_shutdown(loop, c, q->client, NULL, noop_cb);
    return tw_disarm;
}

static tw_action queued_read_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    queued *q = userdata;
    if (result.error == tw_loop_eof) {
        q->eof = true;
        return tw_disarm;
    }
    TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
    q->received += result.value;
    TW_ASSERT(q->received <= queued_total);
    /* Read on, past the end, to see the EOF that the shutdown sends. */
    size_t room = queued_total - q->received;
    tw_tcp_read(loop, c, q->server, queued_recv + q->received, room == 0 ? 1 : room, q, queued_read_cb);
    return tw_disarm;
}

static void test_queued_writes(void) {
    static const uint8_t pattern[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 0};
    for (size_t i = 0; i < queued_total; i++) queued_send[i] = pattern[i % 10];
    memset(queued_recv, 0, sizeof(queued_recv));
    pair p;
    pair_open(&p);
    TW_ASSERT(tw_tcp_set_send_buffer(p.loop, p.client, send_buffer_bytes) == tw_loop_ok);
    queued q = {.client = p.client, .server = p.server};

    /* A plain write with nobody reading: only part of it goes. */
    tw_completion c_write = {0};
    tw_tcp_write(p.loop, &c_write, p.client, queued_send, queued_total, &q, unqueued_cb);
    TW_ASSERT(tw_loop_run(p.loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT_MSG(q.sent_unqueued > 0 && q.sent_unqueued < unqueued_max,
                  "a plain write behind an 8 KiB send buffer should send under 100,000 bytes");
    if (verbose) printf("loop: a plain write of 1000000 bytes behind an 8 KiB send buffer sent %zu\n", q.sent_unqueued);

    /* The write queue sends the rest while the reader drains. */
    tw_write_queue queue = {0};
    tw_write_request request = {0};
    tw_tcp_queue_write(p.loop, &queue, &request, p.client, queued_send + q.sent_unqueued,
                       queued_total - q.sent_unqueued, &q, queued_cb);
    tw_tcp_read(p.loop, &q.c_read, p.server, queued_recv, queued_total, &q, queued_read_cb);
    TW_ASSERT(tw_loop_run(p.loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(q.sent_unqueued + q.sent_queued == queued_total);
    TW_ASSERT(q.received == queued_total);
    TW_ASSERT(q.eof);
    TW_ASSERT(memcmp(queued_send, queued_recv, queued_total) == 0);
    pair_close(&p);
}

/* ---- 3. timers and async ---- */
typedef struct timers {
    uint32_t order[3];
    uint32_t fired;
    uint32_t ids[3];
    tw_result last;
} timers;

typedef struct timer_tag {
    timers *t;
    uint32_t id;
} timer_tag;

static tw_action timer_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    timer_tag *tag = userdata;
    tag->t->last = result;
    if (result.error == tw_loop_ok) {
        TW_ASSERT(result.value == tw_timer_expired);
        TW_ASSERT(tag->t->fired < 3);
        tag->t->order[tag->t->fired++] = tag->id;
    }
    return tw_disarm;
}

static tw_action cancel_result_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    *(tw_result *)userdata = result;
    return tw_disarm;
}

typedef struct notifier {
    tw_async *async;
    uint32_t notifies;
} notifier;

static void notifier_main(void *arg) {
    notifier *n = arg;
    for (uint32_t i = 0; i < n->notifies; i++) tw_async_notify(n->async);
}

static tw_action async_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    TW_ASSERT(result.error == tw_loop_ok);
    (*(uint32_t *)userdata)++;
    return tw_disarm;
}

static void test_timers_and_async(void) {
    tw_loop *loop = loop_new();
    /* Order: deadlines 3, 1 and 2 ms fire as 1, 2, 3. */
    timers t = {0};
    timer_tag tags[3] = {{&t, 3}, {&t, 1}, {&t, 2}};
    tw_completion c[3] = {{0}, {0}, {0}};
    uint64_t start_ns = tw_loop_now_ns(loop);
    for (int i = 0; i < 3; i++) tw_loop_timer(loop, &c[i], tags[i].id * MS, &tags[i], timer_cb);
    TW_ASSERT(tw_loop_active(loop) == 3);
    TW_ASSERT(tw_loop_run(loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(t.fired == 3 && t.order[0] == 1 && t.order[1] == 2 && t.order[2] == 3);
    TW_ASSERT(tw_loop_now_ns(loop) - start_ns >= 3 * MS);

    /* Reset: a 100 s timer moved to 1 ms fires once, soon, without a callback for the reset. */
    t = (timers){0};
    timer_tag reset_tag = {&t, 1};
    tw_completion c_reset = {0};
    tw_loop_timer(loop, &c_reset, 100000 * MS, &reset_tag, timer_cb);
    TW_ASSERT(tw_loop_run(loop, tw_run_no_wait) == tw_loop_ok);
    TW_ASSERT(t.fired == 0 && tw_completion_active(&c_reset));
    start_ns = tw_loop_now_ns(loop);
    tw_loop_timer_reset(loop, &c_reset, 1 * MS, &reset_tag, timer_cb);
    TW_ASSERT(tw_loop_run(loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(t.fired == 1 && !tw_completion_active(&c_reset));
    TW_ASSERT(tw_loop_now_ns(loop) - start_ns < 100000 * MS);

    /* Cancel: the timer completes with canceled, the cancel with ok. */
    t = (timers){0};
    tw_completion c_long = {0};
    tw_completion c_cancel = {0};
    tw_result cancel_result = {.error = tw_loop_unexpected};
    tw_loop_timer(loop, &c_long, 100000 * MS, &reset_tag, timer_cb);
    tw_loop_cancel(loop, &c_cancel, &c_long, &cancel_result, cancel_result_cb);
    TW_ASSERT(tw_loop_run(loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(t.fired == 0 && t.last.error == tw_loop_canceled);
    TW_ASSERT(cancel_result.error == tw_loop_ok);

    /* Two timers, 1 ms and 100 s: once the first fires, the second is still armed. */
    t = (timers){0};
    tw_loop_timer(loop, &c[0], 1 * MS, &tags[1], timer_cb);
    tw_loop_timer(loop, &c[1], 100000 * MS, &tags[0], timer_cb);
    TW_ASSERT(tw_loop_run(loop, tw_run_once) == tw_loop_ok);
    TW_ASSERT(t.fired == 1 && !tw_completion_active(&c[0]) && tw_completion_active(&c[1]));
    tw_loop_cancel(loop, &c_cancel, &c[1], &cancel_result, cancel_result_cb);
    TW_ASSERT(tw_loop_run(loop, tw_run_until_done) == tw_loop_ok);

    /* Async: notifies before the loop looks coalesce into one completion. */
    tw_async async;
    tw_async_init(loop, &async);
    uint32_t wakes = 0;
    tw_completion c_async = {0};
    tw_async_notify(&async);
    tw_async_notify(&async);
    tw_async_notify(&async);
    tw_async_wait(loop, &async, &c_async, &wakes, async_cb);
    TW_ASSERT(tw_loop_run(loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(wakes == 1);

    /* Async from another thread wakes a loop that is blocked with nothing else to do. */
    wakes = 0;
    notifier n = {.async = &async, .notifies = 5};
    tw_async_wait(loop, &async, &c_async, &wakes, async_cb);
    tw_thread thread;
    TW_ASSERT(tw_thread_spawn(&thread, NULL, notifier_main, &n) == tw_os_ok);
    TW_ASSERT(tw_loop_run(loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(wakes == 1);
    TW_ASSERT(tw_thread_join(thread) == tw_os_ok); /* no notify starts after this */
    tw_async_deinit(&async);
    tw_loop_deinit(loop);
}

/* ---- 5. bad input ---- */
static tw_action expect_error_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    *(tw_loop_error *)userdata = result.error;
    return tw_disarm;
}

static tw_action nested_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)c;
    (void)result;
    *(tw_loop_error *)userdata = tw_loop_run(loop, tw_run_no_wait);
    return tw_disarm;
}

static void test_bad_input(void) {
    static const char *const bad_addresses[] = {
        "", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "1.2.3:80",
        "256.0.0.1:80", "[::1:80", "::1:80", "[::1]", "[::1]:", "host:80", "127.0.0.1:80x"};
    tw_address address;
    for (size_t i = 0; i < sizeof(bad_addresses) / sizeof(bad_addresses[0]); i++) {
        TW_ASSERT_MSG(tw_address_parse(bad_addresses[i], &address) == tw_loop_address_invalid,
                      bad_addresses[i]);
    }
    TW_ASSERT(tw_address_parse("[::1]:8080", &address) == tw_loop_ok && address.family == 6);
    char text[TW_ADDRESS_TEXT_SIZE];
    tw_address_format(&address, text, sizeof(text));
    TW_ASSERT(strcmp(text, "[::1]:8080") == 0);

    tw_loop *loop = loop_new();
    /* Connect to a port nobody listens on: refused. */
    TW_ASSERT(tw_address_parse("127.0.0.1:0", &address) == tw_loop_ok);
    tw_tcp probe;
    TW_ASSERT(tw_tcp_open(loop, &address, &probe) == tw_loop_ok);
    TW_ASSERT(tw_tcp_bind(loop, probe, &address) == tw_loop_ok);
    TW_ASSERT(tw_tcp_local_address(loop, probe, &address) == tw_loop_ok);
    tw_completion c = {0};
    bool closed = false;
    tw_tcp_close(loop, &c, probe, &closed, expect_ok_cb);
    TW_ASSERT(tw_loop_run(loop, tw_run_until_done) == tw_loop_ok && closed);
    tw_tcp client;
    TW_ASSERT(tw_tcp_open(loop, &address, &client) == tw_loop_ok);
    tw_loop_error error = tw_loop_ok;
    tw_tcp_connect(loop, &c, client, &address, &error, expect_error_cb);
    TW_ASSERT(tw_loop_run(loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT_MSG(error == tw_loop_refused, tw_loop_error_name(error));

    /* recv on a socket that never connected. (After a failed connect Linux reports EOF
     * instead, so the fresh socket is the portable case.) */
    uint8_t buffer[16];
    tw_tcp fresh;
    TW_ASSERT(tw_tcp_open(loop, &address, &fresh) == tw_loop_ok);
    tw_tcp_read(loop, &c, fresh, buffer, sizeof(buffer), &error, expect_error_cb);
    TW_ASSERT(tw_loop_run(loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT_MSG(error == tw_loop_not_connected, tw_loop_error_name(error));
    tw_tcp_close(loop, &c, fresh, &closed, expect_ok_cb);
    TW_ASSERT(tw_loop_run(loop, tw_run_until_done) == tw_loop_ok);

    /* Send on a closed socket. */
    tw_tcp_close(loop, &c, client, &closed, expect_ok_cb);
    TW_ASSERT(tw_loop_run(loop, tw_run_until_done) == tw_loop_ok);
    tw_tcp_write(loop, &c, client, buffer, sizeof(buffer), &error, expect_error_cb);
    TW_ASSERT(tw_loop_run(loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT_MSG(error == tw_loop_bad_socket, tw_loop_error_name(error));

    /* Cancel of a finished operation, and of one never started. */
    tw_completion c_cancel = {0};
    tw_result cancel_result = {0};
    tw_loop_cancel(loop, &c_cancel, &c, &cancel_result, cancel_result_cb);
    TW_ASSERT(tw_loop_run(loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(cancel_result.error == tw_loop_not_found);
    tw_completion never = {0};
    tw_loop_cancel(loop, &c_cancel, &never, &cancel_result, cancel_result_cb);
    TW_ASSERT(tw_loop_run(loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(cancel_result.error == tw_loop_not_found);

    /* Binding a port a listener holds. */
    pair p;
    pair_open(&p);
    TW_ASSERT(tw_tcp_local_address(p.loop, p.listener, &address) == tw_loop_ok);
    tw_tcp second;
    TW_ASSERT(tw_tcp_open(p.loop, &address, &second) == tw_loop_ok);
    TW_ASSERT(tw_tcp_bind(p.loop, second, &address) == tw_loop_address_in_use);
    tw_tcp_close(p.loop, &c, second, &closed, expect_ok_cb);
    TW_ASSERT(tw_loop_run(p.loop, tw_run_until_done) == tw_loop_ok);
    pair_close(&p);

    /* A run from inside a callback of the same loop. */
    error = tw_loop_ok;
    tw_loop_timer(loop, &c, 0, &error, nested_cb);
    TW_ASSERT(tw_loop_run(loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(error == tw_loop_nested_run);
    /* A stopped loop runs nothing. */
    bool fired = false;
    tw_loop_timer(loop, &c, 0, &fired, expect_ok_cb);
    tw_loop_stop(loop);
    TW_ASSERT(tw_loop_run(loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(!fired && tw_loop_active(loop) == 1);
    tw_loop_deinit(loop);
}

/* ---- cancel of pending IO, write-queue rearm, a full ring, run_for ---- */
typedef struct rearm_state {
    uint32_t callbacks;
    uint8_t received[16];
    size_t received_size;
    tw_tcp server;
} rearm_state;

static tw_action rearm_once_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    rearm_state *r = userdata;
    TW_ASSERT(result.error == tw_loop_ok && result.value == 3);
    r->callbacks++;
    return r->callbacks == 1 ? tw_rearm : tw_disarm;
}

static tw_action rearm_read_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    rearm_state *r = userdata;
    TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
    r->received_size += result.value;
    if (r->received_size < 6) {
        tw_tcp_read(loop, c, r->server, r->received + r->received_size,
                    sizeof(r->received) - r->received_size, r, rearm_read_cb);
    }
    return tw_disarm;
}

enum { small_ring_entries = 4, small_ring_ops = 64 };

typedef struct many {
    uint32_t sent;
    uint32_t received_bytes;
    uint8_t buffer[small_ring_ops];
} many;

static tw_action many_sent_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    TW_ASSERT_MSG(result.error == tw_loop_ok && result.value == 1, tw_loop_error_name(result.error));
    ((many *)userdata)->sent++;
    return tw_disarm;
}

static void test_cancel_rearm_ring_run_for(void) {
    /* Cancel a recv that waits for data: it completes canceled, the cancel ok. */
    pair p;
    pair_open(&p);
    uint8_t buffer[8];
    tw_completion c_read = {0};
    tw_completion c_cancel = {0};
    tw_loop_error read_error = tw_loop_ok;
    tw_result cancel_result = {.error = tw_loop_unexpected};
    tw_tcp_read(p.loop, &c_read, p.server, buffer, sizeof(buffer), &read_error, expect_error_cb);
    TW_ASSERT(tw_loop_run(p.loop, tw_run_no_wait) == tw_loop_ok);
    TW_ASSERT(tw_completion_active(&c_read));
    tw_loop_cancel(p.loop, &c_cancel, &c_read, &cancel_result, cancel_result_cb);
    TW_ASSERT(tw_loop_run(p.loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT_MSG(read_error == tw_loop_canceled, tw_loop_error_name(read_error));
    TW_ASSERT_MSG(cancel_result.error == tw_loop_ok, tw_loop_error_name(cancel_result.error));

    /* A write request rearmed by its callback sends its whole buffer again. */
    rearm_state r = {.server = p.server};
    tw_write_queue queue = {0};
    tw_write_request request = {0};
    tw_tcp_queue_write(p.loop, &queue, &request, p.client, "abc", 3, &r, rearm_once_cb);
    tw_tcp_read(p.loop, &c_read, p.server, r.received, sizeof(r.received), &r, rearm_read_cb);
    TW_ASSERT(tw_loop_run(p.loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(r.callbacks == 2 && r.received_size == 6);
    TW_ASSERT(memcmp(r.received, "abcabc", 6) == 0);
    pair_close(&p);

    /* More operations than ring entries: the overflow waits its turn, nothing is lost. */
    tw_loop *small = NULL;
    TW_ASSERT(tw_loop_init(&small, &(tw_loop_options){.entries = small_ring_entries}) == tw_loop_ok);
    pair q;
    pair_open(&q);
    static tw_completion sends[small_ring_ops];
    many m = {0};
    memset(sends, 0, sizeof(sends));
    for (uint32_t i = 0; i < small_ring_ops; i++) m.buffer[i] = (uint8_t)i;
    /* The pair's own loop is the default size; use the small one for the sends. */
    for (uint32_t i = 0; i < small_ring_ops; i++) {
        tw_tcp_write(small, &sends[i], q.client, &m.buffer[i], 1, &m, many_sent_cb);
    }
    TW_ASSERT(tw_loop_active(small) == small_ring_ops);
    TW_ASSERT(tw_loop_run(small, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(m.sent == small_ring_ops);
    uint8_t got[small_ring_ops];
    transfer in = {.size = small_ring_ops, .tcp = q.server};
    tw_tcp_read(q.loop, &c_read, q.server, in.received, sizeof(in.received), &in, received_cb);
    TW_ASSERT(tw_loop_run(q.loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(in.received_size == small_ring_ops);
    memcpy(got, in.received, small_ring_ops);
    /* Sends of one socket submitted in order arrive in order. */
    for (uint32_t i = 0; i < small_ring_ops; i++) TW_ASSERT(got[i] == (uint8_t)i);
    pair_close(&q);
    tw_loop_deinit(small);

    /* Deinit with a recv pending: it is dropped (as io_uring cancels it), and bytes sent to
     * its socket afterwards still reach a later read on another loop. */
    pair d;
    pair_open(&d);
    tw_loop *other = loop_new();
    tw_completion c_pending = {0};
    uint8_t pending_buffer[4];
    bool pending_ran = false;
    tw_tcp_read(other, &c_pending, d.server, pending_buffer, sizeof(pending_buffer), &pending_ran, expect_ok_cb);
    TW_ASSERT(tw_loop_run(other, tw_run_no_wait) == tw_loop_ok);
    tw_loop_deinit(other);
    static const uint8_t four[4] = {4, 3, 2, 1};
    transfer late_out = {.data = four, .size = sizeof(four), .tcp = d.client};
    transfer late_in = {.size = sizeof(four), .tcp = d.server};
    tw_completion c_late_write = {0};
    tw_completion c_late_read = {0};
    tw_tcp_write(d.loop, &c_late_write, d.client, four, sizeof(four), &late_out, sent_cb);
    tw_tcp_read(d.loop, &c_late_read, d.server, late_in.received, sizeof(late_in.received), &late_in, received_cb);
    TW_ASSERT(tw_loop_run(d.loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(!pending_ran && late_in.received_size == sizeof(four));
    TW_ASSERT(memcmp(late_in.received, four, sizeof(four)) == 0);
    pair_close(&d);

    /* Close with a recv pending on the socket: the recv completes canceled, the close ok,
     * and the peer sees the connection end (EOF). */
    pair e;
    pair_open(&e);
    tw_completion c_doomed = {0};
    tw_completion c_closing = {0};
    tw_loop_error doomed_error = tw_loop_ok;
    bool closing_ok = false;
    uint8_t doomed_buffer[4];
    tw_tcp_read(e.loop, &c_doomed, e.server, doomed_buffer, sizeof(doomed_buffer), &doomed_error, expect_error_cb);
    TW_ASSERT(tw_loop_run(e.loop, tw_run_no_wait) == tw_loop_ok);
    tw_tcp_close(e.loop, &c_closing, e.server, &closing_ok, expect_ok_cb);
    tw_loop_error peer_error = tw_loop_ok;
    tw_tcp_read(e.loop, &c_late_read, e.client, doomed_buffer, sizeof(doomed_buffer), &peer_error, expect_error_cb);
    TW_ASSERT(tw_loop_run(e.loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT_MSG(doomed_error == tw_loop_canceled, tw_loop_error_name(doomed_error));
    TW_ASSERT(closing_ok);
    TW_ASSERT_MSG(peer_error == tw_loop_eof, tw_loop_error_name(peer_error));
    tw_completion closes2[2] = {{0}, {0}};
    bool closed2[2] = {false, false};
    tw_tcp_close(e.loop, &closes2[0], e.client, &closed2[0], expect_ok_cb);
    tw_tcp_close(e.loop, &closes2[1], e.listener, &closed2[1], expect_ok_cb);
    TW_ASSERT(tw_loop_run(e.loop, tw_run_until_done) == tw_loop_ok && closed2[0] && closed2[1]);
    tw_loop_deinit(e.loop);

    /* run_for: stops after the given loop time with a timer still pending. */
    tw_loop *loop = loop_new();
    timers t = {0};
    timer_tag tag = {&t, 1};
    tw_completion c_timer = {0};
    tw_loop_timer(loop, &c_timer, 100000 * MS, &tag, timer_cb);
    uint64_t start_ns = tw_loop_now_ns(loop);
    TW_ASSERT(tw_loop_run_for(loop, 2 * MS) == tw_loop_ok);
    TW_ASSERT(tw_loop_now_ns(loop) - start_ns >= 2 * MS);
    TW_ASSERT(t.fired == 0 && tw_completion_active(&c_timer));
    tw_loop_cancel(loop, &c_cancel, &c_timer, &cancel_result, cancel_result_cb);
    TW_ASSERT(tw_loop_run(loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(t.last.error == tw_loop_canceled);
    tw_loop_deinit(loop);
}

/* ---- 6. taking the waiting writes off a queue before a close ---- */
typedef struct taking {
    tw_write_queue *queue;
    uint32_t first_runs;
    uint32_t later_runs;
    tw_loop_error first_error;
    tw_write_request *taken_inside; /* what take_waiting gave inside the first callback */
    bool take_inside;
} taking;

static tw_action take_first_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    taking *t = userdata;
    t->first_runs++;
    t->first_error = result.error;
    if (t->take_inside) t->taken_inside = tw_write_queue_take_waiting(t->queue);
    return tw_disarm;
}

static tw_action take_later_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    (void)result;
    ((taking *)userdata)->later_runs++;
    return tw_disarm;
}

typedef struct read_outcome {
    tw_loop_error error;
    uint64_t value;
} read_outcome;

static tw_action read_outcome_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    read_outcome *outcome = userdata;
    outcome->error = result.error;
    outcome->value = result.value;
    return tw_disarm;
}

/* Reads what the peer gets until EOF; returns the byte count. */
static size_t drain_to_eof(pair *p, uint8_t *buffer, size_t size) {
    size_t got = 0;
    for (;;) {
        tw_completion c_read = {0};
        read_outcome outcome = {0};
        tw_tcp_read(p->loop, &c_read, p->client, buffer + got, size - got, &outcome, read_outcome_cb);
        TW_ASSERT(tw_loop_run(p->loop, tw_run_until_done) == tw_loop_ok);
        if (outcome.error == tw_loop_eof) return got;
        TW_ASSERT_MSG(outcome.error == tw_loop_ok, tw_loop_error_name(outcome.error));
        got += outcome.value;
        TW_ASSERT(got < size);
    }
}

static void test_take_waiting(void) {
    for (int inside = 0; inside < 2; inside++) {
        pair p;
        pair_open(&p);
        tw_write_queue queue = {0};
        tw_write_request requests[3];
        memset(requests, 0, sizeof(requests));
        taking t = {.queue = &queue, .take_inside = inside == 1};
        tw_tcp_queue_write(p.loop, &queue, &requests[0], p.server, "a", 1, &t, take_first_cb);
        tw_tcp_queue_write(p.loop, &queue, &requests[1], p.server, "bb", 2, &t, take_later_cb);
        tw_tcp_queue_write(p.loop, &queue, &requests[2], p.server, "ccc", 3, &t, take_later_cb);
        if (!t.take_inside) {
            /* Before any run: the head is in flight, the other two only wait. */
            tw_write_request *taken = tw_write_queue_take_waiting(&queue);
            TW_ASSERT(taken == &requests[1] && taken->next == &requests[2] && requests[2].next == NULL);
            TW_ASSERT(queue.head == &requests[0] && queue.tail == &requests[0]);
            TW_ASSERT(tw_write_queue_take_waiting(&queue) == NULL);
        }
        TW_ASSERT(tw_loop_run(p.loop, tw_run_until_done) == tw_loop_ok);
        TW_ASSERT(t.first_runs == 1 && t.first_error == tw_loop_ok && t.later_runs == 0);
        if (t.take_inside) {
            /* Inside the first callback nothing was in flight: both waiting ones came off. */
            TW_ASSERT(t.taken_inside == &requests[1] && requests[1].next == &requests[2]);
        }
        TW_ASSERT(queue.head == NULL && queue.tail == NULL);
        tw_completion c_close = {0};
        bool closed = false;
        tw_tcp_close(p.loop, &c_close, p.server, &closed, expect_ok_cb);
        uint8_t got[16];
        size_t got_size = drain_to_eof(&p, got, sizeof(got));
        TW_ASSERT(closed && got_size == 1 && got[0] == 'a'); /* nothing taken was ever sent */
        tw_completion closes[2] = {{0}, {0}};
        bool closed2[2] = {false, false};
        tw_tcp_close(p.loop, &closes[0], p.client, &closed2[0], expect_ok_cb);
        tw_tcp_close(p.loop, &closes[1], p.listener, &closed2[1], expect_ok_cb);
        TW_ASSERT(tw_loop_run(p.loop, tw_run_until_done) == tw_loop_ok && closed2[0] && closed2[1]);
        tw_loop_deinit(p.loop);
    }
}

static void loop_main(void *arg) {
    (void)arg;
    tw_test_phase("loop: accept_connect_send_recv_close");
    test_accept_connect_send_recv_close();
    tw_test_phase("loop: queued_writes");
    test_queued_writes();
    tw_test_phase("loop: timers_and_async");
    test_timers_and_async();
    tw_test_phase("loop: bad_input");
    test_bad_input();
    tw_test_phase("loop: cancel_rearm_ring_run_for");
    test_cancel_rearm_ring_run_for();
    tw_test_phase("loop: take_waiting");
    test_take_waiting();
}

static void *prepare(tw_test_build build) {
    verbose = build == tw_test_build_real;
    return NULL;
}

int main(int argc, char **argv) {
    tw_test_case test = {.name = "loop", .real_uses_io_uring = true, .prepare = prepare, .main_fn = loop_main,
                         .sim_disruptions_off = true};
    return tw_test_main(argc, argv, &test);
}
