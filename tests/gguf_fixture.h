// What the GGUF export tests share (tests/test_hf_gguf.c, tests/test_hf_gguf_moe.c): a reader of
// the files ctrain writes, and the llama.cpp client that decodes them next to `ctrain generate`.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "train/model/model_config.h"

// A parsed GGUF file (at most 64 keys and 64 tensors: the fixtures' sizes).
typedef struct {
    char key[96];
    uint32_t type, elem_type;
    uint64_t u, count;
    float f;
    const uint8_t *array;  // the first element
    char str[96];
} Kv;

typedef struct {
    char name[96];
    uint32_t n_dims, type;
    uint64_t ne[4], offset;
} TensorInfo;

typedef struct {
    Kv kv[64];
    int n_kv;
    TensorInfo t[64];
    int n_t;
    const uint8_t *data;
    uint8_t *file;
    size_t size;
} Gguf;

// Reads and parses path into g (free g->file with free()). 0, or -1 when the file is not GGUF v3
// or runs past its end (the reader is bounds-checked: a bug in the writer fails a test rather
// than crashing it).
int gguf_parse(const char *path, Gguf *g);
// The key's entry; an empty one (count 0, str "(absent)") when absent, so checks fail, not crash.
const Kv *gguf_kv(const Gguf *g, const char *key);
// The tensor's info, or NULL.
const TensorInfo *gguf_tensor(const Gguf *g, const char *name);
// The k-th string of a string array.
void gguf_array_string(const Kv *a, uint64_t k, char *out, size_t size);

// Exports f32 and f16 GGUF files of a fixture model (hf_fixture_checkpoint of c, seed 8) and has
// tests/ref/check_gguf.py (the gguf package reads it; an independent NumPy forward in llama.cpp's
// conventions) compare each file's logits with ctrain's. Leaves m.h5, m.gguf and tokens.bin in the
// test's folder. Skips the test when numpy or gguf is absent.
void gguf_check_against_numpy(CtModelConfig c);
// After gguf_check_against_numpy: the GGUF file's NumPy forward against transformers on
// `ctrain export hf` of the same checkpoint.
void gguf_check_against_transformers(void);

// ---- the real client: llama.cpp itself ----
// scripts/build_llama_cpp.sh builds llama.cpp from the source in the llama-cpp-python sdist on
// PyPI (about 10 minutes on 2 cores the first time, cached under build/llama.cpp) with
// tests/ref/llama_greedy.c, which loads a GGUF as every llama.cpp client does and decodes greedily.

// The path of llama_greedy; skips the calling test when llama.cpp cannot be built on this machine,
// NULL after recording a failure when its build fails.
const char *gguf_llama_greedy(void);
// The width of the real-tokenizer models: tiny_config's layers at d_model 64.
CtModelConfig gguf_real_config(CtArch arch);
// A checkpoint of config c (its vocabulary: the tokenizer's) with random weights and the
// tokenizer at tokenizer_path. 0, or -1 + error.
int gguf_real_checkpoint(const char *path, CtModelConfig c, const char *tokenizer_path);
// A checkpoint of c with the tokenizer at tokenizer_path (NULL: returns, the test already failed)
// is exported as an f32 GGUF; llama.cpp must accept it, tokenize a prompt to the ids ctrain gives,
// pick the 32 greedy tokens `ctrain generate --temperature 0` picks (at least 8 distinct ids), and
// compute logits within 1e-4 (relative; 3e-3 with GELU, which llama.cpp reads from a float16
// table) of ctrain's at every step. Records a failure otherwise.
void gguf_llama_cpp_agrees(CtModelConfig c, const char *tokenizer_path, const char *pre_name);
// An 8k vocabulary trained by ctrain on the corpus with `pattern`; its path (NULL: the test failed).
const char *gguf_trained_8k_tokenizer(const char *pattern);
