// The loader: coverage of an epoch, rank slices, resume, document masks, sft and dpo rows.
// Tokens of the text datasets here are their own stream positions (+1), so every batch says
// exactly which window it came from.
#include "core/alloc.h"
#include "core/error.h"
#include "data/loader/loader.h"
#include "tests/test.h"

static const char *build_text_dataset(const char *name, uint32_t n_tokens, uint32_t doc_len, uint64_t shard_tokens) {
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", ct_test_tmpdir(), name);
    CtDatasetSpec spec = {{CT_SHARD_TEXT, 4, 1u << 30, 77, 50, 1, 0}, 0, shard_tokens};
    CtDatasetWriter w;
    if (ct_dataset_writer_open(&w, dir, &spec) != 0) return NULL;
    uint32_t *t = ct_alloc(sizeof(uint32_t) * n_tokens);
    for (uint32_t i = 0; i < n_tokens; i++) t[i] = i + 1;
    for (uint32_t at = 0; at < n_tokens; at += doc_len) {
        uint32_t n = n_tokens - at < doc_len ? n_tokens - at : doc_len;
        if (ct_dataset_write_document(&w, CT_SPLIT_TRAIN, t + at, NULL, n) != 0) return NULL;
    }
    ct_dataset_write_document(&w, CT_SPLIT_VAL, t, NULL, 100);
    ct_free(t);
    if (ct_dataset_writer_finish(&w, NULL) != 0) return NULL;
    return dir;
}

static CtLoaderOptions options(int B, int T, int rank, int world) {
    CtLoaderOptions o;
    ct_loader_default_options(&o);
    o.batch = B;
    o.seq_len = T;
    o.rank = rank;
    o.world = world;
    o.seed = 5;
    return o;
}

static int check_window_rows(const CtLoaderBatch *b) {
    for (int r = 0; r < b->rows; r++)
        for (int t = 0; t < b->T; t++) {
            size_t i = (size_t)r * b->T + t;
            if (b->targets[i] != b->tokens[i] + 1 || b->loss_mask[i] != 1) return 0;
            if (t > 0 && b->tokens[i] != b->tokens[i - 1] + 1) return 0;
        }
    return 1;
}

static void run_epoch_coverage(uint64_t block_tokens, uint64_t shuffle_tokens, int prefetch) {
    const char *dir = build_text_dataset("cover", 5000, 37, 777);
    CHECK(dir != NULL);
    CtDataset d;
    CHECK_MSG(ct_dataset_open(&d, dir) == 0, "%s", ct_error_message());
    const int B = 3, T = 16;
    CtLoaderOptions o = options(B, T, 0, 1);
    o.block_tokens = block_tokens;
    o.shuffle_tokens = shuffle_tokens;
    o.prefetch = prefetch;
    CtLoader l;
    CHECK_MSG(ct_loader_open(&l, &d, CT_SPLIT_TRAIN, &o) == 0, "%s", ct_error_message());
    uint64_t n_windows = (5000 - 1) / T;
    CHECK_EQ_INT(l.steps_per_epoch, n_windows / B);
    char *seen = ct_calloc(n_windows, 1);
    int in_order = 1;
    int64_t last = -1;
    for (uint64_t s = 0; s < l.steps_per_epoch; s++) {
        const CtLoaderBatch *b;
        CHECK_MSG(ct_loader_next(&l, &b) == 0, "%s", ct_error_message());
        CHECK(check_window_rows(b));
        for (int r = 0; r < B; r++) {
            int32_t first = b->tokens[(size_t)r * T];
            CHECK_EQ_INT((first - 1) % T, 0);
            uint64_t w = (uint64_t)(first - 1) / T;
            CHECK_MSG(!seen[w], "window %llu served twice in one epoch", (unsigned long long)w);
            seen[w] = 1;
            in_order &= (int64_t)w > last;
            last = (int64_t)w;
        }
    }
    uint64_t covered = 0;
    for (uint64_t w = 0; w < n_windows; w++) covered += seen[w];
    CHECK_EQ_INT(covered, l.steps_per_epoch * B);  // all but the remainder of the last batch
    CHECK(!in_order);                               // shuffled
    const CtLoaderBatch *b;
    CHECK_EQ_INT(ct_loader_next(&l, &b), 0);  // the next epoch starts by itself
    CHECK_EQ_INT(l.state.epoch, 1);
    ct_free(seen);
    ct_loader_close(&l);
    ct_dataset_close(&d);
}

