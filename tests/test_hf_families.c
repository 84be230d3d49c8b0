// The llama-architecture families of Hugging Face (Llama 3.x, Mistral, Qwen2, Qwen3, Gemma 2,
// Gemma 3 text, Phi-3; the MoE families Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE): config.json as
// transformers 5.23 saves it (the keys below are what save_pretrained wrote for these small
// configs) is read into the model shape, what ctrain
// cannot compute is refused naming the key, the config.json ctrain writes reads back as the same
// shape, and the weights of Phi-3 (fused) and Gemma (1 + w norms) map onto the table and back.
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "checkpoints/safetensors.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"
#include "train/interop/hf_interop.h"
#include "train/interop/hf_generation.h"
#include "train/interop/lora_peft.h"
#include "train/interop/stop_tokens.h"
#include "train/model/lora.h"

// JSON written with ' for " (readable in C); returned in a static buffer.
static const char *json(const char *single_quoted) {
    static char buf[8][4096];
    static int k;
    char *out = buf[k++ % 8];
    snprintf(out, sizeof buf[0], "%s", single_quoted);
    for (char *p = out; *p; p++)
        if (*p == '\'') *p = '"';
    return out;
}

#define SIZES "'vocab_size': 300, 'hidden_size': 64, 'intermediate_size': 96, 'num_hidden_layers': 4, " \
              "'num_attention_heads': 4, 'num_key_value_heads': 2, 'max_position_embeddings': 64, "      \
              "'rms_norm_eps': 1e-06, 'attention_dropout': 0.0, 'initializer_range': 0.02, 'use_cache': true, " \
              "'transformers_version': '5.23.0'"
#define FULL4 "['full_attention', 'full_attention', 'full_attention', 'full_attention']"
#define ALT4 "['sliding_attention', 'full_attention', 'sliding_attention', 'full_attention']"

static const char *const QWEN2 =
    "{'model_type': 'qwen2', " SIZES ", 'hidden_act': 'silu', 'layer_types': " FULL4 ", 'max_window_layers': 28, "
    "'rope_parameters': {'rope_theta': 1000000.0, 'rope_type': 'default'}, 'sliding_window': null, "
    "'tie_word_embeddings': true, 'use_sliding_window': false, 'bos_token_id': null, 'eos_token_id': null, "
    "'pad_token_id': null}";
static const char *const QWEN3 =
    "{'model_type': 'qwen3', " SIZES ", 'attention_bias': false, 'head_dim': 24, 'hidden_act': 'silu', 'layer_types': "
    FULL4 ", 'max_window_layers': 28, 'rope_parameters': {'rope_theta': 10000.0, 'rope_type': 'default'}, "
    "'sliding_window': null, 'tie_word_embeddings': false, 'use_sliding_window': false}";
static const char *const GEMMA2 =
    "{'model_type': 'gemma2', " SIZES ", 'attention_bias': false, 'attn_logit_softcapping': 50.0, 'bos_token_id': 2, "
    "'eos_token_id': 1, 'final_logit_softcapping': 30.0, 'head_dim': 24, 'hidden_activation': 'gelu_pytorch_tanh', "
    "'layer_types': " ALT4 ", 'pad_token_id': 0, 'query_pre_attn_scalar': 20, 'rope_parameters': {'rope_theta': "
    "10000.0, 'rope_type': 'default'}, 'sliding_window': 8, 'tie_word_embeddings': true, "
    "'use_bidirectional_attention': null}";
static const char *const GEMMA3 =
    "{'model_type': 'gemma3_text', " SIZES ", '_sliding_window_pattern': 2, 'attention_bias': false, "
    "'attn_logit_softcapping': null, 'final_logit_softcapping': null, 'head_dim': 24, 'hidden_activation': "
    "'gelu_pytorch_tanh', 'layer_types': " ALT4 ", 'query_pre_attn_scalar': 256, 'rope_parameters': "
    "{'full_attention': {'rope_theta': 1000000.0, 'rope_type': 'linear', 'factor': 8.0}, 'sliding_attention': "
    "{'rope_theta': 10000.0, 'rope_type': 'default'}}, 'sliding_window': 8, 'sliding_window_pattern': 2, "
    "'tie_word_embeddings': true, 'use_bidirectional_attention': false}";
static const char *const PHI3 =
    "{'model_type': 'phi3', " SIZES ", 'embd_pdrop': 0.0, 'hidden_act': 'silu', 'original_max_position_embeddings': "
    "4096, 'resid_pdrop': 0.0, 'rope_parameters': {'partial_rotary_factor': 1.0, 'rope_theta': 10000.0, "
    "'rope_type': 'default'}, 'sliding_window': null, 'tie_word_embeddings': false, 'bos_token_id': 1, "
    "'eos_token_id': 32000, 'pad_token_id': 32000}";
static const char *const MISTRAL =
    "{'model_type': 'mistral', " SIZES ", 'head_dim': 16, 'hidden_act': 'silu', 'rope_parameters': {'rope_theta': "
    "10000.0, 'rope_type': 'default'}, 'sliding_window': 8, 'tie_word_embeddings': false}";
static const char *const LLAMA3 =
    "{'model_type': 'llama', " SIZES ", 'attention_bias': false, 'head_dim': 16, 'hidden_act': 'silu', 'mlp_bias': "
    "false, 'pretraining_tp': 1, 'rope_parameters': {'factor': 8.0, 'high_freq_factor': 4.0, 'low_freq_factor': 1.0, "
    "'original_max_position_embeddings': 16, 'rope_theta': 500000.0, 'rope_type': 'llama3'}, "
    "'tie_word_embeddings': true}";

