// Shard files and dataset folders: round trips, rollover, and every kind of damage.
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/shard/dataset.h"
#include "data/shard/shard.h"
#include "tests/test.h"

static CtShardSpec spec_of(CtShardKind kind, uint32_t token_bytes, uint32_t vocab, uint32_t chunk) {
    CtShardSpec s = {kind, token_bytes, vocab, 0x1234abcd5678ef90ull, chunk, 3, 0};
    return s;
}

static char *path_in_tmp(const char *name) {
    static char buf[4][1024];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", ct_test_tmpdir(), name);
    return p;
}

TEST(data, shard_round_trip_text) {
    for (int tb = 2; tb <= 4; tb += 2) {
        const char *path = path_in_tmp(tb == 2 ? "a.ctshard" : "b.ctshard");
        CtShardSpec spec = spec_of(CT_SHARD_TEXT, (uint32_t)tb, tb == 2 ? 50257 : 200000, 7);
        CtShardWriter w;
        CHECK_EQ_INT(ct_shard_writer_open(&w, path, &spec, 3), 0);
        uint32_t tokens[100];
        for (int i = 0; i < 100; i++) tokens[i] = (uint32_t)(i * 977) % spec.vocab_size;
        int doc_starts[] = {0, 10, 11, 50};
        for (int d = 0; d < 4; d++) {
            int end = d < 3 ? doc_starts[d + 1] : 100;
            CHECK_EQ_INT(ct_shard_writer_begin_document(&w), 0);
            CHECK_EQ_INT(ct_shard_writer_append(&w, tokens + doc_starts[d], NULL, (size_t)(end - doc_starts[d])), 0);
        }
        CHECK(access(path, F_OK) != 0);
        uint64_t bytes;
        CHECK_EQ_INT(ct_shard_writer_close(&w, &bytes), 0);
        CtShard s;
        CHECK_MSG(ct_shard_open(&s, path) == 0, "%s", ct_error_message());
        CHECK_EQ_INT(s.n_tokens, 100);
        CHECK_EQ_INT(s.n_docs, 4);
        CHECK_EQ_INT(s.n_chunks, 15);  // 100 tokens in chunks of 7
        CHECK_EQ_INT(s.token_bytes, tb);
        CHECK_EQ_INT(s.shard_index, 3);
        CHECK(s.tokenizer_hash == spec.tokenizer_hash);
        CHECK_EQ_INT(s.file_size, bytes);
        for (int d = 0; d < 4; d++) CHECK_EQ_INT(s.doc_starts[d], doc_starts[d]);
        int32_t back[100];
        void *dctx = ct_shard_dctx_new();
        CHECK_EQ_INT(ct_shard_read_range(&s, 0, 100, dctx, back, NULL), 0);
        for (int i = 0; i < 100; i++) CHECK_EQ_INT(back[i], tokens[i]);
        CHECK_EQ_INT(ct_shard_read_range(&s, 33, 20, dctx, back, NULL), 0);  // across chunk edges
        for (int i = 0; i < 20; i++) CHECK_EQ_INT(back[i], tokens[33 + i]);
        ct_shard_dctx_free(dctx);
        ct_shard_close(&s);
    }
}

