// ctrain export gguf of Mixture-of-Experts models: Mixtral's shape as llama.cpp's llama
// architecture with experts (router ffn_gate_inp, experts stacked into ffn_{gate,up,down}_exps,
// expert_count / expert_used_count), Qwen2-MoE, Qwen3-MoE and OLMoE as llama.cpp's qwen2moe,
// qwen3moe and olmoe; what llama.cpp would route differently is refused in one line. The
// reference cases (suite hf_gguf, in make test-ref) read the files with llama.cpp's gguf package
// and an independent NumPy forward, and (make test-long) with llama.cpp itself.
#include <stdint.h>

#include "core/error.h"
#include "core/log.h"
#include "tests/gguf_fixture.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"
#include "train/interop/hf_interop.h"

// The fixture's llama shape (2 layers, d_model 16, 4 heads, 2 KV heads, vocabulary 264) with
// 4 experts of width 8, top 2, as `family` has them.
static CtModelConfig moe_config(CtFamily family, int tied) {
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, tied);
    c.family = family;
    c.n_experts = 4, c.top_k = 2, c.moe_d_ff = 8;
    c.router = CT_ROUTER_TOPK_SOFTMAX;
    if (family == CT_FAMILY_QWEN2_MOE) {
        c.qkv_bias = 1;
        c.n_shared_experts = 2, c.shared_expert_gate = 1;
        c.router = CT_ROUTER_SOFTMAX;
    }
    if (family == CT_FAMILY_QWEN3_MOE) c.qk_norm = 1, c.head_dim = 6, c.router = CT_ROUTER_SOFTMAX_NORM;
    if (family == CT_FAMILY_OLMOE) c.qk_norm = 2, c.n_kv_head = c.n_head, c.router = CT_ROUTER_SOFTMAX;
    return c;
}

// The parameter called `name` (NULL when absent).
static const float *param(const CtModel *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->table[i].name, name) == 0) return m->params + m->table[i].offset;
    return NULL;
}

static int dims_are(const TensorInfo *t, uint32_t n, uint64_t ne0, uint64_t ne1, uint64_t ne2) {
    return t && t->n_dims == n && t->ne[0] == ne0 && (n < 2 || t->ne[1] == ne1) && (n < 3 || t->ne[2] == ne2);
}

// Each expert's slice of a stacked f32 tensor equals that expert's own parameter, row for row.
static int experts_match(const Gguf *g, const CtModel *m, int layer, const char *gguf_name, const char *proj,
                         size_t per_expert) {
    char name[128];
    snprintf(name, sizeof name, "blk.%d.%s.weight", layer, gguf_name);
    const TensorInfo *t = gguf_tensor(g, name);
    if (!t || t->type != 0) return 0;
    const float *file = (const float *)(g->data + t->offset);
    for (int e = 0; e < m->config.n_experts; e++) {
        snprintf(name, sizeof name, "model.layers.%d.mlp.experts.%d.%s.weight", layer, e, proj);
        const float *w = param(m, name);
        if (!w || memcmp(file + (size_t)e * per_expert, w, per_expert * sizeof(float)) != 0) return 0;
    }
    return 1;
}

