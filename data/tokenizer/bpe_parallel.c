#include "data/tokenizer/bpe_parallel.h"

#include <omp.h>
#include <string.h>

#include "core/alloc.h"
#include "data/tokenizer/nfc.h"

static void add_chunk(CtTextChunks *c, size_t start, size_t end, size_t limit, int32_t special) {
    if (c->n == c->cap) c->items = ct_realloc(c->items, (c->cap = c->cap ? c->cap * 2 : 64) * sizeof *c->items);
    c->items[c->n++] = (CtTextChunk){start, end, limit, special};
}

// Ordinary text [start, end) cut at safe places into chunks of about `target` bytes. Pieces
// look ahead at most to `end`: the text before an added token is encoded on its own, as
// tiktoken does. A SentencePiece-style segment is one chunk (its normalization depends on where
// it starts, and without a Metaspace split it is one piece), and so is a segment that NFC
// changes (it is normalized as a whole, as HF does). A WordPiece one is cut at the same places:
// after a newline or before a space is a word boundary, and BERT's normalizer works character
// by character.
static void add_segment(CtTextChunks *c, const CtTokenizer *t, const uint8_t *text, size_t start, size_t end,
                        size_t target) {
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

void ct_text_chunks_plan(const CtTokenizer *t, const CtEncoder *e, const uint8_t *text, size_t len, int allow_special,
                         size_t target, CtTextChunks *out) {
    size_t start = 0, seg_end, next;
    for (;;) {
        int32_t id = ct_next_added(e, text, len, start, allow_special, &seg_end, &next);
        add_segment(out, t, text, start, seg_end, target);
        if (id < 0) break;
        add_chunk(out, seg_end, next, next, id);
        start = next;
    }
}

void ct_text_chunk_encode(const CtTokenizer *t, CtEncoder *e, const uint8_t *text, const CtTextChunk *c,
                          int allow_special, CtIds *out) {
    if (c->special >= 0)
        ct_ids_push(out, c->special);
    else if (t->units != CT_UNITS_BYTES || (t->nfc && !ct_nfc_is_trivial(text + c->start, c->end - c->start)))
        ct_encode_segment(e, text + c->start, c->end - c->start, c->start == 0, allow_special, out);
    else
        ct_encode_ordinary_range(e, text, c->limit, c->start, c->end, out);
}

void ct_text_chunks_free(CtTextChunks *c) {
    ct_free(c->items);
    memset(c, 0, sizeof *c);
}

void ct_encode_parallel(const CtTokenizer *t, CtEncoder **encoders, int threads, const uint8_t *text, size_t len,
                        int allow_special, CtIds *out) {
    // Several chunks per thread, so a slow chunk does not leave the others idle; at least
    // 64 KiB each, so the per-chunk cost stays small.
    size_t target = len / ((size_t)threads * 8) + 1;
    if (target < (1 << 16)) target = 1 << 16;
    CtTextChunks chunks = {0};
    ct_text_chunks_plan(t, encoders[0], text, len, allow_special, target, &chunks);
    CtIds *chunk_ids = ct_calloc(chunks.n ? chunks.n : 1, sizeof *chunk_ids);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (size_t i = 0; i < chunks.n; i++) {
        const CtTextChunk *c = &chunks.items[i];
        // Ids go to a local list first: neighbouring chunks share cache lines, and pushing
        // into chunk_ids[i] directly would make the threads fight over them (false sharing).
        // Sized for about 3 bytes a token (English text runs at 4), so the list rarely grows.
        CtIds ids = {0};
        ct_ids_reserve_for_text(&ids, c->end - c->start);
        ct_text_chunk_encode(t, encoders[omp_get_thread_num()], text, c, allow_special, &ids);
        chunk_ids[i] = ids;
    }
    // One allocation for the result, then the chunks copied in parallel: a serial
    // concatenation of tens of MB would cap the speed-up (Amdahl) on many cores.
    size_t total = out->len;
    for (size_t i = 0; i < chunks.n; i++) total += chunk_ids[i].len;
    if (total > out->cap) {
        out->cap = total;
        out->data = ct_realloc(out->data, out->cap * sizeof *out->data);
    }
    size_t *offset = ct_alloc((chunks.n + 1) * sizeof *offset);
    offset[0] = out->len;
    for (size_t i = 0; i < chunks.n; i++) offset[i + 1] = offset[i] + chunk_ids[i].len;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (size_t i = 0; i < chunks.n; i++) {
        CtIds *ids = &chunk_ids[i];
        if (ids->len) memcpy(out->data + offset[i], ids->data, ids->len * sizeof *ids->data);
        ct_ids_free(ids);
    }
    out->len = total;
    ct_free(offset);
    ct_free(chunk_ids);
    ct_text_chunks_free(&chunks);
}
