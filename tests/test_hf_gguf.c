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
#include "tests/gguf_fixture.h"
#include "tests/hf_fixture.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/interop/hf_interop.h"

TEST(hf_gguf, llama_export_has_llama_cpp_layout) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 0);
    const char *ckpt = ct_test_path("llama.h5"), *out = ct_test_path("m.gguf");
    CHECK_MSG(hf_fixture_checkpoint(ckpt, &c, 5) == 0, "%s", ct_error_message());
    CtGgufExportOptions opt = {.dtype = "f32"};
    CHECK_MSG(ct_gguf_export(ckpt, out, &opt) == 0, "%s", ct_error_message());
    Gguf g;
    CHECK(gguf_parse(out, &g) == 0);
    CHECK_STR_EQ(gguf_kv(&g, "general.architecture")->str, "llama");
    CHECK_EQ_INT(gguf_kv(&g, "llama.block_count")->u, 2);
    CHECK_EQ_INT(gguf_kv(&g, "llama.attention.head_count")->u, 4);
    CHECK_EQ_INT(gguf_kv(&g, "llama.attention.head_count_kv")->u, 2);
    CHECK_EQ_INT(gguf_kv(&g, "llama.rope.dimension_count")->u, 4);
    CHECK_EQ_INT(gguf_kv(&g, "llama.feed_forward_length")->u, 24);
    CHECK(gguf_kv(&g, "llama.rope.freq_base")->f == 10000.0f);
    CHECK(gguf_kv(&g, "llama.attention.layer_norm_rms_epsilon")->f == 1e-5f);
    CHECK_STR_EQ(gguf_kv(&g, "tokenizer.ggml.model")->str, "gpt2");
    CHECK_STR_EQ(gguf_kv(&g, "tokenizer.ggml.pre")->str, "gpt-2");  // llama.cpp's name; it refuses "gpt2"
    const Kv *tokens = gguf_kv(&g, "tokenizer.ggml.tokens");
    CHECK(tokens->count == 264);
    char s[64];
    gguf_array_string(tokens, 256, s, sizeof s);
    CHECK_STR_EQ(s, "\xc4\xa0t");  // "Ġt": the byte-level alphabet
    gguf_array_string(tokens, 259, s, sizeof s);
    CHECK_STR_EQ(s, "<|endoftext|>");
    gguf_array_string(tokens, 263, s, sizeof s);
    CHECK_STR_EQ(s, "[PAD263]");
    const Kv *merges = gguf_kv(&g, "tokenizer.ggml.merges");
    CHECK(merges->count == 3);
    gguf_array_string(merges, 2, s, sizeof s);
    CHECK_STR_EQ(s, "\xc4\xa0t he");
    const Kv *types = gguf_kv(&g, "tokenizer.ggml.token_type");
    CHECK(types->count == 264);
    int32_t type259, type263;
    memcpy(&type259, types->array + 4 * 259, 4);
    memcpy(&type263, types->array + 4 * 263, 4);
    CHECK(type259 == 3 && type263 == 5);
    CHECK_EQ_INT(gguf_kv(&g, "tokenizer.ggml.eos_token_id")->u, 259);

    CHECK_EQ_INT(g.n_t, 2 + 9 * 2 + 1);
    CHECK(gguf_tensor(&g, "output.weight") && gguf_tensor(&g, "token_embd.weight"));
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(hf_fixture_load(ckpt, &m, &meta) == 0);
    // q: [16, 16], k: [8, 16]; head size 4, so within each head rows (0,1,2,3) -> (0,2,1,3)
    static const char *names[2] = {"blk.1.attn_q.weight", "blk.1.attn_k.weight"};
    for (int which = 0; which < 2; which++) {
        const TensorInfo *t = gguf_tensor(&g, names[which]);
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
    const TensorInfo *v = gguf_tensor(&g, "blk.1.attn_v.weight");
    CHECK(memcmp(g.data + v->offset, m.w.layers[1].qkv_w + 24 * 16, 8 * 16 * sizeof(float)) == 0);
    const TensorInfo *last = &g.t[g.n_t - 1];
    CHECK_EQ_INT((size_t)(g.data - g.file) + last->offset + last->ne[0] * last->ne[1] * 4, g.size);
    ct_model_free(&m);
    ct_checkpoint_meta_free(&meta);
    free(g.file);

    // f16: matrices in f16, norms still f32
    opt.dtype = NULL;
    CHECK_MSG(ct_gguf_export(ckpt, out, &opt) == 0, "%s", ct_error_message());
    CHECK(gguf_parse(out, &g) == 0);
    CHECK_EQ_INT(gguf_kv(&g, "general.file_type")->u, 1);
    CHECK_EQ_INT(gguf_tensor(&g, "blk.0.ffn_down.weight")->type, 1);
    CHECK_EQ_INT(gguf_tensor(&g, "blk.0.attn_norm.weight")->type, 0);
    CHECK_EQ_INT(gguf_tensor(&g, "output_norm.weight")->type, 0);
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
    CHECK(gguf_parse(out, &g) == 0);
    CHECK_STR_EQ(gguf_kv(&g, "general.architecture")->str, "gpt2");
    CHECK_EQ_INT(gguf_kv(&g, "gpt2.block_count")->u, 2);
    CHECK_EQ_INT(gguf_kv(&g, "gpt2.context_length")->u, 16);
    CHECK(gguf_kv(&g, "gpt2.attention.layer_norm_epsilon")->f == 1e-5f);
    // 2 embeddings + 12 per layer + final norm (2) + output (a copy of the tied embedding)
    CHECK_EQ_INT(g.n_t, 2 + 12 * 2 + 2 + 1);
    const TensorInfo *qkv = gguf_tensor(&g, "blk.0.attn_qkv.weight");
    CHECK(qkv && qkv->type == 1 && qkv->ne[0] == 16 && qkv->ne[1] == 48);  // [out, in] as ggml wants
    CHECK_EQ_INT(gguf_tensor(&g, "blk.0.attn_qkv.bias")->type, 0);
    CHECK(gguf_tensor(&g, "output.weight") && gguf_tensor(&g, "position_embd.weight"));
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

static void check_against_numpy(CtArch arch, int tied) { gguf_check_against_numpy(hf_fixture_config(arch, tied)); }

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
    gguf_check_against_numpy(family_config(CT_FAMILY_QWEN2));
    gguf_check_against_transformers();
}
TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_qwen3) {
    gguf_check_against_numpy(family_config(CT_FAMILY_QWEN3));
    gguf_check_against_transformers();
}
TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_mistral) {
    gguf_check_against_numpy(family_config(CT_FAMILY_MISTRAL));
    gguf_check_against_transformers();
}
TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_gemma2) {
    gguf_check_against_numpy(family_config(CT_FAMILY_GEMMA2));
    gguf_check_against_transformers();
}
TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_llama3_rope) {
    CtModelConfig c = family_config(CT_FAMILY_LLAMA);
    c.rope_theta = 500000.0f;
    c.rope_scaling = (CtRopeScaling){.type = CT_ROPE_LLAMA3, .factor = 4, .original_max_position = 8,
                                     .low_freq_factor = 1, .high_freq_factor = 4};
    gguf_check_against_numpy(c);
    gguf_check_against_transformers();
}
TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_linear_rope) {
    CtModelConfig c = family_config(CT_FAMILY_LLAMA);
    c.rope_scaling = (CtRopeScaling){.type = CT_ROPE_LINEAR, .factor = 2};
    gguf_check_against_numpy(c);
    gguf_check_against_transformers();
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
        CHECK(gguf_parse(out, &g) == 0);
        CHECK_STR_EQ(gguf_kv(&g, "tokenizer.ggml.pre")->str, cases[i].name);
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
    CHECK(gguf_parse(out, &g) == 0);
    CHECK_EQ_INT(gguf_kv(&g, "tokenizer.ggml.eos_token_id")->u, 42);
    free(g.file);
}

