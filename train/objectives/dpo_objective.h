// DPO as an objective (objective.h): the step over the micro-batches of pairs, the evaluation
// with TRL's reward metrics and the greedy answers' match with the chosen completion. The
// reference is set up with the run (train/loop/train_setup_dpo.c); the pieces are dpo.h's.
#pragma once
#include "train/objectives/dpo.h"
#include "train/objectives/objective.h"

typedef struct {
    CtDpo dpo;
    int have_dpo;
    int32_t stop_token;  // where an answer ends (the template's end of turn, or the end of text)
    double last_match, last_accuracy;  // of the last evaluation (NAN before)
} CtDpoRun;
