// ctrain export gguf: the file parses as GGUF v3 with llama.cpp's keys and tensor names, the
// tokenizer arrays, q/k rows permuted to llama.cpp's adjacent-pair RoPE, norms in f32; and
// (make test-long) llama.cpp itself loads exports with real tokenizers and decodes the greedy
// tokens ctrain does.
#include <stdint.h>

#include "checkpoints/dtype_convert.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer/tokenizer_files.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "tests/hf_fixture.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/interop/hf_interop.h"

// A reader just large enough to check what the exporter writes (bounds-checked: a bug in the
// writer fails the test rather than crashing it).
typedef struct {
    const uint8_t *p, *end;
    int bad;
} Cursor;

static uint64_t rd(Cursor *c, int n) {
    uint64_t v = 0;
    if (c->p + n > c->end) {
        c->bad = 1;
        return 0;
    }
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | c->p[i];
    c->p += n;
    return v;
}

static const char *rd_str(Cursor *c, uint64_t *len) {
    *len = rd(c, 8);
    if (c->bad || *len > (uint64_t)(c->end - c->p)) {
        c->bad = 1;
        return "";
    }
    const char *s = (const char *)c->p;
    c->p += *len;
    return s;
}

typedef struct {
    char key[96];
    uint32_t type, elem_type;
    uint64_t u, count;
    float f;
    const uint8_t *array;  // the first element
    char str[96];
} Kv;

typedef struct {
    char name[96];
    uint32_t n_dims, type;
    uint64_t ne[4], offset;
} TensorInfo;

typedef struct {
    Kv kv[64];
    int n_kv;
    TensorInfo t[64];
    int n_t;
    const uint8_t *data;
    uint8_t *file;
    size_t size;
} Gguf;

