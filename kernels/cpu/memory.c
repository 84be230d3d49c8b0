// The CPU backend's memory ops: ordinary host memory through core/alloc.h.
#include <string.h>

#include "core/alloc.h"
#include "kernels/cpu/cpu_ops.h"

void *ct_cpu_alloc(size_t bytes, const char *what) {
    (void)what;  // host allocation failure is already fatal with the size (core/alloc.h)
    return ct_calloc(bytes ? bytes : 1, 1);
}
void ct_cpu_free(void *p) { ct_free(p); }
void ct_cpu_zero(void *p, size_t bytes) {
    if (bytes) memset(p, 0, bytes);
}
void ct_cpu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src) memmove(dst, src, bytes);
}
size_t ct_cpu_attention_saved_floats(int B, int T, int NH) { return (size_t)B * NH * T * T; }
void ct_cpu_synchronize(void) {}
