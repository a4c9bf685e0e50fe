/* twin harness: strict number parsing for the real-mode tools' flags and scripts. */
#ifndef TWIN_HARNESS_CLI_PARSE_H
#define TWIN_HARNESS_CLI_PARSE_H

#include <stdbool.h>
#include <stdint.h>

#include <twin/ledger.h>

/* A decimal number, the whole string, no sign, no spaces, at most max. */
bool tw_cli_parse_u64(const char *text, uint64_t max, uint64_t *value);
/* A decimal number below 2^128, the whole string, no sign. */
bool tw_cli_parse_u128(const char *text, tw_u128 *value);

#endif
