// The model a run config asks for: its `model` section resolved into a CtModelConfig.
#pragma once
#include "train/loop/run_config.h"
#include "train/model/model_config.h"

// The preset of run->model.preset with every key the config sets on top. Returns 0, or -1 +
// error (unknown preset, invalid combination).
int ct_model_config_from_run(const CtRunConfig *run, CtModelConfig *out);
