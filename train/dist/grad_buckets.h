// Gradient buckets: when to start all-reducing which part of the flat gradient buffer, so the
// all-reduce of the last layers' gradients overlaps the backward of the earlier layers (the
// scheme of PyTorch DDP: Li et al., "PyTorch Distributed: Experiences on Accelerating Data
// Parallel Training", VLDB 2020).
//
// The parameter buffer holds the embeddings first and the blocks in order, with the final norm
// and the head last (train/model/model_params.c). Backward runs from the head toward the embeddings,
// so the gradient buffer becomes final from its END toward its START. The caller reports how
// far with a watermark, "every gradient at index >= final_from is final", and takes the buckets
// that lie wholly above it. (A tied embedding, at the start, gets its last contribution from
// the embedding backward, at the very end: the watermark reaches 0 only then, as it should.)
//
// Buckets are cut from the start of the buffer, bucket k = [k·size, min((k+1)·size, n)), so each
// starts 256-byte aligned, and are handed out last bucket first. The order is fixed, whatever the
// watermarks: every rank launches the same collectives in the same order with the same counts,
// as NCCL requires, even when ranks report at different points of their backward.
#pragma once
#include <stddef.h>

#define CT_GRAD_BUCKET_DEFAULT_BYTES ((size_t)25 << 20)  // 25 MiB, PyTorch DDP's bucket_cap_mb

typedef struct {
    size_t n;       // floats in the gradient buffer
    size_t size;    // floats per bucket (the last bucket may hold fewer)
    int n_buckets;
    int next;       // the next bucket to hand out, counting down; -1 when all are out
} CtGradBuckets;

// Buckets over n floats of at most bucket_bytes each (0: CT_GRAD_BUCKET_DEFAULT_BYTES), rounded
// down to whole 256-byte units (at least one).
void ct_grad_buckets_init(CtGradBuckets *b, size_t n, size_t bucket_bytes);
// A new backward: nothing handed out yet.
void ct_grad_buckets_restart(CtGradBuckets *b);
// With every gradient at index >= final_from final: if the next bucket lies wholly in
// [final_from, n), sets *begin and *count to it, counts it as handed out and returns 1; returns
// 0 otherwise (not yet, or all are out). Call in a loop until it returns 0.
int ct_grad_buckets_take(CtGradBuckets *b, size_t final_from, size_t *begin, size_t *count);