TEST(hf_gguf_moe, mixtral_export_has_llama_cpps_expert_layout) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c = moe_config(CT_FAMILY_MIXTRAL, 0);
    const char *ckpt = ct_test_path("mixtral.h5"), *out = ct_test_path("m.gguf");
    CHECK_MSG(hf_fixture_checkpoint(ckpt, &c, 5) == 0, "%s", ct_error_message());
    CtGgufExportOptions opt = {.dtype = "f32"};
    CHECK_MSG(ct_gguf_export(ckpt, out, &opt) == 0, "%s", ct_error_message());
    Gguf g;
    CHECK(gguf_parse(out, &g) == 0);
    CHECK_STR_EQ(gguf_kv(&g, "general.architecture")->str, "llama");
    CHECK_EQ_INT(gguf_kv(&g, "llama.expert_count")->u, 4);
    CHECK_EQ_INT(gguf_kv(&g, "llama.expert_used_count")->u, 2);
    CHECK_EQ_INT(gguf_kv(&g, "llama.feed_forward_length")->u, 8);  // the experts' width, as Mixtral's intermediate_size
    CHECK(gguf_kv(&g, "llama.expert_feed_forward_length")->type == 0);  // absent
    // per layer: attn_norm, q, k, v, o, ffn_norm, router, 3 stacked experts; no dense MLP
    CHECK_EQ_INT(g.n_t, 3 + 10 * 2);
    CHECK(gguf_tensor(&g, "blk.0.ffn_gate.weight") == NULL && gguf_tensor(&g, "blk.0.ffn_up.weight") == NULL);
    for (int l = 0; l < 2; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.ffn_gate_inp.weight", l);
        CHECK_MSG(dims_are(gguf_tensor(&g, name), 2, 16, 4, 0), "%s", name);  // numpy (E, C)
        snprintf(name, sizeof name, "blk.%d.ffn_gate_exps.weight", l);
        CHECK_MSG(dims_are(gguf_tensor(&g, name), 3, 16, 8, 4), "%s", name);  // numpy (E, F, C)
        snprintf(name, sizeof name, "blk.%d.ffn_up_exps.weight", l);
        CHECK_MSG(dims_are(gguf_tensor(&g, name), 3, 16, 8, 4), "%s", name);
        snprintf(name, sizeof name, "blk.%d.ffn_down_exps.weight", l);
        CHECK_MSG(dims_are(gguf_tensor(&g, name), 3, 8, 16, 4), "%s", name);  // numpy (E, C, F)
        CHECK_MSG(gguf_tensor(&g, name)->offset % 32 == 0, "%s", name);
    }
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(hf_fixture_load(ckpt, &m, &meta) == 0);
    const TensorInfo *router = gguf_tensor(&g, "blk.1.ffn_gate_inp.weight");
    CHECK(memcmp(g.data + router->offset, param(&m, "model.layers.1.mlp.gate.weight"), 4 * 16 * sizeof(float)) == 0);
    CHECK(experts_match(&g, &m, 1, "ffn_gate_exps", "gate_proj", 8 * 16));
    CHECK(experts_match(&g, &m, 1, "ffn_up_exps", "up_proj", 8 * 16));
    CHECK(experts_match(&g, &m, 0, "ffn_down_exps", "down_proj", 16 * 8));
    // q rows still permuted to adjacent pairs (head size 4: rows 0,1,2,3 <- 0,2,1,3)
    const float *q = param(&m, "model.layers.0.self_attn.q_proj.weight");
    const float *file_q = (const float *)(g.data + gguf_tensor(&g, "blk.0.attn_q.weight")->offset);
    CHECK(memcmp(file_q + 1 * 16, q + 2 * 16, 16 * sizeof(float)) == 0);
    const TensorInfo *last = &g.t[g.n_t - 1];
    uint64_t last_numel = last->ne[0] * (last->n_dims > 1 ? last->ne[1] : 1) * (last->n_dims > 2 ? last->ne[2] : 1);
    CHECK_EQ_INT((size_t)(g.data - g.file) + last->offset + last_numel * 4, g.size);
    ct_model_free(&m);
    ct_checkpoint_meta_free(&meta);
    free(g.file);

    // f16: the experts in f16; norms and the router in f32, as convert_hf_to_gguf.py keeps them
    opt.dtype = "f16";
    CHECK_MSG(ct_gguf_export(ckpt, out, &opt) == 0, "%s", ct_error_message());
    CHECK(gguf_parse(out, &g) == 0);
    CHECK_EQ_INT(gguf_tensor(&g, "blk.0.ffn_gate_inp.weight")->type, 0);
    CHECK_EQ_INT(gguf_tensor(&g, "blk.0.ffn_gate_exps.weight")->type, 1);
    CHECK_EQ_INT(gguf_tensor(&g, "blk.0.ffn_down_exps.weight")->type, 1);
    CHECK_EQ_INT(gguf_tensor(&g, "blk.0.ffn_norm.weight")->type, 0);
    free(g.file);
}

