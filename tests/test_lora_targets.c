// Which modules a LoRA spec adapts, with PEFT 0.21's rules (train/model/lora_targets.h): a list entry
// by full name or "."-suffix, a regex fully matched against the full name, all-linear,
// layers_to_transform / layers_pattern, rank_pattern and alpha_pattern (per-module shapes),
// Python regular expressions through POSIX (core/pyregex.h), and lora_dropout / lora_alpha
// written to adapter_config.json as the user gave them.
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/pyregex.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/model/lora.h"
#include "train/interop/lora_checkpoint.h"
#include "train/interop/lora_peft.h"
#include "train/loop/run_config.h"
#include "train/loop/run_lora.h"
#include "train/model/model_resize.h"

static CtLoraSpec *new_spec(int r, const char *targets) {
    static CtLoraSpec s;
    memset(&s, 0, sizeof s);
    s.r = r;
    s.alpha = 2.0 * r;
    snprintf(s.targets, sizeof s.targets, "%s", targets);
    return &s;
}

// A frozen tiny model (2 layers) of `arch`.
static int base_model(CtModel *m, CtArch arch) {
    CtModelConfig cfg = tiny_config(arch);
    if (ct_model_create(m, &cfg, ct_ops_cpu(), 2, 8, CT_MODEL_FROZEN) != 0) return -1;
    tiny_randomize_params(m, 42);
    return 0;
}

// The adapted modules, "name:r" joined by spaces.
static const char *adapted(const CtModel *m) {
    static char buf[4096];
    buf[0] = '\0';
    for (int i = 0; i < m->lora->n_adapters; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s:%d", i ? " " : "", m->lora->adapters[i].module,
                 m->lora->adapters[i].r);
    return buf;
}

// Attaches spec to a fresh tiny model and returns the adapted modules, or the error text.
static const char *attach_result(CtArch arch, const CtLoraSpec *spec) {
    static char buf[4096];
    CtModel m;
    if (base_model(&m, arch) != 0) return "(no model)";
    if (ct_lora_attach(&m, spec) != 0)
        snprintf(buf, sizeof buf, "error: %s", ct_error_message());
    else
        snprintf(buf, sizeof buf, "%s", adapted(&m));
    ct_model_free(&m);
    return buf;
}

TEST(lora, targets_by_suffix) {
    CtLoraSpec *s = new_spec(4, "self_attn.q_proj,down_proj");
    CHECK_STR_EQ(attach_result(CT_ARCH_LLAMA, s),
                 "model.layers.0.self_attn.q_proj:4 model.layers.0.mlp.down_proj:4 model.layers.1.self_attn.q_proj:4 "
                 "model.layers.1.mlp.down_proj:4");
    // a suffix counts at a '.' only: "proj" is not the end of a name after a dot
    s = new_spec(4, "proj");
    CHECK_CONTAINS(attach_result(CT_ARCH_LLAMA, s), "error: lora.targets: 'proj' matches no linear layer");
    s = new_spec(4, "mlp.c_proj");  // gpt2: c_proj alone names both
    CHECK_STR_EQ(attach_result(CT_ARCH_GPT2, s), "transformer.h.0.mlp.c_proj:4 transformer.h.1.mlp.c_proj:4");
    s = new_spec(4, "wte");
    CHECK_CONTAINS(attach_result(CT_ARCH_GPT2, s), "'wte' is the embedding or the output head");
}

// PEFT writes all-linear as the list of full names (fewer than 20 modules): each names one module.
TEST(lora, targets_by_full_name) {
    CtLoraSpec *s = new_spec(4, "model.layers.1.self_attn.q_proj,model.layers.0.mlp.down_proj");
    CHECK_STR_EQ(attach_result(CT_ARCH_LLAMA, s), "model.layers.0.mlp.down_proj:4 model.layers.1.self_attn.q_proj:4");
    s = new_spec(4, "transformer.h.1.attn.c_attn");
    CHECK_STR_EQ(attach_result(CT_ARCH_GPT2, s), "transformer.h.1.attn.c_attn:4");
    s = new_spec(4, "model.layers.7.self_attn.q_proj");  // a layer the model lacks
    CHECK_CONTAINS(attach_result(CT_ARCH_LLAMA, s), "matches no linear layer of this llama model");
}

