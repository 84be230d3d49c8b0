// P-tuning's LSTM prompt encoder, as PEFT's PromptEncoder computes it:
//
//   P = W₂·ReLU(W₀·LSTM(E) + b₀) + b₂          mlp_head.0 [2H,2H], mlp_head.2
//   [C,2H]
//
// LSTM = torch.nn.LSTM(C, H, num_layers=L, bidirectional=True,
// batch_first=True) over the V rows of E as one sequence: layer l's input is E
// (l = 0) or layer l−1's output [V,2H]; each direction d (0 forward, 1 reverse:
// PyTorch's "_reverse") projects it, xg = x·W_ihᵀ + b_ih (matmul op), and runs
// the recurrence (lstm op, kernels/ops.h), writing its H columns of the layer's
// output (forward first, as torch concatenates). Backward, from dP:
//   dA = dP·W₂ (matmul), dM = dA⊙[M>0] (relu), dOut_{L−1} = dM·W₀
//   for l = L−1..0, each d: dxg = the recurrence's backward of dOut_l's H
//   columns (through time),
//     dx_l += dxg·W_ih, dW_ih += dxgᵀ·x_l, db_ih += Σ dxg   (dx_0 = dE, the
//     embedding's gradient)
// PyTorch's dropout between layers is not implemented (encoder_dropout 0 only).
#include "train/model/peft_lstm.h"

#include <math.h>
#include <stdio.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"

#define MAX_LAYERS 3 // 1 + 8·L + 4 tensors must fit CT_PEFT_MAX_TENSORS

struct CtPeftLstm {
    int V, C, H, L;
    float *out[MAX_LAYERS]; // [V,2H] each layer's output
    float *c[MAX_LAYERS][2],
        *g[MAX_LAYERS][2]; // [V,H] cells, [V,4H] activated gates
    float *xg, *m, *a,
        *P;                           // [V,4H] projection (dxg in the backward), [V,2H] ×2, [V,C]
    float *d_a, *d_m, *d_out[2], *dc; // backward scratch: [V,2H] ×4, [V,H]
    float *mem;
};

static int tensor_index(int l, int d, int which) { return 1 + (2 * l + d) * 4 + which; } // w_ih w_hh b_ih b_hh

int ct_peft_lstm_layout(const CtPeftSpec *s, int C, int H, CtPeftTensor *out) {
    const int L = s->encoder_num_layers;
    if (L < 1 || L > MAX_LAYERS)
        return ct_error_set("p_tuning: encoder_num_layers %d: ctrain's LSTM prompt "
                            "encoder takes 1 to %d layers",
                            L, MAX_LAYERS);
    if (s->encoder_dropout != 0)
        return ct_error_set("p_tuning: encoder_dropout %g: the LSTM prompt "
                            "encoder's dropout between layers is not "
                            "implemented in ctrain; use 0 (PEFT's default)",
                            s->encoder_dropout);
    out[0] = ct_peft_tensor("embedding.weight", s->num_virtual_tokens, C, 1);
    for (int l = 0; l < L; l++)
        for (int d = 0; d < 2; d++) {
            const char *rev = d ? "_reverse" : "";
            const int in = l ? 2 * H : C;
            char name[64];
            snprintf(name, sizeof name, "lstm_head.weight_ih_l%d%s", l, rev);
            out[tensor_index(l, d, 0)] = ct_peft_tensor(name, 4 * H, in, 1);
            snprintf(name, sizeof name, "lstm_head.weight_hh_l%d%s", l, rev);
            out[tensor_index(l, d, 1)] = ct_peft_tensor(name, 4 * H, H, 1);
            snprintf(name, sizeof name, "lstm_head.bias_ih_l%d%s", l, rev);
            out[tensor_index(l, d, 2)] = ct_peft_tensor(name, 4 * H, 0, 0);
            snprintf(name, sizeof name, "lstm_head.bias_hh_l%d%s", l, rev);
            out[tensor_index(l, d, 3)] = ct_peft_tensor(name, 4 * H, 0, 0);
        }
    const int k = tensor_index(L, 0, 0);
    out[k] = ct_peft_tensor("mlp_head.0.weight", 2 * H, 2 * H, 1);
    out[k + 1] = ct_peft_tensor("mlp_head.0.bias", 2 * H, 0, 0);
    out[k + 2] = ct_peft_tensor("mlp_head.2.weight", C, 2 * H, 1);
    out[k + 3] = ct_peft_tensor("mlp_head.2.bias", C, 0, 0);
    return k + 4;
}

