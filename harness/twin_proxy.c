/* twin-proxy: a fault-injecting TCP proxy for the real build's robustness tests.
 *
 *   twin-proxy --listen ADDR --upstream ADDR [--seed S] [--delay-ms N] [--chunk-max BYTES]
 *              [--reset-one-in N] [--stall-one-in N] [--stall-ms N]
 *
 * It does what this machine's kernel cannot (no netem): every connection accepted on
 * --listen is joined to a new connection to --upstream, and bytes are forwarded both ways
 * with these faults, each off by default:
 * - latency: a chunk (what one read returned, at most TWIN_PROXY_CHUNK_BYTES) is forwarded
 *   delay-ms after it was read; the direction keeps reading meanwhile, up to
 *   TWIN_PROXY_CHUNKS_QUEUED chunks;
 * - cut writes: a chunk goes out in pieces of 1..chunk-max bytes (drawn), one send each,
 *   with TCP_NODELAY on both sockets (the kernel may still merge pieces the receiver has
 *   not read yet; the stats count the pieces sent);
 * - resets: before each chunk is forwarded, with probability 1/N, both sockets are closed
 *   with SO_LINGER 0, so both peers get an RST;
 * - stalls: with probability 1/N per connection, one side (downstream or upstream, drawn)
 *   is not read for stall-ms, starting after its 1..TWIN_PROXY_STALL_AFTER_CHUNKS_MAX'th
 *   chunk (drawn): its sender's buffers fill.
 * Every draw comes from a PCG32 stream per connection, seeded from --seed and the
 * connection's number (0, 1, ... in accept order), drawn in a fixed order per connection
 * (stall or not, its side, its start, then per chunk: reset or not, its pieces). What a
 * connection draws still depends on how the bytes arrived (how many chunks), so runs are
 * not replays; the seed fixes per-connection choices such as which connections stall.
 *
 * Why not twin's own loop: the proxy stands between the client and the server under test,
 * which both run on that loop; a loop bug would then sit on both sides of the fault it is
 * meant to expose, and the loop has no way to close with an RST (SO_LINGER 0). So it uses
 * plain POSIX: one thread per connection running poll(2) over its two non-blocking sockets
 * (each connection's timers, queues and sockets belong to that thread alone: nothing to
 * lock), and the main thread accepting, with SIGINT and SIGTERM read from a signalfd.
 *
 * Prints "twin-proxy: listening on ADDR" (the real address, also with port 0) on stderr,
 * then its options. On SIGINT or SIGTERM it stops accepting, closes every connection, joins
 * their threads, prints one line per connection and a totals line, and exits 0. Exit 1:
 * it cannot listen or start; exit 2: a bad flag (one line naming it, then the usage). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <twin/assert.h>
#include <twin/loop.h>
#include <twin/pcg.h>

#include "cli_parse.h"

/* Bytes one read may return: one chunk. */
#define TWIN_PROXY_CHUNK_BYTES (16u * 1024u)
/* Chunks a direction holds (read, not yet forwarded) before it stops reading. */
#define TWIN_PROXY_CHUNKS_QUEUED 16u
/* A stall starts after this many chunks of its side at most (drawn from 1). */
#define TWIN_PROXY_STALL_AFTER_CHUNKS_MAX 8u
/* Connections open at once; one more is accepted and reset at once (counted). */
#define TWIN_PROXY_CONNECTIONS_OPEN_MAX 512u
/* The longest a poll waits, so a connection thread sees the stop flag soon. */
#define TWIN_PROXY_POLL_MS_MAX 50
#define TWIN_PROXY_DELAY_MS_MAX 60000u
#define TWIN_PROXY_STALL_MS_MAX 600000u
#define TWIN_PROXY_STALL_MS_DEFAULT 1000u
#define TWIN_PROXY_CHUNK_MAX_MAX (1024u * 1024u)
#define TWIN_PROXY_ONE_IN_MAX UINT32_MAX
#define TWIN_PROXY_SEED_DEFAULT 1u
#define TWIN_PROXY_BACKLOG 128
#define NS_PER_MS 1000000ull

