#include "train/loop/train_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "kernels/device.h"
#include "train/loop/run_model.h"
#include "train/model/lora.h"

const CtOps *ct_train_select_ops(const CtRunConfig *cfg) {
    const char *name = cfg->run.device == CT_DEVICE_CUDA ? "cuda" : cfg->run.device == CT_DEVICE_AUTO ? "auto" : "cpu";
    const CtOps *ops = ct_ops_select(name);
    if (!ops) {
        ct_error_prefix("run.device = %s: ", name);
        return NULL;
    }
    const char *precision = cfg->run.precision == CT_PRECISION_FP32   ? "fp32"
                          : cfg->run.precision == CT_PRECISION_BF16 ? "bf16"
                                                                    : "auto";
    ops = ct_ops_with_precision(ops, precision);
    if (!ops) ct_error_prefix("run.precision = %s: ", precision);
    return ops;
}

int ct_train_model_config(const CtRunConfig *cfg, const CtDataset *data, CtModelConfig *out) {
    CtRunConfig adjusted = *cfg;
    if (adjusted.model.vocab_size == 0) adjusted.model.vocab_size = (int)data->vocab_size;
    if (ct_model_config_from_run(&adjusted, out) != 0) return -1;
    if (out->vocab_size < (int)data->vocab_size)
        return ct_error_set("model.vocab_size %d is smaller than the dataset's vocabulary (%u tokens)", out->vocab_size,
                            data->vocab_size);
    if (cfg->train.seq_len > out->max_seq_len)
        return ct_error_set("train.seq_len %d is longer than the model's max_seq_len %d (raise model.max_seq_len)",
                            cfg->train.seq_len, out->max_seq_len);
    return 0;
}

static int is_embedding(const char *name) {
    return strstr(name, "wte") || strstr(name, "wpe") || strstr(name, "embed_tokens") ||
           strstr(name, "_embeddings.");  // bert/roberta: word_, position_, token_type_embeddings
}

void ct_train_set_decay_spans(const CtModel *m, CtAdamW *opt, int decay_embeddings) {
    if (m->lora) {  // every A and B decays (PEFT under HF's Trainer); of a head trained in full, not its biases
        const CtLoraSaved *s = &m->lora->saved;
        CtParamSpan spans[CT_LORA_MAX_SAVED];
        for (int i = 0; i < s->n; i++) spans[i] = (CtParamSpan){s->t[i].offset, s->t[i].numel, s->t[i].ndim >= 2};
        ct_adamw_set_spans(opt, spans, s->n);
        return;
    }
    CtParamSpan *spans = ct_alloc(sizeof(CtParamSpan) * (size_t)m->n_tensors);
    for (int i = 0; i < m->n_tensors; i++) {
        const CtParamEntry *e = &m->table[i];
        int decay = e->ndim >= 2 && (decay_embeddings || !is_embedding(e->name));
        spans[i] = (CtParamSpan){e->offset, e->numel, decay};
    }
    ct_adamw_set_spans(opt, spans, m->n_tensors);
    ct_free(spans);
}

CtLrSchedule ct_train_schedule(const CtRunConfig *cfg) {
    CtLrSchedule s = {(CtLrShape)cfg->optim.schedule, cfg->optim.lr, cfg->optim.min_lr, cfg->optim.warmup_steps,
                      (long)cfg->train.max_steps, cfg->optim.decay_fraction};
    return s;
}

int ct_train_verify_data(const CtDataset *data, const char *name) {
    double t0 = ct_time_now();
    CtDatasetVerified v[CT_N_SPLITS];
    for (int s = 0; s < CT_N_SPLITS; s++)
        if (ct_dataset_verify_split(data, (CtSplit)s, &v[s]) != 0) return -1;
    ct_log("%s: %s: checked every chunk: %llu train and %llu val chunks, %llu tokens, in %.2f s", name, data->dir,
           (unsigned long long)v[CT_SPLIT_TRAIN].chunks, (unsigned long long)v[CT_SPLIT_VAL].chunks,
           (unsigned long long)(v[CT_SPLIT_TRAIN].tokens + v[CT_SPLIT_VAL].tokens), ct_time_now() - t0);
    return 0;
}

double ct_train_unigram_entropy(const CtDataset *data) {
    const CtDatasetSplit *s = &data->split[CT_SPLIT_TRAIN];
    uint64_t n = s->n_tokens < (64ull << 20) ? s->n_tokens : (64ull << 20);
    if (n == 0) return NAN;
    uint64_t *counts = ct_calloc(data->vocab_size, sizeof(uint64_t));
    const uint64_t chunk = 1 << 20;
    int32_t *buf = ct_alloc(sizeof(int32_t) * chunk);
    void *dctx = ct_shard_dctx_new();
    double h = NAN;
    uint64_t done = 0;
    for (; done < n; done += chunk) {
        uint64_t take = n - done < chunk ? n - done : chunk;
        if (ct_dataset_read_range(data, CT_SPLIT_TRAIN, done, take, dctx, buf, NULL) != 0) break;
        for (uint64_t i = 0; i < take; i++) counts[buf[i]]++;
    }
    if (done >= n) {
        h = 0;
        for (uint32_t v = 0; v < data->vocab_size; v++)
            if (counts[v]) {
                double p = (double)counts[v] / (double)n;
                h -= p * log(p);
            }
    }
    ct_shard_dctx_free(dctx);
    ct_free(buf);
    ct_free(counts);
    return h;
}

char *ct_train_sample_text(CtModel *m, const CtTokenizer *tok, const char *prompt, int32_t eot, int n_tokens,
                           const CtSampling *sampling, CtRng *rng) {
    CtIds ids = {0};
    if (prompt && *prompt) {
        CtEncoder *enc = ct_encoder_new(tok);
        ct_encode(enc, (const uint8_t *)prompt, strlen(prompt), 0, &ids);
        ct_encoder_free(enc);
    }
    if (ids.len == 0 && eot >= 0) ct_ids_push(&ids, eot);
    size_t prompt_len = ids.len;
    int ctx = m->config.max_seq_len;
    CtGenerator g;
    ct_generator_init(&g, m, ctx);
    const float *logits = NULL;
    const size_t fed = ids.len < (size_t)ctx ? ids.len : (size_t)ctx;  // a prompt longer than the context: its start
    if (fed > 0) logits = ct_generator_feed_prompt(&g, ids.data, (int)fed);
    for (int i = 0; i < n_tokens && logits && g.n_ctx < ctx; i++) {
        int32_t next = ct_sample(logits, m->config.vocab_size, sampling, rng);
        if (next == eot || next >= ct_tokenizer_vocab_size(tok)) break;
        ct_ids_push(&ids, next);
        logits = ct_generator_feed(&g, next);
    }
    ct_generator_free(&g);
    // Decode what came after a synthetic end-of-text start; keep a real prompt in the text.
    size_t from = (prompt && *prompt) ? 0 : prompt_len;
    uint8_t *out = NULL;
    size_t len = 0, cap = 0;
    ct_decode(tok, ids.data + from, ids.len - from, &out, &len, &cap);
    char *text = ct_alloc(len + 1);
    if (len) memcpy(text, out, len);
    text[len] = '\0';
    ct_free(out);
    ct_ids_free(&ids);
    return text;
}