static size_t elem_size(uint32_t type) {
    static const size_t sizes[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return type < 13 ? sizes[type] : 0;
}

static int parse_gguf(const char *path, Gguf *g) {
    memset(g, 0, sizeof *g);
    g->file = (uint8_t *)ct_test_read(path, &g->size);
    if (!g->file) return -1;
    Cursor c = {g->file, g->file + g->size, 0};
    if (rd(&c, 4) != 0x46554747u || rd(&c, 4) != 3) return -1;
    uint64_t n_t = rd(&c, 8), n_kv = rd(&c, 8);
    if (n_t > 64 || n_kv > 64) return -1;
    for (uint64_t i = 0; i < n_kv && !c.bad; i++) {
        Kv *kv = &g->kv[g->n_kv++];
        uint64_t len;
        const char *key = rd_str(&c, &len);
        snprintf(kv->key, sizeof kv->key, "%.*s", (int)len, key);
        kv->type = (uint32_t)rd(&c, 4);
        if (kv->type == 8) {
            const char *s = rd_str(&c, &len);
            snprintf(kv->str, sizeof kv->str, "%.*s", (int)len, s);
        } else if (kv->type == 9) {
            kv->elem_type = (uint32_t)rd(&c, 4);
            kv->count = rd(&c, 8);
            kv->array = c.p;
            for (uint64_t k = 0; k < kv->count && !c.bad; k++) {
                if (kv->elem_type == 8) rd_str(&c, &len);
                else rd(&c, (int)elem_size(kv->elem_type));
            }
        } else if (kv->type == 6) {
            uint32_t bits = (uint32_t)rd(&c, 4);
            memcpy(&kv->f, &bits, 4);
        } else {
            kv->u = rd(&c, (int)elem_size(kv->type));
        }
    }
    for (uint64_t i = 0; i < n_t && !c.bad; i++) {
        TensorInfo *t = &g->t[g->n_t++];
        uint64_t len;
        const char *name = rd_str(&c, &len);
        snprintf(t->name, sizeof t->name, "%.*s", (int)len, name);
        t->n_dims = (uint32_t)rd(&c, 4);
        for (uint32_t d = 0; d < t->n_dims && d < 4; d++) t->ne[d] = rd(&c, 8);
        t->type = (uint32_t)rd(&c, 4);
        t->offset = rd(&c, 8);
    }
    size_t header = (size_t)(c.p - g->file);
    g->data = g->file + (header + 31) / 32 * 32;
    return c.bad ? -1 : 0;
}

// The key's entry; an empty one (count 0, no string) when absent, so checks fail, not crash.
static const Kv *kv(const Gguf *g, const char *key) {
    static const Kv absent = {.str = "(absent)"};
    for (int i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return &absent;
}

static const TensorInfo *tensor(const Gguf *g, const char *name) {
    for (int i = 0; i < g->n_t; i++)
        if (strcmp(g->t[i].name, name) == 0) return &g->t[i];
    return NULL;
}

// The k-th string of a string array.
static void array_string(const Kv *a, uint64_t k, char *out, size_t size) {
    const uint8_t *p = a->array;
    uint64_t len = 0;
    for (uint64_t i = 0; i <= k; i++) {
        memcpy(&len, p, 8);
        if (i < k) p += 8 + len;
    }
    snprintf(out, size, "%.*s", (int)len, (const char *)p + 8);
}

TEST(hf_gguf, llama_export_has_llama_cpp_layout) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 0);
    const char *ckpt = ct_test_path("llama.h5"), *out = ct_test_path("m.gguf");
    CHECK_MSG(hf_fixture_checkpoint(ckpt, &c, 5) == 0, "%s", ct_error_message());
    CtGgufExportOptions opt = {.dtype = "f32"};
    CHECK_MSG(ct_gguf_export(ckpt, out, &opt) == 0, "%s", ct_error_message());
    Gguf g;
    CHECK(parse_gguf(out, &g) == 0);
    CHECK_STR_EQ(kv(&g, "general.architecture")->str, "llama");
    CHECK_EQ_INT(kv(&g, "llama.block_count")->u, 2);
    CHECK_EQ_INT(kv(&g, "llama.attention.head_count")->u, 4);
    CHECK_EQ_INT(kv(&g, "llama.attention.head_count_kv")->u, 2);
    CHECK_EQ_INT(kv(&g, "llama.rope.dimension_count")->u, 4);
    CHECK_EQ_INT(kv(&g, "llama.feed_forward_length")->u, 24);
    CHECK(kv(&g, "llama.rope.freq_base")->f == 10000.0f);
    CHECK(kv(&g, "llama.attention.layer_norm_rms_epsilon")->f == 1e-5f);
    CHECK_STR_EQ(kv(&g, "tokenizer.ggml.model")->str, "gpt2");
    CHECK_STR_EQ(kv(&g, "tokenizer.ggml.pre")->str, "gpt-2");  // llama.cpp's name; it refuses "gpt2"
    const Kv *tokens = kv(&g, "tokenizer.ggml.tokens");
    CHECK(tokens->count == 264);
    char s[64];
    array_string(tokens, 256, s, sizeof s);
    CHECK_STR_EQ(s, "\xc4\xa0t");  // "Ġt": the byte-level alphabet
    array_string(tokens, 259, s, sizeof s);
    CHECK_STR_EQ(s, "<|endoftext|>");
    array_string(tokens, 263, s, sizeof s);
    CHECK_STR_EQ(s, "[PAD263]");
    const Kv *merges = kv(&g, "tokenizer.ggml.merges");
    CHECK(merges->count == 3);
    array_string(merges, 2, s, sizeof s);
    CHECK_STR_EQ(s, "\xc4\xa0t he");
    const Kv *types = kv(&g, "tokenizer.ggml.token_type");
    CHECK(types->count == 264);
    int32_t type259, type263;
    memcpy(&type259, types->array + 4 * 259, 4);
    memcpy(&type263, types->array + 4 * 263, 4);
    CHECK(type259 == 3 && type263 == 5);
    CHECK_EQ_INT(kv(&g, "tokenizer.ggml.eos_token_id")->u, 259);

    CHECK_EQ_INT(g.n_t, 2 + 9 * 2 + 1);
    CHECK(tensor(&g, "output.weight") && tensor(&g, "token_embd.weight"));
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(hf_fixture_load(ckpt, &m, &meta) == 0);
    // q: [16, 16], k: [8, 16]; head size 4, so within each head rows (0,1,2,3) -> (0,2,1,3)
    static const char *names[2] = {"blk.1.attn_q.weight", "blk.1.attn_k.weight"};
    for (int which = 0; which < 2; which++) {
        const TensorInfo *t = tensor(&g, names[which]);
        CHECK(t && t->type == 0 && t->n_dims == 2 && t->ne[0] == 16 && t->ne[1] == (which ? 8u : 16u));
        CHECK(t->offset % 32 == 0);
        const float *file = (const float *)(g.data + t->offset);
        const float *w = m.w.layers[1].qkv_w + (which ? 16 * 16 : 0);
        for (int row = 0; row < (int)t->ne[1]; row++) {
            int h = row / 4, i = (row % 4) / 2, j = row % 2;
            int src = h * 4 + j * 2 + i;
            CHECK_MSG(memcmp(file + row * 16, w + src * 16, 16 * sizeof(float)) == 0, "%s row %d", names[which], row);
        }
    }
    const TensorInfo *v = tensor(&g, "blk.1.attn_v.weight");
    CHECK(memcmp(g.data + v->offset, m.w.layers[1].qkv_w + 24 * 16, 8 * 16 * sizeof(float)) == 0);
    const TensorInfo *last = &g.t[g.n_t - 1];
    CHECK_EQ_INT((size_t)(g.data - g.file) + last->offset + last->ne[0] * last->ne[1] * 4, g.size);
    ct_model_free(&m);
    ct_checkpoint_meta_free(&meta);
    free(g.file);

    // f16: matrices in f16, norms still f32
    opt.dtype = NULL;
    CHECK_MSG(ct_gguf_export(ckpt, out, &opt) == 0, "%s", ct_error_message());
    CHECK(parse_gguf(out, &g) == 0);
    CHECK_EQ_INT(kv(&g, "general.file_type")->u, 1);
    CHECK_EQ_INT(tensor(&g, "blk.0.ffn_down.weight")->type, 1);
    CHECK_EQ_INT(tensor(&g, "blk.0.attn_norm.weight")->type, 0);
    CHECK_EQ_INT(tensor(&g, "output_norm.weight")->type, 0);
    free(g.file);
}

