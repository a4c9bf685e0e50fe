/* twin-pingpong: libxev's ping-pong benchmark on twin's loop. One ping outstanding:
 * the client sends "PING\n", the server answers each complete "PING\n" with "PONG\n".
 *   --count N            round trips (default 500000)
 *   --layout threads     server loop on a spawned thread, client loop on the main thread
 *   --layout single      server and client on one loop, one thread
 *   --port P             127.0.0.1:P (default 3131; the sim build ignores the real port space)
 * Built twice: twin-pingpong (real: io_uring on loopback) and twin-pingpong-sim (the
 * simulated network, faults off; prints wall and simulated figures). One line out, in the
 * format of the peers (twin-pingpong-blocking, twin-pingpong-libuv). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <twin/assert.h>
#include <twin/atomic.h>
#include <twin/loop.h>
#include <twin/os.h>
#include <twin/tcp.h>

#if defined(TW_BENCH_SIM)
#include <twin/sim.h>
#endif

#define PINGPONG_COUNT_DEFAULT 500000u
#define PINGPONG_PORT_DEFAULT 3131u
#define PINGPONG_CLIENT_BUFFER 1024u
#define PINGPONG_SERVER_BUFFER 4096u
#define PINGPONG_MESSAGE_SIZE 5u
#define PINGPONG_PONGS_IN_FLIGHT_MAX 16u

static const char ping[PINGPONG_MESSAGE_SIZE] = {'P', 'I', 'N', 'G', '\n'};
static const char pong[PINGPONG_MESSAGE_SIZE] = {'P', 'O', 'N', 'G', '\n'};

typedef struct settings {
    uint64_t count;
    bool single;
    uint16_t port;
} settings;

static settings config = {.count = PINGPONG_COUNT_DEFAULT, .port = PINGPONG_PORT_DEFAULT};

static tw_action ignore_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)userdata;
    (void)loop;
    (void)c;
    (void)result;
    return tw_disarm;
}

/* ---- server ---- */
typedef struct server {
    tw_loop *loop;
    tw_tcp listener;
    tw_tcp conn;
    tw_address address;
    tw_completion c_accept;
    tw_completion c_read;
    tw_completion c_close;
    uint8_t buffer[PINGPONG_SERVER_BUFFER];
    uint32_t state; /* position in "PING\n" */
    tw_write_queue queue;
    tw_write_request requests[PINGPONG_PONGS_IN_FLIGHT_MAX];
    bool done;
} server;

static tw_action server_pong_sent_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)userdata;
    (void)loop;
    (void)c;
    TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
    return tw_disarm;
}

static tw_action server_closed_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    (void)result;
    ((server *)userdata)->done = true;
    return tw_disarm;
}

static tw_action server_read_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)c;
    server *s = userdata;
    if (result.error == tw_loop_eof) {
        tw_tcp_close(loop, &s->c_close, s->conn, s, server_closed_cb);
        return tw_disarm;
    }
    TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
    for (uint64_t i = 0; i < result.value; i++) {
        TW_ASSERT_MSG(s->buffer[i] == (uint8_t)ping[s->state], "server: not a PING");
        s->state = (s->state + 1) % PINGPONG_MESSAGE_SIZE;
        if (s->state != 0) continue;
        tw_write_request *request = NULL;
        for (uint32_t r = 0; r < PINGPONG_PONGS_IN_FLIGHT_MAX && request == NULL; r++) {
            if (!tw_completion_active(&s->requests[r].completion)) request = &s->requests[r];
        }
        TW_ASSERT_MSG(request != NULL, "server: more pongs in flight than the client allows");
        tw_tcp_queue_write(loop, &s->queue, request, s->conn, pong, sizeof(pong), s,
                           server_pong_sent_cb);
    }
    return tw_rearm;
}

static tw_action server_accept_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)c;
    server *s = userdata;
    TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
    s->conn = tw_tcp_accepted(result);
    (void)tw_tcp_set_no_delay(loop, s->conn, true);
    tw_tcp_read(loop, &s->c_read, s->conn, s->buffer, sizeof(s->buffer), s, server_read_cb);
    /* One connection; the listener closes now. */
    tw_tcp_close(loop, &s->c_accept, s->listener, NULL, ignore_cb);
    return tw_disarm;
}

