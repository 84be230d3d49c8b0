// LoRA SFT on a base whose tokenizer lacks the chat template's tokens (ChatML's <|im_start|>,
// <|im_end|>, which `ctrain shard --format sft` adds): the vocabulary grows, and exactly the
// new rows (the embedding's; the output head's too when it is not tied) train beside the
// adapters, as PEFT's trainable_token_indices. Before, LoRA was silently dropped and every
// parameter trained (a full-size checkpoint, the losses of plain SFT).
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoints/checkpoint.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "kernels/ops.h"
#include "tests/model_fixture.h"
#include "tests/test.h"
#include "tests/train_fixture.h"
#include "train/interop/checkpoint_io.h"
#include "train/model/lora.h"
#include "train/model/lora_tokens.h"

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static const char *MODELS[] = {
    "\"model\": {\"preset\": \"gpt2-tiny\", \"n_layer\": 1, \"d_model\": 128, \"n_head\": 2, \"d_ff\": 256, "
    "\"max_seq_len\": 64}",
    "\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 1, \"d_model\": 128, \"n_head\": 2, \"n_kv_head\": 1, "
    "\"d_ff\": 256, \"max_seq_len\": 64, \"tie_embeddings\": \"false\"}",
};

// In the test's folder: a tokenizer without ChatML tokens, text shards (lm) and SFT shards (sft,
// whose tokenizer has the ChatML tokens more), and a base of `model` pretrained on lm.
static int prepare(const char *model) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[8192], config[2048], *out;
    snprintf(config, sizeof config,
             "{%s, \"data\": {\"path\": \"lm\"}, \"train\": {\"batch_size\": 4, \"seq_len\": 64, \"max_steps\": 4,"
             " \"eval_every\": 4, \"eval_batches\": 1, \"save_every\": 4, \"n_samples\": 0},"
             " \"optim\": {\"lr\": 1e-2, \"warmup_steps\": 1, \"weight_decay\": 0}}", model);
    ct_test_write("base.json", config);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' synth instructions --task reverse --examples 400 --seed 3 --out rev.jsonl && "
             "sed -E 's/^\\{\"prompt\": \"(.*)\", \"response\": \"(.*)\"\\}$/\\1 => \\2\\n/' rev.jsonl > plain.txt && "
             "'%s' tokenizer train --input plain.txt --vocab-size 300 --special '<|endoftext|>' --out tok.json && "
             "'%s' shard --tokenizer tok.json --input plain.txt --split paragraphs --out lm --val-fraction 0.05 && "
             "'%s' shard --tokenizer tok.json --input rev.jsonl --format sft --out sft --val-fraction 0.05 && "
             "'%s' pretrain base.json --run.out_dir=base --run.threads=1",
             dir, bin, bin, bin, bin, bin);
    int rc = ct_test_run(cmd, &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "preparing failed: %s", out);
    free(out);
    return rc == 0 ? 0 : -1;
}

// Bitwise equality of the first `rows` rows (all when rows < 0) of a tensor of both models.
static int same_rows(const CtModel *a, const CtModel *b, int i, long rows) {
    const CtParamEntry *ea = &a->table[i], *eb = &b->table[i];
    size_t n = rows < 0 ? ea->numel : (size_t)rows * (size_t)ea->shape[1];
    if (rows < 0 && ea->numel != eb->numel) return 0;
    return memcmp(a->params + ea->offset, b->params + eb->offset, n * sizeof(float)) == 0;
}

