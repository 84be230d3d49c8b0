// Speculative decoding (train/model/speculative.h): greedy gives plain greedy decoding token
// for token whatever the draft, sampling gives the target's distribution, and `generate --draft`
// prints what plain `generate` prints and refuses a draft of another vocabulary.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "tests/generate_fixture.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/model/generate.h"
#include "train/model/lora.h"
#include "train/model/speculative.h"

// max_T 6: a LoRA target verifies up to 5 drafts in one pass (train/model/generate.h)
static void random_model(CtModel *m, CtModelConfig c, uint64_t seed) {
    CHECK_EQ_INT(ct_model_create(m, &c, ct_ops_cpu(), 1, 6, 0), 0);
    tiny_randomize_params(m, seed);
}

// Plain greedy decoding: one feed per token.
static void plain_greedy(CtModel *m, const int32_t *prompt, int n, int count, int32_t *out) {
    CtGenerator g;
    ct_generator_init(&g, m, m->config.max_seq_len);
    const float *logits = NULL;
    for (int i = 0; i < n; i++) logits = ct_generator_feed(&g, prompt[i]);
    const CtSampling greedy = {.temperature = 0};
    for (int i = 0; i < count; i++) {
        out[i] = ct_sample(logits, m->config.vocab_size, &greedy, NULL);
        if (i + 1 < count) logits = ct_generator_feed(&g, out[i]);
    }
    ct_generator_free(&g);
}

// Speculative greedy decoding of `count` tokens with k drafts per round; the acceptance in *rate.
static void speculative_greedy(CtModel *target, CtModel *draft, int k, const int32_t *prompt, int n, int count,
                               int32_t *out, double *rate) {
    CtGenerator g, dg;
    ct_generator_init(&g, target, target->config.max_seq_len);
    ct_generator_init(&dg, draft, draft->config.max_seq_len);
    CtDrafter drafter;
    ct_model_drafter_init(&drafter, &dg);
    const CtSampling greedy = {.temperature = 0};
    CtSpeculative sp;
    ct_speculative_init(&sp, &g, &drafter, k, &greedy, NULL, prompt, n);
    int32_t *round = ct_alloc(sizeof(int32_t) * (size_t)(k + 1));
    for (int done = 0; done < count;) {
        const int got = ct_speculative_round(&sp, round, count - done < k + 1 ? count - done : k + 1);
        CHECK(got >= 1);
        if (got < 1) break;
        memcpy(out + done, round, sizeof(int32_t) * (size_t)got);
        done += got;
    }
    *rate = sp.drafted ? (double)sp.accepted / (double)sp.drafted : 0;
    ct_free(round);
    ct_speculative_free(&sp);
    ct_generator_free(&dg);
    ct_generator_free(&g);
}

// Three prompts of lengths 1, 3 and 6; count tokens each, k = 1, 3 and 5 (the last round near
// the context's end drafts fewer). *mean_rate: the mean acceptance.
static void greedy_matches_plain(CtModel *target, CtModel *draft, const char *what, double *mean_rate) {
    ct_cpu_set_threads(1);  // a tiny model, row by row: OpenMP threads would only wait on each other
    const int V = target->config.vocab_size, count = target->config.max_seq_len - 6;
    int32_t prompt[6], plain[64], spec[64];
    double rates = 0;
    int runs = 0;
    *mean_rate = -1;
    for (int p = 0; p < 3; p++) {
        const int n = p == 0 ? 1 : 3 * p;
        for (int i = 0; i < n; i++) prompt[i] = (int32_t)((7 * i + 11 * p + 3) % V);
        plain_greedy(target, prompt, n, count, plain);
        for (int k = 1; k <= 5; k += 2) {
            double rate = 0;
            speculative_greedy(target, draft, k, prompt, n, count, spec, &rate);
            for (int i = 0; i < count; i++)
                CHECK_MSG(spec[i] == plain[i], "%s: prompt %d, k %d: token %d is %d, plain greedy's %d", what, p, k, i,
                          spec[i], plain[i]);
            if (ct_test_failed()) return;
            rates += rate;
            runs++;
        }
    }
    *mean_rate = rates / runs;
}

static void greedy_with_itself_as_draft(CtArch arch) {
    CtModelConfig c = tiny_config(arch);
    c.max_seq_len = 32;
    CtModel m;
    random_model(&m, c, 5);
    double rate;
    greedy_matches_plain(&m, &m, ct_arch_name(arch), &rate);
    CHECK_MSG(rate == 1.0, "%s: a model drafting for itself is accepted %.3f of the time, not always",
              ct_arch_name(arch), rate);
    ct_model_free(&m);
}

TEST(speculative, greedy_equals_plain_greedy_with_the_model_as_its_own_draft_gpt2) {
    greedy_with_itself_as_draft(CT_ARCH_GPT2);
}

