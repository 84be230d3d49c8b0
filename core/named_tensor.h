// A named tensor: how the model hands its parameters (and gradients, optimizer state) to code
// that writes or reads them by name (checkpoints, safetensors) without knowing the model.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef enum { CT_DTYPE_F32 = 0, CT_DTYPE_BF16 = 1, CT_DTYPE_F16 = 2, CT_DTYPE_I32 = 3 } CtDtype;

#define CT_TENSOR_MAX_DIMS 4

typedef struct {
    const char *name;  // "transformer.h.0.attn.c_attn.weight"
    int ndim;
    int64_t shape[CT_TENSOR_MAX_DIMS];
    CtDtype dtype;
    void *data;        // ndim dense row-major elements of dtype; not owned
} CtNamedTensor;
