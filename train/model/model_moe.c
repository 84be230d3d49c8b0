// The Mixture-of-Experts MLP of an MoE layer: which ops run in which order (the math is in
// kernels/, kernels/ops.h's "Mixture of Experts"), the routing statistics every forward adds to
// m->moe, and DeepSeek-V3's auxiliary-loss-free update of the selection bias.
//
//   logits = x·routerᵀ → route (ids, weights) → sort the N·K (token, slot) pairs by expert
//   → gather their rows → per expert: down(act(gate_up(rows))) → out = Σ_k w·expert rows
//     (+ g·shared(x), g = sigmoid(x·shared_gate) or 1)
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "train/model/lora_hooks.h"
#include "train/model/model_internal.h"

int ct_model_moe_index(const CtModelConfig *c, int l) {
    int i = 0;
    for (int j = 0; j < l; j++) i += ct_model_layer_is_moe(c, j);
    return i;
}

static CtMoeRouting routing(const CtModelConfig *c) {
    return (CtMoeRouting){.kind = c->router, .E = c->n_experts, .K = c->top_k, .scale = ct_model_router_scale(c)};
}

// Expert e's gate|up [2F',C] is at experts_w + e·3F'C and its down [C,F'] 2F'C further on: the
// grouped products step 3F'C from one expert to the next.
static size_t expert_stride(const CtModelConfig *c) { return (size_t)3 * c->moe_d_ff * c->d_model; }
static size_t expert_down(const CtModelConfig *c) { return (size_t)2 * c->moe_d_ff * c->d_model; }

void ct_model_moe_forward(CtModel *m, int l, const CtMoeActs *a, const CtAct *x, CtAct *out, int N) {
    const CtOps *ops = m->ops;
    const CtModelConfig *c = &m->config;
    const CtLayerTensors *p = &m->w.layers[l];
    const int C = c->d_model, E = c->n_experts, K = c->top_k, F = c->moe_d_ff, FS = c->n_shared_experts * F;
    const CtMoeRouting r = routing(c);
    CT_CHECK(a->logits && a->offsets, "an MoE layer's forward needs its MoE buffers (CtBlockActs.moe)");
    CT_CHECK(ops->moe_route_forward && ops->grouped_matmul_forward,
             "this backend's op table has no Mixture-of-Experts ops (kernels/ops.h)");
    ops->matmul_forward(a->logits, x, p->router_w, NULL, N, C, E);
    ops->moe_route_forward(a->ids, a->weights, a->probs, a->lse, a->logits, p->router_bias, N, &r);
    ops->moe_permute(a->offsets, a->sorted_token, a->slot_of, a->ids, N, E, K);
    ops->moe_gather_forward(a->xs, x, a->sorted_token, N * K, C);
    ops->grouped_matmul_forward(a->eh, a->xs, p->experts_w, expert_stride(c), a->offsets, E, C, 2 * F);
    if (m->lora) ct_lora_experts_forward(m, l, CT_LORA_EXPERTS_GATE_UP, a->eh, a->xs, a->offsets);
    ct_model_glu_forward(m, a->eh_act, a->eh, N * K, F);
    ops->grouped_matmul_forward(a->ey, a->eh_act, p->experts_w + expert_down(c), expert_stride(c), a->offsets, E, F,
                                C);
    if (m->lora) ct_lora_experts_forward(m, l, CT_LORA_EXPERTS_DOWN, a->ey, a->eh_act, a->offsets);
    if (FS > 0) {  // the shared expert: one SwiGLU every token runs through
        ops->matmul_forward(a->sh_fch, x, p->shared_fc_w, NULL, N, C, 2 * FS);
        if (m->lora) ct_lora_forward(m, l, CT_LORA_SHARED_FC, a->sh_fch, x, N);
        ct_model_glu_forward(m, a->sh_act, a->sh_fch, N, FS);
        ops->matmul_forward(a->sh_out, a->sh_act, p->shared_fc_out_w, NULL, N, FS, C);
        if (m->lora) ct_lora_forward(m, l, CT_LORA_SHARED_FC_OUT, a->sh_out, a->sh_act, N);
        if (p->shared_gate_w) ops->matmul_forward(a->sh_gate, x, p->shared_gate_w, NULL, N, C, 1);
        if (p->shared_gate_w && m->lora) ct_lora_forward(m, l, CT_LORA_SHARED_GATE, a->sh_gate, x, N);
    }
    ops->moe_combine_forward(out, a->ey, a->weights, a->slot_of, FS > 0 ? a->sh_out : NULL,
                             p->shared_gate_w ? a->sh_gate : NULL, N, K, C);
}