static int parse(const char *text, CtModelConfig *c) { return ct_hf_config_parse(json(text), "m/config.json", c); }

// The config with `edits` (a JSON object, ' for ") applied to its keys: a key set to the string
// "DELETE" is removed.
static const char *edited(const char *base, const char *edits) {
    cJSON *root = cJSON_Parse(json(base)), *e = cJSON_Parse(json(edits));
    for (cJSON *k = e ? e->child : NULL; root && k; k = k->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, k->string);
        if (!(cJSON_IsString(k) && strcmp(k->valuestring, "DELETE") == 0))
            cJSON_AddItemToObject(root, k->string, cJSON_Duplicate(k, 1));
    }
    static char buf[4][4096];
    static int n;
    char *out = buf[n++ % 4], *printed = root ? cJSON_PrintUnformatted(root) : NULL;
    snprintf(out, sizeof buf[0], "%s", printed ? printed : "broken edit");
    free(printed);
    cJSON_Delete(root);
    cJSON_Delete(e);
    return out;
}

static const char *refusal(const char *text) {
    CtModelConfig c;
    if (parse(text, &c) == 0) return "(imported)";
    return ct_error_message();
}

#define CHECK_REFUSED(text, needle)                                   \
    do {                                                              \
        const char *m_ = refusal(text);                               \
        CHECK_CONTAINS(m_, "m/config.json: ");                        \
        CHECK_CONTAINS(m_, needle);                                   \
        CHECK_MSG(!strchr(m_, '\n'), "not one line: %s", m_);         \
    } while (0)

TEST(hf_families, configs_saved_by_transformers_read_into_the_model_shape) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c;
    CHECK_MSG(parse(QWEN2, &c) == 0, "%s", ct_error_message());
    CHECK(c.arch == CT_ARCH_LLAMA && c.family == CT_FAMILY_QWEN2 && c.qkv_bias && !c.qk_norm && c.n_kv_head == 2);
    CHECK(c.rope_theta == 1e6f && c.sliding_window == 0 && c.tie_embeddings && c.head_dim == 0);

    CHECK_MSG(parse(QWEN3, &c) == 0, "%s", ct_error_message());
    CHECK(c.family == CT_FAMILY_QWEN3 && c.qk_norm && !c.qkv_bias && c.head_dim == 24 && ct_model_attn_width(&c) == 96);

    CHECK_MSG(parse(GEMMA2, &c) == 0, "%s", ct_error_message());
    CHECK(c.family == CT_FAMILY_GEMMA2 && c.gate_act == CT_GATE_GELU_TANH && c.post_norms && c.embed_scale);
    CHECK(c.query_scale == (float)pow(20, -0.5) && c.attn_softcap == 50.0f && c.final_softcap == 30.0f);
    CHECK(c.sliding_window == 8 && c.sliding_window_pattern == 2 && c.tie_embeddings && !c.qk_norm && c.head_dim == 24);
    CHECK(ct_model_layer_slides(&c, 0) && !ct_model_layer_slides(&c, 1) && ct_model_layer_slides(&c, 2));

    CHECK_MSG(parse(GEMMA3, &c) == 0, "%s", ct_error_message());
    CHECK(c.family == CT_FAMILY_GEMMA3 && c.qk_norm && c.post_norms && c.embed_scale && c.query_scale == 0.0625f);
    CHECK(c.rope_theta == 1e6f && c.rope_local_theta == 1e4f && c.rope_scaling.type == CT_ROPE_LINEAR);
    CHECK(c.rope_scaling.factor == 8.0f && c.attn_softcap == 0 && c.final_softcap == 0);
    CHECK(c.sliding_window == 8 && c.sliding_window_pattern == 2);
    // transformers 4's shape of Gemma 3: rope_theta, rope_local_base_freq, rope_scaling for the global layers
    CHECK_MSG(parse(edited(GEMMA3, "{'rope_parameters': 'DELETE', 'rope_theta': 1000000.0, 'rope_local_base_freq': "
                                   "10000.0, 'rope_scaling': {'rope_type': 'linear', 'factor': 8.0}, 'layer_types': "
                                   "'DELETE'}"), &c) == 0, "%s", ct_error_message());
    CHECK(c.rope_theta == 1e6f && c.rope_local_theta == 1e4f && c.rope_scaling.type == CT_ROPE_LINEAR);
    CHECK(c.sliding_window_pattern == 2);
    CHECK_MSG(parse(edited(GEMMA3, "{'rope_parameters': 'DELETE', 'layer_types': 'DELETE', 'sliding_window_pattern': "
                                   "'DELETE'}"), &c) == 0, "%s", ct_error_message());
    CHECK_MSG(c.rope_theta == 1e6f && c.rope_local_theta == 1e4f && c.sliding_window_pattern == 0,
              "Gemma3TextConfig's defaults: bases 1e6 and 1e4, pattern 6 (4 layers: all sliding)");

    CHECK_MSG(parse(PHI3, &c) == 0, "%s", ct_error_message());
    CHECK(c.family == CT_FAMILY_PHI3 && c.norm_eps == 1e-6f && c.sliding_window == 0);
    CHECK_MSG(parse(edited(PHI3, "{'sliding_window': 16, 'rms_norm_eps': 'DELETE'}"), &c) == 0, "%s", ct_error_message());
    CHECK(c.sliding_window == 16 && c.sliding_window_pattern == 0 && c.norm_eps == 1e-5f);

    CHECK_MSG(parse(MISTRAL, &c) == 0, "%s", ct_error_message());
    CHECK(c.family == CT_FAMILY_MISTRAL && c.sliding_window == 8 && c.sliding_window_pattern == 0);
    CHECK_MSG(parse(edited(MISTRAL, "{'sliding_window': 'DELETE'}"), &c) == 0 && c.sliding_window == 4096,
              "MistralConfig's default window is 4096");

    CHECK_MSG(parse(LLAMA3, &c) == 0, "%s", ct_error_message());
    CHECK(c.family == CT_FAMILY_LLAMA && c.rope_scaling.type == CT_ROPE_LLAMA3 && c.rope_theta == 500000.0f);
    CHECK(c.rope_scaling.original_max_position == 16 && c.rope_scaling.high_freq_factor == 4.0f);

    // Qwen's window: use_sliding_window with the layers from max_window_layers on, or layer_types
    CHECK_MSG(parse(edited(QWEN2, "{'use_sliding_window': true, 'sliding_window': 8, 'max_window_layers': 0, "
                                  "'layer_types': 'DELETE'}"), &c) == 0, "%s", ct_error_message());
    CHECK(c.sliding_window == 8 && c.sliding_window_pattern == 0);
    CHECK_MSG(parse(edited(QWEN2, "{'sliding_window': 8, 'layer_types': " ALT4 "}"), &c) == 0 && c.sliding_window == 0,
              "without use_sliding_window Qwen2Config drops the window");
    // architectures alone name the family
    CHECK_MSG(parse(edited(GEMMA2, "{'model_type': 'DELETE', 'architectures': ['Gemma2ForCausalLM']}"), &c) == 0 &&
                  c.family == CT_FAMILY_GEMMA2, "%s", ct_error_message());
}

