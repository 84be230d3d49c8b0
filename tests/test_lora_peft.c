// PEFT adapter folders: write/read round trip, the files' layout, the errors a user can cause
// (missing tensor, wrong shape, another base, unsupported config), and ctrain lora merge.
#include <math.h>
#include <string.h>

#include "checkpoints/peft.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "kernels/ops.h"
#include "tests/hf_fixture.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "train/model/lora.h"
#include "train/interop/lora_peft.h"

// A frozen tiny base (seed) with adapters on `targets`, A and B random.
static int adapter_model(CtModel *m, CtArch arch, uint64_t seed, const char *targets, int r) {
    CtModelConfig cfg = tiny_config(arch);
    if (ct_model_create(m, &cfg, ct_ops_cpu(), 1, 8, CT_MODEL_FROZEN) != 0) return -1;
    tiny_randomize_params(m, seed);
    CtLoraSpec s = {.r = r, .alpha = 16, .rslora = 1};
    snprintf(s.targets, sizeof s.targets, "%s", targets);
    if (ct_lora_attach(m, &s) != 0) return -1;
    CtRng rng;
    ct_rng_seed(&rng, seed + 1);
    for (size_t i = 0; i < m->lora->n_params; i++) m->lora->params[i] = (float)(0.2 * ct_rng_normal(&rng));
    return 0;
}

