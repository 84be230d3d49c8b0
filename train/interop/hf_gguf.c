// ctrain export gguf: a checkpoint as a GGUF file for llama.cpp and ollama, laid out as
// llama.cpp's convert_hf_to_gguf.py lays out a LlamaForCausalLM or GPT2LMHeadModel:
//   llama: token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate,
//          ffn_up, ffn_down}, output_norm, output (absent when tied)
//   gpt2:  token_embd, position_embd, blk.N.{attn_norm, attn_qkv, attn_output, ffn_norm, ffn_up,
//          ffn_down}.{weight,bias}, output_norm.{weight,bias}, output (a copy of token_embd when tied)
// 1-D tensors (norms, biases) stay f32, as llama.cpp keeps them.
// llama.cpp's LLaMA RoPE rotates adjacent pairs (x_2i, x_2i+1), while transformers (and ctrain)
// rotate (x_i, x_i+HD/2); so, like the convert script, the rows of q and k are permuted within
// each head: new row 2i+j = old row j·HD/2 + i (j = 0, 1), which makes both compute the same.
#include <stdio.h>
#include <string.h>

#include "checkpoints/dtype_convert.h"
#include "checkpoints/gguf.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer/byte_level.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/hf_interop.h"
#include "train/interop/stop_tokens.h"

enum { TOKEN_NORMAL = 1, TOKEN_CONTROL = 3, TOKEN_UNUSED = 5 };  // llama.cpp's token types

// Rows of a [n_heads·HD, C] projection reordered from rotate-half pairs to adjacent pairs.
static void permute_rope_rows(const float *src, float *dst, int n_heads, int HD, int C) {
    const int half = HD / 2;
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < half; i++)
            for (int j = 0; j < 2; j++)
                memcpy(dst + ((size_t)h * HD + 2 * i + j) * C, src + ((size_t)h * HD + j * half + i) * C,
                       sizeof(float) * (size_t)C);
}

typedef struct {
    CtGgufWriter w;
    void **owned;
    int n_owned, cap;
    CtDtype matrix_dtype;
} Export;

static void *own(Export *e, size_t bytes) {
    if (e->n_owned == e->cap) {
        e->cap = e->cap * 2 + 64;
        e->owned = ct_realloc(e->owned, sizeof(void *) * (size_t)e->cap);
    }
    return e->owned[e->n_owned++] = ct_alloc(bytes ? bytes : 1);
}

// Adds a tensor under its GGUF name: 1-D tensors in f32, matrices in the chosen dtype.
// rope_heads > 0: permute the rows of q or k first.
static int add(Export *e, const char *name, const CtParamEntry *p, const float *data, int rope_heads, int HD,
               const char *source) {
    CtNamedTensor t = {.name = name, .ndim = p->ndim, .shape = {p->shape[0], p->shape[1]}};
    char *stored_name = own(e, strlen(name) + 1);
    strcpy(stored_name, name);
    t.name = stored_name;
    if (rope_heads > 0) {
        float *permuted = own(e, p->numel * sizeof(float));
        permute_rope_rows(data, permuted, rope_heads, HD, (int)p->shape[1]);
        data = permuted;
    }
    t.dtype = p->ndim == 1 ? CT_DTYPE_F32 : e->matrix_dtype;
    if (t.dtype == CT_DTYPE_F32) {
        t.data = (void *)data;
    } else {
        uint16_t *half = own(e, p->numel * sizeof(uint16_t));
        size_t overflow = ct_f32_array_to_f16(data, half, p->numel);
        t.data = half;
        if (overflow)
            return ct_error_set("%s: tensor '%s' has %zu values beyond float16's range (+-65504); export with "
                                "--dtype f32", source, p->name, overflow);
    }
    return ct_gguf_add_tensor(&e->w, &t);
}

// ctrain's (= Hugging Face's) tensor names and llama.cpp's, per family. Within a layer the
// names are suffixes after "model.layers.N." / "transformer.h.N." and "blk.N.".
typedef struct {
    const char *hf, *gguf;
    int rope;  // 1: q rows (n_head heads), 2: k rows (n_kv_head heads) to permute
} NameMap;

static const NameMap llama_globals[] = {
    {"model.embed_tokens.weight", "token_embd.weight", 0}, {"model.norm.weight", "output_norm.weight", 0},
    {"lm_head.weight", "output.weight", 0}, {NULL, NULL, 0}};