// The backward of the shared expert: out = g·down(act(gate_up(x))), given d out·g (combine's
// dshared) and d g's logit (combine's dshared_gate).
static void shared_backward(CtModel *m, int l, const CtMoeActs *a, const CtAct *x, CtAct *dx, int N) {
    const CtOps *ops = m->ops;
    const CtModelConfig *c = &m->config;
    const CtLayerTensors *p = &m->w.layers[l], *gp = &m->g.layers[l];
    CtMoeActivations *s = &m->act.moe;
    const int C = c->d_model, FS = c->n_shared_experts * c->moe_d_ff;
    const size_t A = ops->act_bytes;
    if (p->shared_gate_w) ops->matmul_backward(dx, gp->shared_gate_w, NULL, s->d_sh_gate, x, p->shared_gate_w, N, C, 1);
    if (p->shared_gate_w && m->lora) ct_lora_backward(m, l, CT_LORA_SHARED_GATE, dx, s->d_sh_gate, x, N);
    ops->zero(s->d_sh_act, (size_t)N * FS * A);
    ops->matmul_backward(s->d_sh_act, gp->shared_fc_out_w, NULL, s->d_sh_out, a->sh_act, p->shared_fc_out_w, N, FS, C);
    if (m->lora) ct_lora_backward(m, l, CT_LORA_SHARED_FC_OUT, s->d_sh_act, s->d_sh_out, a->sh_act, N);
    ct_model_glu_backward(m, s->d_sh_fch, a->sh_fch, s->d_sh_act, N, FS);  // written
    ops->matmul_backward(dx, gp->shared_fc_w, NULL, s->d_sh_fch, x, p->shared_fc_w, N, C, 2 * FS);
    if (m->lora) ct_lora_backward(m, l, CT_LORA_SHARED_FC, dx, s->d_sh_fch, x, N);
}

