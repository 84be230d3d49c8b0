// Generation: the key/value cache gives the logits a full forward pass gives, sampling
// behaves (greedy is deterministic; top-k and top-p keep what they promise), and `generate` and
// `chat` stop where the model stops (its EOS ids, imported from config.json or
// generation_config.json, and the chat template's end-of-turn token).
#include <cJSON.h>
#include <math.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "kernels/ops.h"
#include "tests/generate_fixture.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/checkpoint_meta.h"
#include "train/model/generate.h"
#include "train/interop/hf_interop.h"
#include "train/interop/stop_tokens.h"

// lora_targets: NULL, or adapters on those modules with random A and B (generation runs the
// block of the model's forward, adapters included: train/model/model_block.c).
static void kv_cache_matches_config(CtModelConfig c, const char *lora_targets, const char *what) {
    const int T = 12;
    CtModel m;
    generate_fixture_model(&m, c, T, 5, lora_targets);
    int32_t tokens[12];
    CtRng rng;
    ct_rng_seed(&rng, 3);
    for (int t = 0; t < T; t++) tokens[t] = (int32_t)ct_rng_below(&rng, (uint32_t)c.vocab_size);
    CtBatch batch = {.tokens = tokens, .B = 1, .T = T};
    ct_model_forward(&m, &batch);  // no targets: logits stay in m.act.logits
    const float *forward_logits = ct_model_logits(&m);
    CtGenerator g;
    ct_generator_init(&g, &m, T);
    double worst = 0;
    for (int t = 0; t < T; t++) {
        const float *logits = ct_generator_feed(&g, tokens[t]);
        const float *full = forward_logits + (size_t)t * c.vocab_size;
        double scale = 0;  // errors relative to the row's largest logit (near-zero logits make ratios meaningless)
        for (int v = 0; v < c.vocab_size; v++) scale = fmax(scale, fabs(full[v]));
        for (int v = 0; v < c.vocab_size; v++) {
            double err = fabs(logits[v] - full[v]) / scale;
            if (err > worst) worst = err;
        }
    }
    CHECK_MSG(worst < 1e-4, "%s: cached logits differ from the full forward by %g (relative to the largest)", what, worst);
    ct_generator_reset(&g);
    CHECK_EQ_INT(g.n_ctx, 0);
    const float *again = ct_generator_feed(&g, tokens[0]);
    CHECK_NEAR(again[0], forward_logits[0], 1e-4 * (1 + fabs(forward_logits[0])));
    ct_generator_free(&g);
    ct_model_free(&m);
}

static void kv_cache_matches_full_forward(CtArch arch, const char *lora_targets) {
    kv_cache_matches_config(tiny_config(arch), lora_targets, ct_arch_name(arch));
}

// Every llama variant: windows, soft-caps, q/k norms, post-norms, RoPE tables (dynamic scaling
// is left out: transformers, and ctrain with it, rotate a cached key by the table of the pass
// that stored it, so a cache differs from a full pass once the table grows).
TEST(generate, kv_cache_equals_full_recomputation_llama_variants) {
    for (int i = 0; tiny_variant_names[i]; i++) {
        if (strcmp(tiny_variant_names[i], "dynamic") == 0) continue;
        kv_cache_matches_config(tiny_variant_config(tiny_variant_names[i]), NULL, tiny_variant_names[i]);
        if (ct_test_failed()) return;
    }
    kv_cache_matches_config(tiny_variant_config("gemma2"), "all-linear", "gemma2 with LoRA");
    kv_cache_matches_config(tiny_variant_config("qwen3"), "all-linear", "qwen3 with LoRA");
}

TEST(generate, kv_cache_equals_full_recomputation_gpt2) { kv_cache_matches_full_forward(CT_ARCH_GPT2, NULL); }
TEST(generate, kv_cache_equals_full_recomputation_llama) { kv_cache_matches_full_forward(CT_ARCH_LLAMA, NULL); }
TEST(generate, kv_cache_equals_full_recomputation_with_lora_adapters) {
    kv_cache_matches_full_forward(CT_ARCH_GPT2, "all-linear");
    kv_cache_matches_full_forward(CT_ARCH_LLAMA, "all-linear");
}

