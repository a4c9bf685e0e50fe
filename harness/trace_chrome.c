/* twin harness: a run's trace as Chrome trace-event JSON (see trace_chrome.h). */
#include "trace_chrome.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <twin/assert.h>

/* Track ids: fibers in one process, connections in another, nodes in a third. */
#define TRACE_PID_FIBERS 1
#define TRACE_PID_CONNECTIONS 2
#define TRACE_PID_NODES 3
#define TRACE_PID_WORLD 4
#define TRACE_FIBERS_NAMED_MAX 4096u
#define TRACE_CONNECTIONS_MAX 65536u

typedef struct writer {
    FILE *file;
    bool first;
    uint64_t events;
} writer;

static void event_begin(writer *w) {
    fputs(w->first ? "\n" : ",\n", w->file);
    w->first = false;
    w->events++;
}

/* A JSON string: the names here are C identifiers and plain words, but escape anyway. */
static void put_string(FILE *file, const char *text) {
    fputc('"', file);
    for (const char *c = text; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\') fputc('\\', file);
        if ((unsigned char)*c < 0x20) continue;
        fputc(*c, file);
    }
    fputc('"', file);
}

static void metadata(writer *w, int pid, uint64_t tid, const char *what, const char *name) {
    event_begin(w);
    fprintf(w->file, "{\"ph\":\"M\",\"pid\":%d,\"tid\":%" PRIu64 ",\"name\":\"%s\",\"args\":{\"name\":",
            pid, tid, what);
    put_string(w->file, name);
    fputs("}}", w->file);
}

/* An instant event at step (1 µs per scheduling step: the time axis is the run's order). */
static void instant(writer *w, int pid, uint64_t tid, uint64_t step, const char *category,
                    const char *name, uint64_t virtual_ns, const char *args_format, ...)
    __attribute__((format(printf, 8, 9)));
static void instant(writer *w, int pid, uint64_t tid, uint64_t step, const char *category,
                    const char *name, uint64_t virtual_ns, const char *args_format, ...) {
    event_begin(w);
    fprintf(w->file,
            "{\"ph\":\"i\",\"s\":\"t\",\"pid\":%d,\"tid\":%" PRIu64 ",\"ts\":%" PRIu64
            ",\"cat\":\"%s\",\"name\":\"%s\",\"args\":{\"virtual_ns\":%" PRIu64,
            pid, tid, step, category, name, virtual_ns);
    if (args_format != NULL) {
        fputc(',', w->file);
        va_list args;
        va_start(args, args_format);
        vfprintf(w->file, args_format, args);
        va_end(args);
    }
    fputs("}}", w->file);
}

/* A fiber's running slice as one complete ("X") event: a viewer never has to pair a begin with
 * an end. A slice of zero steps (switched in and out at one step) is left out: viewers that
 * turn X events into begin/end pairs mis-nest them, and the fiber's instant events remain. */
typedef struct slice_open {
    uint64_t fiber; /* 0: none running */
    uint64_t step;
    uint64_t virtual_ns;
} slice_open;

static void slice_begin(slice_open *open, uint64_t fiber, uint64_t step, uint64_t virtual_ns) {
    TW_ASSERT(open->fiber == 0);
    TW_ASSERT(fiber != 0);
    *open = (slice_open){.fiber = fiber, .step = step, .virtual_ns = virtual_ns};
}

static void slice_end(writer *w, slice_open *open, uint64_t step, uint64_t virtual_ns) {
    TW_ASSERT(open->fiber != 0);
    TW_ASSERT(step >= open->step && virtual_ns >= open->virtual_ns);
    if (step == open->step) {
        open->fiber = 0;
        return;
    }
    event_begin(w);
    fprintf(w->file,
            "{\"ph\":\"X\",\"pid\":%d,\"tid\":%" PRIu64 ",\"ts\":%" PRIu64 ",\"dur\":%" PRIu64
            ",\"name\":\"running\",\"cat\":\"fiber\",\"args\":{\"virtual_ns\":%" PRIu64
            ",\"virtual_ns_end\":%" PRIu64 "}}",
            TRACE_PID_FIBERS, open->fiber, open->step, step - open->step, open->virtual_ns, virtual_ns);
    open->fiber = 0;
}

static const char *net_event_name(uint32_t kind) {
    switch ((tw_sim_net_event)kind) {
    case tw_sim_net_event_connect: return "connect";
    case tw_sim_net_event_accept: return "accept";
    case tw_sim_net_event_deliver: return "deliver";
    case tw_sim_net_event_reset: return "reset";
    case tw_sim_net_event_partition: return "partition";
    case tw_sim_net_event_heal: return "heal";
    case tw_sim_net_event_corrupt: return "bit flip";
    case tw_sim_net_event_close: return "close";
    case tw_sim_net_event_half_dead: return "half-dead";
    }
    return "network";
}

