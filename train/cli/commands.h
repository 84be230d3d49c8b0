// Every command's spec, one per file (train/cli/cmd_*.c); train/cli/cli.c lists them in one table.
#pragma once
#include "train/cli/command.h"

extern const CtCommand ct_cmd_config;
extern const CtCommand ct_cmd_shard;
extern const CtCommand ct_cmd_bench_loader;
extern const CtCommand ct_cmd_ckpt_info;
extern const CtCommand ct_cmd_pretrain;
extern const CtCommand ct_cmd_sft;
extern const CtCommand ct_cmd_dpo;
extern const CtCommand ct_cmd_reward;
extern const CtCommand ct_cmd_grpo;
extern const CtCommand ct_cmd_mlm;
extern const CtCommand ct_cmd_classify;
extern const CtCommand ct_cmd_generate;
extern const CtCommand ct_cmd_chat;
extern const CtCommand ct_cmd_eval;
extern const CtCommand ct_cmd_synth_stories;
extern const CtCommand ct_cmd_synth_instructions;
extern const CtCommand ct_cmd_tokenize;
extern const CtCommand ct_cmd_detokenize;
extern const CtCommand ct_cmd_tokenizer_train;
extern const CtCommand ct_cmd_bench_train;
extern const CtCommand ct_cmd_bench_matmul;
extern const CtCommand ct_cmd_bench_generate;
extern const CtCommand ct_cmd_import_hf;
extern const CtCommand ct_cmd_export_hf;
extern const CtCommand ct_cmd_export_gguf;
extern const CtCommand ct_cmd_lora_export;
extern const CtCommand ct_cmd_lora_merge;
extern const CtCommand ct_cmd_peft_export;
extern const CtCommand ct_cmd_peft_import;
