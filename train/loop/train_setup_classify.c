// ctrain classify's setup (train/objectives/classify.h): the tokenizer a checkpoint carries, the
// classifier's config, the head added to a starting model that lacks one, and the run's state.
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/checkpoint_meta.h"
#include "train/loop/train_run.h"
#include "train/model/model_resize.h"

int ct_train_checkpoint_tokenizer(const char *path, CtTokenizer *tok) {
    CtModelConfig config;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_read_meta(path, &config, &meta) != 0) return -1;
    int rc = meta.tokenizer_json
                 ? ct_tokenizer_parse_hf(tok, meta.tokenizer_json, strlen(meta.tokenizer_json), path, NULL)
                 : ct_error_set("classify: %s carries no tokenizer: set data.tokenizer", path);
    ct_checkpoint_meta_free(&meta);
    return rc;
}

int ct_train_classifier_config(CtRun *r, CtModelConfig *want) {
    const int p = r->cfg->classify.pooling;  // 0 auto: the family's, as transformers
    want->num_labels = r->classify.labels.n;
    want->cls_pooling = p ? (CtPooling)(p - 1) : ct_model_is_encoder(want) ? CT_POOL_CLS : CT_POOL_LAST;
    if (ct_model_is_encoder(want)) want->pooler = want->arch == CT_ARCH_BERT;  // RobertaForSequenceClassification has none
    return 0;
}

int ct_train_add_classifier(CtRun *r, const CtModelConfig *want, int B, int T) {
    CtModelConfig *have = &r->model.config;
    if (have->num_labels) {  // a classifier already: its labels must be these
        if (have->num_labels != want->num_labels)
            return ct_error_set("classify: %s classifies into %d labels, the data has %d (%s); set classify.labels to "
                                "the model's", r->cfg->train.init_from, have->num_labels, want->num_labels,
                                r->cfg->classify.labels[0] ? "declared" : "found in data.path");
        if (r->cfg->classify.pooling && have->cls_pooling != want->cls_pooling)
            return ct_error_set("classify.pooling %s: %s pools %s", ct_pooling_name(want->cls_pooling),
                                r->cfg->train.init_from, ct_pooling_name(have->cls_pooling));
        return 0;
    }
    // auto pooling follows the model it is added to (train.init_from's), not the config's model keys
    const int p = r->cfg->classify.pooling;
    const CtPooling pooling = p ? (CtPooling)(p - 1) : ct_model_is_encoder(have) ? CT_POOL_CLS : CT_POOL_LAST;
    const int flags = (r->cfg->model.recompute ? CT_MODEL_RECOMPUTE : 0) | (r->model.frozen ? CT_MODEL_FROZEN : 0);
    if (ct_model_add_classifier(&r->model, want->num_labels, pooling, (uint64_t)r->cfg->run.seed, B, T, flags) != 0)
        return -1;
    ct_log("classify: added a classifier of %d labels (%s pooling) to %s", want->num_labels, ct_pooling_name(pooling),
           r->cfg->train.init_from);
    return 0;
}

int ct_train_classifier_lora_head(CtModel *base, void *ctx, char *modules_to_save, size_t size) {
    CtClassifierHead *h = ctx;
    CtRun *r = h->run;
    CT_CHECK(base == &r->model, "a LoRA classifier's head goes on the run's model");
    const int had_pooler = base->config.pooler;
    if (ct_train_add_classifier(r, h->want, h->B, h->T) != 0) return -1;
    // PEFT's SEQ_CLS task: the head trains in full (modules_to_save); a pooler the base lacked was
    // just drawn, and trains with it rather than stay random and frozen
    const int drawn = base->config.pooler && !had_pooler;
    snprintf(modules_to_save, size, "classifier,score%s", drawn ? ",pooler" : "");
    if (drawn)
        ct_log("classify: %s has no pooler (an MLM model's): the one drawn for it trains in full beside the adapters "
               "with the classifier (modules_to_save pooler)", r->cfg->train.init_from);
    return 0;
}

// The run config as the checkpoints store it, with classify.labels set to the labels in id order
// (`export hf` names id2label from it).
static void store_labels(CtRun *r) {
    cJSON *o = cJSON_Parse(r->config_json);
    cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "classify");
    if (!cJSON_IsObject(c)) {
        cJSON_Delete(o);
        return;
    }
    char *list = ct_label_set_join(&r->classify.labels);
    cJSON_DeleteItemFromObjectCaseSensitive(c, "labels");
    cJSON_AddStringToObject(c, "labels", list);
    ct_free(list);
    char *json = cJSON_PrintUnformatted(o);
    r->classify_config_json = ct_strdup(json);
    r->config_json = r->classify_config_json;
    free(json);
    cJSON_Delete(o);
}

int ct_train_setup_classify(CtRun *r) {
    CtClassifyRun *c = &r->classify;
    const CtModelConfig *m = &r->model.config;
    r->obj.state = c;
    c->pad_id = ct_model_is_encoder(m) ? m->pad_token_id : 0;  // a decoder's pads are never attended or pooled
    store_labels(r);
    if (!r->lead) return 0;
    char *list = ct_label_set_join(&c->labels);
    ct_log("classify: %d labels (%s; ids in that order%s), %d training and %d validation examples%s; %s pooling", c->labels.n,
           list, r->cfg->classify.labels[0] ? ", declared" : ", the training file's sorted", c->n_train, c->n_val,
           c->train.pairs ? " (text pairs)" : "", ct_pooling_name(m->cls_pooling));
    ct_free(list);
    return 0;
}