TEST(generate, greedy_is_argmax_and_deterministic) {
    float logits[5] = {0.1f, 2.0f, -1.0f, 1.9f, 0.0f};
    CtSampling greedy = {0, 0, 1};
    CtRng a, b;
    ct_rng_seed(&a, 1);
    ct_rng_seed(&b, 2);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ_INT(ct_sample(logits, 5, &greedy, &a), 1);
        CHECK_EQ_INT(ct_sample(logits, 5, &greedy, &b), 1);
    }
}

TEST(generate, top_k_and_top_p_restrict_the_choice) {
    float logits[6] = {3.0f, 2.9f, 2.8f, -5.0f, -5.0f, -5.0f};
    CtRng rng;
    ct_rng_seed(&rng, 7);
    int counts[6] = {0};
    CtSampling s = {1.0f, 2, 1.0f};  // top-2: only tokens 0 and 1
    for (int i = 0; i < 2000; i++) counts[ct_sample(logits, 6, &s, &rng)]++;
    CHECK(counts[0] > 0 && counts[1] > 0);
    CHECK_EQ_INT(counts[2] + counts[3] + counts[4] + counts[5], 0);
    memset(counts, 0, sizeof counts);
    CtSampling nucleus = {1.0f, 0, 0.5f};  // token 0 holds ~35%, 0+1 ~67% >= 50%: only 0 and 1
    for (int i = 0; i < 2000; i++) counts[ct_sample(logits, 6, &nucleus, &rng)]++;
    CHECK_EQ_INT(counts[2] + counts[3] + counts[4] + counts[5], 0);
    memset(counts, 0, sizeof counts);
    CtSampling full = {1.0f, 0, 1.0f};  // plain sampling follows the softmax: 0 ~ 35%, 2 ~ 31%
    for (int i = 0; i < 4000; i++) counts[ct_sample(logits, 6, &full, &rng)]++;
    CHECK_NEAR(counts[0] / 4000.0, exp(3.0) / (exp(3.0) + exp(2.9) + exp(2.8) + 3 * exp(-5.0)), 0.04);
    CHECK_NEAR(counts[2] / 4000.0, exp(2.8) / (exp(3.0) + exp(2.9) + exp(2.8) + 3 * exp(-5.0)), 0.04);
    CtRng r1, r2;  // the same seed draws the same tokens
    ct_rng_seed(&r1, 11);
    ct_rng_seed(&r2, 11);
    for (int i = 0; i < 50; i++) CHECK_EQ_INT(ct_sample(logits, 6, &full, &r1), ct_sample(logits, 6, &full, &r2));
}

// ---- where generation stops: the model's end-of-sequence ids and the template's end of turn ----
// A LLaMA model whose greedy output is a chain fixed by the last token: its blocks are zero, so
// the final state is the RMS-normalized embedding, a one-hot per chain token, and lm_head
// row next[t] points at t's one-hot. The chains run into a special token and on past it, so
// output after the stop token shows that generation did not stop there.
enum { EOT = 256, END_OF_TEXT = 257, EOT_ID = 258, IM_START = 259, IM_END = 260, HEADER_START = 261, HEADER_END = 262 };
static const int32_t chain[][2] = {
    {'P', 'a'}, {'a', END_OF_TEXT}, {END_OF_TEXT, 'b'}, {'b', 'b'},  // generate P: stops at <|end_of_text|>
    {'Q', 'c'}, {'c', EOT_ID},      {EOT_ID, 'd'},      {'d', 'd'},  // generate Q: at <|eot_id|>
    {'R', 'e'}, {'e', IM_END},      {IM_END, 'f'},      {'f', 'f'},  // generate R: at <|im_end|>
    {'\n', 'h'}, {'h', END_OF_TEXT},                                  // ChatML's "assistant\n" -> "h", end of text
    {':', 'k'}, {'k', EOT_ID},                                        // a template ending in ":" -> "k", end of turn
};

static char *stop_fixture_tokenizer(void) {
    static const char *const specials[] = {"<|endoftext|>", "<|end_of_text|>", "<|eot_id|>", "<|im_start|>",
                                           "<|im_end|>", "<|start_header_id|>", "<|end_header_id|>"};
    CtTokenizer t;
    ct_tokenizer_init(&t, CT_PATTERN_GPT2, CT_MERGES_BY_LIST);
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        ct_tokenizer_add(&t, b, &byte, 1, CT_TOKEN_NORMAL);
    }
    for (int i = 0; i < 7; i++)
        ct_tokenizer_add(&t, 256 + i, (const uint8_t *)specials[i], strlen(specials[i]), CT_TOKEN_SPECIAL);
    char *json = ct_tokenizer_finish(&t) == 0 ? ct_tokenizer_hf_json(&t) : NULL;
    ct_tokenizer_free(&t);
    return json;
}

