/* PCG32 against the published reference (pcg32-demo: initstate 42, initseq 54), and the
 * bounded draw's range and rough uniformity. Pure code: the same in both builds. */
#include <stdio.h>

#include <twin/assert.h>
#include <twin/pcg.h>

#include "twin_test.h"

static void pcg_main(void *arg) {
    (void)arg;
    static const uint32_t expected[] = {0xa15c02b7u, 0x7b47f409u, 0xba1d3330u,
                                        0x83d2f293u, 0xbfa4784bu, 0xcbed606eu};
    tw_pcg32 rng;
    tw_pcg32_seed(&rng, 42u, 54u);
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        uint32_t value = tw_pcg32_next(&rng);
        TW_ASSERT_MSG(value == expected[i], "pcg32 differs from the reference vector");
    }
    /* Streams: another initseq gives another sequence from the same initstate. */
    tw_pcg32 other;
    tw_pcg32_seed(&other, 42u, 55u);
    tw_pcg32_seed(&rng, 42u, 54u);
    TW_ASSERT(tw_pcg32_next(&other) != tw_pcg32_next(&rng));

    /* Bounded draws stay in range and hit every value of a small range evenly. */
    enum { bound = 7, draws = 70000 };
    uint32_t counts[bound] = {0};
    for (int i = 0; i < draws; i++) {
        uint32_t value = tw_pcg32_bounded(&rng, bound);
        TW_ASSERT(value < bound);
        counts[value]++;
    }
    for (int i = 0; i < bound; i++) TW_ASSERT(counts[i] > 9000 && counts[i] < 11000);
    TW_ASSERT(tw_pcg32_bounded(&rng, 1) == 0);
    for (int i = 0; i < 1000; i++) {
        TW_ASSERT(tw_pcg32_bounded64(&rng, (1ULL << 40) + 3) < (1ULL << 40) + 3);
    }
    printf("pcg32: reference vector matched (6 outputs), bounded draws uniform\n");
}

static void *prepare(tw_test_build build) {
    (void)build;
    return NULL;
}

int main(int argc, char **argv) {
    tw_test_case test = {.name = "pcg", .prepare = prepare, .main_fn = pcg_main};
    return tw_test_main(argc, argv, &test);
}
