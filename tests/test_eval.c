// ctrain eval: the windowed mean cross-entropy (train/loop/eval_loss.h) through the binary. The
// expected values are computed here from the model's logits in double precision, window by
// window, so the windowing and averaging rule is checked apart from the code that applies it;
// tests/ref/eval_ref.py checks the same number against transformers (and PEFT) where torch is.
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/tokenizer/bpe.h"
#include "data/tokenizer/tokenizer_files.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "data/tokenizer/tokenizer_post.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/device.h"
#include "tests/hf_fixture.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/interop/checkpoint_io.h"
#include "train/model/lora.h"
#include "train/interop/lora_peft.h"

// ---- helpers ----

// Runs `ctrain eval ARGS` in the test's folder; parses the last line. Returns the exit status;
// *out (may be NULL) gets the output.
static int eval(const char *args, double *loss, long *tokens, char **out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' eval --threads 1 %s 2>&1", ct_test_tmpdir(), ct_test_bin(), args);
    char *text = NULL;
    int rc = ct_test_run(cmd, &text);
    const char *last = text ? strstr(text, "loss=") : NULL;
    *loss = NAN;
    *tokens = -1;
    if (rc == 0 && (!last || sscanf(last, "loss=%lf ppl=%*f tokens=%ld", loss, tokens) != 2)) rc = -1;
    if (out)
        *out = text;
    else
        free(text);
    return rc;
}

// Checks that `ctrain eval ARGS` succeeds; returns the loss (NAN after recording a failure).
static double eval_ok(const char *args, long *tokens) {
    char *out;
    double loss;
    long n;
    int rc = eval(args, &loss, &n, &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "ctrain eval %s: exit %d: %s", args, rc, out ? out : "");
    free(out);
    if (tokens) *tokens = n;
    return rc == 0 ? loss : NAN;
}

// Checks that `ctrain eval ARGS` exits with `status` and prints `message`.
static int eval_fails(const char *args, int status, const char *message) {
    char *out;
    double loss;
    long n;
    int rc = eval(args, &loss, &n, &out);
    int ok = rc == status && out && strstr(out, message);
    if (!ok)
        ct_test_fail(__FILE__, __LINE__, "ctrain eval %s: want exit %d with \"%s\", got %d: %s", args, status, message,
                     rc, out ? out : "");
    free(out);
    return ok;
}

// The ids of `text` under a tokenizer.json text (no specials).
static CtIds encode(const char *tokenizer_json, const char *text) {
    CtTokenizer t;
    CtIds ids = {0};
    if (ct_tokenizer_parse_hf(&t, tokenizer_json, strlen(tokenizer_json), "test", NULL) != 0) return ids;
    CtEncoder *e = ct_encoder_new(&t);
    ct_encode(e, (const uint8_t *)text, strlen(text), 0, &ids);
    ct_encoder_free(e);
    ct_tokenizer_free(&t);
    return ids;
}

// The rule, computed apart: the stream cut into n = len/T windows; each window's logits from a
// forward of its own T tokens; -log softmax in double at positions 0..T-2 against tokens 1..T-1;
// the mean over all of them. *predicted gets n·(T-1). NAN when the checkpoint does not load.
static double expected_loss(const char *ckpt, const int32_t *ids, size_t len, int T, long *predicted) {
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    *predicted = 0;
    ct_cpu_set_threads(1);  // the loops below are serial: no OpenMP threads spinning beside them
    if (ct_checkpoint_load(ckpt, &m, ct_ops_cpu(), 1, T, 0, NULL, &meta) != 0) return NAN;
    ct_checkpoint_meta_free(&meta);
    const int V = m.config.vocab_size;
    double sum = 0;
    long count = 0;
    for (size_t w = 0; (w + 1) * (size_t)T <= len; w++) {
        CtBatch batch = {.tokens = ids + w * (size_t)T, .B = 1, .T = T};
        ct_model_forward(&m, &batch);
        const float *logits = ct_model_logits(&m);
        for (int t = 0; t + 1 < T; t++) {
            const float *row = logits + (size_t)t * V;
            double max = row[0], z = 0;
            for (int v = 1; v < V; v++) max = fmax(max, row[v]);
            for (int v = 0; v < V; v++) z += exp((double)row[v] - max);
            sum += max + log(z) - row[ids[w * (size_t)T + (size_t)t + 1]];
            count++;
        }
    }
    ct_model_free(&m);
    *predicted = count;
    return count ? sum / (double)count : NAN;
}

// Saves m with a tokenizer.json text (NULL: none) and that tokenizer's fingerprint.
static int save_with_tokenizer(const char *path, const CtModel *m, const char *tokenizer_json) {
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (tokenizer_json) {
        meta.tokenizer_json = ct_strdup(tokenizer_json);
        CtTokenizer t;
        if (ct_tokenizer_parse_hf(&t, tokenizer_json, strlen(tokenizer_json), "test", NULL) != 0) return -1;
        meta.tokenizer_hash = ct_tokenizer_fingerprint(&t);
        ct_tokenizer_free(&t);
    }
    int rc = ct_checkpoint_save(path, m, NULL, &meta);
    ct_checkpoint_meta_free(&meta);
    return rc;
}

