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
#include "tests/test.h"
#include "train/model/generate.h"
#include "train/model/lora.h"
#include "train/model/model_internal.h"
#include "train/model/speculative_mtp.h"

enum { CTX = 40, TRAIN_B = 8, TRAIN_T = 16 };

// A model of `arch` with `depth` parallel heads and n_layer layers, a context of CTX; room for a
// training batch and for one pass over the whole context (the recomputation below).
static void heads_model(CtModel *m, CtArch arch, int n_layer, int depth) {
    CtModelConfig c = tiny_config(arch);
    c.n_layer = n_layer;
    c.mtp_depth = depth;
    c.mtp_style = CT_MTP_PARALLEL;
    c.max_seq_len = CTX;
    CHECK_EQ_INT(ct_model_create(m, &c, ct_ops_cpu(), TRAIN_B, CTX, 0), 0);
}

// t_{i+1} = (7·t_i + 3) mod V or (5·t_i + 1) mod V, one rule per sequence, from a random token:
// the two tokens before a position say the rule, so a few steps teach it in part.
static void rule_sequence(int32_t *t, int n, int V, CtRng *rng) {
    const int a = ct_rng_next(rng) % 2 ? 7 : 5, b = a == 7 ? 3 : 1;
    t[0] = (int32_t)(ct_rng_next(rng) % (uint64_t)V);
    for (int i = 1; i < n; i++) t[i] = (a * t[i - 1] + b) % V;
}

// `steps` AdamW steps on the rule, the heads trained beside the model (λ = 1).
static void train_briefly(CtModel *m, int steps) {
    const int V = m->config.vocab_size;
    int32_t seq[TRAIN_T + 1], tokens[TRAIN_B * TRAIN_T], targets[TRAIN_B * TRAIN_T];
    CtRng rng;
    ct_rng_seed(&rng, 3);
    CtAdamW opt;
    ct_adamw_init(&opt, m->n_train, 1e-2, 0.9, 0.95, 1e-8, 0.0);
    m->mtp_weight = 1.0f;
    for (int s = 0; s < steps; s++) {
        for (int b = 0; b < TRAIN_B; b++) {
            rule_sequence(seq, TRAIN_T + 1, V, &rng);
            memcpy(tokens + b * TRAIN_T, seq, sizeof(int32_t) * TRAIN_T);
            memcpy(targets + b * TRAIN_T, seq + 1, sizeof(int32_t) * TRAIN_T);
        }
        const CtBatch batch = {.tokens = tokens, .targets = targets, .B = TRAIN_B, .T = TRAIN_T};
        ct_model_zero_grad(m);
        ct_model_forward(m, &batch);
        ct_model_backward(m);
        ct_adamw_step(&opt, m->train_params, m->train_grads);
    }
    ct_adamw_free(&opt);
    m->mtp_weight = 0;
}

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

static double max_relative_error(const float *a, const float *b, size_t n) {
    double diff = 0, scale = 1;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return diff / scale;
}

