// libFuzzer: any bytes given to the safetensors parser either fail with a message or yield
// tensors that lie inside the input, tile the data buffer and convert without reading past it.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "core/alloc.h"
#include "core/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // a copy of exactly `size` bytes, so ASan sees any read past the end of the file image
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    ct_error_clear();
    CtSafetensors f;
    if (ct_st_parse(&f, copy, size, "fuzz.safetensors") == 0) {
        uint64_t total = 0;
        for (int i = 0; i < f.n_tensors; i++) {
            const CtStTensor *t = &f.tensors[i];
            if (t->data < copy || t->data + t->nbytes > copy + size) __builtin_trap();
            total += t->nbytes;
            volatile uint8_t sink = 0;
            for (uint64_t k = 0; k < t->nbytes; k++) sink ^= t->data[k];
            if ((t->dtype == CT_ST_F32 || t->dtype == CT_ST_F16 || t->dtype == CT_ST_BF16) && t->numel < (1u << 20)) {
                float *out = ct_alloc(sizeof(float) * (t->numel ? t->numel : 1));
                if (ct_st_read_f32(&f, t, out) != 0) __builtin_trap();
                ct_free(out);
            }
            if (ct_st_find(&f, t->name) == NULL) __builtin_trap();
        }
        if (f.n_tensors && total > size) __builtin_trap();
        ct_st_close(&f);
    } else if (!ct_error_message()[0] || strchr(ct_error_message(), '\n')) {
        __builtin_trap();  // every refusal is one line
    }
    free(copy);
    return 0;
}
