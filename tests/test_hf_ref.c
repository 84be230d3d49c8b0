// ctrain against transformers (tests/ref/hf_interop_ref.py), where torch and transformers are
// importable: a random GPT2LMHeadModel / LlamaForCausalLM saved by transformers, with a
// tokenizer trained by `tokenizers`, imports into ctrain with the same logits (relative error
// below 1e-4 in fp32) and the same token ids, and ctrain's export loads back into transformers
// (AutoModelForCausalLM, AutoTokenizer) with the same logits again. Elsewhere the tests skip
// with the reason.
#include <math.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"
#include "train/interop/hf_interop.h"

#define REF_T 12
#define REF_V 300

static int ref(const char *args) { return hf_fixture_ref("hf_interop_ref.py", args); }

static int read_exact(const char *path, void *dst, size_t bytes) {
    size_t size = 0;
    char *data = ct_test_read(path, &size);
    int ok = data && size == bytes;
    if (ok) memcpy(dst, data, bytes);
    free(data);
    return ok ? 0 : -1;
}

// The imported tokenizer (tokenizer.json as transformers saved it) encodes the sample text to
// the ids transformers gave.
static int check_sample_ids(const char *dir, const char *ckpt) {
    char path[2048];
    snprintf(path, sizeof path, "%s/sample_ids.bin", dir);
    size_t size = 0;
    char *want = ct_test_read(path, &size);
    CtModelConfig config;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (!want || ct_checkpoint_read_meta(ckpt, &config, &meta) != 0 || !meta.tokenizer_json) {
        ct_test_fail(__FILE__, __LINE__, "no sample ids or no tokenizer in %s", ckpt);
        free(want);
        return 0;
    }
    CtTokenizer t;
    int ok = ct_tokenizer_parse_hf(&t, meta.tokenizer_json, strlen(meta.tokenizer_json), ckpt, NULL) == 0;
    if (ok) {
        static const char text[] = "hello the world, the quick brown fox!";
        CtEncoder *e = ct_encoder_new(&t);
        CtIds ids = {0};
        ct_encode(e, (const uint8_t *)text, sizeof text - 1, 0, &ids);
        ok = ids.len * 4 == size && memcmp(ids.data, want, size) == 0;
        if (!ok) ct_test_fail(__FILE__, __LINE__, "ctrain encodes the sample to %zu ids, transformers to %zu", ids.len, size / 4);
        ct_ids_free(&ids);
        ct_encoder_free(e);
        ct_tokenizer_free(&t);
    } else {
        ct_test_fail(__FILE__, __LINE__, "%s", ct_error_message());
    }
    free(want);
    ct_checkpoint_meta_free(&meta);
    return ok;
}

// transformers -> ctrain -> transformers for one model kind.
static void check_both_ways(const char *arch, const char *dtype, const char *shard) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *dir = ct_test_path("hf"), *ckpt = ct_test_path("imported.h5"), *out_dir = ct_test_path("exported");
    char args[2048];
    snprintf(args, sizeof args, "make %s %s %s %s", dir, arch, dtype, shard);
    if (ref(args) != 0) return;
    int32_t tokens[REF_T];
    static float want[REF_T * REF_V], got[REF_T * REF_V], back[REF_T * REF_V];
    char path[2048];
    snprintf(path, sizeof path, "%s/tokens.bin", dir);
    CHECK(read_exact(path, tokens, sizeof tokens) == 0);
    snprintf(path, sizeof path, "%s/logits.bin", dir);
    CHECK(read_exact(path, want, sizeof want) == 0);

    CtHfImportOptions iopt = {0};
    CHECK_MSG(ct_hf_import(dir, ckpt, &iopt) == 0, "%s", ct_error_message());
    CHECK(check_sample_ids(dir, ckpt));
    CHECK_MSG(hf_fixture_logits(ckpt, tokens, REF_T, got) == 0, "%s", ct_error_message());
    double err = hf_fixture_relative_error(got, want, REF_T * REF_V);
    CHECK_MSG(err < 1e-4, "%s %s: ctrain's logits differ from transformers' by %.3g (relative)", arch, dtype, err);

    CtHfExportOptions eopt = {0};
    CHECK_MSG(ct_hf_export(ckpt, out_dir, &eopt) == 0, "%s", ct_error_message());
    char tokens_path[1024], logits_path[1024];
    snprintf(tokens_path, sizeof tokens_path, "%s/tokens.bin", dir);
    snprintf(logits_path, sizeof logits_path, "%s", ct_test_path("back.bin"));
    snprintf(args, sizeof args, "logits %s %s %s", out_dir, tokens_path, logits_path);
    if (ref(args) != 0) return;
    CHECK(read_exact(logits_path, back, sizeof back) == 0);
    err = hf_fixture_relative_error(back, got, REF_T * REF_V);
    CHECK_MSG(err < 1e-4, "%s %s: transformers on ctrain's export differs from ctrain by %.3g", arch, dtype, err);
}

TEST(hf_ref, gpt2_logits_match_transformers_both_ways) { check_both_ways("gpt2", "float32", ""); }
TEST(hf_ref, llama_gqa_logits_match_transformers_both_ways) { check_both_ways("llama", "float32", ""); }
TEST(hf_ref, llama_tied_sharded_bf16_logits_match_transformers) { check_both_ways("llama-tied", "bfloat16", "shard"); }

// A ctrain checkpoint with its tokenizer: transformers loads the export (model and
// AutoTokenizer) and computes ctrain's logits.
TEST(hf_ref, ctrain_model_with_tokenizer_loads_in_transformers) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 0);
    c.vocab_size = REF_V;
    const char *ckpt = ct_test_path("ctrain.h5"), *dir = ct_test_path("export");
    CHECK(hf_fixture_checkpoint(ckpt, &c, 11) == 0);
    CtHfExportOptions eopt = {0};
    CHECK_MSG(ct_hf_export(ckpt, dir, &eopt) == 0, "%s", ct_error_message());
    int32_t tokens[REF_T];
    for (int t = 0; t < REF_T; t++) tokens[t] = (t * 37 + 5) % REF_V;
    const char *tokens_path = ct_test_path("tokens.bin"), *logits_path = ct_test_path("logits.bin");
    FILE *fp = fopen(tokens_path, "wb");
    fwrite(tokens, sizeof tokens, 1, fp);
    fclose(fp);
    char args[2048];
    snprintf(args, sizeof args, "logits %s %s %s", dir, tokens_path, logits_path);
    if (ref(args) != 0) return;
    static float want[REF_T * REF_V], got[REF_T * REF_V];
    CHECK(read_exact(logits_path, want, sizeof want) == 0);
    CHECK(hf_fixture_logits(ckpt, tokens, REF_T, got) == 0);
    double err = hf_fixture_relative_error(got, want, REF_T * REF_V);
    CHECK_MSG(err < 1e-4, "transformers on ctrain's export differs from ctrain by %.3g", err);
}
