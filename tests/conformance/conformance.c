/* Conformance of the simulated network to the kernel's: one driver, both builds.
 *
 * The driver runs scenario files (tests/conformance/NAME.scn) through twin's public loop API
 * only (<twin/loop.h>, <twin/tcp.h>) and prints what a program can observe, one canonical
 * line per completion. The real build runs each scenario once, with io_uring on 127.0.0.1;
 * the sim build runs the same scenarios in a simulated world with network faults off, over
 * a sweep of seeds (seeded latencies, seeded scheduler): every seed must print the same
 * text, and tests/conformance/compare.py checks that it equals the real build's, except
 * the lines tests/conformance/DIFFERENCES.md lists as known differences.
 *
 * Usage: conformance_{real,sim} [--out FILE] SCENARIO.scn... [-- RUNNER FLAGS]
 * (runner flags go to the sim runner, e.g. `-- --seeds 50` or a repro's `-- --seed 7
 * --strategy pct`; the real runner takes none). The outcome goes to stdout or FILE.
 *
 * ---- The scenario format -----------------------------------------------------------
 * One command a line; '#' starts a comment; blank lines are ignored. Names (sockets and
 * operations) are one word of up to 15 characters; an operation name is used once.
 * Commands run in order; asynchronous ones only start their operation (nothing runs until
 * a wait), so operations started between two waits are in flight together.
 *
 *   listen SOCK              open SOCK, bind 127.0.0.1:0 (SO_REUSEADDR), listen (backlog 16)
 *   open SOCK                open SOCK (a TCP socket, not connected)
 *   port NAME                NAME is an address nobody listens on: a socket is bound to
 *                            127.0.0.1:0, its port noted, and the socket closed (not printed)
 *   sndbuf SOCK BYTES        tw_tcp_set_send_buffer (SO_SNDBUF; in the sim: the capacity
 *                            of SOCK's outgoing direction)
 *   connect OP SOCK TARGET   connect SOCK (opened first if it is not) to TARGET, a listen
 *                            socket or a port NAME
 *   accept OP LISTENER SOCK  accept on LISTENER; the accepted socket is named SOCK
 *   recv OP SOCK BYTES       one recv into a BYTES buffer (BYTES <= 16384)
 *   read OP SOCK BYTES       recvs until BYTES have come in total, EOF or an error
 *   send OP SOCK BYTES       one send of the next BYTES of SOCK's stream (may be partial)
 *   write OP SOCK BYTES      the next BYTES of SOCK's stream through SOCK's write queue
 *                            (tw_tcp_queue_write: whole or an error)
 *   shutdown OP SOCK         shut down SOCK's write side
 *   close OP SOCK            close SOCK
 *   timer OP MS              a timer of MS milliseconds
 *   cancel OP TARGET         tw_loop_cancel of operation TARGET
 *   wait OP...               run the loop until every OP listed has completed
 *                            (hang deadline: TW_CONF_WAIT_DEADLINE_S seconds of loop time)
 *   pending OP...            print, for each OP, whether it is still pending
 *
 * Every byte a socket sends is the next byte of its stream: byte i of every stream is
 * pattern(i) (i % 251), so a reader checks what it got against its own count: a byte
 * lost, duplicated or out of order fails the run (it is a bug in either build).
 * At the end of a scenario every operation must have completed (a scenario that leaves
 * one pending is an error in the scenario: add a wait, a cancel or a close); the driver
 * then closes the sockets still open (not printed) and deinits the loop.
 *
 * ---- The output -----------------------------------------------------------------------
 * Per scenario, per socket (in the order the scenario names them) and then "loop" (timers
 * and cancels), the lines of that socket in the order their callbacks ran, each
 *   SCENARIO SOCKET: OP VERB OUTCOME
 * where OUTCOME is "ok" or the error's name (tw_loop_error_name), and:
 *   accept   ok -> SOCK
 *   recv     ok N | eof | ERROR            (N: the bytes of that one recv)
 *   read     ok N | eof after N | ERROR after N
 *            (a read is many recvs: only its total is printed, since how the kernel or
 *            the sim splits a stream into recvs is not part of the API's contract)
 *   send     ok N when the whole buffer went, "ok partial" when fewer bytes did (a send
 *            may write fewer bytes than asked: how many is not printed), or ERROR
 *   write    ok N | ERROR                  (the queue reports the whole length or the error)
 *   timer    expired | canceled
 *   cancel   ok | not_found | in_progress
 *   pending  pending | completed           (printed in the log of OP's socket)
 * A result's os_error (errno) is not printed: it is 0 in the sim. The ordering printed is
 * per socket only: the order of callbacks of different sockets is not guaranteed. Within
 * one socket, the order is what the API guarantees: completions separated by a wait come
 * in the order of the waits, and the scenarios put operations of one socket in flight
 * together only where their order is fixed (a close completes after the operations on
 * its socket that it cancels). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/loop.h>
#include <twin/tcp.h>

#include "twin_test.h"

#define TW_CONF_NAME_SIZE 16u
#define TW_CONF_SCENARIOS_MAX 64u
#define TW_CONF_COMMANDS_MAX 128u
#define TW_CONF_SOCKETS_MAX 16u
#define TW_CONF_OPS_MAX 64u
#define TW_CONF_ARGS_MAX 8u
#define TW_CONF_LINE_SIZE 256u
#define TW_CONF_RECV_SIZE_MAX 16384u
#define TW_CONF_PATTERN_PERIOD 251u
#define TW_CONF_STREAM_WRITE_MAX (16u * 1024u * 1024u) /* one send or write */
#define TW_CONF_OUTPUT_SIZE (256u * 1024u)
#define TW_CONF_LOG_LINES_MAX 64u
#define TW_CONF_WAIT_DEADLINE_S 30u
#define TW_CONF_LISTEN_BACKLOG 16u
#define NS_PER_MS (1000u * 1000u)