TEST(hf_families, what_ctrain_cannot_compute_is_refused_naming_the_key) {
    CHECK_REFUSED(edited(QWEN2, "{'use_sliding_window': true, 'sliding_window': 8, 'max_window_layers': 2, "
                                "'layer_types': 'DELETE'}"),
                  "max_window_layers: layer 2 attends through the window, which ctrain cannot express");
    CHECK_REFUSED(edited(GEMMA3, "{'layer_types': ['full_attention', 'sliding_attention', 'sliding_attention', "
                                 "'full_attention']}"), "layer_types: layer 1 attends through the window");
    CHECK_REFUSED(edited(GEMMA3, "{'layer_types': ['full_attention', 'chunked_attention', 'sliding_attention', "
                                 "'full_attention']}"), "layer_types[1] is not supported");
    CHECK_REFUSED(edited(GEMMA3, "{'layer_types': " FULL4 ", 'num_hidden_layers': 3}"),
                  "layer_types must list num_hidden_layers (3) layer types");
    CHECK_REFUSED(edited(GEMMA3, "{'use_bidirectional_attention': true}"), "use_bidirectional_attention = true");
    CHECK_REFUSED(edited(GEMMA3, "{'rope_parameters': {'full_attention': {'rope_type': 'default'}, "
                                 "'sliding_attention': {'rope_type': 'linear', 'factor': 2.0}}}"),
                  "rope_parameters.sliding_attention: a scaled RoPE on the sliding layers is not supported");
    CHECK_REFUSED(edited(GEMMA3, "{'rope_parameters': {'rope_type': 'default', 'rope_theta': 10000.0}}"),
                  "rope_parameters of gemma3_text must hold a full_attention and a sliding_attention block");
    CHECK_REFUSED(edited(GEMMA3, "{'rope_parameters': {'full_attention': {'rope_type': 'longrope'}}}"),
                  "rope_parameters.full_attention.rope_type 'longrope' is not supported");
    CHECK_REFUSED(edited(GEMMA2, "{'hidden_activation': 'gelu'}"), "hidden_activation 'gelu' is not supported");
    CHECK_REFUSED(edited(GEMMA2, "{'attention_bias': true}"), "attention_bias = true is not supported");
    CHECK_REFUSED(edited(QWEN3, "{'attention_bias': true}"), "attention_bias = true is not supported");
    CHECK_REFUSED(edited(QWEN2, "{'hidden_act': 'gelu'}"), "hidden_act 'gelu' is not supported");
    CHECK_REFUSED(edited(PHI3, "{'rope_parameters': 'DELETE', 'rope_scaling': {'type': 'su', 'short_factor': [1.0], "
                               "'long_factor': [1.0]}}"), "rope_scaling.rope_type 'su' is not supported: Phi-3 reads it as longrope");
    CHECK_REFUSED(edited(PHI3, "{'rope_parameters': {'rope_type': 'yarn', 'factor': 2.0}}"),
                  "rope_parameters.rope_type 'yarn' is not supported: Phi-3 reads it as longrope");
    CHECK_REFUSED(edited(PHI3, "{'partial_rotary_factor': 0.5, 'rope_parameters': {'rope_type': 'default'}}"),
                  "partial_rotary_factor is not supported: ctrain rotates the whole head");
    CHECK_REFUSED(edited(LLAMA3, "{'rope_parameters': {'rope_type': 'llama3', 'factor': 8.0}}"),
                  "rope_parameters: rope_type llama3 needs low_freq_factor and high_freq_factor");
    CHECK_REFUSED(edited(LLAMA3, "{'mlp_bias': true}"), "mlp_bias = true is not supported");
    CHECK_REFUSED(edited(MISTRAL, "{'head_dim': 15}"), "RoPE needs an even head size; head_dim is 15");
    // LlamaConfig and Gemma's refuse it whatever head_dim says; Qwen3's (head_dim 24 here) does not
    CHECK_REFUSED(edited(LLAMA3, "{'hidden_size': 66}"), "hidden_size (66) is not a multiple of num_attention_heads (4)");
    CHECK_REFUSED(edited(GEMMA2, "{'hidden_size': 66}"), "hidden_size (66) is not a multiple of num_attention_heads (4)");
    CtModelConfig c;
    CHECK_MSG(parse(edited(QWEN3, "{'hidden_size': 66}"), &c) == 0 && c.head_dim == 24, "%s", ct_error_message());
    CHECK_REFUSED(edited(QWEN2, "{'model_type': 'phi4'}"), "model_type 'phi4' is not supported; ctrain imports gpt2");
}