TEST(hf_gguf, gpt2_export_has_llama_cpp_layout) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c = hf_fixture_config(CT_ARCH_GPT2, 1);
    const char *ckpt = ct_test_path("gpt2.h5"), *out = ct_test_path("g.gguf");
    CHECK(hf_fixture_checkpoint(ckpt, &c, 6) == 0);
    CtGgufExportOptions opt = {0};
    CHECK_MSG(ct_gguf_export(ckpt, out, &opt) == 0, "%s", ct_error_message());
    Gguf g;
    CHECK(parse_gguf(out, &g) == 0);
    CHECK_STR_EQ(kv(&g, "general.architecture")->str, "gpt2");
    CHECK_EQ_INT(kv(&g, "gpt2.block_count")->u, 2);
    CHECK_EQ_INT(kv(&g, "gpt2.context_length")->u, 16);
    CHECK(kv(&g, "gpt2.attention.layer_norm_epsilon")->f == 1e-5f);
    // 2 embeddings + 12 per layer + final norm (2) + output (a copy of the tied embedding)
    CHECK_EQ_INT(g.n_t, 2 + 12 * 2 + 2 + 1);
    const TensorInfo *qkv = tensor(&g, "blk.0.attn_qkv.weight");
    CHECK(qkv && qkv->type == 1 && qkv->ne[0] == 16 && qkv->ne[1] == 48);  // [out, in] as ggml wants
    CHECK_EQ_INT(tensor(&g, "blk.0.attn_qkv.bias")->type, 0);
    CHECK(tensor(&g, "output.weight") && tensor(&g, "position_embd.weight"));
    free(g.file);
}

TEST(hf_gguf, refuses_bad_dtype) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 1);
    const char *ckpt = ct_test_path("m.h5");
    CHECK(hf_fixture_checkpoint(ckpt, &c, 6) == 0);
    CtGgufExportOptions opt = {.dtype = "q4_0"};
    CHECK(ct_gguf_export(ckpt, ct_test_path("g.gguf"), &opt) == -1);
    CHECK_CONTAINS(ct_error_message(), "f16 or f32");
    FILE *fp = fopen(ct_test_path("g.gguf"), "rb");
    CHECK(fp == NULL);
}

// Exports f32 and f16 GGUF files of a fixture model and has tests/ref/check_gguf.py compare its
// NumPy forward of each file with ctrain's logits.
static void check_config_against_numpy(CtModelConfig c) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *ckpt = ct_test_path("m.h5"), *out = ct_test_path("m.gguf");
    CHECK(hf_fixture_checkpoint(ckpt, &c, 8) == 0);
    CtGgufExportOptions opt = {.dtype = "f32"};
    CHECK_MSG(ct_gguf_export(ckpt, out, &opt) == 0, "%s", ct_error_message());
    enum { T = 10 };
    int32_t tokens[T];
    for (int t = 0; t < T; t++) tokens[t] = (t * 53 + 7) % c.vocab_size;
    static float logits[T * 264];
    CHECK(hf_fixture_logits(ckpt, tokens, T, logits) == 0);
    char tokens_path[1024], logits_path[1024], args[4096];
    snprintf(tokens_path, sizeof tokens_path, "%s", ct_test_path("tokens.bin"));
    snprintf(logits_path, sizeof logits_path, "%s", ct_test_path("logits.bin"));
    FILE *fp = fopen(tokens_path, "wb");
    fwrite(tokens, sizeof tokens, 1, fp);
    fclose(fp);
    fp = fopen(logits_path, "wb");
    fwrite(logits, sizeof logits, 1, fp);
    fclose(fp);
    snprintf(args, sizeof args, "%s %s %s", out, tokens_path, logits_path);
    if (hf_fixture_ref("check_gguf.py", args) != 0) return;
    opt.dtype = "f16";
    CHECK_MSG(ct_gguf_export(ckpt, out, &opt) == 0, "%s", ct_error_message());
    hf_fixture_ref("check_gguf.py", args);
}