typedef enum conf_verb {
    verb_listen,
    verb_open,
    verb_port,
    verb_sndbuf,
    verb_connect,
    verb_accept,
    verb_recv,
    verb_read,
    verb_send,
    verb_write,
    verb_shutdown,
    verb_close,
    verb_timer,
    verb_cancel,
    verb_wait,
    verb_pending,
} conf_verb;

typedef struct verb_spec {
    const char *word;
    conf_verb verb;
    uint32_t args; /* words after the verb; 0 with `many`: one or more */
    bool many;
    bool starts_op; /* the first argument names a new operation */
} verb_spec;

static const verb_spec verb_specs[] = {
    {"listen", verb_listen, 1, false, false},  {"open", verb_open, 1, false, false},
    {"port", verb_port, 1, false, false},      {"sndbuf", verb_sndbuf, 2, false, false},
    {"connect", verb_connect, 3, false, true}, {"accept", verb_accept, 3, false, true},
    {"recv", verb_recv, 3, false, true},       {"read", verb_read, 3, false, true},
    {"send", verb_send, 3, false, true},       {"write", verb_write, 3, false, true},
    {"shutdown", verb_shutdown, 2, false, true}, {"close", verb_close, 2, false, true},
    {"timer", verb_timer, 2, false, true},     {"cancel", verb_cancel, 2, false, true},
    {"wait", verb_wait, 0, true, false},       {"pending", verb_pending, 0, true, false},
};

typedef struct command {
    conf_verb verb;
    uint32_t line;
    uint32_t argc;
    char args[TW_CONF_ARGS_MAX][TW_CONF_NAME_SIZE];
    uint64_t number; /* BYTES or MS */
} command;

typedef struct scenario {
    char name[64];
    char path[512];
    command commands[TW_CONF_COMMANDS_MAX];
    uint32_t commands_count;
} scenario;

typedef struct conformance {
    scenario scenarios[TW_CONF_SCENARIOS_MAX];
    uint32_t scenarios_count;
} conformance;

/* ---- the run's state ---------------------------------------------------------------- */

typedef struct conf_socket {
    char name[TW_CONF_NAME_SIZE];
    tw_tcp tcp;
    bool is_open;      /* tcp.fd is ours to close */
    bool has_address;  /* a listener or a port: connect TARGET */
    tw_address address;
    uint64_t sent;     /* the stream offset of the next byte this socket sends */
    uint64_t received; /* the stream offset of the next byte this socket receives */
    tw_write_queue queue;
    char log[TW_CONF_LOG_LINES_MAX][TW_CONF_LINE_SIZE];
    uint32_t log_count;
} conf_socket;

typedef struct conf_op {
    char name[TW_CONF_NAME_SIZE];
    conf_verb verb;
    uint32_t socket;  /* index into sockets; TW_CONF_SOCKETS_MAX: the loop's log */
    uint32_t target_socket; /* accept: the socket the accepted one becomes */
    bool started;
    bool done;
    tw_completion completion;
    tw_write_request request; /* write */
    uint64_t size;
    uint64_t total;           /* read: bytes so far */
    uint8_t buffer[TW_CONF_RECV_SIZE_MAX];
} conf_op;

typedef struct run_state {
    const scenario *scenario;
    tw_loop *loop;
    conf_socket sockets[TW_CONF_SOCKETS_MAX];
    uint32_t sockets_count;
    char loop_log[TW_CONF_LOG_LINES_MAX][TW_CONF_LINE_SIZE];
    uint32_t loop_log_count;
    conf_op ops[TW_CONF_OPS_MAX];
    uint32_t ops_count;
    tw_completion watchdog;
    bool watchdog_expired;
} run_state;

static run_state state;
static uint8_t pattern[TW_CONF_STREAM_WRITE_MAX + TW_CONF_PATTERN_PERIOD];
static char output[TW_CONF_OUTPUT_SIZE];
static size_t output_size;
static char reference[TW_CONF_OUTPUT_SIZE]; /* the first run's output (sim: seed after seed) */
static bool reference_set;
static char failure[1024];

static uint8_t pattern_at(uint64_t offset) { return (uint8_t)(offset % TW_CONF_PATTERN_PERIOD); }

/* Fails the run (real: abort; sim: this seed fails with the message). */
#define CONF_FAIL(...)                                                                        \
    do {                                                                                      \
        snprintf(failure, sizeof(failure), __VA_ARGS__);                                      \
        fprintf(stderr, "conformance: %s\n", failure);                                       \
        tw_panic(__FILE__, __LINE__, failure);                                                \
    } while (0)