// A checkpoint of the fixture's shape with random parameters (larger than GPT-2's init, so that
// every layer shapes the logits) and the 260-token fixture tokenizer, in the test's folder.
static const char *fixture(const char *name, CtArch arch, uint64_t seed) {
    CtModelConfig c = hf_fixture_config(arch, arch == CT_ARCH_GPT2);
    const char *path = ct_test_path(name);
    CtModel m;
    char *tok = hf_fixture_tokenizer_json();
    int rc = ct_model_create(&m, &c, ct_ops_cpu(), 1, 1, 0);
    if (rc == 0) {
        tiny_randomize_params(&m, seed);
        rc = save_with_tokenizer(path, &m, tok);
        ct_model_free(&m);
    }
    free(tok);
    if (rc != 0) {
        ct_test_fail(__FILE__, __LINE__, "fixture checkpoint: %s", ct_error_message());
        return NULL;
    }
    return path;
}

// A tokenizer of the 256 bytes and <|endoftext|> only: another tokenizer than the fixture's.
static char *bytes_tokenizer_json(void) {
    CtTokenizer t;
    ct_tokenizer_init(&t, CT_PATTERN_GPT2, CT_MERGES_BY_LIST);
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        ct_tokenizer_add(&t, b, &byte, 1, CT_TOKEN_NORMAL);
    }
    ct_tokenizer_add(&t, 256, (const uint8_t *)"<|endoftext|>", 13, CT_TOKEN_SPECIAL);
    char *json = ct_tokenizer_finish(&t) == 0 ? ct_tokenizer_hf_json(&t) : NULL;
    ct_tokenizer_free(&t);
    return json;
}

static const char TEXT[] = "the cat sat on the mat; the dog ate the hat. Then the end of the tale, the moral: "
                           "hold the hat.\nA second line, with the same words: the cat, the mat, the hat.\n";

// ---- the rule ----

TEST(eval, a_uniform_model_gives_log_vocab_over_whole_windows) {
    // all parameters zero: every norm outputs 0, the logits are all 0, each prediction costs
    // ln V exactly. 50 tokens ('x' is one token each) in windows of 8: 6 windows, 7 predictions
    // each; 2 tokens of a partial window left out.
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 0);
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 1, 1, 0), 0);
    memset(m.params, 0, m.n_params * sizeof(float));
    char *tok = hf_fixture_tokenizer_json();
    CHECK_EQ_INT(save_with_tokenizer(ct_test_path("zero.h5"), &m, tok), 0);
    free(tok);
    ct_model_free(&m);
    char text[51];
    memset(text, 'x', 50);
    text[50] = 0;
    ct_test_write("x.txt", text);
    long tokens;
    double loss = eval_ok("--checkpoint zero.h5 --text x.txt --seq 8", &tokens);
    CHECK_NEAR(loss, log(264.0), 1e-6);
    CHECK_EQ_INT(tokens, 6 * 7);
    char *out;
    CHECK_EQ_INT(eval("--checkpoint zero.h5 --text x.txt --seq 8", &loss, &tokens, &out), 0);
    CHECK_CONTAINS(out, "ppl=264.0000 tokens=42");
    CHECK_CONTAINS(out, "6 windows of 8 (2 tokens past the last window left out)");
    free(out);
    // --max-tokens 20: the first 2 windows; 16: exactly 2
    eval_ok("--checkpoint zero.h5 --text x.txt --seq 8 --max-tokens 20", &tokens);
    CHECK_EQ_INT(tokens, 2 * 7);
    eval_ok("--checkpoint zero.h5 --text x.txt --seq 8 --max-tokens 16", &tokens);
    CHECK_EQ_INT(tokens, 2 * 7);
}

static void check_rule(CtArch arch) {
    const char *ckpt = fixture("model.h5", arch, 7);
    if (!ckpt) return;
    ct_test_write("tale.txt", TEXT);
    char *tok = hf_fixture_tokenizer_json();
    CtIds ids = encode(tok, TEXT);
    free(tok);
    CHECK(ids.len > 60);
    for (int T = 5; T <= 16; T += 11) {  // 5, and 16: the model's context
        long want_tokens, tokens;
        double want = expected_loss(ckpt, ids.data, ids.len, T, &want_tokens);
        char args[256];
        snprintf(args, sizeof args, "--checkpoint model.h5 --text tale.txt --seq %d", T);
        double got = eval_ok(args, &tokens);
        CHECK_EQ_INT(tokens, (long)(ids.len / (size_t)T) * (T - 1));
        CHECK_EQ_INT(tokens, want_tokens);
        CHECK_NEAR(got, want, 1e-6 * want);
        // windows batched 1, 3 (a short last batch) or all at once: the same sum
        for (int B = 1; B <= 3; B += 2) {
            snprintf(args, sizeof args, "--checkpoint model.h5 --text tale.txt --seq %d --batch %d", T, B);
            CHECK_NEAR(eval_ok(args, NULL), got, 2e-6 * got);
        }
    }
    // the default window is the context length
    long tokens;
    eval_ok("--checkpoint model.h5 --text tale.txt", &tokens);
    CHECK_EQ_INT(tokens, (long)(ids.len / 16) * 15);
    ct_ids_free(&ids);
}

