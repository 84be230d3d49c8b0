// RoPE scaling as transformers computes it. See train/model/rope_scaling.h. Every line follows
// modeling_rope_utils.py: float32 where torch computes on tensors (a Python number meeting a
// float32 tensor is rounded to float first), double where it computes in Python.
#include "train/model/rope_scaling.h"

#include <math.h>

#define PI 3.141592653589793  // math.pi

// base ** (arange(0, dim, 2).float() / dim) in float32: the exponent rounded to float, the power
// correctly rounded (as kernels/rope_table.c's ct_rope_default, so unscaled tables agree).
static float base_power(float base, int i, int dim) {
    return (float)pow((double)base, (double)((float)(2 * i) / (float)dim));
}

static void rope_default(float *inv_freq, float theta, int dim) {
    for (int i = 0; i < dim / 2; i++) inv_freq[i] = 1.0f / base_power(theta, i, dim);
}

// _compute_dynamic_ntk_parameters: the base grows with the pass's length past max_position.
// dynamic_rope_update hands it the length as a tensor, so the new base is a float32 tensor.
static void rope_dynamic(float *inv_freq, float theta, const CtRopeScaling *s, int dim, int max_position, int seq_len) {
    const int len = seq_len > max_position ? seq_len : max_position;
    const float grown = (float)s->factor * (float)len / (float)max_position - (float)((double)s->factor - 1);
    const float base = theta * (float)pow((double)grown, (double)(float)((double)dim / (dim - 2)));
    rope_default(inv_freq, base, dim);
}

static double yarn_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * log(scale) + 1.0; }

// find_correction_dim: the dimension that turns num_rotations times over max_position.
static double yarn_correction_dim(double num_rotations, int dim, double base, int max_position) {
    return (dim * log(max_position / (num_rotations * 2 * PI))) / (2 * log(base));
}

// _compute_yarn_parameters: interpolation (÷ factor) for the slow dimensions, extrapolation for
// the fast ones, a linear ramp between the correction range's bounds.
static void rope_yarn(float *inv_freq, float *attention_factor, float theta, const CtRopeScaling *s, int dim) {
    const double factor = s->factor;
    if (s->attention_factor > 0)
        *attention_factor = s->attention_factor;
    else if (s->mscale != 0 && s->mscale_all_dim != 0)
        *attention_factor = (float)(yarn_mscale(factor, s->mscale) / yarn_mscale(factor, s->mscale_all_dim));
    else
        *attention_factor = (float)yarn_mscale(factor, 1);
    const double beta_fast = s->beta_fast != 0 ? s->beta_fast : 32, beta_slow = s->beta_slow != 0 ? s->beta_slow : 1;
    double low = yarn_correction_dim(beta_fast, dim, theta, s->original_max_position);
    double high = yarn_correction_dim(beta_slow, dim, theta, s->original_max_position);
    if (s->truncate) {
        low = floor(low);
        high = ceil(high);
    }
    if (low < 0) low = 0;
    if (high > dim - 1) high = dim - 1;
    if (low == high) high += 0.001;  // as transformers: no zero-width ramp
    const float fmin = (float)low, range = (float)(high - low);
    for (int i = 0; i < dim / 2; i++) {
        const float pos_freq = base_power(theta, i, dim);
        const float extrapolation = 1.0f / pos_freq, interpolation = 1.0f / ((float)factor * pos_freq);
        float ramp = ((float)i - fmin) / range;
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        const float extrapolation_factor = 1.0f - ramp;
        inv_freq[i] = interpolation * (1.0f - extrapolation_factor) + extrapolation * extrapolation_factor;
    }
}

// _compute_llama3_parameters: low frequencies ÷ factor, high ones kept, a smooth blend between.
static void rope_llama3(float *inv_freq, float theta, const CtRopeScaling *s, int dim) {
    const float factor = s->factor, low_ff = s->low_freq_factor;
    const double old_context = s->original_max_position;
    const float low_wavelen = (float)(old_context / s->low_freq_factor);
    const float high_wavelen = (float)(old_context / s->high_freq_factor);
    const float ff_range = (float)((double)s->high_freq_factor - (double)s->low_freq_factor);
    rope_default(inv_freq, theta, dim);
    for (int i = 0; i < dim / 2; i++) {
        const float wavelen = (float)(2 * PI) / inv_freq[i];
        const float llama = wavelen > low_wavelen ? inv_freq[i] / factor : inv_freq[i];
        const float smooth = ((float)old_context / wavelen - low_ff) / ff_range;
        const float smoothed = (1.0f - smooth) * llama / factor + smooth * llama;
        const int medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
        inv_freq[i] = medium ? smoothed : llama;
    }
}

void ct_rope_inv_freq(float *inv_freq, float *attention_factor, float theta, const CtRopeScaling *scaling, int HD,
                      int max_position, int seq_len) {
    *attention_factor = 1.0f;
    switch (scaling->type) {
    case CT_ROPE_DEFAULT: rope_default(inv_freq, theta, HD); break;
    case CT_ROPE_LINEAR:
        rope_default(inv_freq, theta, HD);
        for (int i = 0; i < HD / 2; i++) inv_freq[i] /= scaling->factor;
        break;
    case CT_ROPE_DYNAMIC: rope_dynamic(inv_freq, theta, scaling, HD, max_position, seq_len); break;
    case CT_ROPE_YARN: rope_yarn(inv_freq, attention_factor, theta, scaling, HD); break;
    case CT_ROPE_LLAMA3: rope_llama3(inv_freq, theta, scaling, HD); break;
    }
}

void ct_model_layer_inv_freq(const CtModelConfig *c, int layer, int seq_len, float *inv_freq, float *attention_factor) {
    const int HD = ct_model_head_dim(c);
    if (c->rope_local_theta > 0 && ct_model_layer_slides(c, layer)) {
        const CtRopeScaling none = {.type = CT_ROPE_DEFAULT};
        ct_rope_inv_freq(inv_freq, attention_factor, c->rope_local_theta, &none, HD, c->max_seq_len, seq_len);
        return;
    }
    // dynamic's max_position_embeddings: the original length, or the model's when unset
    const int max_position = c->rope_scaling.original_max_position > 0 ? c->rope_scaling.original_max_position
                                                                       : c->max_seq_len;
    ct_rope_inv_freq(inv_freq, attention_factor, c->rope_theta, &c->rope_scaling, HD, max_position, seq_len);
}