static void output_append(const char *format, ...) {
    va_list args;
    va_start(args, format);
    int n = vsnprintf(output + output_size, sizeof(output) - output_size, format, args);
    va_end(args);
    TW_ASSERT(n >= 0);
    if ((size_t)n >= sizeof(output) - output_size) {
        CONF_FAIL("the output is larger than TW_CONF_OUTPUT_SIZE (%u bytes): make it larger",
                  TW_CONF_OUTPUT_SIZE);
    }
    output_size += (size_t)n;
}

static void log_line(uint32_t socket, const char *format, ...) {
    char (*log)[TW_CONF_LINE_SIZE];
    uint32_t *count;
    if (socket == TW_CONF_SOCKETS_MAX) {
        log = state.loop_log;
        count = &state.loop_log_count;
    } else {
        TW_ASSERT(socket < state.sockets_count);
        log = state.sockets[socket].log;
        count = &state.sockets[socket].log_count;
    }
    if (*count == TW_CONF_LOG_LINES_MAX) {
        CONF_FAIL("scenario %s: more than %u lines for one socket", state.scenario->name,
                  TW_CONF_LOG_LINES_MAX);
    }
    va_list args;
    va_start(args, format);
    (void)vsnprintf(log[*count], TW_CONF_LINE_SIZE, format, args);
    va_end(args);
    (*count)++;
}

static const char *verb_word(conf_verb verb) {
    for (size_t i = 0; i < sizeof(verb_specs) / sizeof(verb_specs[0]); i++) {
        if (verb_specs[i].verb == verb) return verb_specs[i].word;
    }
    return "?";
}

static conf_op *op_find(const char *name) {
    for (uint32_t i = 0; i < state.ops_count; i++) {
        if (strcmp(state.ops[i].name, name) == 0) return &state.ops[i];
    }
    return NULL;
}

static uint32_t socket_find(const char *name) {
    for (uint32_t i = 0; i < state.sockets_count; i++) {
        if (strcmp(state.sockets[i].name, name) == 0) return i;
    }
    return TW_CONF_SOCKETS_MAX;
}

/* The socket named, created (not opened) when it is new. */
static uint32_t socket_get(const char *name) {
    uint32_t index = socket_find(name);
    if (index != TW_CONF_SOCKETS_MAX) return index;
    TW_ASSERT(state.sockets_count < TW_CONF_SOCKETS_MAX); /* checked when parsing */
    index = state.sockets_count++;
    conf_socket *s = &state.sockets[index];
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->tcp.fd = TW_FD_INVALID;
    return index;
}

static tw_address loopback_any_port(void) {
    tw_address address;
    tw_loop_error error = tw_address_parse("127.0.0.1:0", &address);
    TW_ASSERT(error == tw_loop_ok);
    return address;
}

static void socket_open(conf_socket *s) {
    if (s->is_open) return;
    tw_address address = loopback_any_port();
    tw_loop_error error = tw_tcp_open(state.loop, &address, &s->tcp);
    if (error != tw_loop_ok) {
        CONF_FAIL("scenario %s: cannot open socket %s: %s", state.scenario->name, s->name,
                  tw_loop_error_name(error));
    }
    s->is_open = true;
}

/* ---- callbacks ---------------------------------------------------------------------- */

static void op_finish(conf_op *op) {
    TW_ASSERT(op->started && !op->done);
    op->done = true;
}

static tw_action simple_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    conf_op *op = userdata;
    log_line(op->socket, "%s %s %s", op->name, verb_word(op->verb), tw_loop_error_name(result.error));
    op_finish(op);
    return tw_disarm;
}

static tw_action accept_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    conf_op *op = userdata;
    if (result.error == tw_loop_ok) {
        conf_socket *accepted = &state.sockets[op->target_socket];
        TW_ASSERT(!accepted->is_open);
        accepted->tcp = tw_tcp_accepted(result);
        accepted->is_open = true;
        log_line(op->socket, "%s accept ok -> %s", op->name, accepted->name);
    } else {
        log_line(op->socket, "%s accept %s", op->name, tw_loop_error_name(result.error));
    }
    op_finish(op);
    return tw_disarm;
}

static tw_action timer_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    conf_op *op = userdata;
    TW_ASSERT(result.error != tw_loop_ok || result.value == tw_timer_expired);
    log_line(op->socket, "%s timer %s", op->name,
             result.error == tw_loop_ok ? "expired" : tw_loop_error_name(result.error));
    op_finish(op);
    return tw_disarm;
}

/* Every byte received must be the next of the peer's stream: a byte lost, duplicated or
 * out of order fails the run (in either build it is a bug, not a difference). */
static void check_data(const conf_op *op, const conf_socket *s, uint64_t size) {
    for (uint64_t i = 0; i < size; i++) {
        if (op->buffer[i] != pattern_at(s->received + i)) {
            CONF_FAIL("scenario %s: %s %s on %s: byte %" PRIu64 " of the stream is %u, expected %u "
                      "(lost, duplicated or reordered data)",
                      state.scenario->name, op->name, verb_word(op->verb), s->name, s->received + i,
                      op->buffer[i], pattern_at(s->received + i));
        }
    }
}

