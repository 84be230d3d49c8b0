#include "train/objectives/grpo_reward_model.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "train/interop/checkpoint_io.h"
#include "train/objectives/reward.h"

// What the checkpoint must be before its tensors are read: a reward model of the policy's
// vocabulary and tokenizer.
static int check_shape(const char *path, const CtModelConfig *c, const CtCheckpointMeta *meta, int vocab_size,
                       uint64_t tokenizer_hash) {
    if (!c->reward_head)
        return ct_error_set("%s is not a reward model (it has no model.reward_head, no score head): give a "
                            "checkpoint of `ctrain reward`", path);
    if (vocab_size > 0 && c->vocab_size != vocab_size)
        return ct_error_set("%s has a vocabulary of %d tokens, the policy %d: the reward model must use the policy's "
                            "tokenizer (it reads the policy's token ids)", path, c->vocab_size, vocab_size);
    if (tokenizer_hash && meta->tokenizer_hash && meta->tokenizer_hash != tokenizer_hash)
        return ct_error_set("%s was trained with another tokenizer than the policy's (fingerprints %016llx and "
                            "%016llx): the reward model reads the policy's token ids", path,
                            (unsigned long long)meta->tokenizer_hash, (unsigned long long)tokenizer_hash);
    return 0;
}

int ct_reward_model_open(CtRewardModel *rm, const char *path, int vocab_size, uint64_t tokenizer_hash, int batch,
                         int max_tokens) {
    memset(rm, 0, sizeof *rm);
    CtModelConfig config;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_read_meta(path, &config, &meta) != 0) return -1;
    int rc = check_shape(path, &config, &meta, vocab_size, tokenizer_hash);
    ct_checkpoint_meta_free(&meta);
    if (rc != 0) return -1;
    rm->batch = batch > 0 ? batch : 4;
    rm->max_tokens = max_tokens > 0 && max_tokens < config.max_seq_len ? max_tokens : config.max_seq_len;
    ct_checkpoint_meta_init(&meta);
    if (ct_checkpoint_load(path, &rm->model, ct_ops_cpu(), rm->batch, rm->max_tokens, CT_MODEL_FROZEN, NULL, &meta) != 0)
        return -1;
    ct_checkpoint_meta_free(&meta);
    if (!rm->model.config.reward_head) {  // a LoRA checkpoint whose base is a language model
        const CtModelConfig loaded = rm->model.config;
        ct_model_free(&rm->model);
        return check_shape(path, &loaded, &meta, 0, 0);
    }
    rm->pad_id = rm->model.config.reward_pad_id;
    rm->rows = ct_alloc(sizeof(int32_t) * (size_t)rm->batch * (size_t)rm->max_tokens);
    rm->last = ct_alloc(sizeof(int) * (size_t)rm->batch);
    rm->scores = ct_alloc(sizeof(float) * (size_t)rm->batch);
    return 0;
}

// A sequence's length as scored: prompt + completion, at most max_tokens.
static int row_len(const CtRewardModel *rm, const CtRewardInput *in) {
    const int n = in->n_prompt + in->n_completion;
    return n < rm->max_tokens ? n : rm->max_tokens;
}

// The last `len` tokens of prompt + completion into row.
static void fill_row(const CtRewardInput *in, int len, int32_t *row) {
    int np = in->n_prompt, nc = in->n_completion;
    const int32_t *p = in->prompt_ids, *c = in->completion_ids;
    if (nc > len) {  // the completion's end alone
        c += nc - len;
        nc = len;
    }
    if (np + nc > len) {  // the prompt's end before the whole completion
        p += np - (len - nc);
        np = len - nc;
    }
    if (np) memcpy(row, p, sizeof(int32_t) * (size_t)np);
    if (nc) memcpy(row + np, c, sizeof(int32_t) * (size_t)nc);
}

int ct_reward_model_score(CtRewardModel *rm, const CtRewardInput *in, int n, double *out) {
    const int V = rm->model.config.vocab_size;
    for (int j = 0; j < n; j++) {
        if (in[j].n_prompt + in[j].n_completion <= 0) return ct_error_set("completion %d: no tokens to score", j);
        for (int k = 0; k < in[j].n_prompt + in[j].n_completion; k++) {
            const int32_t id = k < in[j].n_prompt ? in[j].prompt_ids[k] : in[j].completion_ids[k - in[j].n_prompt];
            if (id < 0 || id >= V)
                return ct_error_set("completion %d: token id %d is outside the reward model's vocabulary (%d)", j, id, V);
        }
    }
    const int32_t pad = rm->pad_id >= 0 ? rm->pad_id : 0;  // after a row's end: causal attention never reads it
    for (int from = 0; from < n; from += rm->batch) {
        const int B = n - from < rm->batch ? n - from : rm->batch;
        int T = 1;
        for (int r = 0; r < B; r++)
            if (row_len(rm, &in[from + r]) > T) T = row_len(rm, &in[from + r]);
        for (int r = 0; r < B; r++) {  // the rows as one [B, T] block, each padded after its end
            const int len = row_len(rm, &in[from + r]);
            int32_t *row = rm->rows + (size_t)r * T;
            fill_row(&in[from + r], len, row);
            for (int t = len; t < T; t++) row[t] = pad;
            rm->last[r] = ct_reward_last_token(row, len, rm->pad_id);
        }
        CtBatch b = {.tokens = rm->rows, .B = B, .T = T};
        ct_model_reward_forward(&rm->model, &b, rm->last, rm->scores);
        for (int r = 0; r < B; r++) out[from + r] = rm->scores[r];
    }
    return 0;
}

void ct_reward_model_close(CtRewardModel *rm) {
    if (rm->rows) ct_model_free(&rm->model);
    ct_free(rm->rows);
    ct_free(rm->last);
    ct_free(rm->scores);
    memset(rm, 0, sizeof *rm);
}
