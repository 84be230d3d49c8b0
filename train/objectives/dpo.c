#include "train/objectives/dpo.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "train/interop/checkpoint_io.h"
#include "train/model/generate.h"
#include "train/model/lora_tokens.h"

int ct_dpo_init(CtDpo *d, CtDpoLoss type, double beta, double epsilon, const CtModel *policy, const char *ref_path,
                int rows, int T) {
    memset(d, 0, sizeof *d);
    d->type = type;
    d->beta = beta;
    d->epsilon = epsilon;
    if (ref_path && *ref_path) {
        CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
        if (ct_checkpoint_load(ref_path, &d->ref, ct_ops_cpu(), rows, T, CT_MODEL_FROZEN, NULL, &meta) != 0) return -1;
        ct_checkpoint_meta_free(&meta);
        if (!policy->ops->host_memory) ct_model_to_backend(&d->ref, policy->ops);
        if (d->ref.config.vocab_size != policy->config.vocab_size) {
            ct_model_free(&d->ref);
            return ct_error_set("%s: the reference's vocabulary (%d) differs from the policy's (%d)", ref_path,
                                d->ref.config.vocab_size, policy->config.vocab_size);
        }
        d->have_ref = 1;
    } else if (policy->lora || policy->peft) {  // adapters: the frozen base without them is the reference
        d->base_as_reference = 1;
    } else {
        // a frozen copy of the starting policy, built on the CPU and moved where the policy is
        if (ct_model_create(&d->ref, &policy->config, ct_ops_cpu(), rows, T, CT_MODEL_FROZEN) != 0) return -1;
        ct_model_sync_to_host((CtModel *)policy);
        memcpy(d->ref.params, policy->params, policy->n_params * sizeof(float));
        if (!policy->ops->host_memory) ct_model_to_backend(&d->ref, policy->ops);
        d->have_ref = 1;
    }
    d->ref.moe.aux_coef = d->ref.moe.z_coef = 0;  // Mixture of Experts: the frozen reference adds no router losses
    return 0;
}

CtModel *ct_dpo_reference_forward(CtDpo *d, CtModel *policy, const CtBatch *b) {
    if (d->have_ref) {
        ct_model_forward(&d->ref, b);
        return &d->ref;
    }
    // The policy's MoE routing statistics are the policy's forwards': the reference's leave them as they were.
    CtMoeStats kept = policy->moe;
    const size_t n_load = (size_t)kept.n_layers * (size_t)kept.E;
    double *load = n_load ? ct_alloc(sizeof(double) * n_load) : NULL;
    if (n_load) memcpy(load, kept.load, sizeof(double) * n_load);
    struct CtLora *adapters = policy->lora;
    struct CtPeft *prompt = policy->peft;  // prompt learning: the model without its virtual tokens (PEFT's disable_adapter)
    ct_lora_tokens_show_base(policy);  // trained token rows (train/model/lora_tokens.h): the base's own, as PEFT's reference
    int training = policy->training;
    policy->lora = NULL;  // the frozen base alone
    policy->peft = NULL;
    policy->training = 0;
    ct_model_forward(policy, b);
    policy->lora = adapters;
    policy->peft = prompt;
    policy->training = training;
    if (n_load) memcpy(policy->moe.load, load, sizeof(double) * n_load);
    ct_free(load);
    kept.load = policy->moe.load;
    policy->moe = kept;
    return policy;
}

void ct_dpo_drop_model(CtDpo *d) {
    if (d->have_ref) ct_model_free(&d->ref);
    d->have_ref = 0;
    d->base_as_reference = 0;  // from now on the precomputed values serve
}

void ct_dpo_free(CtDpo *d) {
    ct_dpo_drop_model(d);
    for (int s = 0; s < CT_N_SPLITS; s++) {
        ct_free(d->pre_chosen[s]);
        ct_free(d->pre_rejected[s]);
    }
    memset(d, 0, sizeof *d);
}

// Per row of the last forward of m: the sum (or, for IPO, the mean) of the target
// log-probabilities where the loss mask is 1, and how many there were.
static void row_logprobs(const CtModel *m, const CtBatch *b, int ipo, double *value, int *count) {
    for (int r = 0; r < b->B; r++) {
        double sum = 0;
        int n = 0;
        for (int t = 0; t < b->T; t++) {
            size_t k = (size_t)r * b->T + t;
            if (b->loss_mask[k] && b->targets[k] >= 0) {
                sum += m->logprobs[k];
                n++;
            }
        }
        count[r] = n;
        value[r] = ipo && n ? sum / n : sum;
    }
}

static void set_unit_weights(CtStepBatches *s, int i) {
    size_t n = (size_t)s->rows * s->T, at = (size_t)i * n;
    for (size_t k = 0; k < n; k++) s->weights[at + k] = 1.0f;
}

