#include <twin/assert.h>
#include <twin/pcg.h>

void tw_pcg32_seed(tw_pcg32 *rng, uint64_t initstate, uint64_t initseq) {
    TW_ASSERT(rng != NULL);
    rng->state = 0;
    rng->increment = (initseq << 1u) | 1u;
    (void)tw_pcg32_next(rng);
    rng->state += initstate;
    (void)tw_pcg32_next(rng);
    TW_ASSERT((rng->increment & 1u) == 1u);
}

uint32_t tw_pcg32_bounded(tw_pcg32 *rng, uint32_t bound) {
    TW_ASSERT(bound >= 1);
    /* Reject the low values that would make some results more likely: 2^32 mod bound. */
    uint32_t threshold = (uint32_t)(-bound) % bound;
    for (;;) {
        uint32_t value = tw_pcg32_next(rng);
        if (value >= threshold) return value % bound;
    }
}

uint64_t tw_pcg32_bounded64(tw_pcg32 *rng, uint64_t bound) {
    TW_ASSERT(bound >= 1);
    if (bound <= UINT32_MAX) return tw_pcg32_bounded(rng, (uint32_t)bound);
    uint64_t threshold = (uint64_t)(-bound) % bound;
    for (;;) {
        uint64_t value = ((uint64_t)tw_pcg32_next(rng) << 32) | tw_pcg32_next(rng);
        if (value >= threshold) return value % bound;
    }
}