static const NameMap llama_layer[] = {
    {"input_layernorm.weight", "attn_norm.weight", 0},    {"self_attn.q_proj.weight", "attn_q.weight", 1},
    {"self_attn.k_proj.weight", "attn_k.weight", 2},      {"self_attn.v_proj.weight", "attn_v.weight", 0},
    {"self_attn.o_proj.weight", "attn_output.weight", 0}, {"post_attention_layernorm.weight", "ffn_norm.weight", 0},
    {"mlp.gate_proj.weight", "ffn_gate.weight", 0},       {"mlp.up_proj.weight", "ffn_up.weight", 0},
    {"mlp.down_proj.weight", "ffn_down.weight", 0},       {NULL, NULL, 0}};
// GPT-2: ctrain holds the Conv1D weights as [out, in] already, the layout ggml wants (the
// convert script transposes Hugging Face's [in, out] to get there).
static const NameMap gpt2_globals[] = {
    {"transformer.wte.weight", "token_embd.weight", 0},   {"transformer.wpe.weight", "position_embd.weight", 0},
    {"transformer.ln_f.weight", "output_norm.weight", 0}, {"transformer.ln_f.bias", "output_norm.bias", 0},
    {"lm_head.weight", "output.weight", 0},               {NULL, NULL, 0}};
static const NameMap gpt2_layer[] = {
    {"ln_1.weight", "attn_norm.weight", 0},         {"ln_1.bias", "attn_norm.bias", 0},
    {"attn.c_attn.weight", "attn_qkv.weight", 0},   {"attn.c_attn.bias", "attn_qkv.bias", 0},
    {"attn.c_proj.weight", "attn_output.weight", 0}, {"attn.c_proj.bias", "attn_output.bias", 0},
    {"ln_2.weight", "ffn_norm.weight", 0},          {"ln_2.bias", "ffn_norm.bias", 0},
    {"mlp.c_fc.weight", "ffn_up.weight", 0},        {"mlp.c_fc.bias", "ffn_up.bias", 0},
    {"mlp.c_proj.weight", "ffn_down.weight", 0},    {"mlp.c_proj.bias", "ffn_down.bias", 0},
    {NULL, NULL, 0}};

static const NameMap *find_name(const NameMap *map, const char *hf) {
    for (; map->hf; map++)
        if (strcmp(map->hf, hf) == 0) return map;
    return NULL;
}

static int add_weights(Export *e, const CtModel *m, const char *source) {
    const CtModelConfig *c = &m->config;
    const int gpt2 = c->arch == CT_ARCH_GPT2;
    const NameMap *globals = gpt2 ? gpt2_globals : llama_globals, *layer_map = gpt2 ? gpt2_layer : llama_layer;
    const char *layer_format = gpt2 ? "transformer.h.%d.%95s" : "model.layers.%d.%95s";
    for (int i = 0; i < m->n_tensors; i++) {
        const CtParamEntry *p = &m->table[i];
        const float *data = m->params + p->offset;
        char name[128], suffix[96];
        int layer = -1;
        const NameMap *hit = find_name(globals, p->name);
        if (hit) {
            snprintf(name, sizeof name, "%s", hit->gguf);
        } else if (sscanf(p->name, layer_format, &layer, suffix) == 2 && (hit = find_name(layer_map, suffix))) {
            snprintf(name, sizeof name, "blk.%d.%s", layer, hit->gguf);
        } else {
            return ct_error_set("gguf export: no GGUF name for tensor '%s'", p->name);
        }
        int rope_heads = hit->rope == 1 ? c->n_head : hit->rope == 2 ? c->n_kv_head : 0;
        if (add(e, name, p, data, rope_heads, ct_model_head_dim(c), source) != 0) return -1;
        // GPT-2's head is the embedding; llama.cpp's convert script writes it out as output.weight too
        if (gpt2 && c->tie_embeddings && strcmp(name, "token_embd.weight") == 0 &&
            add(e, "output.weight", p, data, 0, 0, source) != 0)
            return -1;
    }
    return 0;
}

// tokenizer.ggml.pre: the name under which llama.cpp (src/llama-vocab.cpp) keeps the regular
// expression of each pattern ctrain has; an unknown name makes llama.cpp refuse the file.
//   gpt-2      GPT-2's pattern (r50k, p50k)
//   llama-bpe  Llama 3's pattern, which is cl100k_base's
//   gpt-4o     o200k_base's pattern
//   qwen2      Qwen2's (cl100k's with single digits)
static const char *pre_tokenizer_name(CtPattern p) {
    switch (p) {
    case CT_PATTERN_GPT2: return "gpt-2";
    case CT_PATTERN_CL100K: return "llama-bpe";
    case CT_PATTERN_O200K: return "gpt-4o";
    case CT_PATTERN_QWEN2: return "qwen2";
    }
    CT_FATAL("this is a bug in ctrain", "no llama.cpp pre-tokenizer name for pattern %d", (int)p);
}