TEST(eval, gpt2_windows_average_every_predicted_token) { check_rule(CT_ARCH_GPT2); }
TEST(eval, llama_windows_average_every_predicted_token) { check_rule(CT_ARCH_LLAMA); }

// A tokenizer whose post-processor adds a BOS (as Llama 3's does): the text's stream starts
// with it, as tokenizer(text) gives it in transformers.
TEST(eval, a_tokenizer_that_adds_a_bos_starts_the_stream_with_it) {
    char *tok = hf_fixture_tokenizer_json();
    cJSON *root = cJSON_Parse(tok);
    CHECK(root);
    cJSON_ReplaceItemInObject(
        root, "post_processor",
        cJSON_Parse("{\"type\":\"Sequence\",\"processors\":[{\"type\":\"ByteLevel\",\"trim_offsets\":false},"
                    "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<|endoftext|>\",\"type_id\":0}},"
                    "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{\"<|endoftext|>\":"
                    "{\"id\":\"<|endoftext|>\",\"ids\":[259],\"tokens\":[\"<|endoftext|>\"]}}}]}"));
    char *json = cJSON_Print(root);
    cJSON_Delete(root);
    CtPostProcessor post;
    CHECK_EQ_INT(ct_post_processor_parse(json, "test", &post), 0);
    CHECK_EQ_INT(post.n_prefix, 1);
    CHECK_EQ_INT(post.prefix[0], 259);
    CHECK_EQ_INT(post.n_suffix, 0);

    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 0);
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 1, 1, 0), 0);
    tiny_randomize_params(&m, 3);
    CHECK_EQ_INT(save_with_tokenizer(ct_test_path("bos.h5"), &m, json), 0);
    CHECK_EQ_INT(save_with_tokenizer(ct_test_path("plain.h5"), &m, tok), 0);
    ct_model_free(&m);
    ct_test_write("tale.txt", TEXT);
    CtIds text_ids = encode(tok, TEXT), ids = {0};
    ct_ids_push(&ids, 259);
    for (size_t i = 0; i < text_ids.len; i++) ct_ids_push(&ids, text_ids.data[i]);
    long want_tokens, tokens;
    double want = expected_loss(ct_test_path("bos.h5"), ids.data, ids.len, 16, &want_tokens);
    double got = eval_ok("--checkpoint bos.h5 --text tale.txt", &tokens);
    CHECK_EQ_INT(tokens, want_tokens);
    CHECK_NEAR(got, want, 1e-6 * want);
    // the same weights without the BOS: another stream, another loss
    CHECK(fabs(eval_ok("--checkpoint plain.h5 --text tale.txt", NULL) - got) > 1e-4);
    // --tokenizer FILE.json brings its post-processor too
    ct_test_write("bos_tokenizer.json", json);
    CHECK_NEAR(eval_ok("--checkpoint plain.h5 --text tale.txt --tokenizer bos_tokenizer.json", NULL), got, 1e-9);
    // a post-processor ctrain cannot reproduce is refused, not ignored, and so is a malformed one
    CHECK(ct_post_processor_parse("{\"post_processor\": {\"type\": \"SpecialProcessing\"}}", "t.json", &post) != 0);
    CHECK_CONTAINS(ct_error_message(), "t.json: post_processor type \"SpecialProcessing\" is not supported");
    CHECK(ct_post_processor_parse("{\"post_processor\": {\"type\": \"RobertaProcessing\"}}", "t.json", &post) != 0);
    CHECK_CONTAINS(ct_error_message(), "t.json: post_processor RobertaProcessing.sep is not");
    ct_ids_free(&ids);
    ct_ids_free(&text_ids);
    free(json);
    free(tok);
}

// ---- the three sources agree ----

// docs.jsonl -> data/ with the fixture tokenizer (tok.json). 0, or -1 after recording a failure.
static int shard(const char *val_fraction) {
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' shard --tokenizer tok.json --input docs.jsonl --out data --val-fraction %s 2>&1",
             ct_test_tmpdir(), ct_test_bin(), val_fraction);
    int rc = ct_test_run(cmd, &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "shard: %s", out ? out : "");
    free(out);
    return rc;
}