static tw_action recv_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    conf_op *op = userdata;
    conf_socket *s = &state.sockets[op->socket];
    if (result.error == tw_loop_ok) {
        TW_ASSERT(result.value > 0 && result.value <= op->size);
        check_data(op, s, result.value);
        s->received += result.value;
        log_line(op->socket, "%s recv ok %" PRIu64, op->name, result.value);
    } else {
        log_line(op->socket, "%s recv %s", op->name, tw_loop_error_name(result.error));
    }
    op_finish(op);
    return tw_disarm;
}

static tw_action read_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    conf_op *op = userdata;
    conf_socket *s = &state.sockets[op->socket];
    if (result.error == tw_loop_ok) {
        TW_ASSERT(result.value > 0 && op->total + result.value <= op->size);
        check_data(op, s, result.value);
        s->received += result.value;
        op->total += result.value;
        if (op->total < op->size) {
            uint64_t left = op->size - op->total;
            tw_tcp_read(loop, c, s->tcp, op->buffer, left < sizeof(op->buffer) ? left : sizeof(op->buffer),
                        op, read_cb);
            return tw_disarm;
        }
    }
    if (result.error == tw_loop_ok) {
        log_line(op->socket, "%s read ok %" PRIu64, op->name, op->total);
    } else {
        log_line(op->socket, "%s read %s after %" PRIu64, op->name, tw_loop_error_name(result.error),
                 op->total);
    }
    op_finish(op);
    return tw_disarm;
}

static tw_action send_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    conf_op *op = userdata;
    conf_socket *s = &state.sockets[op->socket];
    if (result.error == tw_loop_ok) {
        TW_ASSERT(result.value <= op->size);
        s->sent += result.value;
        if (result.value == op->size) log_line(op->socket, "%s send ok %" PRIu64, op->name, result.value);
        else log_line(op->socket, "%s send ok partial", op->name);
    } else {
        log_line(op->socket, "%s send %s", op->name, tw_loop_error_name(result.error));
    }
    op_finish(op);
    return tw_disarm;
}

static tw_action write_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    conf_op *op = userdata;
    if (result.error == tw_loop_ok) {
        TW_ASSERT(result.value == op->size);
        log_line(op->socket, "%s write ok %" PRIu64, op->name, result.value);
    } else {
        log_line(op->socket, "%s write %s", op->name, tw_loop_error_name(result.error));
    }
    op_finish(op);
    return tw_disarm;
}

static tw_action watchdog_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)userdata;
    (void)loop;
    (void)c;
    if (result.error == tw_loop_ok) state.watchdog_expired = true;
    return tw_disarm;
}

static tw_action quiet_cb(void *userdata, tw_loop *loop, tw_completion *c, tw_result result) {
    (void)loop;
    (void)c;
    *(tw_loop_error *)userdata = result.error;
    return tw_disarm;
}

/* ---- commands ----------------------------------------------------------------------- */

static conf_op *op_new(const command *cmd, uint32_t socket) {
    TW_ASSERT(state.ops_count < TW_CONF_OPS_MAX); /* checked when parsing */
    TW_ASSERT(op_find(cmd->args[0]) == NULL);     /* checked when parsing */
    conf_op *op = &state.ops[state.ops_count++];
    memset(op, 0, offsetof(conf_op, buffer));
    snprintf(op->name, sizeof(op->name), "%s", cmd->args[0]);
    op->verb = cmd->verb;
    op->socket = socket;
    op->started = true;
    return op;
}

static const char *pending_names(char *text, size_t size) {
    size_t used = 0;
    text[0] = '\0';
    for (uint32_t i = 0; i < state.ops_count && used < size; i++) {
        if (state.ops[i].done) continue;
        int n = snprintf(text + used, size - used, "%s%s", used > 0 ? " " : "", state.ops[i].name);
        if (n < 0) break;
        used += (size_t)n;
    }
    return used > 0 ? text : "(none)";
}

static void wait_for(const command *cmd) {
    TW_ASSERT(cmd->verb == verb_wait && cmd->argc > 0);
    tw_loop_timer_reset(state.loop, &state.watchdog, (uint64_t)TW_CONF_WAIT_DEADLINE_S * 1000u * NS_PER_MS,
                        NULL, watchdog_cb);
    for (;;) {
        bool all_done = true;
        for (uint32_t i = 0; i < cmd->argc; i++) all_done = all_done && op_find(cmd->args[i])->done;
        if (all_done) return;
        if (state.watchdog_expired) {
            char names[256];
            CONF_FAIL("scenario %s line %u: wait: not every operation listed completed within %u s "
                      "of loop time; pending: %s",
                      state.scenario->name, cmd->line, TW_CONF_WAIT_DEADLINE_S,
                      pending_names(names, sizeof(names)));
        }
        tw_loop_error error = tw_loop_run(state.loop, tw_run_once);
        TW_ASSERT(error == tw_loop_ok);
    }
}

static void port_reserve(conf_socket *s) {
    tw_address address = loopback_any_port();
    tw_tcp probe;
    tw_loop_error error = tw_tcp_open(state.loop, &address, &probe);
    if (error == tw_loop_ok) error = tw_tcp_bind(state.loop, probe, &address);
    if (error == tw_loop_ok) error = tw_tcp_local_address(state.loop, probe, &s->address);
    if (error != tw_loop_ok) {
        CONF_FAIL("scenario %s: port %s: cannot reserve a port: %s", state.scenario->name, s->name,
                  tw_loop_error_name(error));
    }
    tw_completion c = {0};
    tw_loop_error closed = tw_loop_unexpected;
    tw_tcp_close(state.loop, &c, probe, &closed, quiet_cb);
    while (tw_completion_active(&c)) TW_ASSERT(tw_loop_run(state.loop, tw_run_once) == tw_loop_ok);
    TW_ASSERT_MSG(closed == tw_loop_ok, "port: closing the probe socket failed");
    s->has_address = true;
}