// tokenizer.ggml.*: byte-level BPE ("gpt2" model) with tokens in the byte-level alphabet,
// special tokens as their text, ids past the tokenizer up to vocab_size as unused padding.
// eos_token_id: the model's first end-of-sequence id when the checkpoint names them (llama.cpp
// also ends generation at the tokens it knows by name: <|eot_id|>, <|im_end|>, <|endoftext|>...).
static int add_tokenizer(Export *e, const char *json, const char *generation_config_json, int vocab_size,
                         const char *source) {
    CtTokenizer t;
    if (ct_tokenizer_parse_hf(&t, json, strlen(json), source, NULL) != 0) return -1;
    const char **texts = own(e, sizeof(char *) * (size_t)vocab_size);
    size_t *lengths = own(e, sizeof(size_t) * (size_t)vocab_size);
    int32_t *types = own(e, sizeof(int32_t) * (size_t)vocab_size);
    for (int id = 0; id < vocab_size; id++) {
        int kind = id < t.n_ids ? t.kind[id] : CT_TOKEN_ABSENT;
        const uint8_t *bytes = kind != CT_TOKEN_ABSENT ? t.pool + t.offsets[id] : NULL;
        size_t n = kind != CT_TOKEN_ABSENT ? t.lengths[id] : 0;
        char *s;
        if (kind == CT_TOKEN_NORMAL) {
            s = own(e, 2 * n + 1);
            lengths[id] = ct_byte_level_encode(bytes, n, s);
            types[id] = TOKEN_NORMAL;
        } else if (kind == CT_TOKEN_SPECIAL) {
            s = own(e, n + 1);
            memcpy(s, bytes, n);
            s[n] = 0;
            lengths[id] = n;
            types[id] = TOKEN_CONTROL;
        } else {
            s = own(e, 24);
            lengths[id] = (size_t)snprintf(s, 24, "[PAD%d]", id);
            types[id] = TOKEN_UNUSED;
        }
        texts[id] = s;
    }
    const char **merges = own(e, sizeof(char *) * (size_t)(t.n_merges + 1));
    size_t *merge_lengths = own(e, sizeof(size_t) * (size_t)(t.n_merges + 1));
    for (int i = 0; i < t.n_merges; i++) {
        int32_t ids[2] = {t.merges[i].left, t.merges[i].right};
        char *s = own(e, 2 * (t.lengths[ids[0]] + t.lengths[ids[1]]) + 2);
        size_t k = ct_byte_level_encode(t.pool + t.offsets[ids[0]], t.lengths[ids[0]], s);
        s[k++] = ' ';
        k += ct_byte_level_encode(t.pool + t.offsets[ids[1]], t.lengths[ids[1]], s + k);
        merges[i] = s;
        merge_lengths[i] = k;
    }
    ct_gguf_add_string(&e->w, "tokenizer.ggml.model", "gpt2");
    ct_gguf_add_string(&e->w, "tokenizer.ggml.pre", pre_tokenizer_name(t.pattern));
    ct_gguf_add_string_array(&e->w, "tokenizer.ggml.tokens", texts, lengths, (uint64_t)vocab_size);
    ct_gguf_add_i32_array(&e->w, "tokenizer.ggml.token_type", types, (uint64_t)vocab_size);
    ct_gguf_add_string_array(&e->w, "tokenizer.ggml.merges", merges, merge_lengths, (uint64_t)t.n_merges);
    static const char *const eos[] = {"<|endoftext|>", "<|end_of_text|>", "</s>", "<|eot_id|>", NULL};
    static const char *const bos[] = {"<|begin_of_text|>", "<s>", NULL};
    int32_t eos_id = -1, bos_id = -1;
    int32_t model_eos[CT_MAX_STOP_TOKENS];
    int n_model_eos = 0;
    if (generation_config_json &&
        ct_eos_token_ids_parse(generation_config_json, source, vocab_size, model_eos, CT_MAX_STOP_TOKENS, &n_model_eos) != 0) {
        ct_tokenizer_free(&t);
        return -1;
    }
    if (n_model_eos > 0) eos_id = model_eos[0];
    for (int i = 0; eos[i] && eos_id < 0; i++) eos_id = ct_tokenizer_special_id(&t, eos[i]);
    for (int i = 0; bos[i] && bos_id < 0; i++) bos_id = ct_tokenizer_special_id(&t, bos[i]);
    if (eos_id >= 0) ct_gguf_add_u32(&e->w, "tokenizer.ggml.eos_token_id", (uint32_t)eos_id);
    ct_gguf_add_u32(&e->w, "tokenizer.ggml.bos_token_id", (uint32_t)(bos_id >= 0 ? bos_id : eos_id >= 0 ? eos_id : 0));
    ct_gguf_add_bool(&e->w, "tokenizer.ggml.add_bos_token", bos_id >= 0);
    ct_tokenizer_free(&t);
    return 0;
}

