// ctrain import hf on folders that do not fit: each refusal names the file (or config key) and
// the problem, and leaves no checkpoint behind. Also the variants that must import: GPT-2
// files without the "transformer." prefix, with causal-mask buffers, in f16.
#include <cJSON.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/dtype_convert.h"
#include "checkpoints/safetensors.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"
#include "train/interop/hf_interop.h"

static const char *file_in(const char *dir, const char *name) {
    static char buf[4][2048];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

// A valid exported folder of the family, as a starting point to damage.
static const char *exported(CtArch arch, const char *name) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c = hf_fixture_config(arch, arch == CT_ARCH_GPT2);
    const char *ckpt = ct_test_path("src.h5"), *dir = ct_test_path(name);
    if (hf_fixture_checkpoint(ckpt, &c, 7) != 0) return NULL;
    CtHfExportOptions opt = {0};
    if (ct_hf_export(ckpt, dir, &opt) != 0) return NULL;
    return dir;
}

typedef enum { DROP, ADD_BIAS, RESHAPE, TO_I32, STRIP_PREFIX_ADD_MASK, TO_F16, ADD_HEAD, ADD_OTHER_HEAD, RENAME_HEAD } Damage;

// Rewrites dir/model.safetensors with `what` done to the tensor called `target`.
static int damage(const char *dir, Damage what, const char *target) {
    CtSafetensors f;
    if (ct_st_open(&f, file_in(dir, "model.safetensors")) != 0) return -1;
    CtNamedTensor *t = ct_calloc((size_t)f.n_tensors + 4, sizeof *t);
    void **owned = ct_calloc((size_t)f.n_tensors + 4, sizeof(void *));
    int n = 0;
    static float zeros[4096];
    for (int i = 0; i < f.n_tensors; i++) {
        const CtStTensor *s = &f.tensors[i];
        CtNamedTensor x = {.name = s->name, .ndim = s->ndim, .dtype = CT_DTYPE_F32, .data = (void *)s->data};
        for (int d = 0; d < s->ndim; d++) x.shape[d] = s->shape[d];
        int hit = strcmp(s->name, target) == 0;
        if (what == DROP && hit) continue;
        if (what == RESHAPE && hit) x.shape[0] -= 1, x.shape[1] += 0;
        if (what == TO_I32 && hit) x.dtype = CT_DTYPE_I32;
        if (what == STRIP_PREFIX_ADD_MASK && strncmp(s->name, "transformer.", 12) == 0) x.name = s->name + 12;
        if (what == RENAME_HEAD && hit) x.name = "lm_head.weight";
        if ((what == ADD_HEAD || what == ADD_OTHER_HEAD) && hit) {  // lm_head.weight: the target, or the target + 1e-3
            float *h = ct_alloc(s->numel * sizeof(float));
            for (uint64_t k = 0; k < s->numel; k++) h[k] = ((const float *)s->data)[k] + (what == ADD_OTHER_HEAD ? 1e-3f : 0);
            owned[f.n_tensors] = h;
            t[n++] = (CtNamedTensor){"lm_head.weight", 2, {s->shape[0], s->shape[1]}, CT_DTYPE_F32, h};
        }
        if (what == TO_F16) {
            uint16_t *h = ct_alloc(s->numel * 2);
            ct_f32_array_to_f16((const float *)s->data, h, s->numel);
            owned[i] = h;
            x.data = h;
            x.dtype = CT_DTYPE_F16;
        }
        t[n++] = x;
    }
    if (what == ADD_BIAS) t[n++] = (CtNamedTensor){"model.layers.0.self_attn.q_proj.bias", 1, {16}, CT_DTYPE_F32, zeros};
    if (what == STRIP_PREFIX_ADD_MASK) {
        t[n++] = (CtNamedTensor){"h.0.attn.bias", 4, {1, 1, 16, 16}, CT_DTYPE_F32, zeros};
        t[n++] = (CtNamedTensor){"h.1.attn.masked_bias", 0, {0}, CT_DTYPE_F32, zeros};
    }
    // into memory first: the mapping is still open while the file is replaced
    int rc = ct_st_write(file_in(dir, "model.safetensors"), t, n, f.meta, f.n_meta);
    for (int i = 0; i < f.n_tensors + 4; i++) ct_free(owned[i]);
    ct_free(owned);
    ct_free(t);
    ct_st_close(&f);
    return rc;
}

