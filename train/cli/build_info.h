// What this build of ctrain is and can use: version, CPU threads, BLAS, CUDA, NCCL, MPI.
#pragma once
#include <stdio.h>

void ct_print_build_info(FILE *out);