static void run_command(const command *cmd) {
    tw_loop *loop = state.loop;
    switch (cmd->verb) {
    case verb_listen: {
        conf_socket *s = &state.sockets[socket_get(cmd->args[0])];
        socket_open(s);
        tw_address address = loopback_any_port();
        tw_loop_error error = tw_tcp_bind(loop, s->tcp, &address);
        if (error == tw_loop_ok) error = tw_tcp_listen(loop, s->tcp, TW_CONF_LISTEN_BACKLOG);
        if (error == tw_loop_ok) error = tw_tcp_local_address(loop, s->tcp, &s->address);
        if (error != tw_loop_ok) {
            CONF_FAIL("scenario %s line %u: listen %s: %s", state.scenario->name, cmd->line, s->name,
                      tw_loop_error_name(error));
        }
        s->has_address = true;
        return;
    }
    case verb_open:
        socket_open(&state.sockets[socket_get(cmd->args[0])]);
        return;
    case verb_port:
        port_reserve(&state.sockets[socket_get(cmd->args[0])]);
        return;
    case verb_sndbuf: {
        conf_socket *s = &state.sockets[socket_get(cmd->args[0])];
        socket_open(s);
        tw_loop_error error = tw_tcp_set_send_buffer(loop, s->tcp, (uint32_t)cmd->number);
        if (error != tw_loop_ok) {
            CONF_FAIL("scenario %s line %u: sndbuf %s %" PRIu64 ": %s", state.scenario->name,
                      cmd->line, s->name, cmd->number, tw_loop_error_name(error));
        }
        return;
    }
    case verb_connect: {
        uint32_t index = socket_get(cmd->args[1]);
        conf_socket *target = &state.sockets[socket_get(cmd->args[2])];
        if (!target->has_address) {
            CONF_FAIL("scenario %s line %u: connect: %s is neither a listener nor a port",
                      state.scenario->name, cmd->line, target->name);
        }
        socket_open(&state.sockets[index]);
        conf_op *op = op_new(cmd, index);
        tw_tcp_connect(loop, &op->completion, state.sockets[index].tcp, &target->address, op, simple_cb);
        return;
    }
    case verb_accept: {
        uint32_t listener = socket_get(cmd->args[1]);
        conf_op *op = op_new(cmd, listener);
        op->target_socket = socket_get(cmd->args[2]);
        tw_tcp_accept(loop, &op->completion, state.sockets[listener].tcp, op, accept_cb);
        return;
    }
    case verb_recv:
    case verb_read: {
        uint32_t index = socket_get(cmd->args[1]);
        conf_op *op = op_new(cmd, index);
        op->size = cmd->number;
        size_t first = op->size < sizeof(op->buffer) ? (size_t)op->size : sizeof(op->buffer);
        tw_tcp_read(loop, &op->completion, state.sockets[index].tcp, op->buffer, first, op,
                    cmd->verb == verb_recv ? recv_cb : read_cb);
        return;
    }
    case verb_send:
    case verb_write: {
        uint32_t index = socket_get(cmd->args[1]);
        conf_socket *s = &state.sockets[index];
        conf_op *op = op_new(cmd, index);
        op->size = cmd->number;
        const uint8_t *data = pattern + s->sent % TW_CONF_PATTERN_PERIOD;
        if (cmd->verb == verb_send) {
            tw_tcp_write(loop, &op->completion, s->tcp, data, (size_t)op->size, op, send_cb);
        } else {
            s->sent += op->size; /* the queue writes all of it, or reports an error */
            tw_tcp_queue_write(loop, &s->queue, &op->request, s->tcp, data, (size_t)op->size, op, write_cb);
        }
        return;
    }
    case verb_shutdown: {
        uint32_t index = socket_get(cmd->args[1]);
        conf_op *op = op_new(cmd, index);
        tw_tcp_shutdown(loop, &op->completion, state.sockets[index].tcp, op, simple_cb);
        return;
    }
    case verb_close: {
        uint32_t index = socket_get(cmd->args[1]);
        conf_op *op = op_new(cmd, index);
        /* The scenario's close is the socket's: the cleanup will not close it again. */
        state.sockets[index].is_open = false;
        tw_tcp_close(loop, &op->completion, state.sockets[index].tcp, op, simple_cb);
        return;
    }
    case verb_timer: {
        conf_op *op = op_new(cmd, TW_CONF_SOCKETS_MAX);
        tw_loop_timer(loop, &op->completion, cmd->number * NS_PER_MS, op, timer_cb);
        return;
    }
    case verb_cancel: {
        conf_op *target = op_find(cmd->args[1]);
        TW_ASSERT(target != NULL); /* checked when parsing */
        conf_op *op = op_new(cmd, TW_CONF_SOCKETS_MAX);
        tw_completion *completion = target->verb == verb_write ? &target->request.completion
                                                               : &target->completion;
        tw_loop_cancel(loop, &op->completion, completion, op, simple_cb);
        return;
    }
    case verb_wait:
        wait_for(cmd);
        return;
    case verb_pending:
        for (uint32_t i = 0; i < cmd->argc; i++) {
            conf_op *op = op_find(cmd->args[i]);
            log_line(op->socket, "%s pending %s", op->name, op->done ? "completed" : "pending");
        }
        return;
    }
    tw_panic(__FILE__, __LINE__, "run_command: unknown verb");
}

