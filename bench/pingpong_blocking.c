/* twin-pingpong-blocking: latency-bound TCP ping-pong over loopback with plain blocking
 * sockets and pthreads (the parameters of libxev's ping-pong benchmark).
 *   client (main thread): sends "PING\n", waits for "PONG\n", repeats --count times, then
 *                         shutdown(SHUT_WR) + close.
 *   server (pthread):     answers every complete "PING\n" with "PONG\n"; exits on EOF.
 * --layout threads: the two threads run wherever the scheduler puts them.
 * --layout single:  the same two threads, both pinned to CPU 0.
 * Usage: twin-pingpong-blocking [--count N] [--port P] [--layout threads|single] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pingpong_common.h"

#define RECV_BUF_SIZE 4096u

static struct pp_opts opts;

static void set_nodelay(int fd) {
    /* TCP_NODELAY: disable Nagle so each 5-byte message goes out at once; without it a
     * small write waiting for an ACK would add delayed-ACK latency to every round trip. */
    int one = 1;
    BENCH_CHECK_SYS(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one),
                 "setsockopt(TCP_NODELAY)");
}

static struct sockaddr_in loopback_addr(void) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)opts.port);
    BENCH_CHECK(inet_pton(AF_INET, PP_ADDR, &a.sin_addr) == 1);
    return a;
}

/* Send all len bytes, looping over partial sends. */
static void send_all(int fd, const char *buf, size_t len) {
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        BENCH_CHECK_SYS(n, "send");
        off += (size_t)n;
    }
}

/* recv that retries on EINTR; returns bytes read, 0 on EOF. */
static size_t recv_some(int fd, char *buf, size_t len) {
    for (;;) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n < 0 && errno == EINTR) continue;
        BENCH_CHECK_SYS(n, "recv");
        return (size_t)n;
    }
}

static void pin_to_cpu0(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    BENCH_CHECK_ERRNUM(pthread_setaffinity_np(pthread_self(), sizeof set, &set),
                    "pthread_setaffinity_np(CPU 0)");
}

/* ---- server ---- */
static void *server_main(void *arg) {
    int listen_fd = *(int *)arg;
    if (opts.layout == PP_LAYOUT_SINGLE) pin_to_cpu0();

    int fd;
    for (;;) {
        fd = accept(listen_fd, NULL, NULL);
        if (fd < 0 && errno == EINTR) continue;
        BENCH_CHECK_SYS(fd, "accept");
        break;
    }
    set_nodelay(fd);

    struct pp_matcher m = {PP_PING, 0};
    static char buf[RECV_BUF_SIZE];
    for (;;) {
        size_t n = recv_some(fd, buf, sizeof buf);
        if (n == 0) break; /* client shut down its write side */
        for (size_t i = 0; i < n; i++) {
            int r = pp_match_byte(&m, buf[i]);
            if (r < 0) pp_protocol_error("server", &m, buf[i]);
            if (r > 0) send_all(fd, PP_PONG, PP_MSG_LEN);
        }
    }
    if (m.pos != 0) bench_fail("server: EOF in the middle of a PING");
    BENCH_CHECK_SYS(close(fd), "close(server connection)");
    BENCH_CHECK_SYS(close(listen_fd), "close(listener)");
    return NULL;
}

/* ---- client ---- */
static void run_client(uint64_t *start_ns, uint64_t *end_ns) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BENCH_CHECK_SYS(fd, "socket(client)");
    struct sockaddr_in a = loopback_addr();
    /* The listener is already listening, so this completes via the backlog even before the
     * server thread reaches accept(); a refusal or any other failure exits 1, never hangs. */
    int rc;
    do {
        rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    } while (rc < 0 && errno == EINTR);
    BENCH_CHECK_SYS(rc, "connect");
    set_nodelay(fd);

    struct pp_matcher m = {PP_PONG, 0};
    static char buf[RECV_BUF_SIZE];
    uint64_t done = 0;
    *start_ns = bench_now_ns();
    while (done < opts.count) {
        send_all(fd, PP_PING, PP_MSG_LEN);
        int got_pong = 0;
        while (!got_pong) {
            size_t n = recv_some(fd, buf, sizeof buf);
            if (n == 0) bench_fail("client: server closed the connection early");
            for (size_t i = 0; i < n; i++) {
                /* One ping is outstanding, so nothing may follow its pong. */
                if (got_pong) bench_fail("client: unexpected bytes after a PONG");
                int r = pp_match_byte(&m, buf[i]);
                if (r < 0) pp_protocol_error("client", &m, buf[i]);
                if (r > 0) got_pong = 1;
            }
        }
        done++;
    }
    *end_ns = bench_now_ns();
    BENCH_CHECK_SYS(shutdown(fd, SHUT_WR), "shutdown(SHUT_WR)");
    BENCH_CHECK_SYS(close(fd), "close(client)");
}

int main(int argc, char **argv) {
    bench_prog = "twin-pingpong-blocking";
    opts = pp_parse_args(argc, argv);

    /* single: pin this thread first; the server thread pins itself too. */
    if (opts.layout == PP_LAYOUT_SINGLE) pin_to_cpu0();

    /* Listen before the server thread starts, so the client's connect cannot race it. */
    int listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BENCH_CHECK_SYS(listen_fd, "socket(listener)");
    int one = 1;
    BENCH_CHECK_SYS(setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one),
                 "setsockopt(SO_REUSEADDR)");
    struct sockaddr_in a = loopback_addr();
    BENCH_CHECK_SYS(bind(listen_fd, (struct sockaddr *)&a, sizeof a), "bind");
    BENCH_CHECK_SYS(listen(listen_fd, 16), "listen");

    pthread_t server;
    BENCH_CHECK_ERRNUM(pthread_create(&server, NULL, server_main, &listen_fd), "pthread_create");

    uint64_t start_ns = 0, end_ns = 0;
    run_client(&start_ns, &end_ns);
    BENCH_CHECK_ERRNUM(pthread_join(server, NULL), "pthread_join");

    pp_report("blocking", &opts, start_ns, end_ns);
    return 0;
}
