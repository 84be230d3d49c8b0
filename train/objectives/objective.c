#include "train/objectives/objective.h"

#include <cJSON.h>

#include "core/alloc.h"
#include "core/fs.h"
#include "core/rng.h"
#include "data/input/read_file.h"

const CtObjective *ct_objective_for(CtObjectiveKind kind) {
    switch (kind) {
    case CT_OBJECTIVE_SFT: return &ct_objective_sft;
    case CT_OBJECTIVE_DPO: return &ct_objective_dpo;
    case CT_OBJECTIVE_REWARD: return &ct_objective_reward;
    case CT_OBJECTIVE_GRPO: return &ct_objective_grpo;
    case CT_OBJECTIVE_MLM: return &ct_objective_mlm;
    default: return &ct_objective_lm;
    }
}

uint64_t ct_objective_dropout_seed(uint64_t seed, uint64_t micro_batch) {
    CtRng rng;
    ct_rng_seed_stream(&rng, seed, CT_RNG_STREAM_DROPOUT + micro_batch);
    return ct_rng_next(&rng);
}

// Each router loss is a mean over one micro-batch's rows (and the MoE layers), so each of the
// step's accum·world micro-batches contributes 1/(accum·world) of it: the step's gradient is that of
// the mean over all of them. Not the LM loss's share (counted targets / the step's): the router
// sees every row, prompt and padding included, and a fixed share keeps "N ranks × batch B = one rank
// × batch N·B" for the z-loss (a mean over rows, whatever the loss mask) — exactly. The load-balancing
// loss E·Σ_e f_e·P_e is a product of two means over the micro-batch, so it depends on how the step is
// cut into micro-batches on any weighting; with this one N ranks × B equal one rank × B accumulating N.
void ct_objective_set_router_losses(CtObjectiveRun *o) {
    CtModel *m = o->model;
    const float share = 1.0f / (float)((double)o->set.accum * o->set.world);
    m->moe.aux_coef = m->moe.n_layers ? o->set.aux_loss_coef * share : 0;
    m->moe.z_coef = m->moe.n_layers ? o->set.router_z_loss_coef * share : 0;
}

uint64_t ct_objective_val_start(CtObjectiveRun *o) {
    CtLoaderState start = {o->set.seed, 0, 0};
    ct_loader_restore(o->val, &start);
    uint64_t n = (uint64_t)o->set.eval_batches;
    return n < o->val->steps_per_epoch ? n : o->val->steps_per_epoch;
}

char *ct_objective_chat_template(const char *dataset_dir) {
    char path[4096];
    ct_path_join(path, sizeof path, dataset_dir, "dataset.json");
    size_t size;
    char *text = ct_read_whole_file(path, &size);
    if (!text) return NULL;
    cJSON *root = cJSON_Parse(text);
    ct_free(text);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "source"), "chat_template");
    char *json = cJSON_IsObject(t) ? cJSON_PrintUnformatted(t) : NULL;
    cJSON_Delete(root);
    return json;
}