/* Closes what the scenario left open (not printed), cancels the watchdog, frees the loop. */
static void scenario_cleanup(void) {
    tw_completion closes[TW_CONF_SOCKETS_MAX];
    tw_loop_error errors[TW_CONF_SOCKETS_MAX];
    bool closing[TW_CONF_SOCKETS_MAX] = {false};
    memset(closes, 0, sizeof(closes));
    for (uint32_t i = 0; i < state.sockets_count; i++) {
        conf_socket *s = &state.sockets[i];
        if (!s->is_open) continue;
        s->is_open = false;
        closing[i] = true;
        errors[i] = tw_loop_unexpected;
        tw_tcp_close(state.loop, &closes[i], s->tcp, &errors[i], quiet_cb);
    }
    tw_completion cancel = {0}; /* the loop owns it until the run below ends */
    tw_loop_error canceled = tw_loop_unexpected;
    if (tw_completion_active(&state.watchdog)) {
        tw_loop_cancel(state.loop, &cancel, &state.watchdog, &canceled, quiet_cb);
    }
    TW_ASSERT(tw_loop_run(state.loop, tw_run_until_done) == tw_loop_ok);
    TW_ASSERT(tw_loop_active(state.loop) == 0);
    for (uint32_t i = 0; i < state.sockets_count; i++) {
        if (closing[i] && errors[i] != tw_loop_ok) {
            CONF_FAIL("scenario %s: closing %s at the end failed: %s", state.scenario->name,
                      state.sockets[i].name, tw_loop_error_name(errors[i]));
        }
    }
    tw_loop_deinit(state.loop);
    state.loop = NULL;
}

static void scenario_run(const scenario *sc) {
    tw_test_phase(sc->path); /* the hang report names the scenario (the table outlives the run) */
    memset(&state, 0, sizeof(state));
    state.scenario = sc;
    tw_loop_error error = tw_loop_init(&state.loop, NULL);
    if (error != tw_loop_ok) CONF_FAIL("scenario %s: tw_loop_init: %s", sc->name, tw_loop_error_name(error));
    for (uint32_t i = 0; i < sc->commands_count; i++) run_command(&sc->commands[i]);
    for (uint32_t i = 0; i < state.ops_count; i++) {
        if (!state.ops[i].done) {
            CONF_FAIL("scenario %s: operation %s (%s) is still pending at the end: the scenario "
                      "must wait for it, cancel it or close its socket",
                      sc->name, state.ops[i].name, verb_word(state.ops[i].verb));
        }
    }
    for (uint32_t i = 0; i < state.sockets_count; i++) {
        for (uint32_t j = 0; j < state.sockets[i].log_count; j++) {
            output_append("%s %s: %s\n", sc->name, state.sockets[i].name, state.sockets[i].log[j]);
        }
    }
    for (uint32_t j = 0; j < state.loop_log_count; j++) output_append("%s loop: %s\n", sc->name, state.loop_log[j]);
    scenario_cleanup();
}

/* The first run's output is the reference; every later run (the sim's other seeds, and
 * each seed's second run) must print the same, line for line. */
static void conformance_main(void *arg) {
    const conformance *conf = arg;
    output_size = 0;
    output[0] = '\0';
    for (uint32_t i = 0; i < conf->scenarios_count; i++) scenario_run(&conf->scenarios[i]);
    if (!reference_set) {
        memcpy(reference, output, output_size + 1);
        reference_set = true;
        return;
    }
    if (strcmp(reference, output) == 0) return;
    /* Name the first line that differs. */
    const char *a = reference;
    const char *b = output;
    uint32_t line = 1;
    for (;;) {
        const char *a_end = strchr(a, '\n');
        const char *b_end = strchr(b, '\n');
        size_t a_size = a_end != NULL ? (size_t)(a_end - a) : strlen(a);
        size_t b_size = b_end != NULL ? (size_t)(b_end - b) : strlen(b);
        if (a_size != b_size || memcmp(a, b, a_size) != 0 || a_end == NULL || b_end == NULL) {
            CONF_FAIL("this run's outcome differs from the first run's at line %u: first run '%.*s', "
                      "this run '%.*s'",
                      line, (int)a_size, a, (int)b_size, b);
        }
        a = a_end + 1;
        b = b_end + 1;
        line++;
    }
}

/* ---- parsing (outside any world) ------------------------------------------------------ */

static int parse_error(const scenario *sc, uint32_t line, const char *what, const char *value) {
    fprintf(stderr, "conformance: %s:%u: %s '%s'\n", sc->path, line, what, value);
    return 2;
}

static bool parse_count(const char *text, uint64_t max, uint64_t *value) {
    if (text[0] < '0' || text[0] > '9') return false;
    char *end = NULL;
    unsigned long long parsed = strtoull(text, &end, 10);
    if (*end != '\0' || parsed > max) return false;
    *value = parsed;
    return true;
}

