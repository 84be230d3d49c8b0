// Faults in the data (issue 20): a flipped byte or a truncation in a shard of either split, a
// damaged manifest, and input pairs and messages that would be trained on wrongly. Each case
// ends in one line naming the file, the place and the problem and a non-zero exit before any
// training step, or in a counted skip; never in a NaN loss or a silently wrong dataset.
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "core/checksum.h"
#include "core/error.h"
#include "data/shard/dataset.h"
#include "data/shard/shard.h"
#include "tests/test.h"
#include "tests/train_fixture.h"

static const char *RUN_CONFIG =
    "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 1, \"d_model\": 32, \"n_head\": 2, \"n_kv_head\": 1,"
    " \"d_ff\": 64, \"max_seq_len\": 32},"
    " \"train\": {\"batch_size\": 4, \"seq_len\": 32, \"max_steps\": 2, \"eval_every\": 1, \"eval_batches\": 2,"
    " \"save_every\": 1, \"n_samples\": 0},"
    " \"optim\": {\"lr\": 3e-3, \"warmup_steps\": 1}}";

// ---- helpers ----

// Runs `ctrain ARGS` in the test's folder, stdout and stderr together.
static int ctrain(const char *args, char **out) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", ct_test_tmpdir(), ct_test_bin(), args);
    return ct_test_run(cmd, out);
}

static int shell_in_tmp(const char *script) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && %s", ct_test_tmpdir(), script);
    return system(cmd);
}

static int write_whole(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const unsigned char *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }
static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

// Flips one bit in the middle of a shard's token data (its zstd chunks lie between the 128-byte
// header and the index). Returns that byte's offset, or 0 when the file cannot be changed.
static size_t flip_token_byte(const char *name) {
    const char *path = ct_test_path(name);
    size_t size;
    unsigned char *b = (unsigned char *)ct_test_read(path, &size);
    if (!b || size < CT_SHARD_HEADER_BYTES + 16) return 0;
    size_t at = (CT_SHARD_HEADER_BYTES + (size_t)get_u64(b + 40)) / 2;
    b[at] ^= 0x10;
    int rc = write_whole(path, b, size);
    free(b);
    return rc == 0 ? at : 0;
}

static int truncate_by(const char *name, long bytes) {
    const char *path = ct_test_path(name);
    size_t size;
    char *b = ct_test_read(path, &size);
    if (!b || (size_t)bytes >= size) return -1;
    int rc = truncate(path, (off_t)(size - (size_t)bytes));
    free(b);
    return rc;
}

// The stories fixture's dataset in data/ and the run config; 0 or -1 after a recorded failure.
static int prepare_stories(void) {
    if (train_fixture_stories(300) != 0) return -1;
    ct_test_write("run.json", RUN_CONFIG);
    return 0;
}

// Checks what every damaged-data run must give: exit 1, the one-line error naming the file and
// the problem, nothing trained (no step, no loss) and no checkpoint.
static void check_stopped_before_training(int rc, const char *out, const char *file_and_place, const char *problem,
                                          const char *run_dir) {
    CHECK_MSG(rc == 1, "exit %d, expected 1: %s", rc, out);
    CHECK_MSG(!strstr(out, "val loss") && !strstr(out, "step      1"), "trained or evaluated on damaged data: %s", out);
    CHECK_CONTAINS(out, file_and_place);
    CHECK_CONTAINS(out, problem);
    const char *line = strstr(out, file_and_place);
    while (line > out && line[-1] != '\n') line--;
    CHECK_MSG(strncmp(line, "ctrain: ", 8) == 0, "the error is not one 'ctrain: ' line: %s", out);
    char ckpt[1200];
    snprintf(ckpt, sizeof ckpt, "%s/%s/ckpt-step00000001.h5", ct_test_tmpdir(), run_dir);
    CHECK_MSG(access(ckpt, F_OK) != 0, "%s was written", ckpt);
}

// ---- shards: training, eval, --info --verify ----