TEST(eval, text_jsonl_and_data_give_the_same_loss_for_the_same_stream) {
    const char *ckpt = fixture("model.h5", CT_ARCH_GPT2, 11);
    if (!ckpt) return;
    char *tok = hf_fixture_tokenizer_json();
    ct_test_write("tok.json", tok);
    // one document: --jsonl appends <|endoftext|> (id 259), which completes no window of 8 here,
    // so both cut the same windows
    char text[51], line[128];
    memset(text, 'y', 50);
    memcpy(text, "the ", 4);
    text[50] = 0;
    CtIds ids = encode(tok, text);
    CHECK(ids.len % 8 != 7);
    ct_test_write("one.txt", text);
    snprintf(line, sizeof line, "{\"text\": \"%s\"}\n", text);
    ct_test_write("one.jsonl", line);
    double from_text = eval_ok("--checkpoint model.h5 --text one.txt --seq 8", NULL);
    CHECK_NEAR(eval_ok("--checkpoint model.h5 --jsonl one.jsonl --seq 8", NULL), from_text, 1e-9);
    ct_ids_free(&ids);

    // several documents: --jsonl and the dataset `ctrain shard` makes of the same file are one stream
    ct_test_write("docs.jsonl", "{\"text\": \"the cat sat on the mat\"}\n\n{\"text\": \"\"}\n"
                                "{\"text\": \"the hat, the hat, the hat!\"}\n{\"text\": \"then the end of the tale\"}\n"
                                "{\"text\": \"hold the hat: the moral of the tale of the cat\"}\n");
    if (shard("0") != 0) return;
    char *out = NULL;
    long n_jsonl, n_data;
    double jsonl = eval_ok("--checkpoint model.h5 --jsonl docs.jsonl --seq 6", &n_jsonl);
    double data;
    CHECK_EQ_INT(eval("--checkpoint model.h5 --data data --seq 6", &data, &n_data, &out), 0);
    CHECK_CONTAINS(out, "data has no validation split; evaluating its train split");
    free(out);
    CHECK_EQ_INT(n_jsonl, n_data);
    CHECK_NEAR(data, jsonl, 1e-9);
    // and both are the rule over documents + <|endoftext|> each
    CtIds stream = {0};
    const char *docs[] = {"the cat sat on the mat", "the hat, the hat, the hat!", "then the end of the tale",
                          "hold the hat: the moral of the tale of the cat"};
    for (int d = 0; d < 4; d++) {
        CtIds part = encode(tok, docs[d]);
        for (size_t i = 0; i < part.len; i++) ct_ids_push(&stream, part.data[i]);
        ct_ids_push(&stream, 259);
        ct_ids_free(&part);
    }
    long want_tokens;
    double want = expected_loss(ckpt, stream.data, stream.len, 6, &want_tokens);
    CHECK_EQ_INT(n_jsonl, want_tokens);
    CHECK_NEAR(jsonl, want, 1e-6 * want);
    ct_ids_free(&stream);
    free(tok);
}

TEST(eval, data_evaluates_the_validation_split_when_there_is_one) {
    const char *ckpt = fixture("model.h5", CT_ARCH_LLAMA, 5);
    if (!ckpt) return;
    char *tok = hf_fixture_tokenizer_json();
    ct_test_write("tok.json", tok);
    free(tok);
    char docs[8192] = "";
    for (int d = 0; d < 40; d++) {
        char line[160];
        snprintf(line, sizeof line, "{\"text\": \"document %d: the cat %d sat on the mat %d times, the end\"}\n", d,
                 d * 7, d % 5);
        strcat(docs, line);
    }
    ct_test_write("docs.jsonl", docs);
    if (shard("0.3") != 0) return;
    char *out = NULL;
    int rc_shard;
    double loss, val, train;
    long n, n_val, n_train;
    CHECK_EQ_INT(eval("--checkpoint model.h5 --data data", &loss, &n, &out), 0);
    CHECK_CONTAINS(out, "on data val:");
    free(out);
    val = eval_ok("--checkpoint model.h5 --data data --split val", &n_val);
    train = eval_ok("--checkpoint model.h5 --data data --split train", &n_train);
    CHECK_NEAR(loss, val, 1e-9);
    CHECK_EQ_INT(n, n_val);
    CHECK(n_train > n_val);
    CHECK(fabs(train - val) > 1e-6);
    eval_fails("--checkpoint model.h5 --data data --split test", 1, "--split must be train or val (got 'test')");
    // a dataset of SFT examples is not a text stream
    ct_test_write("chats.jsonl", "{\"prompt\": \"the cat?\", \"response\": \"sat on the mat\"}\n");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' shard --tokenizer tok.json --input chats.jsonl --format sft --out sft "
             "--val-fraction 0 2>&1", ct_test_tmpdir(), ct_test_bin());
    rc_shard = ct_test_run(cmd, &out);
    CHECK_MSG(rc_shard == 0, "shard: %s", out);
    free(out);
    eval_fails("--checkpoint model.h5 --data sft", 1, "sft: holds sft examples; eval reads text datasets");
    // shards of another tokenizer are refused
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 0);
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 1, 1, 0), 0);
    char *other_tok = bytes_tokenizer_json();
    int saved = save_with_tokenizer(ct_test_path("other.h5"), &m, other_tok);
    free(other_tok);
    ct_model_free(&m);
    CHECK_EQ_INT(saved, 0);
    eval_fails("--checkpoint other.h5 --data data", 1, "shards were made with tokenizer");
}

// ---- LoRA ----

