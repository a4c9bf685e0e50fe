/* The real runner's hang watchdog (twin_test.h): a thread that checks, every
 * WATCHDOG_POLL_MS, how long the current phase has lasted; past the limit it prints the test,
 * the phase, and what each thread waits on (twin/real_waits.h), then exits
 * TW_TEST_EXIT_HANG at once (no atexit handlers: they could wait on the hung threads). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <twin/assert.h>
#include <twin/os.h>
#include <twin/real_waits.h>

#include "twin_test.h"

#define WATCHDOG_POLL_MS 100u
#define WATCHDOG_REPORT_SIZE 32768u
#define NS_PER_S ((uint64_t)1000000000u)

static const char *watchdog_test_name;
static uint64_t watchdog_limit_ns;
static const char *phase_current = "start"; /* atomic pointer */
static uint64_t phase_since_ns;            /* atomic */

void tw_test_phase(const char *phase) {
    TW_ASSERT(phase != NULL);
    __atomic_store_n(&phase_since_ns, tw_clock_monotonic_ns(), __ATOMIC_RELAXED);
    __atomic_store_n(&phase_current, phase, __ATOMIC_RELEASE);
}

static void *watchdog_main(void *unused) {
    (void)unused;
    TW_ASSERT(watchdog_test_name != NULL && watchdog_limit_ns > 0);
    static char report[WATCHDOG_REPORT_SIZE];
    for (;;) {
        struct timespec pause = {.tv_sec = 0, .tv_nsec = (long)WATCHDOG_POLL_MS * 1000000L};
        while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
        }
        const char *phase = __atomic_load_n(&phase_current, __ATOMIC_ACQUIRE);
        uint64_t since_ns = __atomic_load_n(&phase_since_ns, __ATOMIC_RELAXED);
        uint64_t now_ns = tw_clock_monotonic_ns();
        if (now_ns < since_ns || now_ns - since_ns <= watchdog_limit_ns) continue;
        tw_real_waits_describe(report, sizeof(report));
        fprintf(stderr,
                "%s: HANG: phase '%s' has lasted %" PRIu64 " s (the limit is %" PRIu64
                " s; TWIN_TEST_HANG_S sets another). What each thread waits on:\n%s",
                watchdog_test_name, phase, (now_ns - since_ns) / NS_PER_S, watchdog_limit_ns / NS_PER_S,
                report);
        fflush(stderr);
        _exit(TW_TEST_EXIT_HANG);
    }
    return NULL;
}

void tw_test_watchdog_start(const char *test_name) {
    TW_ASSERT(test_name != NULL);
    TW_ASSERT(watchdog_test_name == NULL); /* once per process */
    uint64_t limit_s = TW_TEST_HANG_S_DEFAULT;
    const char *text = getenv("TWIN_TEST_HANG_S");
    if (text != NULL && text[0] != '\0') {
        char *end = NULL;
        errno = 0;
        unsigned long long value = strtoull(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || value < 1 || value > TW_TEST_HANG_S_MAX) {
            fprintf(stderr, "%s: TWIN_TEST_HANG_S='%s' is not a number of seconds in 1..%u\n", test_name,
                    text, TW_TEST_HANG_S_MAX);
            exit(2);
        }
        limit_s = value;
    }
    watchdog_test_name = test_name;
    watchdog_limit_ns = limit_s * NS_PER_S;
    tw_test_phase("start");
    pthread_t thread;
    int rc = pthread_create(&thread, NULL, watchdog_main, NULL);
    TW_ASSERT_MSG(rc == 0, "the test watchdog's thread could not start");
    rc = pthread_detach(thread);
    TW_ASSERT(rc == 0);
}