static const char usage[] =
    "usage: twin-proxy --listen ADDR --upstream ADDR [--seed S] [--delay-ms N]\n"
    "                  [--chunk-max BYTES] [--reset-one-in N] [--stall-one-in N] [--stall-ms N]\n";

static const char help[] =
    "Forwards TCP connections from --listen to --upstream, injecting faults, until SIGINT or\n"
    "SIGTERM; then prints per-connection stats and a totals line.\n"
    "\n"
    "  --listen ADDR        IPV4:PORT or [IPV6]:PORT; port 0 lets the system choose\n"
    "  --upstream ADDR      where each accepted connection is forwarded\n"
    "  --seed S             seeds every connection's draws, 0..2^64-1 (default 1)\n"
    "  --delay-ms N         forward each chunk N ms after it was read, 0..60000 (default 0)\n"
    "  --chunk-max BYTES    send in pieces of 1..BYTES, 1..1048576 (default: no cutting)\n"
    "  --reset-one-in N     reset both sides before a chunk with probability 1/N (0: off)\n"
    "  --stall-one-in N     with probability 1/N a connection stops reading one side (0: off)\n"
    "  --stall-ms N         how long a stall lasts, 0..600000 (default 1000)\n"
    "  --help               this text\n";

typedef struct options {
    tw_address listen;
    tw_address upstream;
    bool listen_given;
    bool upstream_given;
    uint64_t seed;
    uint32_t delay_ms;
    uint32_t chunk_max; /* 0: no cutting */
    uint32_t reset_one_in;
    uint32_t stall_one_in;
    uint32_t stall_ms;
} options;

/* How a connection ended. */
typedef enum connection_end {
    end_open = 0,
    end_eof,             /* both directions closed cleanly */
    end_reset_injected,  /* this proxy reset it (--reset-one-in) */
    end_peer_reset,      /* a peer reset or an IO error on either side */
    end_upstream_failed, /* the upstream connect failed */
    end_stopped,         /* the proxy was stopped */
} connection_end;

static const char *connection_end_name(connection_end end) {
    switch (end) {
    case end_open: return "open";
    case end_eof: return "eof";
    case end_reset_injected: return "reset_injected";
    case end_peer_reset: return "peer_reset";
    case end_upstream_failed: return "upstream_failed";
    case end_stopped: return "stopped";
    }
    return "unknown";
}

/* The two directions: 0 reads downstream and writes upstream, 1 the reverse. */
#define DIRECTION_UP 0u
#define DIRECTION_DOWN 1u
static const char *const direction_name[2] = {"down->up", "up->down"};
static const char *const side_name[2] = {"downstream", "upstream"};

typedef struct direction_stats {
    uint64_t bytes;
    uint64_t chunks;
    uint64_t chunks_cut;  /* chunks sent in more than one piece */
    uint64_t chunks_held; /* chunks not yet due when they reached the head: delayed */
    uint64_t pieces;
} direction_stats;

typedef struct chunk {
    uint8_t bytes[TWIN_PROXY_CHUNK_BYTES];
    uint32_t length;
    uint32_t sent;
    uint32_t pieces;
    uint64_t due_ns;
    bool reset_drawn; /* the reset draw for this chunk was made (and came out no) */
    bool held;        /* counted in chunks_held */
} chunk;

typedef struct direction {
    int source; /* fd read */
    int target; /* fd written */
    chunk *queue; /* TWIN_PROXY_CHUNKS_QUEUED slots, a ring */
    uint32_t head;
    uint32_t count;
    uint32_t piece_left; /* bytes of the current piece still to send */
    bool source_eof;
    bool target_shut; /* EOF forwarded (shutdown SHUT_WR) */
} direction;

typedef struct connection {
    uint64_t number; /* in accept order, from 0 */
    const options *o;
    int downstream;
    int upstream;
    pthread_t thread;
    atomic_bool done; /* the thread has finished; set last */
    bool joined;
    /* Written by the connection's thread only, read after the join. */
    direction_stats stats[2];
    bool stall_drawn;
    uint32_t stall_side; /* DIRECTION_UP: the downstream side is not read */
    uint32_t stall_after_chunks;
    uint64_t stalls;
    uint64_t resets;
    connection_end end;
} connection;

