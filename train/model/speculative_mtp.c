#include "train/model/speculative_mtp.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/cpu/bf16_weights.h"
#include "kernels/cpu/cpu_ops.h"

static int min_int(int a, int b) { return a < b ? a : b; }

// What feeds depth k at position j: the hidden plane it reads there, and the token
// `token_shift` places on (seq[j + shift]). DeepSeek-V3's sequential modules: the previous
// depth's output (the main model's hidden state for k = 1) and seq[j + k]. Parallel heads: the
// trunk plane and no token (shift 0: the row's own token, which only gives the count), so every
// depth's rows are final as soon as the target's are. The rest of the drafter (catch-up,
// rollback) follows from these two numbers.
typedef struct {
    int plane, token_shift;
} DepthInput;

static DepthInput depth_input(const CtMtpDrafter *md, int k) {
    if (md->target->model->config.mtp_style == CT_MTP_PARALLEL) return (DepthInput){.plane = 0, .token_shift = 0};
    return (DepthInput){.plane = k - 1, .token_shift = k};
}

CtAct *ct_mtp_drafter_plane(const CtMtpDrafter *md, int p, int pos) {
    const CtGenerator *g = md->target;
    const size_t C = (size_t)g->model->config.d_model;
    return ct_act_at(g->model->ops->act_bytes, md->hidden, ((size_t)p * (size_t)g->max_ctx + (size_t)pos) * C);
}

// At position len−2 (the last whose main hidden state the target has: it fed seq[0..len−1)),
// depth k drafts seq[len+k−1]. Module k first runs over its rows rows[k−1]..len−2 in one pass.
static int mtp_propose(CtDrafter *d, const int32_t *seq, int len, int k, const CtSampling *s, CtRng *rng,
                       int32_t *draft, float *probs) {
    CtMtpDrafter *md = d->self;
    CtGenerator *g = md->target;
    const int V = g->model->config.vocab_size, last = len - 2;
    CT_CHECK(len >= 2 && g->n_ctx == len - 1, "the modules draft after the target has fed all but the last token");
    const int n = min_int(k, md->depth);
    for (int depth = 1; depth <= n; depth++) {
        const DepthInput in = depth_input(md, depth);
        const int from = md->rows[depth - 1], count = last + 1 - from;
        for (int r = 0; r < count; r++) {  // the text's token there, or one of this round's drafts
            const int at = from + r + in.token_shift;
            md->tokens[r] = at < len ? seq[at] : draft[at - len];
        }
        CtModel *m = g->model;
        const CtOps *own = m->ops;
        m->ops = md->draft_ops;  // the modules' products (bf16 copies, or the model's own ops)
        const float *logits = ct_generator_mtp_feed(g, depth, ct_mtp_drafter_plane(md, in.plane, from), md->tokens,
                                                    from, count, ct_mtp_drafter_plane(md, depth, from));
        m->ops = own;
        draft[depth - 1] = ct_drafter_pick(logits, V, s, rng, probs ? probs + (size_t)(depth - 1) * V : NULL);
        md->rows[depth - 1] = last + 1;  // the rollback keeps those the accepted text confirms
    }
    return n;
}

// The decoder kept seq[0..len) (and the token after it, which nothing has read yet; the target
// has fed seq[0..len)): module k's row j stays when the token it read, seq[j + shift], lies in
// it and the plane it read is final there.
static void mtp_rollback(CtDrafter *d, int len) {
    CtMtpDrafter *md = d->self;
    for (int k = 1; k <= md->depth; k++) {
        const DepthInput in = depth_input(md, k);
        const int source = in.plane == 0 ? len : md->rows[in.plane - 1];
        int *rows = &md->rows[k - 1];
        *rows = min_int(min_int(*rows, source), len - in.token_shift > 0 ? len - in.token_shift : 0);
    }
}

// D tokens once there is a hidden state to draft from (the prompt's first token has none).
static int mtp_room(const CtDrafter *d, int len) {
    const CtMtpDrafter *md = d->self;
    return len >= 2 ? md->depth : 0;
}

// Plane 0 is the residual stream after this many of the target's blocks: all of them for
// sequential modules (the last hidden state), all but the last for parallel heads (the trunk).
static int trunk_blocks(const CtModel *m) {
    return m->config.mtp_style == CT_MTP_PARALLEL ? m->config.n_layer - 1 : m->config.n_layer;
}

void ct_mtp_drafter_init(CtMtpDrafter *md, CtDrafter *d, CtGenerator *target) {
    const CtModel *m = target->model;
    CT_CHECK(m->config.mtp_depth > 0 && target->n_ctx == 0,
             "a drafter over the model's modules needs mtp_depth > 0 and an empty cache");
    memset(md, 0, sizeof *md);
    md->target = target;
    md->depth = m->config.mtp_depth;
    md->draft_ops = m->ops;
    const size_t bytes = m->ops->act_bytes * (size_t)(md->depth + 1) * (size_t)target->max_ctx *
                         (size_t)m->config.d_model;
    md->hidden = m->ops->alloc(bytes, "multi-token prediction drafting state");
    m->ops->zero(md->hidden, bytes);
    md->tokens = ct_alloc(sizeof(int32_t) * (size_t)target->max_ctx);
    ct_generator_keep_hidden(target, md->hidden, trunk_blocks(m));
    *d = (CtDrafter){.self = md, .propose = mtp_propose, .rollback = mtp_rollback, .room = mtp_room};
}

// A weight matrix the drafts read, to the bf16 copies (NULL: absent in this family or layer).
static size_t declare(CtMtpDrafter *md, const float *w, size_t n) {
    if (!w) return 0;
    ct_cpu_keep_bf16_weights(w, n);
    md->bf16_declared[md->n_bf16_declared++] = w;
    return n * sizeof(uint16_t);
}

size_t ct_mtp_drafter_read_bf16(CtMtpDrafter *md) {
    const CtModel *m = md->target->model;
    const CtModelConfig *c = &m->config;
    CT_CHECK(m->ops == ct_ops_cpu() && md->n_bf16_declared == 0,
             "bf16 drafts are for a model on the CPU, asked for once per drafter");
    const size_t C = (size_t)c->d_model;
    size_t bytes = 0;
    for (int k = 1; k <= md->depth; k++) {
        const CtLayerTensors *p = &m->w.layers[c->n_layer + k - 1];
        bytes += declare(md, p->qkv_w, (size_t)ct_model_qkv_width(c) * C);
        bytes += declare(md, p->attn_out_w, C * (size_t)ct_model_attn_width(c));
        if (!ct_model_layer_is_moe(c, c->n_layer + k - 1)) {  // an MoE module's experts keep their fp32 products
            bytes += declare(md, p->fc_w, (size_t)ct_model_fc_width(c) * C);
            bytes += declare(md, p->fc_out_w, C * (size_t)c->d_ff);
        }
        bytes += declare(md, m->w.mtp[k - 1].eh_proj, C * 2 * C);
    }
    bytes += declare(md, m->w.lm_head, (size_t)c->vocab_size * C);
    md->draft_ops = ct_ops_cpu_bf16_weights();
    return bytes;
}

void ct_mtp_drafter_free(CtMtpDrafter *md) {
    const CtModel *m = md->target->model;
    for (int i = 0; i < md->n_bf16_declared; i++) ct_cpu_forget_bf16_weights(md->bf16_declared[i]);
    ct_generator_keep_hidden(md->target, NULL, m->config.n_layer);
    m->ops->free(md->hidden);
    ct_free(md->tokens);
    memset(md, 0, sizeof *md);
}
