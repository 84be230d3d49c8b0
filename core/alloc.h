// Aligned allocation with a byte counter, so every command can report its peak memory.
// Blocks are 64-byte aligned (a cache line; enough for AVX-512 loads). Running out of memory
// is fatal with the size asked for and the size already held.
#pragma once
#include <stddef.h>

#define CT_ALIGN 64

void *ct_alloc(size_t bytes);                // uninitialised
void *ct_calloc(size_t count, size_t size);  // zeroed; count*size overflow is fatal
void *ct_realloc(void *p, size_t bytes);     // keeps contents up to the smaller size
// For a large table read at random (a tokenizer's hash tables): aligned to 2 MiB and, where the
// kernel allows (Linux transparent huge pages, "madvise" mode), backed by 2 MiB pages, so that
// random reads miss the TLB far less. Uninitialised; freed with ct_free; below 2 MiB, ct_alloc.
void *ct_alloc_huge(size_t bytes);
void ct_free(void *p);                       // NULL is fine
char *ct_strdup(const char *s);

size_t ct_mem_current(void);  // bytes held through ct_alloc now
size_t ct_mem_peak(void);     // the most held at once since start (or the last reset)
void ct_mem_reset_peak(void);

// An arena: one aligned block handed out in aligned slices and freed at once. Used where a
// set of buffers lives and dies together (activations for the largest batch, scratch space).
typedef struct {
    unsigned char *base;
    size_t capacity;
    size_t used;
} CtArena;

void ct_arena_init(CtArena *arena, size_t capacity);
void *ct_arena_push(CtArena *arena, size_t bytes);  // aligned to CT_ALIGN; overflow is fatal
void ct_arena_reset(CtArena *arena);                // forget every slice, keep the block
void ct_arena_free(CtArena *arena);
