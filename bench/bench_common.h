/* Shared by the benchmark programs (the ping-pong and pool peers): checks that stay on,
 * the program name in messages, bad-flag reporting, integer flags and the clock. */
#ifndef TWIN_BENCH_COMMON_H
#define TWIN_BENCH_COMMON_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Set by main() before anything else; the prefix of every message. */
static const char *bench_prog = "twin-bench";

/* Assert-style checks that stay on regardless of NDEBUG. */
#define BENCH_CHECK(cond)                                                                \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s: check failed: %s (%s:%d)\n", bench_prog, #cond,         \
                    __FILE__, __LINE__);                                                 \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

/* For system calls that return -1 and set errno. */
#define BENCH_CHECK_SYS(expr, name)                                                      \
    do {                                                                                 \
        if ((expr) < 0) {                                                                \
            int bench_err_ = errno;                                                      \
            fprintf(stderr, "%s: %s failed: %s\n", bench_prog, (name), strerror(bench_err_)); \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

/* For pthread-style calls that return an error number (0 = success). */
#define BENCH_CHECK_ERRNUM(expr, name)                                                   \
    do {                                                                                 \
        int bench_rc_ = (expr);                                                          \
        if (bench_rc_ != 0) {                                                            \
            fprintf(stderr, "%s: %s failed: %s\n", bench_prog, (name), strerror(bench_rc_)); \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

static inline _Noreturn void bench_fail(const char *what) {
    fprintf(stderr, "%s: %s\n", bench_prog, what);
    exit(1);
}

/* The problem, what is accepted, the usage line; exit 2. */
static inline _Noreturn void bench_bad_flag_v(const char *accepted, const char *usage,
                                              const char *format, va_list args) {
    fprintf(stderr, "%s: ", bench_prog);
    vfprintf(stderr, format, args);
    fprintf(stderr, "\naccepted: %s\nusage: %s %s\n", accepted, bench_prog, usage);
    exit(2);
}

/* A decimal integer in [min, max]; the whole string must be digits. */
static inline int bench_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
    if (s[0] < '0' || s[0] > '9') return 0; /* also rejects "", "-1", "+1", " 1" */
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) return 0;
    *out = (uint64_t)v;
    return 1;
}

typedef enum bench_flag_status {
    bench_flag_ok,
    bench_flag_help,     /* --help or -h */
    bench_flag_unknown,  /* argv[*i] is none of names */
    bench_flag_no_value, /* the last argument, with no value after it */
} bench_flag_status;

/* argv[*i] is a flag "--x V" or "--x=V" with --x one of names: sets *name and *value and
 * moves *i past a separate value. */
static inline bench_flag_status bench_next_flag(int argc, char **argv, int *i,
                                                const char *const *names, size_t names_count,
                                                const char **name, const char **value) {
    const char *arg = argv[*i];
    *name = NULL;
    *value = NULL;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) return bench_flag_help;
    for (size_t k = 0; k < names_count; k++) {
        size_t n = strlen(names[k]);
        if (strncmp(arg, names[k], n) != 0 || (arg[n] != '\0' && arg[n] != '=')) continue;
        *name = names[k];
        if (arg[n] == '=') {
            *value = arg + n + 1;
        } else if (*i + 1 < argc) {
            *value = argv[++*i];
        } else {
            return bench_flag_no_value;
        }
        return bench_flag_ok;
    }
    return bench_flag_unknown;
}

static inline uint64_t bench_now_ns(void) {
    struct timespec t;
    BENCH_CHECK_SYS(clock_gettime(CLOCK_MONOTONIC, &t), "clock_gettime");
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

#endif
