/* twin-server: the real-mode server (<twin/server.h>) on one loop, from the command line.
 *
 * Parses and checks its flags (a bad one: one line naming it, the usage, exit 2), listens,
 * prints exactly one "twin-server: listening on ADDR" line on stderr (the real address:
 * with port 0 the one the system chose), then serves until SIGINT or SIGTERM. The signal
 * handler only calls tw_async_notify (atomics and an eventfd write); the async's callback,
 * on the loop thread, calls tw_server_stop, and the loop then runs until every connection
 * is closed. It prints one stats line, frees everything and exits 0. Exit 1: the loop or
 * the server could not start (e.g. the address cannot be listened on).
 *
 * Log lines (connections, evictions, malformed input) go to stderr as
 * "twin-server: <line>" unless --quiet; the listening and stats lines are always printed. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/loop.h>
#include <twin/proto.h>

#include "cli_parse.h"
#include <twin/server.h>

#define TWIN_SERVER_LISTEN_DEFAULT "127.0.0.1:3000"
#define TWIN_SERVER_CLIENTS_MAX_DEFAULT 32u
/* Connections beyond sessions: room for clients that reconnect or are being evicted. */
#define TWIN_SERVER_CONNECTIONS_EXTRA 8u
#define TWIN_SERVER_MESSAGE_SIZE_MAX_DEFAULT (256u * 1024u)
#define TWIN_SERVER_RELEASE_DEFAULT 1u
#define TWIN_SERVER_ACCOUNTS_MAX_DEFAULT 100000u
#define TWIN_SERVER_TRANSFERS_MAX_DEFAULT 1000000u
/* Room for the stats line. */
#define TWIN_SERVER_STATS_TEXT_SIZE 2048u

static const char usage[] =
    "usage: twin-server [--listen ADDR] [--clients-max N] [--connections-max N]\n"
    "                   [--message-size-max BYTES] [--cluster N] [--release-min N]\n"
    "                   [--release-max N] [--accounts-max N] [--transfers-max N] [--quiet]\n";

static const char help[] =
    "Serves the twin protocol and ledger on one event loop until SIGINT or SIGTERM.\n"
    "\n"
    "  --listen ADDR             IPV4:PORT or [IPV6]:PORT; port 0 lets the system choose\n"
    "                            (default " TWIN_SERVER_LISTEN_DEFAULT ")\n"
    "  --clients-max N           sessions held at once, 1..4096 (default 32); one more\n"
    "                            evicts the least recently used\n"
    "  --connections-max N       open connections, 1..4096 (default clients-max + 8)\n"
    "  --message-size-max BYTES  largest message, header included, 208..1048576\n"
    "                            (default 262144)\n"
    "  --cluster N               the cluster id, decimal below 2^128 (default 0)\n"
    "  --release-min N           clients below this release are evicted (default 1)\n"
    "  --release-max N           clients above this release are evicted (default 1)\n"
    "  --accounts-max N          the ledger's accounts, >= 1 (default 100000)\n"
    "  --transfers-max N         the ledger's transfers, >= 1 (default 1000000)\n"
    "  --quiet                   no log lines for connections, evictions, malformed input\n"
    "  --help                    this text\n"
    "\n"
    "Prints 'twin-server: listening on ADDR' once listening, and a stats line on exit.\n"
    "Exit 0 after a signal, 1 when it cannot start, 2 for a bad flag.\n";

typedef struct flags {
    tw_address listen;
    const char *listen_text;
    bool listen_given;
    tw_server_options options;
    bool connections_max_given;
    bool quiet;
} flags;

/* ---- parsing ---------------------------------------------------------------------- */


static const tw_cli cli = {.program = "twin-server", .usage = usage};
#define usage_error(...) tw_cli_usage_error(&cli, __VA_ARGS__)
#define parse_u32_flag(...) tw_cli_parse_u32(&cli, __VA_ARGS__)