TEST(lora, targets_by_regex) {
    CtLoraSpec *s = new_spec(4, "");
    snprintf(s->target_regex, sizeof s->target_regex, "model\\.layers\\.\\d+\\.self_attn\\.(q|v)_proj");
    CHECK_STR_EQ(attach_result(CT_ARCH_LLAMA, s),
                 "model.layers.0.self_attn.q_proj:4 model.layers.0.self_attn.v_proj:4 model.layers.1.self_attn.q_proj:4 "
                 "model.layers.1.self_attn.v_proj:4");
    snprintf(s->target_regex, sizeof s->target_regex, ".*\\.1\\.mlp\\..*?");
    CHECK_STR_EQ(attach_result(CT_ARCH_LLAMA, s),
                 "model.layers.1.mlp.gate_proj:4 model.layers.1.mlp.up_proj:4 model.layers.1.mlp.down_proj:4");
    // fully matched: "q_proj" alone is not a full name
    snprintf(s->target_regex, sizeof s->target_regex, "q_proj");
    CHECK_CONTAINS(attach_result(CT_ARCH_LLAMA, s), "select no linear layer");
    snprintf(s->target_regex, sizeof s->target_regex, "(?:lm_head|.*q_proj)");
    CHECK_CONTAINS(attach_result(CT_ARCH_LLAMA, s), "matches the embedding or the output head");
    snprintf(s->target_regex, sizeof s->target_regex, ".*(?=q_proj)");
    CHECK_CONTAINS(attach_result(CT_ARCH_LLAMA, s), "a look-around");
    s->targets[0] = 'q';  // both forms at once
    CHECK_CONTAINS(attach_result(CT_ARCH_LLAMA, s), "both a target list");
}

