// The llama variants' config: what checkpoints keep of it, what validation refuses, what the run
// config's keys set. Their math is checked by the gradient checks (test_model_grad.c), the
// cache-vs-full-forward test (test_generate.c), LoRA's (test_lora.c) and against transformers
// by the interop tests.
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/interop/checkpoint_meta.h"
#include "train/loop/run_model.h"

TEST(model_config, variants_survive_the_checkpoint_json) {
    for (int i = 0; tiny_variant_names[i]; i++) {
        CtModelConfig c = tiny_variant_config(tiny_variant_names[i]), back;
        c.rope_scaling.mscale = c.rope_scaling.type == CT_ROPE_YARN ? 0.5f : 0;  // every field travels
        char *json = ct_model_config_json(&c);
        CHECK_MSG(ct_model_config_parse_json(json, &back, "test") == 0, "%s: %s", tiny_variant_names[i],
                  ct_error_message());
        CHECK_MSG(memcmp(&c, &back, sizeof c) == 0, "%s: the config read back differs: %s", tiny_variant_names[i], json);
        free(json);
    }
}

TEST(model_config, plain_llama_json_is_unchanged_and_old_checkpoints_read_as_plain) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA), back;
    char *json = ct_model_config_json(&c);
    CHECK_MSG(!strstr(json, "family") && !strstr(json, "rope_scaling") && !strstr(json, "head_dim"),
              "a plain model's JSON names variant fields: %s", json);
    free(json);
    // what a checkpoint written before the variants holds
    const char *old = "{\"arch\":\"llama\",\"n_layer\":2,\"n_head\":4,\"n_kv_head\":2,\"d_model\":16,\"d_ff\":24,"
                      "\"vocab_size\":37,\"max_seq_len\":16,\"norm_eps\":1e-05,\"rope_theta\":10000,"
                      "\"tie_embeddings\":false,\"dropout\":0}";
    CHECK(ct_model_config_parse_json(old, &back, "old") == 0);
    CHECK(memcmp(&c, &back, sizeof c) == 0);
}

TEST(model_config, variant_errors_name_the_key) {
    CtModelConfig c = tiny_config(CT_ARCH_GPT2);
    c.qkv_bias = 1;
    CHECK(ct_model_config_validate(&c) != 0);
    CHECK_CONTAINS(ct_error_message(), "gpt2 models have none of the llama variants");
    c = tiny_config(CT_ARCH_LLAMA);
    c.sliding_window_pattern = 2;
    CHECK(ct_model_config_validate(&c) != 0);
    CHECK_CONTAINS(ct_error_message(), "model.sliding_window_pattern 2 needs a model.sliding_window");
    c = tiny_variant_config("llama3");
    c.rope_scaling.high_freq_factor = 0.5f;
    CHECK(ct_model_config_validate(&c) != 0);
    CHECK_CONTAINS(ct_error_message(), "low_freq_factor < high_freq_factor");
    c = tiny_variant_config("yarn");
    c.rope_scaling.original_max_position = 0;
    CHECK(ct_model_config_validate(&c) != 0);
    CHECK_CONTAINS(ct_error_message(), "model.rope_scaling.original_max_position must be positive for RoPE type yarn");
    c = tiny_config(CT_ARCH_LLAMA);
    c.head_dim = 7;
    CHECK(ct_model_config_validate(&c) != 0);
    CHECK_CONTAINS(ct_error_message(), "even head size");
    CtModelConfig back;
    CHECK(ct_model_config_parse_json("{\"arch\":\"llama\",\"n_layer\":2,\"n_head\":4,\"n_kv_head\":2,\"d_model\":16,"
                                     "\"d_ff\":24,\"vocab_size\":37,\"max_seq_len\":16,\"rope_theta\":10000,"
                                     "\"norm_eps\":1e-5,\"family\":\"gemma9\"}",
                                     &back, "ckpt.h5") != 0);
    CHECK_CONTAINS(ct_error_message(), "ckpt.h5: model_config has an unknown family gemma9");
}

TEST(model_config, run_config_keys_set_the_variants) {
    CtRunConfig run;
    memset(&run, 0, sizeof run);
    snprintf(run.model.preset, sizeof run.model.preset, "llama-tiny");
    run.model.arch = 2;
    run.model.family = 1 + CT_FAMILY_GEMMA2;
    run.model.head_dim = 64;
    run.model.qk_norm = 1;
    run.model.gate_act = 1 + CT_GATE_GELU_TANH;
    run.model.post_norms = run.model.embed_scale = 1;
    run.model.sliding_window = 128;
    run.model.sliding_window_pattern = 2;
    run.model.query_scale = 0.125f;
    run.model.attn_softcap = 50;
    run.model.final_softcap = 30;
    run.model.rope_scaling.type = 1 + CT_ROPE_LLAMA3;
    run.model.rope_scaling.factor = 8;
    run.model.rope_scaling.low_freq_factor = 1;
    run.model.rope_scaling.high_freq_factor = 4;
    run.model.rope_scaling.original_max_position = 128;
    CtModelConfig c;
    CHECK_MSG(ct_model_config_from_run(&run, &c) == 0, "%s", ct_error_message());
    CHECK(c.family == CT_FAMILY_GEMMA2 && c.head_dim == 64 && c.qk_norm == 1 && c.gate_act == CT_GATE_GELU_TANH);
    CHECK(c.post_norms && c.embed_scale && c.sliding_window == 128 && c.sliding_window_pattern == 2);
    CHECK(c.query_scale == 0.125f && c.attn_softcap == 50 && c.final_softcap == 30);
    CHECK(c.rope_scaling.type == CT_ROPE_LLAMA3 && c.rope_scaling.factor == 8 && c.rope_scaling.high_freq_factor == 4);
    CHECK(ct_model_layer_slides(&c, 0) && !ct_model_layer_slides(&c, 1));
    CHECK_EQ_INT(ct_model_attn_width(&c), 6 * 64);  // llama-tiny: 6 heads
    // OLMoE's q/k norms over the whole projections: model.qk_norm_over=projection
    memset(&run, 0, sizeof run);
    snprintf(run.model.preset, sizeof run.model.preset, "llama-tiny");
    run.model.arch = 2;
    run.model.family = 1 + CT_FAMILY_OLMOE;
    run.model.qk_norm = 1;
    run.model.qk_norm_over = 1;
    run.model.n_kv_head = 6;
    CHECK_MSG(ct_model_config_from_run(&run, &c) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(c.qk_norm, 2);
    CHECK(c.family == CT_FAMILY_OLMOE);
}

TEST(model_config, flops_use_the_attention_width_and_windows) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    const double plain = ct_model_flops_per_token(&c, 8, 0);
    c.head_dim = 8;  // q and o grow: 4·8 = 32 wide instead of 16
    const double wide = ct_model_flops_per_token(&c, 8, 0);
    const double C = 16;  // per layer: q|k|v 32 → 64 rows of C, o 16 → 32 columns of C
    double weights = 2 * ((4 * 8 + 2 * 2 * 8) * C + C * 32 - ((16 + 2 * 2 * 4) * C + C * 16));
    CHECK_NEAR(wide - plain, 6 * weights + 2 * 12 * (32 - 16) * 4.0, 1e-6);  // attention: 12·AW·T/2 per layer
    c.sliding_window = 2;  // each query sees 2 − 4/16 = 1.75 keys on average instead of 4
    CHECK_NEAR(wide - ct_model_flops_per_token(&c, 8, 0), 2 * 12 * 32 * (4 - 1.75), 1e-6);
}
