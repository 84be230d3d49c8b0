// The run config: every key a ctrain run reads, in one struct, with its schema (defaults,
// ranges, docs) in train/run_config.c. docs/config.md is generated from that schema
// (ctrain config --keys --markdown), and a test keeps the two equal.
#pragma once
#include <stdint.h>

#include "core/args.h"
#include "core/config.h"

#define CT_PATH_MAX 1024

typedef enum { CT_DEVICE_CPU = 0, CT_DEVICE_CUDA = 1, CT_DEVICE_AUTO = 2 } CtDeviceChoice;

typedef struct {
    struct {
        char out_dir[CT_PATH_MAX];
        int64_t seed;
        int threads;
        int device;  // CtDeviceChoice
    } run;
    // The model: a preset, and any key set here (non-zero, or not "auto") overrides it.
    // ct_model_config_from_run (train/model_config.h) resolves the two into a CtModelConfig.
    struct {
        char preset[64];
        int arch;            // 0 auto (the preset's), 1 gpt2, 2 llama
        int n_layer, n_head, n_kv_head, d_model, d_ff, vocab_size, max_seq_len;  // 0: the preset's
        float norm_eps, rope_theta;  // 0: the preset's
        int tie_embeddings;  // 0 auto, 1 true, 2 false
        float dropout;
        int recompute;       // recompute norms and MLP activations in backward instead of storing them
    } model;
} CtRunConfig;

extern const CtConfigSchema ct_run_config_schema;

// Defaults, then the file (when path is not NULL), then the overrides collected in args.
// Returns 0, or -1 + error naming the file or the option.
int ct_run_config_load(CtRunConfig *cfg, const char *path, const CtArgs *args);
