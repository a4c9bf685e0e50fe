/* twin fuzz: what every target shares (the plant from the environment, verbosity). */
#ifndef TWIN_FUZZ_COMMON_H
#define TWIN_FUZZ_COMMON_H

#include <stdbool.h>

/* TWIN_PLANT=NAME selects a planted bug in a *_planted target; elsewhere, or with a name
 * that is not a plant, it exits 2 with the names. */
void tw_fuzz_plant_from_env(void);
const char *tw_fuzz_plant_name(void); /* NULL: none */
/* TWIN_FUZZ_VERBOSE=1: a line per input (the replay program sets it for its runs). */
bool tw_fuzz_verbose(void);

#endif
