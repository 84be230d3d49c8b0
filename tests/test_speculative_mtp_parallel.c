// Self-speculative decoding with parallel heads (model.mtp_style parallel,
// train/model/speculative_mtp.h): every head drafts from the trunk row of the target's last pass.
// Greedy gives plain greedy decoding token for token (random and briefly trained models of both
// families, one and two heads, one layer, where the trunk is the embedding output; the trained
// ones accept some drafts and reject others at every depth); the heads' hidden rows and caches
// after a run equal one training forward over the whole text; `generate --speculative` on a
// checkpoint with parallel heads prints what plain greedy `generate` prints.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "optim/adamw.h"
#include "tests/generate_fixture.h"
#include "tests/model_fixture.h"
#include "tests/speculative_mtp_fixture.h"
#include "tests/test.h"
#include "train/model/generate.h"
#include "train/model/lora.h"
#include "train/model/model_internal.h"
#include "train/model/speculative_mtp.h"

// A model of `arch` with `depth` parallel heads and n_layer layers, a context of SPEC_CTX; room for a
// training batch and for one pass over the whole context (the recomputation below).
static void heads_model(CtModel *m, CtArch arch, int n_layer, int depth) {
    CtModelConfig c = tiny_config(arch);
    c.n_layer = n_layer;
    c.mtp_depth = depth;
    c.mtp_style = CT_MTP_PARALLEL;
    c.max_seq_len = SPEC_CTX;
    CHECK_EQ_INT(ct_model_create(m, &c, ct_ops_cpu(), SPEC_TRAIN_B, SPEC_CTX, 0), 0);
}

static void random_model_case(CtArch arch, int n_layer, int depth) {
    CtModel m;
    heads_model(&m, arch, n_layer, depth);
    tiny_randomize_params(&m, 5);
    char what[80];
    snprintf(what, sizeof what, "random %s, %d layers, %d parallel heads", ct_arch_name(arch), n_layer, depth);
    SpecCounts c;
    spec_greedy_matches_plain(&m, what, &c);
    CHECK(c.drafted_at[0] > 0);
    ct_model_free(&m);
}

// A briefly trained model: its heads are right often and wrong often, at every depth.
// bf16_drafts: the heads draft with bf16 copies of their weights (ct_mtp_drafter_read_bf16).
static void trained_model_case(CtArch arch, int depth, int bf16_drafts) {
    CtModel m;
    heads_model(&m, arch, 2, depth);
    ct_model_init(&m, 5);
    spec_train_briefly(&m, 100);
    char what[80];
    snprintf(what, sizeof what, "trained %s, %d parallel heads%s", ct_arch_name(arch), depth,
             bf16_drafts ? ", bf16 drafts" : "");
    spec_draft_in_bf16(bf16_drafts);
    SpecCounts c;
    spec_greedy_matches_plain(&m, what, &c);
    for (int i = 0; i < depth && !ct_test_failed(); i++) {
        printf("    %s: depth %d accepted %ld of %ld\n", what, i + 1, c.accepted_at[i], c.drafted_at[i]);
        CHECK_MSG(c.accepted_at[i] > 0 && c.accepted_at[i] < c.drafted_at[i],
                  "%s: depth %d accepted %ld of %ld drafts: the test needs both acceptances and rejections", what,
                  i + 1, c.accepted_at[i], c.drafted_at[i]);
    }
    ct_model_free(&m);
}