static const char *import_error(const char *dir, int skip_tokenizer) {
    CtHfImportOptions opt = {.skip_tokenizer = skip_tokenizer};
    const char *out = ct_test_path("out.h5");
    unlink(out);
    if (ct_hf_import(dir, out, &opt) == 0) return NULL;
    return exists(out) ? "a checkpoint was left behind" : ct_error_message();
}

#define CHECK_IMPORT_FAILS(dir, needle)                          \
    do {                                                         \
        const char *m_ = import_error(dir, 0);                   \
        CHECK_MSG(m_ != NULL, "%s imported", dir);               \
        CHECK_CONTAINS(m_, needle);                              \
        CHECK_MSG(!strchr(m_, '\n'), "not one line: %s", m_);    \
    } while (0)

TEST(hf_import, refuses_tensors_that_do_not_fit) {
    const char *dir = exported(CT_ARCH_LLAMA, "missing");
    CHECK_MSG(dir, "%s", ct_error_message());
    CHECK(damage(dir, DROP, "model.layers.1.mlp.up_proj.weight") == 0);
    CHECK_IMPORT_FAILS(dir, "tensor 'model.layers.1.mlp.up_proj.weight' is missing");

    dir = exported(CT_ARCH_LLAMA, "bias");
    CHECK(damage(dir, ADD_BIAS, "") == 0);
    CHECK_IMPORT_FAILS(dir, "q_proj.bias': a bias on this projection is not supported");

    dir = exported(CT_ARCH_LLAMA, "shape");
    CHECK(damage(dir, RESHAPE, "model.layers.0.self_attn.k_proj.weight") == 0);
    CHECK_IMPORT_FAILS(dir, "k_proj.weight' has shape [7, 16]; ");
    CHECK_IMPORT_FAILS(dir, "/config.json implies [8, 16]");

    dir = exported(CT_ARCH_LLAMA, "dtype");
    CHECK(damage(dir, TO_I32, "model.norm.weight") == 0);
    CHECK_IMPORT_FAILS(dir, "'model.norm.weight' has dtype I32");
    CHECK_IMPORT_FAILS(dir, "dtype/model.safetensors");
}

TEST(hf_import, gpt2_without_prefix_with_mask_buffers_in_f16) {
    const char *dir = exported(CT_ARCH_GPT2, "gpt2");
    CHECK_MSG(dir, "%s", ct_error_message());
    CHECK(damage(dir, STRIP_PREFIX_ADD_MASK, "") == 0);
    CHECK(damage(dir, TO_F16, "") == 0);
    CtHfImportOptions opt = {0};
    const char *out = ct_test_path("gpt2.h5");
    CHECK_MSG(ct_hf_import(dir, out, &opt) == 0, "%s", ct_error_message());
    CtModel a, b;
    CtCheckpointMeta ma, mb;
    CHECK(hf_fixture_load(ct_test_path("src.h5"), &a, &ma) == 0);
    CHECK(hf_fixture_load(out, &b, &mb) == 0);
    for (size_t k = 0; k < a.n_params; k++) {
        float want = ct_f16_to_f32(ct_f32_to_f16(a.params[k]));
        CHECK_MSG(memcmp(&want, &b.params[k], 4) == 0, "param %zu", k);
    }
    ct_model_free(&a);
    ct_model_free(&b);
    ct_checkpoint_meta_free(&ma);
    ct_checkpoint_meta_free(&mb);
}

