#include "tests/gguf_fixture.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer/tokenizer_files.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "tests/hf_fixture.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/hf_interop.h"

// A reader just large enough to check what the exporter writes (bounds-checked: a bug in the
// writer fails the test rather than crashing it).
typedef struct {
    const uint8_t *p, *end;
    int bad;
} Cursor;

static uint64_t rd(Cursor *c, int n) {
    uint64_t v = 0;
    if (c->p + n > c->end) {
        c->bad = 1;
        return 0;
    }
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | c->p[i];
    c->p += n;
    return v;
}

static const char *rd_str(Cursor *c, uint64_t *len) {
    *len = rd(c, 8);
    if (c->bad || *len > (uint64_t)(c->end - c->p)) {
        c->bad = 1;
        return "";
    }
    const char *s = (const char *)c->p;
    c->p += *len;
    return s;
}

static size_t elem_size(uint32_t type) {
    static const size_t sizes[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return type < 13 ? sizes[type] : 0;
}

int gguf_parse(const char *path, Gguf *g) {
    memset(g, 0, sizeof *g);
    g->file = (uint8_t *)ct_test_read(path, &g->size);
    if (!g->file) return -1;
    Cursor c = {g->file, g->file + g->size, 0};
    if (rd(&c, 4) != 0x46554747u || rd(&c, 4) != 3) return -1;
    uint64_t n_t = rd(&c, 8), n_kv = rd(&c, 8);
    if (n_t > 64 || n_kv > 64) return -1;
    for (uint64_t i = 0; i < n_kv && !c.bad; i++) {
        Kv *kv = &g->kv[g->n_kv++];
        uint64_t len;
        const char *key = rd_str(&c, &len);
        snprintf(kv->key, sizeof kv->key, "%.*s", (int)len, key);
        kv->type = (uint32_t)rd(&c, 4);
        if (kv->type == 8) {
            const char *s = rd_str(&c, &len);
            snprintf(kv->str, sizeof kv->str, "%.*s", (int)len, s);
        } else if (kv->type == 9) {
            kv->elem_type = (uint32_t)rd(&c, 4);
            kv->count = rd(&c, 8);
            kv->array = c.p;
            for (uint64_t k = 0; k < kv->count && !c.bad; k++) {
                if (kv->elem_type == 8) rd_str(&c, &len);
                else rd(&c, (int)elem_size(kv->elem_type));
            }
        } else if (kv->type == 6) {
            uint32_t bits = (uint32_t)rd(&c, 4);
            memcpy(&kv->f, &bits, 4);
        } else {
            kv->u = rd(&c, (int)elem_size(kv->type));
        }
    }
    for (uint64_t i = 0; i < n_t && !c.bad; i++) {
        TensorInfo *t = &g->t[g->n_t++];
        uint64_t len;
        const char *name = rd_str(&c, &len);
        snprintf(t->name, sizeof t->name, "%.*s", (int)len, name);
        t->n_dims = (uint32_t)rd(&c, 4);
        for (uint32_t d = 0; d < t->n_dims && d < 4; d++) t->ne[d] = rd(&c, 8);
        t->type = (uint32_t)rd(&c, 4);
        t->offset = rd(&c, 8);
    }
    size_t header = (size_t)(c.p - g->file);
    g->data = g->file + (header + 31) / 32 * 32;
    return c.bad ? -1 : 0;
}

// The key's entry; an empty one (count 0, no string) when absent, so checks fail, not crash.
const Kv *gguf_kv(const Gguf *g, const char *key) {
    static const Kv absent = {.str = "(absent)"};
    for (int i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return &absent;
}

const TensorInfo *gguf_tensor(const Gguf *g, const char *name) {
    for (int i = 0; i < g->n_t; i++)
        if (strcmp(g->t[i].name, name) == 0) return &g->t[i];
    return NULL;
}

// The k-th string of a string array.
void gguf_array_string(const Kv *a, uint64_t k, char *out, size_t size) {
    const uint8_t *p = a->array;
    uint64_t len = 0;
    for (uint64_t i = 0; i <= k; i++) {
        memcpy(&len, p, 8);
        if (i < k) p += 8 + len;
    }
    snprintf(out, size, "%.*s", (int)len, (const char *)p + 8);
}

// Exports f32 and f16 GGUF files of a fixture model and has tests/ref/check_gguf.py compare its
// NumPy forward of each file with ctrain's logits.
void gguf_check_against_numpy(CtModelConfig c) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *ckpt = ct_test_path("m.h5"), *out = ct_test_path("m.gguf");
    CHECK(hf_fixture_checkpoint(ckpt, &c, 8) == 0);
    CtGgufExportOptions opt = {.dtype = "f32"};
    CHECK_MSG(ct_gguf_export(ckpt, out, &opt) == 0, "%s", ct_error_message());
    enum { T = 10 };
    int32_t tokens[T];
    for (int t = 0; t < T; t++) tokens[t] = (t * 53 + 7) % c.vocab_size;
    static float logits[T * 264];
    CHECK(hf_fixture_logits(ckpt, tokens, T, logits) == 0);
    char tokens_path[1024], logits_path[1024], args[4096];
    snprintf(tokens_path, sizeof tokens_path, "%s", ct_test_path("tokens.bin"));
    snprintf(logits_path, sizeof logits_path, "%s", ct_test_path("logits.bin"));
    FILE *fp = fopen(tokens_path, "wb");
    fwrite(tokens, sizeof tokens, 1, fp);
    fclose(fp);
    fp = fopen(logits_path, "wb");
    fwrite(logits, sizeof logits, 1, fp);
    fclose(fp);
    snprintf(args, sizeof args, "%s %s %s", out, tokens_path, logits_path);
    if (hf_fixture_ref("check_gguf.py", args) != 0) return;
    opt.dtype = "f16";
    CHECK_MSG(ct_gguf_export(ckpt, out, &opt) == 0, "%s", ct_error_message());
    hf_fixture_ref("check_gguf.py", args);
}

// The GGUF file's NumPy forward against transformers on `ctrain export hf` of the same
// checkpoint: two exports of ctrain's weights, read by two independent implementations, agree
// (whatever ctrain's own forward computes). Runs after gguf_check_against_numpy (m.h5, m.gguf
// f16 then f32 again, tokens.bin).
void gguf_check_against_transformers(void) {
    CtGgufExportOptions opt = {.dtype = "f32"};
    CtHfExportOptions hopt = {0};
    CHECK_MSG(ct_gguf_export(ct_test_path("m.h5"), ct_test_path("m.gguf"), &opt) == 0, "%s", ct_error_message());
    CHECK_MSG(ct_hf_export(ct_test_path("m.h5"), ct_test_path("hf"), &hopt) == 0, "%s", ct_error_message());
    char args[4096], tokens[1024], hf[1024], tf[1024];
    snprintf(tokens, sizeof tokens, "%s", ct_test_path("tokens.bin"));
    snprintf(hf, sizeof hf, "%s", ct_test_path("hf"));
    snprintf(tf, sizeof tf, "%s", ct_test_path("transformers_logits.bin"));
    snprintf(args, sizeof args, "logits %s %s %s", hf, tokens, tf);
    if (hf_fixture_ref("hf_interop_ref.py", args) != 0) return;
    snprintf(args, sizeof args, "%s %s %s", ct_test_path("m.gguf"), tokens, tf);
    hf_fixture_ref("check_gguf.py", args);
}

// The path of llama_greedy; skips the test when llama.cpp cannot be built on this machine.
const char *gguf_llama_greedy(void) {
    static char path[4096];
    const char *root = getenv("CTRAIN_ROOT");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s/scripts/build_llama_cpp.sh'", root ? root : ".");
    char *out = NULL;
    int rc = ct_test_run(cmd, &out);
    size_t n = out ? strlen(out) : 0;
    while (n > 0 && out[n - 1] == '\n') out[--n] = 0;
    const char *last = out ? (strrchr(out, '\n') ? strrchr(out, '\n') + 1 : out) : "";
    snprintf(path, sizeof path, "%s", last);
    if (rc == 77) {
        free(out);
        SKIP("%s", path);
    }
    if (rc != 0) {
        ct_test_fail(__FILE__, __LINE__, "scripts/build_llama_cpp.sh failed (%d): %s", rc, out ? out : "");
        free(out);
        return NULL;
    }
    free(out);
    return path;
}

// The width of the real-tokenizer models: tiny_config's layers at d_model 64.
CtModelConfig gguf_real_config(CtArch arch) {
    CtModelConfig c = tiny_config(arch);
    c.d_model = 64;
    c.d_ff = arch == CT_ARCH_LLAMA ? 96 : 256;
    c.max_seq_len = 96;
    c.tie_embeddings = arch == CT_ARCH_GPT2;
    return c;
}

// A checkpoint of config c (its vocabulary: the tokenizer's) with random weights and the
// tokenizer at tokenizer_path.
int gguf_real_checkpoint(const char *path, CtModelConfig c, const char *tokenizer_path) {
    CtTokenizer t;
    if (ct_tokenizer_load(&t, tokenizer_path, NULL) != 0) return -1;
    c.vocab_size = ct_tokenizer_vocab_size(&t);
    CtModel m;
    if (ct_model_create(&m, &c, ct_ops_cpu(), 1, 1, 0) != 0) {
        ct_tokenizer_free(&t);
        return -1;
    }
    tiny_randomize_params(&m, 11);
    // Gemma's sqrt(d) embedding scale: embeddings of std 0.3 would make every residual mostly its
    // own token's (tied) embedding, and greedy decoding repeat the last token; scale them as a
    // trained Gemma's are, so the sqrt(d)-scaled ones have std 0.3.
    for (int i = 0; c.embed_scale && i < m.n_tensors; i++) {
        const CtParamEntry *e = &m.table[i];
        if (strcmp(e->name, "model.embed_tokens.weight") != 0) continue;
        for (size_t j = 0; j < e->numel; j++) m.params[e->offset + j] /= sqrtf((float)c.d_model);
    }
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    char *json = ct_tokenizer_hf_json(&t);
    meta.tokenizer_json = ct_strdup(json);
    free(json);
    meta.tokenizer_hash = ct_tokenizer_fingerprint(&t);
    int rc = ct_checkpoint_save(path, &m, NULL, &meta);
    ct_checkpoint_meta_free(&meta);
    ct_model_free(&m);
    ct_tokenizer_free(&t);
    return rc;
}

// The line after `label` in text ("prompt: 1 2 3" -> "1 2 3"), copied to out.
static void line_after(const char *text, const char *label, char *out, size_t size) {
    const char *p = text ? strstr(text, label) : NULL;
    out[0] = 0;
    if (!p) return;
    p += strlen(label);
    snprintf(out, size, "%.*s", (int)strcspn(p, "\n"), p);
}

// text as one single-quoted shell word ("it's" -> 'it'\''s').
static void shell_quote(const char *text, char *out, size_t size) {
    size_t k = 0;
    out[k++] = '\'';
    for (const char *p = text; *p && k + 5 < size; p++) {
        if (*p == '\'') {
            memcpy(out + k, "'\\''", 4);
            k += 4;
        } else {
            out[k++] = *p;
        }
    }
    out[k++] = '\'';
    out[k] = 0;
}

// How many different ids a space-separated list has.
static int distinct_ids(const char *list) {
    long seen[64];
    int n = 0;
    for (char *end; *list && n < 64; list = end) {
        long id = strtol(list, &end, 10);
        if (end == list) break;
        int k = 0;
        while (k < n && seen[k] != id) k++;
        if (k == n) seen[n++] = id;
    }
    return n;
}

// The space-separated ids of `list` appended to ids[*n] (at most max in all).
static void append_ids(const char *list, int32_t *ids, int *n, int max) {
    for (char *end; *list && *n < max; list = end) {
        long id = strtol(list, &end, 10);
        if (end == list) break;
        ids[(*n)++] = (int32_t)id;
    }
}

// llama.cpp's logits at each decoding step (llama_greedy --logits, [steps, V]) against ctrain's
// forward over the same tokens (the prompt, then the greedy ones both picked): the largest
// max|a - b| / max|b| of any step, or -1 + a recorded failure.
static double llama_cpp_logits_error(const char *ckpt, const char *logits_path, const char *prompt_ids,
                                     const char *new_ids, int V) {
    enum { MAX_T = 128 };
    int32_t ids[MAX_T];
    int n_prompt = 0, T = 0;
    append_ids(prompt_ids, ids, &n_prompt, MAX_T);
    T = n_prompt;
    append_ids(new_ids, ids, &T, MAX_T);
    size_t bytes = 0;
    float *llama = (float *)ct_test_read(logits_path, &bytes);
    float *ours = malloc(sizeof(float) * (size_t)T * (size_t)V);
    const int steps = (int)(bytes / (sizeof(float) * (size_t)V));
    double worst = -1;
    if (!llama || !ours || steps < 1 || hf_fixture_logits(ckpt, ids, T, ours) != 0) {
        ct_test_fail(__FILE__, __LINE__, "no logits to compare (%d steps of %d in %s): %s", steps, V, logits_path,
                     ct_error_message());
    } else {
        // step k predicts the token after position n_prompt - 1 + k
        for (int k = 0; k < steps && n_prompt - 1 + k < T; k++)
            worst = fmax(worst, hf_fixture_relative_error(llama + (size_t)k * V, ours + (size_t)(n_prompt - 1 + k) * V,
                                                          (size_t)V));
    }
    free(llama);
    free(ours);
    return worst;
}

void gguf_llama_cpp_agrees(CtModelConfig c, const char *tokenizer_path, const char *pre_name) {
    ct_log_set_level(CT_LOG_QUIET);
    if (!tokenizer_path) return;
    const char *greedy = gguf_llama_greedy();
    if (!greedy) return;
    const char *ckpt = ct_test_path("m.h5"), *gguf = ct_test_path("m.gguf");
    CHECK_MSG(gguf_real_checkpoint(ckpt, c, tokenizer_path) == 0, "%s", ct_error_message());
    char cmd[8192];
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' export gguf '%s' --out '%s' --dtype f32", ct_test_bin(), ckpt, gguf);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    Gguf g;
    CHECK(gguf_parse(gguf, &g) == 0);
    CHECK_STR_EQ(gguf_kv(&g, "tokenizer.ggml.pre")->str, pre_name);
    const int V = (int)gguf_kv(&g, "tokenizer.ggml.tokens")->count;
    free(g.file);
    // words, numbers, contractions, punctuation runs, several spaces, a newline, accents and CJK:
    // the pieces where the three patterns differ
    char prompt[512];
    shell_quote("Hello world, it's 2024!!  Numbers: 123456 and\n  caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd don't", prompt,
                sizeof prompt);
    snprintf(cmd, sizeof cmd, "'%s' generate --checkpoint '%s' --prompt %s --temperature 0 --max-tokens 32 --ids",
             ct_test_bin(), ckpt, prompt);
    int rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0 && out, "ctrain generate failed (%d): %s", rc, out ? out : "");
    char ctrain_prompt[4096], ctrain_tokens[4096], llama_prompt[4096], llama_tokens[4096];
    snprintf(ctrain_prompt, sizeof ctrain_prompt, "%.*s", (int)strcspn(out, "\n"), out);
    line_after(out, "\n", ctrain_tokens, sizeof ctrain_tokens);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' '%s' 32 %s --logits '%s'", greedy, gguf, prompt, ct_test_path("llama_logits.bin"));
    rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "llama.cpp refused the GGUF (%d): %s", rc, out ? out : "");
    line_after(out, "prompt: ", llama_prompt, sizeof llama_prompt);
    line_after(out, "tokens: ", llama_tokens, sizeof llama_tokens);
    free(out);
    CHECK_MSG(strcmp(ctrain_prompt, llama_prompt) == 0, "the prompt's ids:\n  ctrain    %s\n  llama.cpp %s", ctrain_prompt,
              llama_prompt);
    CHECK_MSG(strlen(ctrain_tokens) > 0 && strcmp(ctrain_tokens, llama_tokens) == 0,
              "greedy tokens:\n  ctrain    %s\n  llama.cpp %s", ctrain_tokens, llama_tokens);
    CHECK_MSG(distinct_ids(ctrain_tokens) >= 8, "greedy tokens repeat a few ids (a weak check): %s", ctrain_tokens);
    // f32 throughout on both sides (llama_greedy keeps the cache in f32, flash attention off),
    // except that llama.cpp's CPU GELU reads a float16 table (GGML_GELU_FP16 in ggml-cpu/vec.h):
    // about 5e-4 to 8e-4 relative on the GPT-2 and Gemma 2 shapes, 1e-5 at most without GELU
    const int gelu = c.arch == CT_ARCH_GPT2 || c.gate_act == CT_GATE_GELU_TANH;
    const double tol = gelu ? 3e-3 : 1e-4;
    double err = llama_cpp_logits_error(ckpt, ct_test_path("llama_logits.bin"), ctrain_prompt, ctrain_tokens, V);
    CHECK_MSG(err >= 0 && err < tol, "llama.cpp's logits differ from ctrain's by %.3g (relative; %g allowed)", err, tol);
}

// An 8k vocabulary trained by ctrain on the corpus with `pattern`; its path (NULL: the test failed).
const char *gguf_trained_8k_tokenizer(const char *pattern) {
    char corpus[2048], cmd[8192];
    snprintf(corpus, sizeof corpus, "%s/corpora/nlp-corpus-40k.txt", ct_test_shared_data());
    const char *tok = ct_test_path("tok8k.json");
    snprintf(cmd, sizeof cmd, "head -c 1000000 '%s' > '%s' && '%s' tokenizer train --input '%s' --vocab-size 8192 "
             "--pattern %s --special '<|endoftext|>' --out '%s'",
             corpus, ct_test_path("corpus.txt"), ct_test_bin(), ct_test_path("corpus.txt"), pattern, tok);
    char *out = NULL;
    int rc = ct_test_run(cmd, &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "tokenizer train failed (%d): %s", rc, out ? out : "");
    free(out);
    return rc == 0 ? tok : NULL;
}