TEST(faults, a_flipped_byte_in_the_validation_split_stops_pretrain_before_any_step) {
    if (prepare_stories() != 0) return;
    CHECK(flip_token_byte("data/val-00000.ctshard") > 0);
    char *out;
    int rc = ctrain("pretrain run.json --data.path=data --run.out_dir=run", &out);
    // Before the fix: exit 0 with "val loss nan" at every evaluation.
    check_stopped_before_training(rc, out, "data/val-00000.ctshard: chunk 0 (bytes 128-",
                                  "(the file is corrupt; shard the data again)", "run");
    free(out);
}

TEST(faults, a_flipped_byte_in_the_train_split_stops_pretrain_before_any_step) {
    if (prepare_stories() != 0) return;
    CHECK(flip_token_byte("data/train-00000.ctshard") > 0);
    char *out;
    int rc = ctrain("pretrain run.json --data.path=data --run.out_dir=run", &out);
    // Before the fix: the error came only when the loader reached the chunk (here after the step-0 evaluation).
    check_stopped_before_training(rc, out, "data/train-00000.ctshard: chunk 0 (bytes 128-", "the file is corrupt", "run");
    free(out);
}

TEST(faults, a_truncated_shard_stops_pretrain_naming_its_size) {
    if (prepare_stories() != 0) return;
    CHECK_EQ_INT(truncate_by("data/val-00000.ctshard", 100), 0);
    char *out;
    int rc = ctrain("pretrain run.json --data.path=data --run.out_dir=run", &out);
    check_stopped_before_training(rc, out, "data/val-00000.ctshard: truncated: ", "but the index ends at byte", "run");
    free(out);
}

TEST(faults, eval_refuses_a_damaged_split_before_its_first_window) {
    if (prepare_stories() != 0) return;
    char *out;
    CHECK_EQ_INT(ctrain("pretrain run.json --data.path=data --run.out_dir=run", &out), 0);
    free(out);
    CHECK_EQ_INT(shell_in_tmp("cp -r data bad && cp -r data short"), 0);
    CHECK(flip_token_byte("bad/val-00000.ctshard") > 0);
    int rc = ctrain("eval --checkpoint run/ckpt-step00000002.h5 --data bad --threads 1", &out);
    CHECK_MSG(rc == 1, "exit %d: %s", rc, out);
    // Before the fix the damage was found part-way through the pass, after its header line.
    CHECK_MSG(!strstr(out, "windows of"), "eval started on damaged data: %s", out);
    CHECK_CONTAINS(out, "ctrain: bad/val-00000.ctshard: chunk 0 (bytes 128-");
    free(out);
    CHECK_EQ_INT(truncate_by("short/train-00000.ctshard", 1), 0);
    rc = ctrain("eval --checkpoint run/ckpt-step00000002.h5 --data short --split train --threads 1", &out);
    CHECK_MSG(rc == 1, "exit %d: %s", rc, out);
    CHECK_CONTAINS(out, "ctrain: short/train-00000.ctshard: truncated: ");
    free(out);
}

