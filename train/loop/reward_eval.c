#include "train/loop/reward_eval.h"

#include "core/error.h"
#include "data/loader/loader.h"
#include "train/objectives/reward.h"
#include "train/objectives/step_batches.h"

int ct_reward_eval(CtModel *m, const CtDataset *d, CtSplit split, int T, uint64_t max_pairs, CtRewardMetrics *out) {
    if (d->kind != CT_SHARD_DPO) return ct_error_set("a reward model is evaluated on a dpo dataset (ctrain shard --format dpo)");
    CtLoaderOptions o;
    ct_loader_default_options(&o);
    o.batch = 1;  // one pair a pass: every pair, none dropped to fill a batch
    o.seq_len = T;
    o.shuffle = 0;
    CtLoader pairs;
    if (ct_loader_open(&pairs, d, split, &o) != 0) return -1;
    uint64_t n = pairs.steps_per_epoch;
    if (max_pairs && max_pairs < n) n = max_pairs;
    CtStepBatches s;
    ct_step_batches_init(&s, 1, pairs.batch.rows, T);
    CtRewardStats st;
    ct_reward_stats_init(&st);
    int rc = 0;
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        rc = ct_step_batches_fetch(&s, &pairs);
        if (rc == 0) ct_reward_micro_step(m, &s, 0, 0, 1, 0, &st);  // each pair's loss whole: the mean follows
    }
    ct_step_batches_free(&s);
    ct_loader_close(&pairs);
    if (rc == 0) *out = ct_reward_stats_means(&st);
    return rc;
}
