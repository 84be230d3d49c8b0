#include "tests/hf_fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/interop/hf_interop.h"

char *hf_fixture_tokenizer_json(void) {
    CtTokenizer t;
    ct_tokenizer_init(&t, CT_PATTERN_GPT2, CT_MERGES_BY_LIST);
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        ct_tokenizer_add(&t, b, &byte, 1, CT_TOKEN_NORMAL);
    }
    ct_tokenizer_add(&t, 256, (const uint8_t *)" t", 2, CT_TOKEN_NORMAL);
    ct_tokenizer_add(&t, 257, (const uint8_t *)"he", 2, CT_TOKEN_NORMAL);
    ct_tokenizer_add(&t, 258, (const uint8_t *)" the", 4, CT_TOKEN_NORMAL);
    ct_tokenizer_add_merge(&t, ' ', 't');
    ct_tokenizer_add_merge(&t, 'h', 'e');
    ct_tokenizer_add_merge(&t, 256, 257);
    ct_tokenizer_add(&t, 259, (const uint8_t *)"<|endoftext|>", 13, CT_TOKEN_SPECIAL);
    char *json = ct_tokenizer_finish(&t) == 0 ? ct_tokenizer_hf_json(&t) : NULL;
    ct_tokenizer_free(&t);
    return json;
}

CtModelConfig hf_fixture_config(CtArch arch, int tied) {
    CtModelConfig c = tiny_config(arch);
    c.vocab_size = 264;
    c.tie_embeddings = tied;
    return c;
}

int hf_fixture_checkpoint(const char *path, const CtModelConfig *config, uint64_t seed) {
    CtModel m;
    if (ct_model_create(&m, config, ct_ops_cpu(), 1, 1, 0) != 0) return -1;
    tiny_randomize_params(&m, seed);
    // values a conversion could get wrong: signed zero, a subnormal, a large value
    m.params[0] = -0.0f;
    m.params[1] = 1e-40f;
    m.params[2] = 65000.0f;  // near float16's largest
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    char *json = hf_fixture_tokenizer_json();
    meta.tokenizer_json = ct_strdup(json);
    free(json);
    CtTokenizer t;
    ct_tokenizer_parse_hf(&t, meta.tokenizer_json, strlen(meta.tokenizer_json), "fixture", NULL);
    meta.tokenizer_hash = ct_tokenizer_fingerprint(&t);
    ct_tokenizer_free(&t);
    int rc = ct_checkpoint_save(path, &m, NULL, &meta);
    ct_checkpoint_meta_free(&meta);
    ct_model_free(&m);
    return rc;
}

int hf_fixture_load(const char *path, CtModel *m, CtCheckpointMeta *meta) {
    return ct_checkpoint_load(path, m, ct_ops_cpu(), 1, 1, 0, NULL, meta);
}

int hf_fixture_logits(const char *ckpt, const int32_t *tokens, int T, float *out) {
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_load(ckpt, &m, ct_ops_cpu(), 1, T, 0, NULL, &meta) != 0) return -1;
    CtBatch batch = {.tokens = tokens, .B = 1, .T = T};
    ct_model_forward(&m, &batch);
    memcpy(out, ct_model_logits(&m), sizeof(float) * (size_t)T * (size_t)m.config.vocab_size);
    ct_model_free(&m);
    ct_checkpoint_meta_free(&meta);
    return 0;
}

int hf_fixture_ref(const char *script, const char *args) {
    const char *root = getenv("CTRAIN_ROOT");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "python3 %s/tests/ref/%s %s", root ? root : ".", script, args);
    char *out = NULL;
    int rc = ct_test_run(cmd, &out);
    if (out && strstr(out, "SKIP:")) {
        char reason[512];
        snprintf(reason, sizeof reason, "%s", strstr(out, "SKIP:") + 6);
        reason[strcspn(reason, "\n")] = 0;
        free(out);
        SKIP("%s", reason);
    }
    if (rc == 127) {
        free(out);
        SKIP("python3 is not installed");
    }
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "%s failed (%d): %s", cmd, rc, out ? out : "");
    free(out);
    return rc;
}

double hf_fixture_relative_error(const float *a, const float *b, size_t n) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        diff = fmax(diff, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

long hf_fixture_read_values(const char *dir, const char *name, void *dst, size_t max_bytes) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t size = 0;
    char *data = ct_test_read(path, &size);
    long n = data && size <= max_bytes ? (long)(size / 4) : -1;
    if (n >= 0) memcpy(dst, data, size);
    free(data);
    return n;
}

int hf_fixture_ctrain(const char *args, char **out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", ct_test_tmpdir(), ct_test_bin(), args);
    return ct_test_run(cmd, out);
}

int hf_fixture_ctrain_ok(const char *args) {
    char *out = NULL;
    int rc = hf_fixture_ctrain(args, &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "ctrain %s: exit %d: %s", args, rc, out ? out : "");
    free(out);
    return rc;
}

