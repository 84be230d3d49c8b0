// The model a run config asks for. See train/loop/run_model.h.
#include "train/loop/run_model.h"

#include "core/error.h"

int ct_model_config_from_run(const CtRunConfig *run, CtModelConfig *out) {
    if (ct_model_preset(run->model.preset, out) != 0) return ct_error_prefix("model.preset: ");
    const __typeof__(run->model) *m = &run->model;
    if (m->arch) out->arch = m->arch == 1 ? CT_ARCH_GPT2 : CT_ARCH_LLAMA;
    if (m->n_layer) out->n_layer = m->n_layer;
    if (m->n_head) {
        // a new head count without a kv count means plain multi-head attention
        out->n_head = m->n_head;
        if (!m->n_kv_head) out->n_kv_head = m->n_head;
    }
    if (m->n_kv_head) out->n_kv_head = m->n_kv_head;
    if (m->d_model) out->d_model = m->d_model;
    if (m->d_ff) out->d_ff = m->d_ff;
    if (m->vocab_size) out->vocab_size = m->vocab_size;
    if (m->max_seq_len) out->max_seq_len = m->max_seq_len;
    if (m->norm_eps > 0) out->norm_eps = m->norm_eps;
    if (m->rope_theta > 0) out->rope_theta = m->rope_theta;
    if (m->tie_embeddings) out->tie_embeddings = m->tie_embeddings == 1;
    out->dropout = m->dropout;
    return ct_model_config_validate(out);
}