TEST(data, loader_text_epoch_serves_each_window_once) { run_epoch_coverage(1 << 16, 1 << 26, 1); }

TEST(data, loader_text_epoch_with_many_groups_and_prefetch) {
    run_epoch_coverage(64, 400, 1);  // blocks of 4 windows, groups of 6 blocks
    if (ct_test_failed()) return;
    run_epoch_coverage(64, 400, 0);
}

static void collect_global(const char *dir, int per_rank_batch, int world, int steps, int32_t *out, int T) {
    // out: steps × world·per_rank_batch rows of first tokens, rank slices concatenated
    CtDataset d;
    ct_dataset_open(&d, dir);
    for (int r = 0; r < world; r++) {
        CtLoaderOptions o = options(per_rank_batch, T, r, world);
        o.shuffle_tokens = 512;  // several groups
        o.block_tokens = 64;
        CtLoader l;
        if (ct_loader_open(&l, &d, CT_SPLIT_TRAIN, &o) != 0) return;
        for (int s = 0; s < steps; s++) {
            const CtLoaderBatch *b;
            ct_loader_next(&l, &b);
            for (int i = 0; i < per_rank_batch; i++)
                out[(size_t)s * world * per_rank_batch + (size_t)r * per_rank_batch + i] = b->tokens[(size_t)i * T];
        }
        ct_loader_close(&l);
    }
    ct_dataset_close(&d);
}

TEST(data, loader_rank_slices_are_disjoint_and_cover_the_global_batch) {
    const char *dir = build_text_dataset("ranks", 6000, 50, 1000);
    CHECK(dir != NULL);
    const int T = 8, B = 2, steps = 30;
    for (int world = 1; world <= 3; world++) {
        int32_t *single = ct_calloc((size_t)steps * world * B, sizeof(int32_t));
        int32_t *split = ct_calloc((size_t)steps * world * B, sizeof(int32_t));
        collect_global(dir, world * B, 1, steps, single, T);  // one rank, batch world·B
        collect_global(dir, B, world, steps, split, T);       // world ranks, batch B each
        for (int s = 0; s < steps; s++) {
            for (int i = 0; i < world * B; i++) {
                size_t k = (size_t)s * world * B + (size_t)i;
                CHECK_MSG(single[k] == split[k] && single[k] > 0, "world %d step %d row %d differs", world, s, i);
                for (int j = 0; j < i; j++) CHECK(split[(size_t)s * world * B + (size_t)j] != split[k]);
            }
        }
        ct_free(single);
        ct_free(split);
    }
}

