// ctrain export hf -> ctrain import hf: every tensor comes back bit for bit (f32), or exactly
// as rounded to bf16/f16; the tokenizer comes back byte for byte; sharding writes an index
// that import follows; the exported files have transformers' names, shapes and keys.
#include <cJSON.h>
#include <dirent.h>
#include <sys/stat.h>

#include "checkpoints/dtype_convert.h"
#include "checkpoints/safetensors.h"
#include "core/alloc.h"
#include "core/error.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"

static int run(const char *fmt, const char *a, const char *b, const char *extra, char **out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, fmt, ct_test_bin(), a, b, extra ? extra : "");
    return ct_test_run(cmd, out);
}

// Exports `ckpt` to dir and imports it back to ckpt2 through the CLI; returns 0 when both ran.
static int export_import(const char *ckpt, const char *dir, const char *ckpt2, const char *export_flags) {
    char *out = NULL;
    int rc = run("%s export hf %s --out %s %s", ckpt, dir, export_flags, &out);
    if (rc != 0) {
        ct_test_fail(__FILE__, __LINE__, "export failed: %s", out);
        free(out);
        return -1;
    }
    free(out);
    rc = run("%s import hf %s --out %s %s", dir, ckpt2, "", &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "import failed: %s", out);
    free(out);
    return rc;
}

// Compares two checkpoints: same shape, same tokenizer, and parameters equal after `round`
// (NULL: bit for bit).
static void check_same(const char *a_path, const char *b_path, float (*round)(float)) {
    CtModel a, b;
    CtCheckpointMeta ma, mb;
    CHECK_MSG(hf_fixture_load(a_path, &a, &ma) == 0, "%s", ct_error_message());
    CHECK_MSG(hf_fixture_load(b_path, &b, &mb) == 0, "%s", ct_error_message());
    CHECK(memcmp(&a.config, &b.config, sizeof a.config) == 0);
    CHECK_EQ_INT(a.n_params, b.n_params);
    CHECK(ma.tokenizer_json && mb.tokenizer_json);
    CHECK_STR_EQ(ma.tokenizer_json, mb.tokenizer_json);
    CHECK(ma.tokenizer_hash == mb.tokenizer_hash && ma.tokenizer_hash != 0);
    for (int i = 0; i < a.n_tensors; i++) {
        const CtParamEntry *e = &a.table[i];
        for (size_t k = 0; k < e->numel; k++) {
            float want = a.params[e->offset + k], got = b.params[e->offset + k];
            if (round) want = round(want);
            CHECK_MSG(memcmp(&want, &got, 4) == 0, "%s[%zu]: %.9g became %.9g", e->name, k, want, got);
        }
    }
    ct_model_free(&a);
    ct_model_free(&b);
    ct_checkpoint_meta_free(&ma);
    ct_checkpoint_meta_free(&mb);
}

// Whether the test's folder holds a leftover temporary (".tmp.") entry.
static int has_temporary(void) {
    DIR *d = opendir(ct_test_tmpdir());
    int found = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) found |= strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return found;
}

static float to_bf16(float x) { return ct_bf16_to_f32(ct_f32_to_bf16(x)); }
static float to_f16(float x) { return ct_f16_to_f32(ct_f32_to_f16(x)); }

static cJSON *read_json(const char *dir, const char *name) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = ct_test_read(path, NULL);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    free(text);
    return o;
}

