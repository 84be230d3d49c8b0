#include "data/tokenizer/bpe_parallel.h"

#include <omp.h>
#include <string.h>

#include "core/alloc.h"
#include "data/tokenizer/nfc.h"

typedef struct {
    size_t start, end;  // the chunk's bytes
    size_t limit;       // how far its pieces may look ahead (the end of its segment)
    int32_t special;    // >= 0: this chunk is one special token
    CtIds ids;
} Chunk;

typedef struct {
    Chunk *items;
    size_t n, cap;
} Chunks;

static void add_chunk(Chunks *c, size_t start, size_t end, size_t limit, int32_t special) {
    if (c->n == c->cap) c->items = ct_realloc(c->items, (c->cap = c->cap ? c->cap * 2 : 64) * sizeof *c->items);
    c->items[c->n++] = (Chunk){start, end, limit, special, {0}};
}

// Ordinary text [start, end) cut at safe places into chunks of about `target` bytes. Pieces
// look ahead at most to `end`: the text before an added token is encoded on its own, as
// tiktoken does. A SentencePiece-style segment is one chunk (its normalization depends on where
// it starts, and without a Metaspace split it is one piece), and so is a segment that NFC
// changes (it is normalized as a whole, as HF does). A WordPiece one is cut at the same places:
// after a newline is a word boundary, and BERT's normalizer works character by character.
static void add_segment(Chunks *c, const CtTokenizer *t, const uint8_t *text, size_t start, size_t end, size_t target) {
    size_t pos = start;
    if (t->units == CT_UNITS_CHARS || (t->nfc && !ct_nfc_is_trivial(text + start, end - start))) {
        if (end > start) add_chunk(c, start, end, end, -1);
        return;
    }
    while (pos < end) {
        size_t cut = end;
        if (end - pos > target * 3 / 2) cut = start + ct_pretokenize_safe_cut(text + start, end - start, pos - start + target);
        add_chunk(c, pos, cut, end, -1);
        pos = cut;
    }
}

void ct_encode_parallel(const CtTokenizer *t, CtEncoder **encoders, int threads, const uint8_t *text, size_t len,
                        int allow_special, CtIds *out) {
    // Several chunks per thread, so a slow chunk does not leave the others idle; at least
    // 64 KiB each, so the per-chunk cost stays small.
    size_t target = len / ((size_t)threads * 8) + 1;
    if (target < (1 << 16)) target = 1 << 16;
    Chunks chunks = {0};
    size_t start = 0, seg_end, next;
    for (;;) {
        int32_t id = ct_next_added(encoders[0], text, len, start, allow_special, &seg_end, &next);
        add_segment(&chunks, t, text, start, seg_end, target);
        if (id < 0) break;
        add_chunk(&chunks, seg_end, next, next, id);
        start = next;
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (size_t i = 0; i < chunks.n; i++) {
        Chunk *c = &chunks.items[i];
        // Ids go to a local list first: neighbouring chunks share cache lines, and pushing
        // into c->ids directly would make the threads fight over them (false sharing).
        // Sized for about 3 bytes a token (English text runs at 4), so the list rarely grows.
        CtIds ids = {0};
        ids.cap = (c->end - c->start) / 3 + 16;
        ids.data = ct_alloc(ids.cap * sizeof *ids.data);
        if (c->special >= 0)
            ct_ids_push(&ids, c->special);
        else if (t->units != CT_UNITS_BYTES || (t->nfc && !ct_nfc_is_trivial(text + c->start, c->end - c->start)))
            ct_encode_segment(encoders[omp_get_thread_num()], text + c->start, c->end - c->start, c->start == 0,
                              allow_special, &ids);
        else
            ct_encode_ordinary_range(encoders[omp_get_thread_num()], text, c->limit, c->start, c->end, &ids);
        c->ids = ids;
    }
    // One allocation for the result, then the chunks copied in parallel: a serial
    // concatenation of tens of MB would cap the speed-up (Amdahl) on many cores.
    size_t total = out->len;
    for (size_t i = 0; i < chunks.n; i++) total += chunks.items[i].ids.len;
    if (total > out->cap) {
        out->cap = total;
        out->data = ct_realloc(out->data, out->cap * sizeof *out->data);
    }
    size_t *offset = ct_alloc((chunks.n + 1) * sizeof *offset);
    offset[0] = out->len;
    for (size_t i = 0; i < chunks.n; i++) offset[i + 1] = offset[i] + chunks.items[i].ids.len;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (size_t i = 0; i < chunks.n; i++) {
        CtIds *ids = &chunks.items[i].ids;
        if (ids->len) memcpy(out->data + offset[i], ids->data, ids->len * sizeof *ids->data);
        ct_ids_free(ids);
    }
    out->len = total;
    ct_free(offset);
    ct_free(chunks.items);
}