TEST(data, loader_resume_reproduces_the_batches) {
    const char *dir = build_text_dataset("resume", 3000, 41, 500);
    CHECK(dir != NULL);
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
    CtLoaderOptions o = options(4, 10, 0, 1);
    o.block_tokens = 50;
    o.shuffle_tokens = 300;
    o.doc_masking = 1;
    CtLoader a, b;
    CHECK_EQ_INT(ct_loader_open(&a, &d, CT_SPLIT_TRAIN, &o), 0);
    const CtLoaderBatch *batch;
    const int before = 100, after = 60;  // 74 steps per epoch: the resume point and the rest cross an epoch
    for (int s = 0; s < before; s++) CHECK_EQ_INT(ct_loader_next(&a, &batch), 0);
    CtLoaderState saved = ct_loader_state(&a);
    CHECK_EQ_INT(saved.epoch, 1);
    int32_t *expect = ct_alloc(sizeof(int32_t) * 40 * after * 3);
    for (int s = 0; s < after; s++) {
        CHECK_EQ_INT(ct_loader_next(&a, &batch), 0);
        memcpy(expect + (size_t)s * 120, batch->tokens, 40 * sizeof(int32_t));
        memcpy(expect + (size_t)s * 120 + 40, batch->positions, 40 * sizeof(int32_t));
        memcpy(expect + (size_t)s * 120 + 80, batch->doc_ids, 40 * sizeof(int32_t));
    }
    CHECK_EQ_INT(ct_loader_open(&b, &d, CT_SPLIT_TRAIN, &o), 0);
    CHECK_EQ_INT(ct_loader_restore(&b, &saved), 0);
    for (int s = 0; s < after; s++) {
        CHECK_EQ_INT(ct_loader_next(&b, &batch), 0);
        CHECK(memcmp(expect + (size_t)s * 120, batch->tokens, 40 * sizeof(int32_t)) == 0);
        CHECK(memcmp(expect + (size_t)s * 120 + 40, batch->positions, 40 * sizeof(int32_t)) == 0);
        CHECK(memcmp(expect + (size_t)s * 120 + 80, batch->doc_ids, 40 * sizeof(int32_t)) == 0);
    }
    CtLoaderState bad = saved;
    bad.step = 100000;
    CHECK_EQ_INT(ct_loader_restore(&b, &bad), -1);
    CHECK_CONTAINS(ct_error_message(), "past the end of an epoch");
    ct_free(expect);
    ct_loader_close(&a);
    ct_loader_close(&b);
    ct_dataset_close(&d);
}

TEST(data, loader_document_masking_restarts_positions) {
    const char *dir = build_text_dataset("docs", 2000, 7, 300);  // documents of 7 tokens
    CHECK(dir != NULL);
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
    CtLoaderOptions o = options(4, 20, 0, 1);
    o.doc_masking = 1;
    CtLoader l;
    CHECK_EQ_INT(ct_loader_open(&l, &d, CT_SPLIT_TRAIN, &o), 0);
    for (int s = 0; s < 10; s++) {
        const CtLoaderBatch *b;
        CHECK_EQ_INT(ct_loader_next(&l, &b), 0);
        for (int r = 0; r < 4; r++) {
            int32_t doc = 0;
            for (int t = 0; t < 20; t++) {
                size_t i = (size_t)r * 20 + t;
                int32_t stream_pos = b->tokens[i] - 1;  // documents start at multiples of 7
                if (t > 0 && stream_pos % 7 == 0) doc++;
                CHECK_EQ_INT(b->doc_ids[i], doc);
                int32_t expect_pos = doc == 0 ? t : stream_pos % 7;
                CHECK_EQ_INT(b->positions[i], expect_pos);
            }
        }
    }
    ct_loader_close(&l);
    ct_dataset_close(&d);
}

TEST(data, loader_refuses_too_little_data) {
    const char *dir = build_text_dataset("small", 200, 50, 1000);
    CHECK(dir != NULL);
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
    CtLoaderOptions o = options(4, 64, 0, 1);
    CtLoader l;
    CHECK_EQ_INT(ct_loader_open(&l, &d, CT_SPLIT_VAL, &o), -1);
    CHECK_CONTAINS(ct_error_message(), "split 'val' has 100 tokens, fewer than one global batch needs (4 rows x 64 + 1)");
    o.rank = 2;
    o.world = 2;
    CHECK_EQ_INT(ct_loader_open(&l, &d, CT_SPLIT_TRAIN, &o), -1);
    CHECK_CONTAINS(ct_error_message(), "rank < world");
    ct_dataset_close(&d);
}

// ---- sft ----

