// Supervised fine-tuning: next-token cross-entropy on the response tokens only (lm.c's step
// and evaluation over the loss mask), examples packed into rows and attending only to
// themselves, and exact match of greedy answers on held-out examples (sft_eval.h).
#include <math.h>

#include "train/objectives/lm.h"
#include "train/objectives/sft_eval.h"

static double exact_match(CtObjectiveRun *o, int show) {
    if (!o->val || o->set.eval_exact_match == 0) return NAN;
    CtExactMatch em = ct_sft_exact_match(o->model, o->val, o->set.eval_exact_match, o->tokenizer, show);
    return em.examples ? (double)em.correct / em.examples : NAN;
}

const CtObjective ct_objective_sft = {
    .name = "sft", .data_kind = CT_SHARD_SFT, .cross_entropy = 1, .packs_examples = 1,
    .step = ct_lm_step, .evaluate = ct_lm_evaluate, .exact_match = exact_match,
};
