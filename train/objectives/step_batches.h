// The micro-batches of one optimizer step, and the loss normalisation over all of them.
//
// The loss of a step is the mean over every target that counts (loss mask 1) in the whole
// step: all micro-batches (and, with data parallelism, all ranks), not the mean of per-batch
// means. So SFT examples weigh by their response tokens however they are split into batches.
// The model's loss of one micro-batch is Σ w·ℓ / (tokens with w ≠ 0); with w = c_i / N on every
// counted token (c_i the micro-batch's count, N the step's), it becomes Σ ℓ / N, and the
// gradients that backward adds up over the micro-batches are those of the step's mean.
#pragma once
#include <stdint.h>

#include "data/loader/loader.h"
#include "train/model/model.h"

typedef struct {
    int accum, rows, T;
    int32_t *tokens, *targets, *positions, *doc_ids;  // accum × rows × T
    uint8_t *loss_mask;
    float *weights;
    int64_t *example_ids;  // accum × rows (dpo: the pair of each row)
    double *margins;       // accum × rows (dpo: the margin of each row's pair; 0 without)
    int64_t *counts;       // per micro-batch: targets that count
    int64_t total;         // over the step
} CtStepBatches;

void ct_step_batches_init(CtStepBatches *s, int accum, int rows, int T);
void ct_step_batches_free(CtStepBatches *s);
// Draws `accum` batches from the loader (copies: the loader reuses its buffer). 0 or -1 + error.
int ct_step_batches_fetch(CtStepBatches *s, CtLoader *loader);
// Sets the weights for a step whose counted targets total `global_total` (this step's total on
// one rank; the sum over ranks with data parallelism).
void ct_step_batches_normalise(CtStepBatches *s, int64_t global_total);
// Micro-batch i as the model's batch; with_docs passes positions and document ids.
CtBatch ct_step_batch(const CtStepBatches *s, int i, int with_docs);
