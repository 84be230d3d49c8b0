// The reference of a DPO run: dpo.ref_checkpoint, or the starting model (train.init_from, or the
// fresh model itself) frozen; with dpo.precompute_ref its log-probabilities of every pair are
// computed once and the reference model is freed. And where greedy answers end (the chat
// template's end of turn, or the end of text).
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/log.h"
#include "data/examples/chat_template.h"
#include "train/loop/train_run.h"

static const char *loss_name(int loss) {
    return loss == CT_DPO_SIGMOID ? "sigmoid"
         : loss == CT_DPO_ROBUST  ? "robust"
         : loss == CT_DPO_IPO     ? "ipo (per-token mean log-probabilities)"
                                  : "hinge";
}

// The template's end of turn, when the dataset's manifest names a template the tokenizer knows.
static int32_t answer_stop_token(CtRun *r) {
    int32_t stop = (int32_t)r->data.eot_token;
    char *tmpl_json = ct_objective_chat_template(r->cfg->data.path);
    CtChatTemplate tmpl;
    if (tmpl_json && r->have_tokenizer && ct_chat_template_parse(&tmpl, tmpl_json, r->cfg->data.path) == 0) {
        int32_t id = ct_chat_template_check(&tmpl, &r->tokenizer);
        if (id >= 0) stop = id;
        ct_chat_template_free(&tmpl);
    }
    free(tmpl_json);
    return stop;
}

// The reference's log-probabilities of every pair of both splits, once (loaders of one pair, file order).
static int precompute_reference(CtRun *r) {
    const CtRunConfig *cfg = r->cfg;
    for (int s = 0; s < CT_N_SPLITS; s++) {
        if (s == CT_SPLIT_VAL && !r->have_val) continue;
        CtLoaderOptions o;
        ct_loader_default_options(&o);
        o.batch = 1;
        o.seq_len = cfg->train.seq_len;
        o.shuffle = 0;
        o.seed = (uint64_t)cfg->run.seed;
        CtLoader pairs;
        if (ct_loader_open(&pairs, &r->data, (CtSplit)s, &o) != 0) return -1;
        int rc = ct_dpo_precompute(&r->dpo.dpo, &r->model, &pairs, (CtSplit)s);
        ct_loader_close(&pairs);
        if (rc != 0) return -1;
    }
    ct_dpo_drop_model(&r->dpo.dpo);
    return 0;
}

int ct_train_setup_dpo(CtRun *r, int resuming) {
    const CtRunConfig *cfg = r->cfg;
    const char *ref = cfg->dpo.ref_checkpoint[0] ? cfg->dpo.ref_checkpoint : cfg->train.init_from;
    if (resuming && !ref[0])
        return ct_error_set("resuming a dpo run needs its reference: set dpo.ref_checkpoint or train.init_from");
    CtDpoRun *d = &r->dpo;
    d->last_match = d->last_accuracy = NAN;
    r->obj.state = d;
    if (ct_dpo_init(&d->dpo, (CtDpoLoss)cfg->dpo.loss, cfg->dpo.beta, cfg->dpo.label_smoothing, &r->model,
                    resuming ? ref : cfg->dpo.ref_checkpoint, r->train.batch.rows, cfg->train.seq_len) != 0)
        return -1;
    d->have_dpo = 1;
    d->stop_token = answer_stop_token(r);
    ct_log("dpo: %s loss, beta %g, reference %s%s", loss_name(cfg->dpo.loss), cfg->dpo.beta,
           cfg->dpo.ref_checkpoint[0] ? cfg->dpo.ref_checkpoint
           : d->dpo.base_as_reference ? "the frozen base with the adapters off"
                                      : "the starting model (frozen copy)",
           cfg->dpo.precompute_ref ? ", precomputed once" : "");
    return cfg->dpo.precompute_ref ? precompute_reference(r) : 0;
}