// Writes the chain model with the stop fixture's tokenizer; chat_template may be NULL.
static int stop_fixture_checkpoint(const char *path, const char *chat_template) {
    CtModelConfig c = tiny_config(CT_ARCH_LLAMA);
    c.vocab_size = 264;
    c.d_model = 32;
    c.max_seq_len = 64;  // room for a chat prompt and its answer
    c.tie_embeddings = 0;
    CtModel m;
    if (ct_model_create(&m, &c, ct_ops_cpu(), 1, 1, 0) != 0) return -1;
    memset(m.params, 0, sizeof(float) * m.n_params);
    for (int i = 0; i < c.d_model; i++) m.w.lnf_w[i] = 1;
    const int n = (int)(sizeof chain / sizeof chain[0]);
    int32_t dims[264];
    int used = 0;
    for (int v = 0; v < 264; v++) dims[v] = -1;
    for (int i = 0; i < n; i++) {
        int32_t from = chain[i][0];
        if (dims[from] < 0) dims[from] = used++;
        m.w.wte[(size_t)from * c.d_model + dims[from]] = 1;
        m.w.lm_head[(size_t)chain[i][1] * c.d_model + dims[from]] = 1;
    }
    CT_CHECK(used <= c.d_model, "one channel per chain token");
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    char *json = stop_fixture_tokenizer();
    meta.tokenizer_json = ct_strdup(json);
    free(json);
    if (chat_template) meta.chat_template_json = ct_strdup(chat_template);
    int rc = ct_checkpoint_save(path, &m, NULL, &meta);
    ct_checkpoint_meta_free(&meta);
    ct_model_free(&m);
    return rc;
}

// Exports the chain model as a Hugging Face folder, sets config.json's eos_token_id (JSON text)
// and replaces generation_config.json (none when NULL), writes tokenizer_config.json (when not
// NULL), then imports the folder into `out`.
static int import_with_config(const char *out, const char *config_eos, const char *generation_config,
                              const char *tokenizer_config) {
    const char *ckpt = ct_test_path("chain.h5"), *dir = ct_test_path("hf");
    char path[2048];
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    if (ct_test_run(path, NULL) != 0 || stop_fixture_checkpoint(ckpt, NULL) != 0) return -1;
    CtHfExportOptions opt = {0};
    if (ct_hf_export(ckpt, dir, &opt) != 0) return -1;
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = ct_test_read(path, NULL);
    cJSON *config = cJSON_Parse(text);
    free(text);
    cJSON_DeleteItemFromObject(config, "eos_token_id");
    cJSON_AddItemToObject(config, "eos_token_id", cJSON_Parse(config_eos));
    text = cJSON_Print(config);
    cJSON_Delete(config);
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    free(text);
    snprintf(path, sizeof path, "%s/generation_config.json", dir);  // export wrote one: replace or drop it
    remove(path);
    if (generation_config) {
        fp = fopen(path, "w");
        fputs(generation_config, fp);
        fclose(fp);
    }
    if (tokenizer_config) {
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        fp = fopen(path, "w");
        fputs(tokenizer_config, fp);
        fclose(fp);
    }
    CtHfImportOptions io = {0};
    return ct_hf_import(dir, out, &io);
}

static int import_with_eos(const char *out, const char *config_eos, const char *generation_config) {
    return import_with_config(out, config_eos, generation_config, NULL);
}

static const char LLAMA3_STYLE_CONFIG[] =
    "{\"bos_token\": \"<|endoftext|>\", \"eos_token\": {\"content\": \"<|end_of_text|>\"}, "
    "\"chat_template\": \"{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m.role }}"
    "<|end_header_id|>:{{ m.content | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
    "<|start_header_id|>assistant<|end_header_id|>:{% endif %}\"}";