typedef struct names {
    char sockets[TW_CONF_SOCKETS_MAX][TW_CONF_NAME_SIZE];
    uint32_t sockets_count;
    char ops[TW_CONF_OPS_MAX][TW_CONF_NAME_SIZE];
    conf_verb op_verbs[TW_CONF_OPS_MAX];
    uint32_t ops_count;
} names;

static int name_index(char list[][TW_CONF_NAME_SIZE], uint32_t count, const char *name) {
    for (uint32_t i = 0; i < count; i++) {
        if (strcmp(list[i], name) == 0) return (int)i;
    }
    return -1;
}

static bool socket_name_add(names *n, const char *name) {
    if (name_index(n->sockets, n->sockets_count, name) >= 0) return true;
    if (n->sockets_count == TW_CONF_SOCKETS_MAX) return false;
    snprintf(n->sockets[n->sockets_count++], TW_CONF_NAME_SIZE, "%s", name);
    return true;
}

static int parse_command(scenario *sc, names *n, uint32_t line, char *text) {
    char *words[TW_CONF_ARGS_MAX + 2];
    uint32_t count = 0;
    for (char *word = strtok(text, " \t\r"); word != NULL; word = strtok(NULL, " \t\r")) {
        if (count == TW_CONF_ARGS_MAX + 1) return parse_error(sc, line, "too many words (at most 9) at", word);
        words[count++] = word;
    }
    if (count == 0) return 0;
    const verb_spec *spec = NULL;
    for (size_t i = 0; i < sizeof(verb_specs) / sizeof(verb_specs[0]); i++) {
        if (strcmp(verb_specs[i].word, words[0]) == 0) spec = &verb_specs[i];
    }
    if (spec == NULL) {
        return parse_error(sc, line, "unknown command (accepted: listen open port sndbuf connect accept "
                           "recv read send write shutdown close timer cancel wait pending)", words[0]);
    }
    uint32_t argc = count - 1;
    if ((spec->many && argc == 0) || (!spec->many && argc != spec->args)) {
        fprintf(stderr, "conformance: %s:%u: %s takes %s%u words, got %u\n", sc->path, line,
                spec->word, spec->many ? "at least " : "", spec->many ? 1u : spec->args, argc);
        return 2;
    }
    if (sc->commands_count == TW_CONF_COMMANDS_MAX) return parse_error(sc, line, "too many commands at", words[0]);
    command *cmd = &sc->commands[sc->commands_count++];
    memset(cmd, 0, sizeof(*cmd));
    cmd->verb = spec->verb;
    cmd->line = line;
    cmd->argc = argc;
    for (uint32_t i = 0; i < argc; i++) {
        if (strlen(words[i + 1]) >= TW_CONF_NAME_SIZE) {
            return parse_error(sc, line, "a name or number longer than 15 characters", words[i + 1]);
        }
        snprintf(cmd->args[i], TW_CONF_NAME_SIZE, "%s", words[i + 1]);
    }
    if (spec->starts_op) {
        if (name_index(n->ops, n->ops_count, cmd->args[0]) >= 0) {
            return parse_error(sc, line, "an operation name used twice", cmd->args[0]);
        }
        if (n->ops_count == TW_CONF_OPS_MAX) return parse_error(sc, line, "too many operations at", cmd->args[0]);
        n->op_verbs[n->ops_count] = spec->verb;
        snprintf(n->ops[n->ops_count++], TW_CONF_NAME_SIZE, "%s", cmd->args[0]);
    }
    switch (spec->verb) {
    case verb_listen:
    case verb_open:
    case verb_port:
        if (!socket_name_add(n, cmd->args[0])) return parse_error(sc, line, "too many sockets at", cmd->args[0]);
        break;
    case verb_sndbuf:
        if (!parse_count(cmd->args[1], UINT32_MAX, &cmd->number)) {
            return parse_error(sc, line, "sndbuf takes a byte count, not", cmd->args[1]);
        }
        if (name_index(n->sockets, n->sockets_count, cmd->args[0]) < 0 && !socket_name_add(n, cmd->args[0])) {
            return parse_error(sc, line, "too many sockets at", cmd->args[0]);
        }
        break;
    case verb_connect:
        if (name_index(n->sockets, n->sockets_count, cmd->args[2]) < 0) {
            return parse_error(sc, line, "connect: no listener or port named", cmd->args[2]);
        }
        if (!socket_name_add(n, cmd->args[1])) return parse_error(sc, line, "too many sockets at", cmd->args[1]);
        break;
    case verb_accept:
        if (name_index(n->sockets, n->sockets_count, cmd->args[1]) < 0) {
            return parse_error(sc, line, "accept: no listener named", cmd->args[1]);
        }
        if (name_index(n->sockets, n->sockets_count, cmd->args[2]) >= 0) {
            return parse_error(sc, line, "accept: the accepted socket needs a new name, not", cmd->args[2]);
        }
        if (!socket_name_add(n, cmd->args[2])) return parse_error(sc, line, "too many sockets at", cmd->args[2]);
        break;
    case verb_recv:
    case verb_read:
    case verb_send:
    case verb_write: {
        uint64_t max = spec->verb == verb_recv ? TW_CONF_RECV_SIZE_MAX
                       : spec->verb == verb_read ? UINT64_MAX / 2
                                                 : TW_CONF_STREAM_WRITE_MAX;
        if (!parse_count(cmd->args[2], max, &cmd->number) || cmd->number == 0) {
            fprintf(stderr, "conformance: %s:%u: %s takes a byte count from 1 to %" PRIu64 ", not '%s'\n",
                    sc->path, line, spec->word, max, cmd->args[2]);
            return 2;
        }
    }
        /* fall through */
    case verb_shutdown:
    case verb_close:
        if (name_index(n->sockets, n->sockets_count, cmd->args[1]) < 0) {
            return parse_error(sc, line, "no socket named", cmd->args[1]);
        }
        break;
    case verb_timer:
        if (!parse_count(cmd->args[1], 3600u * 1000u, &cmd->number)) {
            return parse_error(sc, line, "timer takes milliseconds (0..3600000), not", cmd->args[1]);
        }
        break;
    case verb_cancel:
        if (name_index(n->ops, n->ops_count - 1, cmd->args[1]) < 0) {
            return parse_error(sc, line, "cancel: no operation started before it named", cmd->args[1]);
        }
        break;
    case verb_wait:
    case verb_pending:
        for (uint32_t i = 0; i < argc; i++) {
            if (name_index(n->ops, n->ops_count, cmd->args[i]) < 0) {
                return parse_error(sc, line, "no operation started before it named", cmd->args[i]);
            }
        }
        break;
    }
    return 0;
}

