// LoRA on the experts of MoE models against Hugging Face PEFT 0.21 on transformers 5
// (tests/ref/peft_moe_ref.py), where torch, transformers and peft are importable: (1) ctrain's
// adapter folder (attention modules + target_parameters on mlp.experts.gate_up_proj/down_proj),
// put on the transformers model of the same base with PeftModel.from_pretrained, gives ctrain's
// logits; (2) an adapter made by peft itself (random A and B) loads into ctrain with peft's
// logits. Qwen2-MoE (a dense layer, a gated shared expert, qkv biases) and Mixtral (every layer
// MoE). The base reaches transformers as ctrain's own parameters, each layer's experts fused by
// the script (independent of ctrain's HF export). Elsewhere the tests skip with the reason.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "kernels/ops.h"
#include "tests/hf_fixture.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/interop/lora_peft.h"
#include "train/model/lora.h"

#define REF_T 12

// The base's logits (adapters detached) against `with`: how far the adapters move them.
static double adapter_effect(CtModel *m, const CtBatch *b, const float *with, size_t n) {
    ct_lora_detach(m);
    ct_model_forward(m, b);
    return hf_fixture_relative_error(m->act.logits, with, n);
}

static void compare_with_peft(const char *family, CtModelConfig cfg, const char *targets, const char *params,
                              const char *peft_targets, const char *peft_params) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModel m;
    CHECK(ct_model_create(&m, &cfg, ct_ops_cpu(), 1, REF_T, CT_MODEL_FROZEN) == 0);
    tiny_randomize_params(&m, 42);
    // the base as ctrain names it (Qwen2-MoE's per-expert names)
    const char *base = ct_test_path("base.safetensors"), *tokens_path = ct_test_path("tokens.bin");
    CtNamedTensor *t = ct_alloc(sizeof(CtNamedTensor) * (size_t)m.n_tensors);
    ct_model_named_tensors(&m, 0, t);
    CHECK(ct_st_write(base, t, m.n_tensors, NULL, 0) == 0);
    ct_free(t);
    int32_t tokens[REF_T];
    for (int i = 0; i < REF_T; i++) tokens[i] = (i * 11 + 3) % cfg.vocab_size;
    FILE *fp = fopen(tokens_path, "wb");
    fwrite(tokens, sizeof(int32_t), REF_T, fp);
    fclose(fp);

    CtLoraSpec s = {.r = 3, .alpha = 6};
    snprintf(s.targets, sizeof s.targets, "%s", targets);
    snprintf(s.target_parameters, sizeof s.target_parameters, "%s", params);
    CHECK_MSG(ct_lora_attach(&m, &s) == 0, "%s", ct_error_message());
    CtRng rng;
    ct_rng_seed(&rng, 8);
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = (float)(0.3 * ct_rng_normal(&rng));
    const char *adapter = ct_test_path("adapter"), *out = ct_test_path("peft_logits.bin");
    const char *peft_adapter = ct_test_path("peft_adapter"), *peft_out = ct_test_path("peft_own_logits.bin");
    const char *base_out = ct_test_path("base_logits.bin");
    CHECK(ct_lora_save_peft(&m, adapter, "ctrain-moe-base") == 0);
    char args[4096];
    snprintf(args, sizeof args, "%s %d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%.9g,%.9g %s %s %s %s %s %s %s %s %s 3 6", family,
             cfg.vocab_size, cfg.d_model, cfg.n_layer, cfg.n_head, cfg.n_kv_head, cfg.d_ff, cfg.n_experts, cfg.top_k,
             cfg.moe_d_ff, cfg.n_shared_experts * cfg.moe_d_ff, cfg.moe_layer_freq ? cfg.moe_layer_freq : 1,
             (double)cfg.rope_theta, (double)cfg.norm_eps, base, adapter, tokens_path, out, peft_adapter, peft_out,
             base_out, peft_targets[0] ? peft_targets : ",", peft_params);
    if (hf_fixture_ref("peft_moe_ref.py", args) != 0) return;

    CtBatch b = {.tokens = tokens, .B = 1, .T = REF_T};
    const size_t n = (size_t)REF_T * cfg.vocab_size;
    float *want = ct_alloc(n * sizeof(float));
    // (0) the base alone: the two models agree before any adapter
    CHECK(hf_fixture_read_floats(base_out, want, n) == 0);
    CtLora *keep = m.lora;
    m.lora = NULL;
    ct_model_forward(&m, &b);
    m.lora = keep;
    double base_err = hf_fixture_relative_error(m.act.logits, want, n);
    printf("    %s: ctrain vs transformers, base alone: relative error %.3g\n", family, base_err);
    CHECK_MSG(base_err < 1e-5, "the base models differ (%.3g): the adapters cannot be compared", base_err);
    // (1) ctrain's adapter
    ct_model_forward(&m, &b);
    CHECK(hf_fixture_read_floats(out, want, n) == 0);
    double err = hf_fixture_relative_error(m.act.logits, want, n), effect = adapter_effect(&m, &b, want, n);
    printf("    %s %s + %s: ctrain vs PEFT on ctrain's adapter: relative error %.3g (the adapters move the logits by "
           "%.3g)\n", family, targets[0] ? targets : "-", params, err, effect);
    CHECK_MSG(err < 1e-5, "ctrain's logits differ from PEFT's by %.3g (relative)", err);
    CHECK_MSG(effect > 1e-2, "the adapters hardly change the logits (%.3g): the comparison would prove nothing", effect);
    // (2) PEFT's own adapter (m has no adapters now)
    CHECK_MSG(ct_lora_load_peft(&m, peft_adapter) == 0, "%s", ct_error_message());
    ct_model_forward(&m, &b);
    CHECK(hf_fixture_read_floats(peft_out, want, n) == 0);
    err = hf_fixture_relative_error(m.act.logits, want, n);
    effect = adapter_effect(&m, &b, want, n);
    printf("    %s %s + %s: ctrain vs PEFT on PEFT's own adapter: relative error %.3g (the adapters move the logits "
           "by %.3g)\n", family, peft_targets[0] ? peft_targets : "-", peft_params, err, effect);
    CHECK_MSG(err < 1e-5, "ctrain's logits with PEFT's adapter differ from PEFT's by %.3g (relative)", err);
    CHECK_MSG(effect > 1e-2, "PEFT's adapters hardly change the logits (%.3g)", effect);
    ct_free(want);
    ct_model_free(&m);
}

TEST(lora_moe_ref, qwen2_moe_experts_and_attention_match_peft_both_ways) {
    CtModelConfig c = tiny_variant_config("qwen2");  // q/k/v biases
    c.n_experts = 4;
    c.top_k = 2;
    c.moe_d_ff = 8;
    c.n_shared_experts = 2;
    c.shared_expert_gate = 1;
    c.moe_layer_freq = 2;  // layer 0 dense, layer 1 MoE
    c.router = CT_ROUTER_SOFTMAX;
    compare_with_peft("qwen2_moe", c, "all-linear", "mlp.experts.gate_up_proj,mlp.experts.down_proj", "q_proj,down_proj",
                      "mlp.experts.gate_up_proj,mlp.experts.down_proj");
}
TEST(lora_moe_ref, mixtral_experts_match_peft_both_ways) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.n_experts = 4;
    c.top_k = 2;
    c.moe_d_ff = 12;
    c.router = CT_ROUTER_SOFTMAX_NORM;  // transformers 5's Mixtral router: softmax, top-k, renormalised
    compare_with_peft("mixtral", c, "", "down_proj", "o_proj", "gate_up_proj");
}
