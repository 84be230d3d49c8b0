// The llama-architecture families against transformers (tests/ref/hf_families_ref.py), where
// torch and transformers are importable: a tiny random model of each family built and saved by
// transformers imports with `ctrain import hf`; ctrain's logits are transformers' (relative
// 1e-5 of the largest), `ctrain eval` gives transformers' mean loss over the same windows
// (relative 1e-5), `ctrain generate` at temperature 0 gives transformers' 40 greedy tokens; and
// `ctrain export hf` of the imported checkpoint gives transformers' logits of the original folder
// (the weights and config pass through: 0 difference measured for every family, Gemma's 1 + w
// norms included); that export, and the export of the import merged with the adapters of a LoRA
// SFT run (`ctrain sft` with lora.r, `ctrain lora merge`), load in transformers with ctrain's
// logits, as do the adapters themselves (`ctrain lora export`'s PEFT folder on the exported base,
// PeftModel.from_pretrained), and, the other way, an adapter PEFT itself made on the exported base
// reads into ctrain with PEFT's logits. Elsewhere the tests skip with the reason. Each takes half
// a minute or more (three Python processes, a LoRA SFT run): long tests, which `make test-ref`
// runs (its REF_TESTS match "ref.").
#include <math.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"
#include "train/interop/hf_interop.h"

#define REF_T 24
#define REF_V 300

// LoRA SFT of the imported model (adapters on every linear layer, a few steps on a synthetic
// task sharded with the model's own tokenizer); ctrain merges the adapters into merged.h5 and
// (peft) writes them as a PEFT folder, adapter/. 0, or -1 + a recorded failure.
static int lora_sft(int peft) {
    ct_test_write("sft.json", "{\"data\": {\"path\": \"sft\"}, \"train\": {\"batch_size\": 4, \"seq_len\": 32, "
                              "\"max_steps\": 4, \"eval_every\": 4, \"eval_batches\": 1, \"save_every\": 4, "
                              "\"n_samples\": 0, \"init_from\": \"imported.h5\"}, \"optim\": {\"lr\": 1e-2, "
                              "\"warmup_steps\": 1, \"weight_decay\": 0}, \"lora\": {\"r\": 4, \"targets\": "
                              "\"all-linear\"}}");
    if (hf_fixture_ctrain_ok("synth instructions --task reverse --examples 200 --seed 3 --out rev.jsonl") != 0 ||
        hf_fixture_ctrain_ok("shard --tokenizer hf/tokenizer.json --input rev.jsonl --format sft --template plain "
                             "--out sft --val-fraction 0.05") != 0 ||
        hf_fixture_ctrain_ok("sft sft.json --run.out_dir=run --run.threads=1") != 0 ||
        hf_fixture_ctrain_ok("lora merge --base imported.h5 --adapter run/ckpt-step00000004.h5 --out merged.h5") != 0)
        return -1;
    return peft ? hf_fixture_ctrain_ok("lora export run/ckpt-step00000004.h5 --out adapter") : 0;
}

// transformers on ctrain's exports (the imported model, the merged one, and the adapter on the
// exported base) against ctrain's logits of the same checkpoints.
// `original`: transformers' logits of the folder transformers saved, which the export of the
// import must reproduce whatever ctrain computes (the weights and config only pass through).
static void check_exports(const char *dir, const int32_t *tokens, const float *original, int with_peft) {
    if (hf_fixture_ctrain_ok("export hf imported.h5 --out exported") != 0) return;
    if (lora_sft(with_peft) != 0 || hf_fixture_ctrain_ok("export hf merged.h5 --out exported-merged") != 0) return;
    char args[4096];
    snprintf(args, sizeof args, "logits %s/tokens.bin %s %s %s %s", dir, ct_test_path("back"), ct_test_path("exported"),
             ct_test_path("exported-merged"), with_peft ? ct_test_path("exported+") : "");
    if (with_peft) snprintf(args + strlen(args), sizeof args - strlen(args), "%s", ct_test_path("adapter"));
    if (hf_fixture_ref("hf_families_ref.py", args) != 0) return;
    static float ours[REF_T * REF_V], merged[REF_T * REF_V], theirs[REF_T * REF_V];
    CHECK_MSG(hf_fixture_logits(ct_test_path("imported.h5"), tokens, REF_T, ours) == 0, "%s", ct_error_message());
    CHECK_MSG(hf_fixture_logits(ct_test_path("merged.h5"), tokens, REF_T, merged) == 0, "%s", ct_error_message());
    const char *what[] = {"the export of the imported model", "the export of the LoRA-merged model",
                          "the LoRA SFT run's PEFT adapter on the exported base"};
    for (int i = 0; i < 2 + with_peft; i++) {
        char name[64];
        snprintf(name, sizeof name, "back%d.bin", i);
        CHECK(hf_fixture_read_values(ct_test_tmpdir(), name, theirs, sizeof theirs) == REF_T * REF_V);
        if (i == 0) {
            double through = hf_fixture_relative_error(theirs, original, REF_T * REF_V);
            printf("    transformers on the export of the import vs on the original: %.3g (relative)\n", through);
            CHECK_MSG(through < 1e-6, "transformers computes other logits on the export of the import: %.3g", through);
        }
        double err = hf_fixture_relative_error(i == 0 ? ours : merged, theirs, REF_T * REF_V);
        printf("    transformers on %s vs ctrain: %.3g (relative)\n", what[i], err);
        CHECK_MSG(err < 1e-5, "transformers on %s differs from ctrain by %.3g (relative)", what[i], err);
    }
    double effect = hf_fixture_relative_error(ours, merged, REF_T * REF_V);
    printf("    the trained adapters move the logits by %.3g (relative)\n", effect);
    CHECK_MSG(effect > 1e-3, "the trained adapters hardly change the logits (%.3g): the test would prove nothing", effect);
}