static void server_start(server *s, tw_loop *loop) {
    s->loop = loop;
    char text[32];
    snprintf(text, sizeof(text), "127.0.0.1:%u", (unsigned)config.port);
    TW_ASSERT(tw_address_parse(text, &s->address) == tw_loop_ok);
    TW_ASSERT(tw_tcp_open(loop, &s->address, &s->listener) == tw_loop_ok);
    tw_loop_error error = tw_tcp_bind(loop, s->listener, &s->address);
    if (error != tw_loop_ok) {
        fprintf(stderr, "twin-pingpong: bind %s: %s (is another benchmark on that port? try --port)\n",
                text, tw_loop_error_name(error));
        exit(1);
    }
    TW_ASSERT(tw_tcp_listen(loop, s->listener, 128) == tw_loop_ok);
    tw_tcp_accept(loop, &s->c_accept, s->listener, s, server_accept_cb);
}

static void server_thread_main(void *arg) {
    server *s = arg;
    TW_ASSERT(tw_loop_run(s->loop, tw_run_until_done) == tw_loop_ok);
}

/* ---- client ---- */
typedef struct client {
    tw_tcp tcp;
    tw_completion c_connect;
    tw_completion c_write;
    tw_completion c_read;
    uint8_t buffer[PINGPONG_CLIENT_BUFFER];
    uint32_t state;
    uint64_t pongs;
    uint64_t start_ns;
    uint64_t end_ns;
    uint32_t ping_sent; /* bytes of the current ping sent */
    bool done;
} client;

static uint64_t wall_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static tw_action client_ping_sent_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    client *cl = userdata;
    TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
    cl->ping_sent += (uint32_t)result.value;
    if (cl->ping_sent < sizeof(ping)) {
        tw_tcp_write(loop, c, cl->tcp, ping + cl->ping_sent, sizeof(ping) - cl->ping_sent, cl,
                     client_ping_sent_cb);
    }
    return tw_disarm;
}

static void client_ping(client *cl, tw_loop *loop) {
    TW_ASSERT_MSG(!tw_completion_active(&cl->c_write), "client: a ping is still being sent");
    cl->ping_sent = 0;
    tw_tcp_write(loop, &cl->c_write, cl->tcp, ping, sizeof(ping), cl, client_ping_sent_cb);
}

static tw_action client_closed_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    (void)result;
    ((client *)userdata)->done = true;
    return tw_disarm;
}

static tw_action client_shut_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    client *cl = userdata;
    (void)result;
    tw_tcp_close(loop, c, cl->tcp, cl, client_closed_cb);
    return tw_disarm;
}

static tw_action client_read_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    client *cl = userdata;
    TW_ASSERT_MSG(result.error == tw_loop_ok, tw_loop_error_name(result.error));
    for (uint64_t i = 0; i < result.value; i++) {
        TW_ASSERT_MSG(cl->buffer[i] == (uint8_t)pong[cl->state], "client: not a PONG");
        cl->state = (cl->state + 1) % PINGPONG_MESSAGE_SIZE;
        if (cl->state != 0) continue;
        cl->pongs++;
        if (cl->pongs == config.count) {
            cl->end_ns = wall_ns();
            tw_tcp_shutdown(loop, c, cl->tcp, cl, client_shut_cb);
            return tw_disarm;
        }
        client_ping(cl, loop);
    }
    return tw_rearm;
}

static tw_action client_connected_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)c;
    client *cl = userdata;
    if (result.error != tw_loop_ok) {
        fprintf(stderr, "twin-pingpong: connect: %s\n", tw_loop_error_name(result.error));
        exit(1);
    }
    (void)tw_tcp_set_no_delay(loop, cl->tcp, true);
    cl->start_ns = wall_ns();
    client_ping(cl, loop);
    tw_tcp_read(loop, &cl->c_read, cl->tcp, cl->buffer, sizeof(cl->buffer), cl, client_read_cb);
    return tw_disarm;
}

static server the_server;
static client the_client;
static uint64_t sim_start_ns;
static uint64_t sim_end_ns;

