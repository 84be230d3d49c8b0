// The Mixture-of-Experts families against transformers 5.23 (tests/ref/hf_moe_ref.py), where
// torch and transformers are importable: a tiny random Mixtral, Qwen2-MoE, Qwen3-MoE and OLMoE
// saved by transformers import with `ctrain import hf`; ctrain's logits are transformers'
// (relative 1e-5 of the largest), `ctrain eval` gives transformers' mean loss over the same
// windows (relative 1e-5), `ctrain generate` at temperature 0 gives transformers' greedy tokens
// (stopping at eos, and 40 past it); `ctrain export hf` of the import writes the tensors
// save_pretrained writes (names and shapes), and transformers loads that export with the
// original's logits and loss and ctrain's. The "-fused" variants hold each layer's experts as
// transformers 5 does in memory (mlp.experts.gate_up_proj [E, 2F, C], down_proj [E, C, F]):
// their import is the import of the same model saved per expert, to the bit, and passes the same
// checks. The models route as their families do (hf_moe_config.h: Mixtral top-k then softmax,
// Qwen2-MoE softmax top-k unnormalised with a gated shared expert on every second layer,
// Qwen3-MoE softmax top-k renormalised with per-head q/k norms, OLMoE with q/k norms over the
// whole projections). Elsewhere the tests skip with the reason. Long tests (two or three Python
// processes each), which `make test-ref` runs (its REF_TESTS match "ref.").
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "core/error.h"
#include "core/log.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"

#define REF_T 24
#define REF_V 300

// The tensors of dir/model.safetensors are those listed in layout_dir/layout.txt (hf_moe_ref.py's
// "name [d0, d1, ...]" lines), by name and shape, and no others.
static void check_layout(const char *dir, const char *layout_dir) {
    char path[2048];
    snprintf(path, sizeof path, "%s/layout.txt", layout_dir);
    char *layout = ct_test_read(path, NULL);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CtSafetensors f;
    CHECK_MSG(layout, "%s/layout.txt is missing", layout_dir);
    if (ct_st_open(&f, path) != 0) {
        free(layout);
        CHECK_MSG(0, "%s", ct_error_message());
    }
    int listed = 0, same = 1;
    for (char *line = strtok(layout, "\n"); line && same; line = strtok(NULL, "\n"), listed++) {
        char name[256], shape[128] = "", got[128] = "";
        if (sscanf(line, "%255s %127[^\n]", name, shape) != 2) same = 0;
        const CtStTensor *t = same ? ct_st_find(&f, name) : NULL;
        for (int d = 0; t && d < t->ndim; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "[", (long long)t->shape[d]);
        if (t) snprintf(got + strlen(got), sizeof got - strlen(got), "]");
        if (!t || strcmp(got, shape) != 0) {
            ct_test_fail(__FILE__, __LINE__, "the export holds %s as %s; transformers saves it as %s", name,
                         t ? got : "nothing", shape);
            same = 0;
        }
    }
    if (same && listed != f.n_tensors)
        ct_test_fail(__FILE__, __LINE__, "the export holds %d tensors; transformers saves %d", f.n_tensors, listed);
    else if (same)
        printf("    the export holds the %d tensors transformers saves, by name and shape\n", listed);
    ct_st_close(&f);
    free(layout);
}

// The loss of a "loss=L tokens=N" file; NAN when it is unreadable.
static double loss_of(const char *dir, const char *name, long *tokens) {
    char text[256] = "";
    double loss = NAN;
    *tokens = -1;
    if (hf_fixture_read_values(dir, name, text, sizeof text - 1) > 0)
        sscanf(text, "loss=%lf tokens=%ld", &loss, tokens);
    return loss;
}

// transformers on ctrain's export of imported.h5: the export's logits are the original folder's
// (`original`: the weights pass through) and ctrain's (`ours`), its loss over the sample windows
// transformers' on the original and ctrain's eval (`ours_loss`).
static void check_export(const char *dir, const char *layout_dir, const float *original, const float *ours,
                         double ours_loss) {
    if (hf_fixture_ctrain_ok("export hf imported.h5 --out exported") != 0) return;
    check_layout(ct_test_path("exported"), layout_dir);
    char args[4096];
    snprintf(args, sizeof args, "reload %s %s/tokens.bin %s/sample.txt %s", ct_test_path("exported"), dir, dir,
             ct_test_path("reload"));
    if (hf_fixture_ref("hf_moe_ref.py", args) != 0) return;
    static float theirs[REF_T * REF_V];
    CHECK(hf_fixture_read_values(ct_test_tmpdir(), "reload.bin", theirs, sizeof theirs) == REF_T * REF_V);
    double through = hf_fixture_relative_error(theirs, original, REF_T * REF_V);
    double err = hf_fixture_relative_error(ours, theirs, REF_T * REF_V);
    printf("    transformers on the export vs on the original: %.3g, vs ctrain: %.3g (relative)\n", through, err);
    CHECK_MSG(through < 1e-6, "transformers computes other logits on the export of the import: %.3g", through);
    CHECK_MSG(err < 1e-5, "transformers on the export differs from ctrain by %.3g (relative)", err);
    long n_original, n_export;
    const double want = loss_of(dir, "eval.txt", &n_original), got = loss_of(ct_test_tmpdir(), "reload.txt", &n_export);
    printf("    transformers' loss on the export %.9f, on the original %.9f, ctrain eval %.9f (relative %.3g, %.3g)\n",
           got, want, ours_loss, fabs(got - want) / want, fabs(got - ours_loss) / got);
    CHECK_MSG(n_export == n_original && fabs(got - want) <= 1e-6 * want,
              "transformers' loss on the export: %.9f over %ld tokens; on the original %.9f over %ld", got, n_export,
              want, n_original);
    CHECK_MSG(fabs(got - ours_loss) <= 1e-5 * got, "transformers' loss on the export %.9f, ctrain eval %.9f", got,
              ours_loss);
}

