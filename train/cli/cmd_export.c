// ctrain export hf / export gguf: a checkpoint for transformers or llama.cpp (train/interop/hf_export.c,
// train/interop/hf_gguf.c).
#include "core/error.h"
#include "train/cli/commands.h"
#include "train/interop/hf_interop.h"

static const CtOption hf_options[] = {
    {"out", "DIR", "the folder to create (required; must not exist or be empty)", 0},
    {"dtype", "f32|f16|bf16", "dtype of the weights (default f32)", 0},
    {"max-shard-size", "SIZE", "split the weights into shards of at most SIZE (default 5GB)", 0},
    {"keep-mtp", NULL, "write the multi-token prediction modules too, as DeepSeek-V3 stores them (docs/mtp.md)", 0},
};

static const CtOption gguf_options[] = {
    {"out", "FILE", "the .gguf file to write (required)", 0},
    {"dtype", "f16|f32", "dtype of the matrices (default f16; norms stay f32)", 0},
};

static int run_export_hf(const CtArgs *args);
static int run_export_gguf(const CtArgs *args);

const CtCommand ct_cmd_export_hf = {
    .name = "export hf",
    .summary = "export a checkpoint as a Hugging Face model folder (transformers)",
    .usage = "ctrain export hf CKPT --out DIR [--dtype f32|f16|bf16] [--max-shard-size 5GB] [--keep-mtp]",
    .description = "Writes config.json, model.safetensors (sharded with model.safetensors.index.json above\n"
                   "--max-shard-size), tokenizer.json, tokenizer_config.json and generation_config.json, which\n"
                   "AutoModelForCausalLM.from_pretrained(DIR) and AutoTokenizer.from_pretrained(DIR) load.\n"
                   "The folder appears complete or not at all. A model's multi-token prediction modules are\n"
                   "left out unless --keep-mtp: then they are written as DeepSeek-V3 stores them (layers\n"
                   "num_hidden_layers.., with each module's embed_tokens and shared_head.head copies, and\n"
                   "num_nextn_predict_layers in config.json); transformers ignores them, `ctrain import hf`\n"
                   "reads them back. See docs/interop.md and docs/mtp.md.",
    .options = hf_options,
    .n_options = (int)(sizeof hf_options / sizeof hf_options[0]),
    .min_positionals = 1,
    .max_positionals = 1,
    .run = run_export_hf,
};

const CtCommand ct_cmd_export_gguf = {
    .name = "export gguf",
    .summary = "export a checkpoint as GGUF for llama.cpp / ollama (llama, mistral, qwen2, qwen3, gemma2, gpt2)",
    .usage = "ctrain export gguf CKPT --out FILE.gguf [--dtype f16|f32]",
    .description = "Writes a GGUF v3 file with the architecture keys (llama or gpt2), the tokenizer\n"
                   "(tokenizer.ggml.*) and the weights (LLaMA q/k rows permuted to llama.cpp's RoPE layout;\n"
                   "norms and biases in f32). See docs/interop.md.",
    .options = gguf_options,
    .n_options = (int)(sizeof gguf_options / sizeof gguf_options[0]),
    .min_positionals = 1,
    .max_positionals = 1,
    .run = run_export_gguf,
};

static int run_export_hf(const CtArgs *args) {
    const char *out = ct_args_get(args, "out");
    if (!out) return ct_cli_usage_error(&ct_cmd_export_hf, "--out DIR is required");
    CtHfExportOptions opt = {.dtype = ct_args_get(args, "dtype"), .keep_mtp = ct_args_has(args, "keep-mtp")};
    const char *size = ct_args_get(args, "max-shard-size");
    if (size && ct_parse_byte_size(size, &opt.max_shard_bytes) != 0)
        return ct_cli_usage_error(&ct_cmd_export_hf, "--max-shard-size: %s", ct_error_message());
    return ct_hf_export(args->positionals[0], out, &opt) == 0 ? 0 : ct_cli_fail();
}

static int run_export_gguf(const CtArgs *args) {
    const char *out = ct_args_get(args, "out");
    if (!out) return ct_cli_usage_error(&ct_cmd_export_gguf, "--out FILE is required");
    CtGgufExportOptions opt = {.dtype = ct_args_get(args, "dtype")};
    return ct_gguf_export(args->positionals[0], out, &opt) == 0 ? 0 : ct_cli_fail();
}