// What ct_hf_config_json writes for a shape reads back as that shape (both rope shapes are
// written; the parse takes transformers' precedence).
TEST(hf_families, written_config_reads_back_as_the_same_shape) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *const configs[] = {QWEN2, QWEN3, GEMMA2, GEMMA3, PHI3, MISTRAL, LLAMA3,
                                   edited(LLAMA3, "{'rope_parameters': {'rope_type': 'yarn', 'factor': 4.0, "
                                                  "'mscale': 0.5, 'attention_factor': 1.25, 'truncate': false}}"),
                                   edited(LLAMA3, "{'rope_parameters': {'rope_type': 'dynamic', 'factor': 2.0}}"),
                                   edited(QWEN2, "{'use_sliding_window': true, 'sliding_window': 8, "
                                                 "'max_window_layers': 0, 'layer_types': 'DELETE'}")};
    const int32_t eos[] = {5, 7};
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        CtModelConfig a, b;
        CHECK_MSG(parse(configs[i], &a) == 0, "config %zu: %s", i, ct_error_message());
        char *written = ct_hf_config_json(&a, 1, eos, 1 + (int)(i % 2), "float32");
        CHECK_MSG(ct_hf_config_parse(written, "written", &b) == 0, "config %zu: %s", i, ct_error_message());
        CHECK_MSG(memcmp(&a, &b, sizeof a) == 0, "config %zu reads back as another shape:\n%s", i, written);
        if (i % 2) CHECK_CONTAINS(written, "\"eos_token_id\":\t[5, 7]");
        // transformers 5's config classes check types: Gemma's soft-caps are floats, never "30"
        if (i == 2) CHECK_CONTAINS(written, "\"final_logit_softcapping\":\t30.0");
        if (i == 2) {  // Gemma's query_pre_attn_scalar is an integer: a scale 0.3 cannot be written
            b = a;
            b.query_scale = 0.3f;
            CHECK(ct_hf_config_json(&b, 1, eos, 1, "float32") == NULL);
            CHECK_CONTAINS(ct_error_message(), "model.query_scale 0.3 is not n^-1/2 for a whole n");
        }
        free(written);
    }
}

// Exports a random checkpoint of `c`, and returns the export folder (NULL + error).
static const char *export_random(const CtModelConfig *c, const char *name) {
    const char *ckpt = ct_test_path("src.h5");
    if (hf_fixture_checkpoint(ckpt, c, 3) != 0) return NULL;
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s", ct_test_path(name));
    CtHfExportOptions opt = {0};
    return ct_hf_export(ckpt, dir, &opt) == 0 ? dir : NULL;
}

static const CtParamEntry *entry(const CtModel *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->table[i].name, name) == 0) return &m->table[i];
    return NULL;
}

