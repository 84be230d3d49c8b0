// ctrain lora export / lora merge: a LoRA run's adapters as a PEFT folder, and adapters folded
// into their base (W + s·B·A) as a plain checkpoint. See docs/lora.md.
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/log.h"
#include "kernels/cpu/cpu_ops.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/lora_checkpoint.h"
#include "train/cli/commands.h"
#include "train/model/lora.h"
#include "train/interop/lora_peft.h"

static const CtOption export_options[] = {
    {"out", "DIR", "the PEFT adapter folder to write (required)", 0},
    {"base-name", "NAME", "base_model_name_or_path in adapter_config.json (default: the base checkpoint's path)", 0},
};

static const CtOption merge_options[] = {
    {"base", "CKPT", "the base model's checkpoint (required)", 0},
    {"adapter", "PATH", "a PEFT adapter folder, or a LoRA run's checkpoint (required)", 0},
    {"out", "CKPT", "the merged checkpoint to write (required)", 0},
};

static int run_export(const CtArgs *args);
static int run_merge(const CtArgs *args);

const CtCommand ct_cmd_lora_export = {
    .name = "lora export",
    .summary = "write a LoRA run's adapters as a Hugging Face PEFT folder",
    .usage = "ctrain lora export CKPT --out DIR [--base-name NAME]",
    .description = "Writes DIR/adapter_config.json and DIR/adapter_model.safetensors, which\n"
                   "PeftModel.from_pretrained(base, DIR) loads onto the base exported with ctrain export hf.",
    .options = export_options,
    .n_options = (int)(sizeof export_options / sizeof export_options[0]),
    .min_positionals = 1,
    .max_positionals = 1,
    .run = run_export,
};

const CtCommand ct_cmd_lora_merge = {
    .name = "lora merge",
    .summary = "fold LoRA adapters into their base model: W + scale·B·A",
    .usage = "ctrain lora merge --base CKPT --adapter DIR|LORA.h5 --out CKPT",
    .description = "The adapter is a PEFT folder (adapter_config.json + adapter_model.safetensors) or a\n"
                   "LoRA run's checkpoint; the result is a plain checkpoint (generate, export hf, init_from).",
    .options = merge_options,
    .n_options = (int)(sizeof merge_options / sizeof merge_options[0]),
    .run = run_merge,
};

static int run_export(const CtArgs *args) {
    const char *out = ct_args_get(args, "out");
    if (!out) return ct_cli_usage_error(&ct_cmd_lora_export, "--out DIR is required");
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_lora_checkpoint_load_adapters(args->positionals[0], &m, ct_ops_cpu(), 0, &meta) != 0) return ct_cli_fail();
    ct_checkpoint_meta_free(&meta);
    int rc = ct_lora_save_peft(&m, out, ct_args_get(args, "base-name"));
    if (rc == 0)
        ct_log("lora export: %d adapters (r %d) of %s -> %s", m.lora->n_adapters, m.lora->spec.r, args->positionals[0], out);
    ct_model_free(&m);
    return rc == 0 ? 0 : ct_cli_fail();
}

static int is_folder(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void swap_text(char **a, char **b) {
    char *t = *a;
    *a = *b;
    *b = t;
}

static int run_merge(const CtArgs *args) {
    const char *base = ct_args_get(args, "base"), *adapter = ct_args_get(args, "adapter"), *out = ct_args_get(args, "out");
    if (!base || !adapter || !out) return ct_cli_usage_error(&ct_cmd_lora_merge, "--base, --adapter and --out are required");
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_load(base, &m, ct_ops_cpu(), 1, 1, CT_MODEL_FROZEN, NULL, &meta) != 0) return ct_cli_fail();
    int rc = 0;
    const int base_V = m.config.vocab_size;
    if (is_folder(adapter)) {
        rc = ct_lora_load_peft(&m, adapter);
    } else {
        // a LoRA run's checkpoint brings its own base: it must be this one
        CtModel run;
        CtCheckpointMeta run_meta = CT_CHECKPOINT_META_INIT;
        rc = ct_lora_checkpoint_load_adapters(adapter, &run, ct_ops_cpu(), 0, &run_meta);
        if (rc == 0) {
            if (run.lora->tokens.n && run_meta.tokenizer_json) {
                // the run trained token rows its base lacked: the merged model needs its tokenizer
                swap_text(&meta.tokenizer_json, &run_meta.tokenizer_json);
                swap_text(&meta.chat_template_json, &run_meta.chat_template_json);
                meta.tokenizer_hash = run_meta.tokenizer_hash;
            }
            if (run.config.num_labels)  // a classifier: its labels (export hf names id2label from them)
                swap_text(&meta.run_config_json, &run_meta.run_config_json);
            ct_checkpoint_meta_free(&run_meta);
            if (run.lora->base_hash != ct_lora_base_hash(&m))
                rc = ct_error_set("%s: its adapters were trained on %s, whose parameters differ from --base %s", adapter,
                                  run.lora->base_path, base);
            else if ((rc = ct_lora_base_take_head(&m, &run.config)) == 0 && (rc = ct_lora_attach(&m, &run.lora->spec)) == 0)
                memcpy(m.lora->params, run.lora->params, m.lora->n_params * sizeof(float));
            ct_model_free(&run);
        }
    }
    if (rc == 0) {
        int n = m.lora->n_adapters, r = m.lora->spec.r, n_tokens = m.lora->tokens.n;
        float scale = m.lora->scale;
        ct_lora_merge(&m);
        rc = ct_checkpoint_save(out, &m, NULL, &meta);
        if (rc == 0)
            ct_log("lora merge: %d adapters (r %d, scale %g)%s folded into %s -> %s", n, r, (double)scale,
                   n_tokens ? " and trained token rows" : "", base, out);
        if (rc == 0 && m.config.vocab_size > base_V && is_folder(adapter))
            ct_warn("lora merge: the adapter trains token ids past the base's vocabulary (%d -> %d); %s holds the "
                    "base's tokenizer, which lacks them (a LoRA run's checkpoint as --adapter brings its own)", base_V,
                    m.config.vocab_size, out);
    }
    ct_checkpoint_meta_free(&meta);
    ct_model_free(&m);
    return rc == 0 ? 0 : ct_cli_fail();
}
