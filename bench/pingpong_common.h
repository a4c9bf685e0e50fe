/* Shared helpers for the twin-pingpong-* peers (pingpong_blocking.c, pingpong_libuv.c):
 * always-on checks, flag parsing, the 5-byte message matcher, timing and the result line.
 * The benchmark mirrors libxev's ping-pong: a client and a server over TCP loopback
 * exchange "PING\n" / "PONG\n" with exactly one ping outstanding at a time. */
#ifndef TWIN_BENCH_PINGPONG_COMMON_H
#define TWIN_BENCH_PINGPONG_COMMON_H

#include <errno.h>

#include "bench_common.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PP_MSG_LEN 5u
#define PP_PING "PING\n"
#define PP_PONG "PONG\n"
#define PP_ADDR "127.0.0.1"
#define PP_PORT_DEFAULT 3131u
#define PP_COUNT_DEFAULT 500000u

/* ---- flags ---- */
enum pp_layout { PP_LAYOUT_THREADS, PP_LAYOUT_SINGLE };

struct pp_opts {
    uint64_t count;
    unsigned port;
    enum pp_layout layout;
};

#define PP_USAGE "[--count N] [--port P] [--layout threads|single]"

static inline void pp_usage(FILE *f) { fprintf(f, "usage: %s %s\n", bench_prog, PP_USAGE); }

static inline _Noreturn void pp_bad_flag(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static inline _Noreturn void pp_bad_flag(const char *fmt, ...) {
    char accepted[256];
    snprintf(accepted, sizeof(accepted), "--count N (integer >= 1, default %u), --port P (1..65535, default %u),"
            " --layout threads|single (default threads); --flag=value also accepted",
            PP_COUNT_DEFAULT, PP_PORT_DEFAULT);
    va_list ap;
    va_start(ap, fmt);
    bench_bad_flag_v(accepted, PP_USAGE, fmt, ap);
}


static inline struct pp_opts pp_parse_args(int argc, char **argv) {
    struct pp_opts o = {PP_COUNT_DEFAULT, PP_PORT_DEFAULT, PP_LAYOUT_THREADS};
    for (int i = 1; i < argc; i++) {
        static const char *const names[] = {"--count", "--port", "--layout"};
        const char *name = NULL;
        const char *val = NULL;
        switch (bench_next_flag(argc, argv, &i, names, sizeof names / sizeof names[0], &name, &val)) {
        case bench_flag_help:
            pp_usage(stdout);
            exit(0);
        case bench_flag_unknown: pp_bad_flag("unknown flag '%s'", argv[i]);
        case bench_flag_no_value: pp_bad_flag("flag %s needs a value", name);
        case bench_flag_ok: break;
        }
        uint64_t v = 0;
        if (strcmp(name, "--count") == 0) {
            if (!bench_parse_u64(val, 1, UINT64_MAX, &v))
                pp_bad_flag("bad value for --count: '%s' (want an integer >= 1)", val);
            o.count = v;
        } else if (strcmp(name, "--port") == 0) {
            if (!bench_parse_u64(val, 1, 65535, &v))
                pp_bad_flag("bad value for --port: '%s' (want an integer in 1..65535)", val);
            o.port = (unsigned)v;
        } else {
            if (strcmp(val, "threads") == 0) {
                o.layout = PP_LAYOUT_THREADS;
            } else if (strcmp(val, "single") == 0) {
                o.layout = PP_LAYOUT_SINGLE;
            } else {
                pp_bad_flag("bad value for --layout: '%s' (want threads or single)", val);
            }
        }
    }
    return o;
}

static inline const char *pp_layout_name(enum pp_layout l) {
    return l == PP_LAYOUT_SINGLE ? "single" : "threads";
}

/* ---- the 5-byte message matcher (reads may split or join messages) ---- */
struct pp_matcher {
    const char *msg; /* PP_PING or PP_PONG */
    unsigned pos;    /* bytes of msg matched so far */
};

/* Feed one byte: 1 = a whole message just completed, 0 = in progress, -1 = wrong byte. */
static inline int pp_match_byte(struct pp_matcher *m, char c) {
    if (c != m->msg[m->pos]) return -1;
    if (++m->pos < PP_MSG_LEN) return 0;
    m->pos = 0;
    return 1;
}

static inline _Noreturn void pp_protocol_error(const char *side, const struct pp_matcher *m,
                                               char c) {
    fprintf(stderr, "%s: %s: protocol error: got byte 0x%02x at offset %u of \"%.4s\\n\"\n",
            bench_prog, side, (unsigned)(unsigned char)c, m->pos, m->msg);
    exit(1);
}

/* ---- timing and output ---- */

static inline void pp_report(const char *impl, const struct pp_opts *o, uint64_t start_ns,
                             uint64_t end_ns) {
    double seconds = (double)(end_ns - start_ns) / 1e9;
    double rate = seconds > 0 ? (double)o->count / seconds : 0.0;
    printf("pingpong: impl=%s layout=%s roundtrips=%llu seconds=%.6f roundtrips_per_s=%.1f\n",
           impl, pp_layout_name(o->layout), (unsigned long long)o->count, seconds, rate);
    BENCH_CHECK(fflush(stdout) == 0);
}

#endif /* TWIN_BENCH_PINGPONG_COMMON_H */