static void check_against_numpy(CtArch arch, int tied) { check_config_against_numpy(hf_fixture_config(arch, tied)); }

// The GGUF file's NumPy forward against transformers on `ctrain export hf` of the same
// checkpoint: two exports of ctrain's weights, read by two independent implementations, agree
// (whatever ctrain's own forward computes). Runs after check_config_against_numpy (m.h5, m.gguf
// f16 then f32 again, tokens.bin).
static void check_gguf_against_transformers(void) {
    CtGgufExportOptions opt = {.dtype = "f32"};
    CtHfExportOptions hopt = {0};
    CHECK_MSG(ct_gguf_export(ct_test_path("m.h5"), ct_test_path("m.gguf"), &opt) == 0, "%s", ct_error_message());
    CHECK_MSG(ct_hf_export(ct_test_path("m.h5"), ct_test_path("hf"), &hopt) == 0, "%s", ct_error_message());
    char args[4096], tokens[1024], hf[1024], tf[1024];
    snprintf(tokens, sizeof tokens, "%s", ct_test_path("tokens.bin"));
    snprintf(hf, sizeof hf, "%s", ct_test_path("hf"));
    snprintf(tf, sizeof tf, "%s", ct_test_path("transformers_logits.bin"));
    snprintf(args, sizeof args, "logits %s %s %s", hf, tokens, tf);
    if (hf_fixture_ref("hf_interop_ref.py", args) != 0) return;
    snprintf(args, sizeof args, "%s %s %s", ct_test_path("m.gguf"), tokens, tf);
    hf_fixture_ref("check_gguf.py", args);
}

// The llama-architecture families llama.cpp has: Llama 3's RoPE scaling (rope_freqs), linear
// scaling, Mistral, Qwen2's biases (NEOX RoPE, no permutation), Gemma 2 (soft-caps, alternating
// window of 4 over 10 tokens, post-norms, scaled embeddings, 1 + w norms, GeGLU).
static CtModelConfig family_config(CtFamily family) {
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, family == CT_FAMILY_GEMMA2);
    c.family = family;
    c.qkv_bias = family == CT_FAMILY_QWEN2;
    if (family == CT_FAMILY_QWEN3) c.qk_norm = 1, c.head_dim = 6;  // attention width 24, not d_model 16
    if (family == CT_FAMILY_MISTRAL) c.sliding_window = c.max_seq_len;  // as long as the context: no effect
    if (family == CT_FAMILY_GEMMA2) {
        c.gate_act = CT_GATE_GELU_TANH;
        c.post_norms = c.embed_scale = 1;
        c.query_scale = 1.0f / sqrtf((float)ct_model_head_dim(&c));
        c.attn_softcap = 5.0f, c.final_softcap = 3.0f;
        c.sliding_window = 4, c.sliding_window_pattern = 2;
    }
    return c;
}

TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_qwen2) {
    check_config_against_numpy(family_config(CT_FAMILY_QWEN2));
    check_gguf_against_transformers();
}
TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_qwen3) {
    check_config_against_numpy(family_config(CT_FAMILY_QWEN3));
    check_gguf_against_transformers();
}
TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_mistral) {
    check_config_against_numpy(family_config(CT_FAMILY_MISTRAL));
    check_gguf_against_transformers();
}
TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_gemma2) {
    check_config_against_numpy(family_config(CT_FAMILY_GEMMA2));
    check_gguf_against_transformers();
}
TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_llama3_rope) {
    CtModelConfig c = family_config(CT_FAMILY_LLAMA);
    c.rope_theta = 500000.0f;
    c.rope_scaling = (CtRopeScaling){.type = CT_ROPE_LLAMA3, .factor = 4, .original_max_position = 8,
                                     .low_freq_factor = 1, .high_freq_factor = 4};
    check_config_against_numpy(c);
    check_gguf_against_transformers();
}
TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_linear_rope) {
    CtModelConfig c = family_config(CT_FAMILY_LLAMA);
    c.rope_scaling = (CtRopeScaling){.type = CT_ROPE_LINEAR, .factor = 2};
    check_config_against_numpy(c);
    check_gguf_against_transformers();
}