static void sft_with_lora(int arch) {
    ct_log_set_level(CT_LOG_QUIET);
    if (prepare(MODELS[arch]) != 0) return;
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[4096], prefix[2048], *out;
    snprintf(prefix, sizeof prefix,
             "cd '%s' && '%s' sft base.json --data.path=sft --train.init_from=base/ckpt-step00000004.h5 --lora.r=4 "
             "--lora.targets=all-linear --train.max_steps=6 --train.save_every=3 --train.eval_every=3 --run.threads=1",
             dir, bin);
    snprintf(cmd, sizeof cmd, "%s --run.out_dir=a", prefix);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "lora: the vocabulary grew from ");
    CHECK_CONTAINS(out, arch == 1 ? "2 new rows of the embedding and of the output head train" : "2 new rows of the "
                                                                                                  "embedding train");
    CHECK_CONTAINS(out, "+ 2 token rows");
    free(out);

    // the checkpoint: adapters, the token rows and their moments; no base weights
    const char *ckpt = ct_test_path("a/ckpt-step00000006.h5");
    CtCheckpoint c;
    CHECK(ct_ckpt_open(&c, ckpt) == 0);
    const char *rows = arch == 1 ? "lora/model.embed_tokens.token_adapter.trainable_tokens_delta"
                                 : "lora/transformer.wte.token_adapter.trainable_tokens_delta";
    CHECK_MSG(ct_ckpt_has(&c, rows), "no %s", rows);
    CHECK(ct_ckpt_has(&c, "optim/m/lm_head.token_adapter.trainable_tokens_delta") == (arch == 1));
    CHECK(!ct_ckpt_has(&c, "model"));
    ct_ckpt_close(&c);
    long lora_size = file_size(ckpt), base_size = file_size(ct_test_path("base/ckpt-step00000004.h5"));
    printf("    %s: LoRA SFT checkpoint %ld bytes, the base's (model + optimizer) %ld\n", arch ? "llama" : "gpt2",
           lora_size, base_size);
    CHECK_MSG(lora_size > 0 && lora_size * 4 < base_size, "the LoRA checkpoint (%ld bytes) is not adapter-sized "
              "(the base checkpoint: %ld bytes)", lora_size, base_size);

    // only adapters and the new rows changed: the merged model against the base, tensor by tensor
    CtModel base, merged, kept;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(ct_checkpoint_load(ct_test_path("base/ckpt-step00000004.h5"), &base, ct_ops_cpu(), 1, 8, 0, NULL, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CHECK_MSG(ct_checkpoint_load(ckpt, &merged, ct_ops_cpu(), 1, 8, 0, NULL, &meta) == 0, "%s", ct_error_message());
    ct_checkpoint_meta_free(&meta);
    CHECK_MSG(ct_lora_checkpoint_load_adapters(ckpt, &kept, ct_ops_cpu(), 0, &meta) == 0, "%s", ct_error_message());
    ct_checkpoint_meta_free(&meta);
    const int old_V = base.config.vocab_size, new_V = merged.config.vocab_size, C = base.config.d_model;
    CHECK_EQ_INT(new_V, old_V + 2);
    CHECK_EQ_INT(kept.lora->tokens.n, 2);
    int adapted = 0, untouched = 0;
    for (int i = 0; i < base.n_tensors; i++) {
        const CtParamEntry *e = &merged.table[i];
        const int vocab_rows = e->ndim == 2 && e->shape[0] == new_V;
        const int is_head = strstr(e->name, "lm_head") != NULL;
        // all-linear: every matrix of a block carries an adapter (norms and biases do not)
        const int has_adapter = e->ndim == 2 && (strstr(e->name, ".h.") || strstr(e->name, ".layers."));
        if (vocab_rows) {
            CHECK_MSG(same_rows(&merged, &base, i, old_V), "%s: a base row changed", e->name);
            // the new rows trained: they left the mean the growth gave them
            const float *trained = merged.params + e->offset + (size_t)old_V * C;
            const float *start = kept.params + kept.table[i].offset + (size_t)old_V * C;
            if (!is_head || arch == 1)
                CHECK_MSG(memcmp(trained, start, 2 * (size_t)C * sizeof(float)) != 0, "%s: the new rows did not train",
                          e->name);
            untouched++;
        } else if (has_adapter) {
            CHECK_MSG(!same_rows(&merged, &base, i, -1), "%s: its adapter changed nothing", e->name);
            adapted++;
        } else {
            CHECK_MSG(same_rows(&merged, &base, i, -1), "%s changed: it is frozen", e->name);
            untouched++;
        }
    }
    CHECK(adapted > 0 && untouched > 0);
    ct_model_free(&base);
    ct_model_free(&merged);
    ct_model_free(&kept);

    // resuming continues to the bit; lora export writes the rows as PEFT does
    snprintf(cmd, sizeof cmd, "%s --run.out_dir=b --stop-after 3 && %s --run.out_dir=b --resume b", prefix, prefix);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    char *la = train_fixture_metric_lines("a", 4), *lb = train_fixture_metric_lines("b", 4);
    CHECK(la && lb && strlen(la) > 50);
    CHECK_MSG(strcmp(la, lb) == 0, "losses after resuming differ:\n%s\nvs\n%s", la, lb);
    free(la);
    free(lb);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' lora export a/ckpt-step00000006.h5 --out exported", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    char *json = ct_test_read(ct_test_path("exported/adapter_config.json"), NULL);
    char want[256];
    snprintf(want, sizeof want, arch == 1 ? "\"trainable_token_indices\":\t{\n\t\t\"model.embed_tokens\":\t[%d, %d],\n"
                                            "\t\t\"lm_head\":\t[%d, %d]\n\t}"
                                          : "\"trainable_token_indices\":\t[%d, %d]",
             old_V, old_V + 1, old_V, old_V + 1);
    CHECK_CONTAINS(json, want);
    free(json);
    // lora merge folds the rows in and keeps the run's tokenizer (the base's lacks the new tokens)
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' lora merge --base base/ckpt-step00000004.h5 --adapter "
             "a/ckpt-step00000006.h5 --out merged.h5", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "and trained token rows folded into");
    free(out);
    CtModelConfig merged_config;
    CHECK(ct_checkpoint_read_meta(ct_test_path("merged.h5"), &merged_config, &meta) == 0);
    CHECK_EQ_INT(merged_config.vocab_size, new_V);
    CHECK(meta.tokenizer_json && strstr(meta.tokenizer_json, "<|im_start|>"));
    ct_checkpoint_meta_free(&meta);
}