// ---- the real client: llama.cpp itself (make test-long; tests/gguf_fixture.h) ----
// A checkpoint with a real tokenizer is exported as an f32 GGUF; llama.cpp must accept it,
// tokenize the prompt to the ids ctrain gives, and pick the greedy tokens `ctrain generate
// --temperature 0` picks.

TEST_LONG(hf_gguf, llama_cpp_greedy_equals_ctrain_gpt2_family_gpt2_tokenizer) {
    char tok[2048];
    snprintf(tok, sizeof tok, "%s/tokenizers/gpt2", ct_test_shared_data());
    gguf_llama_cpp_agrees(gguf_real_config(CT_ARCH_GPT2), tok, "gpt-2");
}

// 8k vocabularies trained by ctrain with the cl100k (Llama 3) and o200k patterns: llama.cpp must
// split text as ctrain does under each. (A .tiktoken rank file has no merge list, so a checkpoint
// cannot carry o200k_base itself as tokenizer.json.)
static void trained_8k(const char *pattern, const char *pre_name) {
    gguf_llama_cpp_agrees(gguf_real_config(CT_ARCH_LLAMA), gguf_trained_8k_tokenizer(pattern), pre_name);
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
    CtModelConfig c = gguf_real_config(CT_ARCH_LLAMA);
    c.rope_theta = 500000.0f;
    c.rope_scaling = (CtRopeScaling){.type = CT_ROPE_LLAMA3, .factor = 8, .original_max_position = 32,
                                     .low_freq_factor = 1, .high_freq_factor = 4};
    gguf_llama_cpp_agrees(c, gguf_trained_8k_tokenizer("cl100k"), "llama-bpe");
}