// Python's re.fullmatch, as the POSIX translation runs it (expected values from Python 3.11).
TEST(lora, python_regex_fullmatch) {
    static const struct {
        const char *pattern, *text;
        int match;
    } cases[] = {
        {"[\\w.]+_proj", "model.layers.0.mlp.up_proj", 1},
        {"[^.]*", "a.b", 0},
        {"(?:a|b){2}", "ab", 1},
        {"(?:a|b){2}", "abb", 0},
        {"a{,2}b", "aab", 1},
        {"a{,2}b", "aaab", 0},
        {"x{", "x{", 1},
        {".*?\\.\\d+\\..*", "transformer.h.11.attn", 1},
        {"\\D+", "ab1", 0},
        {"(?P<n>q|k)_proj", "k_proj", 1},
        {"[]a]+", "]a", 1},
        {"[a\\-z]+", "-az", 1},
        {"[\\^x]", "^", 1},
        {"a|", "", 1},
        {"c_attn$", "c_attn", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int match = -1;
        CHECK_MSG(ct_pyregex_fullmatch_once(cases[i].pattern, cases[i].text, &match) == 0, "%s: %s", cases[i].pattern,
                  ct_error_message());
        CHECK_MSG(match == cases[i].match, "re.fullmatch(%s, %s): expected %d", cases[i].pattern, cases[i].text,
                  cases[i].match);
    }
    int match;
    CHECK(ct_pyregex_fullmatch_once("a\\1", "a", &match) != 0);
    CHECK_CONTAINS(ct_error_message(), "'\\1' is not supported");
    CHECK(ct_pyregex_fullmatch_once("(a", "a", &match) != 0);
}

TEST(lora, targets_all_linear) {
    CtLoraSpec *s = new_spec(2, "ALL-LINEAR");  // PEFT compares in lower case
    CtModel m;
    CHECK(base_model(&m, CT_ARCH_LLAMA) == 0);
    CHECK_MSG(ct_lora_attach(&m, s) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(m.lora->n_adapters, 14);  // 7 per block, no output head
    CHECK_STR_EQ(m.lora->target_modules, "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj");
    ct_model_free(&m);
    CHECK(base_model(&m, CT_ARCH_GPT2) == 0);
    CHECK(ct_lora_attach(&m, s) == 0);
    CHECK_EQ_INT(m.lora->n_adapters, 8);
    CHECK_STR_EQ(m.lora->target_modules, "c_attn,c_proj,c_fc");
    ct_model_free(&m);
}

TEST(lora, layers_to_transform) {
    CtLoraSpec *s = new_spec(4, "q_proj,model.layers.0.mlp.up_proj");
    s->layers[0] = 1;
    s->n_layers = 1;
    // suffix matches only in layer 1; an exact name whatever its layer (PEFT's order of checks)
    CHECK_STR_EQ(attach_result(CT_ARCH_LLAMA, s), "model.layers.0.mlp.up_proj:4 model.layers.1.self_attn.q_proj:4");
    snprintf(s->layers_pattern, sizeof s->layers_pattern, "layers");
    CHECK_STR_EQ(attach_result(CT_ARCH_LLAMA, s), "model.layers.0.mlp.up_proj:4 model.layers.1.self_attn.q_proj:4");
    snprintf(s->layers_pattern, sizeof s->layers_pattern, "h");  // gpt2's pattern: no llama layer index
    CHECK_STR_EQ(attach_result(CT_ARCH_LLAMA, s), "model.layers.0.mlp.up_proj:4");
    s = new_spec(4, "c_attn");
    s->layers[0] = 0;
    s->n_layers = 1;
    snprintf(s->layers_pattern, sizeof s->layers_pattern, "h");
    CHECK_STR_EQ(attach_result(CT_ARCH_GPT2, s), "transformer.h.0.attn.c_attn:4");
    s->layers[0] = 5;
    CHECK_CONTAINS(attach_result(CT_ARCH_GPT2, s), "layers_to_transform leaves none");
}

// Per-module ranks and alphas: the adapters' shapes and scales differ, the model computes with
// each (merging gives the adapter model's logits), and a PEFT folder keeps them.
TEST(lora, rank_and_alpha_pattern) {
    ct_log_set_level(CT_LOG_QUIET);
    CtLoraSpec *s = new_spec(4, "all-linear");
    s->alpha = 8;
    snprintf(s->rank_pattern[0].key, sizeof s->rank_pattern[0].key, "q_proj");
    s->rank_pattern[0].value = 2;
    snprintf(s->rank_pattern[1].key, sizeof s->rank_pattern[1].key, "model.layers.1.mlp.down_proj");
    s->rank_pattern[1].value = 8;
    s->n_rank_pattern = 2;
    snprintf(s->alpha_pattern[0].key, sizeof s->alpha_pattern[0].key, "v_proj");
    s->alpha_pattern[0].value = 3;
    s->n_alpha_pattern = 1;
    CtModel m;
    CHECK(base_model(&m, CT_ARCH_LLAMA) == 0);
    CHECK_MSG(ct_lora_attach(&m, s) == 0, "%s", ct_error_message());
    for (int i = 0; i < m.lora->n_adapters; i++) {
        const CtLoraAdapter *a = &m.lora->adapters[i];
        int want_r = strstr(a->module, "q_proj") ? 2 : strcmp(a->module, "model.layers.1.mlp.down_proj") == 0 ? 8 : 4;
        double want_alpha = strstr(a->module, "v_proj") ? 3 : 8;
        CHECK_MSG(a->r == want_r, "%s: r %d, expected %d", a->module, a->r, want_r);
        CHECK_NEAR(a->scale, want_alpha / want_r, 1e-7);
    }
    CtRng rng;
    ct_rng_seed(&rng, 5);
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = (float)(0.3 * ct_rng_normal(&rng));
    // a PEFT folder with the patterns: read back to the same shapes and values
    const char *dir = ct_test_path("adapter");
    CHECK(ct_lora_save_peft(&m, dir, "base") == 0);
    char path[1200];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    char *json = ct_test_read(path, NULL);
    CHECK_CONTAINS(json, "\"rank_pattern\":\t{\n\t\t\"q_proj\":\t2,\n\t\t\"model.layers.1.mlp.down_proj\":\t8\n\t}");
    CHECK_CONTAINS(json, "\"alpha_pattern\":\t{\n\t\t\"v_proj\":\t3\n\t}");
    free(json);
    CtModel b;
    CHECK(base_model(&b, CT_ARCH_LLAMA) == 0);
    CHECK_MSG(ct_lora_load_peft(&b, dir) == 0, "%s", ct_error_message());
    CHECK_STR_EQ(adapted(&b), adapted(&m));
    CHECK(b.lora->n_params == m.lora->n_params &&
          memcmp(b.lora->params, m.lora->params, m.lora->n_params * sizeof(float)) == 0);
    // the model computes with each rank and scale: merged weights give the same logits
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, m.config.vocab_size, 0);
    ct_model_forward(&m, &tb.batch);
    const size_t n = (size_t)2 * 8 * m.config.vocab_size;
    float *want = malloc(n * sizeof(float));
    memcpy(want, ct_model_logits(&m), n * sizeof(float));
    ct_lora_merge(&b);
    ct_model_forward(&b, &tb.batch);
    double worst = 0;
    const float *got = ct_model_logits(&b);
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)got[i] - want[i]));
    CHECK_MSG(worst < 1e-5, "merged vs adapters: %.3g", worst);
    free(want);
    ct_model_free(&m);
    ct_model_free(&b);
}