// What llama.cpp would compute otherwise is refused, naming what.
TEST(hf_gguf, refuses_what_llama_cpp_computes_otherwise) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig cases[7];
    const char *want[7] = {"RoPE scaling yarn is not exported", "sliding window (4, below the context of 16)",
                           "the gemma3 family is not exported as GGUF yet", "Gemma 2 without attention and final soft-capping",
                           "mixes in features of other families", "query scale 0.3 is not head_dim^-1/2",
                           "this model's head is untied"};
    cases[0] = family_config(CT_FAMILY_LLAMA);
    cases[0].rope_scaling = (CtRopeScaling){.type = CT_ROPE_YARN, .factor = 2, .original_max_position = 8,
                                            .beta_fast = 32, .beta_slow = 1, .truncate = 1};
    cases[1] = family_config(CT_FAMILY_MISTRAL);
    cases[1].sliding_window = 4;
    cases[2] = family_config(CT_FAMILY_GEMMA2);
    cases[2].family = CT_FAMILY_GEMMA3, cases[2].qk_norm = 1;
    cases[3] = family_config(CT_FAMILY_GEMMA2);
    cases[3].attn_softcap = 0;
    cases[4] = family_config(CT_FAMILY_LLAMA);
    cases[4].qk_norm = 1;
    cases[5] = family_config(CT_FAMILY_GEMMA2);
    cases[5].query_scale = 0.3f;
    cases[6] = family_config(CT_FAMILY_GEMMA2);
    cases[6].tie_embeddings = 0;
    for (int i = 0; i < 7; i++) {
        const char *ckpt = ct_test_path("m.h5"), *out = ct_test_path("m.gguf");
        CHECK_MSG(hf_fixture_checkpoint(ckpt, &cases[i], 8) == 0, "case %d: %s", i, ct_error_message());
        CtGgufExportOptions opt = {.dtype = "f32"};
        CHECK_MSG(ct_gguf_export(ckpt, out, &opt) != 0, "case %d exported", i);
        CHECK_CONTAINS(ct_error_message(), want[i]);
    }
}

// llama.cpp's own reader (the gguf package) loads the file, and an independent NumPy forward in
// llama.cpp's conventions computes ctrain's logits from it: names, layouts and the q/k
// permutation are right.
TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_llama) { check_against_numpy(CT_ARCH_LLAMA, 0); }
TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_llama_tied) { check_against_numpy(CT_ARCH_LLAMA, 1); }
TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_gpt2) { check_against_numpy(CT_ARCH_GPT2, 1); }

// A fixture checkpoint whose tokenizer splits text with `pattern` and whose generation_config
// (may be NULL) names the model's EOS ids.
static int checkpoint_with(const char *path, CtPattern pattern, const char *generation_config) {
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 0);
    if (hf_fixture_checkpoint(path, &c, 5) != 0) return -1;
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (hf_fixture_load(path, &m, &meta) != 0) return -1;
    CtTokenizer t;
    ct_tokenizer_parse_hf(&t, meta.tokenizer_json, strlen(meta.tokenizer_json), "fixture", NULL);
    t.pattern = pattern;
    char *json = ct_tokenizer_hf_json(&t);
    ct_free(meta.tokenizer_json);
    meta.tokenizer_json = ct_strdup(json);
    free(json);
    if (generation_config) meta.generation_config_json = ct_strdup(generation_config);
    int rc = ct_checkpoint_save(path, &m, NULL, &meta);
    ct_tokenizer_free(&t);
    ct_checkpoint_meta_free(&meta);
    ct_model_free(&m);
    return rc;
}

// tokenizer.ggml.pre must be a name llama.cpp's src/llama-vocab.cpp knows, with the same regular
// expression as ctrain's pattern: llama.cpp refuses a file with any other name.
TEST(hf_gguf, pre_tokenizer_names_are_llama_cpps) {
    ct_log_set_level(CT_LOG_QUIET);
    static const struct {
        CtPattern pattern;
        const char *name;
    } cases[] = {{CT_PATTERN_GPT2, "gpt-2"}, {CT_PATTERN_CL100K, "llama-bpe"}, {CT_PATTERN_O200K, "gpt-4o"}};
    const char *ckpt = ct_test_path("m.h5"), *out = ct_test_path("m.gguf");
    for (int i = 0; i < 3; i++) {
        CHECK_MSG(checkpoint_with(ckpt, cases[i].pattern, NULL) == 0, "%s", ct_error_message());
        CtGgufExportOptions opt = {.dtype = "f32"};
        CHECK_MSG(ct_gguf_export(ckpt, out, &opt) == 0, "%s", ct_error_message());
        Gguf g;
        CHECK(parse_gguf(out, &g) == 0);
        CHECK_STR_EQ(kv(&g, "tokenizer.ggml.pre")->str, cases[i].name);
        free(g.file);
    }
}

