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
// n floats of a file a reference script wrote (exactly n·4 bytes). 0, or -1.
int hf_fixture_read_floats(const char *path, float *dst, size_t n);
// The adapter reference tests' base: hf_fixture_config(arch, tied for gpt2) as the test folder's
// base.h5 (its one huge value tamed) and its transformers export hf/, and T tokens in tokens.bin
// (also into tokens). 0, or -1 + error.
int hf_fixture_adapter_base(CtArch arch, int T, const char **base, const char **hf, const char **tokens_path,
                            int32_t *tokens);

// What tests/ref/hf_families_ref.py's `make` (and hf_moe_ref.py's) writes in a folder DIR, run
// through the ctrain binary in the test's folder:
// The int32 or float32 values of DIR/name: their count, or -1.
long hf_fixture_read_values(const char *dir, const char *name, void *dst, size_t max_bytes);
// `ctrain ARGS` in the test's folder; its output in *out (free it). The exit status.
int hf_fixture_ctrain(const char *args, char **out);
// The same, recording a failure (with ctrain's output) when it fails.
int hf_fixture_ctrain_ok(const char *args);
// `ctrain eval` of the checkpoint on DIR/sample.txt against transformers' loss over the same
// windows (DIR/eval.txt): within 1e-5 relative and over as many tokens. ctrain's loss (NAN when
// the eval failed or counted other tokens).
double hf_fixture_check_eval(const char *dir, const char *ckpt);
// `ctrain generate` of the checkpoint at temperature 0 on the prompt of DIR/prompt_ids.bin gives
// transformers' greedy tokens: stopping at the model's eos ids (DIR/greedy.bin), and 40 past any
// eos (--ignore-eos, DIR/greedy_all.bin).
void hf_fixture_check_greedy(const char *dir, const char *ckpt);