static atomic_bool stopping;

/* ---- small helpers ------------------------------------------------------------------ */

static uint64_t monotonic_ns(void) {
    struct timespec now;
    int result = clock_gettime(CLOCK_MONOTONIC, &now);
    TW_ASSERT(result == 0);
    return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static socklen_t to_sockaddr(const tw_address *address, struct sockaddr_in6 *storage) {
    TW_ASSERT(address->family == 4 || address->family == 6);
    memset(storage, 0, sizeof(*storage));
    if (address->family == 4) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)(void *)storage;
        v4->sin_family = AF_INET;
        v4->sin_port = htons(address->port);
        memcpy(&v4->sin_addr, address->ip, 4);
        return sizeof(*v4);
    }
    storage->sin6_family = AF_INET6;
    storage->sin6_port = htons(address->port);
    memcpy(&storage->sin6_addr, address->ip, 16);
    return sizeof(*storage);
}

static void from_sockaddr(const struct sockaddr_in6 *storage, tw_address *address) {
    memset(address, 0, sizeof(*address));
    if (storage->sin6_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)(const void *)storage;
        address->family = 4;
        address->port = ntohs(v4->sin_port);
        memcpy(address->ip, &v4->sin_addr, 4);
    } else {
        TW_ASSERT(storage->sin6_family == AF_INET6);
        address->family = 6;
        address->port = ntohs(storage->sin6_port);
        memcpy(address->ip, &storage->sin6_addr, 16);
    }
}