TEST(lora, sft_vocab_growth_trains_adapters_and_new_rows_gpt2_tied) { sft_with_lora(0); }
TEST(lora, sft_vocab_growth_trains_adapters_and_new_rows_llama_untied_head) { sft_with_lora(1); }

// DPO's reference under LoRA is the base alone (adapters off): it must see the base's own token
// rows, not the trained ones that the adapter model writes into the base (PEFT's
// disable_adapter gives the original rows too); the adapter model then gets its rows back.
TEST(lora, base_alone_sees_its_own_token_rows) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig cfg = tiny_config(CT_ARCH_LLAMA);
    cfg.tie_embeddings = 0;
    CtModel m;
    CHECK(ct_model_create(&m, &cfg, ct_ops_cpu(), 1, 8, CT_MODEL_FROZEN) == 0);
    tiny_randomize_params(&m, 3);
    const int V = cfg.vocab_size;
    CtLoraSpec *s = calloc(1, sizeof *s);
    *s = (CtLoraSpec){.r = 2, .alpha = 4, .n_tokens = 2, .token_head = 1};
    snprintf(s->targets, sizeof s->targets, "q_proj");
    s->token_ids[0] = V, s->token_ids[1] = V + 1;
    CHECK_MSG(ct_lora_attach(&m, s) == 0, "%s", ct_error_message());
    free(s);
    CHECK(m.lora->tokens.head == 1);
    float *base_params = malloc(m.n_params * sizeof(float));
    memcpy(base_params, m.params, m.n_params * sizeof(float));
    CtRng rng;
    ct_rng_seed(&rng, 4);
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = (float)(0.5 * ct_rng_normal(&rng));
    int32_t tokens[8] = {1, V, 3, V + 1, 5, V, 2, 7};
    CtBatch b = {.tokens = tokens, .B = 1, .T = 8};
    const size_t n = (size_t)8 * (V + 2);
    float *with = malloc(n * sizeof(float));
    ct_model_forward(&m, &b);
    memcpy(with, ct_model_logits(&m), n * sizeof(float));
    CHECK(memcmp(m.params, base_params, m.n_params * sizeof(float)) != 0);  // the trained rows are in the base
    // the base alone, as DPO's reference_forward switches the adapters off
    ct_lora_tokens_show_base(&m);
    CtLora *adapters = m.lora;
    m.lora = NULL;
    ct_model_forward(&m, &b);
    m.lora = adapters;
    CHECK_MSG(memcmp(m.params, base_params, m.n_params * sizeof(float)) == 0, "the base alone sees trained rows");
    CHECK(memcmp(ct_model_logits(&m), with, n * sizeof(float)) != 0);
    // the adapter model again: its rows and logits, to the bit
    ct_model_forward(&m, &b);
    CHECK(memcmp(ct_model_logits(&m), with, n * sizeof(float)) == 0);
    free(base_params);
    free(with);
    ct_model_free(&m);
}

