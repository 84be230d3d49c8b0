// Self-speculative decoding with the model's own multi-token-prediction modules
// (train/model/speculative_mtp.h): greedy gives plain greedy decoding token for token (random and
// briefly trained models of both families, one and two modules, with and without LoRA adapters;
// the trained ones accept some drafts and reject others at every depth), the modules' caches and
// hidden rows after a run equal one pass of the modules over the whole text, sampling follows
// the target's distribution, and `generate --speculative` prints what plain greedy `generate`
// prints and refuses what it cannot do.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "optim/adamw.h"
#include "tests/generate_fixture.h"
#include "tests/model_fixture.h"
#include "tests/speculative_mtp_fixture.h"
#include "tests/test.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/checkpoint_meta.h"
#include "train/model/generate.h"
#include "train/interop/lora_checkpoint.h"
#include "train/model/lora.h"
#include "train/model/model_internal.h"
#include "train/model/speculative_mtp.h"

// A model of `arch` with `depth` modules, a context of SPEC_CTX; room for a training batch and for one
// pass over the whole context (the recomputation below).
static void mtp_model(CtModel *m, CtArch arch, int depth) {
    CtModelConfig c = tiny_config(arch);
    c.mtp_depth = depth;
    c.max_seq_len = SPEC_CTX;
    CHECK_EQ_INT(ct_model_create(m, &c, ct_ops_cpu(), SPEC_TRAIN_B, SPEC_CTX, 0), 0);
}

// Adapters on every linear layer of the main model, random enough (B's entries of deviation
// `spread`) to move its argmax at times.
static void attach_random_lora(CtModel *m, float spread) {
    CtLoraSpec spec = {.r = 2, .alpha = 4};
    snprintf(spec.targets, sizeof spec.targets, "all-linear");
    CHECK_EQ_INT(ct_lora_attach(m, &spec), 0);
    CtRng init;
    ct_rng_seed(&init, 9);
    ct_rng_fill_normal(&init, m->lora->params, m->lora->n_params, 0, spread);
}

// A random model: the output is plain greedy's whatever the modules draft.
static void random_model_case(CtArch arch, int depth, int lora) {
    CtModel m;
    mtp_model(&m, arch, depth);
    tiny_randomize_params(&m, 5);
    if (lora) attach_random_lora(&m, 0.3f);
    char what[80];
    snprintf(what, sizeof what, "random %s, D %d%s", ct_arch_name(arch), depth, lora ? ", LoRA" : "");
    SpecCounts c;
    spec_greedy_matches_plain(&m, what, &c);
    CHECK(c.drafted_at[0] > 0);
    ct_model_free(&m);
}

// A briefly trained model: its modules are right often and wrong often, at every depth, so the
// rounds go through acceptances, rejections, catch-ups over several rows and rollbacks.
static void trained_model_case(CtArch arch, int depth, int lora, int bf16_drafts) {
    CtModel m;
    mtp_model(&m, arch, depth);
    ct_model_init(&m, 5);
    spec_train_briefly(&m, 100);
    if (lora) attach_random_lora(&m, 0.2f);  // the modules draft for the adapted model: often wrong
    char what[80];
    snprintf(what, sizeof what, "trained %s, D %d%s%s", ct_arch_name(arch), depth, lora ? ", LoRA" : "",
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

TEST(speculative_mtp, greedy_equals_plain_greedy_random_gpt2) {
    random_model_case(CT_ARCH_GPT2, 1, 0);
    if (!ct_test_failed()) random_model_case(CT_ARCH_GPT2, 2, 0);
}

TEST(speculative_mtp, greedy_equals_plain_greedy_random_llama) {
    random_model_case(CT_ARCH_LLAMA, 1, 0);
    if (!ct_test_failed()) random_model_case(CT_ARCH_LLAMA, 2, 0);
}

TEST(speculative_mtp, greedy_equals_plain_greedy_random_with_lora_adapters) {
    random_model_case(CT_ARCH_LLAMA, 2, 1);
    if (!ct_test_failed()) random_model_case(CT_ARCH_GPT2, 1, 1);
}

// A LoRA model whose adapters keep scratch for 3 rows (max_B·max_T): the prompt, the checks and
// the modules' catch-ups run in passes of at most 3 rows, with the same output.
TEST(speculative_mtp, greedy_equals_plain_greedy_with_lora_adapters_in_passes_of_three_rows) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.mtp_depth = 2;
    c.max_seq_len = SPEC_CTX;
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 1, 3, 0), 0);
    if (ct_test_failed()) return;
    tiny_randomize_params(&m, 5);
    attach_random_lora(&m, 0.3f);
    SpecCounts counts;
    spec_greedy_matches_plain(&m, "LoRA, 3 rows a pass", &counts);
    CHECK(counts.drafted_at[0] > 0);
    ct_model_free(&m);
}

