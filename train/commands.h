// Every command's spec, one per file (train/cmd_*.c); train/cli.c lists them in one table.
#pragma once
#include "train/cli.h"

extern const CtCommand ct_cmd_config;
extern const CtCommand ct_cmd_bench_train;
extern const CtCommand ct_cmd_bench_matmul;