// A base, a LoRA run's checkpoint over it with random adapters, the same adapters as a PEFT
// folder, and the merged model (W + s·B·A) as a plain checkpoint.
static int make_lora(CtArch arch) {
    const char *base = fixture("base.h5", arch, 21);
    if (!base) return -1;
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_load(base, &m, ct_ops_cpu(), 1, 1, CT_MODEL_FROZEN, NULL, &meta) != 0) return -1;
    CtLoraSpec spec = {.r = 4, .alpha = 8};
    snprintf(spec.targets, sizeof spec.targets, "%s", arch == CT_ARCH_GPT2 ? "c_attn,c_fc" : "q_proj,v_proj,down_proj");
    int rc = ct_lora_attach(&m, &spec);
    if (rc == 0) {
        CtRng rng;
        ct_rng_seed(&rng, 99);
        for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = 0.3f * (float)ct_rng_normal(&rng);
        char abs[PATH_MAX];
        snprintf(m.lora->base_path, sizeof m.lora->base_path, "%s", realpath(base, abs) ? abs : base);
        m.lora->base_hash = ct_lora_base_hash(&m);
        rc = ct_checkpoint_save(ct_test_path("lora.h5"), &m, NULL, &meta);
        if (rc == 0) rc = ct_lora_save_peft(&m, ct_test_path("peft"), base);
        if (rc == 0) {
            ct_lora_merge(&m);
            rc = ct_checkpoint_save(ct_test_path("merged.h5"), &m, NULL, &meta);
        }
    }
    ct_checkpoint_meta_free(&meta);
    ct_model_free(&m);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "making the LoRA fixtures: %s", ct_error_message());
    return rc;
}

static void check_adapters(CtArch arch) {
    if (make_lora(arch) != 0) return;
    ct_test_write("tale.txt", TEXT);
    long n_merged, n;
    double merged = eval_ok("--checkpoint merged.h5 --text tale.txt", &n_merged);
    double base = eval_ok("--checkpoint base.h5 --text tale.txt", NULL);
    CHECK(fabs(merged - base) > 1e-3);  // the adapters change the model
    // the PEFT folder over the base, the LoRA run's checkpoint as --adapter, and alone
    CHECK_NEAR(eval_ok("--checkpoint base.h5 --adapter peft --text tale.txt", &n), merged, 1e-5 * merged);
    CHECK_EQ_INT(n, n_merged);
    CHECK_NEAR(eval_ok("--checkpoint base.h5 --adapter lora.h5 --text tale.txt", &n), merged, 1e-5 * merged);
    CHECK_NEAR(eval_ok("--checkpoint lora.h5 --text tale.txt", &n), merged, 1e-5 * merged);
    // over another base: refused
    if (!fixture("other.h5", arch, 22)) return;
    eval_fails("--checkpoint other.h5 --adapter lora.h5 --text tale.txt", 1, "whose parameters differ from --checkpoint other.h5");
    eval_fails("--checkpoint other.h5 --adapter peft --text tale.txt", 1, "peft");
    eval_fails("--checkpoint base.h5 --adapter merged.h5 --text tale.txt", 1, "merged.h5: holds no LoRA adapters");
}

TEST(eval, gpt2_adapters_from_peft_or_a_lora_run_equal_the_merged_model) { check_adapters(CT_ARCH_GPT2); }
TEST(eval, llama_adapters_from_peft_or_a_lora_run_equal_the_merged_model) { check_adapters(CT_ARCH_LLAMA); }

// ---- errors ----

TEST(eval, a_wrong_command_line_is_a_usage_error) {
    if (!fixture("model.h5", CT_ARCH_GPT2, 1)) return;
    ct_test_write("tale.txt", TEXT);
    ct_test_write("tale.jsonl", "{\"text\": \"the cat sat on the mat\"}\n");
    eval_fails("--text tale.txt", 2, "--checkpoint FILE is required");
    eval_fails("--checkpoint model.h5", 2, "give one of --text FILE, --jsonl FILE or --data DIR");
    eval_fails("--checkpoint model.h5 --text tale.txt --jsonl tale.jsonl", 2, "give one of");
    eval_fails("--checkpoint model.h5 --text tale.txt --seq 17", 2,
               "--seq 17: a window holds 2 to 16 tokens (the model's context length)");
    eval_fails("--checkpoint model.h5 --text tale.txt --seq 1", 2, "a window holds 2 to 16 tokens");
    eval_fails("--checkpoint model.h5 --text tale.txt --batch 0", 2, "--batch must be between 1 and 1048576 (got 0)");
    eval_fails("--checkpoint model.h5 --text tale.txt --seq 4294967298", 2, "--seq must be between 1 and 16777216");
    eval_fails("--checkpoint model.h5 --text tale.txt --split val", 2, "--split goes with --data");
    eval_fails("--checkpoint model.h5 --text tale.txt --device tpu", 2, "--device must be cpu, cuda or auto");
}