// Phi-3's files hold q|k|v as one qkv_proj and gate|up as one gate_up_proj, rows stacked in
// that order; the export writes them so and the import splits them back to the bit.
TEST(hf_families, phi3_fused_projections_export_and_import_exactly) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 0);
    c.family = CT_FAMILY_PHI3;
    const char *dir = export_random(&c, "phi3");
    CHECK_MSG(dir, "%s", ct_error_message());
    CtModel m;
    CtCheckpointMeta meta;
    CHECK(hf_fixture_load(ct_test_path("src.h5"), &m, &meta) == 0);
    char path[1200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CtSafetensors f;
    CHECK_MSG(ct_st_open(&f, path) == 0, "%s", ct_error_message());
    const int q = c.n_head * ct_model_head_dim(&c), kv = ct_model_kv_width(&c);
    const CtStTensor *qkv = ct_st_find(&f, "model.layers.1.self_attn.qkv_proj.weight");
    const CtStTensor *gate_up = ct_st_find(&f, "model.layers.1.mlp.gate_up_proj.weight");
    CHECK(qkv && qkv->shape[0] == q + 2 * kv && qkv->shape[1] == c.d_model);
    CHECK(gate_up && gate_up->shape[0] == 2 * c.d_ff && gate_up->shape[1] == c.d_model);
    CHECK(!ct_st_find(&f, "model.layers.1.self_attn.k_proj.weight") && !ct_st_find(&f, "model.layers.0.mlp.up_proj.weight"));
    if (qkv && gate_up) {
        float *v = ct_alloc(qkv->numel * sizeof(float)), *g = ct_alloc(gate_up->numel * sizeof(float));
        CHECK(ct_st_read_f32(&f, qkv, v) == 0 && ct_st_read_f32(&f, gate_up, g) == 0);
        const CtParamEntry *k = entry(&m, "model.layers.1.self_attn.k_proj.weight");
        const CtParamEntry *up = entry(&m, "model.layers.1.mlp.up_proj.weight");
        CHECK_MSG(memcmp(v + (size_t)q * c.d_model, m.params + k->offset, k->numel * sizeof(float)) == 0,
                  "qkv_proj's rows after the queries are k_proj");
        CHECK_MSG(memcmp(g + (size_t)c.d_ff * c.d_model, m.params + up->offset, up->numel * sizeof(float)) == 0,
                  "gate_up_proj's second half is up_proj");
        ct_free(v);
        ct_free(g);
    }
    ct_st_close(&f);

    CtHfImportOptions iopt = {0};
    const char *back = ct_test_path("back.h5");
    CHECK_MSG(ct_hf_import(dir, back, &iopt) == 0, "%s", ct_error_message());
    CtModel b;
    CtCheckpointMeta bmeta;
    CHECK(hf_fixture_load(back, &b, &bmeta) == 0);
    CHECK(b.config.family == CT_FAMILY_PHI3 && b.n_params == m.n_params);
    CHECK_MSG(memcmp(b.params, m.params, m.n_params * sizeof(float)) == 0, "the import is not bit-exact");
    ct_model_free(&m);
    ct_model_free(&b);
    ct_checkpoint_meta_free(&meta);
    ct_checkpoint_meta_free(&bmeta);
}

// Gemma's files hold w of RMSNorm x·(1 + w); ctrain stores 1 + w. Every norm weight of the
// table (whatever norms the family has) goes out less 1 and comes back plus 1.
TEST(hf_families, gemma_norm_weights_lose_their_one_on_export_and_regain_it_on_import) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c;
    CHECK_MSG(parse(GEMMA3, &c) == 0, "%s", ct_error_message());
    CtModelConfig small = hf_fixture_config(CT_ARCH_LLAMA, 1);
    c.n_layer = small.n_layer, c.d_model = small.d_model, c.d_ff = small.d_ff, c.vocab_size = small.vocab_size;
    c.n_head = small.n_head, c.n_kv_head = small.n_kv_head, c.head_dim = 6, c.max_seq_len = small.max_seq_len;
    c.sliding_window = 4;
    const char *dir = export_random(&c, "gemma3");
    CHECK_MSG(dir, "%s", ct_error_message());
    CtModel m;
    CtCheckpointMeta meta;
    CHECK(hf_fixture_load(ct_test_path("src.h5"), &m, &meta) == 0);
    char path[1200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CtSafetensors f;
    CHECK_MSG(ct_st_open(&f, path) == 0, "%s", ct_error_message());
    int norms = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        const CtParamEntry *e = &m.table[i];
        const CtStTensor *t = ct_st_find(&f, e->name);
        CHECK_MSG(t, "%s is not in the export", e->name);
        if (!t) continue;
        float *v = ct_alloc(e->numel * sizeof(float));
        CHECK(ct_st_read_f32(&f, t, v) == 0);
        const int is_norm = strstr(e->name, "norm.weight") != NULL;
        norms += is_norm;
        for (size_t k = 0; k < e->numel; k++)
            if (v[k] != m.params[e->offset + k] - (is_norm ? 1.0f : 0.0f)) {
                CHECK_MSG(0, "%s[%zu]: the file holds %g for ctrain's %g", e->name, k, v[k], m.params[e->offset + k]);
                break;
            }
        ct_free(v);
    }
    CHECK_MSG(norms >= 2 * c.n_layer + 1, "only %d norm weights in the table", norms);
    ct_st_close(&f);
    CtHfImportOptions iopt = {0};
    const char *back = ct_test_path("back.h5");
    CHECK_MSG(ct_hf_import(dir, back, &iopt) == 0, "%s", ct_error_message());
    CtModel b;
    CtCheckpointMeta bmeta;
    CHECK(hf_fixture_load(back, &b, &bmeta) == 0);
    CHECK_MSG(memcmp(&b.config, &m.config, sizeof m.config) == 0, "the shape changed through the export");
    for (size_t k = 0; k < m.n_params; k++)  // x − 1 + 1 rounds where x is far from 1
        if (fabsf(b.params[k] - m.params[k]) > 1e-6f * fmaxf(1.0f, fabsf(m.params[k]))) {
            CHECK_MSG(0, "parameter %zu: %g came back as %g", k, m.params[k], b.params[k]);
            break;
        }
    ct_model_free(&m);
    ct_model_free(&b);
    ct_checkpoint_meta_free(&meta);
    ct_checkpoint_meta_free(&bmeta);
}