static void set_nonblocking_nodelay(int fd) {
    TW_ASSERT(fd >= 0);
    int flags = fcntl(fd, F_GETFL);
    TW_ASSERT(flags >= 0);
    int result = fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    TW_ASSERT(result == 0);
    TW_ASSERT((fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    int one = 1;
    /* Fails only on a socket that is not TCP; every socket here is. */
    result = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    TW_ASSERT(result == 0);
}

/* Closes fd so that its peer gets an RST rather than a FIN. */
static void close_with_reset(int fd) {
    TW_ASSERT(fd >= 0);
    struct linger linger = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
    close(fd);
}

/* True with probability 1/one_in (never when one_in is 0). */
static bool draw_one_in(tw_pcg32 *rng, uint32_t one_in) {
    if (one_in == 0) return false;
    return tw_pcg32_bounded(rng, one_in) == one_in - 1;
}

/* ---- a connection's thread ----------------------------------------------------------- */

/* Sends what is due in d: piece by piece, until the queue is empty, the head chunk is not
 * due, or the target would block. Returns end_open to go on, else how the connection ends
 * (for end_reset_injected the caller resets both sockets). */
static connection_end direction_send(connection *c, tw_pcg32 *rng, uint32_t which, direction *d,
                                     uint64_t now_ns) {
    TW_ASSERT(which < 2);
    TW_ASSERT(d->count <= TWIN_PROXY_CHUNKS_QUEUED);
    while (d->count > 0) {
        chunk *k = &d->queue[d->head];
        TW_ASSERT(k->sent < k->length);
        if (k->due_ns > now_ns) {
            if (!k->held) c->stats[which].chunks_held++;
            k->held = true;
            return end_open;
        }
        if (!k->reset_drawn) {
            if (draw_one_in(rng, c->o->reset_one_in)) return end_reset_injected;
            k->reset_drawn = true;
        }
        if (d->piece_left == 0) {
            uint32_t rest = k->length - k->sent;
            uint32_t piece = rest;
            if (c->o->chunk_max != 0) piece = 1 + tw_pcg32_bounded(rng, c->o->chunk_max);
            d->piece_left = piece < rest ? piece : rest;
        }
        ssize_t sent = send(d->target, k->bytes + k->sent, d->piece_left, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return end_open;
            return end_peer_reset;
        }
        TW_ASSERT((uint32_t)sent <= d->piece_left);
        k->sent += (uint32_t)sent;
        d->piece_left -= (uint32_t)sent;
        c->stats[which].bytes += (uint64_t)sent;
        if (d->piece_left == 0) {
            k->pieces++;
            c->stats[which].pieces++;
        }
        if (k->sent == k->length) {
            TW_ASSERT(d->piece_left == 0);
            c->stats[which].chunks++;
            if (k->pieces > 1) c->stats[which].chunks_cut++;
            d->head = (d->head + 1) % TWIN_PROXY_CHUNKS_QUEUED;
            d->count--;
        }
    }
    if (d->source_eof && !d->target_shut) {
        /* Everything read was forwarded: forward the EOF. */
        (void)shutdown(d->target, SHUT_WR);
        d->target_shut = true;
    }
    return end_open;
}

/* Reads one chunk from d's source. Returns end_open to go on, else how the connection ends. */
static connection_end direction_read(connection *c, uint32_t which, direction *d, uint64_t now_ns) {
    TW_ASSERT(which < 2);
    TW_ASSERT(d->count < TWIN_PROXY_CHUNKS_QUEUED && !d->source_eof);
    chunk *k = &d->queue[(d->head + d->count) % TWIN_PROXY_CHUNKS_QUEUED];
    ssize_t received = recv(d->source, k->bytes, sizeof(k->bytes), 0);
    if (received < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return end_open;
        return end_peer_reset;
    }
    if (received == 0) {
        d->source_eof = true;
        return end_open;
    }
    k->length = (uint32_t)received;
    k->sent = 0;
    k->pieces = 0;
    k->reset_drawn = false;
    k->held = false;
    k->due_ns = now_ns + (uint64_t)c->o->delay_ms * NS_PER_MS;
    d->count++;
    return end_open;
}

/* Connects to the upstream without blocking past a stop: a connect that waits (the
 * upstream's backlog is full) is polled TWIN_PROXY_POLL_MS_MAX at a time. The socket comes
 * back non-blocking. */
static connection_end connect_upstream(connection *c) {
    TW_ASSERT(c->upstream < 0);
    struct sockaddr_in6 storage;
    socklen_t length = to_sockaddr(&c->o->upstream, &storage);
    int fd = socket(storage.sin6_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return end_upstream_failed;
    if (connect(fd, (struct sockaddr *)&storage, length) != 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return end_upstream_failed;
        }
        for (;;) {
            if (atomic_load(&stopping)) {
                close(fd);
                return end_stopped;
            }
            struct pollfd pending = {.fd = fd, .events = POLLOUT};
            int ready = poll(&pending, 1, TWIN_PROXY_POLL_MS_MAX);
            if (ready < 0 && errno != EINTR) TW_ASSERT(false);
            if (ready <= 0) continue;
            int error = 0;
            socklen_t error_length = sizeof(error);
            int result = getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_length);
            TW_ASSERT(result == 0);
            if (error != 0) {
                close(fd);
                return end_upstream_failed;
            }
            break;
        }
    }
    c->upstream = fd;
    TW_ASSERT(c->upstream >= 0);
    return end_open;
}

static void *connection_run(void *argument) {
    connection *c = argument;
    TW_ASSERT(c->downstream >= 0 && c->upstream < 0);
    tw_pcg32 rng;
    tw_pcg32_seed(&rng, c->o->seed, c->number);
    /* The per-connection draws come first, in a fixed order. */
    c->stall_drawn = draw_one_in(&rng, c->o->stall_one_in);
    if (c->stall_drawn) {
        c->stall_side = tw_pcg32_bounded(&rng, 2);
        c->stall_after_chunks = 1 + tw_pcg32_bounded(&rng, TWIN_PROXY_STALL_AFTER_CHUNKS_MAX);
    }

    c->end = connect_upstream(c);
    if (c->end != end_open) {
        TW_ASSERT(c->end == end_upstream_failed || c->end == end_stopped);
        close_with_reset(c->downstream);
        atomic_store(&c->done, true);
        return NULL;
    }
    set_nonblocking_nodelay(c->downstream);
    set_nonblocking_nodelay(c->upstream);

    direction directions[2] = {
        {.source = c->downstream, .target = c->upstream},
        {.source = c->upstream, .target = c->downstream},
    };
    chunk *queues = calloc(2u * TWIN_PROXY_CHUNKS_QUEUED, sizeof(chunk));
    if (queues == NULL) {
        fprintf(stderr, "twin-proxy: connection %" PRIu64 ": no memory for its queues\n",
                c->number);
        c->end = end_peer_reset;
    }
    directions[0].queue = queues;
    directions[1].queue = queues + TWIN_PROXY_CHUNKS_QUEUED;
    uint64_t stall_until_ns = 0;
    bool stall_done = !c->stall_drawn;

    while (c->end == end_open) {
        if (atomic_load(&stopping)) {
            c->end = end_stopped;
            break;
        }
        uint64_t now_ns = monotonic_ns();
        for (uint32_t i = 0; i < 2 && c->end == end_open; i++) {
            c->end = direction_send(c, &rng, i, &directions[i], now_ns);
        }
        if (c->end != end_open) break;
        if (directions[0].target_shut && directions[1].target_shut) {
            c->end = end_eof;
            break;
        }
        /* What to wait for, and until when. */
        struct pollfd fds[2] = {{.fd = c->downstream}, {.fd = c->upstream}};
        uint64_t wake_ns = now_ns + (uint64_t)TWIN_PROXY_POLL_MS_MAX * NS_PER_MS;
        for (uint32_t i = 0; i < 2; i++) {
            direction *d = &directions[i];
            bool stalled = now_ns < stall_until_ns && c->stall_side == i;
            if (stalled && stall_until_ns < wake_ns) wake_ns = stall_until_ns;
            /* Direction i reads fds[i] and writes fds[1 - i]. */
            if (!d->source_eof && d->count < TWIN_PROXY_CHUNKS_QUEUED && !stalled) {
                fds[i].events |= POLLIN;
            }
            if (d->count > 0) {
                uint64_t due_ns = d->queue[d->head].due_ns;
                if (due_ns <= now_ns) {
                    fds[1 - i].events |= POLLOUT;
                } else if (due_ns < wake_ns) {
                    wake_ns = due_ns;
                }
            }
        }
        /* A socket with nothing to wait for is left out: its POLLHUP would wake us at once. */
        for (uint32_t i = 0; i < 2; i++) {
            if (fds[i].events == 0) fds[i].fd = -1;
        }
        int timeout_ms = (int)((wake_ns - now_ns + NS_PER_MS - 1) / NS_PER_MS);
        int ready = poll(fds, 2, timeout_ms);
        if (ready < 0) {
            TW_ASSERT(errno == EINTR);
            continue;
        }
        now_ns = monotonic_ns();
        for (uint32_t i = 0; i < 2 && c->end == end_open; i++) {
            /* A side not read now: its errors show when it is read or written. */
            if ((fds[i].events & POLLIN) == 0) continue;
            if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
            direction *d = &directions[i];
            uint32_t count_before = d->count;
            c->end = direction_read(c, i, d, now_ns);
            if (c->end != end_open || d->count == count_before) continue;
            if (!stall_done && c->stall_side == i) {
                if (--c->stall_after_chunks == 0) {
                    stall_done = true;
                    stall_until_ns = now_ns + (uint64_t)c->o->stall_ms * NS_PER_MS;
                    c->stalls++;
                }
            }
        }
    }

    switch (c->end) {
    case end_reset_injected:
        c->resets++;
        close_with_reset(c->downstream);
        close_with_reset(c->upstream);
        break;
    case end_peer_reset:
    case end_stopped:
        /* Pass the failure on to the other side as an RST too. */
        close_with_reset(c->downstream);
        close_with_reset(c->upstream);
        break;
    default:
        TW_ASSERT(c->end == end_eof);
        close(c->downstream);
        close(c->upstream);
        break;
    }
    free(queues);
    atomic_store(&c->done, true);
    return NULL;
}

/* ---- flags ------------------------------------------------------------------------------ */

static const tw_cli cli = {.program = "twin-proxy", .usage = usage};
#define usage_error(...) tw_cli_usage_error(&cli, __VA_ARGS__)
#define parse_u32(...) tw_cli_parse_u32(&cli, __VA_ARGS__)

/* Returns -1 to go on, else the exit code (0 after --help). */
static int parse_flags(int argc, char **argv, options *o) {
    *o = (options){.seed = TWIN_PROXY_SEED_DEFAULT, .stall_ms = TWIN_PROXY_STALL_MS_DEFAULT};
    int exit_code = 2;
    for (int i = 1; i < argc; i++) {
        const char *argument = argv[i];
        if (strcmp(argument, "--help") == 0 || strcmp(argument, "-h") == 0) {
            printf("%s\n%s", usage, help);
            return 0;
        }
        if (strncmp(argument, "--", 2) != 0) {
            return usage_error("unexpected argument '%s' (every option is a --flag)", argument);
        }
        char flag[32];
        const char *value = NULL;
        const char *equals = strchr(argument, '=');
        size_t length = equals != NULL ? (size_t)(equals - argument) : strlen(argument);
        if (length >= sizeof(flag)) return usage_error("unknown flag '%s'", argument);
        memcpy(flag, argument, length);
        flag[length] = '\0';
        if (equals != NULL) value = equals + 1;
        static const char *const known[] = {"--listen",       "--upstream",     "--seed",
                                            "--delay-ms",     "--chunk-max",    "--reset-one-in",
                                            "--stall-one-in", "--stall-ms"};
        bool is_known = false;
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
            if (strcmp(flag, known[k]) == 0) is_known = true;
        }
        if (!is_known) return usage_error("unknown flag '%s'", flag);
        if (value == NULL) {
            if (i + 1 >= argc) return usage_error("%s needs a value", flag);
            value = argv[++i];
        }
        if (strcmp(flag, "--listen") == 0 || strcmp(flag, "--upstream") == 0) {
            bool listen = strcmp(flag, "--listen") == 0;
            tw_address *address = listen ? &o->listen : &o->upstream;
            if (tw_address_parse(value, address) != tw_loop_ok) {
                return usage_error("%s takes IPV4:PORT or [IPV6]:PORT (e.g. 127.0.0.1:3000 or "
                                   "[::1]:3000), not '%s'", flag, value);
            }
            if (!listen && address->port == 0) {
                return usage_error("--upstream needs a port 1..65535, not '%s'", value);
            }
            *(listen ? &o->listen_given : &o->upstream_given) = true;
        } else if (strcmp(flag, "--seed") == 0) {
            if (!tw_cli_parse_u64(value, UINT64_MAX, &o->seed)) {
                return usage_error("--seed takes a decimal integer 0..2^64-1, not '%s'", value);
            }
        } else if (strcmp(flag, "--delay-ms") == 0) {
            if (!parse_u32(flag, value, 0, TWIN_PROXY_DELAY_MS_MAX, &o->delay_ms, &exit_code)) {
                return exit_code;
            }
        } else if (strcmp(flag, "--chunk-max") == 0) {
            if (!parse_u32(flag, value, 1, TWIN_PROXY_CHUNK_MAX_MAX, &o->chunk_max, &exit_code)) {
                return exit_code;
            }
        } else if (strcmp(flag, "--reset-one-in") == 0) {
            if (!parse_u32(flag, value, 0, TWIN_PROXY_ONE_IN_MAX, &o->reset_one_in, &exit_code)) {
                return exit_code;
            }
        } else if (strcmp(flag, "--stall-one-in") == 0) {
            if (!parse_u32(flag, value, 0, TWIN_PROXY_ONE_IN_MAX, &o->stall_one_in, &exit_code)) {
                return exit_code;
            }
        } else {
            TW_ASSERT(strcmp(flag, "--stall-ms") == 0);
            if (!parse_u32(flag, value, 0, TWIN_PROXY_STALL_MS_MAX, &o->stall_ms, &exit_code)) {
                return exit_code;
            }
        }
    }
    if (!o->listen_given) return usage_error("--listen is required (the address to accept on)");
    if (!o->upstream_given) {
        return usage_error("--upstream is required (the address to forward to)");
    }
    return -1;
}

