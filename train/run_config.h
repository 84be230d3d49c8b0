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
} CtRunConfig;

extern const CtConfigSchema ct_run_config_schema;

// Defaults, then the file (when path is not NULL), then the overrides collected in args.
// Returns 0, or -1 + error naming the file or the option.
int ct_run_config_load(CtRunConfig *cfg, const char *path, const CtArgs *args);