/* Returns -1 to go on, else the exit code (0 after --help). */
static int parse_flags(int argc, char **argv, flags *f) {
    *f = (flags){
        .listen_text = TWIN_SERVER_LISTEN_DEFAULT,
        .options = {
            .cluster = {0, 0},
            .clients_max = TWIN_SERVER_CLIENTS_MAX_DEFAULT,
            .message_size_max = TWIN_SERVER_MESSAGE_SIZE_MAX_DEFAULT,
            .release_min = TWIN_SERVER_RELEASE_DEFAULT,
            .release_max = TWIN_SERVER_RELEASE_DEFAULT,
            .accounts_max = TWIN_SERVER_ACCOUNTS_MAX_DEFAULT,
            .transfers_max = TWIN_SERVER_TRANSFERS_MAX_DEFAULT,
            .backlog = 0,
        },
    };
    int exit_code = 2;
    for (int i = 1; i < argc; i++) {
        const char *argument = argv[i];
        if (strcmp(argument, "--help") == 0 || strcmp(argument, "-h") == 0) {
            printf("%s\n%s", usage, help);
            return 0;
        }
        if (strcmp(argument, "--quiet") == 0) {
            f->quiet = true;
            continue;
        }
        if (strncmp(argument, "--", 2) != 0) {
            return usage_error("unexpected argument '%s' (every option is a --flag)", argument);
        }
        /* "--flag value" or "--flag=value". */
        char flag[64];
        const char *value = NULL;
        const char *equals = strchr(argument, '=');
        if (equals != NULL) {
            size_t length = (size_t)(equals - argument);
            if (length >= sizeof(flag)) return usage_error("unknown flag '%s'", argument);
            memcpy(flag, argument, length);
            flag[length] = '\0';
            value = equals + 1;
        } else {
            if (strlen(argument) >= sizeof(flag)) return usage_error("unknown flag '%s'", argument);
            strcpy(flag, argument);
        }
        bool known = strcmp(flag, "--listen") == 0 || strcmp(flag, "--clients-max") == 0 ||
                     strcmp(flag, "--connections-max") == 0 ||
                     strcmp(flag, "--message-size-max") == 0 || strcmp(flag, "--cluster") == 0 ||
                     strcmp(flag, "--release-min") == 0 || strcmp(flag, "--release-max") == 0 ||
                     strcmp(flag, "--accounts-max") == 0 || strcmp(flag, "--transfers-max") == 0;
        if (!known) return usage_error("unknown flag '%s'", flag);
        if (value == NULL) {
            if (i + 1 >= argc) return usage_error("%s needs a value", flag);
            value = argv[++i];
        }
        tw_server_options *o = &f->options;
        if (strcmp(flag, "--listen") == 0) {
            if (tw_address_parse(value, &f->listen) != tw_loop_ok) {
                return usage_error("--listen takes IPV4:PORT or [IPV6]:PORT (e.g. 127.0.0.1:3000 "
                                   "or [::1]:3000), not '%s'", value);
            }
            f->listen_text = value;
            f->listen_given = true;
        } else if (strcmp(flag, "--clients-max") == 0) {
            if (!parse_u32_flag(flag, value, 1, TW_SERVER_CLIENTS_MAX, &o->clients_max, &exit_code)) {
                return exit_code;
            }
        } else if (strcmp(flag, "--connections-max") == 0) {
            if (!parse_u32_flag(flag, value, 1, TW_SERVER_CONNECTIONS_MAX, &o->connections_max,
                                &exit_code)) {
                return exit_code;
            }
            f->connections_max_given = true;
        } else if (strcmp(flag, "--message-size-max") == 0) {
            if (!parse_u32_flag(flag, value, TW_SERVER_MESSAGE_SIZE_MIN, TW_MESSAGE_SIZE_MAX,
                                &o->message_size_max, &exit_code)) {
                return exit_code;
            }
        } else if (strcmp(flag, "--cluster") == 0) {
            if (!tw_cli_parse_u128(value, &o->cluster)) {
                return usage_error("--cluster takes a decimal integer 0..2^128-1, not '%s'", value);
            }
        } else if (strcmp(flag, "--release-min") == 0) {
            if (!parse_u32_flag(flag, value, 0, UINT32_MAX, &o->release_min, &exit_code)) {
                return exit_code;
            }
        } else if (strcmp(flag, "--release-max") == 0) {
            if (!parse_u32_flag(flag, value, 0, UINT32_MAX, &o->release_max, &exit_code)) {
                return exit_code;
            }
        } else if (strcmp(flag, "--accounts-max") == 0) {
            if (!parse_u32_flag(flag, value, 1, UINT32_MAX, &o->accounts_max, &exit_code)) {
                return exit_code;
            }
        } else {
            TW_ASSERT(strcmp(flag, "--transfers-max") == 0);
            if (!parse_u32_flag(flag, value, 1, UINT32_MAX, &o->transfers_max, &exit_code)) {
                return exit_code;
            }
        }
    }
    if (!f->listen_given) {
        tw_loop_error parsed = tw_address_parse(f->listen_text, &f->listen);
        TW_ASSERT(parsed == tw_loop_ok);
    }
    tw_server_options *o = &f->options;
    if (!f->connections_max_given) {
        /* clients_max + 8, within the server's limit. */
        uint32_t wanted = o->clients_max + TWIN_SERVER_CONNECTIONS_EXTRA;
        o->connections_max = wanted < TW_SERVER_CONNECTIONS_MAX ? wanted : TW_SERVER_CONNECTIONS_MAX;
    }
    if (o->release_min > o->release_max) {
        return usage_error("--release-min %" PRIu32 " is above --release-max %" PRIu32
                           " (the accepted releases are release-min..release-max)",
                           o->release_min, o->release_max);
    }
    const char *problem = tw_server_options_check(o);
    if (problem != NULL) return usage_error("invalid options: %s", problem);
    return -1;
}