// Qwen2-MoE: llama.cpp's qwen2moe sizes experts by expert_feed_forward_length and the shared
// expert by expert_shared_feed_forward_length; the shared gate is [1, C] (ne {C, 1}) in f32 in an
// f16 file, as the convert script writes it; its head is its own tensor, so a tied one is written
// out as a copy of the embedding.
TEST(hf_gguf_moe, qwen2_moe_export_has_the_shared_expert_and_its_gate) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c = moe_config(CT_FAMILY_QWEN2_MOE, 1);
    const char *ckpt = ct_test_path("qwen2moe.h5"), *out = ct_test_path("m.gguf");
    CHECK_MSG(hf_fixture_checkpoint(ckpt, &c, 6) == 0, "%s", ct_error_message());
    CtGgufExportOptions opt = {.dtype = "f16"};
    CHECK_MSG(ct_gguf_export(ckpt, out, &opt) == 0, "%s", ct_error_message());
    Gguf g;
    CHECK(gguf_parse(out, &g) == 0);
    CHECK_STR_EQ(gguf_kv(&g, "general.architecture")->str, "qwen2moe");
    CHECK_EQ_INT(gguf_kv(&g, "qwen2moe.expert_count")->u, 4);
    CHECK_EQ_INT(gguf_kv(&g, "qwen2moe.expert_used_count")->u, 2);
    CHECK_EQ_INT(gguf_kv(&g, "qwen2moe.expert_feed_forward_length")->u, 8);
    CHECK_EQ_INT(gguf_kv(&g, "qwen2moe.expert_shared_feed_forward_length")->u, 16);
    CHECK_EQ_INT(gguf_kv(&g, "qwen2moe.feed_forward_length")->u, 24);
    const TensorInfo *gate = gguf_tensor(&g, "blk.1.ffn_gate_inp_shexp.weight");
    CHECK(dims_are(gate, 2, 16, 1, 0) && gate->type == 0);
    CHECK_EQ_INT(gguf_tensor(&g, "blk.1.ffn_gate_inp.weight")->type, 0);
    CHECK_EQ_INT(gguf_tensor(&g, "blk.1.ffn_gate_shexp.weight")->type, 1);
    CHECK(dims_are(gguf_tensor(&g, "blk.1.ffn_gate_shexp.weight"), 2, 16, 16, 0));
    CHECK(dims_are(gguf_tensor(&g, "blk.1.ffn_up_shexp.weight"), 2, 16, 16, 0));
    CHECK(dims_are(gguf_tensor(&g, "blk.1.ffn_down_shexp.weight"), 2, 16, 16, 0));
    CHECK(dims_are(gguf_tensor(&g, "blk.1.ffn_gate_exps.weight"), 3, 16, 8, 4));
    CHECK(gguf_tensor(&g, "blk.0.attn_q.bias") && gguf_tensor(&g, "output.weight"));
    // + per layer 3 biases and 4 shared-expert tensors; + output, a copy of the tied embedding
    CHECK_EQ_INT(g.n_t, 3 + 17 * 2);
    const TensorInfo *emb = gguf_tensor(&g, "token_embd.weight"), *head = gguf_tensor(&g, "output.weight");
    CHECK(memcmp(g.data + emb->offset, g.data + head->offset, 264 * 16 * 2) == 0);
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(hf_fixture_load(ckpt, &m, &meta) == 0);
    CHECK(memcmp(g.data + gate->offset, param(&m, "model.layers.1.mlp.shared_expert_gate.weight"), 16 * 4) == 0);
    ct_model_free(&m);
    ct_checkpoint_meta_free(&meta);
    free(g.file);
}

