// Decisions shared by the training runs of every objective (pretrain, sft, dpo): which model a
// config means for a dataset, which parameters get weight decay, the learning-rate schedule,
// samples, and a baseline loss to compare against.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "data/tokenizer/bpe.h"
#include "data/shard/dataset.h"
#include "optim/adamw.h"
#include "optim/schedule.h"
#include "train/model/generate.h"
#include "train/model/model.h"
#include "train/loop/run_config.h"

// The backend run.device asks for: cpu; cuda (an error naming why when no GPU is usable);
// auto (the GPU when there is one); in run.precision (on a GPU, bf16 products by default). NULL + error.
const CtOps *ct_train_select_ops(const CtRunConfig *cfg);
// The config's model for this dataset: the vocabulary is the dataset's unless model.vocab_size
// sets one (which must hold every token); train.seq_len must fit max_seq_len. 0, or -1 + error.
int ct_train_model_config(const CtRunConfig *cfg, const CtDataset *data, CtModelConfig *out);
// Weight decay on matrices, not on biases and norm weights; embeddings by option. With LoRA: on
// every A and B, and on the matrices of a head trained in full (train/model/lora_saved.h).
void ct_train_set_decay_spans(const CtModel *m, CtAdamW *opt, int decay_embeddings);
CtLrSchedule ct_train_schedule(const CtRunConfig *cfg);
// Before any step: every chunk of both splits read and checked (ct_dataset_verify_split), so a
// damaged shard stops the run with one line naming the file, the chunk and the problem, instead
// of failing mid-run or turning the validation loss into NaN. Logs what was read under `name`
// (the command). 0, or -1 + error.
int ct_train_verify_data(const CtDataset *data, const char *name);
// The entropy (nats/token) of the training split's token frequencies, over at most the first
// 64M tokens: the loss of the best model that ignores context. NAN when it cannot be read.
double ct_train_unigram_entropy(const CtDataset *data);
// A continuation of `prompt` (empty: start after the end-of-text token), at most n_tokens,
// stopping at eot. Returns text with the prompt (free with ct_free()).
char *ct_train_sample_text(CtModel *m, const CtTokenizer *tok, const char *prompt, int32_t eot, int n_tokens,
                           const CtSampling *sampling, CtRng *rng);
