// The CPU backend's memory ops: ordinary host memory through core/alloc.h.
#include <omp.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/cpu/cpu_ops.h"

void *ct_cpu_alloc(size_t bytes, const char *what) {
    (void)what;  // host allocation failure is already fatal with the size (core/alloc.h)
    return ct_calloc(bytes ? bytes : 1, 1);
}
void ct_cpu_free(void *p) { ct_free(p); }
// Zeroing and copying are split among the threads from 1 MiB up: one core alone does not reach
// the memory's bandwidth, and a step zeroes every gradient (GPT-2 124M: 497 MB) and, in backward,
// each layer's activation gradients, while the other threads waited.
enum { PARALLEL_BYTES = 1 << 20 };

void ct_cpu_zero(void *p, size_t bytes) {
    if (bytes < PARALLEL_BYTES) {
        if (bytes) memset(p, 0, bytes);
        return;
    }
#pragma omp parallel
    {
        const size_t threads = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        const size_t lo = bytes * id / threads, hi = bytes * (id + 1) / threads;
        memset((char *)p + lo, 0, hi - lo);
    }
}

void ct_cpu_copy(void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return;
    const char *s = src;
    char *d = dst;
    if (bytes < PARALLEL_BYTES || (d < s + bytes && s < d + bytes)) {  // small, or overlapping: one memmove
        memmove(dst, src, bytes);
        return;
    }
#pragma omp parallel
    {
        const size_t threads = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        const size_t lo = bytes * id / threads, hi = bytes * (id + 1) / threads;
        memcpy(d + lo, s + lo, hi - lo);
    }
}
size_t ct_cpu_attention_saved_floats(int B, int T, int NH) { return (size_t)B * NH * T * T; }
void ct_cpu_synchronize(void) {}
