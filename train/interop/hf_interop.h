// Hugging Face interop: a model folder as transformers saves it (config.json, safetensors
// weights, tokenizer.json) in and out of ctrain checkpoints, and GGUF files for llama.cpp.
// docs/interop.md is the user's side of this.
// The formats are in checkpoints/ (safetensors.h, gguf.h); what maps onto what is decided here.
//
// Families: GPT2LMHeadModel (gpt2) and the llama architecture's LlamaForCausalLM (Llama 1-3.x,
// RoPE scaling llama3/linear/dynamic/yarn), MistralForCausalLM (sliding window),
// Qwen2ForCausalLM (q/k/v biases), Qwen3ForCausalLM (q/k norms, own head_dim),
// Gemma2ForCausalLM and Gemma3ForCausalLM (gemma3_text: GeGLU, (1 + w) norms folded into the
// stored weights, pre/post norms, scaled embeddings, soft-capping, local/global layers),
// Phi3ForCausalLM (fused qkv_proj and gate_up_proj, split on import and fused on export) and the
// Mixture-of-Experts MixtralForCausalLM, Qwen2MoeForCausalLM, Qwen3MoeForCausalLM and
// OlmoeForCausalLM (hf_moe_config.h; experts per projection, or fused 3-D as transformers 5
// holds them: hf_tensor_map.h).
// config.json is read in transformers 5's shape (rope_parameters) and in 4's (top-level
// rope_theta, rope_scaling). What ctrain cannot compute exactly (longrope, partial rotation,
// biases on o_proj or the MLP, a window pattern other than "every P-th layer global",
// quantized weights, ...) is refused with a message that names the config key.
#pragma once
#include <stdint.h>

#include "train/model/model_config.h"

typedef struct {
    int skip_tokenizer;  // import the weights without tokenizer.json
} CtHfImportOptions;

typedef struct {
    const char *dtype;          // "f32" (default), "f16" or "bf16": the dtype of the exported weights
    uint64_t max_shard_bytes;   // a model larger than this is split into shards with an index (0: 5 GB)
    int keep_mtp;               // write the multi-token prediction modules as DeepSeek-V3 stores them (docs/mtp.md)
} CtHfExportOptions;

typedef struct {
    const char *dtype;  // "f32" or "f16" (default) for the matrices; norms stay f32, as llama.cpp keeps them
} CtGgufExportOptions;

// config.json text -> the model shape; refuses what ctrain cannot run exactly. `source` names
// the file in messages. 0, or -1 + error.
int ct_hf_config_parse(const char *json, const char *source, CtModelConfig *out);
// The model shape as config.json text of its family (free with free()). bos_id: -1 when unknown;
// eos_ids: n_eos end-of-sequence ids (one is written as a number, several as a list). NULL +
// error for a shape the family's config.json cannot say (a Gemma query scale that is not n^-1/2).
char *ct_hf_config_json(const CtModelConfig *c, int bos_id, const int32_t *eos_ids, int n_eos, const char *torch_dtype);
// A classifier's (c->num_labels) labels in config.json (takes and frees `config`): id2label and
// label2id from names[num_labels] (NULL: transformers' LABEL_0, LABEL_1, …), problem_type
// single_label_classification. NULL when config is not JSON.
char *ct_hf_config_add_labels(char *config, const CtModelConfig *c, const char *const *names);

// ctrain import hf DIR --out CKPT. 0, or -1 + error; nothing is left at out_path on error.
int ct_hf_import(const char *dir, const char *out_path, const CtHfImportOptions *opt);
// ctrain export hf CKPT --out DIR. DIR must not exist or be empty; it appears complete or not at all.
int ct_hf_export(const char *ckpt_path, const char *out_dir, const CtHfExportOptions *opt);
// ctrain export gguf CKPT --out FILE.gguf (GPT-2, Llama/Mistral, Qwen2, Qwen3 and Gemma 2 shapes;
// what llama.cpp would compute otherwise is refused). 0, or -1 + error.
int ct_gguf_export(const char *ckpt_path, const char *out_path, const CtGgufExportOptions *opt);

// "5GB", "500MB", "1.5GiB", "1048576" -> bytes. 0, or -1 + error.
int ct_parse_byte_size(const char *s, uint64_t *out);
