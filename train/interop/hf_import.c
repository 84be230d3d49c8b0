// ctrain import hf: a Hugging Face model folder (config.json, model.safetensors or shards with
// model.safetensors.index.json, tokenizer.json) into a ctrain checkpoint.
//
// Every tensor of ctrain's parameter table must be found with the shape it implies (GPT-2's
// Conv1D weights transposed from [in, out]; Phi-3's q/k/v and gate/up as row ranges of its fused
// qkv_proj and gate_up_proj; Gemma's norms with the 1 of its x·(1 + w) added: hf_tensor_map.h),
// and every tensor of the files must find a place
// in the table, except buffers transformers itself recomputes (GPT-2's causal mask
// attn.bias/attn.masked_bias, rotary inv_freq) and a tied lm_head. An unplaced tensor means
// the model has something ctrain would drop, which is an error, not a warning.
//
// A tied head (tie_word_embeddings) is resolved as transformers 5's from_pretrained does: a
// saved lm_head.weight that differs from the embedding unties them (the head is used as
// saved); one equal to it keeps them tied; a head saved without the embedding is the embedding.
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "checkpoints/safetensors_shards.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/input/read_file.h"
#include "data/tokenizer/tokenizer_config.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/hf_chat_template.h"
#include "train/interop/hf_generation.h"
#include "train/interop/hf_interop.h"
#include "train/interop/hf_tensor_map.h"

typedef struct {
    CtStShards st;
    uint8_t **used;  // per file, per tensor: placed in the table
} HfWeights;

static void weights_close(HfWeights *w) {
    for (int i = 0; w->used && i < w->st.n_files; i++) ct_free(w->used[i]);
    ct_free(w->used);
    w->used = NULL;
    ct_st_shards_close(&w->st);
}

static int open_weights(HfWeights *w, const char *dir) {
    memset(w, 0, sizeof *w);
    if (ct_st_shards_open(&w->st, dir) != 0) return -1;
    w->used = ct_calloc((size_t)w->st.n_files, sizeof(uint8_t *));
    for (int i = 0; i < w->st.n_files; i++) w->used[i] = ct_calloc((size_t)w->st.files[i].n_tensors + 1, 1);
    return 0;
}