// Qwen3-MoE and OLMoE: their q/k norms next to the experts; OLMoE's span the whole projection.
TEST(hf_gguf_moe, qwen3_moe_and_olmoe_exports_have_their_norms_and_expert_widths) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *ckpt = ct_test_path("m.h5"), *out = ct_test_path("m.gguf");
    CtGgufExportOptions opt = {.dtype = "f32"};
    Gguf g;
    CtModelConfig c = moe_config(CT_FAMILY_QWEN3_MOE, 0);
    CHECK_MSG(hf_fixture_checkpoint(ckpt, &c, 7) == 0, "%s", ct_error_message());
    CHECK_MSG(ct_gguf_export(ckpt, out, &opt) == 0, "%s", ct_error_message());
    CHECK(gguf_parse(out, &g) == 0);
    CHECK_STR_EQ(gguf_kv(&g, "general.architecture")->str, "qwen3moe");
    CHECK_EQ_INT(gguf_kv(&g, "qwen3moe.expert_feed_forward_length")->u, 8);
    CHECK_EQ_INT(gguf_kv(&g, "qwen3moe.attention.key_length")->u, 6);
    CHECK(dims_are(gguf_tensor(&g, "blk.0.attn_q_norm.weight"), 1, 6, 0, 0));
    CHECK(dims_are(gguf_tensor(&g, "blk.0.attn_q.weight"), 2, 16, 24, 0));
    CHECK(dims_are(gguf_tensor(&g, "blk.0.ffn_up_exps.weight"), 3, 16, 8, 4));
    free(g.file);

    c = moe_config(CT_FAMILY_OLMOE, 0);
    CHECK_MSG(hf_fixture_checkpoint(ckpt, &c, 7) == 0, "%s", ct_error_message());
    CHECK_MSG(ct_gguf_export(ckpt, out, &opt) == 0, "%s", ct_error_message());
    CHECK(gguf_parse(out, &g) == 0);
    CHECK_STR_EQ(gguf_kv(&g, "general.architecture")->str, "olmoe");
    CHECK_EQ_INT(gguf_kv(&g, "olmoe.feed_forward_length")->u, 8);
    CHECK_EQ_INT(gguf_kv(&g, "olmoe.expert_count")->u, 4);
    CHECK(dims_are(gguf_tensor(&g, "blk.1.attn_k_norm.weight"), 1, 16, 0, 0));
    CHECK(dims_are(gguf_tensor(&g, "blk.1.ffn_down_exps.weight"), 3, 8, 16, 4));
    free(g.file);
}

// What llama.cpp would route or compute otherwise is refused with one line naming it, and no
// file is left behind.
TEST(hf_gguf_moe, refuses_what_llama_cpp_routes_otherwise_in_one_line) {
    ct_log_set_level(CT_LOG_QUIET);
    enum { N = 10 };
    CtModelConfig cases[N];
    const char *want[N] = {
        "model.router softmax: llama.cpp's llama renormalises the top-k weights",
        "model.router sigmoid_norm: llama.cpp's llama routes by a softmax, not by sigmoid scores",
        "model.router softmax_norm: llama.cpp's qwen2moe does not renormalise the top-k weights",
        "model.router_scale 2.5: llama.cpp's llama does not scale the routed weights",
        "model.n_shared_experts 1: llama.cpp's llama has no shared experts",
        "llama.cpp's qwen2moe has a shared expert behind a sigmoid gate; this model has none",
        "model.moe_layer_freq 2: every layer of llama.cpp's qwen3moe is MoE",
        "llama.cpp's gemma2 architecture has no experts",
        "a sliding window (4, below the context of 16) is not supported: llama.cpp's llama",
        "this mixtral model mixes in features of other families",
    };
    for (int i = 0; i < N; i++) cases[i] = moe_config(CT_FAMILY_MIXTRAL, 0);
    cases[0].router = CT_ROUTER_SOFTMAX;
    cases[1].router = CT_ROUTER_SIGMOID_NORM;
    cases[2] = moe_config(CT_FAMILY_QWEN2_MOE, 0);
    cases[2].router = CT_ROUTER_SOFTMAX_NORM;
    cases[3].router_scale = 2.5f;
    cases[4].n_shared_experts = 1;
    cases[5] = moe_config(CT_FAMILY_QWEN2_MOE, 0);
    cases[5].n_shared_experts = 0, cases[5].shared_expert_gate = 0;
    cases[6] = moe_config(CT_FAMILY_QWEN3_MOE, 0);
    cases[6].moe_layer_freq = 2;
    cases[7].family = CT_FAMILY_GEMMA2, cases[7].gate_act = CT_GATE_GELU_TANH, cases[7].post_norms = 1,
    cases[7].embed_scale = 1, cases[7].attn_softcap = 5, cases[7].final_softcap = 3, cases[7].tie_embeddings = 1;
    cases[8].sliding_window = 4;
    cases[9].qkv_bias = 1;
    const char *ckpt = ct_test_path("m.h5"), *out = ct_test_path("m.gguf");
    for (int i = 0; i < N; i++) {
        CHECK_MSG(hf_fixture_checkpoint(ckpt, &cases[i], 8) == 0, "case %d: %s", i, ct_error_message());
        CtGgufExportOptions opt = {.dtype = "f32"};
        CHECK_MSG(ct_gguf_export(ckpt, out, &opt) != 0, "case %d exported", i);
        const char *msg = ct_error_message();
        CHECK_CONTAINS(msg, want[i]);
        CHECK_MSG(strchr(msg, '\n') == NULL, "case %d: more than one line: %s", i, msg);
        FILE *fp = fopen(out, "rb");
        CHECK_MSG(fp == NULL, "case %d left %s behind", i, out);
    }
}