// Phi-3's PEFT modules are the fused qkv_proj and gate_up_proj: ctrain's adapters on the parts go
// out as one adapter per fused module (A stacked, B block-diagonal, rank and alpha patterns that
// keep the scale); with rank patterns they cannot, and the message says what to do instead.
TEST(hf_families, phi3_adapters_on_fused_parts_save_as_fused_peft_modules) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 0);
    c.family = CT_FAMILY_PHI3;
    CtModel m;
    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 1, 4, CT_MODEL_FROZEN) == 0);
    CtLoraSpec s = {.r = 2, .alpha = 4};
    snprintf(s.targets, sizeof s.targets, "q_proj,v_proj,up_proj,o_proj");
    CHECK_MSG(ct_lora_attach(&m, &s) == 0, "%s", ct_error_message());
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = (float)(i % 7) - 3.0f;
    CHECK_MSG(ct_lora_save_peft(&m, ct_test_path("adapter"), "base") == 0, "%s", ct_error_message());
    char *cfg = ct_test_read(ct_test_path("adapter/adapter_config.json"), NULL);
    CHECK_CONTAINS(cfg, "\"target_modules\":\t[\"qkv_proj\", \"gate_up_proj\", \"o_proj\"]");
    CHECK_CONTAINS(cfg, "\"qkv_proj\":\t4");       // rank: q's 2 + v's 2
    CHECK_CONTAINS(cfg, "\"gate_up_proj\":\t2");
    free(cfg);
    CtSafetensors f;
    CHECK(ct_st_open(&f, ct_test_path("adapter/adapter_model.safetensors")) == 0);
    const CtStTensor *B = ct_st_find(&f, "base_model.model.model.layers.1.self_attn.qkv_proj.lora_B.weight");
    const int q = c.n_head * ct_model_head_dim(&c), kv = ct_model_kv_width(&c);
    CHECK(B && B->shape[0] == q + 2 * kv && B->shape[1] == 4);
    if (B) {  // k's rows are zero; v's rows hold v's B in the columns after q's
        float *b = ct_alloc(B->numel * sizeof(float));
        CHECK(ct_st_read_f32(&f, B, b) == 0);
        const CtLoraAdapter *v = NULL;
        for (int i = 0; i < m.lora->n_adapters; i++)
            if (strcmp(m.lora->adapters[i].module, "model.layers.1.self_attn.v_proj") == 0) v = &m.lora->adapters[i];
        CHECK(v != NULL);
        for (int r = q; r < q + kv; r++) CHECK(b[r * 4] == 0 && b[r * 4 + 3] == 0);
        if (v) CHECK(b[(q + kv) * 4 + 2] == m.lora->params[v->b_offset] && b[(q + kv) * 4] == 0);
        ct_free(b);
    }
    ct_st_close(&f);
    ct_model_free(&m);

    CHECK(ct_model_create(&m, &c, ct_ops_cpu(), 1, 4, CT_MODEL_FROZEN) == 0);
    s.n_rank_pattern = 1;
    snprintf(s.rank_pattern[0].key, sizeof s.rank_pattern[0].key, "v_proj");
    s.rank_pattern[0].value = 4;
    CHECK_MSG(ct_lora_attach(&m, &s) == 0, "%s", ct_error_message());
    CHECK(ct_lora_save_peft(&m, ct_test_path("adapter2"), "base") != 0);
    CHECK_CONTAINS(ct_error_message(), "without rank or alpha patterns; merge these adapters into the model instead");
    ct_model_free(&m);
}

// An imported model's end-of-sequence ids (a list in Llama 3 Instruct's generation_config.json)
// go back out as a list in generation_config.json and config.json.
TEST(hf_families, export_writes_the_checkpoints_eos_id_list) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 0);
    const char *ckpt = ct_test_path("eos.h5");
    CHECK(hf_fixture_checkpoint(ckpt, &c, 3) == 0);
    CtModel m;
    CtCheckpointMeta meta;
    CHECK(hf_fixture_load(ckpt, &m, &meta) == 0);
    const int32_t ids[] = {259, 7, 11};
    meta.generation_config_json = ct_generation_config_json(ids, 3);
    CHECK(ct_checkpoint_save(ckpt, &m, NULL, &meta) == 0);
    ct_model_free(&m);
    ct_checkpoint_meta_free(&meta);
    CtHfExportOptions opt = {0};
    CHECK_MSG(ct_hf_export(ckpt, ct_test_path("eos"), &opt) == 0, "%s", ct_error_message());
    char *gen = ct_test_read(ct_test_path("eos/generation_config.json"), NULL);
    char *cfg = ct_test_read(ct_test_path("eos/config.json"), NULL);
    CHECK_CONTAINS(gen, "\"eos_token_id\":\t[259, 7, 11]");
    CHECK_CONTAINS(cfg, "\"eos_token_id\":\t[259, 7, 11]");
    free(gen);
    free(cfg);
    int32_t back[8];
    int n = 0;
    char *dir_json = NULL;
    CHECK(ct_hf_generation_config_read(ct_test_path("eos"), c.vocab_size, &dir_json) == 0);
    CHECK(dir_json && ct_eos_token_ids_parse(dir_json, "x", c.vocab_size, back, 8, &n) == 0 && n == 3 && back[1] == 7);
    ct_free(dir_json);
}

// The MoE families' config.json as transformers 5.23 saves them (hf_moe_ref.py's tiny models;
// Qwen3MoeConfig writes its expert count as num_local_experts).
#define MOE_SIZES "'vocab_size': 300, 'hidden_size': 64, 'num_hidden_layers': 4, 'num_attention_heads': 4, " \
                  "'max_position_embeddings': 64, 'rms_norm_eps': 1e-05, 'attention_dropout': 0.0, "          \
                  "'bos_token_id': 0, 'eos_token_id': 0, 'pad_token_id': 0, 'initializer_range': 0.02, "     \
                  "'output_router_logits': false, 'tie_word_embeddings': false, 'use_cache': true, "          \
                  "'transformers_version': '5.23.0', 'dtype': 'float32', 'hidden_act': 'silu'"
