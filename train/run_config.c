#include "train/run_config.h"

#include <math.h>

#include "core/error.h"

static const CtConfigSection sections[] = {
    {"run", "Where a run writes, how it is seeded and what it runs on."},
    {"model", "The Transformer: a preset, and any key set here overrides the preset's value."},
};

static const CtConfigKey keys[] = {
    CT_CFG_KEY_STRING(CtRunConfig, run.out_dir, "run.out_dir", "out",
                      "Folder for checkpoints, metrics and plots; created when missing."),
    CT_CFG_KEY_INT(CtRunConfig, run.seed, "run.seed", "1337", 0, 9007199254740991.0,
                   "Seed of every random stream (initialisation, data order, dropout, sampling)."),
    CT_CFG_KEY_INT(CtRunConfig, run.threads, "run.threads", "0", 0, 4096,
                   "CPU threads for OpenMP and BLAS; 0 uses every core."),
    CT_CFG_KEY_ENUM(CtRunConfig, run.device, "run.device", "auto", "cpu|cuda|auto",
                    "Where to compute: auto picks a CUDA GPU when this build has CUDA and one is visible."),
    CT_CFG_KEY_STRING(CtRunConfig, model.preset, "model.preset", "gpt2-124m",
                      "Named model shape (gpt2-124m, gpt2-350m, gpt2-774m, gpt2-1558m, gpt2-tiny, llama-tiny, llama-42m, llama-110m, llama-1b)."),
    CT_CFG_KEY_ENUM(CtRunConfig, model.arch, "model.arch", "auto", "auto|gpt2|llama",
                    "Family: gpt2 (learned positions, LayerNorm, GELU, biases) or llama (RoPE, RMSNorm, SwiGLU, GQA); auto keeps the preset's."),
    CT_CFG_KEY_INT(CtRunConfig, model.n_layer, "model.n_layer", "0", 0, 1024, "Transformer blocks; 0 keeps the preset's."),
    CT_CFG_KEY_INT(CtRunConfig, model.n_head, "model.n_head", "0", 0, 1024, "Query heads; 0 keeps the preset's."),
    CT_CFG_KEY_INT(CtRunConfig, model.n_kv_head, "model.n_kv_head", "0", 0, 1024,
                   "Key/value heads (grouped-query attention, divides n_head); 0 keeps the preset's."),
    CT_CFG_KEY_INT(CtRunConfig, model.d_model, "model.d_model", "0", 0, 65536, "Channels; 0 keeps the preset's."),
    CT_CFG_KEY_INT(CtRunConfig, model.d_ff, "model.d_ff", "0", 0, 262144, "MLP hidden size; 0 keeps the preset's."),
    CT_CFG_KEY_INT(CtRunConfig, model.vocab_size, "model.vocab_size", "0", 0, 1048576,
                   "Vocabulary size (the tokenizer's); 0 keeps the preset's."),
    CT_CFG_KEY_INT(CtRunConfig, model.max_seq_len, "model.max_seq_len", "0", 0, 1048576,
                   "Longest sequence (size of the position table for gpt2); 0 keeps the preset's."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.norm_eps, "model.norm_eps", "0", 0, 1, "Epsilon of LayerNorm/RMSNorm; 0 keeps the preset's."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.rope_theta, "model.rope_theta", "0", 0, 1e9, "RoPE base (llama); 0 keeps the preset's."),
    CT_CFG_KEY_ENUM(CtRunConfig, model.tie_embeddings, "model.tie_embeddings", "auto", "auto|true|false",
                    "Share the token embedding with the output head; auto keeps the preset's."),
    CT_CFG_KEY_FLOAT(CtRunConfig, model.dropout, "model.dropout", "0", 0, 0.99,
                     "Dropout probability on the embeddings, attention probabilities and both residual branches of every block, in training steps only."),
    CT_CFG_KEY_BOOL(CtRunConfig, model.recompute, "model.recompute", "false",
                    "Recompute norms and MLP activations in backward instead of storing them (less memory, a little more time)."),
};

const CtConfigSchema ct_run_config_schema = {
    sections, (int)(sizeof sections / sizeof sections[0]), keys, (int)(sizeof keys / sizeof keys[0]),
};

int ct_run_config_load(CtRunConfig *cfg, const char *path, const CtArgs *args) {
    ct_config_validate_schema(&ct_run_config_schema);
    ct_config_set_defaults(&ct_run_config_schema, cfg);
    if (path && ct_config_apply_file(&ct_run_config_schema, cfg, path) != 0) return -1;
    for (int i = 0; args && i < args->n_overrides; i++)
        if (ct_config_apply_override(&ct_run_config_schema, cfg, args->override_keys[i], args->override_values[i]) != 0)
            return -1;
    return 0;
}