TEST(speculative_mtp, greedy_equals_plain_greedy_trained_gpt2_accepting_and_rejecting) {
    trained_model_case(CT_ARCH_GPT2, 1, 0, 0);
    if (!ct_test_failed()) trained_model_case(CT_ARCH_GPT2, 2, 0, 0);
}

TEST(speculative_mtp, greedy_equals_plain_greedy_trained_llama_accepting_and_rejecting) {
    trained_model_case(CT_ARCH_LLAMA, 1, 0, 0);
    if (!ct_test_failed()) trained_model_case(CT_ARCH_LLAMA, 2, 0, 0);
}

TEST(speculative_mtp, greedy_equals_plain_greedy_trained_with_lora_adapters) {
    trained_model_case(CT_ARCH_LLAMA, 2, 1, 0);
}

// Drafts from bf16 copies of the modules' and the head's weights (--draft-weights bf16, the
// default of generate): the checks read fp32, so the output is still plain greedy's.
TEST(speculative_mtp, greedy_equals_plain_greedy_with_bf16_drafts_accepting_and_rejecting) {
    trained_model_case(CT_ARCH_LLAMA, 2, 0, 1);
    if (!ct_test_failed()) trained_model_case(CT_ARCH_GPT2, 1, 0, 1);
    if (!ct_test_failed()) trained_model_case(CT_ARCH_LLAMA, 2, 1, 1);
}

// ---- sampling ----

// The first module's distribution of the first token after prompt (what it drafts from), in q[V].
static void first_draft_distribution(CtModel *m, const int32_t *prompt, int n, const CtSampling *s, int bf16,
                                     float *q) {
    CtGenerator g;
    ct_generator_init(&g, m, m->config.max_seq_len);
    CtDrafter drafter;
    CtMtpDrafter md;
    ct_mtp_drafter_init(&md, &drafter, &g);
    if (bf16) ct_mtp_drafter_read_bf16(&md);
    CtRng rng;
    ct_rng_seed(&rng, 1);
    CtSpeculative sp;
    ct_speculative_init(&sp, &g, &drafter, 1, s, &rng, prompt, n);
    int32_t draft;
    CHECK_EQ_INT(drafter.propose(&drafter, sp.seq, sp.len, 1, s, &rng, &draft, q), 1);
    ct_speculative_free(&sp);
    ct_mtp_drafter_free(&md);
    ct_generator_free(&g);
}

// N runs of self-speculative sampling (k drafts), each with its own seed: counts of the first two tokens.
static void sampled_pairs(CtModel *m, int k, const int32_t *prompt, int n, const CtSampling *s, int bf16, int N,
                          double *counts) {
    const int V = m->config.vocab_size;
    CtGenerator g;
    ct_generator_init(&g, m, m->config.max_seq_len);
    int32_t round[CT_MODEL_MAX_MTP_DEPTH + 1];
    for (int r = 0; r < N; r++) {
        ct_generator_reset(&g);
        CtDrafter drafter;
        CtMtpDrafter md;
        ct_mtp_drafter_init(&md, &drafter, &g);
        if (bf16) ct_mtp_drafter_read_bf16(&md);
        CtRng rng;
        ct_rng_seed(&rng, 1000 + (uint64_t)r);
        CtSpeculative sp;
        ct_speculative_init(&sp, &g, &drafter, k, s, &rng, prompt, n);
        int32_t first[2];
        int have = 0;
        while (have < 2) {
            const int got = ct_speculative_round(&sp, round, k + 1);
            for (int i = 0; i < got && have < 2; i++) first[have++] = round[i];
        }
        counts[first[0] * V + first[1]] += 1;
        ct_speculative_free(&sp);
        ct_mtp_drafter_free(&md);
    }
    ct_generator_free(&g);
}