static void round_trip(CtArch arch, const char *targets, const char *want_config) {
    CtModel a, b;
    CHECK(adapter_model(&a, arch, 42, targets, 4) == 0);
    const char *dir = ct_test_path("adapter");
    CHECK_MSG(ct_lora_save_peft(&a, dir, "my/base") == 0, "%s", ct_error_message());
    char path[1200];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    char *json = ct_test_read(path, NULL);
    CHECK_CONTAINS(json, "\"peft_type\":\t\"LORA\"");
    CHECK_CONTAINS(json, "\"task_type\":\t\"CAUSAL_LM\"");
    CHECK_CONTAINS(json, "\"bias\":\t\"none\"");
    CHECK_CONTAINS(json, "\"use_rslora\":\ttrue");
    CHECK_CONTAINS(json, "\"base_model_name_or_path\":\t\"my/base\"");
    CHECK_CONTAINS(json, want_config);
    free(json);
    CtSafetensors f;
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    CHECK(ct_st_open(&f, path) == 0);
    CHECK_EQ_INT(f.n_tensors, 2 * a.lora->n_adapters);
    char name[256];
    snprintf(name, sizeof name, "base_model.model.%s.lora_A.weight", a.lora->adapters[0].module);
    const CtStTensor *t = ct_st_find(&f, name);
    CHECK_MSG(t != NULL, "no tensor %s", name);
    CHECK(t->shape[0] == 4 && t->shape[1] == a.lora->adapters[0].in);
    snprintf(name, sizeof name, "base_model.model.%s.lora_B.weight", a.lora->adapters[0].module);
    t = ct_st_find(&f, name);
    CHECK(t && t->shape[0] == a.lora->adapters[0].out && t->shape[1] == 4);
    ct_st_close(&f);

    CtModelConfig cfg = tiny_config(arch);
    CHECK(ct_model_create(&b, &cfg, ct_ops_cpu(), 1, 8, CT_MODEL_FROZEN) == 0);
    tiny_randomize_params(&b, 42);
    CHECK_MSG(ct_lora_load_peft(&b, dir) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(b.lora->n_params, a.lora->n_params);
    CHECK(memcmp(a.lora->params, b.lora->params, a.lora->n_params * sizeof(float)) == 0);
    CHECK(b.lora->scale == a.lora->scale);
    ct_model_free(&a);
    ct_model_free(&b);
}
TEST(lora, peft_round_trip_llama_separate_q_k_v) {
    round_trip(CT_ARCH_LLAMA, "q_proj,k_proj,v_proj,o_proj", "\"fan_in_fan_out\":\tfalse");
}
TEST(lora, peft_round_trip_gpt2_conv1d) { round_trip(CT_ARCH_GPT2, "c_attn", "\"fan_in_fan_out\":\ttrue"); }

// Errors: each is one line naming the file and what is wrong.
TEST(lora, peft_errors) {
    CtModel a, b;
    CHECK(adapter_model(&a, CT_ARCH_LLAMA, 42, "q_proj,v_proj", 4) == 0);
    const char *dir = ct_test_path("adapter");
    CHECK(ct_lora_save_peft(&a, dir, NULL) == 0);
    CtModelConfig cfg = tiny_config(CT_ARCH_LLAMA);
    CHECK(ct_model_create(&b, &cfg, ct_ops_cpu(), 1, 8, CT_MODEL_FROZEN) == 0);

    // another base: same shapes, other weights
    tiny_randomize_params(&b, 43);
    CHECK(ct_lora_load_peft(&b, dir) != 0);
    CHECK_CONTAINS(ct_error_message(), "these adapters were trained on another base model");
    CHECK(b.lora == NULL);
    tiny_randomize_params(&b, 42);

    // a missing tensor
    CtNamedTensor t[8];
    ct_lora_named_tensors(a.lora, a.lora->params, t);
    CtPeftConfig pc = {.r = 4, .lora_alpha = 16, .use_rslora = 1};
    snprintf(pc.target_modules, sizeof pc.target_modules, "q_proj,v_proj");
    const char *missing = ct_test_path("missing");
    CHECK(ct_peft_write(missing, &pc, t, 2 * a.lora->n_adapters - 1, 0) == 0);
    CHECK(ct_lora_load_peft(&b, missing) != 0);
    CHECK_CONTAINS(ct_error_message(), "tensor 'base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight' is missing");

    // a wrong shape: the config says r = 2, the tensors are r = 4
    pc.r = 2;
    const char *shape = ct_test_path("shape");
    CHECK(ct_peft_write(shape, &pc, t, 2 * a.lora->n_adapters, 0) == 0);
    CHECK(ct_lora_load_peft(&b, shape) != 0);
    CHECK_CONTAINS(ct_error_message(), "has shape [4, 16]; this base model and r need [2, 16]");
    pc.r = 4;

    // a module this model does not have
    snprintf(pc.target_modules, sizeof pc.target_modules, "c_attn");
    const char *other = ct_test_path("other");
    CHECK(ct_peft_write(other, &pc, t, 0, 0) == 0);
    CHECK(ct_lora_load_peft(&b, other) != 0);
    CHECK_CONTAINS(ct_error_message(), "'c_attn' matches no linear layer of this llama model");

    // extra tensors (adapters on modules the config does not name)
    snprintf(pc.target_modules, sizeof pc.target_modules, "q_proj");
    const char *extra = ct_test_path("extra");
    CHECK(ct_peft_write(extra, &pc, t, 2 * a.lora->n_adapters, 0) == 0);
    CHECK(ct_lora_load_peft(&b, extra) != 0);
    CHECK_CONTAINS(ct_error_message(), "belongs to no adapter of this model and config");

    // configs ctrain does not implement, and a folder that is no adapter
    const char *bad = ct_test_path("bad");
    char path[1200];
    CHECK(ct_peft_write(bad, &pc, t, 2, 0) == 0);
    snprintf(path, sizeof path, "%s/adapter_config.json", bad);
    ct_test_write("bad/adapter_config.json",
                  "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"], \"bias\": \"all\"}");
    CHECK(ct_lora_load_peft(&b, bad) != 0);
    CHECK_CONTAINS(ct_error_message(), "bias is not \"none\"");
    ct_test_write("bad/adapter_config.json",
                  "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"], "
                  "\"exclude_modules\": [\"model.layers.0.self_attn.q_proj\"]}");
    CHECK(ct_lora_load_peft(&b, bad) != 0);
    CHECK_CONTAINS(ct_error_message(), "'exclude_modules' is set: ctrain does not implement it");
    // modules_to_save beyond a classifier's head (SEQ_CLS: tests/test_lora_classify_ref.c), SEQ_CLS without a head
    ct_test_write("bad/adapter_config.json",
                  "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"], "
                  "\"modules_to_save\": [\"lm_head\"]}");
    CHECK(ct_lora_load_peft(&b, bad) != 0);
    CHECK_CONTAINS(ct_error_message(), "lora: modules_to_save 'lm_head' matches");
    ct_test_write("bad/adapter_config.json",
                  "{\"peft_type\": \"LORA\", \"task_type\": \"SEQ_CLS\", \"r\": 4, \"lora_alpha\": 8, "
                  "\"target_modules\": [\"q_proj\"], \"modules_to_save\": [\"classifier\", \"score\"]}");
    CHECK(ct_lora_load_peft(&b, bad) != 0);
    CHECK_CONTAINS(ct_error_message(), "(task_type SEQ_CLS) on a base without a classification head");
    CHECK(b.lora == NULL);
    ct_test_write("bad/adapter_config.json", "{\"peft_type\": \"IA3\", \"r\": 4}");
    CHECK(ct_lora_load_peft(&b, bad) != 0);
    CHECK_CONTAINS(ct_error_message(), "peft_type is \"IA3\"; ctrain reads LoRA adapters");
    CHECK(ct_lora_load_peft(&b, ct_test_path("nowhere")) != 0);
    CHECK_CONTAINS(ct_error_message(), "is not a PEFT adapter folder");
    ct_model_free(&a);
    ct_model_free(&b);
}