/* ---- main --------------------------------------------------------------------------------- */

typedef struct registry {
    connection **all; /* every connection accepted, in accept order */
    size_t count;
    size_t capacity;
    uint64_t refused; /* accepted while TWIN_PROXY_CONNECTIONS_OPEN_MAX were open: reset */
    uint64_t accept_errors;
} registry;

/* Joins the threads that finished; returns how many connections are still open. */
static uint32_t registry_reap(registry *r) {
    uint32_t open = 0;
    for (size_t i = 0; i < r->count; i++) {
        connection *c = r->all[i];
        if (c->joined) continue;
        if (!atomic_load(&c->done)) {
            open++;
            continue;
        }
        int result = pthread_join(c->thread, NULL);
        TW_ASSERT(result == 0);
        c->joined = true;
    }
    TW_ASSERT(open <= r->count);
    return open;
}

static void accept_one(registry *r, int listener, const options *o) {
    TW_ASSERT(listener >= 0);
    int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) r->accept_errors++;
        return;
    }
    if (registry_reap(r) >= TWIN_PROXY_CONNECTIONS_OPEN_MAX) {
        r->refused++;
        close_with_reset(fd);
        return;
    }
    if (r->count == r->capacity) {
        size_t capacity = r->capacity == 0 ? 64 : r->capacity * 2;
        connection **all = realloc(r->all, capacity * sizeof(*all));
        if (all == NULL) {
            r->refused++;
            close_with_reset(fd);
            return;
        }
        r->all = all;
        r->capacity = capacity;
    }
    connection *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        r->refused++;
        close_with_reset(fd);
        return;
    }
    c->number = r->count;
    c->o = o;
    c->downstream = fd;
    c->upstream = -1;
    atomic_init(&c->done, false);
    if (pthread_create(&c->thread, NULL, connection_run, c) != 0) {
        free(c);
        r->refused++;
        close_with_reset(fd);
        return;
    }
    r->all[r->count++] = c;
    TW_ASSERT(r->count <= r->capacity);
}

