// sft and dpo batches: the split's examples are held in memory (instruction and preference
// sets are small next to pretraining corpora), permuted per epoch, and laid out in rows.
#include "data/loader/loader_examples.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"

static int is_dpo(const CtLoader *l) { return l->dataset->kind == CT_SHARD_DPO; }

// sft: the positions an example fills (its tokens minus one, at most T) and where it starts
// after cutting the left of its prompt when it is too long.
static void sft_span(const CtLoader *l, uint64_t e, uint64_t *start, uint64_t *length) {
    const uint64_t T = (uint64_t)l->opt.seq_len;
    uint64_t L = l->ex_offset[e + 1] - l->ex_offset[e];
    uint64_t n = L > 0 ? L - 1 : 0, cut_left = 0;
    if (n > T) {
        const uint8_t *m = l->ex_mask + l->ex_offset[e];
        uint64_t prompt = 0;
        while (prompt < L && !m[prompt]) prompt++;
        uint64_t keepable_cut = prompt > 0 ? prompt - 1 : 0;  // keep one prompt token to predict from
        cut_left = n - T < keepable_cut ? n - T : keepable_cut;
    }
    *start = cut_left;
    *length = n - cut_left < T ? n - cut_left : T;
}

// dpo: the shared left cut of a pair's prompt so the longer of its two sequences fits.
static uint64_t dpo_cut(const CtLoader *l, uint64_t e) {
    const uint32_t *len = l->ex_lengths + 3 * e;
    uint64_t longest = (uint64_t)len[0] + (len[1] > len[2] ? len[1] : len[2]);
    uint64_t T = (uint64_t)l->opt.seq_len;
    if (longest < 1 || longest - 1 <= T) return 0;
    uint64_t need = longest - 1 - T, keepable = len[0] > 0 ? len[0] - 1 : 0;
    return need < keepable ? need : keepable;
}

int ct_loader_open_examples(CtLoader *l) {
    const CtDatasetSplit *ds = &l->dataset->split[l->split];
    l->n_examples = ds->n_documents;
    uint64_t N = ds->n_tokens;
    l->ex_tokens = ct_alloc(sizeof(int32_t) * (N + 1));
    l->ex_mask = ct_alloc(N + 1);
    l->ex_offset = ct_alloc(sizeof(uint64_t) * (l->n_examples + 1));
    void *dctx = ct_shard_dctx_new();
    int rc = ct_dataset_read_range(l->dataset, l->split, 0, N, dctx, l->ex_tokens, l->ex_mask);
    ct_shard_dctx_free(dctx);
    if (rc != 0) return -1;
    for (uint64_t e = 0; e < l->n_examples; e++) l->ex_offset[e] = ds->doc_starts[e];
    l->ex_offset[l->n_examples] = N;
    if (is_dpo(l)) {
        l->ex_lengths = ct_alloc(3 * sizeof(uint32_t) * (l->n_examples + 1));
        // ct_dataset_open checked that every shard has margins when the manifest says so
        if (l->dataset->dpo_margins) l->ex_margins = ct_alloc(sizeof(double) * (l->n_examples + 1));
        uint64_t k = 0;
        for (int s = 0; s < ds->n_shards; s++) {
            memcpy(l->ex_lengths + 3 * k, ds->shards[s].dpo_lengths, 3 * sizeof(uint32_t) * ds->shards[s].n_docs);
            if (l->ex_margins) memcpy(l->ex_margins + k, ds->shards[s].margins, sizeof(double) * ds->shards[s].n_docs);
            k += ds->shards[s].n_docs;
        }
    }
    const uint64_t rows_needed = (uint64_t)l->opt.world * l->opt.batch;
    if (l->n_examples < rows_needed)
        return ct_error_set("%s: split '%s' has %llu examples, fewer than one global batch (%llu)", l->dataset->dir,
                            ct_split_name(l->split), (unsigned long long)l->n_examples, (unsigned long long)rows_needed);
    for (uint64_t e = 0; e < l->n_examples; e++) {
        if (is_dpo(l)) {
            const uint32_t *len = l->ex_lengths + 3 * e;
            uint64_t longest = (uint64_t)len[0] + (len[1] > len[2] ? len[1] : len[2]);
            l->truncated_examples += longest > 0 && longest - 1 > (uint64_t)l->opt.seq_len;
        } else {
            l->truncated_examples += l->ex_offset[e + 1] - l->ex_offset[e] > (uint64_t)l->opt.seq_len + 1;
        }
    }
    l->example_order = ct_alloc(sizeof(uint32_t) * (l->n_examples + 1));
    l->row_start = ct_alloc(sizeof(uint64_t) * (l->n_examples + 1));
    l->row_examples = ct_alloc(sizeof(uint32_t) * (l->n_examples + 1));
    int rows = is_dpo(l) ? 2 * l->opt.batch : l->opt.batch;
    size_t n = (size_t)rows * l->opt.seq_len;
    l->batch.rows = rows;
    l->batch.T = l->opt.seq_len;
    l->batch.tokens = ct_alloc(n * sizeof(int32_t));
    l->batch.targets = ct_alloc(n * sizeof(int32_t));
    l->batch.positions = ct_alloc(n * sizeof(int32_t));
    l->batch.doc_ids = ct_alloc(n * sizeof(int32_t));
    l->batch.loss_mask = ct_alloc(n);
    l->batch.example_ids = ct_alloc(sizeof(int64_t) * (size_t)rows);
    for (int r = 0; r < rows; r++) l->batch.example_ids[r] = -1;
    l->batch.margins = ct_calloc((size_t)rows, sizeof(double));
    return ct_loader_plan_examples(l, 0);
}