static const char *const MIXTRAL =
    "{'model_type': 'mixtral', 'architectures': ['MixtralForCausalLM'], " MOE_SIZES ", 'head_dim': null, "
    "'intermediate_size': 48, 'num_experts_per_tok': 2, 'num_key_value_heads': 2, 'num_local_experts': 4, "
    "'rope_parameters': {'rope_theta': 1000000.0, 'rope_type': 'default'}, 'router_aux_loss_coef': 0.001, "
    "'router_jitter_noise': 0.0, 'sliding_window': 7}";
static const char *const QWEN2_MOE =
    "{'model_type': 'qwen2_moe', 'architectures': ['Qwen2MoeForCausalLM'], " MOE_SIZES ", 'decoder_sparse_step': 2, "
    "'intermediate_size': 96, 'layer_types': " FULL4 ", 'max_window_layers': 28, 'mlp_only_layers': [], "
    "'moe_intermediate_size': 32, 'norm_topk_prob': false, 'num_experts': 6, 'num_experts_per_tok': 2, "
    "'num_key_value_heads': 2, 'qkv_bias': true, 'rope_parameters': {'rope_theta': 10000.0, 'rope_type': 'default'}, "
    "'router_aux_loss_coef': 0.001, 'shared_expert_intermediate_size': 64, 'sliding_window': 0, "
    "'use_sliding_window': false}";
static const char *const QWEN3_MOE =
    "{'model_type': 'qwen3_moe', 'architectures': ['Qwen3MoeForCausalLM'], " MOE_SIZES ", 'attention_bias': false, "
    "'decoder_sparse_step': 1, 'head_dim': 24, 'intermediate_size': 96, 'mlp_only_layers': [], "
    "'moe_intermediate_size': 32, 'norm_topk_prob': true, 'num_experts_per_tok': 2, 'num_key_value_heads': 2, "
    "'num_local_experts': 8, 'rope_parameters': {'rope_theta': 10000.0, 'rope_type': 'default'}, "
    "'router_aux_loss_coef': 0.001, 'sliding_window': null, 'use_sliding_window': false}";
static const char *const OLMOE =
    "{'model_type': 'olmoe', 'architectures': ['OlmoeForCausalLM'], " MOE_SIZES ", 'attention_bias': false, "
    "'clip_qkv': null, 'intermediate_size': 32, 'norm_topk_prob': false, 'num_experts': 8, 'num_experts_per_tok': 2, "
    "'num_key_value_heads': 4, 'rope_parameters': {'rope_theta': 10000.0, 'rope_type': 'default'}, "
    "'router_aux_loss_coef': 0.01}";

TEST(hf_families, moe_configs_saved_by_transformers_read_into_the_moe_shape) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c;
    CHECK_MSG(parse(MIXTRAL, &c) == 0, "%s", ct_error_message());
    CHECK(c.family == CT_FAMILY_MIXTRAL && c.n_experts == 4 && c.top_k == 2 && c.moe_d_ff == 48);
    CHECK_MSG(c.router == CT_ROUTER_TOPK_SOFTMAX, "Mixtral: the softmax of the top-k logits");
    CHECK(c.n_shared_experts == 0 && c.moe_layer_freq <= 1 && c.sliding_window == 7 && !c.qk_norm && !c.qkv_bias);
    CHECK(ct_model_moe_layers(&c) == 4);

    CHECK_MSG(parse(QWEN2_MOE, &c) == 0, "%s", ct_error_message());
    CHECK(c.family == CT_FAMILY_QWEN2_MOE && c.n_experts == 6 && c.top_k == 2 && c.moe_d_ff == 32 && c.d_ff == 96);
    CHECK_MSG(c.router == CT_ROUTER_SOFTMAX, "norm_topk_prob false: the top-k softmax weights as they are");
    CHECK_MSG(c.n_shared_experts == 2 && c.shared_expert_gate, "a 64-wide shared expert of 32-wide experts, gated");
    CHECK_MSG(c.moe_layer_freq == 2 && !ct_model_layer_is_moe(&c, 0) && ct_model_layer_is_moe(&c, 1) &&
                  !ct_model_layer_is_moe(&c, 2) && ct_model_layer_is_moe(&c, 3),
              "decoder_sparse_step 2: layers 1 and 3 are MoE ((l + 1) %% 2 == 0), 0 and 2 dense");
    CHECK(c.qkv_bias && !c.qk_norm);

    CHECK_MSG(parse(QWEN3_MOE, &c) == 0, "%s", ct_error_message());
    CHECK(c.family == CT_FAMILY_QWEN3_MOE && c.n_experts == 8 && c.top_k == 2 && c.moe_d_ff == 32);
    CHECK_MSG(c.router == CT_ROUTER_SOFTMAX_NORM, "norm_topk_prob true: the top-k weights renormalised");
    CHECK(c.qk_norm == 1 && c.head_dim == 24 && c.n_shared_experts == 0 && ct_model_moe_layers(&c) == 4);
    // the expert count under the other name the config class accepts; the class defaults without either
    CHECK_MSG(parse(edited(QWEN3_MOE, "{'num_local_experts': 'DELETE', 'num_experts': 6}"), &c) == 0 &&
                  c.n_experts == 6, "%s", ct_error_message());
    CHECK_MSG(parse(edited(QWEN3_MOE, "{'num_local_experts': 'DELETE', 'num_experts_per_tok': 'DELETE', "
                                      "'moe_intermediate_size': 'DELETE', 'norm_topk_prob': 'DELETE'}"), &c) == 0,
              "%s", ct_error_message());
    CHECK_MSG(c.n_experts == 128 && c.top_k == 8 && c.moe_d_ff == 768 && c.router == CT_ROUTER_SOFTMAX,
              "Qwen3MoeConfig's defaults: 128 experts, top 8, 768 wide, norm_topk_prob false");

    CHECK_MSG(parse(OLMOE, &c) == 0, "%s", ct_error_message());
    CHECK(c.family == CT_FAMILY_OLMOE && c.n_experts == 8 && c.top_k == 2 && c.moe_d_ff == 32);
    CHECK(c.router == CT_ROUTER_SOFTMAX && c.n_shared_experts == 0 && ct_model_moe_layers(&c) == 4);
    CHECK_MSG(c.qk_norm == 2, "OLMoE's q/k norms are over the whole projections");
}

