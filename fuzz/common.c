/* twin fuzz: what every target shares (see common.h). */
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twin/assert.h>
#include <twin/sim.h>

#include "twin_test.h"

static const char *plant_name;

void tw_fuzz_plant_from_env(void) {
    const char *name = getenv("TWIN_PLANT");
    if (name == NULL || name[0] == '\0' || strcmp(name, "none") == 0) return;
    if (!tw_test_plant_select(name)) {
        fprintf(stderr, "fuzz: TWIN_PLANT=%s: not a planted bug of this binary; the planted "
                        "binaries (fuzz_simulator_planted) take one of: %s\n",
                name, tw_test_plant_names());
        exit(2);
    }
    plant_name = name;
}

const char *tw_fuzz_plant_name(void) { return plant_name; }

bool tw_fuzz_verbose(void) {
    const char *verbose = getenv("TWIN_FUZZ_VERBOSE");
    return verbose != NULL && strcmp(verbose, "1") == 0;
}

#define FUZZ_FAILURE_TEXT_SIZE 1024u
static char failure_text[FUZZ_FAILURE_TEXT_SIZE]; /* tw_sim_fail keeps the pointer */

void tw_fuzz_fail(const char *format, ...) {
    TW_ASSERT(format != NULL);
    va_list args;
    va_start(args, format);
    (void)vsnprintf(failure_text, sizeof(failure_text), format, args);
    va_end(args);
    if (tw_sim_active()) tw_sim_fail(failure_text); /* the world reports it, with its repro */
    fprintf(stderr, "fuzz: failure: %s\n", failure_text); /* a target with no world (frames) */
    abort();
}