// The model's own EOS (an imported model's generation_config) is the GGUF's eos_token_id.
TEST(hf_gguf, eos_token_id_is_the_models_first_eos) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *ckpt = ct_test_path("m.h5"), *out = ct_test_path("m.gguf");
    CHECK(checkpoint_with(ckpt, CT_PATTERN_GPT2, "{\"eos_token_id\": [42, 259]}") == 0);
    CtGgufExportOptions opt = {.dtype = "f32"};
    CHECK_MSG(ct_gguf_export(ckpt, out, &opt) == 0, "%s", ct_error_message());
    Gguf g;
    CHECK(parse_gguf(out, &g) == 0);
    CHECK_EQ_INT(kv(&g, "tokenizer.ggml.eos_token_id")->u, 42);
    free(g.file);
}

// ---- the real client: llama.cpp itself (make test-long) ----
// scripts/build_llama_cpp.sh builds llama.cpp from the source in the llama-cpp-python sdist on
// PyPI (about 10 minutes on 2 cores the first time, cached under build/llama.cpp) with
// tests/ref/llama_greedy.c, which loads a GGUF as every llama.cpp client does and decodes greedily.
// A checkpoint with a real tokenizer is exported as an f32 GGUF; llama.cpp must accept it,
// tokenize the prompt to the ids ctrain gives, and pick the greedy tokens `ctrain generate
// --temperature 0` picks.

// The path of llama_greedy; skips the test when llama.cpp cannot be built on this machine.
static const char *llama_greedy(void) {
    static char path[4096];
    const char *root = getenv("CTRAIN_ROOT");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s/scripts/build_llama_cpp.sh'", root ? root : ".");
    char *out = NULL;
    int rc = ct_test_run(cmd, &out);
    size_t n = out ? strlen(out) : 0;
    while (n > 0 && out[n - 1] == '\n') out[--n] = 0;
    const char *last = out ? (strrchr(out, '\n') ? strrchr(out, '\n') + 1 : out) : "";
    snprintf(path, sizeof path, "%s", last);
    if (rc == 77) {
        free(out);
        SKIP("%s", path);
    }
    if (rc != 0) {
        ct_test_fail(__FILE__, __LINE__, "scripts/build_llama_cpp.sh failed (%d): %s", rc, out ? out : "");
        free(out);
        return NULL;
    }
    free(out);
    return path;
}

// The width of the real-tokenizer models: tiny_config's layers at d_model 64.
static CtModelConfig real_config(CtArch arch) {
    CtModelConfig c = tiny_config(arch);
    c.d_model = 64;
    c.d_ff = arch == CT_ARCH_LLAMA ? 96 : 256;
    c.max_seq_len = 96;
    c.tie_embeddings = arch == CT_ARCH_GPT2;
    return c;
}

// A checkpoint of config c (its vocabulary: the tokenizer's) with random weights and the
// tokenizer at tokenizer_path.
static int real_checkpoint(const char *path, CtModelConfig c, const char *tokenizer_path) {
    CtTokenizer t;
    if (ct_tokenizer_load(&t, tokenizer_path, NULL) != 0) return -1;
    c.vocab_size = ct_tokenizer_vocab_size(&t);
    CtModel m;
    if (ct_model_create(&m, &c, ct_ops_cpu(), 1, 1, 0) != 0) {
        ct_tokenizer_free(&t);
        return -1;
    }
    tiny_randomize_params(&m, 11);
    // Gemma's sqrt(d) embedding scale: embeddings of std 0.3 would make every residual mostly its
    // own token's (tied) embedding, and greedy decoding repeat the last token; scale them as a
    // trained Gemma's are, so the sqrt(d)-scaled ones have std 0.3.
    for (int i = 0; c.embed_scale && i < m.n_tensors; i++) {
        const CtParamEntry *e = &m.table[i];
        if (strcmp(e->name, "model.embed_tokens.weight") != 0) continue;
        for (size_t j = 0; j < e->numel; j++) m.params[e->offset + j] /= sqrtf((float)c.d_model);
    }
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    char *json = ct_tokenizer_hf_json(&t);
    meta.tokenizer_json = ct_strdup(json);
    free(json);
    meta.tokenizer_hash = ct_tokenizer_fingerprint(&t);
    int rc = ct_checkpoint_save(path, &m, NULL, &meta);
    ct_checkpoint_meta_free(&meta);
    ct_model_free(&m);
    ct_tokenizer_free(&t);
    return rc;
}

// The line after `label` in text ("prompt: 1 2 3" -> "1 2 3"), copied to out.
static void line_after(const char *text, const char *label, char *out, size_t size) {
    const char *p = text ? strstr(text, label) : NULL;
    out[0] = 0;
    if (!p) return;
    p += strlen(label);
    snprintf(out, size, "%.*s", (int)strcspn(p, "\n"), p);
}