void ct_loader_close_examples(CtLoader *l) {
    ct_free(l->ex_tokens);
    ct_free(l->ex_mask);
    ct_free(l->ex_offset);
    ct_free(l->ex_lengths);
    ct_free(l->ex_margins);
    ct_free(l->example_order);
    ct_free(l->row_start);
    ct_free(l->row_examples);
}

int ct_loader_plan_examples(CtLoader *l, uint64_t epoch) {
    if (l->opt.shuffle) {
        CtRng rng;
        ct_rng_seed_stream(&rng, l->opt.seed, ct_rng_data_stream(epoch, 0));
        ct_rng_permutation(&rng, l->example_order, (uint32_t)l->n_examples);
    } else {
        for (uint64_t e = 0; e < l->n_examples; e++) l->example_order[e] = (uint32_t)e;
    }
    const uint64_t rows_needed = (uint64_t)l->opt.world * l->opt.batch;
    if (is_dpo(l)) {
        l->steps_per_epoch = l->n_examples / rows_needed;
    } else {
        // Rows of whole examples: greedy packing in epoch order, or one example per row.
        const uint64_t T = (uint64_t)l->opt.seq_len;
        uint64_t used = T + 1, k = 0;
        l->n_rows = 0;
        for (uint64_t i = 0; i < l->n_examples; i++) {
            uint32_t e = l->example_order[i];
            uint64_t start, length;
            sft_span(l, e, &start, &length);
            if (length == 0) continue;  // an example of one token has nothing to predict
            if (!l->opt.packing || used + length > T) {
                l->row_start[l->n_rows++] = k;
                used = 0;
            }
            l->row_examples[k++] = e;
            used += length;
        }
        l->row_start[l->n_rows] = k;
        l->steps_per_epoch = l->n_rows / rows_needed;
        if (l->steps_per_epoch == 0)
            return ct_error_set("%s: split '%s' fills %llu rows of %d tokens, fewer than one global batch (%llu)",
                                l->dataset->dir, ct_split_name(l->split), (unsigned long long)l->n_rows, l->opt.seq_len,
                                (unsigned long long)rows_needed);
    }
    l->planned_epoch = epoch + 1;
    return 0;
}

static void clear_row(CtLoaderBatch *b, int row) {
    size_t base = (size_t)row * b->T;
    for (int t = 0; t < b->T; t++) {
        b->tokens[base + t] = 0;
        b->targets[base + t] = -1;
        b->positions[base + t] = 0;
        b->doc_ids[base + t] = -1;
    }
    memset(b->loss_mask + base, 0, (size_t)b->T);
}

static void fill_sft_row(CtLoader *l, int row, uint64_t r) {
    CtLoaderBatch *b = &l->batch;
    clear_row(b, row);
    size_t at = (size_t)row * b->T;
    int32_t doc = 0;
    for (uint64_t k = l->row_start[r]; k < l->row_start[r + 1]; k++, doc++) {
        uint32_t e = l->row_examples[k];
        uint64_t start, length;
        sft_span(l, e, &start, &length);
        const int32_t *x = l->ex_tokens + l->ex_offset[e] + start;
        const uint8_t *m = l->ex_mask + l->ex_offset[e] + start;
        for (uint64_t i = 0; i < length; i++, at++) {
            b->tokens[at] = x[i];
            b->targets[at] = x[i + 1];
            b->loss_mask[at] = m[i + 1];
            b->positions[at] = (int32_t)i;
            b->doc_ids[at] = doc;
            b->n_loss_tokens += m[i + 1];
        }
    }
}

static void fill_dpo_row(CtLoader *l, int row, uint64_t e, int which, uint64_t cut) {
    CtLoaderBatch *b = &l->batch;
    clear_row(b, row);
    const uint32_t *len = l->ex_lengths + 3 * e;
    const int32_t *prompt = l->ex_tokens + l->ex_offset[e];
    const int32_t *completion = prompt + len[0] + (which ? len[1] : 0);
    uint64_t np = len[0], total = np + len[1 + which];
    uint64_t n = total > 0 ? total - 1 - cut : 0;
    if (n > (uint64_t)b->T) n = (uint64_t)b->T;
    size_t base = (size_t)row * b->T;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t j = cut + i;  // index of the input in prompt+completion
        b->tokens[base + i] = j < np ? prompt[j] : completion[j - np];
        b->targets[base + i] = j + 1 < np ? prompt[j + 1] : completion[j + 1 - np];
        b->loss_mask[base + i] = j + 1 >= np;
        b->positions[base + i] = (int32_t)i;
        b->doc_ids[base + i] = 0;
        b->n_loss_tokens += j + 1 >= np;
    }
}

int ct_loader_next_examples(CtLoader *l) {
    uint64_t first = l->state.step * (uint64_t)l->opt.world * l->opt.batch + (uint64_t)l->opt.rank * l->opt.batch;
    for (int i = 0; i < l->opt.batch; i++) {
        if (is_dpo(l)) {
            uint64_t e = l->example_order[first + (uint64_t)i];
            uint64_t cut = dpo_cut(l, e);
            fill_dpo_row(l, 2 * i, e, 0, cut);
            fill_dpo_row(l, 2 * i + 1, e, 1, cut);
            l->batch.example_ids[2 * i] = l->batch.example_ids[2 * i + 1] = (int64_t)e;
            l->batch.margins[2 * i] = l->batch.margins[2 * i + 1] = l->ex_margins ? l->ex_margins[e] : 0;
        } else {
            fill_sft_row(l, i, first + (uint64_t)i);
        }
    }
    return 0;
}