TEST(eval, bad_inputs_get_one_line_errors) {
    if (!fixture("model.h5", CT_ARCH_GPT2, 1)) return;
    ct_test_write("tale.txt", TEXT);
    ct_test_write("short.txt", "the cat");
    ct_test_write("tale.jsonl", "{\"text\": \"the cat sat on the mat\"}\n");
    ct_test_write("broken.jsonl", "{\"text\": \"the cat sat on the mat\"}\n{\"txt\": 1}\n");
    CtModelConfig c = hf_fixture_config(CT_ARCH_GPT2, 1);
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 1, 1, 0), 0);
    CHECK_EQ_INT(save_with_tokenizer(ct_test_path("bare.h5"), &m, NULL), 0);
    ct_model_free(&m);
    eval_fails("--checkpoint model.h5 --text short.txt", 1,
               "short.txt: 6 tokens, fewer than one window of 16 (give a smaller --seq)");
    eval_fails("--checkpoint model.h5 --text tale.txt --seq 8 --max-tokens 7", 1,
               "tale.txt: 7 tokens under --max-tokens, fewer than one window of 8");
    eval_fails("--checkpoint bare.h5 --text tale.txt", 1, "bare.h5: the checkpoint carries no tokenizer; name one with --tokenizer");
    eval_fails("--checkpoint missing.h5 --text tale.txt", 1, "missing.h5");
    eval_fails("--checkpoint model.h5 --text missing.txt", 1, "missing.txt");
    eval_fails("--checkpoint model.h5 --text tale.jsonl", 1, "tale.jsonl: is JSON lines; evaluate the \"text\" of its lines with --jsonl");
    eval_fails("--checkpoint model.h5 --jsonl tale.txt", 1, "tale.txt: --jsonl reads .jsonl or .json files");
    eval_fails("--checkpoint model.h5 --jsonl broken.jsonl --seq 4", 1, "broken.jsonl:2: no string field \"text\"");
    eval_fails("--checkpoint model.h5 --jsonl tale.jsonl --eot '<|im_end|>'", 1,
               "the tokenizer has no special token <|im_end|> to end each JSON line's document with");
    eval_fails("--checkpoint model.h5 --data nowhere", 1, "nowhere");
    eval_fails("--checkpoint model.h5 --text tale.txt --adapter nowhere", 1, "nowhere");
    // a tokenizer larger than the model's vocabulary: the first id past it is named
    CtModelConfig small = hf_fixture_config(CT_ARCH_GPT2, 1);
    small.vocab_size = 200;
    CHECK_EQ_INT(ct_model_create(&m, &small, ct_ops_cpu(), 1, 1, 0), 0);
    char *tok = hf_fixture_tokenizer_json();
    CHECK_EQ_INT(save_with_tokenizer(ct_test_path("small.h5"), &m, tok), 0);
    free(tok);
    ct_model_free(&m);
    eval_fails("--checkpoint small.h5 --text tale.txt", 1, "outside the model's vocabulary of 200");
}

// ---- real sizes ----

// GPT-2's tokenizer (50257 tokens) over a corpus of real sentences: the rule holds at a real
// vocabulary, with a checkpoint that names its tokenizer on the command line.
TEST(eval, gpt2_tokenizer_on_a_real_corpus) {
    const char *shared = ct_test_shared_data();
    char gpt2[1024], corpus[1024];
    snprintf(gpt2, sizeof gpt2, "%s/tokenizers/gpt2", shared);
    snprintf(corpus, sizeof corpus, "%s/corpora/nlp-corpus-40k.txt", shared);
    size_t size;
    char *all = ct_test_read(corpus, &size);
    CHECK(all && size > 8000);
    all[8000] = 0;
    ct_test_write("corpus.txt", all);
    CtTokenizer t;
    CHECK_EQ_INT(ct_tokenizer_load(&t, gpt2, NULL), 0);
    CtIds ids = {0};
    CtEncoder *e = ct_encoder_new(&t);
    ct_encode(e, (const uint8_t *)all, strlen(all), 0, &ids);
    ct_encoder_free(e);
    ct_tokenizer_free(&t);
    free(all);
    CtModelConfig c = hf_fixture_config(CT_ARCH_GPT2, 1);
    c.vocab_size = 50257;
    c.max_seq_len = 64;
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 1, 1, 0), 0);
    tiny_randomize_params(&m, 4);
    CHECK_EQ_INT(save_with_tokenizer(ct_test_path("gpt2.h5"), &m, NULL), 0);
    ct_model_free(&m);
    long want_tokens, tokens;
    double want = expected_loss(ct_test_path("gpt2.h5"), ids.data, ids.len, 64, &want_tokens);
    char args[2048];
    snprintf(args, sizeof args, "--checkpoint gpt2.h5 --tokenizer '%s' --text corpus.txt", gpt2);
    double got = eval_ok(args, &tokens);
    CHECK_EQ_INT(tokens, want_tokens);
    CHECK_EQ_INT(tokens, (long)(ids.len / 64) * 63);
    CHECK_NEAR(got, want, 1e-6 * want);
    // the same text sharded with the same tokenizer (one document, + <|endoftext|>, which
    // completes no window here): the same windows
    CHECK(ids.len % 64 != 63);
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' shard --tokenizer '%s' --input corpus.txt --out data --val-fraction 0 2>&1",
             ct_test_tmpdir(), ct_test_bin(), gpt2);
    int rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "shard: %s", out);
    free(out);
    snprintf(args, sizeof args, "--checkpoint gpt2.h5 --tokenizer '%s' --data data", gpt2);
    CHECK_NEAR(eval_ok(args, &tokens), got, 1e-9);
    CHECK_EQ_INT(tokens, want_tokens);
    ct_ids_free(&ids);
}