// Fine-tuning an imported chat model: the data rendered with its template (shard --template
// CHECKPOINT), and the sft run's checkpoints carry the template and the model's EOS ids on.
TEST(generate, sft_from_an_imported_chat_model_keeps_its_template_and_eos_ids) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *ckpt = ct_test_path("imported.h5");
    CHECK_MSG(import_with_config(ckpt, "[257, 258]", NULL, LLAMA3_STYLE_CONFIG) == 0, "%s", ct_error_message());
    ct_test_write("chats.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"hello\"}, "
                                 "{\"role\": \"assistant\", \"content\": \"k\"}]}\n"
                                 "{\"prompt\": \"hi\", \"response\": \"k k\"}\n");
    ct_test_write("run.json", "{\"train\": {\"batch_size\": 1, \"seq_len\": 32, \"max_steps\": 1, \"eval_every\": 0, "
                              "\"save_every\": 1, \"n_samples\": 0, \"eval_exact_match\": 0}, \"optim\": {\"lr\": 1e-4}, "
                              "\"run\": {\"threads\": 1}}");
    char cmd[8192], *out = NULL;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' shard --tokenizer hf/tokenizer.json --input chats.jsonl --format sft "
             "--template imported.h5 --val-fraction 0 --out sft 2>&1 && '%s' sft run.json --data.path=sft "
             "--train.init_from=imported.h5 --run.out_dir=run 2>&1", ct_test_tmpdir(), ct_test_bin(), ct_test_bin());
    int rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    CtModelConfig c;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK_MSG(ct_checkpoint_read_meta(ct_test_path("run/ckpt-step00000001.h5"), &c, &meta) == 0, "%s", ct_error_message());
    CHECK(meta.chat_template_json && meta.generation_config_json);
    CHECK_CONTAINS(meta.chat_template_json, "\"kind\":\"jinja\"");
    CHECK_CONTAINS(meta.chat_template_json, "<|start_header_id|>assistant<|end_header_id|>:");
    CHECK_CONTAINS(meta.generation_config_json, "257");
    CHECK_CONTAINS(meta.generation_config_json, "258");
    ct_checkpoint_meta_free(&meta);
}

// What `ctrain ARGS` prints (stdout and stderr); exit status in *status.
static char *run_ctrain(const char *args, int *status) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s --temperature 0 --threads 1 --max-tokens 8", ct_test_bin(), args);
    char *out = NULL;
    *status = ct_test_run(cmd, &out);
    return out;
}

// A model's own Jinja template in tokenizer_config.json (Llama 3's shape: turns end with
// <|eot_id|>, the model's EOS is <|end_of_text|> alone): import keeps it, chat and generate --chat
// render with it and stop at its end of turn.
TEST(generate, import_keeps_the_models_jinja_chat_template) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *ckpt = ct_test_path("imported.h5");
    CHECK_MSG(import_with_config(ckpt, "[257]", NULL, LLAMA3_STYLE_CONFIG) == 0, "%s", ct_error_message());
    char args[2048];
    int status;
    snprintf(args, sizeof args, "chat --checkpoint '%s' --prompt ' hello '", ckpt);
    char *out = run_ctrain(args, &status);
    CHECK_EQ_INT(status, 0);
    CHECK_STR_EQ(out, "k\n");  // the reply "k" ends at <|eot_id|>, which is no EOS of the model
    free(out);
    snprintf(args, sizeof args, "generate --checkpoint '%s' --chat --prompt hello --ids", ckpt);
    out = run_ctrain(args, &status);
    CHECK_EQ_INT(status, 0);
    // bos, <|start_header_id|> user <|end_header_id|> : hello <|eot_id|>, the generation prompt; then "k"
    CHECK_STR_EQ(out, "256 261 117 115 101 114 262 58 104 101 108 108 111 258 261 97 115 115 105 115 116 97 110 116 262 58\n107\n");
    free(out);
    snprintf(args, sizeof args, "generate --checkpoint '%s' --prompt Q", ckpt);
    out = run_ctrain(args, &status);
    CHECK_STR_EQ(out, "Qc\n");  // plain generation stops at the template's end of turn too
    free(out);
    // export writes it back into tokenizer_config.json, and importing that keeps the same template
    const char *dir = ct_test_path("exported");
    CtHfExportOptions eo = {0};
    CHECK_MSG(ct_hf_export(ckpt, dir, &eo) == 0, "%s", ct_error_message());
    char path[2048];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    char *text = ct_test_read(path, NULL);
    cJSON *config = cJSON_Parse(text);
    free(text);
    CHECK_STR_EQ(cJSON_GetObjectItem(config, "bos_token")->valuestring, "<|endoftext|>");
    CHECK_STR_EQ(cJSON_GetObjectItem(config, "eos_token")->valuestring, "<|end_of_text|>");
    CHECK_CONTAINS(cJSON_GetObjectItem(config, "chat_template")->valuestring, "{{ m.content | trim }}<|eot_id|>");
    cJSON_Delete(config);
    const char *again = ct_test_path("again.h5");
    CtHfImportOptions io = {0};
    CHECK_MSG(ct_hf_import(dir, again, &io) == 0, "%s", ct_error_message());
    CtModelConfig c1, c2;
    CtCheckpointMeta m1 = CT_CHECKPOINT_META_INIT, m2 = CT_CHECKPOINT_META_INIT;
    CHECK(ct_checkpoint_read_meta(ckpt, &c1, &m1) == 0 && ct_checkpoint_read_meta(again, &c2, &m2) == 0);
    CHECK_STR_EQ(m1.chat_template_json, m2.chat_template_json);
    ct_checkpoint_meta_free(&m1);
    ct_checkpoint_meta_free(&m2);
}

