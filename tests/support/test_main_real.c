/* The real-build runner: the case runs once, on real threads. A failed TW_ASSERT aborts. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <twin/assert.h>

#include "twin_test.h"

int tw_test_main(int argc, char **argv, const tw_test_case *test) {
    TW_ASSERT(test != NULL && test->main_fn != NULL && test->prepare != NULL);
    if (argc > 1) {
        fprintf(stderr, "%s: the real build takes no flags (got '%s')\nusage: %s\n", test->name,
                argv[1], argv[0]);
        return 2;
    }
    void *arg = test->prepare(tw_test_build_real);
    uint64_t start_ns = tw_clock_monotonic_ns();
    test->main_fn(arg);
    uint64_t elapsed_ns = tw_clock_monotonic_ns() - start_ns;
    printf("%s: real: passed in %" PRIu64 " ms\n", test->name, elapsed_ns / 1000000u);
    return 0;
}