TEST(speculative, greedy_equals_plain_greedy_with_the_model_as_its_own_draft_llama) {
    greedy_with_itself_as_draft(CT_ARCH_LLAMA);
}

// A random draft of another family, size and context: it mostly disagrees, and the output is
// still the target's greedy text.
TEST(speculative, greedy_equals_plain_greedy_with_a_different_random_draft) {
    CtModelConfig tc = tiny_variant_config("mistral"), dc = tiny_config(CT_ARCH_GPT2);
    tc.max_seq_len = 32;
    dc.max_seq_len = 20;  // shorter than the target's: the last rounds draft nothing
    dc.n_layer = 1;
    CtModel target, draft;
    random_model(&target, tc, 5);
    random_model(&draft, dc, 77);
    double rate;
    greedy_matches_plain(&target, &draft, "random draft", &rate);
    CHECK_MSG(rate < 0.9, "a random draft is accepted %.3f of the time: the test does not reach rejections", rate);
    ct_model_free(&draft);
    ct_model_free(&target);
}

// A target with LoRA adapters drafted for by its base model: the adapters shift the argmax often
// enough to reject, and the output is the adapted model's greedy text.
TEST(speculative, greedy_equals_plain_greedy_for_a_lora_target_drafted_by_its_base) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.max_seq_len = 32;
    CtModel target, base;
    random_model(&target, c, 5);
    random_model(&base, c, 5);
    CtLoraSpec spec = {.r = 2, .alpha = 4};
    snprintf(spec.targets, sizeof spec.targets, "all-linear");
    CHECK_EQ_INT(ct_lora_attach(&target, &spec), 0);
    CtRng init;
    ct_rng_seed(&init, 9);
    ct_rng_fill_normal(&init, target.lora->params, target.lora->n_params, 0, 0.5f);
    double rate;
    greedy_matches_plain(&target, &base, "lora target", &rate);
    CHECK_MSG(rate < 1.0, "the base model always agrees with the adapted one: adapters too small to test");
    ct_model_free(&base);
    ct_model_free(&target);
}

// ---- sampling ----

// N runs of speculative sampling (k drafts), each with its own seed: counts of the first two tokens.
static void sampled_pairs(CtModel *target, CtModel *draft, int k, const int32_t *prompt, int n, const CtSampling *s,
                          int N, double *counts) {
    const int V = target->config.vocab_size;
    CtGenerator g, dg;
    ct_generator_init(&g, target, target->config.max_seq_len);
    ct_generator_init(&dg, draft, draft->config.max_seq_len);
    CtDrafter drafter;
    ct_model_drafter_init(&drafter, &dg);
    int32_t *round = ct_alloc(sizeof(int32_t) * (size_t)(k + 1));
    for (int r = 0; r < N; r++) {
        ct_generator_reset(&g);
        ct_generator_reset(&dg);
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
    }
    ct_free(round);
    ct_generator_free(&dg);
    ct_generator_free(&g);
}

// On a vocabulary of 6, the first two tokens of speculative sampling follow the target's joint
// distribution (total variation below 0.035 over 36 cells from 12,000 runs; the sampling error
// alone is about 0.015), while the draft's own distribution is far from it (so accepting every
// draft, or sampling a rejection from p instead of the residual, would fail).
static void sampling_follows_the_target(const CtSampling *s, const char *what) {
    enum { V = 6, N = 12000 };
    ct_cpu_set_threads(1);  // 12,000 runs of a tiny model: OpenMP threads would only wait on each other
    CtModelConfig tc = tiny_config(CT_ARCH_LLAMA), dc = tiny_config(CT_ARCH_GPT2);
    tc.vocab_size = dc.vocab_size = V;
    CtModel target, draft;
    random_model(&target, tc, 5);
    random_model(&draft, dc, 21);
    const int32_t prompt[3] = {1, 4, 2};
    double exact[V * V], drafts[V * V], counts[V * V] = {0};
    generate_fixture_exact_pairs(&target, prompt, 3, s, exact);
    generate_fixture_exact_pairs(&draft, prompt, 3, s, drafts);
    double tv_draft = 0;
    for (int i = 0; i < V * V; i++) tv_draft += 0.5 * fabs(exact[i] - drafts[i]);
    CHECK_MSG(tv_draft > 0.2, "%s: the draft's distribution is %.3f from the target's: too close to test", what,
              tv_draft);
    sampled_pairs(&target, &draft, 3, prompt, 3, s, N, counts);
    double tv = 0;
    for (int i = 0; i < V * V; i++) tv += 0.5 * fabs(counts[i] / N - exact[i]);
    CHECK_MSG(tv < 0.035, "%s: speculative sampling's first two tokens are %.4f (total variation) from the target's "
              "distribution (the draft's is %.3f from it)", what, tv, tv_draft);
    ct_model_free(&draft);
    ct_model_free(&target);
}