static int parse_file(const char *path, scenario *sc) {
    memset(sc, 0, sizeof(*sc));
    snprintf(sc->path, sizeof(sc->path), "%s", path);
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    snprintf(sc->name, sizeof(sc->name), "%s", base);
    char *dot = strrchr(sc->name, '.');
    if (dot == NULL || strcmp(dot, ".scn") != 0) {
        fprintf(stderr, "conformance: a scenario file's name ends in .scn, not '%s'\n", path);
        return 2;
    }
    *dot = '\0';
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        fprintf(stderr, "conformance: cannot open scenario '%s'\n", path);
        return 2;
    }
    names n;
    memset(&n, 0, sizeof(n));
    char text[512];
    uint32_t line = 0;
    int rc = 0;
    while (rc == 0 && fgets(text, sizeof(text), file) != NULL) {
        line++;
        char *hash = strchr(text, '#');
        if (hash != NULL) *hash = '\0';
        char *newline = strchr(text, '\n');
        if (newline != NULL) *newline = '\0';
        rc = parse_command(sc, &n, line, text);
    }
    fclose(file);
    if (rc == 0 && sc->commands_count == 0) {
        fprintf(stderr, "conformance: %s: no commands\n", path);
        rc = 2;
    }
    return rc;
}

static conformance conf;

static void *prepare(tw_test_build build) {
    (void)build;
    return &conf;
}

int main(int argc, char **argv) {
    const char *out_path = NULL;
    int runner_argc = 1;
    char *runner_argv[16] = {argv[0]};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out_path = argv[++i];
        } else if (strcmp(argv[i], "--") == 0) {
            for (i++; i < argc && runner_argc < 15; i++) runner_argv[runner_argc++] = argv[i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "conformance: unknown flag '%s'\nusage: %s [--out FILE] SCENARIO.scn... "
                    "[-- RUNNER FLAGS]\n", argv[i], argv[0]);
            return 2;
        } else {
            if (conf.scenarios_count == TW_CONF_SCENARIOS_MAX) {
                fprintf(stderr, "conformance: at most %u scenarios, got more\n", TW_CONF_SCENARIOS_MAX);
                return 2;
            }
            int rc = parse_file(argv[i], &conf.scenarios[conf.scenarios_count]);
            if (rc != 0) return rc;
            conf.scenarios_count++;
        }
    }
    if (conf.scenarios_count == 0) {
        fprintf(stderr, "usage: %s [--out FILE] SCENARIO.scn... [-- RUNNER FLAGS]\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < sizeof(pattern); i++) pattern[i] = pattern_at(i);
    runner_argv[runner_argc] = NULL;
    /* The real runner runs the case once; the sim runner sweeps seeds, faults off. */
    tw_test_case test = {.name = "conformance", .prepare = prepare, .main_fn = conformance_main,
                         .sim_faults_off = true, .real_uses_io_uring = true};
    int rc = tw_test_main(runner_argc, runner_argv, &test);
    if (rc != 0) {
        /* The runner's repro line names its own flags only. */
        fprintf(stderr, "conformance: to reproduce, give the scenarios before the runner's flags: %s",
                argv[0]);
        for (uint32_t i = 0; i < conf.scenarios_count; i++) fprintf(stderr, " %s", conf.scenarios[i].path);
        fprintf(stderr, " -- FLAGS OF THE REPRO LINE\n");
        return rc;
    }
    if (!reference_set) return 1;
    FILE *out = stdout;
    if (out_path != NULL) {
        out = fopen(out_path, "w");
        if (out == NULL) {
            fprintf(stderr, "conformance: cannot write '%s'\n", out_path);
            return 2;
        }
    }
    fputs(reference, out);
    if (out != stdout) fclose(out);
    return 0;
}
