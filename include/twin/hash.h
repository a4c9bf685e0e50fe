/* twin: a 64-bit mixer (MurmurHash3's finaliser): every input bit reaches every output
 * bit, in a few cycles. For hash tables and the sim's trace hash; not for checksums
 * (those are XXH3, see proto.h). */
#ifndef TWIN_HASH_H
#define TWIN_HASH_H

#include <stdint.h>

static inline uint64_t tw_mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

#endif