// An adapter made by PEFT itself on every linear module (on Phi-3: the fused qkv_proj and
// gate_up_proj) of the exported base, read by ctrain (`ctrain lora merge --adapter DIR`): PEFT's
// logits.
static void check_peft_made_adapter(const int32_t *tokens, int phi3) {
    char args[4096];
    snprintf(args, sizeof args, "make %s %s %s %s %s 4 8 0", ct_test_path("exported"), ct_test_path("peft-own"),
             ct_test_path("tokens.bin"), ct_test_path("peft-own.bin"),
             phi3 ? "qkv_proj,o_proj,gate_up_proj,down_proj" : "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj");
    FILE *fp = fopen(ct_test_path("tokens.bin"), "wb");
    fwrite(tokens, sizeof(int32_t), REF_T, fp);
    fclose(fp);
    if (hf_fixture_ref("peft_ref.py", args) != 0) return;
    if (hf_fixture_ctrain_ok("lora merge --base imported.h5 --adapter peft-own --out peft-own.h5") != 0) return;
    static float ours[REF_T * REF_V], theirs[REF_T * REF_V], base[REF_T * REF_V];
    CHECK(hf_fixture_read_values(ct_test_tmpdir(), "peft-own.bin", theirs, sizeof theirs) == REF_T * REF_V);
    CHECK_MSG(hf_fixture_logits(ct_test_path("peft-own.h5"), tokens, REF_T, ours) == 0, "%s", ct_error_message());
    CHECK_MSG(hf_fixture_logits(ct_test_path("imported.h5"), tokens, REF_T, base) == 0, "%s", ct_error_message());
    double err = hf_fixture_relative_error(ours, theirs, REF_T * REF_V), effect = hf_fixture_relative_error(base, theirs, REF_T * REF_V);
    printf("    PEFT's own adapter read by ctrain vs PEFT: %.3g (relative; it moves the logits by %.3g)\n", err, effect);
    CHECK_MSG(err < 1e-5, "ctrain with PEFT's own adapter differs from PEFT by %.3g", err);
    CHECK_MSG(effect > 1e-3, "PEFT's adapter hardly changes the logits (%.3g)", effect);
}

// transformers -> ctrain (logits, eval, greedy generation) -> transformers for one variant.
static void check_family(const char *variant, int with_peft) {
    ct_log_set_level(CT_LOG_QUIET);
    char dir[1024], args[2048];
    snprintf(dir, sizeof dir, "%s", ct_test_path("hf"));
    snprintf(args, sizeof args, "make %s %s", dir, variant);
    if (hf_fixture_ref("hf_families_ref.py", args) != 0) return;
    int32_t tokens[REF_T];
    static float want[REF_T * REF_V], got[REF_T * REF_V];
    CHECK(hf_fixture_read_values(dir, "tokens.bin", tokens, sizeof tokens) == REF_T);
    CHECK(hf_fixture_read_values(dir, "logits.bin", want, sizeof want) == REF_T * REF_V);
    if (hf_fixture_ctrain_ok("import hf hf --out imported.h5") != 0) return;
    // first what holds whatever ctrain computes: the export of the import is the original
    check_exports(dir, tokens, want, with_peft);
    CHECK_MSG(hf_fixture_logits(ct_test_path("imported.h5"), tokens, REF_T, got) == 0, "%s", ct_error_message());
    double err = hf_fixture_relative_error(got, want, REF_T * REF_V);
    printf("    %s: ctrain's logits vs transformers': %.3g (relative)\n", variant, err);
    CHECK_MSG(err < 1e-5, "%s: ctrain's logits differ from transformers' by %.3g (relative)", variant, err);
    hf_fixture_check_eval(dir, "imported.h5");
    hf_fixture_check_greedy(dir, "imported.h5");
    if (with_peft) check_peft_made_adapter(tokens, strcmp(variant, "phi3") == 0);
}

