// Model checkpoints: a plain model's, and the choice between it and a LoRA run's
// (train/interop/lora_checkpoint.h). See train/interop/checkpoint_io.h.
#include "train/interop/checkpoint_io.h"

#include <stdlib.h>

#include "checkpoints/checkpoint.h"
#include "core/alloc.h"
#include "core/error.h"
#include "train/interop/lora_checkpoint.h"
#include "train/interop/peft_checkpoint.h"

// The optimizer moments as named tensors shaped like the parameters.
static void moment_tensors(const CtModel *m, const float *moment, CtNamedTensor *out) {
    ct_model_named_tensors(m, 0, out);
    for (int i = 0; i < m->n_tensors; i++) out[i].data = (void *)(moment + m->table[i].offset);
}

static int save_plain(const char *path, const CtModel *m, const CtAdamW *opt, const CtCheckpointMeta *meta) {
    CtCheckpoint c;
    if (ct_ckpt_create(&c, path) != 0) return -1;
    CtNamedTensor *t = ct_alloc(sizeof(CtNamedTensor) * (size_t)m->n_tensors);
    char *model_json = ct_model_config_json(&m->config);
    int rc = ct_ckpt_set_string(&c, "model_config", model_json);
    free(model_json);
    ct_model_named_tensors(m, 0, t);
    if (rc == 0) rc = ct_ckpt_write_tensors(&c, "model", t, m->n_tensors);
    if (rc == 0 && opt) {
        moment_tensors(m, opt->m, t);
        rc = ct_ckpt_write_tensors(&c, "optim/m", t, m->n_tensors);
        moment_tensors(m, opt->v, t);
        if (rc == 0) rc = ct_ckpt_write_tensors(&c, "optim/v", t, m->n_tensors);
        if (rc == 0) rc = ct_ckpt_set_int(&c, "optim_step", opt->step);
    }
    ct_free(t);
    if (rc == 0) rc = ct_checkpoint_write_meta(&c, meta);
    if (rc != 0) {
        ct_ckpt_abort(&c);
        return -1;
    }
    return ct_ckpt_commit(&c);
}

// keep: leave the adapters apart (no optimizer state read when opt is NULL)
static int load_lora(const char *path, CtModel *m, const CtOps *ops, int max_B, int max_T, int flags, CtAdamW *opt,
                     CtCheckpointMeta *meta, int keep) {
    CtLoraCheckpoint lc;
    if (ct_lora_checkpoint_open(&lc, path, meta) != 0) return -1;
    // resuming trains the adapters again: the base frozen; otherwise the adapters are merged
    int rc = ct_lora_load_base(lc.base_path, lc.base_hash, path, m, ops, max_B, max_T,
                               flags | (keep ? CT_MODEL_FROZEN : 0));
    if (rc == 0 && ct_lora_checkpoint_read(&lc, path, m, opt, keep) != 0) {
        ct_model_free(m);
        rc = -1;
    }
    ct_lora_checkpoint_close(&lc);
    if (rc != 0) ct_checkpoint_meta_free(meta);
    return rc;
}

// The base on the CPU (the adapter attaches there), frozen, then the adapter, which stays apart.
static int load_peft(const char *path, CtModel *m, const CtOps *ops, int max_B, int max_T, int flags, CtAdamW *opt,
                     CtCheckpointMeta *meta) {
    CtPeftCheckpoint pc;
    if (ct_peft_checkpoint_open(&pc, path, meta) != 0) return -1;
    int rc = ct_lora_load_base(pc.base_path, pc.base_hash, path, m, ct_ops_cpu(), max_B, max_T, flags | CT_MODEL_FROZEN);
    if (rc == 0 && ct_peft_checkpoint_read(&pc, path, m, opt) != 0) {
        ct_model_free(m);
        rc = -1;
    }
    ct_peft_checkpoint_close(&pc);
    if (rc != 0) {
        ct_checkpoint_meta_free(meta);
        return -1;
    }
    if (!ops->host_memory) ct_model_to_backend(m, ops);
    return 0;
}

int ct_checkpoint_save(const char *path, const CtModel *m, const CtAdamW *opt, const CtCheckpointMeta *meta) {
    if (m->lora) return ct_lora_checkpoint_save(path, m, opt, meta);  // adapters only (train/interop/lora_checkpoint.h)
    if (m->peft) return ct_peft_checkpoint_save(path, m, opt, meta);  // a prompt-learning adapter (peft_checkpoint.h)
    return save_plain(path, m, opt, meta);
}