TEST(faults, shard_info_verify_reads_every_chunk_of_both_splits) {
    if (prepare_stories() != 0) return;
    char *out;
    int rc = ctrain("shard --info data --verify", &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    CHECK_CONTAINS(out, "verified train 1 chunk in 1 shard");
    CHECK_CONTAINS(out, "verified val   1 chunk in 1 shard");
    free(out);
    const char *split[2] = {"train", "val"};
    for (int s = 0; s < 2; s++) {
        char name[64], expect[128];
        snprintf(name, sizeof name, "bad/%s-00000.ctshard", split[s]);
        CHECK_EQ_INT(shell_in_tmp("rm -rf bad && cp -r data bad"), 0);
        CHECK(flip_token_byte(name) > 0);
        // --info alone reads headers and indexes only: it describes the dataset.
        CHECK_EQ_INT(ctrain("shard --info bad", &out), 0);
        free(out);
        rc = ctrain("shard --info bad --verify", &out);
        CHECK_MSG(rc == 1, "%s: exit %d: %s", split[s], rc, out);
        snprintf(expect, sizeof expect, "ctrain: %s: chunk 0 (bytes 128-", name);
        CHECK_CONTAINS(out, expect);
        CHECK_CONTAINS(out, "(the file is corrupt; shard the data again)");
        free(out);
    }
    CHECK_EQ_INT(shell_in_tmp("rm -rf bad && cp -r data bad"), 0);
    CHECK_EQ_INT(truncate_by("bad/val-00000.ctshard", 10), 0);
    CHECK_EQ_INT(ctrain("shard --info bad --verify", &out), 1);
    CHECK_CONTAINS(out, "ctrain: bad/val-00000.ctshard: truncated: ");
    free(out);
    CHECK_EQ_INT(ctrain("shard --verify", &out), 2);
    CHECK_CONTAINS(out, "--verify goes with --info DIR");
    free(out);
}

// ---- the manifest ----

// Rewrites DIR/dataset.json through fn.
static int edit_manifest(const char *dir, void (*fn)(cJSON *root)) {
    char rel[256];
    snprintf(rel, sizeof rel, "%s/dataset.json", dir);
    const char *path = ct_test_path(rel);
    char *text = ct_test_read(path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!root) return -1;
    fn(root);
    char *json = cJSON_Print(root);
    int rc = write_whole(path, json, strlen(json));
    free(json);
    cJSON_Delete(root);
    return rc;
}

static void eot_past_the_vocabulary(cJSON *root) {
    double vocab = cJSON_GetObjectItem(root, "vocab_size")->valuedouble;
    cJSON_ReplaceItemInObject(root, "eot_token", cJSON_CreateNumber(vocab + 7000));
}

TEST(faults, a_manifest_end_of_text_outside_the_vocabulary_is_refused) {
    if (prepare_stories() != 0) return;
    CHECK_EQ_INT(edit_manifest("data", eot_past_the_vocabulary), 0);
    char *out;
    // Before the fix: accepted; training prompted its samples with an id past the embedding.
    int rc = ctrain("shard --info data", &out);
    CHECK_MSG(rc == 1, "exit %d: %s", rc, out);
    CHECK_CONTAINS(out, "data/dataset.json: 'eot_token' ");
    CHECK_CONTAINS(out, "is not -1 or a token id below the vocabulary size");
    free(out);
    rc = ctrain("pretrain run.json --data.path=data --run.out_dir=run", &out);
    check_stopped_before_training(rc, out, "data/dataset.json: 'eot_token' ", "below the vocabulary size", "run");
    free(out);
}

static void swap_first_two_train_shards(cJSON *root) {
    cJSON *shards = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "splits"), "train"), "shards");
    cJSON *a = cJSON_GetArrayItem(shards, 0), *b = cJSON_GetArrayItem(shards, 1), *t = a->child;
    a->child = b->child;  // the two entries trade places: file, tokens, documents, bytes
    b->child = t;
}

TEST(faults, shards_listed_out_of_their_order_are_refused) {
    if (train_fixture_stories(300) != 0) return;
    char *out;
    CHECK_EQ_INT(ctrain("shard --tokenizer tok.json --input stories.txt --split paragraphs --shard-tokens 4000 --out many",
                        &out), 0);
    free(out);
    CHECK_EQ_INT(ctrain("shard --info many", &out), 0);
    CHECK_CONTAINS(out, " shards ");  // the train split has several
    free(out);
    // Each entry keeps its file and counts, so only the order of the token stream changes.
    CHECK_EQ_INT(edit_manifest("many", swap_first_two_train_shards), 0);
    int rc = ctrain("shard --info many", &out);
    CHECK_MSG(rc == 1, "exit %d (before the fix: accepted, the stream reordered): %s", rc, out);
    CHECK_CONTAINS(out, "many/train-00001.ctshard: is shard 1 of its split by its header, but many/dataset.json lists "
                        "it as shard 0 of 'train'");
    free(out);
}

// ---- sft loss masks ----