// lora.dropout 0.1 and lora.alpha 1.3 in a config reach adapter_config.json as 0.1 and 1.3
// (a float field printed 0.10000000149011612); the command line's --lora.targets=all-linear too.
TEST(lora, dropout_and_alpha_written_as_given) {
    ct_log_set_level(CT_LOG_QUIET);
    ct_test_write("run.json", "{\"lora\": {\"r\": 4, \"alpha\": 1.3, \"dropout\": 0.1, \"targets\": \"all-linear\"}}");
    CtRunConfig *cfg = malloc(sizeof *cfg);
    CHECK_MSG(ct_run_config_load(cfg, ct_test_path("run.json"), NULL) == 0, "%s", ct_error_message());
    CtLoraSpec *s = malloc(sizeof *s);
    CHECK(ct_lora_spec_from_config(cfg, s) == 0);
    CtModel m;
    CHECK(base_model(&m, CT_ARCH_GPT2) == 0);
    CHECK_MSG(ct_lora_attach(&m, s) == 0, "%s", ct_error_message());
    const char *dir = ct_test_path("adapter");
    CHECK(ct_lora_save_peft(&m, dir, "base") == 0);
    char path[1200];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    char *json = ct_test_read(path, NULL);
    CHECK_CONTAINS(json, "\"lora_dropout\":\t0.1,");
    CHECK_CONTAINS(json, "\"lora_alpha\":\t1.3,");
    free(json);
    // the LoRA checkpoint's own record too
    char *spec_json = ct_lora_spec_json(&m.lora->spec, m.lora->target_modules);
    CHECK_CONTAINS(spec_json, "\"alpha\":1.3,\"dropout\":0.1,");
    free(spec_json);
    ct_model_free(&m);
    free(s);
    free(cfg);
}

// ctrain's config: rank_pattern / alpha_pattern as "regex=value" entries, layers_to_transform.
TEST(lora, config_patterns_and_layers) {
    ct_test_write("run.json", "{\"lora\": {\"r\": 4, \"targets\": [\"q_proj\", \"v_proj\"], \"layers_to_transform\": "
                              "\"1\", \"rank_pattern\": [\"v_proj=2\"], \"alpha_pattern\": \"q_proj=5\"}}");
    CtRunConfig *cfg = malloc(sizeof *cfg);
    CHECK_MSG(ct_run_config_load(cfg, ct_test_path("run.json"), NULL) == 0, "%s", ct_error_message());
    CtLoraSpec *s = malloc(sizeof *s);
    CHECK_MSG(ct_lora_spec_from_config(cfg, s) == 0, "%s", ct_error_message());
    CHECK_STR_EQ(attach_result(CT_ARCH_LLAMA, s), "model.layers.1.self_attn.q_proj:4 model.layers.1.self_attn.v_proj:2");
    snprintf(cfg->lora.rank_pattern, sizeof cfg->lora.rank_pattern, "v_proj");
    CHECK(ct_lora_spec_from_config(cfg, s) != 0);
    CHECK_CONTAINS(ct_error_message(), "lora.rank_pattern: 'v_proj' is not \"module regex=rank\"");
    free(s);
    free(cfg);
}

// Attaches spec to a tiny encoder (with a classifier of 3 labels when classifier) or, with error
// set, returns its text.
static const char *encoder_attach_result(CtArch arch, int classifier, const CtLoraSpec *spec) {
    static char buf[4096];
    CtModelConfig cfg = tiny_encoder_config(arch);
    CtModel m;
    if (ct_model_create(&m, &cfg, ct_ops_cpu(), 2, 8, CT_MODEL_FROZEN) != 0) return "(no model)";
    if (classifier && ct_model_add_classifier(&m, 3, CT_POOL_CLS, 1, 2, 8, CT_MODEL_FROZEN) != 0) return "(no head)";
    if (ct_lora_attach(&m, spec) != 0)
        snprintf(buf, sizeof buf, "error: %s", ct_error_message());
    else
        snprintf(buf, sizeof buf, "%s | saved %d", adapted(&m), m.lora->saved.n);
    ct_model_free(&m);
    return buf;
}

