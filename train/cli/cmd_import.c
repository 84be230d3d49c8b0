// ctrain import hf: a Hugging Face model folder into a ctrain checkpoint (train/interop/hf_import.c).
#include "train/cli/commands.h"
#include "train/interop/hf_interop.h"

static const CtOption options[] = {
    {"out", "CKPT", "the checkpoint to write (required)", 0},
    {"skip-tokenizer", NULL, "import the weights without tokenizer.json", 0},
};

static int run_import_hf(const CtArgs *args);

const CtCommand ct_cmd_import_hf = {
    .name = "import hf",
    .summary = "import a Hugging Face model folder (GPT-2, Llama, Mistral, Qwen2/3, Gemma 2/3, Phi-3) into a checkpoint",
    .usage = "ctrain import hf DIR --out CKPT [--skip-tokenizer]",
    .description = "Reads config.json, model.safetensors (or the shards listed in model.safetensors.index.json;\n"
                   "F32, F16 or BF16) and tokenizer.json of a GPT2LMHeadModel or LlamaForCausalLM folder and\n"
                   "writes a ctrain checkpoint with the model and its tokenizer. What ctrain cannot compute\n"
                   "exactly (sliding windows, projection biases, RoPE scaling) is refused. See docs/interop.md.",
    .options = options,
    .n_options = (int)(sizeof options / sizeof options[0]),
    .min_positionals = 1,
    .max_positionals = 1,
    .run = run_import_hf,
};

static int run_import_hf(const CtArgs *args) {
    const char *out = ct_args_get(args, "out");
    if (!out) return ct_cli_usage_error(&ct_cmd_import_hf, "--out CKPT is required");
    CtHfImportOptions opt = {.skip_tokenizer = ct_args_has(args, "skip-tokenizer")};
    return ct_hf_import(args->positionals[0], out, &opt) == 0 ? 0 : ct_cli_fail();
}