TEST(speculative_mtp_parallel, greedy_equals_plain_greedy_random_gpt2) {
    random_model_case(CT_ARCH_GPT2, 2, 1);
    if (!ct_test_failed()) random_model_case(CT_ARCH_GPT2, 2, 2);
}
TEST(speculative_mtp_parallel, greedy_equals_plain_greedy_random_llama) {
    random_model_case(CT_ARCH_LLAMA, 2, 1);
    if (!ct_test_failed()) random_model_case(CT_ARCH_LLAMA, 2, 2);
}
TEST(speculative_mtp_parallel, greedy_equals_plain_greedy_one_layer) {  // the trunk is the embedding output
    random_model_case(CT_ARCH_LLAMA, 1, 2);
    if (!ct_test_failed()) random_model_case(CT_ARCH_GPT2, 1, 2);
}
// LoRA adapters on every linear layer, the heads' blocks included, with scratch for 3 rows
// (max_B·max_T): the prompt, the checks and the heads' catch-ups run in passes of at most 3 rows.
TEST(speculative_mtp_parallel, greedy_equals_plain_greedy_with_lora_adapters_in_passes_of_three_rows) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.mtp_depth = 2;
    c.mtp_style = CT_MTP_PARALLEL;
    c.max_seq_len = SPEC_CTX;
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 1, 3, 0), 0);
    if (ct_test_failed()) return;
    tiny_randomize_params(&m, 5);
    CtLoraSpec spec = {.r = 2, .alpha = 4};
    snprintf(spec.targets, sizeof spec.targets, "all-linear");
    CHECK_EQ_INT(ct_lora_attach(&m, &spec), 0);
    if (ct_test_failed()) return;
    int on_heads = 0;
    for (int i = 0; i < m.lora->n_adapters; i++) on_heads += m.lora->adapters[i].layer >= c.n_layer;
    CHECK(on_heads > 0);
    CtRng init;
    ct_rng_seed(&init, 9);
    ct_rng_fill_normal(&init, m.lora->params, m.lora->n_params, 0, 0.3f);
    SpecCounts counts;
    spec_greedy_matches_plain(&m, "parallel heads, LoRA, 3 rows a pass", &counts);
    CHECK(counts.drafted_at[0] > 0);
    ct_model_free(&m);
}

TEST(speculative_mtp_parallel, greedy_equals_plain_greedy_trained_gpt2_accepting_and_rejecting) {
    trained_model_case(CT_ARCH_GPT2, 2, 0);
}
TEST(speculative_mtp_parallel, greedy_equals_plain_greedy_trained_llama_accepting_and_rejecting) {
    trained_model_case(CT_ARCH_LLAMA, 2, 0);
}
// The heads' blocks and the shared head read bf16 copies while they draft; the output stays plain greedy's.
TEST(speculative_mtp_parallel, greedy_equals_plain_greedy_with_bf16_drafts_accepting_and_rejecting) {
    trained_model_case(CT_ARCH_LLAMA, 2, 1);
}

// ---- sampling ----

// N runs of self-speculative sampling (k drafts), each with its own seed: counts of the first two
// tokens; *q gets head 1's distribution of the first token (what it drafts from) in the first run.
static void sampled_pairs(CtModel *m, int k, const int32_t *prompt, int n, const CtSampling *s, int N, double *counts,
                          float *q) {
    const int V = m->config.vocab_size;
    CtGenerator g;
    ct_generator_init(&g, m, m->config.max_seq_len);
    int32_t round[CT_MODEL_MAX_MTP_DEPTH + 1];
    for (int r = 0; r < N; r++) {
        ct_generator_reset(&g);
        CtDrafter drafter;
        CtMtpDrafter md;
        ct_mtp_drafter_init(&md, &drafter, &g);
        CtRng rng;
        ct_rng_seed(&rng, 1000 + (uint64_t)r);
        CtSpeculative sp;
        ct_speculative_init(&sp, &g, &drafter, k, s, &rng, prompt, n);
        int32_t first[2];
        int have = 0;
        while (have < 2) {
            const int got = ct_speculative_round(&sp, round, k + 1);
            if (r == 0 && have == 0) memcpy(q, sp.q, sizeof(float) * (size_t)V);  // the first round's depth-1 q
            for (int i = 0; i < got && have < 2; i++) first[have++] = round[i];
        }
        counts[first[0] * V + first[1]] += 1;
        ct_speculative_free(&sp);
        ct_mtp_drafter_free(&md);
    }
    ct_generator_free(&g);
}