static void print_stats(const registry *r) {
    direction_stats total[2] = {{0}, {0}};
    uint64_t resets = 0, stalls = 0, peer_resets = 0, upstream_failed = 0, eofs = 0;
    for (size_t i = 0; i < r->count; i++) {
        const connection *c = r->all[i];
        TW_ASSERT(c->joined);
        char stall[64] = "none";
        if (c->stalls > 0) {
            snprintf(stall, sizeof(stall), "%s read paused", side_name[c->stall_side]);
        } else if (c->stall_drawn) {
            snprintf(stall, sizeof(stall), "drawn, %s never read enough",
                     side_name[c->stall_side]);
        }
        fprintf(stderr, "twin-proxy: connection %" PRIu64 ": end=%s resets=%" PRIu64
                        " stalls=%" PRIu64 " (%s)",
                c->number, connection_end_name(c->end), c->resets, c->stalls, stall);
        for (uint32_t d = 0; d < 2; d++) {
            const direction_stats *s = &c->stats[d];
            fprintf(stderr, " %s: bytes=%" PRIu64 " chunks=%" PRIu64 " chunks_held=%" PRIu64
                            " chunks_cut=%" PRIu64 " pieces=%" PRIu64,
                    direction_name[d], s->bytes, s->chunks, s->chunks_held, s->chunks_cut,
                    s->pieces);
            total[d].bytes += s->bytes;
            total[d].chunks += s->chunks;
            total[d].chunks_cut += s->chunks_cut;
            total[d].chunks_held += s->chunks_held;
            total[d].pieces += s->pieces;
        }
        fprintf(stderr, "\n");
        resets += c->resets;
        stalls += c->stalls;
        peer_resets += c->end == end_peer_reset;
        upstream_failed += c->end == end_upstream_failed;
        eofs += c->end == end_eof;
    }
    fprintf(stderr,
            "twin-proxy: stats: connections=%zu eof=%" PRIu64 " peer_resets=%" PRIu64
            " upstream_failed=%" PRIu64 " refused=%" PRIu64 " accept_errors=%" PRIu64
            " resets=%" PRIu64 " stalls=%" PRIu64 " bytes=%" PRIu64 " chunks=%" PRIu64
            " chunks_held=%" PRIu64 " chunks_cut=%" PRIu64 " pieces=%" PRIu64 "\n",
            r->count, eofs, peer_resets, upstream_failed, r->refused, r->accept_errors, resets,
            stalls, total[0].bytes + total[1].bytes, total[0].chunks + total[1].chunks,
            total[0].chunks_held + total[1].chunks_held,
            total[0].chunks_cut + total[1].chunks_cut, total[0].pieces + total[1].pieces);
}

