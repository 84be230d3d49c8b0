// A ctrain reward model exported with `ctrain export hf` is transformers' *ForSequenceClassification
// with one label (tests/ref/reward_ref.py), and gives the scores ctrain gives: rows of different
// lengths in one right-padded batch, within 1e-5 relative (skips where torch/transformers are
// absent). Imported back, it scores exactly as before. And `ctrain reward` trains as TRL's
// RewardTrainer does, on pairs with and without a "margin" (tests/ref/reward_trl_ref.py).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "train/objectives/reward.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"

enum { ROWS = 4, T = 16 };

// The scores of checkpoint `path` for the rows of tokens (ROWS × T) ending at last[].
static void scores_of(const char *path, const int32_t *tokens, const int *last, float *scores) {
    CtModel m, rm;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(hf_fixture_load(path, &m, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CHECK(m.config.reward_head == 1);
    CHECK(ct_model_create(&rm, &m.config, ct_ops_cpu(), ROWS, T, CT_MODEL_FROZEN) == 0);
    memcpy(rm.params, m.params, m.n_params * sizeof(float));
    ct_model_free(&m);
    CtBatch b = {.tokens = tokens, .B = ROWS, .T = T};
    ct_model_reward_forward(&rm, &b, last, scores);
    ct_model_free(&rm);
}

static void check_export_scores(CtArch arch, int tied, const char *architecture, int with_reference) {
    CtModelConfig c = hf_fixture_config(arch, tied);
    c.reward_head = 1;
    char *tok_json = hf_fixture_tokenizer_json();
    CtTokenizer tok;
    CHECK(ct_tokenizer_parse_hf(&tok, tok_json, strlen(tok_json), "fixture", NULL) == 0);
    free(tok_json);
    const int32_t eos = ct_tokenizer_special_id(&tok, "<|endoftext|>");
    ct_tokenizer_free(&tok);
    CHECK(eos >= 0);
    c.reward_pad_id = eos;  // as `ctrain reward` sets it: the EOS, TRL's padding
    const char *ckpt = ct_test_path("rm.h5");
    CHECK(hf_fixture_checkpoint(ckpt, &c, 11) == 0);
    if (hf_fixture_ctrain_ok("export hf rm.h5 --out hf") != 0) return;
    char *config = ct_test_read(ct_test_path("hf/config.json"), NULL);
    CHECK_CONTAINS(config, architecture);
    char pad_line[64];
    snprintf(pad_line, sizeof pad_line, "\"pad_token_id\":\t%d", eos);
    CHECK_MSG(strstr(config, pad_line) != NULL, "no %s in %s", pad_line, config);
    CHECK_MSG(!strstr(config, "lm_head"), "%s", config);
    free(config);
    // rows of 16, 9, 5 and 12 tokens; row 1 ends in the EOS (the pad id: it is read one token
    // earlier), row 3 has one inside (it counts there)
    static const int lengths[ROWS] = {16, 9, 5, 12};
    int32_t tokens[ROWS * T] = {0};
    int last[ROWS];
    CtRng rng;
    ct_rng_seed(&rng, 9);
    FILE *f = fopen(ct_test_path("ids.json"), "w");
    fprintf(f, "{\"rows\": [");
    for (int r = 0; r < ROWS; r++) {
        fprintf(f, "%s[", r ? ", " : "");
        for (int t = 0; t < lengths[r]; t++) {
            tokens[r * T + t] = (int32_t)ct_rng_below(&rng, 256);  // bytes: below the fixture's specials
            if ((r == 1 && t == lengths[r] - 1) || (r == 3 && t == 4)) tokens[r * T + t] = eos;
            fprintf(f, "%s%d", t ? ", " : "", tokens[r * T + t]);
        }
        fprintf(f, "]");
        last[r] = ct_reward_last_token(tokens + r * T, lengths[r], eos);
    }
    fprintf(f, "]}\n");
    fclose(f);
    float ours[ROWS], back[ROWS], theirs[ROWS];
    scores_of(ckpt, tokens, last, ours);
    if (hf_fixture_ctrain_ok("import hf hf --out back.h5") != 0) return;
    scores_of(ct_test_path("back.h5"), tokens, last, back);
    for (int r = 0; r < ROWS; r++) CHECK_MSG(back[r] == ours[r], "row %d: %.9g imported back, %.9g before", r, back[r], ours[r]);
    if (!with_reference) return;
    char args[4096];
    snprintf(args, sizeof args, "'%s' '%s' '%s'", ct_test_path("hf"), ct_test_path("ids.json"), ct_test_path("scores.bin"));
    if (hf_fixture_ref("reward_ref.py", args) != 0) return;
    CHECK(hf_fixture_read_values(ct_test_tmpdir(), "scores.bin", theirs, sizeof theirs) == ROWS);
    double worst = 0;
    for (int r = 0; r < ROWS; r++) {
        double err = fabs((double)ours[r] - theirs[r]) / fmax(1.0, fabs(theirs[r]));
        worst = fmax(worst, err);
        CHECK_MSG(err < 1e-5, "row %d (%d tokens): ctrain %.7g, transformers %.7g", r, lengths[r], ours[r], theirs[r]);
    }
    printf("    %s: %d rows, worst relative score difference %.2g\n", architecture, ROWS, worst);
}

TEST(ref, reward_export_gpt2_scores_as_transformers) {
    check_export_scores(CT_ARCH_GPT2, 1, "GPT2ForSequenceClassification", 1);
}
TEST(ref, reward_export_llama_untied_scores_as_transformers) {
    check_export_scores(CT_ARCH_LLAMA, 0, "LlamaForSequenceClassification", 1);
}
// Without Python: the export's config and tensors, and the import back (an untied llama's files have
// no LM head: the import ties it) scoring to the bit.
TEST(reward_interop, export_then_import_scores_the_same_gpt2) {
    check_export_scores(CT_ARCH_GPT2, 1, "GPT2ForSequenceClassification", 0);
}
TEST(reward_interop, export_then_import_scores_the_same_llama_untied) {
    check_export_scores(CT_ARCH_LLAMA, 0, "LlamaForSequenceClassification", 0);
}

// GGUF (llama.cpp's format) has no place for the score head: the export refuses in one line and
// writes nothing.
TEST(reward_interop, gguf_export_refuses_a_reward_model) {
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 1);
    c.reward_head = 1;
    c.reward_pad_id = -1;
    CHECK(hf_fixture_checkpoint(ct_test_path("rm.h5"), &c, 11) == 0);
    char *out = NULL;
    int rc = hf_fixture_ctrain("export gguf rm.h5 --out rm.gguf", &out);
    CHECK_MSG(rc != 0, "%s", out);
    CHECK_CONTAINS(out, "a reward model (score.weight)");
    free(out);
    CHECK(ct_test_read(ct_test_path("rm.gguf"), NULL) == NULL);
}

// ctrain reward against TRL's RewardTrainer (tests/ref/reward_trl_ref.py): a tiny
// LlamaForSequenceClassification imported with `ctrain import hf`, eight plain-string pairs (with
// their "margin" column, or without), centering 0.01, the same batch and AdamW: every step's loss,
// accuracy, margin and mean/min/max reward equal TRL's (to 2e-5 relative). Skipped where torch,
// transformers, datasets or trl is not importable.
static void train_against_trl(const char *mode) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    if (!ct_test_shared_data()) return;
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && head -c 300000 '%s/corpora/nlp-corpus-40k.txt' > corpus.txt && '%s' tokenizer train --input "
             "corpus.txt --vocab-size 1024 --special '<|endoftext|>' --out tok.json",
             dir, ct_test_shared_data(), bin);
    int rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "%s: %s", cmd, out);
    free(out);
    char args[4096];
    snprintf(args, sizeof args, "'%s' '%s' %s", bin, dir, mode);
    hf_fixture_ref("reward_trl_ref.py", args);
}

TEST(reward_ref, pairs_with_margins_train_as_trl_reward_trainer_does) { train_against_trl("margins"); }
TEST(reward_ref, pairs_without_margins_train_as_trl_reward_trainer_does) { train_against_trl("plain"); }