// text as one single-quoted shell word ("it's" -> 'it'\''s').
static void shell_quote(const char *text, char *out, size_t size) {
    size_t k = 0;
    out[k++] = '\'';
    for (const char *p = text; *p && k + 5 < size; p++) {
        if (*p == '\'') {
            memcpy(out + k, "'\\''", 4);
            k += 4;
        } else {
            out[k++] = *p;
        }
    }
    out[k++] = '\'';
    out[k] = 0;
}

// How many different ids a space-separated list has.
static int distinct_ids(const char *list) {
    long seen[64];
    int n = 0;
    for (char *end; *list && n < 64; list = end) {
        long id = strtol(list, &end, 10);
        if (end == list) break;
        int k = 0;
        while (k < n && seen[k] != id) k++;
        if (k == n) seen[n++] = id;
    }
    return n;
}

static void llama_cpp_agrees(CtModelConfig c, const char *tokenizer_path, const char *pre_name) {
    ct_log_set_level(CT_LOG_QUIET);
    if (!tokenizer_path) return;
    const char *greedy = llama_greedy();
    if (!greedy) return;
    const char *ckpt = ct_test_path("m.h5"), *gguf = ct_test_path("m.gguf");
    CHECK_MSG(real_checkpoint(ckpt, c, tokenizer_path) == 0, "%s", ct_error_message());
    char cmd[8192];
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' export gguf '%s' --out '%s' --dtype f32", ct_test_bin(), ckpt, gguf);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    Gguf g;
    CHECK(parse_gguf(gguf, &g) == 0);
    CHECK_STR_EQ(kv(&g, "tokenizer.ggml.pre")->str, pre_name);
    free(g.file);
    // words, numbers, contractions, punctuation runs, several spaces, a newline, accents and CJK:
    // the pieces where the three patterns differ
    char prompt[512];
    shell_quote("Hello world, it's 2024!!  Numbers: 123456 and\n  caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd don't", prompt,
                sizeof prompt);
    snprintf(cmd, sizeof cmd, "'%s' generate --checkpoint '%s' --prompt %s --temperature 0 --max-tokens 32 --ids",
             ct_test_bin(), ckpt, prompt);
    int rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0 && out, "ctrain generate failed (%d): %s", rc, out ? out : "");
    char ctrain_prompt[4096], ctrain_tokens[4096], llama_prompt[4096], llama_tokens[4096];
    snprintf(ctrain_prompt, sizeof ctrain_prompt, "%.*s", (int)strcspn(out, "\n"), out);
    line_after(out, "\n", ctrain_tokens, sizeof ctrain_tokens);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' '%s' 32 %s", greedy, gguf, prompt);
    rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "llama.cpp refused the GGUF (%d): %s", rc, out ? out : "");
    line_after(out, "prompt: ", llama_prompt, sizeof llama_prompt);
    line_after(out, "tokens: ", llama_tokens, sizeof llama_tokens);
    free(out);
    CHECK_MSG(strcmp(ctrain_prompt, llama_prompt) == 0, "the prompt's ids:\n  ctrain    %s\n  llama.cpp %s", ctrain_prompt,
              llama_prompt);
    CHECK_MSG(strlen(ctrain_tokens) > 0 && strcmp(ctrain_tokens, llama_tokens) == 0,
              "greedy tokens:\n  ctrain    %s\n  llama.cpp %s", ctrain_tokens, llama_tokens);
    CHECK_MSG(distinct_ids(ctrain_tokens) >= 8, "greedy tokens repeat a few ids (a weak check): %s", ctrain_tokens);
}

TEST_LONG(hf_gguf, llama_cpp_greedy_equals_ctrain_gpt2_family_gpt2_tokenizer) {
    char tok[2048];
    snprintf(tok, sizeof tok, "%s/tokenizers/gpt2", ct_test_shared_data());
    llama_cpp_agrees(real_config(CT_ARCH_GPT2), tok, "gpt-2");
}

// An 8k vocabulary trained by ctrain on the corpus with `pattern`; its path (NULL: the test failed).
static const char *trained_8k_tokenizer(const char *pattern) {
    char corpus[2048], cmd[8192];
    snprintf(corpus, sizeof corpus, "%s/corpora/nlp-corpus-40k.txt", ct_test_shared_data());
    const char *tok = ct_test_path("tok8k.json");
    snprintf(cmd, sizeof cmd, "head -c 1000000 '%s' > '%s' && '%s' tokenizer train --input '%s' --vocab-size 8192 "
             "--pattern %s --special '<|endoftext|>' --out '%s'",
             corpus, ct_test_path("corpus.txt"), ct_test_bin(), ct_test_path("corpus.txt"), pattern, tok);
    char *out = NULL;
    int rc = ct_test_run(cmd, &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "tokenizer train failed (%d): %s", rc, out ? out : "");
    free(out);
    return rc == 0 ? tok : NULL;
}

