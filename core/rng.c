#include "core/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void ct_rng_seed(CtRng *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
}

void ct_rng_seed_stream(CtRng *rng, uint64_t seed, uint64_t stream) {
    uint64_t x = stream;
    ct_rng_seed(rng, seed ^ splitmix64(&x));
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ct_rng_next(CtRng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

// Lemire's multiply-and-reject: unbiased, and one multiplication in the common case.
uint32_t ct_rng_below(CtRng *rng, uint32_t bound) {
    uint64_t m = (uint64_t)(uint32_t)(ct_rng_next(rng) >> 32) * bound;
    uint32_t low = (uint32_t)m;
    if (low < bound) {
        uint32_t threshold = (uint32_t)(-bound) % bound;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(ct_rng_next(rng) >> 32) * bound;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

double ct_rng_uniform(CtRng *rng) { return (double)(ct_rng_next(rng) >> 11) * 0x1.0p-53; }

float ct_rng_uniformf(CtRng *rng) { return (float)(ct_rng_next(rng) >> 40) * 0x1.0p-24f; }

double ct_rng_normal(CtRng *rng) {
    double u1 = 1.0 - ct_rng_uniform(rng);  // (0, 1]: log is finite
    double u2 = ct_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void ct_rng_fill_normal(CtRng *rng, float *out, size_t n, float mean, float std) {
    for (size_t i = 0; i < n; i++) out[i] = mean + std * (float)ct_rng_normal(rng);
}

void ct_rng_permutation(CtRng *rng, uint32_t *out, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) out[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = ct_rng_below(rng, i);
        uint32_t t = out[i - 1];
        out[i - 1] = out[j];
        out[j] = t;
    }
}
