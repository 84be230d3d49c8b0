// ctrain's prompt tuning, P-tuning and prefix tuning against Hugging Face PEFT (tests/ref/peft_prompt_ref.py),
// where torch, transformers and peft are importable: (1) ctrain's adapter (peft export's folder),
// put on ctrain's HF export of the same base with PeftModel.from_pretrained, gives ctrain's logits
// of the real tokens; (2) an adapter made and saved by peft itself loads into ctrain with peft's
// logits. Both families; prefix tuning with and without PEFT's projection (its export and PEFT's
// own file hold the computed keys and values); P-tuning with the MLP and the LSTM encoder, and
// (3) PEFT's untrained LSTM encoder's weights in ctrain give the prompt embeddings PEFT saved. Elsewhere the tests skip with the reason.
#include <math.h>
#include <stdlib.h>

#include "checkpoints/safetensors.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "kernels/ops.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"
#include "train/interop/hf_interop.h"
#include "train/interop/peft_folder.h"
#include "train/model/peft.h"

#define REF_T 10
#define REF_V 4

// The base's logits of the batch (no adapter) against `with`: how far the adapter moves them.
static double adapter_effect(const char *base, const CtBatch *b, const float *with, size_t n) {
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_load(base, &m, ct_ops_cpu(), 1, REF_T, CT_MODEL_FROZEN, NULL, &meta) != 0) return 0;
    ct_checkpoint_meta_free(&meta);
    ct_model_forward(&m, b);
    double e = hf_fixture_relative_error(ct_model_logits(&m), with, n);
    ct_model_free(&m);
    return e;
}