void ct_model_moe_backward(CtModel *m, int l, const CtMoeActs *a, const CtAct *x, const CtAct *dout, CtAct *dx, int N) {
    const CtOps *ops = m->ops;
    const CtModelConfig *c = &m->config;
    const CtLayerTensors *p = &m->w.layers[l], *gp = &m->g.layers[l];
    CtMoeActivations *s = &m->act.moe;
    const int C = c->d_model, E = c->n_experts, K = c->top_k, F = c->moe_d_ff, R = N * K;
    const int shared = c->n_shared_experts > 0;
    const size_t A = ops->act_bytes;
    const CtMoeRouting r = routing(c);

    // out = Σ_k w[n,k]·ey[slot(n,k)] + g·sh: d ey, d w, d sh and d(g's logit), all written
    ops->moe_combine_backward(s->d_rows, s->d_weights, shared ? s->d_sh_out : NULL,
                              p->shared_gate_w ? s->d_sh_gate : NULL, dout, a->ey, a->weights, a->slot_of,
                              shared ? a->sh_out : NULL, p->shared_gate_w ? a->sh_gate : NULL, N, K, C);
    // the experts, over their sorted rows: down, the gated activation, gate|up
    ops->zero(s->d_eh_act, (size_t)R * F * A);
    ops->grouped_matmul_backward(s->d_eh_act, gp->experts_w ? gp->experts_w + expert_down(c) : NULL, s->d_rows,
                                 a->eh_act, p->experts_w + expert_down(c), expert_stride(c), a->offsets, E, F, C);
    if (m->lora) ct_lora_experts_backward(m, l, CT_LORA_EXPERTS_DOWN, s->d_eh_act, s->d_rows, a->eh_act, a->offsets);
    ct_model_glu_backward(m, s->d_eh, a->eh, s->d_eh_act, R, F);  // written
    ops->zero(s->d_rows, (size_t)R * C * A);  // d ey is spent: the buffer now takes d xs
    ops->grouped_matmul_backward(s->d_rows, gp->experts_w, s->d_eh, a->xs, p->experts_w, expert_stride(c), a->offsets,
                                 E, C, 2 * F);
    if (m->lora) ct_lora_experts_backward(m, l, CT_LORA_EXPERTS_GATE_UP, s->d_rows, s->d_eh, a->xs, a->offsets);
    ops->moe_gather_backward(dx, s->d_rows, a->slot_of, N, K, C);  // each token's K rows back to it

    // The router: d logits from d weights and the losses' terms. The losses are means over the MoE
    // layers, so each layer's coefficient is the step's over their number; f[e] = count_e / N.
    const float layers = (float)m->moe.n_layers;
    for (int e = 0; e < E; e++) s->f[e] = (float)(a->offsets[e + 1] - a->offsets[e]) / (float)N;
    ops->moe_route_backward(s->d_logits, s->d_weights, a->logits, a->probs, a->lse, a->ids, a->weights,
                            m->moe.aux_coef != 0 ? s->f : NULL, m->moe.aux_coef / layers, m->moe.z_coef / layers, N,
                            &r);
    ops->matmul_backward(dx, gp->router_w, NULL, s->d_logits, x, p->router_w, N, C, E);
    // (the selection bias gets no gradient: it only chooses; ct_model_moe_update_bias moves it)
    if (shared) shared_backward(m, l, a, x, dx, N);
}

// ---- statistics ----
void ct_model_moe_stats_create(CtModel *m) {
    CtMoeStats *s = &m->moe;
    s->n_layers = ct_model_moe_layers(&m->config);
    s->E = s->n_layers ? m->config.n_experts : 0;
    s->load = s->n_layers ? ct_calloc((size_t)s->n_layers * s->E, sizeof(double)) : NULL;
    ct_model_moe_reset(m);
}

void ct_model_moe_stats_free(CtModel *m) {
    ct_free(m->moe.load);
    m->moe.load = NULL;
}

void ct_model_moe_reset(CtModel *m) {
    CtMoeStats *s = &m->moe;
    if (s->load) memset(s->load, 0, (size_t)s->n_layers * s->E * sizeof(double));
    s->aux_loss_sum = s->z_loss_sum = 0;
    s->n_forwards = 0;
}

// Per MoE layer: the counts per expert, the aux loss E·Σ_e f_e·q_mean_e (K when balanced, as
// Mixtral scales it) and the z-loss; the losses go in as means over the layers.
void ct_model_moe_record(CtModel *m, int N) {
    const CtModelConfig *c = &m->config;
    CtMoeStats *st = &m->moe;
    const CtMoeRouting r = routing(c);
    const int E = st->E;
    double aux = 0, z = 0;
    for (int l = 0, i = 0; l < c->n_layer; l++) {
        if (!ct_model_layer_is_moe(c, l)) continue;
        const CtMoeActs a = ct_model_moe_acts(m, l);
        double lse_sq_mean = 0, *q_mean = m->act.moe.q_mean;
        m->ops->moe_router_stats(q_mean, &lse_sq_mean, a.probs, a.lse, N, &r);
        double layer_aux = 0;
        for (int e = 0; e < E; e++) {
            const int count = a.offsets[e + 1] - a.offsets[e];
            st->load[(size_t)i * E + e] += count;
            layer_aux += (double)count / N * q_mean[e];
        }
        aux += E * layer_aux;
        z += lse_sq_mean;
        i++;
    }
    st->aux_loss_sum += aux / st->n_layers;
    st->z_loss_sum += z / st->n_layers;
    st->n_forwards++;
}

