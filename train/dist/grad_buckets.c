#include "train/dist/grad_buckets.h"

#define UNIT_FLOATS 64  // 256 bytes: buckets start where NCCL's and the GPU's loads are aligned

void ct_grad_buckets_init(CtGradBuckets *b, size_t n, size_t bucket_bytes) {
    if (bucket_bytes == 0) bucket_bytes = CT_GRAD_BUCKET_DEFAULT_BYTES;
    size_t size = bucket_bytes / sizeof(float) / UNIT_FLOATS * UNIT_FLOATS;
    if (size == 0) size = UNIT_FLOATS;
    b->n = n;
    b->size = size;
    b->n_buckets = (int)((n + size - 1) / size);
    ct_grad_buckets_restart(b);
}

void ct_grad_buckets_restart(CtGradBuckets *b) { b->next = b->n_buckets - 1; }

int ct_grad_buckets_take(CtGradBuckets *b, size_t final_from, size_t *begin, size_t *count) {
    if (b->next < 0) return 0;
    const size_t from = (size_t)b->next * b->size;
    if (final_from > from) return 0;
    const size_t to = from + b->size < b->n ? from + b->size : b->n;
    *begin = from;
    *count = to - from;
    b->next--;
    return 1;
}