// On a vocabulary of 6, the first two tokens of self-speculative sampling with two modules follow
// the target's joint distribution (total variation below 0.035 over 36 cells from 12,000 runs;
// the sampling error alone is about 0.015), while the first module's distribution is far from
// the target's (so accepting every draft, or sampling a rejection from p instead of the residual,
// would fail). bf16: the modules draft with bf16 weight copies (q is what they drew from).
static void sampling_follows_the_target(const CtSampling *s, int bf16, const char *what) {
    enum { V = 6, N = 12000 };
    ct_cpu_set_threads(1);  // 12,000 runs of a tiny model: OpenMP threads would only wait on each other
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.vocab_size = V;
    c.mtp_depth = 2;
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 1, 4, 0), 0);
    tiny_randomize_params(&m, 5);
    const int32_t prompt[3] = {1, 4, 2};
    double exact[V * V], counts[V * V] = {0};
    generate_fixture_exact_pairs(&m, prompt, 3, s, exact);
    float q[V];
    first_draft_distribution(&m, prompt, 3, s, bf16, q);
    double tv_draft = 0;
    for (int a = 0; a < V; a++) {
        double p = 0;
        for (int b = 0; b < V; b++) p += exact[a * V + b];
        tv_draft += 0.5 * fabs(p - q[a]);
    }
    CHECK_MSG(tv_draft > 0.2, "%s: the first module's distribution is %.3f from the target's: too close to test", what,
              tv_draft);
    sampled_pairs(&m, 2, prompt, 3, s, bf16, N, counts);
    double tv = 0;
    for (int i = 0; i < V * V; i++) tv += 0.5 * fabs(counts[i] / N - exact[i]);
    CHECK_MSG(tv < 0.035, "%s: self-speculative sampling's first two tokens are %.4f (total variation) from the "
              "target's distribution (the first module's is %.3f from it)", what, tv, tv_draft);
    ct_model_free(&m);
}

TEST(speculative_mtp, sampling_follows_the_targets_distribution) {
    const CtSampling s = {.temperature = 1.0f, .top_p = 1.0f};
    sampling_follows_the_target(&s, 0, "temperature 1");
}

TEST(speculative_mtp, sampling_with_bf16_drafts_follows_the_targets_distribution) {
    const CtSampling s = {.temperature = 1.0f, .top_p = 1.0f};
    sampling_follows_the_target(&s, 1, "temperature 1, bf16 drafts");
}

TEST(speculative_mtp, sampling_follows_the_targets_distribution_with_top_k_and_top_p) {
    const CtSampling s = {.temperature = 0.7f, .top_k = 4, .top_p = 0.9f};
    sampling_follows_the_target(&s, 0, "top-k 4, top-p 0.9");
}

// ---- ctrain generate --speculative ----

static char *run(const char *args, int *status) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' generate %s --threads 1", ct_test_bin(), args);
    char *out = NULL;
    *status = ct_test_run(cmd, &out);
    return out;
}

// A random model of `arch` with `depth` modules, a byte vocabulary and a context of 48, saved.
static void save_random(const char *path, CtArch arch, int depth, uint64_t seed) {
    CtModelConfig c = tiny_config(arch);
    c.vocab_size = 257;
    c.max_seq_len = 48;
    c.mtp_depth = depth;
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 1, 4, 0), 0);
    tiny_randomize_params(&m, seed);
    generate_fixture_save(path, &m, "<|endoftext|>");
    ct_model_free(&m);
}

// `generate --speculative` (and --draft-tokens 1) prints plain greedy's text or ids, to the
// context's end, for the checkpoint at path.
static void speculative_prints_plain(const char *path, int depth) {
    char args[4096];
    int status;
    for (int ids = 0; ids < 2; ids++) {
        const char *common = ids ? "--prompt hello --temperature 0 --ignore-eos --ids --max-tokens 30"
                                 : "--prompt hello --temperature 0 --ignore-eos --max-tokens 60";  // to the context's end
        snprintf(args, sizeof args, "--checkpoint '%s' %s 2>/dev/null", path, common);
        char *plain = run(args, &status);
        CHECK_EQ_INT(status, 0);
        for (int k = 1; k <= depth; k++) {
            // the default bf16 drafts with ids, fp32 drafts with text
            snprintf(args, sizeof args, "--checkpoint '%s' %s --speculative %s %s 2>/dev/null", path, common,
                     k < depth ? "--draft-tokens 1" : "", ids ? "" : "--draft-weights fp32");
            char *spec = run(args, &status);
            CHECK_EQ_INT(status, 0);
            CHECK_MSG(spec && plain && strcmp(spec, plain) == 0, "%s, %d drafts: %s\nplain: %s", path, k,
                      spec ? spec : "(none)", plain ? plain : "(none)");
            free(spec);
        }
        free(plain);
    }
}