TEST(generate, stops_at_the_models_eos_ids_from_config_json) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *ckpt = ct_test_path("imported.h5");
    // A Llama-3-style list; neither id is <|endoftext|>.
    CHECK_MSG(import_with_eos(ckpt, "[257, 258]", NULL) == 0, "%s", ct_error_message());
    char args[2048];
    int status;
    snprintf(args, sizeof args, "generate --checkpoint '%s' --prompt P", ckpt);
    char *out = run_ctrain(args, &status);
    CHECK_EQ_INT(status, 0);
    CHECK_STR_EQ(out, "Pa\n");  // before: "Pa<|end_of_text|>bbbbbb"
    free(out);
    snprintf(args, sizeof args, "generate --checkpoint '%s' --prompt Q", ckpt);
    out = run_ctrain(args, &status);
    CHECK_STR_EQ(out, "Qc\n");  // the list's second id stops it too
    free(out);
    snprintf(args, sizeof args, "generate --checkpoint '%s' --prompt PP --ids", ckpt);  // ids: the prompt's, then the new ones
    out = run_ctrain(args, &status);
    CHECK_STR_EQ(out, "80 80\n97\n");
    free(out);
    // chat on the imported model (ChatML by default): its reply "h" ends at the model's EOS
    snprintf(args, sizeof args, "chat --checkpoint '%s' --prompt hello", ckpt);
    out = run_ctrain(args, &status);
    CHECK_EQ_INT(status, 0);
    CHECK_STR_EQ(out, "h\n");  // before: "h<|end_of_text|>bbbbbb"
    free(out);
}

TEST(generate, generation_config_json_overrides_config_json_as_in_transformers) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *ckpt = ct_test_path("imported.h5");
    CHECK_MSG(import_with_eos(ckpt, "258", "{\"eos_token_id\": [257], \"do_sample\": false}") == 0, "%s", ct_error_message());
    char args[2048];
    int status;
    snprintf(args, sizeof args, "generate --checkpoint '%s' --prompt P", ckpt);
    char *out = run_ctrain(args, &status);
    CHECK_STR_EQ(out, "Pa\n");
    free(out);
    snprintf(args, sizeof args, "generate --checkpoint '%s' --prompt Q", ckpt);
    out = run_ctrain(args, &status);
    CHECK_STR_EQ(out, "Qc<|eot_id|>dddddd\n");  // 258 is not an EOS of this model: it runs on
    free(out);
    // a Llama-3-style template ends turns with <|eot_id|>: chat stops there although the model's
    // EOS is <|end_of_text|> alone
    const char *tmpl = ct_test_write("llama3.json",
                                     "{\"name\": \"llama3\", \"turn_start\": \"<|start_header_id|>{role}<|end_header_id|>:\","
                                     " \"turn_end\": \"<|eot_id|>\", \"end_of_turn\": \"<|eot_id|>\","
                                     " \"trained_roles\": [\"assistant\"]}");
    snprintf(args, sizeof args, "chat --checkpoint '%s' --template '%s' --prompt hello", ckpt, tmpl);
    out = run_ctrain(args, &status);
    CHECK_EQ_INT(status, 0);
    CHECK_STR_EQ(out, "k\n");
    free(out);
}

