// The encoder families' Hugging Face interop without Python (transformers itself: test_hf_encoder_ref.c):
// config.json as transformers 5.23 saves BertForMaskedLM / RobertaForMaskedLM reads into the shape
// (RoBERTa's positions after its padding row), what ctrain cannot compute is refused naming the key,
// and export -> import gives every tensor back bit for bit, the pooler included.
#include <string.h>

#include "core/error.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"
#include "train/interop/hf_interop.h"

// What save_pretrained wrote for a tiny BertForMaskedLM (transformers 5.23), and its RoBERTa twin.
static const char *const bert_json =
    "{\"add_cross_attention\": false, \"architectures\": [\"BertForMaskedLM\"], \"attention_probs_dropout_prob\": 0.1,"
    " \"bos_token_id\": null, \"classifier_dropout\": null, \"dtype\": \"float32\", \"eos_token_id\": null,"
    " \"hidden_act\": \"gelu\", \"hidden_dropout_prob\": 0.1, \"hidden_size\": 64, \"initializer_range\": 0.02,"
    " \"intermediate_size\": 96, \"is_decoder\": false, \"layer_norm_eps\": 1e-12, \"max_position_embeddings\": 40,"
    " \"model_type\": \"bert\", \"num_attention_heads\": 4, \"num_hidden_layers\": 2, \"pad_token_id\": 0,"
    " \"tie_word_embeddings\": true, \"transformers_version\": \"5.23.0\", \"type_vocab_size\": 2,"
    " \"use_cache\": true, \"vocab_size\": 101}";

static char *with(const char *json, const char *key, const char *value) {  // one key replaced (or added)
    static char out[4096];
    char needle[64];
    snprintf(needle, sizeof needle, "\"%s\": ", key);
    const char *at = strstr(json, needle);
    if (!at) {
        snprintf(out, sizeof out, "{%s%s, %s", needle, value, json + 1);
        return out;
    }
    const char *end = at + strlen(needle);
    int depth = 0;
    while (*end && (depth > 0 || (*end != ',' && *end != '}'))) depth += (*end == '[') - (*end == ']'), end++;
    snprintf(out, sizeof out, "%.*s%s%s%s", (int)(at - json), json, needle, value, end);
    return out;
}

TEST(hf_encoder, bert_and_roberta_configs_read_as_transformers_saves_them) {
    CtModelConfig c;
    CHECK_MSG(ct_hf_config_parse(bert_json, "bert/config.json", &c) == 0, "%s", ct_error_message());
    CHECK(c.arch == CT_ARCH_BERT);
    CHECK_EQ_INT(c.n_layer, 2);
    CHECK_EQ_INT(c.d_model, 64);
    CHECK_EQ_INT(c.n_head, 4);
    CHECK_EQ_INT(c.n_kv_head, 4);
    CHECK_EQ_INT(c.d_ff, 96);
    CHECK_EQ_INT(c.vocab_size, 101);
    CHECK_EQ_INT(c.max_seq_len, 40);
    CHECK_EQ_INT(c.type_vocab_size, 2);
    CHECK(c.norm_eps == 1e-12f && c.tie_embeddings);
    char roberta[4096];
    snprintf(roberta, sizeof roberta, "%s", with(bert_json, "model_type", "\"roberta\""));
    snprintf(roberta, sizeof roberta, "%s", with(roberta, "architectures", "[\"RobertaForMaskedLM\"]"));
    snprintf(roberta, sizeof roberta, "%s", with(roberta, "pad_token_id", "1"));
    snprintf(roberta, sizeof roberta, "%s", with(roberta, "max_position_embeddings", "42"));
    snprintf(roberta, sizeof roberta, "%s", with(roberta, "type_vocab_size", "1"));
    CHECK_MSG(ct_hf_config_parse(roberta, "roberta/config.json", &c) == 0, "%s", ct_error_message());
    CHECK(c.arch == CT_ARCH_ROBERTA);
    CHECK_EQ_INT(c.max_seq_len, 40);  // 42 rows: padding_idx 1 and the row before it come first
    CHECK_EQ_INT(c.pad_token_id, 1);
    // and back: the config.json ctrain writes reads as the same shape
    char *json = ct_hf_config_json(&c, -1, NULL, 0, "float32");
    CtModelConfig back;
    CHECK_MSG(ct_hf_config_parse(json, "written", &back) == 0, "%s", ct_error_message());
    free(json);
    CHECK(memcmp(&back, &c, sizeof c) == 0);
}

static void check_refused(const char *key, const char *value, const char *words) {
    CtModelConfig c;
    CHECK_MSG(ct_hf_config_parse(with(bert_json, key, value), "config.json", &c) != 0, "%s = %s was accepted", key,
              value);
    CHECK_MSG(strstr(ct_error_message(), words) != NULL, "%s = %s: '%s' does not say '%s'", key, value,
              ct_error_message(), words);
}

