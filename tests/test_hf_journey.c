// The `import hf` journey at real size, against the installed transformers (5.x): tiny random
// models saved by transformers in its current config shape (tests/ref/hf_journey_ref.py) with
// GPT-2's 50257-id tokenizer, imported with `ctrain import hf` as a user runs it. ctrain's logits
// match transformers' (relative error below 1e-4 in fp32), the imported tokenizer encodes the
// prompt to AutoTokenizer's ids, greedy decoding (ctrain's key/value-cache generator) picks the
// tokens model.generate(do_sample=False) picks, and `ctrain generate --temperature 0` prints the
// bytes they decode to. The same Llama saved with scaled RoPE (llama3, linear) is refused in one
// line, leaving no checkpoint. Skips with the reason without torch/transformers or the GPT-2 tokenizer.
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"
#include "train/interop/checkpoint_io.h"
#include "train/model/generate.h"

#define JOURNEY_T 32
#define JOURNEY_V 50257
#define JOURNEY_EOT 50256
#define JOURNEY_NEW 24
#define JOURNEY_PROMPT "hello the world, the quick brown fox"

// The int32 / float32 file DIR/ref/NAME; `n` receives its element count.
static void *ref_file(const char *dir, const char *name, size_t *n) {
    char path[2048];
    snprintf(path, sizeof path, "%s/ref/%s", dir, name);
    size_t size = 0;
    void *data = ct_test_read(path, &size);
    *n = size / 4;
    return data;
}

// The prompt's ids by the checkpoint's tokenizer, then greedy tokens from ctrain's generator
// until the end-of-text token or `max_new` tokens. 0, or -1 + error.
static int ctrain_greedy(const char *ckpt, CtIds *prompt, CtIds *greedy, int max_new) {
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_load(ckpt, &m, ct_ops_cpu(), 1, 1, 0, NULL, &meta) != 0) return -1;
    CtTokenizer tok;
    int rc = meta.tokenizer_json ? ct_tokenizer_parse_hf(&tok, meta.tokenizer_json, strlen(meta.tokenizer_json), ckpt,
                                                         NULL)
                                 : ct_error_set("%s: no tokenizer", ckpt);
    if (rc == 0) {
        CtEncoder *enc = ct_encoder_new(&tok);
        ct_encode(enc, (const uint8_t *)JOURNEY_PROMPT, strlen(JOURNEY_PROMPT), 0, prompt);
        ct_encoder_free(enc);
        ct_tokenizer_free(&tok);
        CtGenerator g;
        ct_generator_init(&g, &m, m.config.max_seq_len);
        const float *logits = NULL;
        for (size_t i = 0; i < prompt->len; i++) logits = ct_generator_feed(&g, prompt->data[i]);
        CtSampling greedy_sampling = {0.0f, 0, 1.0f};
        for (int i = 0; i < max_new; i++) {
            int32_t next = ct_sample(logits, m.config.vocab_size, &greedy_sampling, NULL);
            if (next == JOURNEY_EOT) break;
            ct_ids_push(greedy, next);
            logits = ct_generator_feed(&g, next);
        }
        ct_generator_free(&g);
    }
    ct_checkpoint_meta_free(&meta);
    ct_model_free(&m);
    return rc;
}