// bias_e += rate·sign(mean − load_e): an overloaded expert becomes less likely to be chosen.
// The new values are computed on the host from the ops' copy and written to both, so the host
// mirror and the ops' memory agree to the bit.
void ct_model_moe_update_bias(CtModel *m, const double *load, float rate) {
    const CtModelConfig *c = &m->config;
    CT_CHECK(ct_model_router_has_bias(c), "the aux-free bias update needs a sigmoid router (model.router)");
    const int E = c->n_experts;
    float bias[CT_MOE_MAX_EXPERTS];
    for (int l = 0, i = 0; l < c->n_layer; l++) {
        if (!ct_model_layer_is_moe(c, l)) continue;
        float *dev = m->w.layers[l].router_bias, *host = m->params + (dev - m->dev_params);
        const double *count = load + (size_t)i * E;
        double mean = 0;
        for (int e = 0; e < E; e++) mean += count[e];
        mean /= E;
        m->ops->download(bias, dev, (size_t)E * sizeof(float));
        for (int e = 0; e < E; e++) bias[e] += count[e] < mean ? rate : count[e] > mean ? -rate : 0.0f;
        if (!m->ops->host_memory) m->ops->upload(dev, bias, (size_t)E * sizeof(float));
        memcpy(host, bias, (size_t)E * sizeof(float));
        i++;
    }
}

// ---- one layer's buffers (generation) ----
void ct_model_moe_acts_alloc(const CtModel *m, int N, CtMoeActs *a) {
    const CtOps *ops = m->ops;
    const CtModelConfig *c = &m->config;
    const size_t A = ops->act_bytes, n = (size_t)N, E = (size_t)c->n_experts, K = (size_t)c->top_k;
    const size_t C = (size_t)c->d_model, F = (size_t)c->moe_d_ff, FS = (size_t)c->n_shared_experts * F, R = n * K;
    const char *what = "MoE layer state";
    *a = (CtMoeActs){.logits = ops->alloc(A * n * E, what),
                     .probs = ops->alloc(sizeof(float) * n * E, what),
                     .lse = ops->alloc(sizeof(float) * n, what),
                     .ids = ops->alloc(sizeof(int32_t) * n * K, what),
                     .weights = ops->alloc(sizeof(float) * n * K, what),
                     .offsets = ct_calloc(E + 1, sizeof(int32_t)),
                     .sorted_token = ops->alloc(sizeof(int32_t) * R, what),
                     .slot_of = ops->alloc(sizeof(int32_t) * R, what),
                     .xs = ops->alloc(A * R * C, what),
                     .eh = ops->alloc(A * R * 2 * F, what),
                     .eh_act = ops->alloc(A * R * F, what),
                     .ey = ops->alloc(A * R * C, what),
                     .sh_fch = FS ? ops->alloc(A * n * 2 * FS, what) : NULL,
                     .sh_act = FS ? ops->alloc(A * n * FS, what) : NULL,
                     .sh_out = FS ? ops->alloc(A * n * C, what) : NULL,
                     .sh_gate = c->shared_expert_gate ? ops->alloc(A * n, what) : NULL};
}

void ct_model_moe_acts_free(const CtModel *m, CtMoeActs *a) {
    const CtOps *ops = m->ops;
    void *buffers[] = {a->logits, a->probs, a->lse, a->ids, a->weights, a->sorted_token, a->slot_of, a->xs,
                       a->eh, a->eh_act, a->ey, a->sh_fch, a->sh_act, a->sh_out, a->sh_gate};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) ops->free(buffers[i]);  // NULL is fine
    ct_free(a->offsets);
    memset(a, 0, sizeof *a);
}