// What the drafter kept after a run over seq[0..len) (up to `drafts` per round) against one
// training forward of the whole text: every head's final hidden rows and its cached keys and
// values (layer L+k−1). The heads that drafted keep rows up to the last trunk row they drafted
// from (fewer near the context's end, where a round drafts fewer tokens); the others ran on nothing.
static void check_against_recomputation(CtModel *m, const CtMtpDrafter *md, const CtGenerator *g, int drafts,
                                        const int32_t *seq, int len, const char *what) {
    int32_t targets[CTX];
    for (int i = 0; i < len; i++) targets[i] = i + 1 < len ? seq[i + 1] : 0;
    const CtBatch batch = {.tokens = seq, .targets = targets, .B = 1, .T = len};
    m->mtp_weight = 1.0f;
    ct_model_forward(m, &batch);
    m->mtp_weight = 0;
    const CtModelDims d = ct_model_dims(m, 1, len);
    const size_t C = (size_t)d.C, kv = (size_t)d.NKV * d.HD;
    float *kept = ct_alloc(sizeof(float) * (size_t)len * (C > kv ? C : kv));
    float *fresh = ct_alloc(sizeof(float) * (size_t)len * kv);
    for (int k = 1; k <= md->depth; k++) {
        const int rows = md->rows[k - 1];
        const int ran = k <= drafts;
        CHECK_MSG(ran ? rows >= 1 && rows <= md->rows[0] && md->rows[0] <= len - 1 : rows == 0,
                  "%s: head %d keeps %d final rows of a text of %d tokens (head 1: %d)", what, k, rows, len,
                  md->rows[0]);
        if (rows <= 0) continue;
        const CtMtpModuleActs *a = &m->mtp->module[k - 1];
        m->ops->download_act(kept, ct_mtp_drafter_plane(md, k, 0), (size_t)rows * C);
        const double e = max_relative_error(kept, (const float *)a->block.out, (size_t)rows * C);
        CHECK_MSG(e < 1e-5, "%s: head %d's hidden rows differ from a full recomputation by %.3g", what, k, e);
        const size_t layer = (size_t)(d.L + k - 1) * (size_t)g->max_ctx * kv;
        for (int half = 0; half < 2; half++) {
            const CtAct *cache = half ? g->v_cache : g->k_cache;
            m->ops->download_act(kept, ct_act_at(m->ops->act_bytes, cache, layer), (size_t)rows * kv);
            const size_t col = (size_t)(d.NH + half * d.NKV) * d.HD;
            const float *qkv = a->block.qkv;
            for (int j = 0; j < rows; j++) memcpy(fresh + j * kv, qkv + (size_t)j * d.QKV + col, sizeof(float) * kv);
            const double ek = max_relative_error(kept, fresh, (size_t)rows * kv);
            CHECK_MSG(ek < 1e-5, "%s: head %d's cached %s differ from a full recomputation by %.3g", what, k,
                      half ? "values" : "keys", ek);
        }
    }
    ct_free(kept);
    ct_free(fresh);
}

typedef struct {
    long drafted_at[2], accepted_at[2];
} Counts;

static void self_speculative_greedy(CtModel *m, int k, const int32_t *prompt, int n, int count, int32_t *out,
                                    Counts *c, const char *what) {
    CtGenerator g;
    ct_generator_init(&g, m, m->config.max_seq_len);
    CtDrafter drafter;
    CtMtpDrafter md;
    ct_mtp_drafter_init(&md, &drafter, &g);
    const CtSampling greedy = {.temperature = 0};
    CtSpeculative sp;
    ct_speculative_init(&sp, &g, &drafter, k, &greedy, NULL, prompt, n);
    int32_t round[CT_MODEL_MAX_MTP_DEPTH + 1];
    for (int done = 0; done < count;) {
        const int got = ct_speculative_round(&sp, round, count - done < k + 1 ? count - done : k + 1);
        CHECK(got >= 1);
        if (got < 1) break;
        memcpy(out + done, round, sizeof(int32_t) * (size_t)got);
        done += got;
    }
    for (int i = 0; i < k && i < 2; i++) {
        c->drafted_at[i] += sp.drafted_at[i];
        c->accepted_at[i] += sp.accepted_at[i];
    }
    if (sp.len <= m->max_T) check_against_recomputation(m, &md, &g, k, sp.seq, sp.len, what);
    ct_speculative_free(&sp);
    ct_mtp_drafter_free(&md);
    ct_generator_free(&g);
}

