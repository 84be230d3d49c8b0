// ctrain classify: fine-tuning a sequence classifier (train/objectives/classify.h) through the
// training run of train/loop/pretrain.h, or (--predict FILE) the labels and probabilities a trained
// classifier gives the examples of FILE.
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/args.h"
#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer/tokenizer_files.h"
#include "train/cli/commands.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/checkpoint_meta.h"
#include "train/loop/pretrain.h"
#include "train/loop/run_config.h"
#include "train/loop/train_run.h"
#include "train/model/model_classify.h"
#include "train/objectives/classify.h"

static const CtOption options[] = {
    {"resume", "DIR", "continue from the newest complete checkpoint in DIR (the run's out_dir)", 0},
    {"stop-after", "N", "save a checkpoint and stop after N steps of this invocation (for time-limited jobs)", 0},
    {"predict", "FILE", "classify the examples of FILE (JSON lines) with the classifier of train.init_from", 0},
    {"out", "FILE", "with --predict: where the predictions go (JSON lines; default: standard output)", 0},
};

// The label names a classifier checkpoint was trained with (its run config's classify.labels), or
// "" when it has none (ct_alloc'd).
static char *checkpoint_labels(const char *path) {
    CtModelConfig config;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_read_meta(path, &config, &meta) != 0) return NULL;
    cJSON *o = meta.run_config_json ? cJSON_Parse(meta.run_config_json) : NULL;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "classify");
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(c, "labels");
    char *out = ct_strdup(cJSON_IsString(l) ? l->valuestring : "");
    cJSON_Delete(o);
    ct_checkpoint_meta_free(&meta);
    return out;
}

static int write_predictions(FILE *f, const CtClassifySet *s, const CtLabelSet *ls, const float *probs) {
    const int L = ls->n;
    for (int i = 0; i < s->n; i++) {
        const float *p = probs + (size_t)i * L;
        int best = 0;
        for (int k = 1; k < L; k++)
            if (p[k] > p[best]) best = k;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "label", ls->names[best]);
        cJSON_AddNumberToObject(o, "label_id", best);
        cJSON *pr = cJSON_AddObjectToObject(o, "probs");
        for (int k = 0; k < L; k++) cJSON_AddNumberToObject(pr, ls->names[k], p[k]);
        char *line = cJSON_PrintUnformatted(o);
        fprintf(f, "%s\n", line);
        free(line);
        cJSON_Delete(o);
    }
    return ferror(f) ? ct_error_set("writing the predictions failed") : 0;
}

// Accuracy and macro-F1 of the predictions where FILE has labels.
static void report_scores(const CtClassifySet *s, int L, const float *probs) {
    double *c = ct_calloc((size_t)(3 * L), sizeof(double)), correct = 0;
    int n = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->label[i] < 0) continue;
        int best = 0;
        for (int k = 1; k < L; k++)
            if (probs[(size_t)i * L + k] > probs[(size_t)i * L + best]) best = k;
        n++;
        if (best == s->label[i]) correct++, c[best]++;
        else c[L + best]++, c[2 * L + s->label[i]]++;
    }
    if (n) ct_log("classify: %d labelled examples: accuracy %.4f, macro-F1 %.4f", n, correct / n,
                  ct_classify_macro_f1(c, c + L, c + 2 * L, L));
    ct_free(c);
}

