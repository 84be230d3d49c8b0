// Hugging Face PEFT's prompt-learning adapter folders (PROMPT_TUNING, P_TUNING, PREFIX_TUNING; what
// PeftModel.from_pretrained(base, DIR) loads and save_pretrained writes):
//   DIR/adapter_config.json        {"peft_type", "task_type": "CAUSAL_LM", "num_virtual_tokens", "token_dim",
//                                   "num_transformer_submodules": 1, "num_attention_heads", "num_layers",
//                                   "inference_mode": true, "base_model_name_or_path", + the type's fields:
//                                   prompt_tuning_init(_text), tokenizer_name_or_path; encoder_*; prefix_projection}
//   DIR/adapter_model.safetensors  prompt_embeddings [num_virtual_tokens, width] (no prefix: PEFT's name as is;
//                                  P-tuning's are the prompt encoder's output, prefix tuning's every layer's
//                                  keys and values), metadata format "pt" (+ ctrain_base_hash when ctrain wrote it)
// Knows nothing of models: numbers in, numbers out (train/interop/peft_folder.h maps them).
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char peft_type[32];                   // "PROMPT_TUNING", "P_TUNING", "PREFIX_TUNING"
    int num_virtual_tokens, token_dim, num_transformer_submodules, num_attention_heads, num_layers;
    char prompt_tuning_init[16];          // PROMPT_TUNING: "RANDOM" | "TEXT"
    char prompt_tuning_init_text[1024];
    char tokenizer_name_or_path[1024];
    char encoder_reparameterization_type[8];  // P_TUNING: "MLP" | "LSTM"
    int encoder_hidden_size, encoder_num_layers;
    double encoder_dropout;
    int prefix_projection;                // PREFIX_TUNING
    char base_model_name_or_path[1024];
} CtPromptAdapterConfig;

// Writes DIR: prompt_embeddings [rows, width] and the config (through ct_peft_write_folder:
// whole or nothing). 0, or -1 + error.
int ct_prompt_adapter_write(const char *dir, const CtPromptAdapterConfig *cfg, const float *prompt_embeddings,
                            int64_t rows, int64_t width, uint64_t base_hash);
// DIR/adapter_config.json's peft_type into buf ("LORA", "P_TUNING", ...). 0, or -1 + error naming the file.
int ct_peft_folder_type(const char *dir, char *buf, size_t size);
// Reads DIR/adapter_config.json of a prompt-learning adapter: task_type CAUSAL_LM, one transformer
// submodule, positive counts. 0, or -1 + error naming the file and the key.
int ct_prompt_adapter_read_config(const char *dir, CtPromptAdapterConfig *cfg);
// DIR/adapter_model.safetensors' prompt_embeddings, which must be [rows, width] and the only
// tensor, into a new float32 buffer (free with ct_free); *base_hash: ctrain's metadata hash or 0.
// 0, or -1 + error.
int ct_prompt_adapter_read_embeddings(const char *dir, int64_t rows, int64_t width, float **out, uint64_t *base_hash);