// Prompts of lengths 1, 2, 4 and 7 (rule-following and random ones), to the context's end, with
// k = 1..D drafts per round: every output is plain greedy decoding's.
static void greedy_matches_plain(CtModel *m, const char *what, Counts *c) {
    ct_cpu_set_threads(1);
    const int V = m->config.vocab_size, D = m->config.mtp_depth;
    const int lengths[] = {1, 2, 4, 7};
    int32_t prompt[8], plain[CTX], spec[CTX];
    CtRng rng;
    ct_rng_seed(&rng, 11);
    memset(c, 0, sizeof *c);
    for (int p = 0; p < 8; p++) {
        const int n = lengths[p % 4];
        if (p < 4) {
            rule_sequence(prompt, n > 1 ? n : 2, V, &rng);
        } else {
            for (int i = 0; i < n; i++) prompt[i] = (int32_t)(ct_rng_next(&rng) % (uint64_t)V);
        }
        const int count = CTX - n;
        plain_greedy(m, prompt, n, count, plain);
        for (int k = 1; k <= D; k++) {
            char label[160];
            snprintf(label, sizeof label, "%s, prompt %d, k %d", what, p, k);
            self_speculative_greedy(m, k, prompt, n, count, spec, c, label);
            for (int i = 0; i < count; i++)
                CHECK_MSG(spec[i] == plain[i], "%s: token %d is %d, plain greedy's %d", label, i, spec[i], plain[i]);
            if (ct_test_failed()) return;
        }
    }
}

static void random_model_case(CtArch arch, int n_layer, int depth) {
    CtModel m;
    heads_model(&m, arch, n_layer, depth);
    tiny_randomize_params(&m, 5);
    char what[80];
    snprintf(what, sizeof what, "random %s, %d layers, %d parallel heads", ct_arch_name(arch), n_layer, depth);
    Counts c;
    greedy_matches_plain(&m, what, &c);
    CHECK(c.drafted_at[0] > 0);
    ct_model_free(&m);
}

// A briefly trained model: its heads are right often and wrong often, at every depth.
static void trained_model_case(CtArch arch, int depth) {
    CtModel m;
    heads_model(&m, arch, 2, depth);
    ct_model_init(&m, 5);
    train_briefly(&m, 100);
    char what[80];
    snprintf(what, sizeof what, "trained %s, %d parallel heads", ct_arch_name(arch), depth);
    Counts c;
    greedy_matches_plain(&m, what, &c);
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
    c.max_seq_len = CTX;
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
    Counts counts;
    greedy_matches_plain(&m, "parallel heads, LoRA, 3 rows a pass", &counts);
    CHECK(counts.drafted_at[0] > 0);
    ct_model_free(&m);
}

TEST(speculative_mtp_parallel, greedy_equals_plain_greedy_trained_gpt2_accepting_and_rejecting) {
    trained_model_case(CT_ARCH_GPT2, 2);
}
TEST(speculative_mtp_parallel, greedy_equals_plain_greedy_trained_llama_accepting_and_rejecting) {
    trained_model_case(CT_ARCH_LLAMA, 2);
}

// ---- sampling ----

// The exact joint distribution of the first two sampled tokens after prompt: p(x1)·p(x2 | x1).
static void exact_pairs(CtModel *m, const int32_t *prompt, int n, const CtSampling *s, double *joint) {
    const int V = m->config.vocab_size;
    float *p1 = ct_alloc(sizeof(float) * (size_t)V), *p2 = ct_alloc(sizeof(float) * (size_t)V);
    CtGenerator g;
    ct_generator_init(&g, m, m->config.max_seq_len);
    for (int a = 0; a < V; a++) {
        ct_generator_reset(&g);
        const float *logits = ct_generator_feed_many(&g, prompt, n) + (size_t)(n - 1) * V;
        ct_sampling_probs(logits, V, s, p1);
        ct_sampling_probs(ct_generator_feed(&g, a), V, s, p2);
        for (int b = 0; b < V; b++) joint[a * V + b] = (double)p1[a] * p2[b];
    }
    ct_generator_free(&g);
    ct_free(p1);
    ct_free(p2);
}

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
    exact_pairs(&m, prompt, 3, &s, exact);
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
