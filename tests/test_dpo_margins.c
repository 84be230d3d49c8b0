// dpo pairs with a per-pair "margin" (TRL's RewardTrainer column): `ctrain shard --format dpo`
// keeps each pair's margin in the shard index (format version 3), the loader serves it with the
// pair's rows, datasets without margins stay version 1 and serve 0, and a bad, missing or damaged
// margin stops with one line naming the file and the place, leaving no dataset.
#include <math.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/checksum.h"
#include "core/error.h"
#include "data/loader/loader.h"
#include "data/shard/dataset.h"
#include "data/shard/shard_builder.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "tests/test.h"
#include "tests/tokenizer_fixture.h"

static CtShardJob dpo_job(const CtTokenizer *t) {
    CtShardJob j;
    memset(&j, 0, sizeof j);
    j.kind = CT_SHARD_DPO;
    j.tokenizer = t;
    j.eot = ID_ENDOFTEXT;
    j.tokenizer_hash = ct_tokenizer_fingerprint(t);
    j.seed = 1;
    j.threads = 2;
    j.shard_tokens = 1000000;
    j.chunk_tokens = 64;
    j.zstd_level = 3;
    return j;
}

// Shards `input` (a file in the test's folder) into out_name as `ctrain shard` does: the survey
// decides the template and the margins. 0, or -1 + error.
static int build(CtShardJob *job, const char *input, const char *out_name, char *out_dir, CtShardStats *stats) {
    snprintf(out_dir, 1024, "%s/%s", ct_test_tmpdir(), out_name);
    CtInputList list;
    const char *inputs[1] = {input};
    if (ct_input_list_collect(&list, inputs, 1) != 0) return -1;
    CtDpoSurvey survey;
    int rc = ct_shard_dpo_survey(&list, &survey);
    job->dpo_margins = survey.margins;
    CtShardStats local;
    if (rc == 0) rc = ct_shard_build(job, &list, out_dir, stats ? stats : &local, NULL);
    ct_input_list_free(&list);
    return rc;
}

// n plain pairs "p<i>" → " yes<i>" / " no<i>", with margin margins[i] when margins is not NULL.
static const char *write_pairs(const char *name, int n, const double *margins) {
    size_t cap = (size_t)n * 128 + 1, at = 0;
    char *text = ct_alloc(cap);
    for (int i = 0; i < n; i++) {
        at += (size_t)snprintf(text + at, cap - at, "{\"prompt\": \"p%d\", \"chosen\": \" yes%d\", \"rejected\": \" no%d\"", i,
                               i, i);
        if (margins) at += (size_t)snprintf(text + at, cap - at, ", \"margin\": %.17g", margins[i]);
        at += (size_t)snprintf(text + at, cap - at, "}\n");
    }
    const char *path = ct_test_write(name, text);
    ct_free(text);
    return path;
}

static int manifest_missing(const char *dir) {
    char manifest[1100];
    snprintf(manifest, sizeof manifest, "%s/dataset.json", dir);
    return access(manifest, F_OK) != 0;
}

enum { PAIRS = 24 };

static double margin_of(int i) { return i == 5 ? 0.1 : i % 3 == 0 ? 0 : (i - 11) * 0.375; }