// The import of a fused folder (imported.h5) has the parameters, to the bit, of the same model
// saved per expert: `variant` without "-fused", made into saved_dir and imported as saved.h5.
static void check_fused_import(const char *variant, const char *saved_dir) {
    char args[2048];
    snprintf(args, sizeof args, "make %s %.*s", saved_dir, (int)(strlen(variant) - strlen("-fused")), variant);
    if (hf_fixture_ref("hf_moe_ref.py", args) != 0) return;
    snprintf(args, sizeof args, "import hf %s --out saved.h5", saved_dir);
    if (hf_fixture_ctrain_ok(args) != 0) return;
    CtModel fused, saved;
    CtCheckpointMeta fused_meta, saved_meta;
    CHECK_MSG(hf_fixture_load(ct_test_path("imported.h5"), &fused, &fused_meta) == 0, "%s", ct_error_message());
    CHECK_MSG(hf_fixture_load(ct_test_path("saved.h5"), &saved, &saved_meta) == 0, "%s", ct_error_message());
    int same = fused.n_params == saved.n_params && memcmp(&fused.config, &saved.config, sizeof fused.config) == 0 &&
               memcmp(fused.params, saved.params, fused.n_params * sizeof(float)) == 0;
    printf("    the fused folder imports as the per-expert one: %s (%zu parameters)\n", same ? "to the bit" : "NO",
           fused.n_params);
    CHECK_MSG(same, "the import of the fused experts differs from the import of the same model saved per expert");
    ct_model_free(&fused);
    ct_model_free(&saved);
    ct_checkpoint_meta_free(&fused_meta);
    ct_checkpoint_meta_free(&saved_meta);
}

// transformers -> ctrain (logits, eval, greedy generation) -> transformers for one variant.
static void check_moe_family(const char *variant) {
    ct_log_set_level(CT_LOG_QUIET);
    const int fused = strstr(variant, "-fused") != NULL;
    char dir[1024], saved_dir[1024], args[2048];
    snprintf(dir, sizeof dir, "%s", ct_test_path("hf"));
    snprintf(saved_dir, sizeof saved_dir, "%s", ct_test_path("hf-saved"));
    snprintf(args, sizeof args, "make %s %s", dir, variant);
    if (hf_fixture_ref("hf_moe_ref.py", args) != 0) return;
    int32_t tokens[REF_T];
    static float want[REF_T * REF_V], got[REF_T * REF_V];
    CHECK(hf_fixture_read_values(dir, "tokens.bin", tokens, sizeof tokens) == REF_T);
    CHECK(hf_fixture_read_values(dir, "logits.bin", want, sizeof want) == REF_T * REF_V);
    if (hf_fixture_ctrain_ok("import hf hf --out imported.h5") != 0) return;
    if (fused) check_fused_import(variant, saved_dir);
    CHECK_MSG(hf_fixture_logits(ct_test_path("imported.h5"), tokens, REF_T, got) == 0, "%s", ct_error_message());
    double err = hf_fixture_relative_error(got, want, REF_T * REF_V);
    printf("    %s: ctrain's logits vs transformers': %.3g (relative)\n", variant, err);
    CHECK_MSG(err < 1e-5, "%s: ctrain's logits differ from transformers' by %.3g (relative)", variant, err);
    const double loss = hf_fixture_check_eval(dir, "imported.h5");
    hf_fixture_check_greedy(dir, "imported.h5");
    // the export is in save_pretrained's form whatever form the import read
    check_export(dir, fused ? saved_dir : dir, want, got, loss);
}

