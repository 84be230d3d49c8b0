#include "tests/cuda_fixture.h"

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/device.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"

const CtOps *cuda_fixture_ops_or_skip(void) {
    const CtOps *ops = ct_ops_select("cuda");
    if (!ops) SKIP("%s", ct_error_message());
    return ops;
}

double cuda_fixture_device_vs_host(const CtOps *ops, const float *dev, const float *host, size_t n) {
    float *h = ct_alloc(n * sizeof(float) + 1);
    ops->download(h, dev, n * sizeof(float));
    double r = hf_fixture_relative_error(h, host, n);
    ct_free(h);
    return r;
}

#ifdef CTRAIN_CUDA
#include "kernels/cuda/cuda_ops.h"

void *cuda_fixture_up(const void *host, size_t bytes, const char *what) {
    void *d = ct_cuda_malloc(bytes, what);
    ct_cuda_upload(d, host, bytes);
    return d;
}

float *cuda_fixture_down(const float *dev, size_t n) {
    float *h = ct_alloc(n * sizeof(float) + 1);
    ct_cuda_download(h, dev, n * sizeof(float));
    return h;
}

CtAct *cuda_fixture_up_act(const CtOps *ops, const float *host, size_t n) {
    CtAct *d = ct_cuda_malloc(n * ops->act_bytes + 1, "test activations");
    ops->upload_act(d, host, n);
    return d;
}

float *cuda_fixture_down_act(const CtOps *ops, const CtAct *dev, size_t n) {
    float *h = ct_alloc(n * sizeof(float) + 1);
    ops->download_act(h, dev, n);
    return h;
}
#endif