TEST(speculative_mtp, generate_speculative_prints_what_plain_greedy_generate_prints) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *llama = ct_test_path("llama_d2.h5"), *gpt2 = ct_test_path("gpt2_d1.h5");
    save_random(llama, CT_ARCH_LLAMA, 2, 5);
    save_random(gpt2, CT_ARCH_GPT2, 1, 7);
    speculative_prints_plain(llama, 2);
    speculative_prints_plain(gpt2, 1);
    // stderr: tokens/s, the acceptance overall and per depth
    char args[4096];
    int status;
    snprintf(args, sizeof args, "--checkpoint '%s' --prompt hi --temperature 0 --ignore-eos --max-tokens 12 "
             "--speculative --ids 2>&1 >/dev/null", llama);
    char *err = run(args, &status);
    CHECK_EQ_INT(status, 0);
    CHECK_MSG(err && strstr(err, "tokens/s") && strstr(err, "draft acceptance") &&
                  strstr(err, "--speculative, depth 2") && strstr(err, "acceptance by depth: 1: ") &&
                  strstr(err, ", 2: ") && strstr(err, "the modules draft with bf16 weights"),
              "stderr: %s", err ? err : "(none)");
    free(err);
}

// A LoRA run's checkpoint over a base with modules: generate loads the adapters merged, and the
// base's modules draft for the adapted model.
TEST(speculative_mtp, generate_speculative_with_a_lora_checkpoint_prints_plain_greedy) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *base = ct_test_path("base.h5"), *adapted = ct_test_path("lora.h5");
    save_random(base, CT_ARCH_LLAMA, 2, 5);
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK_EQ_INT(ct_checkpoint_load(base, &m, ct_ops_cpu(), 1, 4, 0, NULL, &meta), 0);
    if (ct_test_failed()) return;
    attach_random_lora(&m, 0.3f);
    ct_lora_record_base(m.lora, base, ct_lora_base_hash(&m));
    CHECK_MSG(ct_checkpoint_save(adapted, &m, NULL, &meta) == 0, "%s", ct_error_message());
    ct_checkpoint_meta_free(&meta);
    ct_model_free(&m);
    speculative_prints_plain(adapted, 2);
}

TEST(speculative_mtp, generate_speculative_refuses_what_it_cannot_do) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *none = ct_test_path("no_modules.h5"), *two = ct_test_path("two_modules.h5");
    save_random(none, CT_ARCH_LLAMA, 0, 5);
    save_random(two, CT_ARCH_LLAMA, 2, 5);
    char args[4096];
    int status;
    struct {
        const char *args, *says;
    } cases[] = {
        {"--checkpoint '%s' --prompt hi --speculative", "model.mtp_depth is 0"},
        {"--checkpoint '%s' --prompt hi --speculative --draft-tokens 3", "--draft-tokens 3"},
        {"--checkpoint '%s' --prompt hi --speculative --draft '%s'", "--speculative and --draft exclude each other"},
        {"--checkpoint '%s' --prompt hi --speculative --draft-weights fp16", "--draft-weights is bf16 or fp32"},
        {"--checkpoint '%s' --prompt hi --draft-weights bf16", "--draft-weights goes with --speculative"},
    };
    for (int i = 0; i < 5; i++) {
        const char *path = i == 0 ? none : two;
        snprintf(args, sizeof args, cases[i].args, path, two);
        char *out = run(args, &status);
        CHECK(status != 0);
        CHECK_MSG(out && strstr(out, cases[i].says), "%s: %s", args, out ? out : "(none)");
        if (i < 2) CHECK_MSG(out && strstr(out, path), "the error names the checkpoint: %s", out ? out : "(none)");
        if (i == 1) CHECK_MSG(out && strstr(out, "at most 2 tokens"), "%s", out ? out : "(none)");
        free(out);
    }
}
