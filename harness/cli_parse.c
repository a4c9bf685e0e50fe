/* twin harness: strict number parsing (see cli_parse.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>

#include <twin/assert.h>

#include "cli_parse.h"

/* A decimal number, the whole string, no sign, no spaces, at most max. */
bool tw_cli_parse_u64(const char *text, uint64_t max, uint64_t *value) {
    if (text == NULL || text[0] == '\0') return false;
    uint64_t result = 0;
    for (const char *c = text; *c != '\0'; c++) {
        if (*c < '0' || *c > '9') return false;
        uint64_t digit = (uint64_t)(*c - '0');
        if (digit > max || result > (max - digit) / 10) return false; /* no overflow past max */
        result = result * 10 + digit;
    }
    *value = result;
    return true;
}

/* A decimal number below 2^128, the whole string, no sign. */
bool tw_cli_parse_u128(const char *text, tw_u128 *value) {
    if (text == NULL || text[0] == '\0') return false;
    tw_u128 result = {0, 0};
    for (const char *c = text; *c != '\0'; c++) {
        if (*c < '0' || *c > '9') return false;
        uint32_t digit = (uint32_t)(*c - '0');
        /* result = result * 10 + digit, in 32-bit limbs, failing on a carry out. */
        uint32_t limbs[4] = {(uint32_t)result.low, (uint32_t)(result.low >> 32),
                             (uint32_t)result.high, (uint32_t)(result.high >> 32)};
        uint64_t carry = digit;
        for (int i = 0; i < 4; i++) {
            uint64_t product = (uint64_t)limbs[i] * 10u + carry;
            limbs[i] = (uint32_t)product;
            carry = product >> 32;
        }
        if (carry != 0) return false;
        result.low = (uint64_t)limbs[0] | ((uint64_t)limbs[1] << 32);
        result.high = (uint64_t)limbs[2] | ((uint64_t)limbs[3] << 32);
    }
    *value = result;
    return true;
}

int tw_cli_usage_error(const tw_cli *cli, const char *format, ...) {
    TW_ASSERT(cli != NULL && cli->program != NULL && cli->usage != NULL);
    va_list arguments;
    va_start(arguments, format);
    fprintf(stderr, "%s: ", cli->program);
    vfprintf(stderr, format, arguments);
    va_end(arguments);
    fprintf(stderr, "\n%s", cli->usage);
    return 2;
}

bool tw_cli_parse_u32(const tw_cli *cli, const char *flag, const char *value, uint32_t low,
                      uint32_t high, uint32_t *out, int *exit_code) {
    TW_ASSERT(flag != NULL && value != NULL && out != NULL && exit_code != NULL);
    TW_ASSERT(low <= high);
    uint64_t parsed = 0;
    if (!tw_cli_parse_u64(value, high, &parsed) || parsed < low) {
        *exit_code = tw_cli_usage_error(cli, "%s takes an integer %" PRIu32 "..%" PRIu32 ", not '%s'",
                                        flag, low, high, value);
        return false;
    }
    *out = (uint32_t)parsed;
    return true;
}