// ---- against transformers (and PEFT) ----

static int export_hf(const char *ckpt, const char *dir) {
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' export hf %s --out %s 2>&1", ct_test_tmpdir(), ct_test_bin(), ckpt, dir);
    int rc = ct_test_run(cmd, &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "export hf %s: %s", ckpt, out ? out : "");
    free(out);
    return rc;
}

// Runs tests/ref/eval_ref.py on `cases` (JSON); *out gets its output (free it). Skips without torch.
static int reference(const char *cases, char **out) {
    ct_test_write("cases.json", cases);
    const char *root = getenv("CTRAIN_ROOT");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && python3 '%s/tests/ref/eval_ref.py' cases.json 2>&1", ct_test_tmpdir(),
             root ? root : ".");
    int rc = ct_test_run(cmd, out);
    if (rc == 127) SKIP("python3 is not installed");
    const char *skip = *out ? strstr(*out, "SKIP:") : NULL;
    if (skip) {
        char reason[512];
        snprintf(reason, sizeof reason, "%s", skip + 6);
        reason[strcspn(reason, "\n")] = 0;
        SKIP("%s", reason);
    }
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "eval_ref.py: exit %d: %s", rc, *out ? *out : "");
    return rc;
}

// Case `i` of the reference output against `ctrain eval ARGS`, relative 1e-5, same token count.
static void check_case(const char *ref_out, int i, const char *args) {
    char key[32];
    snprintf(key, sizeof key, "case %d: loss=", i);
    const char *at = strstr(ref_out, key);
    double want;
    long want_tokens;
    if (!at || sscanf(at + strlen(key), "%lf tokens=%ld", &want, &want_tokens) != 2) {
        ct_test_fail(__FILE__, __LINE__, "no case %d in: %s", i, ref_out);
        return;
    }
    long tokens;
    double got = eval_ok(args, &tokens);
    if (tokens != want_tokens || !(fabs(got - want) <= 1e-5 * want))
        ct_test_fail(__FILE__, __LINE__, "ctrain eval %s: loss %.9f over %ld tokens; transformers %.9f over %ld", args,
                     got, tokens, want, want_tokens);
}

// Both families, a text and JSON lines, two window lengths, and a PEFT adapter: one Python
// process (importing torch takes a while).
TEST(eval, matches_transformers_and_peft) {
    if (!fixture("gpt2.h5", CT_ARCH_GPT2, 31) || export_hf("gpt2.h5", "hf-gpt2") != 0) return;
    if (make_lora(CT_ARCH_LLAMA) != 0 || export_hf("base.h5", "hf-llama") != 0) return;
    ct_test_write("tale.txt", TEXT);
    ct_test_write("docs.jsonl", "{\"text\": \"the cat sat on the mat\"}\n{\"text\": \"the hat, the hat, the hat!\"}\n"
                                "{\"text\": \"then the end of the tale; hold the hat: the moral of the tale\"}\n");
    char *out = NULL;
    if (reference("[{\"model\": \"hf-gpt2\", \"text\": \"tale.txt\", \"seq\": 16},"
                  " {\"model\": \"hf-gpt2\", \"text\": \"tale.txt\", \"seq\": 7},"
                  " {\"model\": \"hf-llama\", \"text\": \"tale.txt\", \"seq\": 16},"
                  " {\"model\": \"hf-llama\", \"jsonl\": \"docs.jsonl\", \"seq\": 9},"
                  " {\"model\": \"hf-llama\", \"adapter\": \"peft\", \"text\": \"tale.txt\", \"seq\": 16}]",
                  &out) != 0) {
        free(out);
        return;
    }
    check_case(out, 0, "--checkpoint gpt2.h5 --text tale.txt");
    check_case(out, 1, "--checkpoint gpt2.h5 --text tale.txt --seq 7 --batch 2");
    check_case(out, 2, "--checkpoint base.h5 --text tale.txt");
    check_case(out, 3, "--checkpoint base.h5 --jsonl docs.jsonl --seq 9");
    check_case(out, 4, "--checkpoint base.h5 --adapter peft --text tale.txt");
    check_case(out, 4, "--checkpoint base.h5 --adapter lora.h5 --text tale.txt");
    free(out);
}