TEST(speculative, sampling_follows_the_targets_distribution) {
    const CtSampling s = {.temperature = 1.0f, .top_p = 1.0f};
    sampling_follows_the_target(&s, "temperature 1");
}

// The same transform on both sides: temperature 0.7, top-k 4, top-p 0.9.
TEST(speculative, sampling_follows_the_targets_distribution_with_top_k_and_top_p) {
    const CtSampling s = {.temperature = 0.7f, .top_k = 4, .top_p = 0.9f};
    sampling_follows_the_target(&s, "top-k 4, top-p 0.9");
}

// ---- ctrain generate --draft ----

// A random model of config c saved with the byte tokenizer whose special token is `special`.
static void save_random_with(const char *path, CtModelConfig c, uint64_t seed, const char *special) {
    CtModel m;
    random_model(&m, c, seed);
    generate_fixture_save(path, &m, special);
    ct_model_free(&m);
}

static void save_random(const char *path, CtModelConfig c, uint64_t seed) {
    save_random_with(path, c, seed, "<|endoftext|>");
}

static char *run(const char *args, int *status) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' generate %s --threads 1", ct_test_bin(), args);
    char *out = NULL;
    *status = ct_test_run(cmd, &out);
    return out;
}

TEST(speculative, generate_with_a_draft_prints_what_plain_greedy_generate_prints) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig tc = tiny_config(CT_ARCH_LLAMA), dc = tiny_config(CT_ARCH_GPT2);
    tc.vocab_size = dc.vocab_size = 257;
    tc.max_seq_len = 48;
    dc.max_seq_len = 32;
    const char *target = ct_test_path("target.h5"), *draft = ct_test_path("draft.h5");
    save_random(target, tc, 5);
    save_random(draft, dc, 17);
    char args[4096];
    int status;
    for (int ids = 0; ids < 2; ids++) {
        const char *common = ids ? "--prompt hello --temperature 0 --ignore-eos --ids --max-tokens 30"
                                 : "--prompt hello --temperature 0 --ignore-eos --max-tokens 60";  // to the context's end
        snprintf(args, sizeof args, "--checkpoint '%s' %s 2>/dev/null", target, common);
        char *plain = run(args, &status);
        CHECK_EQ_INT(status, 0);
        for (int k = 1; k <= 7; k += 3) {
            snprintf(args, sizeof args, "--checkpoint '%s' %s --draft '%s' --draft-tokens %d 2>/dev/null", target,
                     common, k == 7 ? target : draft, k);
            char *spec = run(args, &status);
            CHECK_EQ_INT(status, 0);
            CHECK_MSG(spec && plain && strcmp(spec, plain) == 0, "--draft-tokens %d: %s\nplain: %s", k,
                      spec ? spec : "(none)", plain ? plain : "(none)");
            free(spec);
        }
        free(plain);
    }
    // stderr: the acceptance and tokens/s; the model drafting for itself is always accepted
    snprintf(args, sizeof args, "--checkpoint '%s' --prompt hi --temperature 0 --ignore-eos --max-tokens 12 --draft '%s' "
             "--ids 2>&1 >/dev/null", target, target);
    char *err = run(args, &status);
    CHECK_EQ_INT(status, 0);
    CHECK_MSG(err && strstr(err, "draft acceptance 100.0%") && strstr(err, "tokens/s"), "stderr: %s",
              err ? err : "(none)");
    free(err);
}

TEST(speculative, generate_refuses_a_draft_with_another_vocabulary_or_tokenizer) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig tc = tiny_config(CT_ARCH_LLAMA), dc = tiny_config(CT_ARCH_LLAMA);
    tc.vocab_size = 257;
    dc.vocab_size = 300;
    const char *target = ct_test_path("target.h5"), *draft = ct_test_path("other_vocab.h5");
    save_random(target, tc, 5);
    save_random(draft, dc, 17);
    char args[4096];
    int status;
    snprintf(args, sizeof args, "--checkpoint '%s' --prompt hi --draft '%s'", target, draft);
    char *out = run(args, &status);
    CHECK(status != 0);
    CHECK_MSG(out && strstr(out, draft) && strstr(out, "vocabulary has 300 tokens and the model's 257"), "%s",
              out ? out : "(none)");
    free(out);
    // the same vocabulary size, another tokenizer
    const char *other = ct_test_path("other_tokenizer.h5");
    dc.vocab_size = 257;
    save_random_with(other, dc, 17, "<|end|>");
    snprintf(args, sizeof args, "--checkpoint '%s' --prompt hi --draft '%s'", target, other);
    out = run(args, &status);
    CHECK(status != 0);
    CHECK_MSG(out && strstr(out, other) && strstr(out, "the draft's tokenizer differs from the model's"), "%s",
              out ? out : "(none)");
    free(out);
}