// Rewrites the one chunk of an sft shard with fn applied to its raw bytes (tokens, then mask),
// recompressed with its checksum and the index and header CRCs redone, so only fn's change is
// wrong in the file. 0, or -1.
static int rewrite_chunk(const char *path, void (*fn)(unsigned char *raw, uint32_t n)) {
    size_t size;
    unsigned char *b = (unsigned char *)ct_test_read(path, &size);
    if (!b || get_u32(b + 20) != 1) return -1;
    uint64_t index_offset = get_u64(b + 40), index_size = get_u64(b + 48);
    unsigned char *index = b + index_offset;
    uint32_t chunk_size = get_u32(index + 8), n = get_u32(index + 12), tb = get_u32(b + 16);
    size_t raw_size = (size_t)n * tb + n;
    unsigned char *raw = malloc(raw_size), *frame = malloc(ZSTD_compressBound(raw_size));
    size_t got = ZSTD_decompress(raw, raw_size, b + CT_SHARD_HEADER_BYTES, chunk_size);
    int rc = -1;
    size_t frame_size = 0;
    if (got == raw_size) {
        fn(raw, n);
        ZSTD_CCtx *c = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
        frame_size = ZSTD_compress2(c, frame, ZSTD_compressBound(raw_size), raw, raw_size);
        ZSTD_freeCCtx(c);
    }
    if (got == raw_size && !ZSTD_isError(frame_size)) {
        size_t out_size = CT_SHARD_HEADER_BYTES + frame_size + index_size;
        unsigned char *o = malloc(out_size);
        memcpy(o, b, CT_SHARD_HEADER_BYTES);
        memcpy(o + CT_SHARD_HEADER_BYTES, frame, frame_size);
        unsigned char *oi = o + CT_SHARD_HEADER_BYTES + frame_size;
        memcpy(oi, index, index_size);
        put_u32(oi + 8, (uint32_t)frame_size);
        put_u32(oi + index_size - 4, ct_crc32(oi, index_size - 4));
        put_u64(o + 40, CT_SHARD_HEADER_BYTES + frame_size);
        put_u32(o + 124, ct_crc32(o, 124));
        rc = write_whole(path, o, out_size);
        free(o);
    }
    free(raw);
    free(frame);
    free(b);
    return rc;
}

static void keep(unsigned char *raw, uint32_t n) { (void)raw, (void)n; }
static void mask_byte_two(unsigned char *raw, uint32_t n) { raw[(size_t)n * 2 + 3] = 2; }

static const char *read_all(const char *path) {
    CtShard s;
    if (ct_shard_open(&s, path) != 0) return ct_error_message();
    int32_t tokens[64];
    uint8_t mask[64];
    void *dctx = ct_shard_dctx_new();
    int rc = ct_shard_read_range(&s, 0, s.n_tokens, dctx, tokens, mask);
    ct_shard_dctx_free(dctx);
    ct_shard_close(&s);
    return rc != 0 ? ct_error_message() : "";
}

TEST(faults, an_sft_loss_mask_byte_other_than_0_or_1_is_refused) {
    const char *path = ct_test_path("sft.ctshard");
    CtShardSpec spec = {CT_SHARD_SFT, 2, 1000, 0x1234, 64, 3, 0};
    CtShardWriter w;
    CHECK_EQ_INT(ct_shard_writer_open(&w, path, &spec, 0), 0);
    uint32_t t[12];
    uint8_t m[12];
    for (int i = 0; i < 12; i++) t[i] = (uint32_t)(i * 37 % 1000), m[i] = i >= 6;
    CHECK_EQ_INT(ct_shard_writer_begin_document(&w), 0);
    CHECK_EQ_INT(ct_shard_writer_append(&w, t, m, 12), 0);
    CHECK_EQ_INT(ct_shard_writer_close(&w, NULL), 0);
    CHECK_EQ_INT(rewrite_chunk(path, keep), 0);  // the rewrite alone leaves a good shard
    CHECK_STR_EQ(read_all(path), "");
    CHECK_EQ_INT(rewrite_chunk(path, mask_byte_two), 0);
    // Before the fix: read as it was, a value the writer never makes (a 0 with bit 1 flipped: the
    // loss counts any nonzero mask, so a prompt token became a target).
    CHECK_CONTAINS(read_all(path), "sft.ctshard: chunk 0 (bytes 128-");
    CHECK_CONTAINS(read_all(path), "loss-mask byte 2 at position 3 is neither 0 nor 1 (the file is corrupt");
}