TEST(hf_import, refuses_bad_folders) {
    const char *dir = exported(CT_ARCH_LLAMA, "notok");
    CHECK_MSG(dir, "%s", ct_error_message());
    unlink(file_in(dir, "tokenizer.json"));
    CHECK_IMPORT_FAILS(dir, "--skip-tokenizer");
    CHECK_MSG(import_error(dir, 1) == NULL, "%s", ct_error_message());

    dir = exported(CT_ARCH_LLAMA, "noweights");
    rename(file_in(dir, "model.safetensors"), file_in(dir, "pytorch_model.bin"));
    CHECK_IMPORT_FAILS(dir, "pytorch_model.bin is a pickle");

    dir = exported(CT_ARCH_LLAMA, "badindex");
    FILE *fp = fopen(file_in(dir, "model.safetensors.index.json"), "w");
    fputs("{\"weight_map\": {\"model.norm.weight\": \"model.safetensors\", \"x\": \"model.safetensors\"}}", fp);
    fclose(fp);
    CHECK_IMPORT_FAILS(dir, "tensor 'x' is listed in model.safetensors but that file does not hold it");
    fp = fopen(file_in(dir, "model.safetensors.index.json"), "w");
    fputs("{\"weight_map\": {\"model.norm.weight\": \"../model.safetensors\"}}", fp);
    fclose(fp);
    CHECK_IMPORT_FAILS(dir, "is not a file name in the folder");
    fp = fopen(file_in(dir, "model.safetensors.index.json"), "w");
    fputs("{\"weight_map\": {\"model.norm.weight\": \"model-00002-of-00002.safetensors\"}}", fp);
    fclose(fp);
    CHECK_IMPORT_FAILS(dir, "model-00002-of-00002.safetensors: cannot open");

    CHECK_IMPORT_FAILS(ct_test_path("nowhere"), "nowhere/config.json");
}

static const char *config_error(const char *json) {
    CtModelConfig c;
    return ct_hf_config_parse(json, "x/config.json", &c) == 0 ? NULL : ct_error_message();
}

#define LLAMA_BASE "\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 128, " \
                   "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 300"

TEST(hf_import, config_refusals_name_the_key) {
    CtModelConfig c;
    CHECK_MSG(ct_hf_config_parse("{" LLAMA_BASE ", \"num_key_value_heads\": 2, \"rope_theta\": 500000}", "x", &c) == 0,
              "%s", ct_error_message());
    CHECK(c.arch == CT_ARCH_LLAMA && c.n_kv_head == 2 && c.rope_theta == 500000.0f && !c.tie_embeddings);
    CHECK(c.norm_eps == 1e-6f && c.max_seq_len == 2048);
    CHECK_MSG(ct_hf_config_parse("{\"model_type\": \"mistral\", \"hidden_size\": 64, \"intermediate_size\": 128, "
                                 "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, "
                                 "\"vocab_size\": 300, \"sliding_window\": null}", "x", &c) == 0, "%s", ct_error_message());
    CHECK(c.family == CT_FAMILY_MISTRAL && c.sliding_window == 0);
    CHECK(ct_hf_config_parse("{\"model_type\": \"gpt2\", \"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, "
                             "\"vocab_size\": 50}", "x", &c) == 0);
    CHECK(c.arch == CT_ARCH_GPT2 && c.d_ff == 32 && c.tie_embeddings && c.max_seq_len == 1024);

    const char *m;
    CHECK((m = config_error("{" LLAMA_BASE ", \"attention_bias\": true}")));
    CHECK_CONTAINS(m, "attention_bias = true is not supported");
    CHECK((m = config_error("{" LLAMA_BASE ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8}}")));
    CHECK_CONTAINS(m, "x/config.json: rope_scaling: rope_type llama3 needs low_freq_factor and high_freq_factor");
    CHECK((m = config_error("{" LLAMA_BASE ", \"head_dim\": 15}")));
    CHECK_CONTAINS(m, "RoPE needs an even head size; head_dim is 15");
    CHECK((m = config_error("{" LLAMA_BASE ", \"hidden_act\": \"gelu\"}")));
    CHECK_CONTAINS(m, "hidden_act 'gelu'");
    CHECK((m = config_error("{\"model_type\": \"qwen2\", \"hidden_size\": 64, \"intermediate_size\": 128, "
                            "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 300}")));
    CHECK_CONTAINS(m, "num_attention_heads (4) is not a multiple of num_key_value_heads (32)");  // Qwen2Config's default
    CHECK((m = config_error("{\"model_type\": \"t5\"}")));
    CHECK_CONTAINS(m, "model_type 't5'");
    CHECK((m = config_error("{\"model_type\": \"llama\", \"hidden_size\": 64}")));
    CHECK_CONTAINS(m, "config key 'num_hidden_layers' is missing");
    CHECK((m = config_error("{\"model_type\": \"gpt2\", \"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, "
                            "\"vocab_size\": 50, \"activation_function\": \"relu\"}")));
    CHECK_CONTAINS(m, "activation_function 'relu'");
    CHECK((m = config_error("{" LLAMA_BASE ", \"num_key_value_heads\": 3}")));
    CHECK_CONTAINS(m, "num_attention_heads (4) is not a multiple of num_key_value_heads (3)");
    CHECK((m = config_error("not json")));
    CHECK_CONTAINS(m, "not a JSON object");
}

TEST(hf_import, cli_errors_are_one_line_and_usage_errors_exit_2) {
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s import hf %s --out %s", ct_test_bin(), ct_test_path("nowhere"), ct_test_path("x.h5"));
    CHECK_EQ_INT(ct_test_run(cmd, &out), 1);
    CHECK_CONTAINS(out, "ctrain: ");
    CHECK_CONTAINS(out, "nowhere/config.json");
    CHECK_MSG(strchr(out, '\n') == out + strlen(out) - 1, "not one line: %s", out);
    free(out);
    CHECK(!exists(ct_test_path("x.h5")));
    snprintf(cmd, sizeof cmd, "%s import hf %s", ct_test_bin(), ct_test_path("nowhere"));
    CHECK_EQ_INT(ct_test_run(cmd, &out), 2);
    CHECK_CONTAINS(out, "--out CKPT is required");
    free(out);
    snprintf(cmd, sizeof cmd, "%s export gguf %s", ct_test_bin(), ct_test_path("m.h5"));
    CHECK_EQ_INT(ct_test_run(cmd, &out), 2);
    CHECK_CONTAINS(out, "--out FILE is required");
    free(out);
}

// Rewrites dir/config.json with the keys of `edits` (a JSON object) set; a key whose value is
// the string "DELETE" is removed.
static int edit_config(const char *dir, const char *edits) {
    char *text = ct_test_read(file_in(dir, "config.json"), NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL, *e = cJSON_Parse(edits);
    free(text);
    if (!root || !e) return -1;
    for (cJSON *k = e->child; k; k = k->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, k->string);
        if (!(cJSON_IsString(k) && strcmp(k->valuestring, "DELETE") == 0))
            cJSON_AddItemToObject(root, k->string, cJSON_Duplicate(k, 1));
    }
    char *out = cJSON_Print(root);
    FILE *fp = fopen(file_in(dir, "config.json"), "w");
    int rc = fp && fputs(out, fp) >= 0 ? 0 : -1;
    if (fp) fclose(fp);
    free(out);
    cJSON_Delete(root);
    cJSON_Delete(e);
    return rc;
}

// The model config of dir imported (and read back from the checkpoint); arch -1 on error.
static CtModelConfig imported_config(const char *dir) {
    CtHfImportOptions opt = {0};
    const char *out = ct_test_path("rope.h5");
    CtModelConfig c = {.arch = (CtArch)-1};
    unlink(out);
    if (ct_hf_import(dir, out, &opt) != 0) return c;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_read_meta(out, &c, &meta) != 0) c.arch = (CtArch)-1;
    ct_checkpoint_meta_free(&meta);
    return c;
}