// The tensor called `name` (GPT-2 files saved from GPT2Model lack the "transformer." prefix).
static const CtStTensor *find_tensor(HfWeights *w, const char *name, const CtSafetensors **file) {
    const char *alt = strncmp(name, "transformer.", 12) == 0 ? name + 12 : NULL;
    for (int i = 0; i < w->st.n_files; i++)
        for (int k = 0; k < w->st.files[i].n_tensors; k++) {
            const char *n = w->st.files[i].tensors[k].name;
            if (strcmp(n, name) == 0 || (alt && strcmp(n, alt) == 0)) {
                w->used[i][k] = 1;
                *file = &w->st.files[i];
                return &w->st.files[i].tensors[k];
            }
        }
    return NULL;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const char *embedding_name(const CtModelConfig *c) {
    return c->arch == CT_ARCH_GPT2 ? "transformer.wte.weight" : "model.embed_tokens.weight";
}

// tie_word_embeddings with lm_head.weight saved beside the embedding: transformers (5.x,
// PreTrainedModel.tie_weights) ties them only when the two are equal, and otherwise uses the
// saved head with a warning. The import does the same, so that the logits are transformers'.
static int resolve_tied_head(HfWeights *w, CtModelConfig *c) {
    if (!c->tie_embeddings) return 0;
    const CtSafetensors *head_file = NULL, *emb_file = NULL;
    const CtStTensor *head = find_tensor(w, "lm_head.weight", &head_file);
    const CtStTensor *emb = find_tensor(w, embedding_name(c), &emb_file);
    if (!head || !emb) return 0;
    int rc = 0, equal = head->numel == emb->numel && head->ndim == emb->ndim;
    if (equal) {  // as torch.equal: by value, after conversion to the load dtype (f32 holds f16/bf16 exactly)
        float *a = ct_alloc(head->numel * sizeof(float)), *b = ct_alloc(emb->numel * sizeof(float));
        rc = ct_st_read_f32(head_file, head, a) || ct_st_read_f32(emb_file, emb, b) ? -1 : 0;
        for (uint64_t i = 0; rc == 0 && equal && i < head->numel; i++) equal = a[i] == b[i];
        ct_free(a);
        ct_free(b);
    }
    if (rc == 0 && !equal) {
        c->tie_embeddings = 0;
        ct_warn("%s: tie_word_embeddings is true but lm_head.weight differs from %s; transformers then uses the saved "
                "head (it does not tie them), and so does this import: the checkpoint has a separate head",
                head_file->source, emb->name);
    }
    return rc;
}

// An encoder's buffers (position and token-type ids, when an older transformers saved them) and
// its tied MLM decoder (weight = the word embedding, bias = the head's bias; check_encoder_tied
// holds any saved copy to that).
static int encoder_ignorable(const char *name, const CtModelConfig *c) {
    if (ends_with(name, "embeddings.position_ids") || ends_with(name, "embeddings.token_type_ids")) return 1;
    const char *head = c->arch == CT_ARCH_ROBERTA ? "lm_head.decoder." : "cls.predictions.decoder.";
    return strncmp(name, head, strlen(head)) == 0;
}

// Tensors that transformers saves but recomputes (or ties), so ctrain need not hold them.
static int ignorable(const char *name, const CtModelConfig *c) {
    if (ct_model_is_encoder(c)) return encoder_ignorable(name, c);
    if (c->arch == CT_ARCH_GPT2 && (ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias"))) return 1;
    if (ends_with(name, ".rotary_emb.inv_freq")) return 1;
    return c->tie_embeddings && strcmp(name, "lm_head.weight") == 0;
}

static int check_all_used(HfWeights *w, const CtModelConfig *c) {
    for (int i = 0; i < w->st.n_files; i++)
        for (int k = 0; k < w->st.files[i].n_tensors; k++) {
            const char *n = w->st.files[i].tensors[k].name;
            if (w->used[i][k] || ignorable(n, c)) continue;
            if (ends_with(n, "_proj.bias"))
                return ct_error_set("%s: tensor '%s': a bias on this projection is not supported (ctrain's %s has %s)",
                                    w->st.files[i].source, n, c->arch == CT_ARCH_GPT2 ? "GPT-2" : "model of this family",
                                    c->qkv_bias ? "biases on q, k and v only" : "no projection biases");
            int layer = -1;  // a layer past num_hidden_layers: DeepSeek-V3's place of a multi-token prediction module
            if (sscanf(n, "model.layers.%d.", &layer) != 1) sscanf(n, "transformer.h.%d.", &layer);
            if (layer >= c->n_layer + c->mtp_depth)
                return ct_error_set("%s: tensor '%s' is in layer %d, past the model's %d layers%s (ctrain would drop "
                                    "it); a multi-token prediction module's layers are counted by config.json's "
                                    "num_nextn_predict_layers", w->st.files[i].source, n, layer, c->n_layer,
                                    c->mtp_depth ? " and its modules" : "");
            return ct_error_set("%s: tensor '%s' has no place in a %s model of this config (ctrain would drop it)",
                                w->st.files[i].source, n, ct_arch_name(c->arch));
        }
    return 0;
}

// DeepSeek-V3's per-module copies of the embedding and the output head (model.layers.N.embed_tokens,
// model.layers.N.shared_head.head): ctrain's modules use the main model's, so a copy must equal
// what was loaded for them, value for value (a folder without the copies is fine: they are shared).
static int check_mtp_shared(HfWeights *w, const CtModel *m) {
    const CtModelConfig *c = &m->config;
    const size_t numel = (size_t)c->vocab_size * (size_t)c->d_model;
    for (int k = 1; k <= c->mtp_depth; k++)
        for (int head = 0; head <= 1; head++) {
            char name[128];
            ct_hf_mtp_shared_name(c, k, head, name, sizeof name);
            const CtSafetensors *file = NULL;
            const CtStTensor *t = find_tensor(w, name, &file);
            if (!t) continue;
            const float *main = head ? m->w.lm_head : m->w.wte;
            int equal = t->numel == numel;
            float *v = equal ? ct_alloc(numel * sizeof(float)) : NULL;
            if (v && ct_st_read_f32(file, t, v) != 0) {
                ct_free(v);
                return -1;
            }
            for (size_t i = 0; equal && i < numel; i++) equal = v[i] == main[i];
            ct_free(v);
            if (!equal)
                return ct_error_set("%s: tensor '%s' differs from the main model's %s: ctrain's multi-token prediction "
                                    "modules share the main model's embedding and head, so it cannot hold a module's "
                                    "own", file->source, name, head ? "output head" : "embedding");
        }
    return 0;
}

// An encoder's MLM decoder is tied (transformers 5: decoder.weight to the word embedding,
// decoder.bias to the head's bias); saved copies must hold the same values, or the model has a
// separate decoder that ctrain would drop.
static int check_encoder_tied(HfWeights *w, const CtModel *m) {
    const CtModelConfig *c = &m->config;
    const char *head = c->arch == CT_ARCH_ROBERTA ? "lm_head.decoder" : "cls.predictions.decoder";
    for (int bias = 0; bias <= 1; bias++) {
        char name[128];
        snprintf(name, sizeof name, "%s.%s", head, bias ? "bias" : "weight");
        const CtSafetensors *file = NULL;
        const CtStTensor *t = find_tensor(w, name, &file);
        if (!t) continue;
        const float *ours = bias ? m->w.lm_head_b : m->w.wte;
        const size_t numel = (size_t)c->vocab_size * (bias ? 1 : (size_t)c->d_model);
        int equal = t->numel == numel;
        float *v = equal ? ct_alloc(numel * sizeof(float)) : NULL;
        if (v && ct_st_read_f32(file, t, v) != 0) {
            ct_free(v);
            return -1;
        }
        for (size_t i = 0; equal && i < numel; i++) equal = v[i] == ours[i];
        ct_free(v);
        if (!equal)
            return ct_error_set("%s: tensor '%s' differs from %s: ctrain's MLM decoder is tied to it (transformers "
                                "ties them too, unless tie_word_embeddings is false)", file->source, name,
                                bias ? "the head's bias" : "the word embedding");
    }
    return 0;
}

static void shape_text(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ndim && k < size; d++) k += (size_t)snprintf(buf + k, size - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k < size) snprintf(buf + k, size - k, "]");
}

// The rows [row0, row0 + n) of a tensor viewed as [rows, cols], as a tensor of its own (the
// data is memory-mapped: the view reads only those rows).
static CtStTensor row_view(const CtStTensor *t, int64_t rows, int64_t row0, int64_t n) {
    CtStTensor v = *t;
    const uint64_t cols = t->numel / (uint64_t)rows, elem = t->nbytes / t->numel;
    v.ndim = 2;
    v.shape[0] = n;
    v.shape[1] = (int64_t)cols;
    v.numel = (uint64_t)n * cols;
    v.nbytes = v.numel * elem;
    v.data = t->data + (uint64_t)row0 * cols * elem;
    return v;
}

// Whether t has the shape of `place` for an entry of `want` = [rows, cols] (cols 0: 1-D): the
// entry's rank, or [E, rows / E, cols] for fused experts.
static int shape_fits(const CtStTensor *t, const CtHfPlace *place, const int64_t *want, int ndim) {
    if (place->experts)
        return t->ndim == 3 && t->shape[0] == place->experts && t->shape[1] * place->experts == want[0] &&
               t->shape[2] == want[1];
    return t->ndim == ndim && t->shape[0] == want[0] && (ndim == 1 || t->shape[1] == want[1]);
}

// Copies one tensor (or its rows of a fused one) into its place in the parameter buffer,
// converting to f32, transposing GPT-2's Conv1D weights from [in, out] to [out, in] and adding
// the family's offset (Gemma's norms). An MoE model's experts are found under transformers'
// saved names, or else in its in-memory fused tensors (hf_tensor_map.h).
static int load_entry(HfWeights *w, const char *dir, const CtModelConfig *config, const CtParamEntry *e, float *dst) {
    const int tied = config->tie_embeddings;
    CtHfPlace place, fused;
    ct_hf_place_of(config, e, &place);
    const CtSafetensors *file = NULL;
    const CtStTensor *t = find_tensor(w, place.name, &file);
    const int has_fused = ct_hf_fused_place_of(config, e, &fused);
    if (!t && has_fused && (t = find_tensor(w, fused.name, &file)) != NULL) place = fused;
    // a tied model saved with its head and not its embedding: transformers ties the embedding to it
    if (!t && tied && strcmp(e->name, embedding_name(config)) == 0) t = find_tensor(w, "lm_head.weight", &file);
    if (!t)
        return ct_error_set("%s: tensor '%s' is missing from %s%s%s%s", dir, place.name,
                            w->st.n_files == 1 ? "model.safetensors" : "every shard",
                            has_fused ? " (and so is '" : "", has_fused ? fused.name : "",
                            has_fused ? "', transformers 5's in-memory form that would hold it)" : "");
    int64_t want[3] = {place.rows, e->shape[1], 0};
    if (e->hf_transposed) want[0] = e->shape[1], want[1] = e->shape[0];
    if (!shape_fits(t, &place, want, e->ndim)) {
        char got[128], exp[128];
        int64_t fused_shape[3] = {place.experts, place.experts ? place.rows / place.experts : 0, want[1]};
        shape_text(got, sizeof got, t->ndim, t->shape);
        shape_text(exp, sizeof exp, place.experts ? 3 : e->ndim, place.experts ? fused_shape : want);
        return ct_error_set("%s: tensor '%s' has shape %s; %s/config.json implies %s", file->source, t->name, got, dir,
                            exp);
    }
    if (e->hf_transposed) {
        float *whole = ct_alloc(t->numel * sizeof(float));
        int rc = ct_st_read_f32(file, t, whole);
        const int64_t in = want[0], out = want[1];
        for (int64_t i = 0; rc == 0 && i < in; i++)
            for (int64_t o = 0; o < out; o++) dst[o * in + i] = whole[i * out + o];
        ct_free(whole);
        return rc;
    }
    CtStTensor rows = row_view(t, place.rows, place.row0, e->shape[0]);
    if (ct_st_read_f32(file, place.rows == e->shape[0] ? t : &rows, dst) != 0) return -1;
    for (size_t k = 0; place.offset != 0 && k < e->numel; k++) dst[k] += place.offset;
    return 0;
}

static int load_tokenizer(const char *dir, const CtModelConfig *c, CtCheckpointMeta *meta) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    size_t len;
    char *text = ct_read_whole_file(path, &len);
    if (!text) return ct_error_prefix("tokenizer: (import the weights alone with --skip-tokenizer) ");
    CtTokenizer t;
    if (ct_tokenizer_parse_hf(&t, text, len, path, NULL) != 0) {
        ct_free(text);
        return ct_error_prefix("(import the weights alone with --skip-tokenizer) ");
    }
    // tokenizer_config.json beside it: a warning where its add_bos_token/add_eos_token disagree
    // with the post_processor that transformers 5 (and ctrain) follow (data/tokenizer/tokenizer_config.h)
    int rc = ct_tokenizer_read_config_beside(&t, path);
    if (rc == 0 && ct_tokenizer_vocab_size(&t) > c->vocab_size)
        rc = ct_error_set("%s: the tokenizer has %d ids but the model's vocab_size is %d", path, ct_tokenizer_vocab_size(&t),
                          c->vocab_size);
    meta->tokenizer_hash = ct_tokenizer_fingerprint(&t);
    ct_tokenizer_free(&t);
    if (rc == 0) meta->tokenizer_json = text;
    else ct_free(text);
    return rc;
}

int ct_hf_import(const char *dir, const char *out_path, const CtHfImportOptions *opt) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t len;
    char *config_text = ct_read_whole_file(path, &len);
    if (!config_text) return -1;
    CtModelConfig config;
    int rc = ct_hf_config_parse(config_text, path, &config);
    ct_free(config_text);
    if (rc != 0) return -1;

    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (!opt->skip_tokenizer && (load_tokenizer(dir, &config, &meta) != 0 ||
                                 ct_hf_chat_template_read(dir, &meta.chat_template_json) != 0)) {
        ct_checkpoint_meta_free(&meta);
        return -1;
    }
    if (ct_hf_generation_config_read(dir, config.vocab_size, &meta.generation_config_json) != 0) {
        ct_checkpoint_meta_free(&meta);
        return -1;
    }

    HfWeights *w = ct_calloc(1, sizeof *w);
    if (open_weights(w, dir) != 0) {
        ct_free(w);
        ct_checkpoint_meta_free(&meta);
        return -1;
    }
    // A reward model's files (*ForSequenceClassification) have no LM head: ctrain's table keeps one,
    // tied to the embedding (it never takes part in a score).
    const CtSafetensors *head_file = NULL;
    if (config.reward_head && !config.tie_embeddings && !find_tensor(w, "lm_head.weight", &head_file)) {
        config.tie_embeddings = 1;
        ct_log("%s: a reward model without an LM head: the checkpoint ties its head to the embedding", dir);
    }
    if (resolve_tied_head(w, &config) != 0) {
        weights_close(w);
        ct_free(w);
        ct_checkpoint_meta_free(&meta);
        return -1;
    }
    if (ct_model_is_encoder(&config)) {  // the pooler is in the table when the files have one (BertModel's)
        char pooler[96];
        const CtSafetensors *file = NULL;
        snprintf(pooler, sizeof pooler, "%s.pooler.dense.weight", config.arch == CT_ARCH_ROBERTA ? "roberta" : "bert");
        config.pooler = find_tensor(w, pooler, &file) != NULL;
    }
    CtModel m;
    // the smallest batch: the import needs the parameter buffer, not activations
    rc = ct_model_create(&m, &config, ct_ops_cpu(), 1, 1, 0);
    if (rc == 0) {
        for (int i = 0; i < m.n_tensors && rc == 0; i++)
            rc = load_entry(w, dir, &config, &m.table[i], m.params + m.table[i].offset);
        if (rc == 0) rc = check_mtp_shared(w, &m);
        if (rc == 0 && ct_model_is_encoder(&config)) rc = check_encoder_tied(w, &m);
        if (rc == 0) rc = check_all_used(w, &config);
        if (rc == 0) rc = ct_checkpoint_save(out_path, &m, NULL, &meta);
        if (rc == 0)
            ct_log("imported %s (%s, %zu parameters, %d file%s) into %s%s%s", dir,
                   config.arch == CT_ARCH_LLAMA ? ct_family_name(config.family) : ct_arch_name(config.arch),
                   m.n_params, w->st.n_files, w->st.n_files == 1 ? "" : "s", out_path,
                   meta.tokenizer_json ? " with its tokenizer" : " without a tokenizer",
                   config.mtp_depth ? ", and its multi-token prediction modules (num_nextn_predict_layers)" : "");
        ct_model_free(&m);
    }
    weights_close(w);
    ct_free(w);
    ct_checkpoint_meta_free(&meta);
    return rc;
}