// The token rows' gradients (embedding rows; head rows, tied or not) against finite differences.
static double token_fd(CtModel *m, const CtBatch *b, float *p, float h) {
    const float keep = *p;
    *p = keep + h;
    m->lora->tokens.dirty = 1;
    double lp = ct_model_forward(m, b);
    *p = keep - h;
    m->lora->tokens.dirty = 1;
    double lm = ct_model_forward(m, b);
    *p = keep;
    m->lora->tokens.dirty = 1;
    return (lp - lm) / (2.0 * h);
}

static void token_rows_gradient(CtArch arch, int tied) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig cfg = tiny_config(arch);
    cfg.tie_embeddings = tied;
    CtModel m;
    CHECK(ct_model_create(&m, &cfg, ct_ops_cpu(), 2, 8, CT_MODEL_FROZEN) == 0);
    tiny_randomize_params(&m, 3);
    const int V = cfg.vocab_size;
    CtLoraSpec *s = calloc(1, sizeof *s);
    *s = (CtLoraSpec){.r = 2, .alpha = 4, .n_tokens = 2, .token_head = 1};
    snprintf(s->targets, sizeof s->targets, "%s", arch == CT_ARCH_GPT2 ? "c_attn" : "q_proj");
    s->token_ids[0] = V, s->token_ids[1] = V + 1;
    CHECK_MSG(ct_lora_attach(&m, s) == 0, "%s", ct_error_message());
    free(s);
    CtRng rng;
    ct_rng_seed(&rng, 6);
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = (float)(0.3 * ct_rng_normal(&rng));
    m.lora->tokens.dirty = 1;
    TinyBatch tb;
    tiny_batch(&tb, &rng, 2, 8, V, 0);
    tb.tokens[1] = V, tb.tokens[5] = V + 1, tb.tokens[10] = V;
    tb.targets[3] = V + 1, tb.targets[8] = V, tb.targets[12] = V + 1;
    ct_model_zero_grad(&m);
    ct_model_forward(&m, &tb.batch);
    ct_model_backward(&m);
    const CtLoraTokens *t = &m.lora->tokens;
    const size_t C = (size_t)m.config.d_model;
    double worst = 0;
    for (int which = 0; which < 1 + t->head; which++) {
        const size_t off = which ? t->out_offset : t->in_offset;
        for (size_t j = 0; j < 2 * C; j += 5) {
            const double g = m.lora->grads[off + j];
            const double fd = token_fd(&m, &tb.batch, m.lora->params + off + j, 2e-3f);
            const double err = fabs(fd - g) / fmax(fabs(g), 1e-2);
            if (err > worst) worst = err;
            CHECK_MSG(err < 3e-2, "%s row %zu: finite differences %.6g, analytic %.6g", which ? "head" : "embedding",
                      j / C, fd, g);
        }
    }
    double sink = 0;
    for (size_t j = 0; j < C; j++) sink += fabs(m.lora->grads[t->sink_offset + j]);
    CHECK(sink == 0);
    printf("    %s (%s head): token rows' gradients, worst error %.2g\n", ct_arch_name(arch), tied ? "tied" : "untied",
           worst);
    ct_model_free(&m);
}

TEST(lora, token_rows_gradient_check_gpt2_tied) { token_rows_gradient(CT_ARCH_GPT2, 1); }
TEST(lora, token_rows_gradient_check_llama_untied) { token_rows_gradient(CT_ARCH_LLAMA, 0); }
