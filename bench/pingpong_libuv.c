/* twin-pingpong-libuv: latency-bound TCP ping-pong over loopback with libuv
 * (uv_tcp_*, uv_read_start, uv_write; the parameters of libxev's ping-pong benchmark).
 *   client: sends "PING\n", on each complete "PONG\n" counts a round trip and sends the next
 *           ping; after --count pongs it shuts down its write side (uv_shutdown) and closes.
 *   server: answers every complete "PING\n" with "PONG\n"; on EOF closes and its loop ends.
 * --layout threads: the server runs its own uv_loop on a pthread, the client on main.
 * --layout single:  server and client handles share ONE uv_loop on the main thread.
 * Usage: twin-pingpong-libuv [--count N] [--port P] [--layout threads|single] */
#include <pthread.h>
#include <uv.h>

#include "pingpong_common.h"

#define READ_BUF_SIZE 65536u

/* For libuv calls: negative return = error code. */
#define PP_CHECK_UV(expr, name)                                                          \
    do {                                                                                 \
        int pp_uvrc_ = (expr);                                                           \
        if (pp_uvrc_ < 0) {                                                              \
            fprintf(stderr, "%s: %s failed: %s\n", bench_prog, (name), uv_strerror(pp_uvrc_)); \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

static struct pp_opts opts;

/* Static message buffers: libuv only reads them, never owns them. */
static char ping_msg[] = PP_PING;
static char pong_msg[] = PP_PONG;

/* ---- server ---- */
static uv_tcp_t srv_listener;
static uv_tcp_t srv_conn;
static struct pp_matcher srv_match = {PP_PING, 0};
static char srv_buf[READ_BUF_SIZE];
static uv_write_t srv_write_req;
static int srv_write_busy;        /* srv_write_req is in flight */
static uint64_t srv_pongs_queued; /* pongs owed but not yet handed to uv_write */

static void srv_write_pong(void);

static void srv_on_write(uv_write_t *req, int status) {
    (void)req;
    if (status == UV_ECANCELED) return; /* connection closed on EOF while this was queued */
    PP_CHECK_UV(status, "uv_write(PONG)");
    srv_write_busy = 0;
    if (srv_pongs_queued > 0) {
        srv_pongs_queued--;
        srv_write_pong();
    }
}

static void srv_write_pong(void) {
    BENCH_CHECK(!srv_write_busy);
    uv_buf_t b = uv_buf_init(pong_msg, PP_MSG_LEN);
    srv_write_busy = 1;
    PP_CHECK_UV(uv_write(&srv_write_req, (uv_stream_t *)&srv_conn, &b, 1, srv_on_write),
                "uv_write(PONG)");
}

static void srv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(srv_buf, sizeof srv_buf);
}

static void srv_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    if (nread == UV_EOF) {
        /* The client shut down its write side: close everything; the loop then ends. */
        if (srv_match.pos != 0) bench_fail("server: EOF in the middle of a PING");
        uv_close((uv_handle_t *)s, NULL);
        uv_close((uv_handle_t *)&srv_listener, NULL);
        return;
    }
    PP_CHECK_UV((int)nread, "read(server)");
    for (ssize_t i = 0; i < nread; i++) {
        int r = pp_match_byte(&srv_match, buf->base[i]);
        if (r < 0) pp_protocol_error("server", &srv_match, buf->base[i]);
        if (r > 0) {
            /* Never reuse srv_write_req while it is in flight: queue the pong instead. */
            if (srv_write_busy)
                srv_pongs_queued++;
            else
                srv_write_pong();
        }
    }
}

static void srv_on_connection(uv_stream_t *listener, int status) {
    PP_CHECK_UV(status, "listen callback");
    PP_CHECK_UV(uv_tcp_init(listener->loop, &srv_conn), "uv_tcp_init(server connection)");
    PP_CHECK_UV(uv_accept(listener, (uv_stream_t *)&srv_conn), "uv_accept");
    /* TCP_NODELAY: each 5-byte message must leave at once, not wait on Nagle. */
    PP_CHECK_UV(uv_tcp_nodelay(&srv_conn, 1), "uv_tcp_nodelay(server)");
    PP_CHECK_UV(uv_read_start((uv_stream_t *)&srv_conn, srv_alloc, srv_on_read),
                "uv_read_start(server)");
}

/* Bind and listen on loop (done on the main thread before any loop runs). */
static void srv_listen(uv_loop_t *loop, const struct sockaddr_in *addr) {
    PP_CHECK_UV(uv_tcp_init(loop, &srv_listener), "uv_tcp_init(listener)");
    /* libuv sets SO_REUSEADDR on TCP listeners itself in uv_tcp_bind (on Unix). */
    PP_CHECK_UV(uv_tcp_bind(&srv_listener, (const struct sockaddr *)addr, 0), "uv_tcp_bind");
    PP_CHECK_UV(uv_listen((uv_stream_t *)&srv_listener, 16, srv_on_connection), "uv_listen");
}

static void *server_thread(void *arg) {
    uv_loop_t *loop = arg;
    PP_CHECK_UV(uv_run(loop, UV_RUN_DEFAULT), "uv_run(server)");
    return NULL;
}

