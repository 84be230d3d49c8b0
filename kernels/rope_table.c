// The plain RoPE frequency table (kernels/ops.h: CtRope), computed as transformers'
// _compute_default_rope_parameters does in float32: inv_freq = 1 / base^(arange(0, HD, 2)/HD).
#include <math.h>

#include "core/error.h"
#include "kernels/ops.h"

void ct_rope_default(CtRope *rope, float theta, int HD) {
    if (HD < 2 || HD % 2 != 0 || HD / 2 > CT_ROPE_MAX_PAIRS)
        CT_FATAL("RoPE needs an even head size of at most 2*CT_ROPE_MAX_PAIRS", "RoPE with head size %d", HD);
    rope->n_pairs = HD / 2;
    for (int i = 0; i < HD / 2; i++) {
        // the exponent (2i)/HD and the power are float32 in torch; the power correctly rounded
        const float exponent = (float)(2 * i) / (float)HD;
        const float power = (float)pow((double)theta, (double)exponent);
        rope->inv_freq[i] = 1.0f / power;
    }
    for (int i = HD / 2; i < CT_ROPE_MAX_PAIRS; i++) rope->inv_freq[i] = 0.0f;
    rope->attention_factor = 1.0f;
}