TEST(dpo_margins, shard_keeps_each_pairs_margin_and_the_loader_serves_it_with_both_rows) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    double margins[PAIRS];
    for (int i = 0; i < PAIRS; i++) margins[i] = margin_of(i);
    const char *input = write_pairs("m.jsonl", PAIRS, margins);
    CtShardJob job = dpo_job(&t);
    job.shard_tokens = 60;  // several shards: the margins follow their pairs across them
    char dir[1024];
    CHECK_MSG(build(&job, input, "m", dir, NULL) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(job.dpo_margins, 1);
    char *manifest = ct_test_read(ct_test_path("m/dataset.json"), NULL);
    CHECK_CONTAINS(manifest, "\"version\":\t3");
    CHECK_CONTAINS(manifest, "\"margins\":\ttrue");
    free(manifest);
    CtDataset d;
    CHECK_MSG(ct_dataset_open(&d, dir) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(d.dpo_margins, 1);
    const CtDatasetSplit *train = &d.split[CT_SPLIT_TRAIN];
    CHECK_EQ_INT(train->n_documents, PAIRS);
    CHECK_MSG(train->n_shards >= 3, "%d shards", train->n_shards);
    int e = 0;
    for (int s = 0; s < train->n_shards; s++) {
        size_t size;
        unsigned char *b = (unsigned char *)ct_test_read(train->shards[s].path, &size);
        CHECK(b && size > 76);
        CHECK_EQ_INT(b[8], 3);   // format version
        CHECK_EQ_INT(b[72], 1);  // the margins flag
        free(b);
        for (uint64_t k = 0; k < train->shards[s].n_docs; k++, e++)
            CHECK_MSG(train->shards[s].margins[k] == margins[e], "pair %d: margin %.17g, written %.17g", e,
                      train->shards[s].margins[k], margins[e]);
    }
    // Shuffled, two ranks: every row carries the margin of its pair.
    for (int rank = 0; rank < 2; rank++) {
        CtLoaderOptions o;
        ct_loader_default_options(&o);
        o.batch = 3;
        o.seq_len = 16;
        o.rank = rank;
        o.world = 2;
        CtLoader l;
        CHECK_MSG(ct_loader_open(&l, &d, CT_SPLIT_TRAIN, &o) == 0, "%s", ct_error_message());
        int nonzero = 0;
        for (uint64_t step = 0; step < 2 * l.steps_per_epoch; step++) {
            const CtLoaderBatch *b;
            CHECK_EQ_INT(ct_loader_next(&l, &b), 0);
            for (int r = 0; r < b->rows; r++) {
                int64_t id = b->example_ids[r];
                CHECK(id >= 0 && id < PAIRS);
                CHECK_MSG(b->margins[r] == margins[id], "row %d (pair %lld): margin %g, want %g", r, (long long)id,
                          b->margins[r], margins[id]);
                nonzero += b->margins[r] != 0;
            }
        }
        CHECK(nonzero > 0);
        ct_loader_close(&l);
    }
    ct_dataset_close(&d);
    ct_tokenizer_free(&t);
}

TEST(dpo_margins, message_list_pairs_carry_their_margin_too) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    CtChatTemplate tmpl;
    CHECK_EQ_INT(ct_chat_template_load(&tmpl, "chatml"), 0);
    const char *input = ct_test_write(
        "chat.jsonl",
        "{\"prompt\": [{\"role\": \"user\", \"content\": \"a\"}], \"chosen\": [{\"role\": \"assistant\", \"content\": "
        "\"b\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"c\"}], \"margin\": 2.5}\n"
        "{\"prompt\": [{\"role\": \"user\", \"content\": \"d\"}], \"chosen\": [{\"role\": \"assistant\", \"content\": "
        "\"e\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"f\"}], \"margin\": -1}\n");
    CtShardJob job = dpo_job(&t);
    job.chat_template = &tmpl;
    char dir[1024];
    CHECK_MSG(build(&job, input, "chat", dir, NULL) == 0, "%s", ct_error_message());
    CtDataset d;
    CHECK_MSG(ct_dataset_open(&d, dir) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(d.dpo_margins, 1);
    CHECK_EQ_INT(d.split[CT_SPLIT_TRAIN].n_documents, 2);
    CHECK(d.split[CT_SPLIT_TRAIN].shards[0].margins[0] == 2.5 && d.split[CT_SPLIT_TRAIN].shards[0].margins[1] == -1);
    ct_dataset_close(&d);
    ct_chat_template_free(&tmpl);
    ct_tokenizer_free(&t);
}

// A dataset without margins is what ctrain wrote before margins existed: version 1, byte 72 zero,
// the index as long as it was (chunks, starts, lengths, CRC); it loads, and serves margin 0.
TEST(dpo_margins, pairs_without_margins_stay_version_1_and_serve_margin_0) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    const char *input = write_pairs("plain.jsonl", PAIRS, NULL);
    CtShardJob job = dpo_job(&t);
    char dir[1024];
    CHECK_MSG(build(&job, input, "plain", dir, NULL) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(job.dpo_margins, 0);
    char *manifest = ct_test_read(ct_test_path("plain/dataset.json"), NULL);
    CHECK_CONTAINS(manifest, "\"version\":\t1");
    CHECK_MSG(!strstr(manifest, "\"margins\":"), "%s", manifest);
    free(manifest);
    CtDataset d;
    CHECK_MSG(ct_dataset_open(&d, dir) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(d.dpo_margins, 0);
    const CtShard *sh = &d.split[CT_SPLIT_TRAIN].shards[0];
    CHECK(sh->margins == NULL);
    size_t size;
    unsigned char *b = (unsigned char *)ct_test_read(sh->path, &size);
    CHECK(b && size > 76);
    CHECK_EQ_INT(b[8], 1);
    CHECK_EQ_INT(b[72], 0);
    uint64_t index_size = 0;
    for (int i = 7; i >= 0; i--) index_size = index_size << 8 | b[48 + i];
    CHECK_EQ_INT(index_size, 16 * sh->n_chunks + 8 * sh->n_docs + 12 * sh->n_docs + 4);
    free(b);
    CtLoaderOptions o;
    ct_loader_default_options(&o);
    o.batch = 4;
    o.seq_len = 16;
    CtLoader l;
    CHECK_MSG(ct_loader_open(&l, &d, CT_SPLIT_TRAIN, &o) == 0, "%s", ct_error_message());
    const CtLoaderBatch *batch;
    CHECK_EQ_INT(ct_loader_next(&l, &batch), 0);
    for (int r = 0; r < batch->rows; r++) CHECK(batch->example_ids[r] >= 0 && batch->margins[r] == 0);
    ct_loader_close(&l);
    ct_dataset_close(&d);
    ct_tokenizer_free(&t);
}

TEST(dpo_margins, bad_or_missing_margins_stop_with_file_line_and_leave_no_dataset) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    const char *good = "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\", \"margin\": 1}\n";
    const char *plain = "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\"}\n";
    // {first lines, the bad line, the line the error names, the error}
    const char *cases[][4] = {
        {good, "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\", \"margin\": \"0.5\"}", "3",
         "'margin' must be a finite number, not \"0.5\""},
        {good, "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\", \"margin\": null}", "3",
         "'margin' must be a finite number, not null"},
        {good, "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\", \"margin\": 1e999}", "3",
         "'margin' must be a finite number, not infinite"},
        {good, "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\", \"margin\": [1]}", "3",
         "'margin' must be a finite number, not [1]"},
        {good, plain, "3", "no 'margin', but other pairs have one: give every pair a margin, or none"},
        // the first line without one is named, though the first margin comes after it
        {plain, good, "1", "no 'margin', but other pairs have one"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024], name[32], want[256], out_name[32], dir[1024];
        snprintf(text, sizeof text, "%s%s%s\n", cases[i][0], cases[i][0], cases[i][1]);
        snprintf(name, sizeof name, "bad%zu.jsonl", i);
        snprintf(out_name, sizeof out_name, "out%zu", i);
        const char *input = ct_test_write(name, text);
        CtShardJob job = dpo_job(&t);
        CHECK_MSG(build(&job, input, out_name, dir, NULL) == -1, "case %zu was accepted", i);
        snprintf(want, sizeof want, "%s:%s: %s", name, cases[i][2], cases[i][3]);
        CHECK_CONTAINS(ct_error_message(), want);
        CHECK_MSG(!strchr(ct_error_message(), '\n'), "a one-line error: %s", ct_error_message());
        CHECK_MSG(manifest_missing(dir), "case %zu left a dataset", i);
    }
    // --skip-bad skips and counts such lines, as any malformed line
    char text[1024], dir[1024];
    snprintf(text, sizeof text, "%s%s%s", good, plain, good);
    const char *input = ct_test_write("skip.jsonl", text);
    CtShardJob job = dpo_job(&t);
    job.skip_bad = 1;
    CtShardStats stats;
    CHECK_MSG(build(&job, input, "skip", dir, &stats) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(stats.skipped, 1);
    CHECK_EQ_INT(stats.documents[CT_SPLIT_TRAIN] + stats.documents[CT_SPLIT_VAL], 2);
    ct_tokenizer_free(&t);
}

// ---- damage ----

static void put_u32_at(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get_u64_at(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static void write_bytes(const char *path, const void *bytes, size_t size) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(bytes, 1, size, f);
        fclose(f);
    }
}

// A shard of three pairs with margins 0.5, -2 and 7; its bytes in *bytes (free), the index's place.
static char *margins_shard(const char *name, size_t *size, uint64_t *index_offset, uint64_t *index_size) {
    CtShardSpec spec = {CT_SHARD_DPO, 2, 1000, 0x1234, 64, 3, 1};
    const char *path = ct_test_path(name);
    CtShardWriter w;
    const uint32_t p[2] = {1, 2}, c[2] = {3, 4}, r[2] = {5, 6};
    const double margins[3] = {0.5, -2, 7};
    if (ct_shard_writer_open(&w, path, &spec, 0) != 0) return NULL;
    for (int i = 0; i < 3; i++)
        if (ct_shard_writer_append_dpo(&w, p, 2, c, 2, r, 1 + (uint32_t)i % 2, margins[i]) != 0) return NULL;
    if (ct_shard_writer_close(&w, NULL) != 0) return NULL;
    char *bytes = ct_test_read(path, size);
    *index_offset = get_u64_at((unsigned char *)bytes + 40);
    *index_size = get_u64_at((unsigned char *)bytes + 48);
    return bytes;
}

TEST(dpo_margins, damaged_truncated_or_mismatched_margins_are_refused_by_name) {
    size_t size;
    uint64_t at, n;
    char *good = margins_shard("s.ctshard", &size, &at, &n);
    CHECK_MSG(good, "%s", ct_error_message());
    const char *path = ct_test_path("s.ctshard");
    CtShard s;
    CHECK_MSG(ct_shard_open(&s, path) == 0, "%s", ct_error_message());
    CHECK(s.dpo_margins && s.margins[0] == 0.5 && s.margins[1] == -2 && s.margins[2] == 7);
    ct_shard_close(&s);
    // the index is longer by 8 bytes a pair than a version 1 dpo index
    CHECK_EQ_INT(n, 16 * 1 + 8 * 3 + 12 * 3 + 8 * 3 + 4);
    char *bad = ct_alloc(size);
    // 1. a flipped byte in a margin: the index checksum
    memcpy(bad, good, size);
    bad[at + n - 4 - 8 * 2 + 3] ^= 0x40;
    write_bytes(path, bad, size);
    CHECK_EQ_INT(ct_shard_open(&s, path), -1);
    CHECK_CONTAINS(ct_error_message(), "s.ctshard: index checksum mismatch");
    // 2. a margin that is NaN under a valid checksum (a crafted file): refused as not finite
    memcpy(bad, good, size);
    const unsigned char nan_bits[8] = {0, 0, 0, 0, 0, 0, 0xf8, 0x7f};
    memcpy(bad + at + n - 4 - 8, nan_bits, 8);
    put_u32_at((unsigned char *)bad + at + n - 4, ct_crc32(bad + at, n - 4));
    write_bytes(path, bad, size);
    CHECK_EQ_INT(ct_shard_open(&s, path), -1);
    CHECK_CONTAINS(ct_error_message(), "s.ctshard: dpo example 2 has margin nan, not a finite number (corrupt index)");
    // 3. truncated inside the margins
    write_bytes(path, good, size - 10);
    CHECK_EQ_INT(ct_shard_open(&s, path), -1);
    CHECK_CONTAINS(ct_error_message(), "s.ctshard: truncated");
    // 4. the margins flag in a version 1 header (its CRC made good): damaged, not misread
    memcpy(bad, good, size);
    put_u32_at((unsigned char *)bad + 8, 1);
    put_u32_at((unsigned char *)bad + 124, ct_crc32(bad, 124));
    write_bytes(path, bad, size);
    CHECK_EQ_INT(ct_shard_open(&s, path), -1);
    CHECK_CONTAINS(ct_error_message(), "s.ctshard: the header's dpo margins flag is 1 in a version 1 shard");
    // 5. a version this ctrain does not know
    put_u32_at((unsigned char *)bad + 8, 4);
    put_u32_at((unsigned char *)bad + 124, ct_crc32(bad, 124));
    write_bytes(path, bad, size);
    CHECK_EQ_INT(ct_shard_open(&s, path), -1);
    CHECK_CONTAINS(ct_error_message(), "shard format version 4; this ctrain reads versions 1 to 3");
    ct_free(bad);
    free(good);
}

// A manifest and its shards must agree on margins: shards of a dataset without them under a
// manifest that claims them (or the reverse) are refused, naming the shard.
TEST(dpo_margins, manifest_and_shards_that_disagree_on_margins_are_refused) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    double margins[PAIRS];
    for (int i = 0; i < PAIRS; i++) margins[i] = margin_of(i);
    CtShardJob job = dpo_job(&t);
    job.val_fraction = 0;
    char with[1024], without[1024];
    CHECK_MSG(build(&job, write_pairs("m.jsonl", PAIRS, margins), "with", with, NULL) == 0, "%s", ct_error_message());
    job = dpo_job(&t);
    job.val_fraction = 0;
    CHECK_MSG(build(&job, write_pairs("p.jsonl", PAIRS, NULL), "without", without, NULL) == 0, "%s", ct_error_message());
    // the manifest of the dataset with margins over the shard of the one without
    size_t size;
    char *shard = ct_test_read(ct_test_path("without/train-00000.ctshard"), &size);
    char *other = ct_test_read(ct_test_path("with/train-00000.ctshard"), NULL);
    CHECK(shard && other);
    write_bytes(ct_test_path("with/train-00000.ctshard"), shard, size);
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, with), -1);
    CHECK_CONTAINS(ct_error_message(), "train-00000.ctshard: holds no margins, but");
    // a manifest claiming margins in version 1
    char *manifest = ct_test_read(ct_test_path("without/dataset.json"), NULL);
    char *v = strstr(manifest, "\"kind\":");
    CHECK(v);
    char edited[8192];
    snprintf(edited, sizeof edited, "%.*s\"margins\": true, %s", (int)(v - manifest), manifest, v);
    ct_test_write("without/dataset.json", edited);
    CHECK_EQ_INT(ct_dataset_open(&d, without), -1);
    CHECK_CONTAINS(ct_error_message(), "'margins' is not a boolean, or true in a version 1 'dpo' manifest");
    free(manifest);
    free(shard);
    free(other);
    ct_tokenizer_free(&t);
}