// ---- dpo pairs and sft messages ----

static const char *PAIRS =
    "{\"prompt\": \"Q: 1+1?\\n\", \"chosen\": \"2\", \"rejected\": \"3\"}\n"
    "{\"prompt\": \"Q: 2+2?\\n\", \"chosen\": \"4\", \"rejected\": \"4\"}\n"
    "{\"prompt\": \"Q: 3+3?\\n\", \"chosen\": \"\", \"rejected\": \"5\"}\n"
    "{\"prompt\": \"Q: 4+4?\\n\", \"chosen\": \"8\", \"rejected\": \"\"}\n"
    "{\"prompt\": \"Q: 5+5?\\n\", \"chosen\": \"10\", \"rejected\": \"10<|endoftext|>\"}\n"
    "{\"prompt\": \"Q: 6+6?\\n\", \"chosen\": \"12\", \"rejected\": \"11\"}\n";

// The gpt2 tokenizer's folder, or NULL (the test skips).
static const char *gpt2(void) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/tokenizers/gpt2", ct_test_shared_data());
    return path;
}

TEST(faults, dpo_pairs_that_cannot_teach_a_preference_are_skipped_and_counted) {
    ct_test_write("pairs.jsonl", PAIRS);
    char args[2048], *out;
    snprintf(args, sizeof args, "shard --tokenizer '%s' --input pairs.jsonl --format dpo --val-fraction 0 --out dpo",
             gpt2());
    int rc = ctrain(args, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    CHECK_CONTAINS(out, "warning: shard: skipped 4 dpo pairs that cannot teach a preference (chosen equal to rejected, "
                        "or an empty completion); the first at pairs.jsonl:2: chosen equals rejected");
    free(out);
    CtDataset d;
    CHECK_MSG(ct_dataset_open(&d, ct_test_path("dpo")) == 0, "%s", ct_error_message());
    const CtDatasetSplit *train = &d.split[CT_SPLIT_TRAIN];
    CHECK_EQ_INT(train->n_documents, 2);  // before the fix: all 6
    const CtShard *s = &train->shards[0];
    int32_t tokens[256];
    void *dctx = ct_shard_dctx_new();
    CHECK_EQ_INT(ct_dataset_read_range(&d, CT_SPLIT_TRAIN, 0, train->n_tokens, dctx, tokens, NULL), 0);
    ct_shard_dctx_free(dctx);
    for (uint64_t e = 0; e < s->n_docs; e++) {  // the pairs kept differ in their completions
        const uint32_t *len = s->dpo_lengths + 3 * e;
        const int32_t *chosen = tokens + s->doc_starts[e] + len[0], *rejected = chosen + len[1];
        CHECK(len[1] > 0 && len[2] > 0);
        CHECK(len[1] != len[2] || memcmp(chosen, rejected, sizeof(int32_t) * len[1]) != 0);
    }
    ct_dataset_close(&d);
    char *manifest = ct_test_read(ct_test_path("dpo/dataset.json"), NULL);
    CHECK(manifest && strstr(manifest, "\"skipped_pairs\":\t4"));
    free(manifest);
}

// A dpo dataset with margins (format version 3) whose margins are damaged: a flipped byte in the
// train shard's margins, or the shard cut inside them, stops `ctrain reward` before any step with
// one line naming the shard; the same through `ctrain shard --info --verify`.
TEST(faults, a_damaged_or_truncated_margin_stops_reward_before_any_step) {
    char text[4096];
    size_t at = 0;
    for (int i = 0; i < 24; i++)
        at += (size_t)snprintf(text + at, sizeof text - at,
                               "{\"prompt\": \"Q: %d+%d?\\n\", \"chosen\": \"%d\", \"rejected\": \"%d\", \"margin\": %g}\n", i, i,
                               2 * i, 2 * i + 1, 0.25 * i);
    ct_test_write("pairs.jsonl", text);
    ct_test_write("run.json", RUN_CONFIG);
    char args[2048], *out;
    snprintf(args, sizeof args, "shard --tokenizer '%s' --input pairs.jsonl --format dpo --val-fraction 0.25 --out dpo",
             gpt2());
    int rc = ctrain(args, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    free(out);
    const char *path = ct_test_path("dpo/train-00000.ctshard");
    size_t size;
    unsigned char *good = (unsigned char *)ct_test_read(path, &size);
    CHECK(good && size > CT_SHARD_HEADER_BYTES && get_u32(good + 8) == 3 && get_u32(good + 72) == 1);
    const uint64_t docs = get_u64(good + 32), index_end = get_u64(good + 40) + get_u64(good + 48);
    CHECK(index_end == size && docs > 0);
    const size_t margins_at = size - 4 - 8 * (size_t)docs;  // the last part of the index before its CRC
    const char *problems[2] = {"dpo/train-00000.ctshard: index checksum mismatch (the file is corrupt)",
                               "dpo/train-00000.ctshard: truncated:"};
    for (int k = 0; k < 2; k++) {
        unsigned char *bad = malloc(size);
        memcpy(bad, good, size);
        if (k == 0) bad[margins_at + 8 * (docs / 2) + 6] ^= 0x20;  // an exponent bit of a margin
        CHECK(write_whole(path, bad, k == 0 ? size : margins_at + 8) == 0);
        free(bad);
        rc = ctrain("reward run.json --data.path=dpo --run.out_dir=run --run.threads=1", &out);
        check_stopped_before_training(rc, out, "dpo/train-00000.ctshard: ", problems[k] + strlen("dpo/train-00000.ctshard: "),
                                      "run");
        free(out);
        rc = ctrain("shard --info dpo --verify", &out);
        CHECK_MSG(rc == 1 && strstr(out, problems[k]), "exit %d: %s", rc, out);
        free(out);
    }
    CHECK(write_whole(path, good, size) == 0);  // mended: it trains
    rc = ctrain("reward run.json --data.path=dpo --run.out_dir=run --run.threads=1", &out);
    CHECK_MSG(rc == 0 && strstr(out, "reward: the pairs carry margins"), "exit %d: %s", rc, out);
    free(out);
    free(good);
}

TEST(faults, dpo_strict_refuses_the_first_pair_that_cannot_teach_a_preference) {
    ct_test_write("pairs.jsonl", PAIRS);
    ct_test_write("empty.jsonl",
                  "{\"prompt\": \"Q: 6+6?\\n\", \"chosen\": \"12\", \"rejected\": \"11\"}\n"
                  "{\"prompt\": [{\"role\": \"user\", \"content\": \"Q: 3+3?\"}], \"chosen\": [{\"role\": \"assistant\", "
                  "\"content\": \"\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"5\"}]}\n");
    char args[2048], *out;
    snprintf(args, sizeof args, "shard --tokenizer '%s' --input pairs.jsonl --format dpo --strict --out dpo", gpt2());
    int rc = ctrain(args, &out);
    CHECK_MSG(rc == 1, "exit %d: %s", rc, out);
    CHECK_CONTAINS(out, "ctrain: pairs.jsonl:2: chosen equals rejected: the pair cannot teach a preference (--strict");
    CHECK(access(ct_test_path("dpo/dataset.json"), F_OK) != 0);
    free(out);
    snprintf(args, sizeof args, "shard --tokenizer '%s' --input empty.jsonl --format dpo --strict --out dpo", gpt2());
    rc = ctrain(args, &out);
    CHECK_MSG(rc == 1, "exit %d: %s", rc, out);
    CHECK_CONTAINS(out, "ctrain: empty.jsonl:2: empty chosen completion: the pair cannot teach a preference");
    free(out);
}

TEST(faults, a_message_with_an_unknown_role_is_refused_by_name) {
    ct_test_write("sft.jsonl",
                  "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": "
                  "\"hello\"}]}\n"
                  "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assitant\", \"content\": "
                  "\"hello\"}, {\"role\": \"assistant\", \"content\": \"bye\"}]}\n");
    ct_test_write("pairs.jsonl",
                  "{\"prompt\": [{\"role\": \"User\", \"content\": \"Q: 3+3?\"}], \"chosen\": [{\"role\": "
                  "\"assistant\", \"content\": \"6\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"5\"}]}\n");
    char args[2048], *out;
    snprintf(args, sizeof args, "shard --tokenizer '%s' --input sft.jsonl --format sft --out sft", gpt2());
    int rc = ctrain(args, &out);
    // Before the fix: accepted; the misspelled turn was rendered as an untrained one and never learned.
    CHECK_MSG(rc == 1, "exit %d: %s", rc, out);
    CHECK_CONTAINS(out, "ctrain: sft.jsonl:2: 'messages' message 2 has role 'assitant'; the roles allowed are system, "
                        "user, assistant, tool\n");
    free(out);
    snprintf(args, sizeof args, "shard --tokenizer '%s' --input pairs.jsonl --format dpo --out dpo", gpt2());
    rc = ctrain(args, &out);
    CHECK_MSG(rc == 1, "exit %d: %s", rc, out);
    CHECK_CONTAINS(out, "ctrain: pairs.jsonl:1: 'prompt' message 1 has role 'User'; the roles allowed are system, user, "
                        "assistant, tool\n");
    free(out);
}

static void flip_a_template_key(cJSON *root) {
    cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "source"), "chat_template");
    cJSON *turn_end = cJSON_GetObjectItem(t, "turn_end");
    if (turn_end) turn_end->string[7] ^= 0x20;  // one bit: "turn_end" -> "turn_enD"
}

