// The loader's common part and text windows; sft and dpo examples are in loader_examples.c.
#include "data/loader/loader.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/loader/loader_examples.h"

// One group of text windows materialised in memory.
struct CtLoaderGroup {
    uint64_t group;       // which group of which epoch it holds
    uint64_t epoch;
    int valid;
    int failed;
    char error[512];
    uint64_t n_windows;
    uint64_t *windows;    // window index (in the split) per position in the group's order
    uint64_t *block_at;   // per block slot: the first window index of the block
    uint64_t *slot_offset;// per block slot: offset of its tokens in `tokens`
    uint32_t n_slots;
    int32_t *tokens;
    uint64_t capacity;
};

void ct_loader_default_options(CtLoaderOptions *o) {
    memset(o, 0, sizeof *o);
    o->batch = 4;
    o->seq_len = 64;
    o->world = 1;
    o->seed = 1337;
    o->shuffle = 1;
    o->packing = 1;
    o->block_tokens = 1 << 20;
    o->shuffle_tokens = 1 << 26;
    o->prefetch = 1;
}

// Independent random streams of one loader: the block order of an epoch, and the order of
// windows inside each group.
static void alloc_batch(CtLoaderBatch *b, int rows, int T) {
    b->rows = rows;
    b->T = T;
    size_t n = (size_t)rows * T;
    b->tokens = ct_alloc(n * sizeof(int32_t));
    b->targets = ct_alloc(n * sizeof(int32_t));
    b->positions = ct_alloc(n * sizeof(int32_t));
    b->doc_ids = ct_alloc(n * sizeof(int32_t));
    b->loss_mask = ct_alloc(n);
    b->example_ids = ct_alloc(sizeof(int64_t) * (size_t)rows);
    for (int r = 0; r < rows; r++) b->example_ids[r] = -1;
    b->margins = ct_calloc((size_t)rows, sizeof(double));
}

static void free_batch(CtLoaderBatch *b) {
    ct_free(b->tokens);
    ct_free(b->targets);
    ct_free(b->positions);
    ct_free(b->doc_ids);
    ct_free(b->loss_mask);
    ct_free(b->example_ids);
    ct_free(b->margins);
    memset(b, 0, sizeof *b);
}

// ---- text: groups of windows ----

static uint64_t block_size(const CtLoader *l, uint64_t block) {
    uint64_t first = block * l->block_windows;
    uint64_t end = first + l->block_windows;
    return (end > l->n_windows ? l->n_windows : end) - first;
}

static void epoch_block_order(const CtLoader *l, uint64_t epoch, uint32_t *order) {
    if (!l->opt.shuffle) {
        for (uint64_t b = 0; b < l->n_blocks; b++) order[b] = (uint32_t)b;
        return;
    }
    CtRng rng;
    ct_rng_seed_stream(&rng, l->opt.seed, ct_rng_data_stream(epoch, 0));
    ct_rng_permutation(&rng, order, (uint32_t)l->n_blocks);
}

static void plan_text_epoch(CtLoader *l, uint64_t epoch) {
    epoch_block_order(l, epoch, l->block_order);
    l->group_start[0] = 0;
    for (uint64_t g = 0; g < l->n_groups; g++) {
        uint64_t n = 0;
        for (uint64_t j = g * l->group_blocks; j < (g + 1) * l->group_blocks && j < l->n_blocks; j++)
            n += block_size(l, l->block_order[j]);
        l->group_start[g + 1] = l->group_start[g] + n;
    }
    l->planned_epoch = epoch + 1;
}

static CtLoaderGroup *new_group(const CtLoader *l) {
    CtLoaderGroup *grp = ct_calloc(1, sizeof *grp);
    uint64_t max_windows = l->group_blocks * l->block_windows;
    grp->windows = ct_alloc(sizeof(uint64_t) * max_windows);
    grp->block_at = ct_alloc(sizeof(uint64_t) * l->group_blocks);
    grp->slot_offset = ct_alloc(sizeof(uint64_t) * (l->group_blocks + 1));
    grp->capacity = max_windows * (uint64_t)l->opt.seq_len + l->group_blocks;
    grp->tokens = ct_alloc(sizeof(int32_t) * grp->capacity);
    return grp;
}

