/* twin: PCG32 (XSH RR 64/32, O'Neill 2014) with independent streams.
 *
 * Hand-written because it is eight lines and the world calls it at every scheduling
 * decision: it must be inline and allocation-free; no Debian library packages PCG. */
#ifndef TWIN_PCG_H
#define TWIN_PCG_H

#include <stdint.h>

typedef struct tw_pcg32 {
    uint64_t state;
    uint64_t increment; /* odd; selects the stream */
} tw_pcg32;

#define TW_PCG32_MULTIPLIER 6364136223846793005ULL

/* The reference seeding: pcg32_srandom_r(initstate, initseq). */
void tw_pcg32_seed(tw_pcg32 *rng, uint64_t initstate, uint64_t initseq);

static inline uint32_t tw_pcg32_next(tw_pcg32 *rng) {
    uint64_t old = rng->state;
    rng->state = old * TW_PCG32_MULTIPLIER + rng->increment;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31u));
}

/* A uniform value in [0, bound), bound >= 1, without modulo bias (rejection as in the
 * reference pcg32_boundedrand_r). */
uint32_t tw_pcg32_bounded(tw_pcg32 *rng, uint32_t bound);

/* A uniform value in [0, bound), bound >= 1, for 64-bit bounds. */
uint64_t tw_pcg32_bounded64(tw_pcg32 *rng, uint64_t bound);

#endif