// Example e: a prompt of (e % 4) + 2 tokens (mask 0) and a response of (e % 3) + 1 tokens
// (mask 1); token values are 1000·e + index, so every cell of a batch can be checked.
static const char *build_sft_dataset(int n_examples) {
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/sft", ct_test_tmpdir());
    CtDatasetSpec spec = {{CT_SHARD_SFT, 4, 1u << 30, 1, 9, 1, 0}, 0, 40};
    CtDatasetWriter w;
    if (ct_dataset_writer_open(&w, dir, &spec) != 0) return NULL;
    for (int e = 0; e < n_examples; e++) {
        uint32_t t[16];
        uint8_t m[16];
        int np = e % 4 + 2, nr = e % 3 + 1;
        for (int i = 0; i < np + nr; i++) {
            t[i] = (uint32_t)(1000 * e + i);
            m[i] = i >= np;
        }
        if (ct_dataset_write_document(&w, e % 10 == 9 ? CT_SPLIT_VAL : CT_SPLIT_TRAIN, t, m, (size_t)(np + nr)) != 0)
            return NULL;
    }
    if (ct_dataset_writer_finish(&w, NULL) != 0) return NULL;
    return dir;
}

static void check_sft_rows(const CtLoaderBatch *b, int packing, int *examples_seen) {
    for (int r = 0; r < b->rows; r++) {
        int examples_in_row = 0;
        for (int t = 0; t < b->T; t++) {
            size_t i = (size_t)r * b->T + t;
            if (b->doc_ids[i] < 0) {  // padding
                CHECK(b->targets[i] == -1 && b->loss_mask[i] == 0);
                continue;
            }
            int e = b->tokens[i] / 1000, k = b->tokens[i] % 1000, np = e % 4 + 2;
            CHECK_EQ_INT(b->targets[i], b->tokens[i] + 1);
            CHECK_EQ_INT(b->loss_mask[i], k + 1 >= np);  // 1 exactly on response targets
            CHECK_EQ_INT(b->positions[i], k);
            if (k == 0) examples_in_row++, (*examples_seen)++;
        }
        if (!packing) CHECK_EQ_INT(examples_in_row, 1);
    }
}