static void add_model_keys(Export *e, const CtModelConfig *c, const char *name) {
    CtGgufWriter *w = &e->w;
    const char *arch = c->arch == CT_ARCH_GPT2 ? "gpt2" : "llama";
    char key[96];
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
    ct_gguf_add_string(w, "general.architecture", arch);
    ct_gguf_add_string(w, "general.name", name);
    ct_gguf_add_u32(w, "general.file_type", e->matrix_dtype == CT_DTYPE_F32 ? 0 : 1);  // ALL_F32, MOSTLY_F16
    ct_gguf_add_u32(w, "general.alignment", CT_GGUF_ALIGNMENT);
    ct_gguf_add_u32(w, KEY("context_length"), (uint32_t)c->max_seq_len);
    ct_gguf_add_u32(w, KEY("embedding_length"), (uint32_t)c->d_model);
    ct_gguf_add_u32(w, KEY("block_count"), (uint32_t)c->n_layer);
    ct_gguf_add_u32(w, KEY("feed_forward_length"), (uint32_t)c->d_ff);
    ct_gguf_add_u32(w, KEY("attention.head_count"), (uint32_t)c->n_head);
    if (c->arch == CT_ARCH_GPT2) {
        ct_gguf_add_f32(w, KEY("attention.layer_norm_epsilon"), c->norm_eps);
    } else {
        ct_gguf_add_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_head);
        ct_gguf_add_u32(w, KEY("rope.dimension_count"), (uint32_t)ct_model_head_dim(c));
        ct_gguf_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps);
        ct_gguf_add_f32(w, KEY("rope.freq_base"), c->rope_theta);
    }
    ct_gguf_add_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size);
#undef KEY
}

int ct_gguf_export(const char *ckpt_path, const char *out_path, const CtGgufExportOptions *opt) {
    Export e;
    memset(&e, 0, sizeof e);
    if (!opt->dtype || strcmp(opt->dtype, "f16") == 0) e.matrix_dtype = CT_DTYPE_F16;
    else if (strcmp(opt->dtype, "f32") == 0) e.matrix_dtype = CT_DTYPE_F32;
    else return ct_error_set("--dtype '%s': GGUF export writes f16 or f32", opt->dtype);
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CtModel m;
    if (ct_checkpoint_load(ckpt_path, &m, ct_ops_cpu(), 1, 1, 0, NULL, &meta) != 0) return -1;
    ct_gguf_init(&e.w);
    const char *base = strrchr(ckpt_path, '/');
    add_model_keys(&e, &m.config, base ? base + 1 : ckpt_path);
    int rc = 0;
    if (meta.tokenizer_json)
        rc = add_tokenizer(&e, meta.tokenizer_json, meta.generation_config_json, m.config.vocab_size, ckpt_path);
    else ct_log("warning: %s has no tokenizer; the GGUF file will have none and llama.cpp will refuse it", ckpt_path);
    if (rc == 0) rc = add_weights(&e, &m, ckpt_path);
    if (rc == 0) rc = ct_gguf_write(&e.w, out_path);
    if (rc == 0)
        ct_log("exported %s (%s, %zu parameters, %s) to %s", ckpt_path, ct_arch_name(m.config.arch), m.n_params,
               e.matrix_dtype == CT_DTYPE_F32 ? "f32" : "f16", out_path);
    for (int i = 0; i < e.n_owned; i++) ct_free(e.owned[i]);
    ct_free(e.owned);
    ct_gguf_free(&e.w);
    ct_model_free(&m);
    ct_checkpoint_meta_free(&meta);
    return rc;
}