TEST(hf_families, moe_configs_ctrain_cannot_compute_are_refused_naming_the_key) {
    CHECK_REFUSED(edited(OLMOE, "{'num_key_value_heads': 2}"),
                  "olmoe with num_key_value_heads (2) != num_attention_heads (4) is not supported");
    CHECK_REFUSED(edited(OLMOE, "{'head_dim': 8}"), "head_dim 8 is not supported on olmoe");
    CHECK_REFUSED(edited(OLMOE, "{'clip_qkv': 8.0}"), "clip_qkv is not supported");
    CHECK_REFUSED(edited(OLMOE, "{'num_experts_per_tok': 9}"), "num_experts_per_tok (9) is more than the 8 experts");
    CHECK_REFUSED(edited(MIXTRAL, "{'num_experts_per_tok': 0}"), "config key 'num_experts_per_tok' must be a positive");
    CHECK_REFUSED(edited(MIXTRAL, "{'router_jitter_noise': 0.01}"), "router_jitter_noise = 0.01 is not supported");
    CHECK_REFUSED(edited(QWEN3_MOE, "{'num_experts': 6}"),
                  "num_experts (6) and num_local_experts (8) disagree; transformers reads them as one number");
    CHECK_REFUSED(edited(QWEN2_MOE, "{'mlp_only_layers': [1]}"), "mlp_only_layers is not supported");
    CHECK_REFUSED(edited(QWEN2_MOE, "{'decoder_sparse_step': 5}"),
                  "decoder_sparse_step (5) is above num_hidden_layers (4): no layer would be MoE");
    CHECK_REFUSED(edited(QWEN2_MOE, "{'shared_expert_intermediate_size': 48}"),
                  "shared_expert_intermediate_size (48) is not a multiple of moe_intermediate_size (32)");
    CHECK_REFUSED(edited(QWEN2_MOE, "{'norm_topk_prob': 'yes'}"), "config key 'norm_topk_prob' must be true or false");
}

// The MoE shapes ct_hf_config_json writes read back as those shapes; shapes the family's model
// class cannot compute are refused naming ctrain's model key.
TEST(hf_families, moe_written_config_reads_back_as_the_same_shape) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *const configs[] = {MIXTRAL, QWEN2_MOE, QWEN3_MOE, OLMOE,
                                   edited(QWEN2_MOE, "{'norm_topk_prob': true, 'decoder_sparse_step': 1}")};
    const int32_t eos[] = {0};
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        CtModelConfig a, b;
        CHECK_MSG(parse(configs[i], &a) == 0, "config %zu: %s", i, ct_error_message());
        char *written = ct_hf_config_json(&a, 0, eos, 1, "float32");
        CHECK_MSG(written, "config %zu: %s", i, ct_error_message());
        CHECK_MSG(ct_hf_config_parse(written, "written", &b) == 0, "config %zu: %s", i, ct_error_message());
        CHECK_MSG(memcmp(&a, &b, sizeof a) == 0, "config %zu reads back as another shape:\n%s", i, written);
        free(written);
    }
    CtModelConfig c;
    CHECK(parse(QWEN2_MOE, &c) == 0);
    c.shared_expert_gate = 0;
    CHECK(ct_hf_config_json(&c, 0, eos, 1, "float32") == NULL);
    CHECK_CONTAINS(ct_error_message(), "model.n_shared_experts: transformers' qwen2_moe has a gated shared expert");
    CHECK(parse(MIXTRAL, &c) == 0);
    c.router = CT_ROUTER_SIGMOID;
    CHECK(ct_hf_config_json(&c, 0, eos, 1, "float32") == NULL);
    CHECK_CONTAINS(ct_error_message(), "model.router sigmoid: transformers' mixtral routes with topk_softmax");
    CHECK(parse(OLMOE, &c) == 0);
    c.moe_layer_freq = 2;
    CHECK(ct_hf_config_json(&c, 0, eos, 1, "float32") == NULL);
    CHECK_CONTAINS(ct_error_message(), "model.moe_layer_freq 2: every layer of transformers' olmoe is MoE");
}
