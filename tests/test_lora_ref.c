// ctrain's LoRA against Hugging Face PEFT (tests/ref/peft_ref.py), where torch, transformers and
// peft are importable: (1) ctrain's adapter folder, put on ctrain's HF export of the same base
// with PeftModel.from_pretrained, gives ctrain's logits; (2) an adapter made and saved by peft
// itself loads into ctrain with peft's logits. Both families (GPT-2's Conv1D c_attn, llama's
// separate q/k/v over ctrain's fused product). And LoRA training (tests/ref/lora_sft_trl_ref.py):
// `ctrain sft` with adapters on every linear layer gives TRL's SFTTrainer + PEFT's loss, gradient
// norm and learning rate at every step and PEFT's adapters after the last, and so do the rows of
// tokens the vocabulary gained (PEFT's trainable_token_indices). Elsewhere the tests skip with
// the reason.
#include <math.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "kernels/ops.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"
#include "train/interop/hf_interop.h"
#include "train/model/lora.h"
#include "train/interop/lora_peft.h"

#define REF_T 12

// How far the adapters move the logits: the base's logits (adapters detached) against `with`.
// Leaves m without adapters and its logits overwritten, so call it after comparing.
static double adapter_effect(CtModel *m, const CtBatch *b, const float *with, size_t n) {
    float *keep = ct_alloc(n * sizeof(float));
    memcpy(keep, m->act.logits, n * sizeof(float));
    ct_lora_detach(m);
    ct_model_forward(m, b);
    double e = hf_fixture_relative_error(m->act.logits, with, n);
    memcpy(m->act.logits, keep, n * sizeof(float));
    ct_free(keep);
    return e;
}

