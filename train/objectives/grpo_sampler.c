#include "train/objectives/grpo_sampler.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

static int is_stop(const CtGrpoSampleOptions *o, int32_t id) {
    for (int i = 0; i < o->n_stop; i++)
        if (o->stop[i] == id) return 1;
    return 0;
}

// H(softmax(logits/τ)) = log Z − Σ p·z/τ, computed around the largest logit.
static double entropy_at(const float *logits, int V, float tau) {
    float top = logits[0];
    for (int v = 1; v < V; v++) top = logits[v] > top ? logits[v] : top;
    double z = 0, pz = 0;
    for (int v = 0; v < V; v++) {
        double s = ((double)logits[v] - top) / tau, e = exp(s);
        z += e;
        pz += e * s;
    }
    return log(z) - pz / z;
}

void ct_grpo_sample_group(CtGenerator *gen, const int32_t *prompt, int n, int G, const CtGrpoSampleOptions *o,
                          uint64_t seed, uint64_t first, const CtGrpoCompletions *out) {
    CT_CHECK(n >= 1 && n + o->max_len <= gen->max_ctx, "a GRPO prompt and its completion must fit the cache");
    const int V = gen->model->config.vocab_size;
    const float tau = o->sampling.temperature;
    ct_generator_reset(gen);
    const float *logits = NULL;
    logits = ct_generator_feed_prompt(gen, prompt, n);  // the prompt in one pass
    float *after_prompt = ct_alloc(sizeof(float) * (size_t)V);  // every completion's first distribution
    memcpy(after_prompt, logits, sizeof(float) * (size_t)V);
    for (int g = 0; g < G; g++) {
        CtRng rng;
        ct_rng_seed_stream(&rng, seed, CT_RNG_STREAM_GRPO + first + (uint64_t)g);
        gen->n_ctx = n;  // back to the prompt: later positions of the cache are written anew
        int32_t *tokens = out->tokens + (size_t)g * o->max_len;
        double entropy = 0;
        int len = 0, stopped = 0;
        logits = after_prompt;
        while (len < o->max_len) {
            if (tau > 0) entropy += entropy_at(logits, V, tau);
            int32_t next = ct_sample(logits, V, &o->sampling, &rng);
            tokens[len++] = next;
            if (is_stop(o, next)) {
                stopped = 1;
                break;
            }
            if (len < o->max_len) logits = ct_generator_feed(gen, next);
        }
        out->length[g] = len;
        out->truncated[g] = !stopped;
        out->entropy_sum[g] = entropy;
    }
    ct_free(after_prompt);
}