// BERT/RoBERTa blocks under transformers' names (PEFT's default query,value); a target that also
// names what PEFT would adapt outside the blocks (pooler, MLM transform) is refused, all-linear on a
// model that has either too; modules_to_save takes the classification head only.
TEST(lora, encoder_modules_and_the_head_in_full) {
    CtLoraSpec *s = new_spec(2, "");
    CHECK_STR_EQ(encoder_attach_result(CT_ARCH_BERT, 0, s),
                 "bert.encoder.layer.0.attention.self.query:2 bert.encoder.layer.0.attention.self.value:2 "
                 "bert.encoder.layer.1.attention.self.query:2 bert.encoder.layer.1.attention.self.value:2 | saved 0");
    s = new_spec(2, "output.dense");
    CHECK_STR_EQ(encoder_attach_result(CT_ARCH_ROBERTA, 0, s),
                 "roberta.encoder.layer.0.attention.output.dense:2 roberta.encoder.layer.0.output.dense:2 "
                 "roberta.encoder.layer.1.attention.output.dense:2 roberta.encoder.layer.1.output.dense:2 | saved 0");
    s = new_spec(2, "dense");
    CHECK_CONTAINS(encoder_attach_result(CT_ARCH_BERT, 0, s), "error: lora.targets: 'dense' names the embeddings, "
                                                              "the pooler or the MLM head");
    s = new_spec(2, "all-linear");
    CHECK_CONTAINS(encoder_attach_result(CT_ARCH_BERT, 1, s), "PEFT adapts the pooler (pooler.dense) too");
    CHECK_CONTAINS(encoder_attach_result(CT_ARCH_ROBERTA, 0, s), "error: lora.targets all-linear: on this roberta model");
    // a RobertaForSequenceClassification has neither: all-linear is the blocks' 12, and the head in full
    CtModelConfig c = tiny_encoder_config(CT_ARCH_ROBERTA);
    c.pooler = 0;
    snprintf(s->modules_to_save, sizeof s->modules_to_save, "classifier,score");
    CtModel m;
    CHECK_EQ_INT(ct_model_create(&m, &c, ct_ops_cpu(), 2, 8, CT_MODEL_FROZEN), 0);
    CHECK_EQ_INT(ct_model_add_classifier(&m, 3, CT_POOL_CLS, 1, 2, 8, CT_MODEL_FROZEN), 0);
    CHECK_MSG(ct_lora_attach(&m, s) == 0, "%s", ct_error_message());
    CHECK(m.lora && m.lora->n_adapters == 12 && m.lora->saved.n == 4);
    CHECK_STR_EQ(m.lora->saved.t[0].name, "classifier.dense.weight");
    CHECK_STR_EQ(m.lora->saved.t[3].name, "classifier.out_proj.bias");
    // it starts as the base's head, and merging writes the trained values back
    CHECK(memcmp(m.lora->params + m.lora->saved.t[0].offset, m.params + m.lora->saved.t[0].base_offset,
                 m.lora->saved.t[0].numel * sizeof(float)) == 0);
    m.lora->params[m.lora->saved.t[3].offset] = 0.5f;
    const size_t bias = m.lora->saved.t[3].base_offset;
    ct_lora_merge(&m);
    CHECK(m.params[bias] == 0.5f);
    ct_model_free(&m);
    // a BERT classifier: its classifier (and the pooler where asked); nothing else, and not without a head
    s = new_spec(2, "query");
    snprintf(s->modules_to_save, sizeof s->modules_to_save, "classifier,score,pooler");
    CHECK_CONTAINS(encoder_attach_result(CT_ARCH_BERT, 1, s), "| saved 4");
    CHECK_CONTAINS(encoder_attach_result(CT_ARCH_BERT, 0, s), "(this model has no classification head)");
    snprintf(s->modules_to_save, sizeof s->modules_to_save, "classifier,word_embeddings");
    CHECK_CONTAINS(encoder_attach_result(CT_ARCH_BERT, 1, s), "matches bert.embeddings.word_embeddings.weight: ctrain "
                                                              "trains the classification head in full");
}