static void journey(const char *kind) {
    ct_log_set_level(CT_LOG_QUIET);
    char gpt2[1024], dir[1024], ckpt[1024], args[4096], cmd[8192];
    snprintf(gpt2, sizeof gpt2, "%s/tokenizers/gpt2", ct_test_shared_data());
    snprintf(dir, sizeof dir, "%s", ct_test_path(kind));
    snprintf(ckpt, sizeof ckpt, "%s", ct_test_path("imported.h5"));
    snprintf(args, sizeof args, "make %s %s %s", dir, kind, gpt2);
    if (hf_fixture_ref("hf_journey_ref.py", args) != 0) return;

    // as a user runs it; the tokenizer comes along (3.5 MB of tokenizer.json)
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "%s import hf %s --out %s", ct_test_bin(), dir, ckpt);
    int rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "%s: %s", cmd, out);
    CHECK_CONTAINS(out, "with its tokenizer");
    if (strcmp(kind, "llama-tied-head") == 0) CHECK_CONTAINS(out, "lm_head.weight differs");
    free(out);

    size_t n_tokens, n_logits, n_prompt, n_greedy;
    int32_t *tokens = ref_file(dir, "tokens.bin", &n_tokens), *prompt = ref_file(dir, "prompt_ids.bin", &n_prompt);
    int32_t *greedy = ref_file(dir, "greedy_ids.bin", &n_greedy);
    float *want = ref_file(dir, "logits.bin", &n_logits);
    CHECK(tokens && want && prompt && greedy);
    CHECK_EQ_INT(n_tokens, JOURNEY_T);
    CHECK_EQ_INT(n_logits, (size_t)JOURNEY_T * JOURNEY_V);
    float *got = ct_alloc(n_logits * sizeof(float));
    CHECK_MSG(hf_fixture_logits(ckpt, tokens, JOURNEY_T, got) == 0, "%s", ct_error_message());
    double err = hf_fixture_relative_error(got, want, n_logits);
    ct_free(got);
    CHECK_MSG(err < 1e-4, "%s: ctrain's logits differ from transformers' by %.3g (relative)", kind, err);

    CtIds ids = {0}, gen = {0};
    CHECK_MSG(ctrain_greedy(ckpt, &ids, &gen, JOURNEY_NEW) == 0, "%s", ct_error_message());
    CHECK_MSG(ids.len == n_prompt && memcmp(ids.data, prompt, n_prompt * 4) == 0,
              "ctrain encodes the prompt to %zu ids, AutoTokenizer to %zu", ids.len, n_prompt);
    size_t same = 0;
    while (same < gen.len && same < n_greedy && gen.data[same] == greedy[same]) same++;
    CHECK_MSG(gen.len == n_greedy && same == n_greedy, "%s: greedy tokens agree for %zu of %zu (ctrain made %zu)",
              kind, same, n_greedy, gen.len);
    ct_ids_free(&ids);
    ct_ids_free(&gen);

    // ctrain generate prints the prompt, the bytes of the greedy tokens, and a newline
    char text_path[1024], stdout_path[1024];
    snprintf(text_path, sizeof text_path, "%s/ref/greedy.txt", dir);
    snprintf(stdout_path, sizeof stdout_path, "%s", ct_test_path("generate.out"));
    snprintf(cmd, sizeof cmd, "%s generate --checkpoint %s --prompt '%s' --max-tokens %d --temperature 0 > %s",
             ct_test_bin(), ckpt, JOURNEY_PROMPT, JOURNEY_NEW, stdout_path);
    CHECK_EQ_INT(ct_test_run(cmd, NULL), 0);
    size_t n_text = 0, n_printed = 0;
    char *text = ct_test_read(text_path, &n_text), *printed = ct_test_read(stdout_path, &n_printed);
    const size_t n_prompt_text = strlen(JOURNEY_PROMPT);
    CHECK(text && printed);
    CHECK_MSG(n_printed == n_prompt_text + n_text + 1 && memcmp(printed, JOURNEY_PROMPT, n_prompt_text) == 0 &&
                  memcmp(printed + n_prompt_text, text, n_text) == 0,
              "%s: ctrain generate printed %zu bytes, transformers' greedy text is %zu after the prompt", kind,
              n_printed, n_text);
    free(text);
    free(printed);
    free(tokens);
    free(prompt);
    free(greedy);
    free(want);

    // the scaled RoPE types import (families_ref checks their numbers against transformers); a
    // type ctrain does not compute is refused by name and writes nothing
    for (int k = 0; k < 2 && strcmp(kind, "llama-rope") == 0; k++) {
        const char *type = k == 0 ? "llama3" : "linear";
        snprintf(cmd, sizeof cmd, "%s import hf %s-%s --skip-tokenizer --out %s.%s", ct_test_bin(), dir, type, ckpt,
                 type);
        CHECK_EQ_INT(ct_test_run(cmd, NULL), 0);
        snprintf(cmd, sizeof cmd, "sed -i 's/\"rope_type\": \"%s\"/\"rope_type\": \"longrope\"/' %s-%s/config.json",
                 type, dir, type);
        CHECK_EQ_INT(ct_test_run(cmd, NULL), 0);
        snprintf(cmd, sizeof cmd, "%s import hf %s-%s --skip-tokenizer --out %s.%s-refused", ct_test_bin(), dir, type,
                 ckpt, type);
        CHECK_EQ_INT(ct_test_run(cmd, &out), 1);
        CHECK_CONTAINS(out, "config.json: rope_parameters.rope_type 'longrope' is not supported");
        CHECK_MSG(strchr(out, '\n') == out + strlen(out) - 1, "not one line: %s", out);
        free(out);
        snprintf(cmd, sizeof cmd, "%s.%s-refused", ckpt, type);
        CHECK_MSG(access(cmd, F_OK) != 0, "%s was written", cmd);
    }
}

TEST_LONG(hf_journey_ref, llama_rope_parameters_theta_500000_gqa) { journey("llama-rope"); }
TEST_LONG(hf_journey_ref, llama_tied_config_with_a_saved_head) { journey("llama-tied-head"); }
TEST_LONG(hf_journey_ref, gpt2) { journey("gpt2"); }