TEST(faults, a_damaged_chat_template_in_the_manifest_is_refused) {
    ct_test_write("sft.jsonl", "{\"prompt\": \"hi\", \"response\": \"hello\"}\n{\"prompt\": \"a\", \"response\": \"b\"}\n");
    char args[2048], *out;
    snprintf(args, sizeof args, "shard --tokenizer '%s' --input sft.jsonl --format sft --out sft", gpt2());
    CHECK_EQ_INT(ctrain(args, &out), 0);
    free(out);
    CHECK_EQ_INT(edit_manifest("sft", flip_a_template_key), 0);
    // Before the fix: accepted, and sft stored the damaged template in its checkpoints for chat.
    int rc = ctrain("shard --info sft", &out);
    CHECK_MSG(rc == 1, "exit %d: %s", rc, out);
    CHECK_CONTAINS(out, "ctrain: sft/dataset.json: source.chat_template: unknown chat template key 'turn_enD'");
    free(out);
}

TEST(faults, a_flipped_byte_in_an_sft_validation_split_stops_sft_before_any_step) {
    char jsonl[8192];
    size_t len = 0;
    for (int i = 0; i < 60; i++)
        len += (size_t)snprintf(jsonl + len, sizeof jsonl - len,
                                "{\"prompt\": \"What is %d plus %d?\", \"response\": \"%d\"}\n", i, i + 1, 2 * i + 1);
    ct_test_write("qa.jsonl", jsonl);
    ct_test_write("run.json", RUN_CONFIG);
    char args[2048], *out;
    snprintf(args, sizeof args, "shard --tokenizer '%s' --input qa.jsonl --format sft --val-fraction 0.2 --out qa", gpt2());
    CHECK_EQ_INT(ctrain(args, &out), 0);
    free(out);
    CHECK(flip_token_byte("qa/val-00000.ctshard") > 0);
    int rc = ctrain("sft run.json --data.path=qa --run.out_dir=run", &out);
    // Before the fix: the damaged split became "no validation" (a warning) and sft trained on.
    check_stopped_before_training(rc, out, "qa/val-00000.ctshard: chunk 0 (bytes 128-", "the file is corrupt", "run");
    free(out);
}
