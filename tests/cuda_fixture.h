// Host arrays to and from device memory for the CUDA tests (CUDA builds only).
#pragma once
#include <stddef.h>

#include "kernels/ops.h"

// The CUDA op table; without one (built without CUDA, or no device) the test ends as skipped.
const CtOps *cuda_fixture_ops_or_skip(void);
// hf_fixture_relative_error of n floats in the memory of ops (downloaded) against host ones.
double cuda_fixture_device_vs_host(const CtOps *ops, const float *dev, const float *host, size_t n);

#ifdef CTRAIN_CUDA
// A new device buffer holding `bytes` bytes of host (ct_cuda_free it).
void *cuda_fixture_up(const void *host, size_t bytes, const char *what);
// A new host copy of n floats of a device buffer (ct_free it).
float *cuda_fixture_down(const float *dev, size_t n);
// The same for an activation array of table `ops`: n host floats converted to its activation
// type in a new device buffer, and back to new host floats.
CtAct *cuda_fixture_up_act(const CtOps *ops, const float *host, size_t n);
float *cuda_fixture_down_act(const CtOps *ops, const CtAct *dev, size_t n);
#endif