/* ---- signals ------------------------------------------------------------------------ */

/* The async the handler notifies: set before the handlers are installed, and the signals
 * are blocked again before it is deinitialised. */
static tw_async *signal_async = NULL;

static void on_signal(int signal_number) {
    (void)signal_number;
    int saved_errno = errno; /* the eventfd write may set it */
    if (signal_async != NULL) tw_async_notify(signal_async);
    errno = saved_errno;
}

static bool install_signal_handlers(void) {
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    /* A second signal waits for the first handler to finish. */
    sigaddset(&action.sa_mask, SIGINT);
    sigaddset(&action.sa_mask, SIGTERM);
    action.sa_flags = SA_RESTART;
    return sigaction(SIGINT, &action, NULL) == 0 && sigaction(SIGTERM, &action, NULL) == 0;
}

/* After this, no handler runs, so no tw_async_notify can start. */
static void block_stop_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int result = sigprocmask(SIG_BLOCK, &set, NULL);
    TW_ASSERT(result == 0);
}

typedef struct stopper {
    tw_server *server;
    bool stopped;
} stopper;

/* On the loop thread after a signal: stop serving; the loop then drains and returns. */
static tw_action on_stop(void *userdata, tw_loop *loop, tw_completion *completion,
                         tw_result result) {
    (void)loop;
    (void)completion;
    stopper *s = userdata;
    TW_ASSERT(result.error == tw_loop_ok);
    TW_ASSERT(!s->stopped);
    s->stopped = true;
    tw_server_stop(s->server);
    return tw_disarm;
}

/* ---- output --------------------------------------------------------------------------- */

static void log_line(void *context, const char *line) {
    (void)context;
    fprintf(stderr, "twin-server: %s\n", line);
}

