#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "tests/test.h"

TEST(core, alloc_is_aligned_and_counted) {
    size_t before = ct_mem_current();
    void *a = ct_alloc(1000), *b = ct_alloc(3);
    CHECK((uintptr_t)a % CT_ALIGN == 0);
    CHECK((uintptr_t)b % CT_ALIGN == 0);
    CHECK_EQ_INT(ct_mem_current() - before, 1003);
    CHECK(ct_mem_peak() >= before + 1003);
    ct_free(a);
    CHECK_EQ_INT(ct_mem_current() - before, 3);
    ct_free(b);
    ct_free(NULL);
    CHECK_EQ_INT(ct_mem_current(), before);
}

TEST(core, alloc_peak_tracks_the_high_water_mark) {
    ct_mem_reset_peak();
    size_t base = ct_mem_current();
    void *big = ct_alloc(1 << 20);
    ct_free(big);
    void *small = ct_alloc(10);
    CHECK_EQ_INT(ct_mem_peak() - base, 1 << 20);
    ct_mem_reset_peak();
    CHECK_EQ_INT(ct_mem_peak() - base, 10);
    ct_free(small);
}

TEST(core, calloc_zeroes_and_realloc_keeps_contents) {
    unsigned char *p = ct_calloc(100, 3);
    for (int i = 0; i < 300; i++) CHECK(p[i] == 0);
    for (int i = 0; i < 300; i++) p[i] = (unsigned char)i;
    p = ct_realloc(p, 1000);
    for (int i = 0; i < 300; i++) CHECK(p[i] == (unsigned char)i);
    p = ct_realloc(p, 10);
    for (int i = 0; i < 10; i++) CHECK(p[i] == (unsigned char)i);
    ct_free(p);
    char *s = ct_strdup("tokens");
    CHECK_STR_EQ(s, "tokens");
    ct_free(s);
}

TEST(core, alloc_huge_is_page_aligned_counted_and_freed_like_any_block) {
    size_t before = ct_mem_current(), n = (5u << 20) + 3;  // not a whole number of 2 MiB pages
    unsigned char *big = ct_alloc_huge(n), *small = ct_alloc_huge(1000);
    CHECK((uintptr_t)big % (2u << 20) == 0);
    CHECK((uintptr_t)small % CT_ALIGN == 0);
    CHECK_EQ_INT(ct_mem_current() - before, n + 1000);
    memset(big, 0xAB, n);
    big = ct_realloc(big, 64);  // keeps the contents, frees the huge block
    CHECK(big[0] == 0xAB && big[63] == 0xAB);
    ct_free(big);
    ct_free(small);
    CHECK_EQ_INT(ct_mem_current(), before);
}

TEST(core, arena_slices_are_aligned_and_reset) {
    CtArena arena;
    ct_arena_init(&arena, 1000);
    char *a = ct_arena_push(&arena, 1);
    char *b = ct_arena_push(&arena, 100);
    CHECK((uintptr_t)a % CT_ALIGN == 0 && (uintptr_t)b % CT_ALIGN == 0);
    CHECK(b - a == CT_ALIGN);
    ct_arena_reset(&arena);
    CHECK(ct_arena_push(&arena, 8) == a);
    ct_arena_free(&arena);
    CHECK(arena.base == NULL);
}

static void overflow_arena(void *unused) {
    CtArena arena;
    ct_arena_init(&arena, 128);
    ct_arena_push(&arena, 100);
    ct_arena_push(&arena, 100);
}

static void impossible_alloc(void *unused) { ct_calloc(SIZE_MAX / 2, 4); }

TEST(core, allocation_failures_are_fatal_with_a_hint) {
    char *out = NULL;
    CHECK_EQ_INT(ct_test_fork(overflow_arena, NULL, &out), 1);
    CHECK_CONTAINS(out, "arena overflow: 100 bytes asked");
    CHECK_CONTAINS(out, "core/alloc.c:");
    CHECK_CONTAINS(out, "hint:");
    free(out);
    CHECK_EQ_INT(ct_test_fork(impossible_alloc, NULL, &out), 1);
    CHECK_CONTAINS(out, "overflows");
    free(out);
}