// Both directions with one Python process: ctrain's adapter (targets) in PEFT, and PEFT's own
// adapter (peft_targets) in ctrain.
static void compare_with_peft(CtArch arch, const char *targets, const char *peft_targets, int rslora) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *base, *hf, *tokens_path;
    int32_t tokens[REF_T];
    CHECK_MSG(hf_fixture_adapter_base(arch, REF_T, &base, &hf, &tokens_path, tokens) == 0, "%s", ct_error_message());
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(ct_checkpoint_load(base, &m, ct_ops_cpu(), 1, REF_T, CT_MODEL_FROZEN, NULL, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CtLoraSpec s = {.r = 4, .alpha = 8, .rslora = rslora};
    snprintf(s.targets, sizeof s.targets, "%s", targets);
    CHECK_MSG(ct_lora_attach(&m, &s) == 0, "%s", ct_error_message());
    CtRng rng;
    ct_rng_seed(&rng, 8);
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = (float)(0.3 * ct_rng_normal(&rng));
    const char *adapter = ct_test_path("adapter"), *out = ct_test_path("peft_logits.bin");
    const char *peft_adapter = ct_test_path("peft_adapter"), *peft_out = ct_test_path("peft_own_logits.bin");
    CHECK(ct_lora_save_peft(&m, adapter, hf) == 0);
    char args[4096];
    snprintf(args, sizeof args, "both %s %s %s %s %s %s %s 4 8 %d", hf, adapter, tokens_path, out, peft_adapter, peft_out,
             peft_targets, rslora);
    if (hf_fixture_ref("peft_ref.py", args) != 0) return;

    CtBatch b = {.tokens = tokens, .B = 1, .T = REF_T};
    const size_t n = (size_t)REF_T * m.config.vocab_size;
    float *want = ct_alloc(n * sizeof(float));
    // (1) ctrain's adapter: ctrain's logits against PEFT's
    ct_model_forward(&m, &b);
    CHECK(hf_fixture_read_floats(out, want, n) == 0);
    double err = hf_fixture_relative_error(m.act.logits, want, n), effect = adapter_effect(&m, &b, want, n);
    printf("    %s %s%s: ctrain vs PEFT on ctrain's adapter: relative error %.3g (the adapters move the logits by "
           "%.3g)\n", ct_arch_name(arch), targets, rslora ? " (rslora)" : "", err, effect);
    CHECK_MSG(err < 1e-4, "ctrain's logits differ from PEFT's by %.3g (relative)", err);
    CHECK_MSG(effect > 1e-2, "the adapters hardly change the logits (%.3g): the comparison would prove nothing", effect);
    // (2) PEFT's own adapter read by ctrain (m has no adapters now)
    CHECK_MSG(ct_lora_load_peft(&m, peft_adapter) == 0, "%s", ct_error_message());
    ct_model_forward(&m, &b);
    CHECK(hf_fixture_read_floats(peft_out, want, n) == 0);
    err = hf_fixture_relative_error(m.act.logits, want, n);
    effect = adapter_effect(&m, &b, want, n);
    printf("    %s %s%s: ctrain vs PEFT on PEFT's own adapter: relative error %.3g (the adapters move the logits by "
           "%.3g)\n", ct_arch_name(arch), peft_targets, rslora ? " (rslora)" : "", err, effect);
    CHECK_MSG(err < 1e-4, "ctrain's logits with PEFT's adapter differ from PEFT's by %.3g (relative)", err);
    CHECK_MSG(effect > 1e-2, "PEFT's adapters hardly change the logits (%.3g)", effect);
    ct_free(want);
    ct_model_free(&m);
}

TEST(lora_ref, gpt2_adapters_match_peft_both_ways) { compare_with_peft(CT_ARCH_GPT2, "c_attn,mlp.c_proj", "c_attn,c_fc", 0); }
TEST(lora_ref, llama_adapters_match_peft_both_ways) {
    compare_with_peft(CT_ARCH_LLAMA, "all-linear", "q_proj,k_proj,v_proj,up_proj", 1);
}

static void write_tokens(const char *path, const int32_t *tokens) {
    FILE *fp = fopen(path, "wb");
    fwrite(tokens, sizeof(int32_t), REF_T, fp);
    fclose(fp);
}

static void set_pattern(CtLoraPattern *p, const char *key, double value) {
    snprintf(p->key, sizeof p->key, "%s", key);
    p->value = value;
}

// PEFT's richer configs, both ways. ctrain's side (ctrain_side 1): an adapter with a target
// regex, rank_pattern, alpha_pattern, lora_dropout 0.1 and two trainable token rows past the
// base's vocabulary (the embedding's, and an untied head's) — what LoRA SFT with vocabulary
// growth writes — loads in PEFT on the base grown by resize_token_embeddings and gives ctrain's
// logits on tokens that use the new ids. PEFT's side: an adapter made by peft itself (`variant`:
// all-linear with rank_pattern, alpha_pattern and trainable_token_indices; a regex; a list
// with layers_to_transform and layers_pattern) loads in ctrain with PEFT's logits.
static void rich_with_peft(CtArch arch, const char *variant, int ctrain_side) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *base, *hf, *tokens_path;
    int32_t tokens[REF_T], grown[REF_T];
    CHECK_MSG(hf_fixture_adapter_base(arch, REF_T, &base, &hf, &tokens_path, tokens) == 0, "%s", ct_error_message());
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(ct_checkpoint_load(base, &m, ct_ops_cpu(), 1, REF_T, CT_MODEL_FROZEN, NULL, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    const int V = m.config.vocab_size;
    memcpy(grown, tokens, sizeof grown);
    grown[2] = V, grown[7] = V + 1, grown[9] = V;
    const char *grown_path = ct_test_path("grown_tokens.bin");
    write_tokens(grown_path, grown);
    const char *adapter = ct_test_path("adapter"), *out = ct_test_path("peft_logits.bin");
    if (ctrain_side) {
        CtLoraSpec *s = calloc(1, sizeof *s);
        *s = (CtLoraSpec){.r = 4, .alpha = 8, .dropout = 0.1, .n_rank_pattern = 1, .n_alpha_pattern = 1,
                          .n_tokens = 2, .token_head = 1};
        snprintf(s->target_regex, sizeof s->target_regex, "%s",
                 arch == CT_ARCH_GPT2 ? "transformer\\.h\\.\\d+\\.(attn\\.c_attn|mlp\\.c_fc)"
                                      : "model\\.layers\\.\\d+\\.(self_attn\\.[qkv]_proj|mlp\\.down_proj)");
        set_pattern(&s->rank_pattern[0], arch == CT_ARCH_GPT2 ? "c_fc" : "k_proj", 2);
        set_pattern(&s->alpha_pattern[0], arch == CT_ARCH_GPT2 ? "c_attn" : "down_proj", 5);
        s->token_ids[0] = V, s->token_ids[1] = V + 1;
        CHECK_MSG(ct_lora_attach(&m, s) == 0, "%s", ct_error_message());
        free(s);
        CHECK_EQ_INT(m.config.vocab_size, V + 2);
        CtRng rng;
        ct_rng_seed(&rng, 8);
        for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = (float)(0.3 * ct_rng_normal(&rng));
        CHECK(ct_lora_save_peft(&m, adapter, hf) == 0);
    }
    const char *peft_adapter = ct_test_path("peft_adapter"), *peft_out = ct_test_path("peft_own_logits.bin");
    char args[4096];
    snprintf(args, sizeof args, "rich %s %s %s %s %s %s %s %d %s", hf, ctrain_side ? adapter : "-", grown_path, out,
             peft_adapter, tokens_path, peft_out, V + 2, variant);
    if (hf_fixture_ref("peft_ref.py", args) != 0) return;

    if (ctrain_side) {
        CtBatch b = {.tokens = grown, .B = 1, .T = REF_T};
        const size_t n = (size_t)REF_T * (V + 2);
        float *want = ct_alloc(n * sizeof(float));
        ct_model_forward(&m, &b);
        CHECK(hf_fixture_read_floats(out, want, n) == 0);
        double err = hf_fixture_relative_error(m.act.logits, want, n);
        printf("    %s regex + rank/alpha_pattern + 2 new token rows: ctrain vs PEFT (resized base) on ctrain's adapter: "
               "relative error %.3g\n", ct_arch_name(arch), err);
        CHECK_MSG(err < 1e-4, "ctrain's logits differ from PEFT's by %.3g (relative)", err);
        ct_free(want);
    }
    ct_model_free(&m);
    CHECK(ct_checkpoint_load(base, &m, ct_ops_cpu(), 1, REF_T, CT_MODEL_FROZEN, NULL, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CHECK_MSG(ct_lora_load_peft(&m, peft_adapter) == 0, "%s", ct_error_message());
    CtBatch b = {.tokens = tokens, .B = 1, .T = REF_T};
    const size_t n = (size_t)REF_T * V;
    float *want = ct_alloc(n * sizeof(float));
    ct_model_forward(&m, &b);
    CHECK(hf_fixture_read_floats(peft_out, want, n) == 0);
    double err = hf_fixture_relative_error(m.act.logits, want, n), effect = adapter_effect(&m, &b, want, n);
    printf("    %s %s: ctrain vs PEFT on PEFT's own adapter: relative error %.3g (the adapters move the logits by %.3g)\n",
           ct_arch_name(arch), variant, err, effect);
    CHECK_MSG(err < 1e-4, "ctrain's logits with PEFT's adapter differ from PEFT's by %.3g (relative)", err);
    CHECK_MSG(effect > 1e-2, "PEFT's adapters hardly change the logits (%.3g)", effect);
    ct_free(want);
    ct_model_free(&m);
}

TEST(lora_ref, gpt2_all_linear_patterns_and_token_rows_both_ways) { rich_with_peft(CT_ARCH_GPT2, "all-linear", 1); }
TEST(lora_ref, llama_all_linear_patterns_and_token_rows_both_ways) { rich_with_peft(CT_ARCH_LLAMA, "all-linear", 1); }
TEST(lora_ref, llama_peft_regex_adapter_loads_in_ctrain) { rich_with_peft(CT_ARCH_LLAMA, "regex", 0); }
TEST(lora_ref, gpt2_peft_layers_to_transform_adapter_loads_in_ctrain) { rich_with_peft(CT_ARCH_GPT2, "layers", 0); }

// A 1024-token tokenizer (tokenizer.json, which transformers loads too) in dir: with ChatML's
// tokens, or (grow) without them, so that ctrain shard adds them and ctrain sft grows the base.
static int make_tokenizer(const char *dir, int grow) {
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && head -c 300000 '%s/corpora/nlp-corpus-40k.txt' > corpus.txt && '%s' tokenizer train --input "
             "corpus.txt --vocab-size 1024 --special '<|endoftext|>' %s --quiet --out tok.json",
             dir, ct_test_shared_data(), ct_test_bin(), grow ? "" : "'<|im_start|>' '<|im_end|>'");
    int rc = ct_test_run(cmd, &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "%s: %s", cmd, out);
    free(out);
    return rc;
}

// 8 steps of LoRA SFT (r 8, all-linear, weight decay, cosine to min_lr, clipping in some steps,
// two micro-batches, unpacked and packed) by ctrain and by TRL + PEFT from the same adapters;
// with grow, the new tokens' rows train too (PEFT's trainable_token_indices).
static void sft_with_trl(const char *arch, int grow) {
    const char *dir = ct_test_tmpdir();
    if (make_tokenizer(dir, grow) != 0) return;  // (skips where the shared test data is absent)
    char args[4096];
    snprintf(args, sizeof args, "'%s' '%s' %s%s", ct_test_bin(), dir, arch, grow ? " grow" : "");
    hf_fixture_ref("lora_sft_trl_ref.py", args);
}

TEST_LONG(lora_ref, llama_lora_sft_trains_as_trl_sft_trainer_with_peft_does) { sft_with_trl("llama", 0); }
TEST_LONG(lora_ref, gpt2_lora_sft_trains_as_trl_sft_trainer_with_peft_does) { sft_with_trl("gpt2", 0); }
// the untied head's rows train too; GPT-2's tied rows get both gradients (embedding and head)
TEST_LONG(lora_ref, llama_lora_sft_new_token_rows_train_as_peft_trainable_tokens_do) { sft_with_trl("llama", 1); }
TEST_LONG(lora_ref, gpt2_lora_sft_new_token_rows_train_as_peft_trainable_tokens_do) { sft_with_trl("gpt2", 1); }