static void free_group(CtLoaderGroup *grp) {
    if (!grp) return;
    ct_free(grp->windows);
    ct_free(grp->block_at);
    ct_free(grp->slot_offset);
    ct_free(grp->tokens);
    ct_free(grp);
}

// Reads group g of `epoch` into grp: the token spans of its blocks, and its window order.
static int load_group(const CtLoader *l, uint64_t epoch, uint64_t g, CtLoaderGroup *grp) {
    const uint64_t T = (uint64_t)l->opt.seq_len, K = l->block_windows;
    uint32_t *order = ct_alloc(sizeof(uint32_t) * l->n_blocks);
    epoch_block_order(l, epoch, order);
    void *dctx = ct_shard_dctx_new();
    grp->valid = 0;
    grp->failed = 0;
    grp->n_windows = 0;
    grp->n_slots = 0;
    uint64_t offset = 0;
    int rc = 0;
    for (uint64_t j = g * l->group_blocks; j < (g + 1) * l->group_blocks && j < l->n_blocks; j++) {
        uint64_t b = order[j], n = block_size(l, b), first_window = b * K;
        uint32_t slot = grp->n_slots++;
        grp->block_at[slot] = first_window;
        grp->slot_offset[slot] = offset;
        uint64_t span = n * T + 1;  // n windows of T inputs, plus the last target
        rc = ct_dataset_read_range(l->dataset, l->split, first_window * T, span, dctx, grp->tokens + offset, NULL);
        if (rc != 0) break;
        for (uint64_t k = 0; k < n; k++) grp->windows[grp->n_windows++] = ((uint64_t)slot << 40) | k;
        offset += span;
    }
    ct_shard_dctx_free(dctx);
    ct_free(order);
    if (rc != 0) {
        grp->failed = 1;
        snprintf(grp->error, sizeof grp->error, "%s", ct_error_message());
        return -1;
    }
    if (l->opt.shuffle) {  // permute the group's windows: Fisher-Yates on the packed entries
        CtRng rng;
        ct_rng_seed_stream(&rng, l->opt.seed, ct_rng_data_stream(epoch, g + 1));
        for (uint64_t i = grp->n_windows; i > 1; i--) {
            uint64_t k = ct_rng_below(&rng, (uint32_t)i);
            uint64_t t = grp->windows[i - 1];
            grp->windows[i - 1] = grp->windows[k];
            grp->windows[k] = t;
        }
    }
    grp->epoch = epoch;
    grp->group = g;
    grp->valid = 1;
    return 0;
}

// The background thread reads group (ahead_epoch, ahead_group) into l->ahead. While it runs,
// the main thread touches neither l->ahead nor the fields load_group reads.
static void *load_ahead(void *arg) {
    CtLoader *l = arg;
    load_group(l, l->ahead_epoch, l->ahead_group, l->ahead);
    return NULL;
}

static void join_ahead(CtLoader *l) {
    if (!l->ahead_running) return;
    pthread_join(l->ahead_thread, NULL);
    l->ahead_running = 0;
}

static void start_ahead(CtLoader *l, uint64_t epoch, uint64_t g) {
    if (!l->opt.prefetch) return;
    if (++g == l->n_groups) g = 0, epoch++;
    if (l->n_groups == 1 && epoch == l->current->epoch) return;
    l->ahead_epoch = epoch;
    l->ahead_group = g;
    l->ahead->valid = 0;
    if (pthread_create(&l->ahead_thread, NULL, load_ahead, l) == 0) l->ahead_running = 1;
}