TEST(hf_encoder, what_ctrain_cannot_compute_is_refused_naming_the_key) {
    check_refused("hidden_act", "\"gelu_new\"", "hidden_act");
    check_refused("position_embedding_type", "\"relative_key\"", "position_embedding_type");
    check_refused("is_decoder", "true", "is_decoder");
    check_refused("add_cross_attention", "true", "add_cross_attention");
    check_refused("tie_word_embeddings", "false", "tie_word_embeddings");
    check_refused("architectures", "[\"BertForPreTraining\"]", "BertForPreTraining");
}

// export -> import: the same config and every tensor bit for bit, for BERT with its pooler and RoBERTa.
static void round_trip(CtArch arch, int pooler) {
    const int roberta = arch == CT_ARCH_ROBERTA;
    CtModelConfig c = {.arch = arch, .n_layer = 2, .n_head = 2, .n_kv_head = 2, .d_model = 16, .d_ff = 24,
                       .vocab_size = 264, .max_seq_len = 32, .norm_eps = roberta ? 1e-5f : 1e-12f, .tie_embeddings = 1,
                       .type_vocab_size = roberta ? 1 : 2, .pad_token_id = roberta ? 1 : 0, .pooler = pooler};
    CHECK_MSG(hf_fixture_checkpoint(ct_test_path("a.h5"), &c, 5) == 0, "%s", ct_error_message());
    char cmd[4096];
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "%s export hf %s --out %s", ct_test_bin(), ct_test_path("a.h5"), ct_test_path("hf"));
    CHECK_MSG(ct_test_run(cmd, &out) == 0, "export: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s import hf %s --out %s", ct_test_bin(), ct_test_path("hf"), ct_test_path("b.h5"));
    CHECK_MSG(ct_test_run(cmd, &out) == 0, "import: %s", out);
    free(out);
    CtModel a, b;
    CtCheckpointMeta ma, mb;
    CHECK_MSG(hf_fixture_load(ct_test_path("a.h5"), &a, &ma) == 0, "%s", ct_error_message());
    CHECK_MSG(hf_fixture_load(ct_test_path("b.h5"), &b, &mb) == 0, "%s", ct_error_message());
    CHECK(memcmp(&a.config, &b.config, sizeof a.config) == 0);
    CHECK_EQ_INT(a.n_params, b.n_params);
    CHECK(memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0);
    ct_model_free(&a);
    ct_model_free(&b);
    ct_checkpoint_meta_free(&ma);
    ct_checkpoint_meta_free(&mb);
}

TEST(hf_encoder, bert_with_pooler_exports_and_imports_bit_for_bit) { round_trip(CT_ARCH_BERT, 1); }
TEST(hf_encoder, roberta_exports_and_imports_bit_for_bit) { round_trip(CT_ARCH_ROBERTA, 0); }

// An encoder does not generate and has no next-token loss: generate, chat and eval refuse its
// checkpoint with the reason (export gguf too: llama.cpp's bert is another model).
TEST(hf_encoder, generate_chat_eval_and_gguf_refuse_encoders) {
    CtModelConfig c = {.arch = CT_ARCH_BERT, .n_layer = 1, .n_head = 2, .n_kv_head = 2, .d_model = 16, .d_ff = 24,
                       .vocab_size = 264, .max_seq_len = 32, .norm_eps = 1e-12f, .tie_embeddings = 1,
                       .type_vocab_size = 2};
    CHECK_MSG(hf_fixture_checkpoint(ct_test_path("bert.h5"), &c, 7) == 0, "%s", ct_error_message());
    ct_test_write("text.txt", "the quick brown fox jumps over the lazy dog, again and again and again.");
    const char *const commands[][2] = {
        {"generate --checkpoint %s --prompt the", "do not generate text"},
        {"chat --checkpoint %s", "do not generate text"},
        {"eval --checkpoint %s --text text.txt --seq 8", "is an encoder"},
        {"export gguf %s --out bert.gguf", "GGUF export writes decoders"},
    };
    for (int i = 0; i < 4; i++) {
        char args[1024], cmd[4096];
        snprintf(args, sizeof args, commands[i][0], ct_test_path("bert.h5"));
        snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s < /dev/null", ct_test_tmpdir(), ct_test_bin(), args);
        char *out = NULL;
        CHECK_MSG(ct_test_run(cmd, &out) != 0, "ctrain %s accepted an encoder: %s", args, out);
        CHECK_MSG(strstr(out, commands[i][1]) != NULL, "ctrain %s: '%s' does not say '%s'", args, out, commands[i][1]);
        free(out);
    }
}
