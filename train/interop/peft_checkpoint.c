// Prompt-learning runs' checkpoints: the adapter's tensor table, its moments and a reference to
// the base. See train/interop/peft_checkpoint.h.
#include "train/interop/peft_checkpoint.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

// GROUP/<name> for each tensor of the adapter over a buffer of its layout.
static int write_group(CtCheckpoint *c, const CtPeft *p, const char *group, const float *buffer) {
    CtNamedTensor t[CT_PEFT_MAX_TENSORS];
    ct_peft_named_tensors(p, buffer, t);
    return ct_ckpt_write_tensors(c, group, t, p->n_tensors);
}

static int read_group(CtCheckpoint *c, const CtPeft *p, const char *group, float *buffer) {
    CtNamedTensor t[CT_PEFT_MAX_TENSORS];
    ct_peft_named_tensors(p, buffer, t);
    return ct_ckpt_read_tensors(c, group, t, p->n_tensors);
}

int ct_peft_checkpoint_save(const char *path, const CtModel *m, const CtAdamW *opt, const CtCheckpointMeta *meta) {
    const CtPeft *p = m->peft;
    CtCheckpoint c;
    if (ct_ckpt_create(&c, path) != 0) return -1;
    ct_peft_sync((CtModel *)m, 0);
    char *model_json = ct_model_config_json(&m->config), *spec_json = ct_peft_spec_json(&p->spec);
    int rc = ct_ckpt_set_string(&c, "model_config", model_json) || ct_ckpt_set_string(&c, "peft_config", spec_json) ||
             ct_ckpt_set_string(&c, "peft_base", p->base_path) || ct_ckpt_set_u64s(&c, "peft_base_hash", &p->base_hash, 1);
    free(model_json);
    free(spec_json);
    if (rc == 0) rc = write_group(&c, p, "peft", p->params);
    if (rc == 0 && opt)
        rc = write_group(&c, p, "optim/m", opt->m) || write_group(&c, p, "optim/v", opt->v) ||
             ct_ckpt_set_int(&c, "optim_step", opt->step);
    if (rc == 0) rc = ct_checkpoint_write_meta(&c, meta);
    if (rc != 0) {
        ct_ckpt_abort(&c);
        return -1;
    }
    return ct_ckpt_commit(&c);
}

// The moments into opt, (re)allocated to the adapter's size.
static int read_moments(CtCheckpoint *c, const char *path, const CtModel *m, CtAdamW *opt) {
    if (!ct_ckpt_has(c, "optim/m") || !ct_ckpt_has(c, "optim/v"))
        return ct_error_set("%s: holds no optimizer state for its adapter (best.h5?); resume from a step checkpoint",
                            path);
    ct_free(opt->m);
    ct_free(opt->v);
    opt->n = m->n_train;
    opt->m = ct_calloc(opt->n ? opt->n : 1, sizeof(float));
    opt->v = ct_calloc(opt->n ? opt->n : 1, sizeof(float));
    int64_t step = 0;
    int rc = read_group(c, m->peft, "optim/m", opt->m) || read_group(c, m->peft, "optim/v", opt->v) ||
             ct_ckpt_get_int(c, "optim_step", &step);
    opt->step = (long)step;
    return rc ? -1 : 0;
}

int ct_peft_checkpoint_open(CtPeftCheckpoint *pc, const char *path, CtCheckpointMeta *meta) {
    memset(pc, 0, sizeof *pc);
    if (ct_ckpt_open(&pc->file, path) != 0) return -1;
    char *spec_json = NULL;
    int rc = ct_checkpoint_read_meta_open(&pc->file, path, &pc->config, meta);
    if (rc == 0)
        rc = ct_ckpt_get_string(&pc->file, "peft_config", &spec_json) ||
                     ct_ckpt_get_string(&pc->file, "peft_base", &pc->base_path) ||
                     ct_ckpt_get_u64s(&pc->file, "peft_base_hash", &pc->base_hash, 1)
                 ? -1
                 : 0;
    if (rc == 0) rc = ct_peft_spec_parse_json(spec_json, &pc->spec, path);
    ct_free(spec_json);
    if (rc != 0) {
        ct_peft_checkpoint_close(pc);
        ct_checkpoint_meta_free(meta);
    }
    return rc;
}

void ct_peft_checkpoint_close(CtPeftCheckpoint *pc) {
    ct_free(pc->base_path);
    pc->base_path = NULL;
    ct_ckpt_close(&pc->file);
}

int ct_peft_checkpoint_read(CtPeftCheckpoint *pc, const char *path, CtModel *m, CtAdamW *opt) {
    int rc = 0;
    if (memcmp(&m->config, &pc->config, sizeof pc->config) != 0)
        rc = ct_error_set("%s: its base %s has another shape than the one recorded", path, pc->base_path);
    if (rc == 0) rc = ct_peft_attach(m, &pc->spec);
    if (rc == 0) {
        ct_peft_record_base(m->peft, pc->base_path, pc->base_hash);
        rc = read_group(&pc->file, m->peft, "peft", m->peft->params);
        ct_peft_sync(m, 1);
    }
    if (rc == 0 && opt) rc = read_moments(&pc->file, path, m, opt);
    return rc;
}