int ct_checkpoint_load(const char *path, CtModel *m, const CtOps *ops, int max_B, int max_T, int flags,
                       CtAdamW *opt, CtCheckpointMeta *meta) {
    CtCheckpoint c;
    if (ct_ckpt_open(&c, path) != 0) return -1;
    CtModelConfig config;
    if (ct_checkpoint_read_meta_open(&c, path, &config, meta) != 0) {
        ct_ckpt_close(&c);
        ct_checkpoint_meta_free(meta);
        return -1;
    }
    if (ct_ckpt_has(&c, "lora_config")) {  // a LoRA run's checkpoint: its base + adapters (train/interop/lora_checkpoint.h)
        ct_ckpt_close(&c);
        ct_checkpoint_meta_free(meta);
        return load_lora(path, m, ops, max_B, max_T, flags, opt, meta, opt != NULL);
    }
    if (ct_ckpt_has(&c, "peft_config")) {  // a prompt-learning run's: its base + the adapter (peft_checkpoint.h)
        ct_ckpt_close(&c);
        ct_checkpoint_meta_free(meta);
        return load_peft(path, m, ops, max_B, max_T, flags, opt, meta);
    }
    if (ct_model_create(m, &config, ops, max_B, max_T, flags) != 0) {
        ct_ckpt_close(&c);
        ct_checkpoint_meta_free(meta);
        return -1;
    }
    CtNamedTensor *t = ct_alloc(sizeof(CtNamedTensor) * (size_t)m->n_tensors);
    ct_model_named_tensors(m, 0, t);
    int rc = ct_ckpt_read_tensors(&c, "model", t, m->n_tensors);
    if (rc == 0 && opt) {
        if (!ct_ckpt_has(&c, "optim/m") || !ct_ckpt_has(&c, "optim/v")) {
            rc = ct_error_set("%s: holds no optimizer state (an export?); start a new run from it with init_from", path);
        } else {
            int64_t optim_step = 0;
            if (!opt->m || opt->n != m->n_params) {  // sized now that the model's size is known
                ct_free(opt->m);
                ct_free(opt->v);
                opt->n = m->n_params;
                opt->m = ct_calloc(opt->n, sizeof(float));
                opt->v = ct_calloc(opt->n, sizeof(float));
            }
            moment_tensors(m, opt->m, t);
            rc = ct_ckpt_read_tensors(&c, "optim/m", t, m->n_tensors);
            moment_tensors(m, opt->v, t);
            if (rc == 0) rc = ct_ckpt_read_tensors(&c, "optim/v", t, m->n_tensors);
            if (rc == 0) rc = ct_ckpt_get_int(&c, "optim_step", &optim_step);
            opt->step = (long)optim_step;
        }
    }
    ct_free(t);
    ct_ckpt_close(&c);
    if (rc != 0) {
        ct_model_free(m);
        ct_checkpoint_meta_free(meta);
    }
    return rc;
}

int ct_lora_load_base(const char *base_path, uint64_t expected_hash, const char *referrer, CtModel *m,
                      const CtOps *ops, int max_B, int max_T, int flags) {
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_load(base_path, m, ops, max_B, max_T, flags, NULL, &meta) != 0)
        return ct_error_prefix("%s: its base checkpoint: ", referrer);
    ct_checkpoint_meta_free(&meta);
    if (expected_hash) {
        uint64_t got = ct_lora_base_hash(m);
        if (got != expected_hash) {
            ct_model_free(m);
            return ct_error_set("%s: the base checkpoint %s is not the model these adapters were trained on (its "
                                "parameters hash to %016llx, the adapters expect %016llx)", referrer, base_path,
                                (unsigned long long)got, (unsigned long long)expected_hash);
        }
    }
    return 0;
}

int ct_lora_checkpoint_load_adapters(const char *path, CtModel *m, const CtOps *ops, int flags, CtCheckpointMeta *meta) {
    CtCheckpoint c;
    if (ct_ckpt_open(&c, path) != 0) return -1;
    int is_lora = ct_ckpt_has(&c, "lora_config");
    ct_ckpt_close(&c);
    if (!is_lora) return ct_error_set("%s: not a LoRA run's checkpoint (it has no lora_config)", path);
    return load_lora(path, m, ops, 1, 1, flags, NULL, meta, 1);
}