TEST(eval, matches_transformers_with_the_gpt2_tokenizer) {
    const char *shared = ct_test_shared_data();
    char gpt2[1024], corpus[1024], cases[4096];
    snprintf(gpt2, sizeof gpt2, "%s/tokenizers/gpt2", shared);
    snprintf(corpus, sizeof corpus, "%s/corpora/nlp-corpus-40k.txt", shared);
    size_t size;
    char *all = ct_test_read(corpus, &size);
    CHECK(all && size > 12000);
    all[12000] = 0;
    ct_test_write("corpus.txt", all);
    free(all);
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 0);
    c.vocab_size = 50257;
    c.max_seq_len = 128;
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 1, 1, 0), 0);
    tiny_randomize_params(&m, 6);
    CHECK_EQ_INT(save_with_tokenizer(ct_test_path("big.h5"), &m, NULL), 0);
    ct_model_free(&m);
    if (export_hf("big.h5", "hf-big") != 0) return;
    snprintf(cases, sizeof cases, "[{\"model\": \"hf-big\", \"gpt2_tokenizer\": \"%s\", \"text\": \"corpus.txt\", \"seq\": 128}]",
             gpt2);
    char *out = NULL;
    if (reference(cases, &out) != 0) {
        free(out);
        return;
    }
    char args[2048];
    snprintf(args, sizeof args, "--checkpoint big.h5 --tokenizer '%s' --text corpus.txt", gpt2);
    check_case(out, 0, args);
    free(out);
}

// SentencePiece-style tokenizers (tests/ref/make_hf_tokenizer_kinds.py: Llama 2's shape with
// its Prepend normalizer and BOS, Gemma's with Replace only and <bos>, Mistral's Metaspace) in a
// checkpoint: ctrain eval's token stream (tokens and BOS) must be transformers' tokenizer(text),
// or the losses differ.
TEST(eval, matches_transformers_with_sentencepiece_tokenizers) {
    const char *root = getenv("CTRAIN_ROOT"), *shared = ct_test_shared_data();
    if (!root) SKIP("CTRAIN_ROOT is not set (run through make test)");
    char cmd[4096], *out = NULL, corpus[1024];
    snprintf(cmd, sizeof cmd, "python3 %s/tests/ref/make_hf_tokenizer_kinds.py %s %s/kinds", root, shared, ct_test_tmpdir());
    int rc = ct_test_run(cmd, &out);
    if (rc == 77 || rc == 127) SKIP("%s", out && *out ? out : "python3 is absent");
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    snprintf(corpus, sizeof corpus, "%s/corpora/nlp-corpus-40k.txt", shared);
    size_t size;
    char *all = ct_test_read(corpus, &size);
    CHECK(all && size > 6000);
    memcpy(all + 5000, "\n  caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac  two  spaces\n", 30);  // byte fallback, spaces
    all[6000] = 0;
    ct_test_write("spm.txt", all);
    free(all);
    static const char *const kinds[] = {"llama2", "gemma", "mistral"};
    for (int k = 0; k < 3; k++) {
        char path[1200], name[64], dir[64];
        snprintf(path, sizeof path, "%s/kinds/%s/tokenizer.json", ct_test_tmpdir(), kinds[k]);
        char *json = ct_test_read(path, NULL);
        CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 0);
        c.vocab_size = 1800;  // the test vocabularies have about 1,760 ids
        c.max_seq_len = 32;
        CtModel m;
        CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 1, 1, 0), 0);
        tiny_randomize_params(&m, 40 + (uint64_t)k);
        snprintf(name, sizeof name, "spm-%s.h5", kinds[k]);
        snprintf(dir, sizeof dir, "hf-spm-%s", kinds[k]);
        CHECK_EQ_INT(save_with_tokenizer(ct_test_path(name), &m, json), 0);
        ct_model_free(&m);
        free(json);
        if (export_hf(name, dir) != 0) return;
    }
    if (reference("[{\"model\": \"hf-spm-llama2\", \"text\": \"spm.txt\", \"seq\": 32},"
                  " {\"model\": \"hf-spm-gemma\", \"text\": \"spm.txt\", \"seq\": 32},"
                  " {\"model\": \"hf-spm-mistral\", \"text\": \"spm.txt\", \"seq\": 32}]",
                  &out) != 0) {
        free(out);
        return;
    }
    check_case(out, 0, "--checkpoint spm-llama2.h5 --text spm.txt");
    check_case(out, 1, "--checkpoint spm-gemma.h5 --text spm.txt");
    check_case(out, 2, "--checkpoint spm-mistral.h5 --text spm.txt");
    free(out);
}

// ---- on a GPU (the CUDA emulation runs it too) ----

TEST(cuda, eval_on_the_gpu_matches_the_cpu) {
    if (!ct_ops_select("cuda")) SKIP("%s", ct_error_message());
    if (make_lora(CT_ARCH_LLAMA) != 0) return;
    ct_test_write("tale.txt", TEXT);
    const char *runs[] = {"--checkpoint base.h5 --text tale.txt --seq 12",
                          "--checkpoint base.h5 --adapter peft --text tale.txt --batch 2"};
    for (int i = 0; i < 2; i++) {
        char args[512];
        long n_cpu, n_gpu;
        double cpu = eval_ok(runs[i], &n_cpu);
        snprintf(args, sizeof args, "%s --device cuda --precision fp32", runs[i]);
        double gpu = eval_ok(args, &n_gpu);
        CHECK_EQ_INT(n_gpu, n_cpu);
        CHECK_NEAR(gpu, cpu, 1e-5 * cpu);
        snprintf(args, sizeof args, "%s --device cuda", runs[i]);  // bf16 products
        CHECK_NEAR(eval_ok(args, NULL), cpu, 3e-2 * cpu);
    }
}
