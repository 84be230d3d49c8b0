// The sampling options `generate` and `chat` share (--max-tokens, --temperature, --top-k,
// --top-p, --seed), read and checked one by one, so a bad value gets a line that names its
// option, the value given and the allowed range.
#pragma once
#include "core/args.h"
#include "train/model/generate.h"

typedef struct {
    long max_tokens, seed;
    CtSampling sampling;
} CtSamplingOptions;

// defaults: what each option is when absent (max_tokens, temperature, top_p; top-k 0, seed 1337).
// 0, or -1 + error naming the option.
int ct_sampling_options_read(const CtArgs *args, long default_max_tokens, double default_temperature,
                             double default_top_p, CtSamplingOptions *out);