static void compare_with_peft_projection(CtArch arch, CtPeftType type, int projection) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *base, *hf, *tokens_path;
    int32_t tokens[REF_T];
    CHECK_MSG(hf_fixture_adapter_base(arch, REF_T, &base, &hf, &tokens_path, tokens) == 0, "%s", ct_error_message());
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(ct_checkpoint_load(base, &m, ct_ops_cpu(), 1, REF_T, CT_MODEL_FROZEN, NULL, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    // P-tuning's "projection" is its LSTM encoder (hidden size 8, as the script's)
    const int lstm = type == CT_PEFT_P_TUNING && projection;
    CtPeftSpec spec = {.type = type, .num_virtual_tokens = REF_V, .encoder_hidden_size = lstm ? 8 : 16,
                       .encoder_num_layers = 2, .prefix_projection = projection && !lstm,
                       .encoder = lstm ? CT_PEFT_ENCODER_LSTM : CT_PEFT_ENCODER_MLP};
    CHECK_MSG(ct_peft_attach(&m, &spec) == 0, "%s", ct_error_message());
    ct_peft_init(&m, 8);
    if (type == CT_PEFT_PROMPT_TUNING)  // normal(0, 1) rows: tame them to the fixture's embedding scale
        for (size_t i = 0; i < m.peft->n_params; i++) m.peft->params[i] *= 0.2f;
    ct_peft_record_base(m.peft, base, 0);
    const char *adapter = ct_test_path("adapter"), *out = ct_test_path("peft_logits.bin");
    const char *peft_adapter = ct_test_path("peft_adapter"), *peft_out = ct_test_path("peft_own_logits.bin");
    CHECK_MSG(ct_peft_save_folder(&m, adapter, hf) == 0, "%s", ct_error_message());
    char args[4096];
    snprintf(args, sizeof args, "%s %s %s %s %s %s %s %d %d", hf, adapter, tokens_path, out, peft_adapter, peft_out,
             m.peft->kind->peft_type, REF_V, projection);
    if (hf_fixture_ref("peft_prompt_ref.py", args) != 0) return;

    CtBatch b = {.tokens = tokens, .B = 1, .T = REF_T};
    const size_t n = (size_t)REF_T * m.config.vocab_size;
    float *want = ct_alloc(n * sizeof(float));
    // (1) ctrain's adapter (P-tuning: the encoder in the loop, as trained) against PEFT on its export
    ct_model_forward(&m, &b);
    CHECK(hf_fixture_read_floats(out, want, n) == 0);
    double err = hf_fixture_relative_error(ct_model_logits(&m), want, n), effect = adapter_effect(base, &b, want, n);
    printf("    %s %s%s: ctrain vs PEFT on ctrain's adapter: relative error %.3g (the adapter moves the logits by "
           "%.3g)\n", ct_arch_name(arch), m.peft->kind->name, lstm ? " LSTM" : projection ? " (projection)" : "", err, effect);
    CHECK_MSG(err < 1e-5, "ctrain's logits differ from PEFT's by %.3g (relative)", err);
    CHECK_MSG(effect > 1e-2, "the adapter hardly changes the logits (%.3g): the comparison would prove nothing", effect);
    ct_model_free(&m);
    // (2) PEFT's own adapter read by ctrain
    CHECK(ct_checkpoint_load(base, &m, ct_ops_cpu(), 1, REF_T, CT_MODEL_FROZEN, NULL, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CHECK_MSG(ct_peft_load_folder(&m, peft_adapter) == 0, "%s", ct_error_message());
    CHECK(m.peft && m.peft->spec.type == type && m.peft->spec.inference);
    ct_model_forward(&m, &b);
    CHECK(hf_fixture_read_floats(peft_out, want, n) == 0);
    err = hf_fixture_relative_error(ct_model_logits(&m), want, n);
    effect = adapter_effect(base, &b, want, n);
    printf("    %s %s: ctrain vs PEFT on PEFT's own adapter: relative error %.3g (the adapter moves the logits by "
           "%.3g)\n", ct_arch_name(arch), m.peft->kind->name, err, effect);
    CHECK_MSG(err < 1e-5, "ctrain's logits with PEFT's adapter differ from PEFT's by %.3g (relative)", err);
    CHECK_MSG(effect > 1e-2, "PEFT's adapter hardly changes the logits (%.3g)", effect);
    if (lstm) {  // (3) PEFT's untrained LSTM encoder in ctrain gives the prompt_embeddings PEFT saved
        int64_t shape[2];
        float *theirs = m.peft->kind->prompt_embeddings(&m, shape);
        ct_model_free(&m);
        CHECK(ct_checkpoint_load(base, &m, ct_ops_cpu(), 1, REF_T, CT_MODEL_FROZEN, NULL, &meta) == 0);
        ct_checkpoint_meta_free(&meta);
        CHECK_MSG(ct_peft_attach(&m, &spec) == 0, "%s", ct_error_message());
        CtSafetensors f;
        char path[4096];
        snprintf(path, sizeof path, "%s/encoder.safetensors", peft_adapter);
        CHECK_MSG(ct_st_open(&f, path) == 0, "%s", ct_error_message());
        for (int i = 0; i < m.peft->n_tensors; i++) {
            const CtPeftTensor *t = &m.peft->tensors[i];
            const CtStTensor *st = ct_st_find(&f, t->name);
            CHECK_MSG(st != NULL, "PEFT's LSTM encoder has no %s", t->name);
            CHECK_MSG(st == NULL || st->numel == t->numel, "%s: PEFT's has %llu numbers, ctrain's %zu", t->name,
                      st ? (unsigned long long)st->numel : 0ULL, t->numel);
            if (st && st->numel == t->numel) CHECK(ct_st_read_f32(&f, st, m.peft->params + t->offset) == 0);
        }
        ct_st_close(&f);
        float *ours = m.peft->kind->prompt_embeddings(&m, shape);
        err = hf_fixture_relative_error(ours, theirs, (size_t)shape[0] * shape[1]);
        printf("    %s p_tuning LSTM: ctrain's encoder on PEFT's weights vs PEFT's prompt_embeddings: relative error "
               "%.3g\n", ct_arch_name(arch), err);
        CHECK_MSG(err < 1e-5, "ctrain's LSTM encoder gives other prompt embeddings than PEFT's (%.3g)", err);
        ct_free(ours);
        ct_free(theirs);
    }
    ct_free(want);
    ct_model_free(&m);
}

static void compare_with_peft(CtArch arch, CtPeftType type) { compare_with_peft_projection(arch, type, 0); }

TEST(peft_ref, gpt2_prompt_tuning_matches_peft_both_ways) { compare_with_peft(CT_ARCH_GPT2, CT_PEFT_PROMPT_TUNING); }
TEST(peft_ref, llama_prompt_tuning_matches_peft_both_ways) { compare_with_peft(CT_ARCH_LLAMA, CT_PEFT_PROMPT_TUNING); }
TEST(peft_ref, gpt2_p_tuning_matches_peft_both_ways) { compare_with_peft(CT_ARCH_GPT2, CT_PEFT_P_TUNING); }
TEST(peft_ref, llama_p_tuning_matches_peft_both_ways) { compare_with_peft(CT_ARCH_LLAMA, CT_PEFT_P_TUNING); }
TEST(peft_ref, gpt2_p_tuning_lstm_matches_peft_both_ways) {
    compare_with_peft_projection(CT_ARCH_GPT2, CT_PEFT_P_TUNING, 1);
}
TEST(peft_ref, llama_p_tuning_lstm_matches_peft_both_ways) {
    compare_with_peft_projection(CT_ARCH_LLAMA, CT_PEFT_P_TUNING, 1);
}
TEST(peft_ref, gpt2_prefix_tuning_matches_peft_both_ways) { compare_with_peft(CT_ARCH_GPT2, CT_PEFT_PREFIX_TUNING); }
TEST(peft_ref, llama_prefix_tuning_matches_peft_both_ways) { compare_with_peft(CT_ARCH_LLAMA, CT_PEFT_PREFIX_TUNING); }
TEST(peft_ref, llama_prefix_projection_matches_peft_both_ways) {
    compare_with_peft_projection(CT_ARCH_LLAMA, CT_PEFT_PREFIX_TUNING, 1);
}