TEST_LONG(families_ref, llama3_rope_scaling_matches_transformers) { check_family("llama3", 1); }
TEST_LONG(families_ref, llama3_in_transformers_4_config_shape_matches_transformers) { check_family("llama3-v4", 0); }
TEST_LONG(families_ref, llama_yarn_rope_matches_transformers) { check_family("llama-yarn", 0); }
TEST_LONG(families_ref, llama_linear_rope_matches_transformers) { check_family("llama-linear", 0); }
TEST_LONG(families_ref, llama_dynamic_rope_matches_transformers) { check_family("llama-dynamic", 0); }
TEST_LONG(families_ref, mistral_sliding_window_matches_transformers) { check_family("mistral", 1); }
TEST_LONG(families_ref, qwen2_qkv_biases_match_transformers_and_peft) { check_family("qwen2", 1); }
TEST_LONG(families_ref, qwen3_qk_norm_matches_transformers) { check_family("qwen3", 1); }
TEST_LONG(families_ref, gemma2_softcaps_and_local_layers_match_transformers_and_peft) { check_family("gemma2", 1); }
TEST_LONG(families_ref, gemma3_qk_norm_and_two_rope_bases_match_transformers_and_peft) { check_family("gemma3", 1); }
// Phi-3's PEFT adapters target the fused qkv_proj and gate_up_proj: ctrain's are fused on export,
// PEFT's split on reading
TEST_LONG(families_ref, phi3_fused_projections_and_fused_peft_adapters_match_transformers) { check_family("phi3", 1); }

// At a real size (a published model's widths and vocabulary, two of its layers): the imported
// model's logits, eval loss and greedy tokens are transformers'.
static void check_real_size(const char *variant, int V) {
    ct_log_set_level(CT_LOG_QUIET);
    char dir[1024], args[1200];
    snprintf(dir, sizeof dir, "%s", ct_test_path("hf"));
    snprintf(args, sizeof args, "make %s %s", dir, variant);
    if (hf_fixture_ref("hf_families_ref.py", args) != 0) return;
    int32_t tokens[REF_T];
    const size_t n = (size_t)REF_T * V;
    float *want = ct_alloc(n * sizeof(float)), *got = ct_alloc(n * sizeof(float));
    CHECK(hf_fixture_read_values(dir, "tokens.bin", tokens, sizeof tokens) == REF_T);
    CHECK(hf_fixture_read_values(dir, "logits.bin", want, n * sizeof(float)) == (long)n);
    if (hf_fixture_ctrain_ok("import hf hf --out imported.h5") == 0) {
        CHECK_MSG(hf_fixture_logits(ct_test_path("imported.h5"), tokens, REF_T, got) == 0, "%s", ct_error_message());
        double err = hf_fixture_relative_error(got, want, n);
        printf("    %s: ctrain's logits vs transformers': %.3g (relative, %d x %d)\n", variant, err, REF_T, V);
        CHECK_MSG(err < 1e-5, "ctrain's logits differ from transformers' by %.3g (relative)", err);
        hf_fixture_check_eval(dir, "imported.h5");
        hf_fixture_check_greedy(dir, "imported.h5");
    }
    ct_free(want);
    ct_free(got);
}

// Qwen2.5-0.5B: 896 channels, 14 query heads over 2, q/k/v biases, 151936 ids, tied.
TEST_LONG(families_ref, qwen2_5_0_5b_widths_and_vocabulary_match_transformers) {
    check_real_size("qwen2-real", 151936);
}
// Gemma 2 2B: 2304 channels, heads of 256, soft-caps, 256000 ids, tied. (Its eval loss found the
// float sum in the CPU cross-entropy losing a large vocabulary's tail behind one dominant logit.)
TEST_LONG(families_ref, gemma2_2b_widths_and_vocabulary_match_transformers) {
    check_real_size("gemma2-real", 256000);
}