static float imported_rope_theta(const char *dir) {
    CtModelConfig c = imported_config(dir);
    return (int)c.arch < 0 ? -1 : c.rope_theta;
}

// transformers 5 writes RoPE as {"rope_parameters": {"rope_theta": ..., "rope_type": ...}} and no
// top-level rope_theta; transformers 4 wrote rope_theta and rope_scaling. Both are read (as
// transformers' RotaryEmbeddingConfigMixin reads them), with the parameters of the scaled types
// (llama3, linear, dynamic, yarn) and transformers' defaults for those left out; the checkpoint
// keeps them. Every RoPE ctrain does not compute is refused, never imported with the default
// frequencies.
TEST(hf_import, rope_parameters_and_rope_scaling_read_in_both_shapes) {
    char dir[1024];  // ct_test_path's buffer is reused
    const char *made = exported(CT_ARCH_LLAMA, "rope");
    CHECK_MSG(made, "%s", ct_error_message());
    snprintf(dir, sizeof dir, "%s", made);
    CHECK(edit_config(dir, "{\"rope_theta\": \"DELETE\", \"rope_scaling\": \"DELETE\", "
                           "\"rope_parameters\": {\"rope_theta\": 500000.0, \"rope_type\": \"default\"}}") == 0);
    float theta = imported_rope_theta(dir);
    CHECK_MSG(theta == 500000.0f, "transformers 5's rope_parameters read as rope_theta %g (%s)", theta,
              ct_error_message());
    CHECK(edit_config(dir, "{\"rope_parameters\": {\"rope_theta\": 100000}, \"rope_theta\": 5}") == 0);
    CHECK_MSG(imported_rope_theta(dir) == 100000.0f, "the block's rope_theta wins over the top-level one");
    CHECK(edit_config(dir, "{\"rope_parameters\": {\"rope_type\": \"default\"}, \"rope_theta\": 250000}") == 0);
    CHECK_MSG(imported_rope_theta(dir) == 250000.0f, "a block without rope_theta takes the top-level one");
    CHECK(edit_config(dir, "{\"rope_parameters\": \"DELETE\", \"rope_theta\": 1000000, \"rope_scaling\": null}") == 0);
    CHECK_MSG(imported_rope_theta(dir) == 1000000.0f, "transformers 4's top-level rope_theta");
    CHECK(edit_config(dir, "{\"rope_theta\": \"DELETE\"}") == 0);
    CHECK_MSG(imported_rope_theta(dir) == 10000.0f, "no RoPE key: transformers' default 10000");

    // Llama 3.1 in both shapes
    CHECK(edit_config(dir, "{\"rope_parameters\": {\"rope_type\": \"llama3\", \"rope_theta\": 500000.0, \"factor\": "
                           "8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                           "\"original_max_position_embeddings\": 8192}}") == 0);
    CtModelConfig c = imported_config(dir);
    CHECK_MSG((int)c.arch >= 0, "%s", ct_error_message());
    CHECK(c.rope_theta == 500000.0f && c.rope_scaling.type == CT_ROPE_LLAMA3 && c.rope_scaling.factor == 8.0f);
    CHECK(c.rope_scaling.low_freq_factor == 1.0f && c.rope_scaling.high_freq_factor == 4.0f);
    CHECK_EQ_INT(c.rope_scaling.original_max_position, 8192);
    CHECK(edit_config(dir, "{\"rope_parameters\": \"DELETE\", \"rope_theta\": 500000.0, \"rope_scaling\": {\"factor\": "
                           "8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                           "\"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}}") == 0);
    CtModelConfig c4 = imported_config(dir);
    CHECK_MSG(memcmp(&c4.rope_scaling, &c.rope_scaling, sizeof c.rope_scaling) == 0 && c4.rope_theta == c.rope_theta,
              "transformers 4's shape reads as 5's");

    CHECK(edit_config(dir, "{\"rope_scaling\": \"DELETE\", \"rope_parameters\": {\"rope_type\": \"linear\", \"factor\": 2.0}}") == 0);
    c = imported_config(dir);
    CHECK(c.rope_scaling.type == CT_ROPE_LINEAR && c.rope_scaling.factor == 2.0f && c.rope_theta == 500000.0f);
    CHECK(edit_config(dir, "{\"rope_parameters\": \"DELETE\", \"rope_scaling\": {\"type\": \"dynamic\", \"factor\": "
                           "2.0}}") == 0);
    c = imported_config(dir);
    CHECK(c.rope_scaling.type == CT_ROPE_DYNAMIC && c.rope_scaling.factor == 2.0f);
    CHECK_EQ_INT(c.rope_scaling.original_max_position, c.max_seq_len);  // dynamic NTK reads max_position_embeddings
    // rope_scaling wins over rope_parameters, as in transformers; yarn's defaults
    CHECK(edit_config(dir, "{\"rope_parameters\": {\"rope_type\": \"default\"}, \"rope_scaling\": {\"rope_type\": "
                           "\"yarn\", \"factor\": 4.0}}") == 0);
    c = imported_config(dir);
    CHECK(c.rope_scaling.type == CT_ROPE_YARN && c.rope_scaling.factor == 4.0f && c.rope_scaling.truncate == 1);
    CHECK(c.rope_scaling.beta_fast == 32.0f && c.rope_scaling.beta_slow == 1.0f && c.rope_scaling.attention_factor == 0);
    CHECK_EQ_INT(c.rope_scaling.original_max_position, c.max_seq_len);
    CHECK(edit_config(dir, "{\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": null, \"beta_fast\": 16, "
                           "\"mscale\": 1.0, \"mscale_all_dim\": 0.5, \"truncate\": false, "
                           "\"original_max_position_embeddings\": 16}}") == 0);
    c = imported_config(dir);
    CHECK_MSG(c.rope_scaling.factor == (float)c.max_seq_len / 16.0f, "yarn's factor null: max_position / original");
    CHECK(c.rope_scaling.beta_fast == 16.0f && c.rope_scaling.mscale == 1.0f && c.rope_scaling.mscale_all_dim == 0.5f);
    CHECK(c.rope_scaling.truncate == 0);

    CHECK(edit_config(dir, "{\"rope_scaling\": {\"rope_type\": \"longrope\", \"short_factor\": [1], \"long_factor\": [1]}}") == 0);
    CHECK_IMPORT_FAILS(dir, "config.json: rope_scaling.rope_type 'longrope' is not supported");
    CHECK(edit_config(dir, "{\"rope_scaling\": {\"rope_type\": \"linear\"}}") == 0);
    CHECK_IMPORT_FAILS(dir, "rope_scaling.factor is missing");
    CHECK(edit_config(dir, "{\"rope_scaling\": \"DELETE\", \"rope_parameters\": {\"rope_type\": \"default\", "
                           "\"factor\": 4.0}}") == 0);
    CHECK_IMPORT_FAILS(dir, "rope_parameters.factor is not supported with rope_type 'default'");
    CHECK(edit_config(dir, "{\"rope_parameters\": {\"rope_type\": \"linear\", \"factor\": 2, \"low_freq_factor\": 1}}") == 0);
    CHECK_IMPORT_FAILS(dir, "rope_parameters.low_freq_factor is not supported with rope_type 'linear'");
    CHECK(edit_config(dir, "{\"rope_parameters\": {\"rope_theta\": 10000, \"partial_rotary_factor\": 0.5}}") == 0);
    CHECK_IMPORT_FAILS(dir, "rope_parameters.partial_rotary_factor is not supported");
    CHECK(edit_config(dir, "{\"rope_parameters\": {\"rope_theta\": -3}}") == 0);
    CHECK_IMPORT_FAILS(dir, "rope_parameters.rope_theta must be a number above 1");
    CHECK(edit_config(dir, "{\"rope_parameters\": {\"full_attention\": {\"rope_type\": \"default\"}}}") == 0);
    CHECK_IMPORT_FAILS(dir, "rope_parameters has a block per layer type, which only gemma3_text reads");
}