TEST(hf_roundtrip, gpt2_f32_is_bit_exact_and_looks_like_transformers) {
    CtModelConfig c = hf_fixture_config(CT_ARCH_GPT2, 1);
    const char *ckpt = ct_test_path("gpt2.h5"), *dir = ct_test_path("gpt2-hf"), *back = ct_test_path("back.h5");
    CHECK_MSG(hf_fixture_checkpoint(ckpt, &c, 1) == 0, "%s", ct_error_message());
    if (export_import(ckpt, dir, back, NULL) != 0) return;
    check_same(ckpt, back, NULL);
    if (ct_test_failed()) return;

    cJSON *config = read_json(dir, "config.json");
    CHECK(config);
    CHECK_STR_EQ(cJSON_GetArrayItem(cJSON_GetObjectItem(config, "architectures"), 0)->valuestring, "GPT2LMHeadModel");
    CHECK_EQ_INT(cJSON_GetObjectItem(config, "n_embd")->valueint, 16);
    CHECK_EQ_INT(cJSON_GetObjectItem(config, "eos_token_id")->valueint, 259);
    CHECK_NEAR(cJSON_GetObjectItem(config, "layer_norm_epsilon")->valuedouble, 1e-5, 0);  // printed as 1e-05
    cJSON_Delete(config);
    cJSON *gen = read_json(dir, "generation_config.json");
    CHECK(gen && cJSON_GetObjectItem(gen, "eos_token_id")->valueint == 259);
    cJSON_Delete(gen);
    cJSON *tok = read_json(dir, "tokenizer_config.json");
    CHECK(tok);
    CHECK_STR_EQ(cJSON_GetObjectItem(tok, "eos_token")->valuestring, "<|endoftext|>");
    cJSON_Delete(tok);

    // Conv1D weights are stored [in, out]: c_attn is [16, 48] in the file
    char path[2048];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CtSafetensors f;
    CHECK_MSG(ct_st_open(&f, path) == 0, "%s", ct_error_message());
    CHECK_STR_EQ(ct_st_meta(&f, "format"), "pt");
    const CtStTensor *attn = ct_st_find(&f, "transformer.h.0.attn.c_attn.weight");
    CHECK(attn && attn->dtype == CT_ST_F32 && attn->shape[0] == 16 && attn->shape[1] == 48);
    CHECK(ct_st_find(&f, "lm_head.weight") == NULL);  // tied: transformers drops it too
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(hf_fixture_load(ckpt, &m, &meta) == 0);
    const float *w = m.w.layers[0].qkv_w, *file = (const float *)attn->data;  // [48, 16] in ctrain
    for (int o = 0; o < 48; o++)
        for (int i = 0; i < 16; i++) CHECK(file[i * 48 + o] == w[o * 16 + i]);
    ct_model_free(&m);
    ct_checkpoint_meta_free(&meta);
    ct_st_close(&f);
}

TEST(hf_roundtrip, llama_gqa_sharded_is_bit_exact) {
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 0);
    const char *ckpt = ct_test_path("llama.h5"), *dir = ct_test_path("llama-hf"), *back = ct_test_path("back.h5");
    CHECK_MSG(hf_fixture_checkpoint(ckpt, &c, 2) == 0, "%s", ct_error_message());
    if (export_import(ckpt, dir, back, "--max-shard-size 8KB") != 0) return;
    check_same(ckpt, back, NULL);
    if (ct_test_failed()) return;
    cJSON *index = read_json(dir, "model.safetensors.index.json");
    CHECK(index);
    cJSON *map = cJSON_GetObjectItem(index, "weight_map");
    // embed and lm_head (264x16 f32 = 16896 bytes) are larger than a shard: one shard each
    CHECK_STR_EQ(cJSON_GetObjectItem(map, "model.embed_tokens.weight")->valuestring, "model-00001-of-00004.safetensors");
    CHECK_STR_EQ(cJSON_GetObjectItem(map, "model.layers.0.self_attn.k_proj.weight")->valuestring,
                 "model-00002-of-00004.safetensors");
    CHECK_STR_EQ(cJSON_GetObjectItem(map, "lm_head.weight")->valuestring, "model-00004-of-00004.safetensors");
    CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetObjectItem(index, "metadata"), "total_size")->valuedouble, 49472);
    cJSON_Delete(index);
    char path[2048];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct stat st;
    CHECK(stat(path, &st) != 0);  // sharded: no single file
    snprintf(path, sizeof path, "%s/model-00004-of-00004.safetensors", dir);
    CHECK(stat(path, &st) == 0);
}