// 8k vocabularies trained by ctrain with the cl100k (Llama 3) and o200k patterns: llama.cpp must
// split text as ctrain does under each. (A .tiktoken rank file has no merge list, so a checkpoint
// cannot carry o200k_base itself as tokenizer.json.)
static void trained_8k(const char *pattern, const char *pre_name) {
    llama_cpp_agrees(real_config(CT_ARCH_LLAMA), trained_8k_tokenizer(pattern), pre_name);
}

TEST_LONG(hf_gguf, llama_cpp_greedy_equals_ctrain_llama_family_trained_8k_cl100k) { trained_8k("cl100k", "llama-bpe"); }
TEST_LONG(hf_gguf, llama_cpp_greedy_equals_ctrain_llama_family_trained_8k_o200k) { trained_8k("o200k", "gpt-4o"); }

// The published families' shapes at d_model 64 (n_head 4, n_kv_head 2: grouped-query attention),
// each with a byte-level BPE vocabulary trained on the corpus (the real Mistral and Gemma
// vocabularies are SentencePiece-style, which GGUF export refuses), through llama.cpp's own
// forward and KV cache over a 36- or 39-token prompt and 32 greedy tokens.

// Llama 3: RoPE base 500000 and llama3 scaling from an original context of 32 (wavelengths above
// 32 positions divided by 8, 8 to 32 blended): llama.cpp reads the rope_freqs tensor.
TEST_LONG(hf_gguf, llama_cpp_greedy_equals_ctrain_llama3_shape) {
    CtModelConfig c = real_config(CT_ARCH_LLAMA);
    c.rope_theta = 500000.0f;
    c.rope_scaling = (CtRopeScaling){.type = CT_ROPE_LLAMA3, .factor = 8, .original_max_position = 32,
                                     .low_freq_factor = 1, .high_freq_factor = 4};
    llama_cpp_agrees(c, trained_8k_tokenizer("cl100k"), "llama-bpe");
}

// Qwen2: q/k/v biases, RoPE base 1e6, Qwen2's pre-tokenizer.
TEST_LONG(hf_gguf, llama_cpp_greedy_equals_ctrain_qwen2_shape) {
    CtModelConfig c = real_config(CT_ARCH_LLAMA);
    c.family = CT_FAMILY_QWEN2;
    c.qkv_bias = 1;
    c.rope_theta = 1000000.0f;
    llama_cpp_agrees(c, trained_8k_tokenizer("qwen2"), "qwen2");
}

// Qwen3: RMSNorm on q and k per head, head_dim 24 (4 x 24 != d_model 64), no biases.
TEST_LONG(hf_gguf, llama_cpp_greedy_equals_ctrain_qwen3_shape) {
    CtModelConfig c = real_config(CT_ARCH_LLAMA);
    c.family = CT_FAMILY_QWEN3;
    c.qk_norm = 1;
    c.head_dim = 24;
    c.rope_theta = 1000000.0f;
    llama_cpp_agrees(c, trained_8k_tokenizer("qwen2"), "qwen2");
}

// Mistral: llama.cpp runs Mistral as its llama architecture, which attends to the whole context
// (no sliding window), so a window as long as the context (96 > the 68 positions here) is what both
// compute; a shorter window is refused by export (refuses_what_llama_cpp_computes_otherwise).
TEST_LONG(hf_gguf, llama_cpp_greedy_equals_ctrain_mistral_shape) {
    CtModelConfig c = real_config(CT_ARCH_LLAMA);
    c.family = CT_FAMILY_MISTRAL;
    c.sliding_window = c.max_seq_len;
    llama_cpp_agrees(c, trained_8k_tokenizer("cl100k"), "llama-bpe");
}

// Gemma 2: GeGLU, (1 + w) norms, pre- and post-norms, embeddings scaled by sqrt(d), head_dim 24
// (4 x 24 != d_model 64), attention and final soft-caps small enough to bend these weights'
// scores, a window of 8 on every other layer (the prompt alone is 36 tokens), tied head.
TEST_LONG(hf_gguf, llama_cpp_greedy_equals_ctrain_gemma2_shape) {
    CtModelConfig c = real_config(CT_ARCH_LLAMA);
    c.family = CT_FAMILY_GEMMA2;
    c.head_dim = 24;
    c.gate_act = CT_GATE_GELU_TANH;
    c.post_norms = c.embed_scale = 1;
    c.query_scale = 1.0f / sqrtf(24.0f);
    c.attn_softcap = 10.0f, c.final_softcap = 5.0f;
    c.sliding_window = 8, c.sliding_window_pattern = 2;
    c.tie_embeddings = 1;
    llama_cpp_agrees(c, trained_8k_tokenizer("cl100k"), "llama-bpe");
}
