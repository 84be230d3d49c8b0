#include "train/cli/sampling_options.h"

#include "core/error.h"

int ct_sampling_options_read(const CtArgs *args, long default_max_tokens, double default_temperature,
                             double default_top_p, CtSamplingOptions *out) {
    long max_tokens, top_k, seed;
    double temperature, top_p;
    if (ct_args_get_long(args, "max-tokens", default_max_tokens, &max_tokens) ||
        ct_args_get_long(args, "top-k", 0, &top_k) || ct_args_get_long(args, "seed", 1337, &seed) ||
        ct_args_get_double(args, "temperature", default_temperature, &temperature) ||
        ct_args_get_double(args, "top-p", default_top_p, &top_p))
        return -1;
    if (max_tokens < 1) return ct_error_set("--max-tokens %ld: must be at least 1", max_tokens);
    if (temperature < 0) return ct_error_set("--temperature %g: must be 0 (greedy) or more", temperature);
    if (top_k < 0 || top_k > 0x7fffffff) return ct_error_set("--top-k %ld: must be 0 (off) or more", top_k);
    if (!(top_p > 0 && top_p <= 1)) return ct_error_set("--top-p %g: must be above 0 and at most 1 (1: off)", top_p);
    out->max_tokens = max_tokens;
    out->seed = seed;
    out->sampling = (CtSampling){(float)temperature, (int)top_k, (float)top_p};
    return 0;
}