bool tw_trace_chrome_write(const tw_sim_trace *trace, const char *path, const char *title,
                           char *error, size_t error_size) {
    TW_ASSERT(trace != NULL && path != NULL && error != NULL);
    FILE *file = fopen(path, "w");
    if (file == NULL) {
        snprintf(error, error_size, "cannot write %s: %s", path, strerror(errno));
        return false;
    }
    writer w = {.file = file, .first = true};
    fputs("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"title\":", file);
    put_string(file, title != NULL ? title : "twin-sim");
    fputs(",\"time_axis\":\"1 us per scheduling step; virtual time in each event's args\"},"
          "\"traceEvents\":[", file);
    metadata(&w, TRACE_PID_FIBERS, 0, "process_name", "fibers (simulated threads)");
    metadata(&w, TRACE_PID_CONNECTIONS, 0, "process_name", "connections");
    metadata(&w, TRACE_PID_NODES, 0, "process_name", "nodes (loops)");
    metadata(&w, TRACE_PID_WORLD, 0, "process_name", "world");

    uint64_t virtual_ns = 0;
    uint64_t step = 0;
    slice_open running = {0};
    slice_begin(&running, 1, 0, 0); /* the main fiber runs first */
    static uint8_t connection_named[TRACE_CONNECTIONS_MAX];
    memset(connection_named, 0, sizeof(connection_named));
    for (size_t i = 0; i < trace->count; i++) {
        const tw_sim_trace_entry *e = &trace->entries[i];
        step = e->step;
        switch ((tw_sim_trace_kind)e->kind) {
        case tw_sim_trace_switch:
            if (running.fiber != 0) slice_end(&w, &running, step, virtual_ns);
            slice_begin(&running, e->b, step, virtual_ns);
            break;
        case tw_sim_trace_exit:
            if (running.fiber == e->a) slice_end(&w, &running, step, virtual_ns);
            instant(&w, TRACE_PID_FIBERS, e->a, step, "fiber", "exit", virtual_ns, NULL);
            break;
        case tw_sim_trace_spawn: {
            char name[96];
            snprintf(name, sizeof(name), "fiber %" PRIu64 " (%s)", e->b, e->file != NULL ? e->file : "-");
            metadata(&w, TRACE_PID_FIBERS, e->b, "thread_name", name);
            instant(&w, TRACE_PID_FIBERS, e->a, step, "fiber", "spawn", virtual_ns,
                    "\"child\":%" PRIu64, e->b);
            break;
        }
        case tw_sim_trace_clock:
            virtual_ns = e->a;
            instant(&w, TRACE_PID_WORLD, 1, step, "time", "clock", virtual_ns, NULL);
            break;
        case tw_sim_trace_futex_wait:
            instant(&w, TRACE_PID_FIBERS, e->a, step, "futex", "futex_wait", virtual_ns,
                    "\"expected\":%" PRIu64 ",\"result\":\"%s\"", e->b,
                    tw_os_result_name((tw_os_result)e->detail));
            break;
        case tw_sim_trace_futex_wake:
            if (e->b > 0) {
                instant(&w, TRACE_PID_FIBERS, e->a, step, "futex", "futex_wake", virtual_ns,
                        "\"woken\":%" PRIu64, e->b);
            }
            break;
        case tw_sim_trace_decision:
            /* A resource fault that struck (1 in N: the last value) is worth a mark; network
             * faults show as the connections' events, and the rest would bury the timeline. */
            if (e->detail == tw_sim_purpose_resources && e->b + 1 == e->a) {
                instant(&w, TRACE_PID_FIBERS, e->fiber, step, "fault", "resource fault", virtual_ns,
                        "\"bound\":%" PRIu64 ",\"value\":%" PRIu64 ",\"at\":\"%s:%" PRIu32 "\"",
                        e->a, e->b, e->file != NULL ? e->file : "?", e->line);
            }
            break;
        case tw_sim_trace_point: break; /* every atomic operation: the slices show them */
        case tw_sim_trace_net: {
            const char *name = net_event_name(e->detail);
            bool fault = e->detail == tw_sim_net_event_reset || e->detail == tw_sim_net_event_corrupt ||
                         e->detail == tw_sim_net_event_half_dead || e->detail == tw_sim_net_event_partition;
            if (e->detail == tw_sim_net_event_partition) {
                uint64_t a = e->a >> 32;
                uint64_t b = e->a & 0xffffffffu;
                instant(&w, TRACE_PID_NODES, a, step, "fault", name, virtual_ns,
                        "\"with_node\":%" PRIu64 ",\"duration_ns\":%" PRIu64, b, e->b);
                instant(&w, TRACE_PID_NODES, b, step, "fault", name, virtual_ns,
                        "\"with_node\":%" PRIu64 ",\"duration_ns\":%" PRIu64, a, e->b);
            } else if (e->detail == tw_sim_net_event_heal) {
                instant(&w, TRACE_PID_WORLD, 2, step, "network", name, virtual_ns, NULL);
            } else if (e->detail == tw_sim_net_event_connect || e->detail == tw_sim_net_event_close ||
                       e->detail == tw_sim_net_event_accept) {
                instant(&w, TRACE_PID_WORLD, 3, step, "network", name, virtual_ns,
                        "\"socket\":%" PRIu64 ",\"other\":%" PRIu64, e->a, e->b);
            } else {
                uint64_t connection = e->a;
                if (connection < TRACE_CONNECTIONS_MAX && !connection_named[connection]) {
                    char track[48];
                    snprintf(track, sizeof(track), "connection %" PRIu64, connection);
                    metadata(&w, TRACE_PID_CONNECTIONS, connection + 1, "thread_name", track);
                    connection_named[connection] = 1;
                }
                instant(&w, TRACE_PID_CONNECTIONS, connection + 1, step, fault ? "fault" : "network",
                        name, virtual_ns, "\"b\":%" PRIu64, e->b);
            }
            break;
        }
        }
    }
    if (running.fiber != 0) slice_end(&w, &running, step, virtual_ns);
    metadata(&w, TRACE_PID_WORLD, 1, "thread_name", "virtual clock");
    metadata(&w, TRACE_PID_WORLD, 2, "thread_name", "heal");
    metadata(&w, TRACE_PID_WORLD, 3, "thread_name", "connects and closes");
    fputs("\n]}\n", file);
    bool ok = ferror(file) == 0;
    if (fclose(file) != 0) ok = false;
    if (!ok) snprintf(error, error_size, "cannot write %s: %s", path, strerror(errno));
    if (ok && trace->truncated) {
        snprintf(error, error_size, "the trace was cut at %zu entries", trace->count);
    }
    return ok;
}