// tie_word_embeddings: true with lm_head.weight saved too. transformers 5.23 (checked with
// tests/ref/hf_journey_ref.py) uses the saved head when it differs from the embedding, ties them
// when equal, and ties the embedding to a head saved alone.
TEST(hf_import, tied_config_with_a_saved_head_gives_what_transformers_gives) {
    static const Damage cases[] = {ADD_OTHER_HEAD, ADD_HEAD, RENAME_HEAD};
    static const char *const names[] = {"other-head", "equal-head", "head-only"};
    for (int k = 0; k < 3; k++) {
        char dir[1024];
        const char *made = exported(CT_ARCH_GPT2, names[k]);
        CHECK_MSG(made, "%s", ct_error_message());
        snprintf(dir, sizeof dir, "%s", made);
        CHECK(damage(dir, cases[k], "transformer.wte.weight") == 0);
        CtHfImportOptions opt = {0};
        const char *out = ct_test_path("tied.h5");
        CHECK_MSG(ct_hf_import(dir, out, &opt) == 0, "%s: %s", names[k], ct_error_message());
        CtModel a, b;
        CtCheckpointMeta ma, mb;
        CHECK(hf_fixture_load(ct_test_path("src.h5"), &a, &ma) == 0);
        CHECK(hf_fixture_load(out, &b, &mb) == 0);
        CHECK_EQ_INT(b.config.tie_embeddings, cases[k] != ADD_OTHER_HEAD);
        const CtParamEntry *wte = &a.table[0];
        CHECK_STR_EQ(wte->name, "transformer.wte.weight");
        CHECK(memcmp(a.params + wte->offset, b.params + wte->offset, wte->numel * sizeof(float)) == 0);
        if (cases[k] == ADD_OTHER_HEAD) {
            const CtParamEntry *head = &b.table[b.n_tensors - 1];
            CHECK_STR_EQ(head->name, "lm_head.weight");
            CHECK(b.params[head->offset + 5] == a.params[wte->offset + 5] + 1e-3f);
        }
        ct_model_free(&a);
        ct_model_free(&b);
        ct_checkpoint_meta_free(&ma);
        ct_checkpoint_meta_free(&mb);
    }
}