TEST_LONG(hf_moe_ref, mixtral_top_k_then_softmax_and_sliding_window_match_transformers) { check_moe_family("mixtral"); }
TEST_LONG(hf_moe_ref, qwen2_moe_unnormalised_top_k_gated_shared_expert_and_dense_layers_match_transformers) {
    check_moe_family("qwen2_moe");
}
TEST_LONG(hf_moe_ref, qwen3_moe_renormalised_top_k_and_qk_norm_match_transformers) { check_moe_family("qwen3_moe"); }
TEST_LONG(hf_moe_ref, olmoe_qk_norm_over_the_whole_projections_matches_transformers) { check_moe_family("olmoe"); }
// transformers 5's in-memory form of the experts (3-D gate_up_proj and down_proj; Mixtral's
// router as mlp.gate): what a model saved from a transformers 5 state_dict holds
TEST_LONG(hf_moe_ref, mixtral_fused_experts_import_as_the_per_expert_files) { check_moe_family("mixtral-fused"); }
TEST_LONG(hf_moe_ref, qwen2_moe_fused_experts_import_as_the_per_expert_files) { check_moe_family("qwen2_moe-fused"); }
TEST_LONG(hf_moe_ref, qwen3_moe_fused_experts_import_as_the_per_expert_files) { check_moe_family("qwen3_moe-fused"); }
TEST_LONG(hf_moe_ref, olmoe_fused_experts_import_as_the_per_expert_files) { check_moe_family("olmoe-fused"); }

// Models that ctrain made (a run config's shape, not an import): each MoE family's export loads
// in transformers with ctrain's logits. These take ctrain's own spellings: Mixtral's dense d_ff
// beside the experts' width (config.json has one intermediate_size, the experts'), moe_layer_freq
// 0 for "every layer" (decoder_sparse_step 1), Qwen2-MoE's MoE layers every second one with
// q/k/v biases and a shared expert of two experts' width.
TEST_LONG(hf_moe_ref, ctrain_made_moe_models_of_each_family_load_in_transformers_with_ctrain_logits) {
    ct_log_set_level(CT_LOG_QUIET);
    enum { N = 4, T = 12, V = 264 };
    const char *names[N] = {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe"};
    CtModelConfig configs[N];
    for (int i = 0; i < N; i++) {
        configs[i] = hf_fixture_config(CT_ARCH_LLAMA, 0);
        configs[i].n_experts = 4, configs[i].top_k = 2, configs[i].moe_d_ff = 8;
    }
    configs[0].family = CT_FAMILY_MIXTRAL, configs[0].router = CT_ROUTER_TOPK_SOFTMAX, configs[0].sliding_window = 5;
    configs[1].family = CT_FAMILY_QWEN2_MOE, configs[1].router = CT_ROUTER_SOFTMAX, configs[1].qkv_bias = 1;
    configs[1].n_shared_experts = 2, configs[1].shared_expert_gate = 1, configs[1].moe_layer_freq = 2;
    configs[2].family = CT_FAMILY_QWEN3_MOE, configs[2].router = CT_ROUTER_SOFTMAX_NORM, configs[2].qk_norm = 1;
    configs[2].head_dim = 6, configs[2].n_experts = 6, configs[2].top_k = 3;
    configs[3].family = CT_FAMILY_OLMOE, configs[3].router = CT_ROUTER_SOFTMAX, configs[3].qk_norm = 2;
    configs[3].n_kv_head = configs[3].n_head;
    int32_t tokens[T];
    for (int t = 0; t < T; t++) tokens[t] = (t * 41 + 3) % V;
    FILE *fp = fopen(ct_test_path("tokens.bin"), "wb");
    fwrite(tokens, sizeof tokens, 1, fp);
    fclose(fp);
    char args[8192];
    snprintf(args, sizeof args, "logits %s %s", ct_test_path("tokens.bin"), ct_test_path("theirs"));
    for (int i = 0; i < N; i++) {
        char ckpt[64], dir[64];
        snprintf(ckpt, sizeof ckpt, "%s.h5", names[i]);
        snprintf(dir, sizeof dir, "hf-%s", names[i]);
        CHECK_MSG(hf_fixture_checkpoint(ct_test_path(ckpt), &configs[i], 40 + (uint64_t)i) == 0, "%s: %s", names[i],
                  ct_error_message());
        snprintf(args + strlen(args), sizeof args - strlen(args), " %s", ct_test_path(dir));
        char export_args[256];
        snprintf(export_args, sizeof export_args, "export hf %s --out %s", ckpt, dir);
        if (hf_fixture_ctrain_ok(export_args) != 0) return;
    }
    if (hf_fixture_ref("hf_moe_ref.py", args) != 0) return;
    static float ours[T * V], theirs[T * V];
    for (int i = 0; i < N; i++) {
        char ckpt[64], name[64];
        snprintf(ckpt, sizeof ckpt, "%s.h5", names[i]);
        snprintf(name, sizeof name, "theirs%d.bin", i);
        CHECK(hf_fixture_read_values(ct_test_tmpdir(), name, theirs, sizeof theirs) == T * V);
        CHECK_MSG(hf_fixture_logits(ct_test_path(ckpt), tokens, T, ours) == 0, "%s", ct_error_message());
        double err = hf_fixture_relative_error(ours, theirs, T * V);
        printf("    %s: transformers on ctrain's export vs ctrain: %.3g (relative)\n", names[i], err);
        CHECK_MSG(err < 1e-5, "%s: transformers on ctrain's export differs from ctrain by %.3g", names[i], err);
    }
}