int ct_dpo_precompute(CtDpo *d, CtModel *policy, CtLoader *pairs, CtSplit split) {
    const uint64_t n = pairs->n_examples;
    d->pre_chosen[split] = ct_alloc(sizeof(double) * (n + 1));
    d->pre_rejected[split] = ct_alloc(sizeof(double) * (n + 1));
    CtStepBatches s;
    ct_step_batches_init(&s, 1, pairs->batch.rows, pairs->batch.T);
    double *value = ct_alloc(sizeof(double) * (size_t)s.rows);
    int *count = ct_alloc(sizeof(int) * (size_t)s.rows);
    CtLoaderState start = {pairs->opt.seed, 0, 0};
    ct_loader_restore(pairs, &start);
    int rc = 0;
    for (uint64_t step = 0; step < pairs->steps_per_epoch; step++) {
        if (ct_step_batches_fetch(&s, pairs) != 0) {
            rc = -1;
            break;
        }
        set_unit_weights(&s, 0);
        CtBatch b = ct_step_batch(&s, 0, 0);
        CtModel *ref = ct_dpo_reference_forward(d, policy, &b);
        row_logprobs(ref, &b, d->type == CT_DPO_IPO, value, count);
        for (int r = 0; r + 1 < s.rows; r += 2) {
            int64_t e = s.example_ids[r];
            d->pre_chosen[split][e] = value[r];
            d->pre_rejected[split][e] = value[r + 1];
        }
    }
    ct_free(value);
    ct_free(count);
    ct_step_batches_free(&s);
    return rc;
}

void ct_dpo_micro_step(CtDpo *d, CtModel *policy, CtStepBatches *s, int i, int64_t global_pairs, CtSplit split,
                       int backward, CtDpoStats *stats) {
    const int rows = s->rows, ipo = d->type == CT_DPO_IPO;
    double pol[rows], ref[rows];
    int count[rows], ref_count[rows];
    set_unit_weights(s, i);
    CtBatch b = ct_step_batch(s, i, 0);
    if (d->have_ref || d->base_as_reference) {
        CtModel *reference = ct_dpo_reference_forward(d, policy, &b);
        row_logprobs(reference, &b, ipo, ref, ref_count);
    } else {
        const int64_t *ids = s->example_ids + (size_t)i * rows;
        for (int r = 0; r + 1 < rows; r += 2) {
            ref[r] = d->pre_chosen[split][ids[r]];
            ref[r + 1] = d->pre_rejected[split][ids[r]];
        }
    }
    ct_model_forward(policy, &b);
    row_logprobs(policy, &b, ipo, pol, count);
    const float K = policy->loss_count;  // the model divides its loss by the counted tokens
    float *w = s->weights + (size_t)i * rows * s->T;
    for (int r = 0; r + 1 < rows; r += 2) {
        CtDpoValue v = ct_dpo_loss(d->type, d->beta, d->epsilon, pol[r], pol[r + 1], ref[r], ref[r + 1]);
        double rc = d->beta * (pol[r] - ref[r]), rr = d->beta * (pol[r + 1] - ref[r + 1]);
        stats->loss += v.loss / (double)global_pairs;
        stats->reward_chosen += rc;
        stats->reward_rejected += rr;
        stats->accuracy += rc > rr;
        stats->logp_chosen += pol[r];
        stats->logp_rejected += pol[r + 1];
        stats->pairs++;
        // ∂L/∂π_chosen = ∂ℓ/∂Δ / P, ∂L/∂π_rejected = −∂ℓ/∂Δ / P; for IPO π is a mean: one more 1/n.
        for (int side = 0; side < 2; side++) {
            double d_pi = (side == 0 ? v.d_delta : -v.d_delta) / (double)global_pairs;
            if (ipo && count[r + side]) d_pi /= count[r + side];
            float weight = (float)(-(double)K * d_pi);
            for (int t = 0; t < s->T; t++) w[(size_t)(r + side) * s->T + t] = weight;
        }
    }
    if (backward && K > 0) {
        ct_model_set_loss_weights(policy, w);  // d loss / d logprob per token (a copy on a GPU)
        ct_model_backward(policy);
    }
}

void ct_dpo_stats_finish(CtDpoStats *s) {
    if (s->pairs == 0) return;
    double n = (double)s->pairs;
    s->reward_chosen /= n;
    s->reward_rejected /= n;
    s->accuracy /= n;
    s->logp_chosen /= n;
    s->logp_rejected /= n;
}

double ct_dpo_chosen_match(CtModel *m, const CtLoader *pairs, int max_examples, int32_t stop_token) {
    const int ctx = m->config.max_seq_len;
    CtGenerator g;
    ct_generator_init(&g, m, ctx);
    int examples = 0, matches = 0;
    for (uint64_t e = 0; e < pairs->n_examples && examples < max_examples; e++) {
        const uint32_t *len = pairs->ex_lengths + 3 * e;
        const int32_t *prompt = pairs->ex_tokens + pairs->ex_offset[e], *chosen = prompt + len[0];
        if (len[0] == 0 || len[1] == 0 || len[0] + len[1] > (uint32_t)ctx) continue;
        ct_generator_reset(&g);
        const float *logits = NULL;
        logits = ct_generator_feed_prompt(&g, prompt, (int)len[0]);  // len[0] >= 1 here
        int same = 1;
        for (uint32_t i = 0; i < len[1] && same; i++) {  // greedy, token by token, against the chosen completion
            int32_t best = 0;
            for (int v = 1; v < m->config.vocab_size; v++)
                if (logits[v] > logits[best]) best = v;
            same = best == chosen[i];
            if (best == stop_token) break;  // what follows the end of turn is never trained
            if (same && i + 1 < len[1]) logits = ct_generator_feed(&g, best);
        }
        examples++;
        matches += same;
    }
    ct_generator_free(&g);
    return examples ? (double)matches / examples : NAN;
}