double hf_fixture_check_eval(const char *dir, const char *ckpt) {
    char want_text[256] = "", args[2048], *out = NULL;
    long n = hf_fixture_read_values(dir, "eval.txt", want_text, sizeof want_text - 1);
    double want = NAN, got = NAN;
    long want_tokens = -1, tokens = -2;
    if (n > 0) sscanf(want_text, "loss=%lf tokens=%ld", &want, &want_tokens);
    snprintf(args, sizeof args, "eval --threads 1 --checkpoint %s --text %s/sample.txt --seq 16", ckpt, dir);
    int rc = hf_fixture_ctrain(args, &out);
    const char *last = out ? strstr(out, "loss=") : NULL;
    if (rc == 0 && last) sscanf(last, "loss=%lf ppl=%*f tokens=%ld", &got, &tokens);
    printf("    ctrain eval: loss %.9f, transformers %.9f over %ld tokens (relative %.3g)\n", got, want, want_tokens,
           fabs(got - want) / want);
    if (!(rc == 0 && tokens == want_tokens && fabs(got - want) <= 1e-5 * want))
        ct_test_fail(__FILE__, __LINE__, "ctrain eval: loss %.9f over %ld tokens; transformers %.9f over %ld (%s)", got,
                     tokens, want, want_tokens, out ? out : "");
    free(out);
    return rc == 0 && tokens == want_tokens ? got : NAN;
}

// The ids of a line of numbers; their count.
static int parse_ids(const char *line, int32_t *ids, int max) {
    int n = 0;
    char *end;
    for (long v = strtol(line, &end, 10); end != line && n < max; v = strtol(line, &end, 10)) {
        ids[n++] = (int32_t)v;
        line = end;
        if (*line == '\n') break;
    }
    return n;
}

// `ctrain generate` at temperature 0 (with `extra` options): the prompt's ids and the greedy
// tokens of transformers in `file`.
static void check_greedy_file(const char *dir, const char *ckpt, const char *file, const char *extra) {
    int32_t prompt[64], greedy[64], got_prompt[64], got[64];
    long n_prompt = hf_fixture_read_values(dir, "prompt_ids.bin", prompt, sizeof prompt);
    long n_greedy = hf_fixture_read_values(dir, file, greedy, sizeof greedy);
    char *out = NULL, args[512];
    snprintf(args, sizeof args, "generate --checkpoint %s --prompt 'hello the world, the quick' "
                                "--temperature 0 --max-tokens 40 --ids --threads 1 %s", ckpt, extra);
    int rc = hf_fixture_ctrain(args, &out);
    CHECK_MSG(rc == 0 && out, "ctrain generate: %s", out ? out : "");
    if (rc != 0 || !out) {
        free(out);
        return;
    }
    const char *second = strchr(out, '\n');
    int np = parse_ids(out, got_prompt, 64), ng = second ? parse_ids(second + 1, got, 64) : 0;
    CHECK_MSG(np == n_prompt && memcmp(got_prompt, prompt, sizeof(int32_t) * (size_t)np) == 0,
              "ctrain encodes the prompt to other ids than transformers: %s", out);
    int same = ng == n_greedy && memcmp(got, greedy, sizeof(int32_t) * (size_t)ng) == 0;
    printf("    greedy%s: %d of %ld tokens equal transformers'%s\n", *extra ? " past eos" : "", same ? ng : 0,
           n_greedy, n_greedy < 40 ? " (both stopped at an eos id)" : "");
    char want_text[1024] = "";
    for (long i = 0; i < n_greedy; i++)
        snprintf(want_text + strlen(want_text), sizeof want_text - strlen(want_text), " %d", greedy[i]);
    CHECK_MSG(same, "ctrain's greedy tokens differ from transformers':\nctrain: %s\ntransformers:%s", out, want_text);
    free(out);
}

void hf_fixture_check_greedy(const char *dir, const char *ckpt) {
    check_greedy_file(dir, ckpt, "greedy.bin", "");
    check_greedy_file(dir, ckpt, "greedy_all.bin", "--ignore-eos");
}

int hf_fixture_read_floats(const char *path, float *dst, size_t n) {
    size_t size = 0;
    char *data = ct_test_read(path, &size);
    int ok = data && size == n * sizeof(float);
    if (ok) memcpy(dst, data, size);
    free(data);
    return ok ? 0 : -1;
}

int hf_fixture_adapter_base(CtArch arch, int T, const char **base, const char **hf, const char **tokens_path,
                            int32_t *tokens) {
    CtModelConfig cfg = hf_fixture_config(arch, arch == CT_ARCH_GPT2);
    *base = ct_test_path("base.h5");
    *hf = ct_test_path("hf");
    *tokens_path = ct_test_path("tokens.bin");
    if (hf_fixture_checkpoint(*base, &cfg, 7) != 0) return -1;
    // the fixture's 3e38 (a conversion test) would make GPT-2's tied head overflow: tame it
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (hf_fixture_load(*base, &m, &meta) != 0) return -1;
    m.params[2] = 0.5f;
    int rc = ct_checkpoint_save(*base, &m, NULL, &meta);
    ct_checkpoint_meta_free(&meta);
    ct_model_free(&m);
    if (rc != 0) return -1;
    CtHfExportOptions eopt = {0};
    if (ct_hf_export(*base, *hf, &eopt) != 0) return -1;
    for (int t = 0; t < T; t++) tokens[t] = (t * 37 + 5) % cfg.vocab_size;
    FILE *fp = fopen(*tokens_path, "wb");
    if (!fp) return -1;
    fwrite(tokens, sizeof(int32_t), (size_t)T, fp);
    fclose(fp);
    return 0;
}
