// Next-token cross-entropy, the loss of pretraining (every target of text shards) and of SFT
// (response targets only: the loss mask): a step's loss is the mean over every counted target
// of all its micro-batches and ranks (train/objectives/step_batches.h).
#pragma once
#include "train/objectives/objective.h"

// The step: the micro-batches forward and backward, each with its own dropout masks.
CtStepResult ct_lm_step(CtObjectiveRun *o);
// The mean loss over the fixed validation batches (the same ones every time, whatever the
// number of ranks): every rank takes its rows of each global batch, and the sums of losses
// and of predicted tokens are added over the ranks. Every rank must call it.
double ct_lm_evaluate(CtObjectiveRun *o, int *failed);
