// Masked-language-model pretraining (BERT, RoBERTa; ctrain mlm): each step masks its text rows
// (train/objectives/mlm_mask.h), the model reads the masked rows and is scored at the selected
// positions only, each predicting its own original token (no shift):
//   loss = Σ_selected −log p(x_t | masked row) / #selected   over the step's micro-batches and ranks
// and `mlm_acc`, the share of selected positions whose most likely token is the original. The
// validation batches are masked the same way at every evaluation (a fixed mask), so their
// `val_loss` and `val_mlm_acc` compare across steps; the first evaluation of a process also states
// the unigram baseline: the accuracy of always answering the most frequent token of that
// selection (the best a model that ignores its input can do there).
//
// The objective needs nothing of the architecture beyond logits at every position: a causal
// model (gpt2, llama) trains too, seeing only the tokens before each position and the masked
// token itself.
#pragma once
#include "train/objectives/mlm_mask.h"
#include "train/objectives/objective.h"

typedef struct {
    CtMlmMasking masking;
    int have_masking;
    double last_acc;       // the last step's mlm_acc
    double last_val_acc;   // the last evaluation's val_mlm_acc (NAN before one)
    double unigram_acc;    // the baseline on the validation selection (NAN until the first evaluation)
    int32_t unigram_id;    // its token
} CtMlmRun;

// The masking tables for `tok` (the dataset's tokenizer; NULL: an error, mlm needs its mask
// token) and a model of `vocab` rows. 0, or -1 + error.
int ct_mlm_run_init(CtMlmRun *st, const CtTokenizer *tok, int32_t vocab, const CtMlmRates *rates);

// Masks micro-batch `a` of s in place (tokens → inputs, targets → originals at the selected
// positions, loss_mask → selected, counts[a] and total) with the rows' seeds of `stream`;
// `first_row` is the place of its first row among the stream's (mlm_mask.h). Returns the number selected.
int64_t ct_mlm_mask_micro_batch(const CtMlmMasking *mm, CtStepBatches *s, int a, uint64_t run_seed, uint64_t stream,
                                int64_t first_row);
// The number of selected positions of the last forward (rows × T of `targets`) whose largest
// logit is the target. Before backward, which turns the logits into their gradient.
int64_t ct_mlm_correct(CtModel *m, const int32_t *targets, int n);
