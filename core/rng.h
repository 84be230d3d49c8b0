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

// The streams of ct_rng_seed_stream(rng, seed, stream): one range per use of a run's seed, so that
// no two uses draw the same numbers by accident. Changing one changes a run's numbers.
#define CT_RNG_STREAM_MODEL_INIT 0ull          // + tensor index: a new model's weights (train/model)
#define CT_RNG_STREAM_LORA_INIT 0x10A0000ull   // + adapter index: LoRA's A matrices (train/model/lora.c)
#define CT_RNG_STREAM_PEFT_INIT 0x9EF70000ull   // + tensor index: a prompt-learning adapter's (train/model/peft*.c)
#define CT_RNG_STREAM_DROPOUT 0xD50000000ull   // + step·65536 + micro-batch: its dropout seed (train/loop)
#define CT_RNG_STREAM_SAMPLES 0x5A4Dull        // the samples a run generates when it evaluates (train/loop)
#define CT_RNG_STREAM_ROUNDING 0ull            // + optimizer step: stochastic rounding's seed (optim/adamw.c)
#define CT_RNG_STREAM_HOLDOUT 0ull             // + document number: the sharder's validation draw (data/shard)
#define CT_RNG_STREAM_GRPO 0x6A70000000000ull  // + completion number: its sampling (train/objectives/grpo_sampler.c)
#define CT_RNG_STREAM_MLM 0x4D4C4D0000000000ull       // + step: its masks (train/objectives/mlm_mask.c)
#define CT_RNG_STREAM_MLM_EVAL 0x4D4C450000000000ull  // + validation batch: its fixed masks (train/objectives/mlm_mask.c)
// The data order's streams (data/loader): `what` 0 is an epoch's order of blocks or examples,
// g + 1 the shuffle of the windows of block group g.
static inline uint64_t ct_rng_data_stream(uint64_t epoch, uint64_t what) { return epoch * 0x100000000ull + what; }

// Dropout masks are a hash of (key, element) (kernels/ops.h's dropout keep rule); the key of each
// site of a forward is derived from the forward's dropout seed with these odd multipliers.
#define CT_DROPOUT_SITE_MIX 0xD1B54A32D192ED03ull          // seed ^ (site + 1)·mix (train/model/model_block.c)
#define CT_DROPOUT_LORA_SEED_MIX 0x100000001B3ull          // seed·this + (adapter + 1)·the next
#define CT_DROPOUT_LORA_ADAPTER_MIX 0xD6E8FEB86659FD93ull  // (train/model/lora.c)