// Through the command line: the refusal is one line on the terminal and the exit status says so.
TEST(hf_gguf_moe, cli_refusal_is_one_line) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c = moe_config(CT_FAMILY_MIXTRAL, 0);
    c.router = CT_ROUTER_SIGMOID;
    const char *ckpt = ct_test_path("m.h5"), *out = ct_test_path("m.gguf");
    CHECK_MSG(hf_fixture_checkpoint(ckpt, &c, 8) == 0, "%s", ct_error_message());
    char cmd[4096];
    char *text = NULL;
    snprintf(cmd, sizeof cmd, "'%s' export gguf '%s' --out '%s' 2>&1", ct_test_bin(), ckpt, out);
    int rc = ct_test_run(cmd, &text);
    CHECK_MSG(rc != 0, "exported: %s", text ? text : "");
    CHECK_CONTAINS(text, "llama.cpp's llama routes by a softmax, not by sigmoid scores");
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == '\n') n--;
    CHECK_MSG(memchr(text, '\n', n) == NULL, "more than one line:\n%s", text);
    free(text);
    FILE *fp = fopen(out, "rb");
    CHECK(fp == NULL);
}

// ---- reference cases (make test-ref): llama.cpp's gguf package, NumPy, transformers, llama.cpp ----

// The gguf package reads every MoE tensor under a name llama.cpp knows for the architecture, the
// sizes in the keys are the tensors' own, and a NumPy forward in llama.cpp's conventions
// (build_moe_ffn's routing) computes ctrain's logits from the file; then against transformers on
// `ctrain export hf` of the same checkpoint.
TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_mixtral) {
    gguf_check_against_numpy(moe_config(CT_FAMILY_MIXTRAL, 0));
    gguf_check_against_transformers();
}
TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_qwen2_moe) {
    gguf_check_against_numpy(moe_config(CT_FAMILY_QWEN2_MOE, 0));
    gguf_check_against_transformers();
}
TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_qwen3_moe) {
    gguf_check_against_numpy(moe_config(CT_FAMILY_QWEN3_MOE, 0));
    gguf_check_against_transformers();
}
TEST(hf_gguf, llama_cpp_reader_and_numpy_forward_agree_with_ctrain_olmoe) {
    gguf_check_against_numpy(moe_config(CT_FAMILY_OLMOE, 0));
    gguf_check_against_transformers();
}

// llama.cpp itself: the MoE shapes at d_model 64 (4 heads, 2 KV heads except OLMoE's 4) with 8
// experts of width 32, top 2, an 8k byte-level vocabulary trained on the corpus, through
// llama.cpp's own build_moe_ffn and KV cache over a 36- or 39-token prompt and 32 greedy tokens.
static CtModelConfig real_moe_config(CtFamily family) {
    CtModelConfig c = gguf_real_config(CT_ARCH_LLAMA);
    c.family = family;
    c.n_experts = 8, c.top_k = 2, c.moe_d_ff = 32;
    c.router = CT_ROUTER_TOPK_SOFTMAX;
    c.rope_theta = 1000000.0f;
    if (family == CT_FAMILY_QWEN2_MOE) {
        c.qkv_bias = 1;
        c.n_shared_experts = 2, c.shared_expert_gate = 1;
        c.router = CT_ROUTER_SOFTMAX;
    }
    if (family == CT_FAMILY_QWEN3_MOE) c.qk_norm = 1, c.head_dim = 24, c.router = CT_ROUTER_SOFTMAX_NORM;
    if (family == CT_FAMILY_OLMOE) c.qk_norm = 2, c.n_kv_head = c.n_head, c.router = CT_ROUTER_SOFTMAX;
    return c;
}

