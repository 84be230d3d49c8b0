// Checkpoints for the tests of `ctrain generate`: a model saved with a byte-level tokenizer.
#pragma once
#include "train/model/generate.h"
#include "train/model/model.h"

// A byte-level tokenizer (256 bytes and one special token) in HF's JSON; free with free().
char *generate_fixture_byte_tokenizer_json(const char *special);
// Saves model m to path with the byte tokenizer whose special token is `special` (a CHECK fails
// when it cannot).
void generate_fixture_save(const char *path, const CtModel *m, const char *special);
// The exact joint distribution of the first two tokens sampled after prompt[n] with s:
// joint[a·V + b] = p(a)·p(b | a), what speculative sampling's first two tokens must follow.
void generate_fixture_exact_pairs(CtModel *m, const int32_t *prompt, int n, const CtSampling *s, double *joint);
// A model of config c for batches up to 1 × max_T with random parameters (seed), and with
// lora_targets not NULL LoRA adapters (r 2, alpha 4) on those modules, A and B random so that they
// add something (generation runs the model's block, adapters included). A CHECK fails when it cannot.
void generate_fixture_model(CtModel *m, CtModelConfig c, int max_T, uint64_t seed, const char *lora_targets);