static int predict(const CtRunConfig *cfg, const char *file, const char *out_path) {
    const char *ckpt = cfg->train.init_from;
    if (!ckpt[0]) return ct_error_set("classify --predict: set train.init_from to the classifier's checkpoint");
    CtTokenizer tok;
    if (cfg->data.tokenizer[0] ? ct_tokenizer_load(&tok, cfg->data.tokenizer, NULL) : ct_train_checkpoint_tokenizer(ckpt, &tok))
        return -1;
    int rc = -1;
    CtModel m;
    CtLabelSet ls = {0};
    CtClassifySet s = {0};
    float *probs = NULL;
    char *names = checkpoint_labels(ckpt);
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    ct_checkpoint_meta_init(&meta);
    int loaded = names && ct_checkpoint_load(ckpt, &m, ct_ops_cpu(), cfg->train.batch_size, cfg->train.seq_len, 0,
                                             NULL, &meta) == 0;
    ct_checkpoint_meta_free(&meta);
    if (!loaded) goto done_tok;
    if (!m.config.num_labels) {
        ct_error_set("classify --predict: %s has no classifier (model.num_labels 0)", ckpt);
        goto done_model;
    }
    if (names[0] ? ct_label_set_parse(&ls, names) != 0 : 0) goto done_model;
    if (!names[0]) {  // a classifier without names (imported): LABEL_0, LABEL_1, … as transformers names them
        ls.names = ct_alloc(sizeof(char *) * (size_t)m.config.num_labels);
        for (ls.n = 0; ls.n < m.config.num_labels; ls.n++) {
            char b[32];
            snprintf(b, sizeof b, "LABEL_%d", ls.n);
            ls.names[ls.n] = ct_strdup(b);
        }
    }
    if (ls.n != m.config.num_labels) {
        ct_error_set("classify --predict: %s names %d labels for %d outputs", ckpt, ls.n, m.config.num_labels);
        goto done_labels;
    }
    if (ct_classify_read(file, &tok, cfg->train.seq_len, &ls, 0, 0, &s) != 0) goto done_labels;
    if (s.truncated)
        ct_warn("classify: %llu examples of %s are longer than train.seq_len %d and lose tokens (longest_first)",
                (unsigned long long)s.truncated, file, cfg->train.seq_len);
    probs = ct_alloc(sizeof(float) * (size_t)s.n * ls.n);
    ct_classify_predict(&m, &s, cfg->train.batch_size, ct_model_is_encoder(&m.config) ? m.config.pad_token_id : 0, probs);
    if (out_path) {
        CtAtomicFile f;
        if (ct_atomic_open(&f, out_path) != 0) goto done_set;
        if (write_predictions(f.fp, &s, &ls, probs) != 0) {
            ct_atomic_abort(&f);
            goto done_set;
        }
        if (ct_atomic_commit(&f) != 0) goto done_set;
        ct_log("classify: %d predictions written to %s", s.n, out_path);
    } else if (write_predictions(stdout, &s, &ls, probs) != 0) {
        goto done_set;
    }
    report_scores(&s, ls.n, probs);
    rc = 0;
done_set:
    ct_free(probs);
    ct_classify_set_free(&s);
done_labels:
    ct_label_set_free(&ls);
done_model:
    ct_model_free(&m);
done_tok:
    ct_free(names);
    ct_tokenizer_free(&tok);
    return rc;
}

static int run_classify(const CtArgs *args) {
    CtRunConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    if (ct_run_config_load(&cfg, args->positionals[0], args) != 0) return ct_cli_fail();
    const char *file = ct_args_get(args, "predict");
    if (file) return predict(&cfg, file, ct_args_get(args, "out")) == 0 ? 0 : ct_cli_fail();
    long stop_after;
    if (ct_args_get_long(args, "stop-after", 0, &stop_after) != 0 || stop_after < 0)
        return ct_cli_usage_error(&ct_cmd_classify, "--stop-after expects a number of steps");
    char *json = ct_config_to_json(&ct_run_config_schema, &cfg);
    CtPretrainJob job = {CT_OBJECTIVE_CLASSIFY, &cfg, json, ct_args_get(args, "resume"), stop_after};
    int status = ct_pretrain(&job);
    free(json);
    return status;
}

const CtCommand ct_cmd_classify = {
    .name = "classify",
    .summary = "fine-tune a sequence classifier on JSON-lines examples {text, label} or {text_a, text_b, label}",
    .usage = "ctrain classify CONFIG [--resume DIR] [--stop-after N] [--predict FILE [--out FILE]] [--section.key=value...]",
    .description = "Fine-tunes train.init_from (an MLM-pretrained encoder, an imported model, any checkpoint; or a fresh\n"
                   "model of CONFIG) with a classifier head as transformers' *ForSequenceClassification (BERT: pooler +\n"
                   "classifier; RoBERTa: classifier.dense + out_proj; gpt2/llama: score on the last token) on data.path,\n"
                   "a JSON-lines file (.jsonl or .jsonl.zst) of {\"text\", \"label\"} or {\"text_a\", \"text_b\", \"label\"};\n"
                   "texts are framed by the tokenizer's post-processor ([CLS] A [SEP] B [SEP]) and cut to\n"
                   "train.seq_len. Labels: the training file's sorted distinct labels (as run_glue.py), or\n"
                   "classify.labels. Loss: cross-entropy over the labels. Logs acc, and val_loss, val_acc and\n"
                   "val_f1 (macro) on classify.val_path or classify.val_fraction of the examples. With --predict FILE:\n"
                   "the labels and probabilities the classifier of train.init_from gives FILE's examples, one JSON\n"
                   "line each (and accuracy / macro-F1 where FILE has labels). See docs/encoder.md.",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .allow_overrides = 1,
    .min_positionals = 1,
    .max_positionals = 1,
    .run = run_classify,
};