// Errors about a Hugging Face config name its keys, and a config without model_type is read by
// the class its architectures name.
TEST(hf_import, config_without_model_type_and_errors_in_hf_keys) {
    CtModelConfig c;
    CHECK_MSG(ct_hf_config_parse("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, "
                                 "\"intermediate_size\": 128, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
                                 "\"vocab_size\": 300}", "x", &c) == 0, "%s", ct_error_message());
    CHECK(c.arch == CT_ARCH_LLAMA);
    CHECK(ct_hf_config_parse("{\"architectures\": [\"GPT2LMHeadModel\"], \"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, "
                             "\"vocab_size\": 50}", "x", &c) == 0);
    CHECK(c.arch == CT_ARCH_GPT2);
    // GPT2Config's attribute_map: hidden_size and friends stand for n_embd and friends
    CHECK(ct_hf_config_parse("{\"model_type\": \"gpt2\", \"num_hidden_layers\": 3, \"num_attention_heads\": 2, "
                             "\"hidden_size\": 8, \"max_position_embeddings\": 32, \"vocab_size\": 50}", "x", &c) == 0);
    CHECK(c.n_layer == 3 && c.d_model == 8 && c.max_seq_len == 32);

    const char *m;
    CHECK((m = config_error("{\"architectures\": [\"T5ForConditionalGeneration\"]}")));
    CHECK_CONTAINS(m, "x/config.json: no model_type, and architectures names T5ForConditionalGeneration");
    CHECK_MSG(!strstr(m, "missing"), "%s", m);
    CHECK((m = config_error("{\"architectures\": [\"LlamaForCausalLM\", \"GPT2LMHeadModel\"]}")));
    CHECK_CONTAINS(m, "two families (llama and gpt2): add model_type");
    CHECK((m = config_error("{\"hidden_size\": 64}")));
    CHECK_CONTAINS(m, "neither model_type nor architectures");
    CHECK((m = config_error("{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 128, "
                            "\"num_hidden_layers\": 2, \"num_attention_heads\": 5, \"vocab_size\": 300}")));
    CHECK_CONTAINS(m, "hidden_size (64) is not a multiple of num_attention_heads (5)");
    CHECK((m = config_error("{\"model_type\": \"gpt2\", \"n_layer\": 2, \"n_head\": 3, \"n_embd\": 8, "
                            "\"vocab_size\": 50}")));
    CHECK_CONTAINS(m, "n_embd (8) is not a multiple of n_head (3)");
    CHECK((m = config_error("{" LLAMA_BASE ", \"quantization_config\": {\"quant_method\": \"bitsandbytes\"}}")));
    CHECK_CONTAINS(m, "quantization_config is not supported");
    CHECK((m = config_error("{" LLAMA_BASE ", \"pruned_heads\": {\"0\": [1]}}")));
    CHECK_CONTAINS(m, "pruned_heads is not supported");
    for (const char *p = m; p && *p; p++) CHECK_MSG(strncmp(p, "model.", 6) != 0, "ctrain's key in: %s", m);
    // Mistral's window applies whatever use_sliding_window says (MistralForCausalLM does not read it)
    CHECK(ct_hf_config_parse("{\"model_type\": \"mistral\", \"hidden_size\": 64, \"intermediate_size\": 128, "
                             "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 4, "
                             "\"vocab_size\": 300, \"sliding_window\": 512, \"use_sliding_window\": false}", "x", &c) == 0);
    CHECK(c.sliding_window == 512 && c.sliding_window_pattern == 0);

    // keys no list knows are named in one warning (SmolLM's nanotron keys, here)
    char dir[1024], cmd[4096], *out = NULL;
    snprintf(dir, sizeof dir, "%s", ct_test_path("unknown-keys"));
    mkdir(dir, 0755);
    FILE *fp = fopen(file_in(dir, "config.json"), "w");
    fputs("{" LLAMA_BASE ", \"rope_interleaved\": false, \"is_llama_config\": true}", fp);
    fclose(fp);
    snprintf(cmd, sizeof cmd, "%s import hf %s --out %s/x.h5", ct_test_bin(), dir, dir);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 1);
    CHECK_CONTAINS(out, "config.json: 2 config keys that ctrain does not know (rope_interleaved, is_llama_config)");
    free(out);
}
