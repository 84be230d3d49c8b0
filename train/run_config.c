#include "train/run_config.h"

#include <math.h>

#include "core/error.h"

static const CtConfigSection sections[] = {
    {"run", "Where a run writes, how it is seeded and what it runs on."},
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