TEST(data, shard_round_trip_sft_and_dpo) {
    const char *path = path_in_tmp("sft.ctshard");
    CtShardSpec spec = spec_of(CT_SHARD_SFT, 2, 1000, 5);
    CtShardWriter w;
    CHECK_EQ_INT(ct_shard_writer_open(&w, path, &spec, 0), 0);
    uint32_t tokens[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    uint8_t mask[12] = {0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 1};
    CHECK_EQ_INT(ct_shard_writer_begin_document(&w), 0);
    CHECK_EQ_INT(ct_shard_writer_append(&w, tokens, mask, 4), 0);
    CHECK_EQ_INT(ct_shard_writer_begin_document(&w), 0);
    CHECK_EQ_INT(ct_shard_writer_append(&w, tokens + 4, mask + 4, 8), 0);
    CHECK_EQ_INT(ct_shard_writer_close(&w, NULL), 0);
    CtShard s;
    CHECK_EQ_INT(ct_shard_open(&s, path), 0);
    int32_t back[12];
    uint8_t back_mask[12];
    void *dctx = ct_shard_dctx_new();
    CHECK_EQ_INT(ct_shard_read_range(&s, 0, 12, dctx, back, back_mask), 0);
    for (int i = 0; i < 12; i++) CHECK(back[i] == (int32_t)tokens[i] && back_mask[i] == mask[i]);
    ct_shard_close(&s);

    path = path_in_tmp("dpo.ctshard");
    spec = spec_of(CT_SHARD_DPO, 4, 70000, 4);
    CHECK_EQ_INT(ct_shard_writer_open(&w, path, &spec, 0), 0);
    uint32_t p[3] = {100, 101, 102}, c[2] = {200, 201}, r[4] = {300, 301, 302, 69999};
    CHECK_EQ_INT(ct_shard_writer_append_dpo(&w, p, 3, c, 2, r, 4, 0), 0);
    CHECK_EQ_INT(ct_shard_writer_append_dpo(&w, p, 1, c, 1, r, 1, 0), 0);
    CHECK_EQ_INT(ct_shard_writer_close(&w, NULL), 0);
    CHECK_EQ_INT(ct_shard_open(&s, path), 0);
    CHECK_EQ_INT(s.n_docs, 2);
    CHECK_EQ_INT(s.n_tokens, 12);
    CHECK_EQ_INT(s.dpo_lengths[0], 3);
    CHECK_EQ_INT(s.dpo_lengths[2], 4);
    CHECK_EQ_INT(s.doc_starts[1], 9);
    CHECK_EQ_INT(ct_shard_read_range(&s, 0, 12, dctx, back, NULL), 0);
    CHECK_EQ_INT(back[8], 69999);
    CHECK_EQ_INT(back[11], 300);
    ct_shard_close(&s);
    ct_shard_dctx_free(dctx);
}

TEST(data, shard_writer_refuses_tokens_outside_the_vocabulary) {
    const char *path = path_in_tmp("bad.ctshard");
    CtShardSpec spec = spec_of(CT_SHARD_TEXT, 2, 100, 8);
    CtShardWriter w;
    CHECK_EQ_INT(ct_shard_writer_open(&w, path, &spec, 0), 0);
    uint32_t t[2] = {5, 100};
    CHECK_EQ_INT(ct_shard_writer_append(&w, t, NULL, 2), -1);
    CHECK_CONTAINS(ct_error_message(), "token 100 is outside the vocabulary (100 tokens)");
    ct_shard_writer_abort(&w);
    CHECK(access(path, F_OK) != 0);
}

// Writes a small valid shard and returns its bytes.
static unsigned char *make_shard(const char *path, size_t *size) {
    CtShardSpec spec = spec_of(CT_SHARD_TEXT, 2, 1000, 16);
    CtShardWriter w;
    if (ct_shard_writer_open(&w, path, &spec, 0) != 0) return NULL;
    uint32_t t[100];
    for (int i = 0; i < 100; i++) t[i] = (uint32_t)(i * 7 % 1000);
    ct_shard_writer_begin_document(&w);
    ct_shard_writer_append(&w, t, NULL, 100);
    if (ct_shard_writer_close(&w, NULL) != 0) return NULL;
    return (unsigned char *)ct_test_read(path, size);
}

static void write_bytes(const char *path, const unsigned char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
}

// Opens the damaged file and reads every chunk; returns the first error ("" when none).
static const char *damage_error(const char *path) {
    CtShard s;
    if (ct_shard_open(&s, path) != 0) return ct_error_message();
    int32_t tokens[1000];
    void *dctx = ct_shard_dctx_new();
    int rc = ct_shard_read_range(&s, 0, s.n_tokens, dctx, tokens, NULL);
    ct_shard_dctx_free(dctx);
    ct_shard_close(&s);
    return rc != 0 ? ct_error_message() : "";
}

TEST(data, damaged_shards_give_one_line_errors) {
    const char *path = path_in_tmp("good.ctshard");
    size_t size;
    unsigned char *good = make_shard(path, &size);
    CHECK(good != NULL);
    CHECK_STR_EQ(damage_error(path), "");
    const char *bad = path_in_tmp("bad.ctshard");
    unsigned char *copy = malloc(size);

    write_bytes(bad, good, size - 3);  // truncated
    CHECK_CONTAINS(damage_error(bad), "bad.ctshard: truncated");
    write_bytes(bad, good, 50);
    CHECK_CONTAINS(damage_error(bad), "bad.ctshard: truncated: 50 bytes");

    memcpy(copy, good, size);
    copy[0] = 'X';  // magic
    write_bytes(bad, copy, size);
    CHECK_CONTAINS(damage_error(bad), "not a ctrain shard");

    memcpy(copy, good, size);
    copy[30] ^= 1;  // token count, caught by the header CRC
    write_bytes(bad, copy, size);
    CHECK_CONTAINS(damage_error(bad), "header checksum mismatch");

    memcpy(copy, good, size);
    copy[CT_SHARD_HEADER_BYTES + 20] ^= 0x40;  // inside the first zstd frame
    write_bytes(bad, copy, size);
    CHECK_CONTAINS(damage_error(bad), "bad.ctshard: chunk 0 (bytes 128-");

    memcpy(copy, good, size);
    copy[size - 10] ^= 1;  // the index
    write_bytes(bad, copy, size);
    CHECK_CONTAINS(damage_error(bad), "index checksum mismatch");

    memcpy(copy, good, size);
    write_bytes(bad, copy, size);
    FILE *f = fopen(bad, "ab");
    fputs("junk", f);
    fclose(f);
    CHECK_CONTAINS(damage_error(bad), "trailing data");

    CHECK_CONTAINS(damage_error(path_in_tmp("missing.ctshard")), "missing.ctshard: cannot open shard");
    free(copy);
    free(good);
}

// ---- dataset folders ----

static CtDatasetSpec dataset_spec(CtShardKind kind, uint64_t shard_tokens) {
    CtDatasetSpec d;
    d.shard = spec_of(kind, 4, 1u << 30, 5);
    d.eot_token = 0;
    d.shard_tokens = shard_tokens;
    return d;
}

TEST(data, dataset_documents_span_shards_and_read_back_as_one_stream) {
    const char *dir = path_in_tmp("ds");
    CtDatasetSpec spec = dataset_spec(CT_SHARD_TEXT, 13);
    CtDatasetWriter w;
    CHECK_EQ_INT(ct_dataset_writer_open(&w, dir, &spec), 0);
    uint32_t stream[200];
    for (uint32_t i = 0; i < 200; i++) stream[i] = i + 1;
    uint32_t lengths[] = {1, 30, 7, 13, 2, 50, 17}, at = 0, val_at = 150;
    for (int d = 0; d < 7; d++) {
        CHECK_EQ_INT(ct_dataset_write_document(&w, CT_SPLIT_TRAIN, stream + at, NULL, lengths[d]), 0);
        at += lengths[d];
    }
    CHECK_EQ_INT(ct_dataset_write_document(&w, CT_SPLIT_VAL, stream + val_at, NULL, 20), 0);
    char manifest[1100];
    snprintf(manifest, sizeof manifest, "%s/dataset.json", dir);
    CHECK(access(manifest, F_OK) != 0);  // not a dataset until finished
    CHECK_EQ_INT(ct_dataset_writer_finish(&w, "{\"inputs\": [\"x.txt\"]}"), 0);
    CtDataset d;
    CHECK_MSG(ct_dataset_open(&d, dir) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(d.split[CT_SPLIT_TRAIN].n_tokens, at);
    CHECK_EQ_INT(d.split[CT_SPLIT_TRAIN].n_shards, (at + 12) / 13);
    CHECK_EQ_INT(d.split[CT_SPLIT_TRAIN].n_documents, 7);
    CHECK_EQ_INT(d.split[CT_SPLIT_VAL].n_tokens, 20);
    int32_t *back = ct_alloc(sizeof(int32_t) * at);
    void *dctx = ct_shard_dctx_new();
    CHECK_EQ_INT(ct_dataset_read_range(&d, CT_SPLIT_TRAIN, 0, at, dctx, back, NULL), 0);
    for (uint32_t i = 0; i < at; i++) CHECK_EQ_INT(back[i], stream[i]);
    uint32_t start = 0;
    for (int k = 0; k < 7; k++) {
        CHECK_EQ_INT(d.split[CT_SPLIT_TRAIN].doc_starts[k], start);
        start += lengths[k];
    }
    ct_shard_dctx_free(dctx);
    ct_free(back);
    // The manifest keeps the tokenizer's identity (checked against a tokenizer in test_data_sharder.c).
    CHECK(d.tokenizer_hash == spec.shard.tokenizer_hash);
    ct_dataset_close(&d);
}

TEST(data, dataset_refuses_incomplete_and_mixed_folders) {
    const char *dir = path_in_tmp("ds");
    CtDatasetSpec spec = dataset_spec(CT_SHARD_TEXT, 10);
    CtDatasetWriter w;
    uint32_t t[25];
    for (int i = 0; i < 25; i++) t[i] = (uint32_t)i;
    CHECK_EQ_INT(ct_dataset_writer_open(&w, dir, &spec), 0);
    CHECK_EQ_INT(ct_dataset_write_document(&w, CT_SPLIT_TRAIN, t, NULL, 25), 0);
    // An interrupted run: shards were written, the manifest never was.
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, dir), -1);
    CHECK_CONTAINS(ct_error_message(), "no dataset here (dataset.json is missing");
    ct_dataset_writer_abort(&w);
    char shard0[1100];
    snprintf(shard0, sizeof shard0, "%s/train-00000.ctshard", dir);
    CHECK(access(shard0, F_OK) != 0);  // abort removes the shards it wrote

    CHECK_EQ_INT(ct_dataset_writer_open(&w, dir, &spec), 0);
    CHECK_EQ_INT(ct_dataset_write_document(&w, CT_SPLIT_TRAIN, t, NULL, 25), 0);
    CHECK_EQ_INT(ct_dataset_writer_finish(&w, NULL), 0);
    CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
    ct_dataset_close(&d);
    // A shard swapped for another one of the same kind: the counts no longer match.
    char shard1[1100];
    snprintf(shard1, sizeof shard1, "%s/train-00002.ctshard", dir);
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", shard1, shard0);
    CHECK_EQ_INT(system(cmd), 0);
    CHECK_EQ_INT(ct_dataset_open(&d, dir), -1);
    CHECK_CONTAINS(ct_error_message(), "train-00000.ctshard: holds 5 tokens and 0 documents, but");
    // Rewriting the folder removes the old manifest first.
    CHECK_EQ_INT(ct_dataset_writer_open(&w, dir, &spec), 0);
    char manifest[1100];
    snprintf(manifest, sizeof manifest, "%s/dataset.json", dir);
    CHECK(access(manifest, F_OK) != 0);
    ct_dataset_writer_abort(&w);
}