// Mixtral: Mistral's attention (q/k rows permuted to llama.cpp's adjacent pairs) and top-2 of 8
// experts renormalised, as llama.cpp's llama architecture routes.
TEST_LONG(hf_gguf, llama_cpp_greedy_equals_ctrain_mixtral_shape) {
    gguf_llama_cpp_agrees(real_moe_config(CT_FAMILY_MIXTRAL), gguf_trained_8k_tokenizer("cl100k"), "llama-bpe");
}
TEST_LONG(hf_gguf, llama_cpp_greedy_equals_ctrain_qwen2_moe_shape) {
    gguf_llama_cpp_agrees(real_moe_config(CT_FAMILY_QWEN2_MOE), gguf_trained_8k_tokenizer("qwen2"), "qwen2");
}
TEST_LONG(hf_gguf, llama_cpp_greedy_equals_ctrain_qwen3_moe_shape) {
    gguf_llama_cpp_agrees(real_moe_config(CT_FAMILY_QWEN3_MOE), gguf_trained_8k_tokenizer("qwen2"), "qwen2");
}
TEST_LONG(hf_gguf, llama_cpp_greedy_equals_ctrain_olmoe_shape) {
    gguf_llama_cpp_agrees(real_moe_config(CT_FAMILY_OLMOE), gguf_trained_8k_tokenizer("cl100k"), "llama-bpe");
}

// llama.cpp's own convert_hf_to_gguf.py (from the source scripts/build_llama_cpp.sh unpacks), run
// on `ctrain export hf` of the same checkpoint, writes the same file (tests/ref/check_gguf_convert.py):
// every tensor bit for bit with its ggml type and shape (the stacked experts; the routers in f32
// even in an f16 file; q/k rows permuted for llama), the model keys and the tokenizer arrays; in
// f32 and in f16.
static void convert_script_agrees(CtModelConfig c) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *greedy = gguf_llama_greedy();
    if (!greedy) return;
    char src[4096];  // greedy is CACHE/build/llama_greedy; the source is CACHE/src
    snprintf(src, sizeof src, "%s", greedy);
    for (int up = 0; up < 2; up++)
        if (strrchr(src, '/')) *strrchr(src, '/') = 0;
    strncat(src, "/src", sizeof src - strlen(src) - 1);
    const char *ckpt = ct_test_path("m.h5"), *out = ct_test_path("m.gguf");
    CHECK_MSG(hf_fixture_checkpoint(ckpt, &c, 9) == 0, "%s", ct_error_message());
    CtHfExportOptions hopt = {0};
    CHECK_MSG(ct_hf_export(ckpt, ct_test_path("hf"), &hopt) == 0, "%s", ct_error_message());
    static const char *const dtypes[2] = {"f32", "f16"};
    for (int i = 0; i < 2; i++) {
        CtGgufExportOptions opt = {.dtype = dtypes[i]};
        CHECK_MSG(ct_gguf_export(ckpt, out, &opt) == 0, "%s", ct_error_message());
        char args[8192];
        snprintf(args, sizeof args, "'%s' '%s' '%s' gpt-2 %s", out, ct_test_path("hf"), src, dtypes[i]);
        if (hf_fixture_ref("check_gguf_convert.py", args) != 0) return;
    }
}

TEST_LONG(hf_gguf, llama_cpp_convert_script_writes_the_same_file_mixtral) {
    convert_script_agrees(moe_config(CT_FAMILY_MIXTRAL, 0));
}
TEST_LONG(hf_gguf, llama_cpp_convert_script_writes_the_same_file_qwen2_moe) {
    convert_script_agrees(moe_config(CT_FAMILY_QWEN2_MOE, 0));
}
TEST_LONG(hf_gguf, llama_cpp_convert_script_writes_the_same_file_qwen3_moe) {
    convert_script_agrees(moe_config(CT_FAMILY_QWEN3_MOE, 0));
}
TEST_LONG(hf_gguf, llama_cpp_convert_script_writes_the_same_file_olmoe) {
    convert_script_agrees(moe_config(CT_FAMILY_OLMOE, 0));
}
// The dense Llama shape (grouped-query heads) for comparison: the q/k permutation is the script's.
TEST_LONG(hf_gguf, llama_cpp_convert_script_writes_the_same_file_llama) {
    convert_script_agrees(hf_fixture_config(CT_ARCH_LLAMA, 0));
}