// Qwen2: q/k/v biases, RoPE base 1e6, Qwen2's pre-tokenizer.
TEST_LONG(hf_gguf, llama_cpp_greedy_equals_ctrain_qwen2_shape) {
    CtModelConfig c = gguf_real_config(CT_ARCH_LLAMA);
    c.family = CT_FAMILY_QWEN2;
    c.qkv_bias = 1;
    c.rope_theta = 1000000.0f;
    gguf_llama_cpp_agrees(c, gguf_trained_8k_tokenizer("qwen2"), "qwen2");
}

// Qwen3: RMSNorm on q and k per head, head_dim 24 (4 x 24 != d_model 64), no biases.
TEST_LONG(hf_gguf, llama_cpp_greedy_equals_ctrain_qwen3_shape) {
    CtModelConfig c = gguf_real_config(CT_ARCH_LLAMA);
    c.family = CT_FAMILY_QWEN3;
    c.qk_norm = 1;
    c.head_dim = 24;
    c.rope_theta = 1000000.0f;
    gguf_llama_cpp_agrees(c, gguf_trained_8k_tokenizer("qwen2"), "qwen2");
}

// Mistral: llama.cpp runs Mistral as its llama architecture, which attends to the whole context
// (no sliding window), so a window as long as the context (96 > the 68 positions here) is what both
// compute; a shorter window is refused by export (refuses_what_llama_cpp_computes_otherwise).
TEST_LONG(hf_gguf, llama_cpp_greedy_equals_ctrain_mistral_shape) {
    CtModelConfig c = gguf_real_config(CT_ARCH_LLAMA);
    c.family = CT_FAMILY_MISTRAL;
    c.sliding_window = c.max_seq_len;
    gguf_llama_cpp_agrees(c, gguf_trained_8k_tokenizer("cl100k"), "llama-bpe");
}

// Gemma 2: GeGLU, (1 + w) norms, pre- and post-norms, embeddings scaled by sqrt(d), head_dim 24
// (4 x 24 != d_model 64), attention and final soft-caps small enough to bend these weights'
// scores, a window of 8 on every other layer (the prompt alone is 36 tokens), tied head.
TEST_LONG(hf_gguf, llama_cpp_greedy_equals_ctrain_gemma2_shape) {
    CtModelConfig c = gguf_real_config(CT_ARCH_LLAMA);
    c.family = CT_FAMILY_GEMMA2;
    c.head_dim = 24;
    c.gate_act = CT_GATE_GELU_TANH;
    c.post_norms = c.embed_scale = 1;
    c.query_scale = 1.0f / sqrtf(24.0f);
    c.attn_softcap = 10.0f, c.final_softcap = 5.0f;
    c.sliding_window = 8, c.sliding_window_pattern = 2;
    c.tie_embeddings = 1;
    gguf_llama_cpp_agrees(c, gguf_trained_8k_tokenizer("cl100k"), "llama-bpe");
}
