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

/* A tool's name and usage text, for its flag errors. */
typedef struct tw_cli {
    const char *program;
    const char *usage;
} tw_cli;

/* One line on stderr, "PROGRAM: " and what was wrong, then the usage; returns 2, the exit
 * code for bad usage. */
int tw_cli_usage_error(const tw_cli *cli, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* A flag taking an integer in [low, high]: into *out, or false with *exit_code set by
 * tw_cli_usage_error naming the flag, the range and the value. */
bool tw_cli_parse_u32(const tw_cli *cli, const char *flag, const char *value, uint32_t low,
                      uint32_t high, uint32_t *out, int *exit_code);

#endif
