#include "train/objectives/objective.h"

#include <cJSON.h>

#include "core/alloc.h"
#include "core/fs.h"
#include "core/rng.h"
#include "data/input/read_file.h"

const CtObjective *ct_objective_for(CtObjectiveKind kind) {
    return kind == CT_OBJECTIVE_SFT ? &ct_objective_sft : kind == CT_OBJECTIVE_DPO ? &ct_objective_dpo : &ct_objective_lm;
}

uint64_t ct_objective_dropout_seed(uint64_t seed, uint64_t micro_batch) {
    CtRng rng;
    ct_rng_seed_stream(&rng, seed, CT_RNG_STREAM_DROPOUT + micro_batch);
    return ct_rng_next(&rng);
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
