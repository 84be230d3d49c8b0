// A seedable, fast random number generator with the same stream on every platform:
// xoshiro256** (Blackman & Vigna), seeded through splitmix64. Integers and uniforms are
// bit-identical everywhere; normals go through libm's log/cos/sqrt.
// The state is a plain struct, so checkpoints save and restore it as four integers.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} CtRng;

void ct_rng_seed(CtRng *rng, uint64_t seed);
// An independent stream derived from (seed, stream): per rank, per thread, per epoch.
void ct_rng_seed_stream(CtRng *rng, uint64_t seed, uint64_t stream);
uint64_t ct_rng_next(CtRng *rng);
uint32_t ct_rng_below(CtRng *rng, uint32_t bound);  // uniform in [0, bound), unbiased; bound > 0
double ct_rng_uniform(CtRng *rng);                  // [0, 1), 53 random bits
float ct_rng_uniformf(CtRng *rng);                  // [0, 1), 24 random bits
double ct_rng_normal(CtRng *rng);                   // standard normal (Box-Muller)
void ct_rng_fill_normal(CtRng *rng, float *out, size_t n, float mean, float std);
void ct_rng_permutation(CtRng *rng, uint32_t *out, uint32_t n);  // Fisher-Yates over 0..n-1
