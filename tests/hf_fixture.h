// Small checkpoints with a tokenizer for the Hugging Face interop tests.
#pragma once
#include "train/interop/checkpoint_io.h"

// A byte-level BPE tokenizer (256 bytes, a few merges, <|endoftext|>) as tokenizer.json text
// (free with free()). Small on purpose: the tests that use it check ids and names one by one.
// Real sizes are tested elsewhere: GPT-2's 50257 ids through import/export and generation
// (test_hf_journey.c, test_hf_gguf.c's llama.cpp cases), o200k's 11.6 MB tokenizer.json in
// pretrain, LoRA and import checkpoints (test_checkpoint.c).
char *hf_fixture_tokenizer_json(void);
// Writes a checkpoint of `config` with random parameters (seed) and the fixture tokenizer.
// 0, or -1 + error.
int hf_fixture_checkpoint(const char *path, const CtModelConfig *config, uint64_t seed);
// A tiny config of each family with room for the fixture tokenizer (vocab 264).
CtModelConfig hf_fixture_config(CtArch arch, int tied);
// Loads a checkpoint's parameters (free m with ct_model_free, meta with ct_checkpoint_meta_free).
int hf_fixture_load(const char *path, CtModel *m, CtCheckpointMeta *meta);
// ctrain's logits [T, V] for one row of T tokens from a checkpoint. 0, or -1 + error.
int hf_fixture_logits(const char *ckpt, const int32_t *tokens, int T, float *out);
// Runs python3 tests/ref/SCRIPT ARGS; skips the calling test when the script prints "SKIP: ..."
// (or python3 is absent); records a failure and returns non-zero when it fails.
int hf_fixture_ref(const char *script, const char *args);

// max |a - b| / max |b| over n values (the figure the reference tests report as "relative");
// infinite when either side holds a non-finite value.
double hf_fixture_relative_error(const float *a, const float *b, size_t n);