// On a vocabulary of 6, the first two tokens of self-speculative sampling with two parallel heads
// follow the target's joint distribution (total variation below 0.035 over 36 cells from 12,000
// runs; the sampling error alone is about 0.015), while head 1's distribution is far from the
// target's (accepting every draft would fail).
TEST(speculative_mtp_parallel, sampling_follows_the_targets_distribution) {
    enum { V = 6, N = 12000 };
    ct_cpu_set_threads(1);
    const CtSampling s = {.temperature = 1.0f, .top_p = 1.0f};
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.vocab_size = V;
    c.mtp_depth = 2;
    c.mtp_style = CT_MTP_PARALLEL;
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 1, 4, 0), 0);
    if (ct_test_failed()) return;
    tiny_randomize_params(&m, 5);
    const int32_t prompt[3] = {1, 4, 2};
    double exact[V * V], counts[V * V] = {0};
    generate_fixture_exact_pairs(&m, prompt, 3, &s, exact);
    float q[V];
    sampled_pairs(&m, 2, prompt, 3, &s, N, counts, q);
    double tv_draft = 0, tv = 0;
    for (int a = 0; a < V; a++) {
        double p = 0;
        for (int b = 0; b < V; b++) p += exact[a * V + b];
        tv_draft += 0.5 * fabs(p - q[a]);
    }
    for (int i = 0; i < V * V; i++) tv += 0.5 * fabs(counts[i] / N - exact[i]);
    CHECK_MSG(tv_draft > 0.2, "head 1's distribution is %.3f from the target's: too close to test", tv_draft);
    CHECK_MSG(tv < 0.035, "self-speculative sampling's first two tokens are %.4f (total variation) from the target's "
              "distribution (head 1's is %.3f from it)", tv, tv_draft);
    printf("    total variation %.4f from the target's (head 1's distribution: %.3f)\n", tv, tv_draft);
    ct_model_free(&m);
}

// ---- ctrain generate --speculative ----

static char *run(const char *args, int *status) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' generate %s --threads 1", ct_test_bin(), args);
    char *out = NULL;
    *status = ct_test_run(cmd, &out);
    return out;
}

TEST(speculative_mtp_parallel, generate_speculative_prints_what_plain_greedy_generate_prints) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *path = ct_test_path("heads.h5");
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.vocab_size = 257;
    c.max_seq_len = 48;
    c.mtp_depth = 2;
    c.mtp_style = CT_MTP_PARALLEL;
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 1, 4, 0), 0);
    if (ct_test_failed()) return;
    tiny_randomize_params(&m, 5);
    generate_fixture_save(path, &m, "<|endoftext|>");
    ct_model_free(&m);
    char args[4096];
    int status;
    const char *common = "--prompt hello --temperature 0 --ignore-eos --ids --max-tokens 40";  // to the context's end
    snprintf(args, sizeof args, "--checkpoint '%s' %s 2>/dev/null", path, common);
    char *plain = run(args, &status);
    CHECK_EQ_INT(status, 0);
    for (int k = 1; k <= 2; k++) {
        snprintf(args, sizeof args, "--checkpoint '%s' %s --speculative --draft-tokens %d 2>/dev/null", path, common,
                 k);
        char *spec = run(args, &status);
        CHECK_EQ_INT(status, 0);
        CHECK_MSG(spec && plain && strcmp(spec, plain) == 0, "%d drafts: %s\nplain: %s", k, spec ? spec : "(none)",
                  plain ? plain : "(none)");
        free(spec);
    }
    free(plain);
    snprintf(args, sizeof args, "--checkpoint '%s' --prompt hi --temperature 0 --ignore-eos --max-tokens 12 "
             "--speculative --ids 2>&1 >/dev/null", path);
    char *err = run(args, &status);
    CHECK_EQ_INT(status, 0);
    CHECK_MSG(err && strstr(err, "draft acceptance") && strstr(err, "acceptance by depth: 1: ") && strstr(err, ", 2: "),
              "stderr: %s", err ? err : "(none)");
    free(err);
}