// Makes l->current hold group g of the current epoch.
static int ensure_group(CtLoader *l, uint64_t g) {
    uint64_t epoch = l->state.epoch;
    if (l->current->valid && l->current->epoch == epoch && l->current->group == g) return 0;
    join_ahead(l);
    if (l->ahead->valid && l->ahead->epoch == epoch && l->ahead->group == g) {
        CtLoaderGroup *t = l->current;
        l->current = l->ahead;
        l->ahead = t;
    } else if (load_group(l, epoch, g, l->current) != 0) {
        return ct_error_set("%s", l->current->error);
    }
    l->ahead->valid = 0;
    if (l->ahead->failed) return ct_error_set("%s", l->ahead->error);
    start_ahead(l, epoch, g);
    return 0;
}

static uint64_t group_of(const CtLoader *l, uint64_t position) {
    uint64_t lo = 0, hi = l->n_groups;
    while (hi - lo > 1) {
        uint64_t mid = (lo + hi) / 2;
        if (l->group_start[mid] <= position)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

// Row `row` of the batch from window position `position` of the epoch order.
static int fill_text_row(CtLoader *l, int row, uint64_t position) {
    uint64_t g = group_of(l, position);
    if (ensure_group(l, g) != 0) return -1;
    const CtLoaderGroup *grp = l->current;
    uint64_t entry = grp->windows[position - l->group_start[g]];
    uint32_t slot = (uint32_t)(entry >> 40);
    uint64_t k = entry & ((1ull << 40) - 1);
    const int T = l->opt.seq_len;
    const int32_t *src = grp->tokens + grp->slot_offset[slot] + k * (uint64_t)T;
    uint64_t stream_start = (grp->block_at[slot] + k) * (uint64_t)T;
    CtLoaderBatch *b = &l->batch;
    size_t base = (size_t)row * T;
    memcpy(b->tokens + base, src, sizeof(int32_t) * T);
    memcpy(b->targets + base, src + 1, sizeof(int32_t) * T);
    memset(b->loss_mask + base, 1, (size_t)T);
    b->n_loss_tokens += T;
    if (!l->opt.doc_masking) {
        for (int t = 0; t < T; t++) {
            b->positions[base + t] = t;
            b->doc_ids[base + t] = 0;
        }
        return 0;
    }
    // Document starts inside (stream_start, stream_start + T): the first one after the start.
    const CtDatasetSplit *ds = &l->dataset->split[l->split];
    uint64_t lo = 0, hi = ds->n_documents;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (ds->doc_starts[mid] <= stream_start)
            lo = mid + 1;
        else
            hi = mid;
    }
    int32_t doc = 0, pos = 0;
    for (int t = 0; t < T; t++) {
        uint64_t at = stream_start + (uint64_t)t;
        if (lo < ds->n_documents && ds->doc_starts[lo] == at) {  // never at t = 0: lo starts past it
            doc++;
            pos = 0;
            lo++;
        }
        b->positions[base + t] = pos++;
        b->doc_ids[base + t] = doc;
    }
    return 0;
}

static int open_text(CtLoader *l) {
    const uint64_t T = (uint64_t)l->opt.seq_len, rows = (uint64_t)l->opt.batch * l->opt.world;
    uint64_t N = l->dataset->split[l->split].n_tokens;
    l->n_windows = N > 0 ? (N - 1) / T : 0;
    if (l->n_windows < rows)
        return ct_error_set("%s: split '%s' has %llu tokens, fewer than one global batch needs (%llu rows x %llu + 1)",
                            l->dataset->dir, ct_split_name(l->split), (unsigned long long)N, (unsigned long long)rows,
                            (unsigned long long)T);
    l->block_windows = l->opt.block_tokens / T ? l->opt.block_tokens / T : 1;
    l->n_blocks = (l->n_windows + l->block_windows - 1) / l->block_windows;
    if (l->n_blocks > UINT32_MAX) return ct_error_set("%s: too many blocks; raise block_tokens", l->dataset->dir);
    uint64_t per_group = l->opt.shuffle_tokens / (l->block_windows * T);
    l->group_blocks = per_group ? per_group : 1;
    if (l->group_blocks > l->n_blocks) l->group_blocks = l->n_blocks;
    l->n_groups = (l->n_blocks + l->group_blocks - 1) / l->group_blocks;
    l->steps_per_epoch = l->n_windows / rows;
    l->block_order = ct_alloc(sizeof(uint32_t) * l->n_blocks);
    l->group_start = ct_alloc(sizeof(uint64_t) * (l->n_groups + 1));
    l->current = new_group(l);
    l->ahead = new_group(l);
    alloc_batch(&l->batch, l->opt.batch, l->opt.seq_len);
    return 0;
}

static int next_text(CtLoader *l) {
    if (l->planned_epoch != l->state.epoch + 1) plan_text_epoch(l, l->state.epoch);
    uint64_t first = l->state.step * (uint64_t)l->opt.world * l->opt.batch + (uint64_t)l->opt.rank * l->opt.batch;
    for (int i = 0; i < l->opt.batch; i++)
        if (fill_text_row(l, i, first + (uint64_t)i) != 0) return -1;
    return 0;
}

// ---- common ----

int ct_loader_open(CtLoader *l, const CtDataset *d, CtSplit split, const CtLoaderOptions *o) {
    memset(l, 0, sizeof *l);
    if (o->batch < 1 || o->seq_len < 1 || o->world < 1 || o->rank < 0 || o->rank >= o->world)
        return ct_error_set("loader: batch %d, sequence length %d, rank %d of %d: each must be positive and rank < world",
                            o->batch, o->seq_len, o->rank, o->world);
    l->dataset = d;
    l->split = split;
    l->opt = *o;
    l->state.seed = o->seed;
    if (d->kind == CT_SHARD_PROMPTS)
        return ct_error_set("%s: a prompts dataset holds prompts to answer, not training rows (ctrain grpo reads it; "
                            "pretrain, sft and dpo need a text, sft or dpo dataset)", d->dir);
    int rc = d->kind == CT_SHARD_TEXT ? open_text(l) : ct_loader_open_examples(l);
    if (rc != 0) ct_loader_close(l);
    return rc;
}

void ct_loader_close(CtLoader *l) {
    join_ahead(l);
    free_group(l->current);
    free_group(l->ahead);
    ct_free(l->block_order);
    ct_free(l->group_start);
    ct_loader_close_examples(l);
    free_batch(&l->batch);
    memset(l, 0, sizeof *l);
}

int ct_loader_next(CtLoader *l, const CtLoaderBatch **batch) {
    if (l->dataset->kind != CT_SHARD_TEXT && l->planned_epoch != l->state.epoch + 1 &&
        ct_loader_plan_examples(l, l->state.epoch) != 0)
        return -1;
    if (l->state.step >= l->steps_per_epoch) {
        l->state.epoch++;
        l->state.step = 0;
        if (l->dataset->kind != CT_SHARD_TEXT && ct_loader_plan_examples(l, l->state.epoch) != 0) return -1;
    }
    l->batch.n_loss_tokens = 0;
    int rc = l->dataset->kind == CT_SHARD_TEXT ? next_text(l) : ct_loader_next_examples(l);
    if (rc != 0) return -1;
    l->state.step++;
    *batch = &l->batch;
    return 0;
}

CtLoaderState ct_loader_state(const CtLoader *l) { return l->state; }

int ct_loader_restore(CtLoader *l, const CtLoaderState *state) {
    join_ahead(l);
    if (l->current) l->current->valid = 0;
    if (l->ahead) l->ahead->valid = 0;
    l->opt.seed = state->seed;
    l->state = *state;
    l->planned_epoch = 0;
    if (l->dataset->kind != CT_SHARD_TEXT && ct_loader_plan_examples(l, state->epoch) != 0) return -1;
    if (state->step > l->steps_per_epoch)
        return ct_error_set("loader: saved position (epoch %llu, step %llu) is past the end of an epoch of %llu steps: "
                            "was the data or the batch size changed?",
                            (unsigned long long)state->epoch, (unsigned long long)state->step,
                            (unsigned long long)l->steps_per_epoch);
    return 0;
}