CtPeftLstm *ct_peft_lstm_new(int V, int C, int H, int L) {
    CtPeftLstm *e = ct_calloc(1, sizeof *e);
    *e = (CtPeftLstm){.V = V, .C = C, .H = H, .L = L};
    const size_t v = (size_t)V, h = (size_t)H, c = (size_t)C;
    const size_t per_layer = v * 2 * h + 2 * (v * h + v * 4 * h);
    e->mem = ct_alloc(sizeof(float) * ((size_t)L * per_layer + v * 4 * h + 6 * v * 2 * h + v * c + v * h + 1));
    float *q = e->mem;
    for (int l = 0; l < L; l++) {
        e->out[l] = q, q += v * 2 * h;
        for (int d = 0; d < 2; d++)
            e->c[l][d] = q, q += v * h, e->g[l][d] = q, q += v * 4 * h;
    }
    e->xg = q, q += v * 4 * h;
    e->m = q, q += v * 2 * h;
    e->a = q, q += v * 2 * h;
    e->d_a = q, q += v * 2 * h;
    e->d_m = q, q += v * 2 * h;
    e->d_out[0] = q, q += v * 2 * h;
    e->d_out[1] = q, q += v * 2 * h;
    e->P = q, q += v * c;
    e->dc = q;
    return e;
}

void ct_peft_lstm_free(CtPeftLstm *e) {
    if (!e)
        return;
    ct_free(e->mem);
    ct_free(e);
}

void ct_peft_lstm_init(CtPeft *p, uint64_t seed) {
    const int L = p->spec.encoder_num_layers, H = (int)p->tensors[tensor_index(0, 0, 1)].shape[1];
    const float bound = 1.0f / sqrtf((float)H);
    for (int i = 1; i < tensor_index(L, 0, 0); i++) {
        const CtPeftTensor *t = &p->tensors[i];
        float *v = p->params + t->offset;
        CtRng rng;
        ct_rng_seed_stream(&rng, seed, CT_RNG_STREAM_PEFT_INIT + (uint64_t)i);
        for (size_t j = 0; j < t->numel; j++)
            v[j] = (2 * ct_rng_uniform(&rng) - 1) * bound;
    }
}

static const float *param(const CtPeft *p, int i) { return p->dev_params + p->tensors[i].offset; }
static float *grad(const CtPeft *p, int i) { return p->dev_grads + p->tensors[i].offset; }

const float *ct_peft_lstm_forward(CtPeftLstm *e, const CtOps *ops, const CtPeft *p) {
    const int V = e->V, C = e->C, H = e->H, L = e->L;
    CT_CHECK(ops->lstm_forward && ops->host_memory, "p_tuning's LSTM prompt encoder runs on the CPU only for now "
                                                    "(run.device cpu; or the MLP encoder)");
    for (int l = 0; l < L; l++) {
        const float *x = l ? e->out[l - 1] : param(p, 0);
        for (int d = 0; d < 2; d++) {
            ops->matmul_forward(e->xg, x, param(p, tensor_index(l, d, 0)), param(p, tensor_index(l, d, 2)), V,
                                l ? 2 * H : C, 4 * H);
            ops->lstm_forward(e->out[l] + d * H, e->c[l][d], e->g[l][d], e->xg, param(p, tensor_index(l, d, 1)),
                              param(p, tensor_index(l, d, 3)), V, H, 2 * H, d);
        }
    }
    const int k = tensor_index(L, 0, 0);
    ops->matmul_forward(e->m, e->out[L - 1], param(p, k), param(p, k + 1), V, 2 * H, 2 * H);
    ops->relu_forward(e->a, e->m, (size_t)V * 2 * H);
    ops->matmul_forward(e->P, e->a, param(p, k + 2), param(p, k + 3), V, 2 * H, C);
    return e->P;
}

void ct_peft_lstm_backward(CtPeftLstm *e, const CtOps *ops, CtPeft *p, const float *dP) {
    const int V = e->V, C = e->C, H = e->H, L = e->L, k = tensor_index(L, 0, 0);
    const size_t V2H = (size_t)V * 2 * H * sizeof(float);
    ops->zero(e->d_a, V2H);
    ops->matmul_backward(e->d_a, grad(p, k + 2), grad(p, k + 3), dP, e->a, param(p, k + 2), V, 2 * H, C);
    ops->zero(e->d_m, V2H);
    ops->relu_backward(e->d_m, e->m, e->d_a, (size_t)V * 2 * H);
    float *d_here = e->d_out[0], *d_below = e->d_out[1];
    ops->zero(d_here, V2H);
    ops->matmul_backward(d_here, grad(p, k), grad(p, k + 1), e->d_m, e->out[L - 1], param(p, k), V, 2 * H, 2 * H);
    for (int l = L - 1; l >= 0; l--) {
        const float *x = l ? e->out[l - 1] : param(p, 0);
        float *dx = l ? d_below : grad(p, 0); // layer 0: the embedding's gradient, added to
        if (l)
            ops->zero(dx, V2H);
        for (int d = 0; d < 2; d++) {
            ops->lstm_backward(e->xg, grad(p, tensor_index(l, d, 1)), grad(p, tensor_index(l, d, 3)), d_here + d * H,
                               e->dc, e->out[l] + d * H, e->c[l][d], e->g[l][d], param(p, tensor_index(l, d, 1)), V, H,
                               2 * H, d);
            ops->matmul_backward(dx, grad(p, tensor_index(l, d, 0)), grad(p, tensor_index(l, d, 2)), e->xg, x,
                                 param(p, tensor_index(l, d, 0)), V, l ? 2 * H : C, 4 * H);
        }
        float *t = d_here;
        d_here = d_below;
        d_below = t;
    }
}
