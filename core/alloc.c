#include "core/alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/error.h"

// Each block carries a header of CT_ALIGN bytes in front of it that records its size, so that
// ct_free can keep the counter right without a size argument, and where the block that malloc
// gave starts (offset bytes before the header: 0 but for ct_alloc_huge).
typedef struct {
    size_t bytes, offset;
} BlockHeader;

static atomic_size_t mem_current;
static atomic_size_t mem_peak;

static void count_add(size_t bytes) {
    size_t now = atomic_fetch_add(&mem_current, bytes) + bytes;
    size_t peak = atomic_load(&mem_peak);
    while (now > peak && !atomic_compare_exchange_weak(&mem_peak, &peak, now)) {
    }
}

static double mib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

// malloc's block of extra + bytes, aligned to `align`; running out of memory is fatal.
static unsigned char *raw_block(size_t align, size_t extra, size_t bytes) {
    if (bytes > SIZE_MAX - extra)
        CT_FATAL("a size computation overflowed", "allocation of %zu bytes is impossible", bytes);
    void *raw = NULL;
    if (posix_memalign(&raw, align, extra + bytes) != 0 || !raw)
        CT_FATAL("use a smaller batch, sequence length or model, or free memory on this machine",
                 "out of memory: asked for %.1f MiB while holding %.1f MiB", mib(bytes),
                 mib(atomic_load(&mem_current)));
    return raw;
}

// The caller's block of `bytes` at `block`, with its header before it, counted.
static void *counted_block(unsigned char *block, size_t bytes, size_t offset) {
    *(BlockHeader *)(block - CT_ALIGN) = (BlockHeader){bytes, offset};
    count_add(bytes);
    return block;
}

void *ct_alloc(size_t bytes) { return counted_block(raw_block(CT_ALIGN, CT_ALIGN, bytes) + CT_ALIGN, bytes, 0); }

#define HUGE_PAGE ((size_t)2 << 20)

void *ct_alloc_huge(size_t bytes) {
    if (bytes < HUGE_PAGE) return ct_alloc(bytes);
    // The header sits at the end of a first huge page, the block on whole pages after it.
    unsigned char *block = raw_block(HUGE_PAGE, 2 * HUGE_PAGE, bytes) + HUGE_PAGE;
#ifdef MADV_HUGEPAGE
    // a hint: where it is refused, the block has small pages
    madvise(block, (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);
#endif
    return counted_block(block, bytes, HUGE_PAGE - CT_ALIGN);
}

void *ct_calloc(size_t count, size_t size) {
    if (size != 0 && count > SIZE_MAX / size)
        CT_FATAL("a size computation overflowed", "allocation of %zu x %zu bytes overflows", count, size);
    void *p = ct_alloc(count * size);
    memset(p, 0, count * size);
    return p;
}

void ct_free(void *p) {
    if (!p) return;
    const BlockHeader *h = (const BlockHeader *)((unsigned char *)p - CT_ALIGN);
    atomic_fetch_sub(&mem_current, h->bytes);
    free((unsigned char *)h - h->offset);
}

void *ct_realloc(void *p, size_t bytes) {
    if (!p) return ct_alloc(bytes);
    size_t old = ((BlockHeader *)((unsigned char *)p - CT_ALIGN))->bytes;
    void *q = ct_alloc(bytes);
    memcpy(q, p, old < bytes ? old : bytes);
    ct_free(p);
    return q;
}

char *ct_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = ct_alloc(n);
    memcpy(d, s, n);
    return d;
}

size_t ct_mem_current(void) { return atomic_load(&mem_current); }
size_t ct_mem_peak(void) { return atomic_load(&mem_peak); }
void ct_mem_reset_peak(void) { atomic_store(&mem_peak, atomic_load(&mem_current)); }

static size_t align_up(size_t n) { return (n + CT_ALIGN - 1) & ~(size_t)(CT_ALIGN - 1); }

void ct_arena_init(CtArena *arena, size_t capacity) {
    arena->capacity = align_up(capacity);
    arena->base = ct_alloc(arena->capacity ? arena->capacity : CT_ALIGN);
    arena->used = 0;
}

void *ct_arena_push(CtArena *arena, size_t bytes) {
    size_t need = align_up(bytes);
    if (need > arena->capacity - arena->used)
        CT_FATAL("the arena was sized too small for what is pushed into it; this is a bug in ctrain",
                 "arena overflow: %zu bytes asked, %zu of %zu free", bytes, arena->capacity - arena->used,
                 arena->capacity);
    void *p = arena->base + arena->used;
    arena->used += need;
    return p;
}

void ct_arena_reset(CtArena *arena) { arena->used = 0; }

void ct_arena_free(CtArena *arena) {
    ct_free(arena->base);
    arena->base = NULL;
    arena->capacity = arena->used = 0;
}