// Models that ctrain made (a run config's shape, not an import): each family's export loads in
// transformers with ctrain's logits. These take ctrain's own defaults (query scale 0: head_dim^-½,
// no window on a Gemma, Gemma 3's local base 0: the global one), which the export must spell in
// keys transformers reads.
TEST_LONG(families_ref, ctrain_made_models_of_each_family_load_in_transformers_with_ctrain_logits) {
    ct_log_set_level(CT_LOG_QUIET);
    enum { N = 8, T = 12 };
    CtModelConfig configs[N];
    const char *names[N] = {"llama3", "mistral", "qwen2", "qwen3", "gemma2", "gemma2-nowindow", "gemma3", "phi3"};
    for (int i = 0; i < N; i++) configs[i] = hf_fixture_config(CT_ARCH_LLAMA, i >= 4 && i <= 6);
    configs[0].rope_theta = 500000.0f;
    configs[0].rope_scaling = (CtRopeScaling){.type = CT_ROPE_LLAMA3, .factor = 4, .original_max_position = 8,
                                              .low_freq_factor = 1, .high_freq_factor = 4};
    configs[1].family = CT_FAMILY_MISTRAL, configs[1].sliding_window = 5;
    configs[2].family = CT_FAMILY_QWEN2, configs[2].qkv_bias = 1;
    configs[3].family = CT_FAMILY_QWEN3, configs[3].qk_norm = 1, configs[3].head_dim = 6;
    for (int i = 4; i <= 6; i++) {
        configs[i].family = i == 6 ? CT_FAMILY_GEMMA3 : CT_FAMILY_GEMMA2;
        configs[i].gate_act = CT_GATE_GELU_TANH;
        configs[i].post_norms = configs[i].embed_scale = 1;
        configs[i].sliding_window = i == 5 ? 0 : 4, configs[i].sliding_window_pattern = i == 5 ? 0 : 2;
    }
    configs[4].attn_softcap = 5, configs[4].final_softcap = 3, configs[4].query_scale = 1.0f / sqrtf(20.0f);
    configs[6].qk_norm = 1, configs[6].head_dim = 6, configs[6].rope_local_theta = 0;
    configs[7].family = CT_FAMILY_PHI3, configs[7].sliding_window = 5;
    int32_t tokens[T];
    for (int t = 0; t < T; t++) tokens[t] = (t * 41 + 3) % configs[0].vocab_size;
    FILE *fp = fopen(ct_test_path("tokens.bin"), "wb");
    fwrite(tokens, sizeof tokens, 1, fp);
    fclose(fp);
    char args[8192];
    snprintf(args, sizeof args, "logits %s %s", ct_test_path("tokens.bin"), ct_test_path("theirs"));
    for (int i = 0; i < N; i++) {
        char ckpt[64], dir[64];
        snprintf(ckpt, sizeof ckpt, "%s.h5", names[i]);
        snprintf(dir, sizeof dir, "hf-%s", names[i]);
        CHECK_MSG(hf_fixture_checkpoint(ct_test_path(ckpt), &configs[i], 20 + (uint64_t)i) == 0, "%s: %s", names[i],
                  ct_error_message());
        CtHfExportOptions opt = {0};
        CHECK_MSG(ct_hf_export(ct_test_path(ckpt), ct_test_path(dir), &opt) == 0, "%s", ct_error_message());
        snprintf(args + strlen(args), sizeof args - strlen(args), " %s", ct_test_path(dir));
    }
    if (hf_fixture_ref("hf_families_ref.py", args) != 0) return;
    static float ours[T * 264], theirs[T * 264];
    for (int i = 0; i < N; i++) {
        char ckpt[64], name[64];
        snprintf(ckpt, sizeof ckpt, "%s.h5", names[i]);
        snprintf(name, sizeof name, "theirs%d.bin", i);
        CHECK(hf_fixture_read_values(ct_test_tmpdir(), name, theirs, sizeof theirs) == T * 264);
        CHECK_MSG(hf_fixture_logits(ct_test_path(ckpt), tokens, T, ours) == 0, "%s", ct_error_message());
        double err = hf_fixture_relative_error(ours, theirs, T * 264);
        printf("    %s: transformers on ctrain's export vs ctrain: %.3g (relative)\n", names[i], err);
        CHECK_MSG(err < 1e-5, "%s: transformers on ctrain's export differs from ctrain by %.3g", names[i], err);
    }
}