/* Appends to text (size bytes, used so far at *used), truncating at the end. */
static void append(char *text, size_t size, size_t *used, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

static void append(char *text, size_t size, size_t *used, const char *format, ...) {
    if (*used >= size) return;
    va_list arguments;
    va_start(arguments, format);
    int written = vsnprintf(text + *used, size - *used, format, arguments);
    va_end(arguments);
    if (written < 0) return;
    *used += (size_t)written < size - *used ? (size_t)written : size - *used - 1;
}

/* One line: connections, sessions, requests, evictions and malformed input by kind. */
static void print_stats(const tw_server_stats *stats) {
    char text[TWIN_SERVER_STATS_TEXT_SIZE];
    size_t used = 0;
    append(text, sizeof(text), &used,
           "stats: connections=%" PRIu64 " closed=%" PRIu64 " accept_errors=%" PRIu64
           " messages=%" PRIu64 " registrations=%" PRIu64 " requests_executed=%" PRIu64
           " retries=%" PRIu64 " ignored=%" PRIu64 " pings=%" PRIu64 " op=%" PRIu64,
           stats->connections_accepted, stats->connections_closed, stats->accept_errors,
           stats->messages_received, stats->registrations, stats->requests_executed,
           stats->retries_answered, stats->requests_ignored, stats->pings, stats->op);
    append(text, sizeof(text), &used, " evictions:");
    bool any = false;
    for (uint32_t reason = 0; reason < TW_EVICTION_REASON_COUNT; reason++) {
        if (stats->sessions_evicted[reason] == 0) continue;
        append(text, sizeof(text), &used, " %s=%" PRIu64,
               tw_eviction_reason_name((tw_eviction_reason)reason), stats->sessions_evicted[reason]);
        any = true;
    }
    if (!any) append(text, sizeof(text), &used, " none");
    uint64_t evictions_sent = 0;
    for (uint32_t reason = 0; reason < TW_EVICTION_REASON_COUNT; reason++) {
        evictions_sent += stats->evictions_sent[reason];
    }
    append(text, sizeof(text), &used, " evictions_sent=%" PRIu64 " malformed:", evictions_sent);
    any = false;
    for (uint32_t error = 0; error < tw_proto_error_count; error++) {
        if (stats->malformed[error] == 0) continue;
        append(text, sizeof(text), &used, " %s=%" PRIu64,
               tw_proto_error_name((tw_proto_error)error), stats->malformed[error]);
        any = true;
    }
    if (!any) append(text, sizeof(text), &used, " none");
    append(text, sizeof(text), &used, " sends_dropped=%" PRIu64, stats->sends_dropped);
    append(text, sizeof(text), &used, " reclaimed=%" PRIu64, stats->connections_reclaimed);
    fprintf(stderr, "twin-server: %s\n", text);
}

/* ---- main ----------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    flags f;
    int exit_code = parse_flags(argc, argv, &f);
    if (exit_code >= 0) return exit_code;

    tw_loop *loop = NULL;
    tw_loop_error loop_error = tw_loop_init(&loop, NULL);
    if (loop_error != tw_loop_ok) {
        const char *advice = tw_loop_error_advice(loop_error);
        fprintf(stderr, "twin-server: cannot start the event loop: %s%s%s\n",
                tw_loop_error_name(loop_error), advice != NULL ? ": " : "", advice != NULL ? advice : "");
        return 1;
    }

    char address_text[TW_ADDRESS_TEXT_SIZE];
    tw_address_format(&f.listen, address_text, sizeof(address_text));
    tw_server *server = NULL;
    tw_loop_error listen_error = tw_loop_ok;
    tw_server_error server_error = tw_server_init(&server, loop, &f.listen, &f.options,
                                                  &listen_error);
    if (server_error != tw_server_ok) {
        if (server_error == tw_server_listen_failed) {
            fprintf(stderr, "twin-server: cannot listen on %s: %s\n", address_text,
                    tw_loop_error_name(listen_error));
        } else {
            fprintf(stderr, "twin-server: cannot start: %s\n", tw_server_error_name(server_error));
        }
        tw_loop_deinit(loop);
        return 1;
    }
    if (!f.quiet) tw_server_set_log(server, log_line, NULL);

    /* Signals: the async must exist before a handler can notify it. */
    static tw_async async;
    tw_async_init(loop, &async);
    stopper stop = {.server = server, .stopped = false};
    tw_completion stop_completion;
    memset(&stop_completion, 0, sizeof(stop_completion));
    tw_async_wait(loop, &async, &stop_completion, &stop, on_stop);
    signal_async = &async;
    if (!install_signal_handlers()) {
        fprintf(stderr, "twin-server: cannot install the signal handlers: %s\n", strerror(errno));
        return 1;
    }

    tw_address bound = tw_server_address(server);
    tw_address_format(&bound, address_text, sizeof(address_text));
    fprintf(stderr, "twin-server: listening on %s\n", address_text);
    fflush(stderr);

    /* Serves until a signal stops the server and its connections have closed. */
    loop_error = tw_loop_run(loop, tw_run_until_done);
    if (loop_error != tw_loop_ok) {
        fprintf(stderr, "twin-server: the loop failed: %s\n", tw_loop_error_name(loop_error));
        return 1;
    }
    TW_ASSERT(stop.stopped);

    block_stop_signals();
    signal_async = NULL;
    tw_async_deinit(&async);
    print_stats(tw_server_stats_get(server));
    tw_server_deinit(server);
    tw_loop_deinit(loop);
    return 0;
}