TEST(data, loader_sft_masks_only_response_tokens_packed_or_not) {
    const char *dir = build_sft_dataset(60);
    CHECK(dir != NULL);
    CtDataset d;
    CHECK_MSG(ct_dataset_open(&d, dir) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(d.kind, CT_SHARD_SFT);
    for (int packing = 0; packing <= 1; packing++) {
        CtLoaderOptions o = options(2, 12, 0, 1);
        o.packing = packing;
        CtLoader l;
        CHECK_MSG(ct_loader_open(&l, &d, CT_SPLIT_TRAIN, &o) == 0, "%s", ct_error_message());
        CHECK_EQ_INT(l.truncated_examples, 0);
        int seen = 0;
        for (uint64_t s = 0; s < l.steps_per_epoch; s++) {
            const CtLoaderBatch *b;
            CHECK_EQ_INT(ct_loader_next(&l, &b), 0);
            check_sft_rows(b, packing, &seen);
            if (ct_test_failed()) return;
        }
        if (packing)
            CHECK(l.n_rows < 54 / 2);  // 54 examples of 3-8 tokens pack about two per row of 12
        else
            CHECK_EQ_INT(seen, 54);
        ct_loader_close(&l);
    }
    ct_dataset_close(&d);
}

TEST(data, loader_sft_truncates_long_examples_from_the_left_of_the_prompt) {
    const char *dir = build_sft_dataset(30);
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
    CtLoaderOptions o = options(1, 4, 0, 1);  // T=4: examples of up to 8 tokens
    o.packing = 0;
    o.shuffle = 0;
    CtLoader l;
    CHECK_EQ_INT(ct_loader_open(&l, &d, CT_SPLIT_TRAIN, &o), 0);
    CHECK(l.truncated_examples > 0);
    for (int s = 0; s < 27; s++) {
        const CtLoaderBatch *b;
        CHECK_EQ_INT(ct_loader_next(&l, &b), 0);
        int e = b->tokens[0] / 1000, np = e % 4 + 2, nr = e % 3 + 1, n = np + nr - 1;
        int cut = n > 4 ? n - 4 : 0;
        if (cut > np - 1) cut = np - 1;
        CHECK_EQ_INT(b->tokens[0] % 1000, cut);  // the row starts after the cut prompt tokens
        int responses = 0;
        for (int t = 0; t < 4; t++) responses += b->loss_mask[t];
        CHECK_EQ_INT(responses, nr < 4 ? nr : 4);  // the response survives whole when it fits
    }
    ct_loader_close(&l);
    ct_dataset_close(&d);
}

// ---- dpo ----

TEST(data, loader_dpo_rows_keep_prompt_and_completions_apart) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/dpo", ct_test_tmpdir());
    CtDatasetSpec spec = {{CT_SHARD_DPO, 4, 1u << 30, 1, 9, 1, 0}, 0, 50};
    CtDatasetWriter w;
    CHECK_EQ_INT(ct_dataset_writer_open(&w, dir, &spec), 0);
    for (uint32_t e = 0; e < 20; e++) {
        uint32_t p[5], c[4], r[3];
        uint32_t np = e % 5 + 1, nc = e % 4 + 1, nr = e % 3 + 1;
        for (uint32_t i = 0; i < 5; i++) p[i] = 10000 * e + i;
        for (uint32_t i = 0; i < 4; i++) c[i] = 10000 * e + 100 + i;
        for (uint32_t i = 0; i < 3; i++) r[i] = 10000 * e + 200 + i;
        CHECK_EQ_INT(ct_dataset_write_dpo(&w, CT_SPLIT_TRAIN, p, np, c, nc, r, nr, 0), 0);
    }
    CHECK_EQ_INT(ct_dataset_writer_finish(&w, NULL), 0);
    CtDataset d;
    CHECK_MSG(ct_dataset_open(&d, dir) == 0, "%s", ct_error_message());
    CtLoaderOptions o = options(2, 16, 0, 1);
    CtLoader l;
    CHECK_EQ_INT(ct_loader_open(&l, &d, CT_SPLIT_TRAIN, &o), 0);
    CHECK_EQ_INT(l.batch.rows, 4);
    for (uint64_t s = 0; s < l.steps_per_epoch; s++) {
        const CtLoaderBatch *b;
        CHECK_EQ_INT(ct_loader_next(&l, &b), 0);
        for (int pair = 0; pair < 2; pair++) {
            for (int which = 0; which < 2; which++) {
                const int32_t *tok = b->tokens + (size_t)(2 * pair + which) * 16;
                const int32_t *tgt = b->targets + (size_t)(2 * pair + which) * 16;
                const uint8_t *m = b->loss_mask + (size_t)(2 * pair + which) * 16;
                int e = tok[0] / 10000, np = e % 5 + 1, n_comp = which ? e % 3 + 1 : e % 4 + 1;
                for (int t = 0; t < 16; t++) {
                    if (t < np + n_comp - 1) {
                        int kind = tgt[t] % 10000 / 100;  // 0 prompt, 1 chosen, 2 rejected
                        CHECK_EQ_INT(tgt[t] / 10000, e);
                        CHECK_EQ_INT(m[t], kind != 0);  // loss only on completion targets
                        CHECK(kind == 0 || kind == 1 + which);
                        CHECK_EQ_INT(t < np, tok[t] % 10000 / 100 == 0);
                    } else {
                        CHECK(tgt[t] == -1 && m[t] == 0);
                    }
                }
            }
            // both rows of a pair share the prompt
            CHECK_EQ_INT(b->tokens[(size_t)(2 * pair) * 16], b->tokens[(size_t)(2 * pair + 1) * 16]);
        }
    }
    ct_loader_close(&l);
    ct_dataset_close(&d);
}