/* ---- client ---- */
static uv_tcp_t cli_sock;
static uv_connect_t cli_connect_req;
static uv_shutdown_t cli_shutdown_req;
static struct pp_matcher cli_match = {PP_PONG, 0};
static char cli_buf[READ_BUF_SIZE];
static uv_write_t cli_write_req;
static int cli_write_busy;  /* cli_write_req is in flight */
static int cli_ping_wanted; /* next ping is due but cli_write_req was still in flight */
static int cli_awaiting_pong;
static uint64_t cli_done;
static uint64_t cli_start_ns, cli_end_ns;

static void cli_send_ping(void);

static void cli_on_write(uv_write_t *req, int status) {
    (void)req;
    PP_CHECK_UV(status, "uv_write(PING)");
    cli_write_busy = 0;
    if (cli_ping_wanted) {
        cli_ping_wanted = 0;
        cli_send_ping();
    }
}

static void cli_send_ping(void) {
    cli_awaiting_pong = 1;
    if (cli_write_busy) { /* never reuse cli_write_req while it is in flight */
        cli_ping_wanted = 1;
        return;
    }
    uv_buf_t b = uv_buf_init(ping_msg, PP_MSG_LEN);
    cli_write_busy = 1;
    PP_CHECK_UV(uv_write(&cli_write_req, (uv_stream_t *)&cli_sock, &b, 1, cli_on_write),
                "uv_write(PING)");
}

static void cli_on_shutdown(uv_shutdown_t *req, int status) {
    PP_CHECK_UV(status, "uv_shutdown");
    uv_close((uv_handle_t *)req->handle, NULL);
}

static void cli_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(cli_buf, sizeof cli_buf);
}

static void cli_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    if (nread == UV_EOF) bench_fail("client: server closed the connection early");
    PP_CHECK_UV((int)nread, "read(client)");
    for (ssize_t i = 0; i < nread; i++) {
        /* One ping is outstanding, so nothing may follow its pong. */
        if (!cli_awaiting_pong) bench_fail("client: unexpected bytes after a PONG");
        int r = pp_match_byte(&cli_match, buf->base[i]);
        if (r < 0) pp_protocol_error("client", &cli_match, buf->base[i]);
        if (r > 0) {
            cli_awaiting_pong = 0;
            if (++cli_done < opts.count) {
                cli_send_ping();
            } else {
                cli_end_ns = bench_now_ns();
                PP_CHECK_UV(uv_read_stop(s), "uv_read_stop(client)");
                /* SHUT_WR once pending writes are flushed, then close. */
                PP_CHECK_UV(uv_shutdown(&cli_shutdown_req, s, cli_on_shutdown), "uv_shutdown");
            }
        }
    }
}

static void cli_on_connect(uv_connect_t *req, int status) {
    (void)req;
    if (status < 0) {
        fprintf(stderr, "%s: connect to %s:%u failed: %s\n", bench_prog, PP_ADDR, opts.port,
                uv_strerror(status));
        exit(1);
    }
    /* TCP_NODELAY: each 5-byte message must leave at once, not wait on Nagle. */
    PP_CHECK_UV(uv_tcp_nodelay(&cli_sock, 1), "uv_tcp_nodelay(client)");
    PP_CHECK_UV(uv_read_start((uv_stream_t *)&cli_sock, cli_alloc, cli_on_read),
                "uv_read_start(client)");
    cli_start_ns = bench_now_ns();
    cli_send_ping();
}

static void cli_connect(uv_loop_t *loop, const struct sockaddr_in *addr) {
    PP_CHECK_UV(uv_tcp_init(loop, &cli_sock), "uv_tcp_init(client)");
    PP_CHECK_UV(uv_tcp_connect(&cli_connect_req, &cli_sock, (const struct sockaddr *)addr,
                               cli_on_connect),
                "uv_tcp_connect");
}

int main(int argc, char **argv) {
    bench_prog = "twin-pingpong-libuv";
    opts = pp_parse_args(argc, argv);

    struct sockaddr_in addr;
    PP_CHECK_UV(uv_ip4_addr(PP_ADDR, (int)opts.port, &addr), "uv_ip4_addr");

    uv_loop_t client_loop;
    PP_CHECK_UV(uv_loop_init(&client_loop), "uv_loop_init(client)");

    if (opts.layout == PP_LAYOUT_SINGLE) {
        srv_listen(&client_loop, &addr);
        cli_connect(&client_loop, &addr);
        PP_CHECK_UV(uv_run(&client_loop, UV_RUN_DEFAULT), "uv_run");
    } else {
        /* Listen before the server thread runs its loop, so the connect cannot race it.
         * The server loop is only touched by the server thread after pthread_create. */
        static uv_loop_t server_loop;
        PP_CHECK_UV(uv_loop_init(&server_loop), "uv_loop_init(server)");
        srv_listen(&server_loop, &addr);
        pthread_t server;
        BENCH_CHECK_ERRNUM(pthread_create(&server, NULL, server_thread, &server_loop),
                        "pthread_create");
        cli_connect(&client_loop, &addr);
        PP_CHECK_UV(uv_run(&client_loop, UV_RUN_DEFAULT), "uv_run(client)");
        BENCH_CHECK_ERRNUM(pthread_join(server, NULL), "pthread_join");
        PP_CHECK_UV(uv_loop_close(&server_loop), "uv_loop_close(server)");
    }
    PP_CHECK_UV(uv_loop_close(&client_loop), "uv_loop_close(client)");
    BENCH_CHECK(cli_done == opts.count);

    pp_report("libuv", &opts, cli_start_ns, cli_end_ns);
    return 0;
}
