// ctrain peft export / peft import: a run's adapter (any kind: LoRA, prompt tuning, P-tuning,
// prefix tuning) as a Hugging Face PEFT folder, and a prompt-learning folder made by PEFT as a
// ctrain checkpoint over its base. See docs/peft.md.
#include <stdio.h>
#include <string.h>

#include "checkpoints/checkpoint.h"
#include "core/error.h"
#include "core/log.h"
#include "kernels/cpu/cpu_ops.h"
#include "train/cli/commands.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/lora_peft.h"
#include "train/interop/peft_folder.h"
#include "train/model/lora.h"
#include "train/model/peft.h"

static const CtOption export_options[] = {
    {"out", "DIR", "the PEFT adapter folder to write (required)", 0},
    {"base-name", "NAME", "base_model_name_or_path in adapter_config.json (default: the base checkpoint's path)", 0},
};

static const CtOption import_options[] = {
    {"base", "CKPT", "the base model's checkpoint (required)", 0},
    {"out", "CKPT", "the checkpoint to write: the adapter over --base (required)", 0},
};

static int run_export(const CtArgs *args);
static int run_import(const CtArgs *args);

const CtCommand ct_cmd_peft_export = {
    .name = "peft export",
    .summary = "write a run's adapter (LoRA, prompt tuning, P-tuning, prefix tuning) as a Hugging Face PEFT folder",
    .usage = "ctrain peft export CKPT --out DIR [--base-name NAME]",
    .description = "Writes DIR/adapter_config.json and DIR/adapter_model.safetensors, which\n"
                   "PeftModel.from_pretrained(base, DIR) loads onto the base exported with ctrain export hf.\n"
                   "Prompt-learning adapters are saved as PEFT saves them: prompt_embeddings (P-tuning: the\n"
                   "prompt encoder's output).",
    .options = export_options,
    .n_options = (int)(sizeof export_options / sizeof export_options[0]),
    .min_positionals = 1,
    .max_positionals = 1,
    .run = run_export,
};

const CtCommand ct_cmd_peft_import = {
    .name = "peft import",
    .summary = "read a PEFT prompt-learning folder (PROMPT_TUNING, P_TUNING, PREFIX_TUNING) onto its base",
    .usage = "ctrain peft import DIR --base CKPT --out CKPT",
    .description = "Writes a checkpoint that holds the adapter and refers to --base (ctrain generate, chat and\n"
                   "eval load it). A LoRA folder is read by generate/chat/eval --adapter or folded in with\n"
                   "ctrain lora merge.",
    .options = import_options,
    .n_options = (int)(sizeof import_options / sizeof import_options[0]),
    .min_positionals = 1,
    .max_positionals = 1,
    .run = run_import,
};

static int export_lora(const char *ckpt, const char *out, const char *base_name) {
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_lora_checkpoint_load_adapters(ckpt, &m, ct_ops_cpu(), 0, &meta) != 0) return -1;
    ct_checkpoint_meta_free(&meta);
    int rc = ct_lora_save_peft(&m, out, base_name);
    if (rc == 0) ct_log("peft export: LoRA, %d adapters (r %d) of %s -> %s", m.lora->n_adapters, m.lora->spec.r, ckpt, out);
    ct_model_free(&m);
    return rc;
}

static int run_export(const CtArgs *args) {
    const char *out = ct_args_get(args, "out"), *ckpt = args->positionals[0];
    if (!out) return ct_cli_usage_error(&ct_cmd_peft_export, "--out DIR is required");
    CtCheckpoint c;
    if (ct_ckpt_open(&c, ckpt) != 0) return ct_cli_fail();
    const int lora = ct_ckpt_has(&c, "lora_config"), peft = ct_ckpt_has(&c, "peft_config");
    ct_ckpt_close(&c);
    if (lora) return export_lora(ckpt, out, ct_args_get(args, "base-name")) == 0 ? 0 : ct_cli_fail();
    if (!peft) {
        ct_error_set("%s: holds no adapter (no lora_config or peft_config): a plain model exports with ctrain "
                     "export hf", ckpt);
        return ct_cli_fail();
    }
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_load(ckpt, &m, ct_ops_cpu(), 1, 1, 0, NULL, &meta) != 0) return ct_cli_fail();
    ct_checkpoint_meta_free(&meta);
    int rc = ct_peft_save_folder(&m, out, ct_args_get(args, "base-name"));
    if (rc == 0)
        ct_log("peft export: %s, %d virtual tokens of %s -> %s", m.peft->kind->name, m.peft->spec.num_virtual_tokens,
               ckpt, out);
    ct_model_free(&m);
    return rc == 0 ? 0 : ct_cli_fail();
}

static int run_import(const CtArgs *args) {
    const char *base = ct_args_get(args, "base"), *out = ct_args_get(args, "out"), *dir = args->positionals[0];
    if (!base || !out) return ct_cli_usage_error(&ct_cmd_peft_import, "--base and --out are required");
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_load(base, &m, ct_ops_cpu(), 1, 1, CT_MODEL_FROZEN, NULL, &meta) != 0) return ct_cli_fail();
    if (m.lora || m.peft) {
        ct_error_set("%s: --base holds an adapter itself; give the plain model it adapts", base);
        ct_checkpoint_meta_free(&meta);
        ct_model_free(&m);
        return ct_cli_fail();
    }
    int rc = ct_peft_load_folder(&m, dir);
    if (rc == 0 && !m.peft)
        rc = ct_error_set("%s: a LoRA folder: read it with generate/chat/eval --adapter, or fold it into --base with "
                          "ctrain lora merge", dir);
    if (rc == 0) {
        ct_peft_record_base(m.peft, base, ct_lora_base_hash(&m));
        rc = ct_checkpoint_save(out, &m, NULL, &meta);
    }
    if (rc == 0) ct_log("peft import: %s (%s) over %s -> %s", dir, m.peft->kind->peft_type, base, out);
    ct_checkpoint_meta_free(&meta);
    ct_model_free(&m);
    return rc == 0 ? 0 : ct_cli_fail();
}
