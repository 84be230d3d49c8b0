#include "train/model/speculative_mtp.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

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
        const float *logits = ct_generator_mtp_feed(g, depth, ct_mtp_drafter_plane(md, in.plane, from), md->tokens,
                                                    from, count, ct_mtp_drafter_plane(md, depth, from));
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
    const size_t bytes = m->ops->act_bytes * (size_t)(md->depth + 1) * (size_t)target->max_ctx *
                         (size_t)m->config.d_model;
    md->hidden = m->ops->alloc(bytes, "multi-token prediction drafting state");
    m->ops->zero(md->hidden, bytes);
    md->tokens = ct_alloc(sizeof(int32_t) * (size_t)target->max_ctx);
    ct_generator_keep_hidden(target, md->hidden, trunk_blocks(m));
    *d = (CtDrafter){.self = md, .propose = mtp_propose, .rollback = mtp_rollback, .room = mtp_room};
}

void ct_mtp_drafter_free(CtMtpDrafter *md) {
    const CtModel *m = md->target->model;
    ct_generator_keep_hidden(md->target, NULL, m->config.n_layer);
    m->ops->free(md->hidden);
    ct_free(md->tokens);
    memset(md, 0, sizeof *md);
}
