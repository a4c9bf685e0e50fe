#include <stddef.h>

#include "twin_test.h"

bool tw_test_plant_select(const char *name) {
    (void)name;
    return false;
}

const char *tw_test_plant_names(void) { return "(none: planted bugs live in the *_planted test binaries)"; }
