// The prompt loader: the prompts of a prompts dataset's split (ctrain shard --format prompts)
// for ctrain grpo, each with its token ids and its fields (the JSON object its line carried
// besides the prompt, for the rewards). All prompts are held in memory (prompt sets are small).
//
// Order: each epoch a seeded permutation of the split's prompts (or file order without
// shuffle). A global batch is world·B consecutive prompts of it; rank r takes prompts
// r·B … r·B+B-1, so the ranks' prompts are disjoint and together the global batch: a prompt's
// whole group of completions is sampled, rewarded and normalised on one rank. An epoch has
// floor(N / (world·B)) steps; the last N mod world·B prompts of its permutation wait for a later
// epoch's (different) order. N ranks with batch B see the prompts of one rank with batch N·B.
//
// The position is the loaders' {seed, epoch, step} (data/loader/loader_types.h): a checkpoint
// saves it, and restoring it yields exactly the prompts an uninterrupted run would have seen.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/loader/loader_types.h"
#include "data/shard/dataset.h"

typedef struct {
    int batch;         // B: prompts per rank per step
    int rank, world;
    uint64_t seed;
    int shuffle;       // 1: a seeded order per epoch; 0: file order (evaluation)
    int max_prompt_tokens;  // > 0: longer prompts keep their last this many tokens (TRL's max_prompt_length)
} CtPromptLoaderOptions;

typedef struct {
    const int32_t *ids;   // the prompt's tokens (after any left cut)
    size_t n_ids;
    const char *fields;   // its fields: the text of a JSON object, NUL-terminated
    size_t fields_len;
    uint64_t index;       // its number in the split (file order), for samples and logs
} CtPrompt;

typedef struct {
    const CtDataset *dataset;
    CtSplit split;
    CtPromptLoaderOptions opt;
    CtLoaderState state;
    uint64_t n_prompts, steps_per_epoch;
    uint64_t truncated;       // prompts longer than max_prompt_tokens (cut from the left when served)
    int32_t *tokens;          // every prompt's tokens, back to back
    uint64_t *token_offset;   // n_prompts + 1
    char *fields;             // every prompt's fields, each followed by a NUL
    uint64_t *fields_offset;  // n_prompts + 1
    uint32_t *order;          // the planned epoch's permutation
    uint64_t planned_epoch;   // + 1; 0 = none
    CtPrompt *batch;          // B
} CtPromptLoader;

void ct_prompt_loader_default_options(CtPromptLoaderOptions *o);
// Reads the split's prompts and fields (each chunk and fields frame checked as it is read).
// 0, or -1 + error: not a prompts dataset, fewer prompts than one global batch, bad options,
// a corrupt shard.
int ct_prompt_loader_open(CtPromptLoader *l, const CtDataset *d, CtSplit split, const CtPromptLoaderOptions *o);
void ct_prompt_loader_close(CtPromptLoader *l);
// This rank's B prompts of the next global batch (valid until the next call); epochs roll over
// by themselves. 0, or -1 + error.
int ct_prompt_loader_next(CtPromptLoader *l, const CtPrompt **prompts);
// Prompt e of the split (file order, e < n_prompts), cut as the batches cut it (evaluation).
CtPrompt ct_prompt_loader_get(const CtPromptLoader *l, uint64_t e);
CtLoaderState ct_prompt_loader_state(const CtPromptLoader *l);
// Continues from a saved position. 0, or -1 + error when it cannot belong to this data.
int ct_prompt_loader_restore(CtPromptLoader *l, const CtLoaderState *state);