// ctrain lora merge --base --adapter DIR --out: the merged checkpoint's logits equal the adapter
// model's (float32 rounding apart).
TEST(lora, merge_command_equals_adapter_model) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig cfg = hf_fixture_config(CT_ARCH_LLAMA, 0);
    const char *base = ct_test_path("base.h5"), *dir = ct_test_path("adapter"), *merged = ct_test_path("merged.h5");
    CHECK(hf_fixture_checkpoint(base, &cfg, 5) == 0);
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(ct_checkpoint_load(base, &m, ct_ops_cpu(), 1, 12, CT_MODEL_FROZEN, NULL, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CtLoraSpec s = {.r = 8, .alpha = 16, .targets = "all-linear"};
    CHECK(ct_lora_attach(&m, &s) == 0);
    ct_lora_init(&m, 3);
    CtRng rng;
    ct_rng_seed(&rng, 4);
    for (int i = 0; i < m.lora->n_adapters; i++)  // B away from zero, as after training
        for (int j = 0; j < m.lora->adapters[i].out * 8; j++)
            m.lora->params[m.lora->adapters[i].b_offset + (size_t)j] = (float)(0.1 * ct_rng_normal(&rng));
    CHECK(ct_lora_save_peft(&m, dir, base) == 0);
    int32_t tokens[12];
    for (int t = 0; t < 12; t++) tokens[t] = (t * 31 + 7) % cfg.vocab_size;
    CtBatch b = {.tokens = tokens, .B = 1, .T = 12};
    ct_model_forward(&m, &b);
    const size_t n = (size_t)12 * cfg.vocab_size;
    float *want = ct_alloc(n * sizeof(float));
    memcpy(want, m.act.logits, n * sizeof(float));
    ct_model_free(&m);

    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "'%s' lora merge --base '%s' --adapter '%s' --out '%s'", ct_test_bin(), base, dir, merged);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "lora merge: 14 adapters (r 8, scale 2)");
    free(out);
    CHECK(ct_checkpoint_load(merged, &m, ct_ops_cpu(), 1, 12, 0, NULL, &meta) == 0);
    CHECK(meta.tokenizer_json != NULL);  // the base's tokenizer travels along
    ct_checkpoint_meta_free(&meta);
    ct_model_forward(&m, &b);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)want[i] - ct_model_logits(&m)[i]));
        scale = fmax(scale, fabs((double)want[i]));
    }
    printf("    merged checkpoint vs adapter model: max |diff| %.3g (logits up to %.3g)\n", worst, scale);
    CHECK(worst <= 1e-5 * fmax(scale, 1));
    ct_model_free(&m);
    ct_free(want);

    // a base the adapters were not trained on
    const char *other = ct_test_path("other.h5");
    CHECK(hf_fixture_checkpoint(other, &cfg, 6) == 0);
    snprintf(cmd, sizeof cmd, "'%s' lora merge --base '%s' --adapter '%s' --out '%s'", ct_test_bin(), other, dir,
             ct_test_path("bad.h5"));
    CHECK(ct_test_run(cmd, &out) != 0);
    CHECK_CONTAINS(out, "trained on another base model");
    free(out);
}
