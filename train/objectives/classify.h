// Sequence classification as an objective (ctrain classify; train/model/model_classify.h for the
// head): JSON-lines examples held in memory (data/examples/classify_examples.h), not shards. Each
// micro-batch takes the next batch_size examples of a seeded order (a new shuffle per epoch, a pure
// function of run.seed and the example's place, so a resumed run reads what the whole run would),
// pads them to the longest (pads in a document of their own, never attended to, never pooled) and
// scores the model's logits by cross-entropy:
//   loss = Σ_examples −log softmax(z)_label / #examples   over the step's micro-batches and ranks
// as transformers' *ForSequenceClassification (problem_type single_label_classification).
// Reports accuracy (train line) and, on the validation examples, val_loss, val_acc and val_f1
// (macro-F1 as scikit-learn's f1_score(average="macro"): the mean F1 over the labels that occur
// among the true or predicted labels).
#pragma once
#include "data/examples/classify_examples.h"
#include "train/objectives/objective.h"

typedef struct {
    CtClassifySet train, val;   // val: its own file, or taken out of train's (val_of_train)
    int *train_idx, n_train;    // the training examples (indices into train)
    int *val_idx, n_val;        // the validation examples (indices into val_set)
    const CtClassifySet *val_set;
    CtLabelSet labels;
    int32_t pad_id;             // what pads are filled with (an encoder's pad_token_id)
    int64_t perm_epoch;         // the epoch perm shuffles (−1: none yet)
    int *perm;                  // [n_train]
    double last_acc, last_val_acc, last_val_f1;
} CtClassifyRun;

// Opens the data: train_path (labels from it, or the declared list labels "a,b"), validation from
// val_path, or val_fraction of the training examples (a seeded choice). 0, or -1 + error.
int ct_classify_run_init(CtClassifyRun *c, const char *train_path, const char *val_path, double val_fraction,
                         const char *labels, const CtTokenizer *tok, int seq_len, uint64_t seed);
void ct_classify_run_free(CtClassifyRun *c);

// Rows [B, T] of examples idx[0..n) of s (n ≤ B; T the longest of them): tokens, types, doc ids
// (1 on pads), lengths and labels; the CtBatch over them. Arrays of B·max_T (and B) entries.
typedef struct {
    int32_t *tokens, *types, *doc_ids;
    int *len, *label;
    CtBatch batch;
} CtClassifyRows;
void ct_classify_rows_alloc(CtClassifyRows *r, int B, int T);
void ct_classify_rows_free(CtClassifyRows *r);
void ct_classify_rows_fill(CtClassifyRows *r, const CtClassifySet *s, const int *idx, int n, int32_t pad_id,
                           int with_types);

// Prediction: the model's probabilities over the labels for every example of s, into probs[n·L].
void ct_classify_predict(CtModel *m, const CtClassifySet *s, int batch, int32_t pad_id, float *probs);

// Macro-F1 from per-label counts tp, fp, fn [L] (see above).
double ct_classify_macro_f1(const double *tp, const double *fp, const double *fn, int L);