TEST(hf_roundtrip, llama_tied_bf16_and_f16_round_once) {
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 1);
    const char *ckpt = ct_test_path("tied.h5");
    CHECK_MSG(hf_fixture_checkpoint(ckpt, &c, 3) == 0, "%s", ct_error_message());
    if (export_import(ckpt, ct_test_path("bf16"), ct_test_path("bf16.h5"), "--dtype bf16") != 0) return;
    check_same(ckpt, ct_test_path("bf16.h5"), to_bf16);
    if (ct_test_failed()) return;
    if (export_import(ckpt, ct_test_path("f16"), ct_test_path("f16.h5"), "--dtype f16") != 0) return;
    check_same(ckpt, ct_test_path("f16.h5"), to_f16);
    if (ct_test_failed()) return;
    cJSON *config = read_json(ct_test_path("bf16"), "config.json");
    CHECK_STR_EQ(cJSON_GetObjectItem(config, "torch_dtype")->valuestring, "bfloat16");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(config, "tie_word_embeddings")));
    CHECK_EQ_INT(cJSON_GetObjectItem(config, "num_key_value_heads")->valueint, 2);
    cJSON_Delete(config);
}

// A weight beyond float16's range would become infinity: the f16 export refuses it.
TEST(hf_roundtrip, f16_export_refuses_values_beyond_its_range) {
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 0);
    const char *ckpt = ct_test_path("big.h5");
    CHECK(hf_fixture_checkpoint(ckpt, &c, 9) == 0);
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(hf_fixture_load(ckpt, &m, &meta) == 0);
    m.w.layers[1].fc_out_w[3] = -1e6f;
    CHECK(ct_checkpoint_save(ckpt, &m, NULL, &meta) == 0);
    ct_model_free(&m);
    ct_checkpoint_meta_free(&meta);
    char *out = NULL;
    CHECK(run("%s export hf %s --out %s %s", ckpt, ct_test_path("f16"), "--dtype f16", &out) == 1);
    CHECK_CONTAINS(out, "tensor 'model.layers.1.mlp.down_proj.weight' has 1 values beyond float16's range");
    free(out);
    struct stat st;
    CHECK(stat(ct_test_path("f16"), &st) != 0);
    CHECK(!has_temporary());
    CHECK(run("%s export hf %s --out %s %s", ckpt, ct_test_path("bf16"), "--dtype bf16", &out) == 0);
    free(out);
}

TEST(hf_roundtrip, export_refuses_a_folder_with_files_and_leaves_nothing_on_error) {
    CtModelConfig c = hf_fixture_config(CT_ARCH_GPT2, 1);
    const char *ckpt = ct_test_path("m.h5"), *dir = ct_test_path("full");
    CHECK(hf_fixture_checkpoint(ckpt, &c, 4) == 0);
    mkdir(dir, 0755);
    char file[2048];
    snprintf(file, sizeof file, "%s/keep.txt", dir);
    FILE *fp = fopen(file, "w");
    fputs("x", fp);
    fclose(fp);
    char *out = NULL;
    CHECK(run("%s export hf %s --out %s %s", ckpt, dir, NULL, &out) == 1);
    CHECK_CONTAINS(out, "is not empty");
    free(out);
    CHECK(run("%s export hf %s --out %s %s", ckpt, ct_test_path("x"), "--dtype f8", &out) == 1);
    CHECK_CONTAINS(out, "choose f32, f16 or bf16");
    free(out);
    CHECK(run("%s export hf %s --out %s %s", ct_test_path("absent.h5"), ct_test_path("y"), NULL, &out) == 1);
    free(out);
    struct stat st;
    CHECK(stat(ct_test_path("x"), &st) != 0 && stat(ct_test_path("y"), &st) != 0);
    // an empty folder is fine
    const char *empty = ct_test_path("empty");
    mkdir(empty, 0755);
    CHECK(run("%s export hf %s --out %s %s", ckpt, empty, NULL, &out) == 0);
    free(out);
    snprintf(file, sizeof file, "%s/config.json", empty);
    CHECK(stat(file, &st) == 0);
    CHECK(run("%s export hf %s --out %s %s", ckpt, ct_test_path("z"), "--max-shard-size 5XB", &out) == 2);
    CHECK_CONTAINS(out, "is not a size");
    free(out);
}
