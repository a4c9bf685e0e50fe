/* The real-build runner: the case runs once, on real threads. A failed TW_ASSERT aborts; a
 * phase that lasts too long fails with the hang report (watchdog_real.c); a test that needs
 * io_uring where it is refused is skipped with the reason (exit TW_TEST_EXIT_SKIPPED). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/loop.h>

#include "twin_test.h"

int tw_test_main(int argc, char **argv, const tw_test_case *test) {
    TW_ASSERT(test != NULL && test->main_fn != NULL && test->prepare != NULL);
    if (argc > 1) {
        fprintf(stderr, "%s: the real build takes no flags (got '%s')\nusage: %s\n", test->name,
                argv[1], argv[0]);
        return 2;
    }
    if (test->real_uses_io_uring) {
        tw_loop *probe = NULL;
        tw_loop_error error = tw_loop_init(&probe, NULL);
        if (error == tw_loop_unsupported) {
            printf("%s: real: SKIPPED: %s\n", test->name, tw_loop_error_advice(error));
            return TW_TEST_EXIT_SKIPPED;
        }
        TW_ASSERT_MSG(error == tw_loop_ok, "the io_uring probe's loop could not start");
        tw_loop_deinit(probe);
    }
    tw_test_watchdog_start(test->name);
    void *arg = test->prepare(tw_test_build_real);
    tw_test_phase("the test body");
    uint64_t start_ns = tw_clock_monotonic_ns();
    test->main_fn(arg);
    uint64_t elapsed_ns = tw_clock_monotonic_ns() - start_ns;
    printf("%s: real: passed in %" PRIu64 " ms\n", test->name, elapsed_ns / 1000000u);
    return 0;
}
