// Self-speculative decoding: the target model's own multi-token-prediction modules
// (model.mtp_depth = D, train/model/model_mtp.c) draft up to D tokens per round from the hidden
// states of the target's last pass, and the target checks them (train/model/speculative.h).
//
// Counting. The decoder's target cache holds seq[0..len−1) (all but the last token). Module 1 at
// position j reads the main model's hidden state h_j (before its final norm) and the embedding
// of seq[j+1], and predicts seq[j+2]; module k reads module k−1's output at j and seq[j+k] and
// predicts seq[j+k+1]. So at position len−2, module 1 drafts d1 = seq[len], module 2 (reading
// d1) drafts d2, and so on. Each module's block has its own key/value cache (layer L+k−1 of the
// target's generator), whose row j is final once seq[j+k] is accepted: every round, module k
// catches up on the rows from its first unconfirmed one to len−2 in one pass (the last of them
// read drafts), and the rollback after the round forgets the rows built on rejected drafts.
//
// Parallel heads (model.mtp_style parallel): head k at position j reads the trunk state z_j (the
// input of the main model's last block, which each target pass keeps) and predicts seq[j+k+1];
// at len−2 head k drafts seq[len+k−1] as module k does, but from the same trunk row as every other
// head and without the drafts before it. Head k's cache row j is final once the target's row j
// is, so no depth lags behind another.
#pragma once
#include "train/model/speculative.h"

typedef struct {
    CtGenerator *target;
    int depth;  // D
    // [D + 1, max_ctx, C] in the model's ops' memory, by position: plane 0 the main model's hidden
    // rows (parallel heads: its trunk rows; each target pass copies them: ct_generator_keep_hidden),
    // plane k module k's output
    CtAct *hidden;
    int rows[CT_MODEL_MAX_MTP_DEPTH];  // module k's cache and plane k: rows 0..rows[k−1]−1 are final
    int32_t *tokens;                   // HOST [max_ctx]: one module pass's tokens
    // the ops the modules' passes run with: the model's, or (ct_mtp_drafter_read_bf16) the CPU
    // table whose products read bf16 copies of the weights the drafts use
    const CtOps *draft_ops;
    const float *bf16_declared[4 * CT_MODEL_MAX_MTP_DEPTH + CT_MODEL_MAX_MTP_DEPTH + 1];  // to forget at the end
    int n_bf16_declared;
} CtMtpDrafter;

// A drafter over target's modules (its model has mtp_depth > 0; its cache is empty): call before
// ct_speculative_init, whose prompt pass yields the first hidden rows. d->self is md.
void ct_mtp_drafter_init(CtMtpDrafter *md, CtDrafter *d, CtGenerator *target);
void ct_mtp_drafter_free(CtMtpDrafter *md);
// The drafts read bf16 copies of the weight matrices of the modules (their blocks' products and
// eh_proj) and of the shared head, half the bytes of a module's pass (kernels/cpu/bf16_weights.h):
// a model on the CPU only. Only which tokens are drafted, and so the acceptance, can change: the
// target's pass that checks them reads the fp32 weights, so greedy output stays the target's, and
// sampling's acceptance test divides by the distribution the drafts were drawn from. Returns the
// bytes of the copies.
size_t ct_mtp_drafter_read_bf16(CtMtpDrafter *md);
// Plane p's row at position pos (p = 0: the main model's hidden state, or its trunk state with
// parallel heads; p = k: module k's output).
CtAct *ct_mtp_drafter_plane(const CtMtpDrafter *md, int p, int pos);
