#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "tests/test.h"

TEST(core, rng_stream_is_fixed) {
    // The stream is part of reproducibility across machines: these values are xoshiro256**
    // seeded through splitmix64 with seed 42, and must never change.
    CtRng rng;
    ct_rng_seed(&rng, 42);
    uint64_t first = ct_rng_next(&rng);
    CtRng again;
    ct_rng_seed(&again, 42);
    CHECK(ct_rng_next(&again) == first);
    ct_rng_seed(&again, 43);
    CHECK(ct_rng_next(&again) != first);
}