int main(int argc, char **argv) {
    options o;
    int exit_code = parse_flags(argc, argv, &o);
    if (exit_code >= 0) return exit_code;

    /* Blocked here, so in every thread: the signals are read from the signalfd only. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    int result = pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    TW_ASSERT(result == 0);
    int signals = signalfd(-1, &stop_signals, SFD_CLOEXEC);
    if (signals < 0) {
        fprintf(stderr, "twin-proxy: cannot open a signalfd: %s\n", strerror(errno));
        return 1;
    }

    char text[TW_ADDRESS_TEXT_SIZE];
    tw_address_format(&o.listen, text, sizeof(text));
    struct sockaddr_in6 storage;
    socklen_t length = to_sockaddr(&o.listen, &storage);
    int listener = socket(storage.sin6_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (listener < 0 || setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(listener, (struct sockaddr *)&storage, length) != 0 ||
        listen(listener, TWIN_PROXY_BACKLOG) != 0) {
        fprintf(stderr, "twin-proxy: cannot listen on %s: %s\n", text, strerror(errno));
        return 1;
    }
    length = sizeof(storage);
    result = getsockname(listener, (struct sockaddr *)&storage, &length);
    TW_ASSERT(result == 0);
    tw_address bound;
    from_sockaddr(&storage, &bound);
    tw_address_format(&bound, text, sizeof(text));
    char upstream_text[TW_ADDRESS_TEXT_SIZE];
    tw_address_format(&o.upstream, upstream_text, sizeof(upstream_text));
    fprintf(stderr, "twin-proxy: listening on %s\n", text);
    fprintf(stderr, "twin-proxy: upstream=%s seed=%" PRIu64 " delay-ms=%" PRIu32
                    " chunk-max=%" PRIu32 " reset-one-in=%" PRIu32 " stall-one-in=%" PRIu32
                    " stall-ms=%" PRIu32 "\n",
            upstream_text, o.seed, o.delay_ms, o.chunk_max, o.reset_one_in, o.stall_one_in,
            o.stall_ms);
    fflush(stderr);

    registry r = {0};
    atomic_init(&stopping, false);
    for (;;) {
        struct pollfd fds[2] = {{.fd = listener, .events = POLLIN}, {.fd = signals, .events = POLLIN}};
        int ready = poll(fds, 2, -1);
        if (ready < 0) {
            TW_ASSERT(errno == EINTR);
            continue;
        }
        if ((fds[1].revents & POLLIN) != 0) break;
        if ((fds[0].revents & POLLIN) != 0) accept_one(&r, listener, &o);
    }
    close(listener);
    atomic_store(&stopping, true);
    for (size_t i = 0; i < r.count; i++) {
        connection *c = r.all[i];
        if (c->joined) continue;
        result = pthread_join(c->thread, NULL);
        TW_ASSERT(result == 0);
        c->joined = true;
    }
    print_stats(&r);
    for (size_t i = 0; i < r.count; i++) free(r.all[i]);
    free(r.all);
    close(signals);
    return 0;
}