TEST(generate, stops_at_the_end_of_turn_of_the_checkpoints_chat_template) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *ckpt = ct_test_path("sft.h5");
    CHECK(stop_fixture_checkpoint(ckpt, "{\"name\": \"chatml\", \"turn_start\": \"<|im_start|>{role}\\n\", "
                                        "\"turn_end\": \"<|im_end|>\\n\", \"end_of_turn\": \"<|im_end|>\", "
                                        "\"trained_roles\": [\"assistant\"]}") == 0);
    char args[2048];
    int status;
    snprintf(args, sizeof args, "generate --checkpoint '%s' --prompt R", ckpt);
    char *out = run_ctrain(args, &status);
    CHECK_EQ_INT(status, 0);
    CHECK_STR_EQ(out, "Re\n");  // before: "Re<|im_end|>ffffff"
    free(out);
    // without a list of EOS ids, <|endoftext|> still ends a text; other specials do not
    snprintf(args, sizeof args, "generate --checkpoint '%s' --prompt P", ckpt);
    out = run_ctrain(args, &status);
    CHECK_STR_EQ(out, "Pa<|end_of_text|>bbbbbb\n");
    free(out);
}

TEST(generate, import_refuses_a_malformed_eos_id_and_leaves_out_ids_past_the_vocabulary) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *ckpt = ct_test_path("imported.h5");
    CHECK(import_with_eos(ckpt, "[257, -1]", NULL) == -1);
    CHECK_CONTAINS(ct_error_message(), "config.json: 'eos_token_id' entry 1 is not a token id");
    FILE *fp = fopen(ckpt, "rb");
    CHECK(fp == NULL);
    // transformers' GPT2Config keeps 50256 whatever the vocabulary; the model never produces it
    CHECK_MSG(import_with_eos(ckpt, "[50256, 258]", NULL) == 0, "%s", ct_error_message());
    CtModelConfig c;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(ct_checkpoint_read_meta(ckpt, &c, &meta) == 0);
    CHECK_STR_EQ(meta.generation_config_json, "{\"eos_token_id\":[258]}");
    ct_checkpoint_meta_free(&meta);
}

// transformers (where installed) saves a model with a list of EOS ids in config.json, and one
// whose generation_config.json overrides it; import keeps the ids its generate stops at.
TEST(generate, import_keeps_the_eos_ids_transformers_generate_uses) {
    ct_log_set_level(CT_LOG_QUIET);
    const char *root = getenv("CTRAIN_ROOT"), *dir = ct_test_tmpdir();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/ref/hf_eos.py' '%s' 2>/dev/null", root ? root : ".", dir);
    char *out = NULL;
    int rc = ct_test_run(cmd, &out);
    if (rc == 127) SKIP("python3 is not installed");
    if (out && strstr(out, "SKIP: ")) {
        char why[512];
        snprintf(why, sizeof why, "%.*s", (int)strcspn(strstr(out, "SKIP: ") + 6, "\n"), strstr(out, "SKIP: ") + 6);
        free(out);
        SKIP("%s", why);
    }
    CHECK_MSG(rc == 0, "hf_eos.py failed (%d): %s", rc, out ? out : "");
    static const char *const names[2] = {"list", "override"};
    for (int k = 0; k < 2; k++) {
        char expected[256], line[64], folder[2048], want[256];
        snprintf(line, sizeof line, "%s ", names[k]);
        const char *p = strstr(out, line);
        CHECK_MSG(p, "no line for %s in: %s", names[k], out);
        p += strlen(line);
        snprintf(expected, sizeof expected, "%.*s", (int)strcspn(p, "\n"), p);
        snprintf(want, sizeof want, "{\"eos_token_id\":[%s]}", expected);
        snprintf(folder, sizeof folder, "%s/%s", dir, names[k]);
        CtHfImportOptions opt = {.skip_tokenizer = 1};
        CHECK_MSG(ct_hf_import(folder, ct_test_path("imported.h5"), &opt) == 0, "%s", ct_error_message());
        CtModelConfig c;
        CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
        CHECK(ct_checkpoint_read_meta(ct_test_path("imported.h5"), &c, &meta) == 0);
        CHECK_STR_EQ(meta.generation_config_json, want);
        ct_checkpoint_meta_free(&meta);
    }
    free(out);
}