static void pingpong_main(void *arg) {
    (void)arg;
    tw_loop *server_loop = NULL;
    tw_loop *client_loop = NULL;
    TW_ASSERT(tw_loop_init(&server_loop, &(tw_loop_options){.entries = 4096}) == tw_loop_ok);
    server_start(&the_server, server_loop);
    if (config.single) {
        client_loop = server_loop;
    } else {
        TW_ASSERT(tw_loop_init(&client_loop, &(tw_loop_options){.entries = 4096}) == tw_loop_ok);
    }
    tw_thread server_thread = {0};
    if (!config.single) {
        TW_ASSERT(tw_thread_spawn(&server_thread, NULL, server_thread_main, &the_server) == tw_os_ok);
    }
    TW_ASSERT(tw_tcp_open(client_loop, &the_server.address, &the_client.tcp) == tw_loop_ok);
    tw_tcp_connect(client_loop, &the_client.c_connect, the_client.tcp, &the_server.address,
                   &the_client, client_connected_cb);
    sim_start_ns = tw_clock_monotonic_ns();
    TW_ASSERT(tw_loop_run(client_loop, tw_run_until_done) == tw_loop_ok);
    if (!config.single) TW_ASSERT(tw_thread_join(server_thread) == tw_os_ok);
    sim_end_ns = tw_clock_monotonic_ns();
    TW_ASSERT(the_client.done && the_server.done && the_client.pongs == config.count);
    tw_loop_deinit(client_loop);
    if (!config.single) tw_loop_deinit(server_loop);
}

static int usage(const char *problem, const char *value) {
    fprintf(stderr, "twin-pingpong: %s '%s'\n"
                    "usage: twin-pingpong [--count N (>= 1)] [--layout threads|single] [--port 1..65535]\n",
            problem, value);
    return 2;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) return usage("a value is missing after", argv[i]);
        const char *flag = argv[i];
        const char *value = argv[++i];
        char *end = NULL;
        if (strcmp(flag, "--count") == 0) {
            unsigned long long count = strtoull(value, &end, 10);
            if (end == value || *end != '\0' || count == 0 || value[0] == '-') {
                return usage("--count takes a number >= 1, not", value);
            }
            config.count = count;
        } else if (strcmp(flag, "--layout") == 0) {
            if (strcmp(value, "threads") == 0) config.single = false;
            else if (strcmp(value, "single") == 0) config.single = true;
            else return usage("--layout takes threads or single, not", value);
        } else if (strcmp(flag, "--port") == 0) {
            unsigned long port = strtoul(value, &end, 10);
            if (end == value || *end != '\0' || port == 0 || port > 65535) {
                return usage("--port takes 1..65535, not", value);
            }
            config.port = (uint16_t)port;
        } else {
            return usage("unknown flag", flag);
        }
    }
    const char *layout = config.single ? "single" : "threads";
#if defined(TW_BENCH_SIM)
    tw_sim_options options = {.seed = 1, .strategy = tw_sim_strategy_random, .switch_shift = 6,
                              .spurious_shift = -1, .steps_max = UINT64_MAX,
                              .net = {.faults_off = true}};
    tw_sim_report *report = malloc(sizeof(*report));
    TW_ASSERT(report != NULL);
    uint64_t wall_start_ns = wall_ns();
    tw_sim_outcome outcome = tw_sim_run(&options, pingpong_main, NULL, report);
    double wall_s = (double)(wall_ns() - wall_start_ns) / 1e9;
    if (outcome != tw_sim_passed) {
        fprintf(stderr, "twin-pingpong-sim: %s: %s\n", tw_sim_outcome_name(outcome), report->message);
        return 1;
    }
    double sim_s = (double)(sim_end_ns - sim_start_ns) / 1e9;
    printf("pingpong: impl=twin-sim layout=%s roundtrips=%" PRIu64 " seconds=%.6f roundtrips_per_s=%.1f"
           " sim_seconds=%.6f sim_roundtrips_per_s=%.1f steps=%" PRIu64 "\n",
           layout, config.count, wall_s, (double)config.count / wall_s, sim_s,
           (double)config.count / sim_s, report->steps);
    free(report);
#else
    pingpong_main(NULL);
    double seconds = (double)(the_client.end_ns - the_client.start_ns) / 1e9;
    printf("pingpong: impl=twin layout=%s roundtrips=%" PRIu64 " seconds=%.6f roundtrips_per_s=%.1f\n",
           layout, config.count, seconds, (double)config.count / seconds);
#endif
    return 0;
}
