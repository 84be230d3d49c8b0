// The sharder from input files to a dataset: every schema, thread-count independence, .zst
// inputs and each kind of bad input. A small byte-level tokenizer is built in memory, so these
// tests need no files from ../shared.
#include <dirent.h>
#include <unistd.h>
#include <zstd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/shard/dataset.h"
#include "data/loader/loader.h"
#include "data/shard/shard_builder.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "tests/test.h"
#include "tests/tokenizer_fixture.h"
#include "train/objectives/objective.h"

static CtShardJob text_job(const CtTokenizer *t, int threads) {
    CtShardJob j;
    memset(&j, 0, sizeof j);
    j.kind = CT_SHARD_TEXT;
    j.tokenizer = t;
    j.text_split = CT_DOCS_PER_PARAGRAPH;
    j.field = "text";
    j.eot = ID_ENDOFTEXT;
    j.tokenizer_hash = ct_tokenizer_fingerprint(t);
    j.seed = 1;
    j.threads = threads;
    j.shard_tokens = 500;
    j.chunk_tokens = 64;
    j.zstd_level = 3;
    return j;
}

static void write_zst(const char *path, const char *text) {
    size_t cap = ZSTD_compressBound(strlen(text));
    void *buf = malloc(cap);
    size_t n = ZSTD_compress(buf, cap, text, strlen(text), 3);
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
    free(buf);
}

static int build(const CtShardJob *job, const char *out_name, const char *const *inputs, int n, char *out_dir) {
    snprintf(out_dir, 1024, "%s/%s", ct_test_tmpdir(), out_name);
    CtInputList list;
    if (ct_input_list_collect(&list, inputs, n) != 0) return -1;
    CtShardStats stats;
    int rc = ct_shard_build(job, &list, out_dir, &stats, NULL);
    ct_input_list_free(&list);
    return rc;
}

// All tokens of a split.
static int32_t *read_split(const CtDataset *d, CtSplit s, uint8_t **mask) {
    uint64_t n = d->split[s].n_tokens;
    int32_t *t = ct_alloc(sizeof(int32_t) * (n + 1));
    if (mask) *mask = ct_alloc(n + 1);
    void *dctx = ct_shard_dctx_new();
    if (ct_dataset_read_range(d, s, 0, n, dctx, t, mask ? *mask : NULL) != 0) abort();
    ct_shard_dctx_free(dctx);
    return t;
}

static void expect_encoding(CtTokenizer *t, const char *text, const int32_t *got, size_t *at) {
    CtEncoder *e = ct_encoder_new(t);
    CtIds ids = {0};
    ct_encode(e, (const uint8_t *)text, strlen(text), 0, &ids);
    for (size_t i = 0; i < ids.len; i++)
        if (got[*at + i] != ids.data[i]) ct_test_fail(__FILE__, __LINE__, "token %zu of \"%s\" differs", i, text);
    *at += ids.len;
    if (got[*at] != ID_ENDOFTEXT) ct_test_fail(__FILE__, __LINE__, "no end-of-text after \"%s\"", text);
    (*at)++;
    ct_ids_free(&ids);
    ct_encoder_free(e);
}

TEST(data, sharder_text_round_trip_from_txt_jsonl_and_zst) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    const char *inputs[3] = {
        ct_test_write("a.txt", "the first paragraph\nstill the first\n\n\nthe second <|endoftext|> one\n   \nthird"),
        ct_test_write("b.jsonl", "{\"text\": \"json one\"}\n\n{\"id\": 3, \"text\": \"json\\u0000two\\n\"}\n"),
        NULL};
    char zst[1024];
    snprintf(zst, sizeof zst, "%s/c.jsonl.zst", ct_test_tmpdir());
    write_zst(zst, "{\"text\": \"compressed\"}\n{\"text\": \"\"}\n{\"text\": \"last\"}");
    inputs[2] = zst;
    CtShardJob job = text_job(&t, 2);
    char dir[1024];
    CHECK_MSG(build(&job, "out", inputs, 3, dir) == 0, "%s", ct_error_message());
    CtDataset d;
    CHECK_MSG(ct_dataset_open(&d, dir) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(d.split[CT_SPLIT_TRAIN].n_documents, 7);  // the empty jsonl text is left out
    CHECK_EQ_INT(ct_dataset_check_tokenizer(&d, &t), 0);
    int32_t *got = read_split(&d, CT_SPLIT_TRAIN, NULL);
    size_t at = 0;
    const char *docs[] = {"the first paragraph\nstill the first", "the second <|endoftext|> one", "third", "json one",
                          "json\0two\n", "compressed", "last"};
    for (int i = 0; i < 7; i++) {
        if (i == 4) {  // a NUL inside a document survives
            CtEncoder *e = ct_encoder_new(&t);
            CtIds ids = {0};
            ct_encode(e, (const uint8_t *)"json\0two\n", 9, 0, &ids);
            for (size_t k = 0; k < ids.len; k++) CHECK(got[at + k] == ids.data[k]);
            at += ids.len;
            CHECK_EQ_INT(got[at++], ID_ENDOFTEXT);
            ct_ids_free(&ids);
            ct_encoder_free(e);
            continue;
        }
        expect_encoding(&t, docs[i], got, &at);
        if (ct_test_failed()) return;
    }
    CHECK_EQ_INT(at, d.split[CT_SPLIT_TRAIN].n_tokens);
    ct_free(got);
    ct_dataset_close(&d);
    ct_tokenizer_free(&t);
}

// A tokenizer that frames a text (tokenizer.json's TemplateProcessing: a BOS first, as Llama 3,
// Llama 2 and Gemma have) gets it before every document; a suffix that already ends with the
// end-of-text token is not followed by a second one.
TEST(data, sharder_frames_documents_as_the_tokenizer_does) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    t.post.prefix[t.post.n_prefix++] = ID_IM_START;
    t.post.suffix[t.post.n_suffix++] = ID_ENDOFTEXT;
    const char *inputs[1] = {ct_test_write("framed.jsonl", "{\"text\": \"the one\"}\n{\"text\": \"two\"}\n")};
    CtShardJob job = text_job(&t, 1);
    char dir[1024];
    CHECK_MSG(build(&job, "framed", inputs, 1, dir) == 0, "%s", ct_error_message());
    CtDataset d;
    CHECK_MSG(ct_dataset_open(&d, dir) == 0, "%s", ct_error_message());
    int32_t *got = read_split(&d, CT_SPLIT_TRAIN, NULL);
    size_t at = 0;
    const char *docs[] = {"the one", "two"};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(got[at++], ID_IM_START);
        expect_encoding(&t, docs[i], got, &at);  // the text and one <|endoftext|>
        if (ct_test_failed()) return;
    }
    CHECK_EQ_INT(at, d.split[CT_SPLIT_TRAIN].n_tokens);
    ct_free(got);
    ct_dataset_close(&d);
    ct_tokenizer_free(&t);
}

static int same_files(const char *a, const char *b) {
    DIR *d = opendir(a);
    struct dirent *e;
    int same = 1, files = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char pa[2048], pb[2048];
        snprintf(pa, sizeof pa, "%s/%s", a, e->d_name);
        snprintf(pb, sizeof pb, "%s/%s", b, e->d_name);
        size_t na, nb;
        char *x = ct_test_read(pa, &na), *y = ct_test_read(pb, &nb);
        same &= x && y && na == nb && memcmp(x, y, na) == 0;
        free(x);
        free(y);
        files++;
    }
    if (d) closedir(d);
    return same && files > 2;
}

TEST(data, sharder_output_is_identical_for_any_thread_count) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    // Enough documents for several batches, shards and a validation split.
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap);
    for (int i = 0; i < 3000; i++)
        len += (size_t)snprintf(text + len, cap - len, "the doc %d says the thing %d times\n\n", i, i * 7 % 13);
    const char *inputs[1] = {ct_test_write("many.txt", text)};
    free(text);
    CtShardJob job = text_job(&t, 1);
    job.val_fraction = 0.1;
    char one[1024], two[1024], four[1024];
    CHECK_EQ_INT(build(&job, "one", inputs, 1, one), 0);
    job.threads = 2;
    CHECK_EQ_INT(build(&job, "two", inputs, 1, two), 0);
    job.threads = 4;
    CHECK_EQ_INT(build(&job, "four", inputs, 1, four), 0);
    CHECK(same_files(one, two));
    CHECK(same_files(one, four));
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, four), 0);
    CHECK_EQ_INT(d.split[CT_SPLIT_TRAIN].n_documents + d.split[CT_SPLIT_VAL].n_documents, 3000);
    CHECK(d.split[CT_SPLIT_VAL].n_documents > 240 && d.split[CT_SPLIT_VAL].n_documents < 360);  // 10% +- 4 sigma
    CHECK(d.split[CT_SPLIT_TRAIN].n_shards > 3);
    ct_dataset_close(&d);
    ct_tokenizer_free(&t);
}

// One .txt document of several MB is cut into chunks at the pre-tokenizer's safe places that all
// threads encode, and written in parts (a batch of text each: 3 parts on 1 thread, 2 on 2, 1 on
// 4) across shard boundaries: the dataset is the same for 1, 2 and 4 threads, and its tokens are
// the one-thread encoding of the whole document (special-token strings allowed, so chunks also
// end at added tokens), then the end-of-text token. Between small documents, with a validation
// split drawn, the same too.
TEST(data, sharder_splits_one_large_document_with_the_same_tokens) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    size_t cap = 9u << 20, len = 0;
    char *text = malloc(cap + 256);
    for (int i = 0; len < cap; i++)
        len += (size_t)snprintf(text + len, cap + 256 - len, "%s the doc %d said\n%s%s", i % 97 ? "" : "<|endoftext|>",
                                i, i % 13 ? "" : "     \n\n", i % 7 ? "" : "123456789 ");
    const char *inputs[1] = {ct_test_write("big.txt", text)};
    CtShardJob job = text_job(&t, 1);
    job.text_split = CT_DOCS_PER_FILE;
    job.allow_special = 1;
    job.shard_tokens = 1u << 20;
    job.chunk_tokens = 4096;
    char one[1024], two[1024], four[1024];
    CHECK_EQ_INT(build(&job, "one", inputs, 1, one), 0);
    job.threads = 2;
    CHECK_EQ_INT(build(&job, "two", inputs, 1, two), 0);
    job.threads = 4;
    CHECK_EQ_INT(build(&job, "four", inputs, 1, four), 0);
    CHECK(same_files(one, two));
    CHECK(same_files(one, four));
    const char *mixed[3] = {ct_test_write("before.txt", "a small document\n"), inputs[0],
                            ct_test_write("after.txt", "another\n")};
    job.val_fraction = 0.5;
    for (int k = 0; k < 3; k++) {
        char name[16], dir[1024];
        job.threads = 1 << k;
        snprintf(name, sizeof name, "mixed%d", job.threads);
        CHECK_EQ_INT(build(&job, name, mixed, 3, k ? dir : one), 0);
        if (k) CHECK(same_files(one, dir));
    }
    CtEncoder *e = ct_encoder_new(&t);
    CtIds ids = {0};
    ct_encode(e, (const uint8_t *)text, len, 1, &ids);
    ct_ids_push(&ids, ID_ENDOFTEXT);
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, four), 0);
    CHECK_EQ_INT((int)d.split[CT_SPLIT_TRAIN].n_documents, 1);
    CHECK_EQ_INT((int)d.split[CT_SPLIT_TRAIN].n_tokens, (int)ids.len);
    int32_t *got = read_split(&d, CT_SPLIT_TRAIN, NULL);
    CHECK(memcmp(got, ids.data, ids.len * sizeof *got) == 0);
    ct_free(got);
    ct_dataset_close(&d);
    ct_ids_free(&ids);
    ct_encoder_free(e);
    free(text);
    ct_tokenizer_free(&t);
}

// Documents held out: val_fraction of N, but at least min(N/10, val_min), exactly, chosen by
// the same hash (a superset of the fraction's own choice); none for a handful of documents.
TEST(data, sharder_holds_out_at_least_min_n_over_10_or_val_min_documents) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    const int sizes[] = {5, 500, 3000, 20000};
    const int expect[] = {0, 50, 100, -1};  // -1: about 1% (Bernoulli), the minimum does not bind
    size_t cap = 1 << 21;
    char *text = malloc(cap);
    for (int k = 0; k < 4; k++) {
        size_t len = 0;
        for (int i = 0; i < sizes[k]; i++) len += (size_t)snprintf(text + len, cap - len, "the doc %d\n\n", i);
        char name[32];
        snprintf(name, sizeof name, "docs%d.txt", sizes[k]);
        const char *inputs[1] = {ct_test_write(name, text)};
        CtShardJob job = text_job(&t, 2);
        job.val_fraction = 0.01;
        job.val_min = 100;
        job.shard_tokens = 1 << 20;
        char dir[1024];
        snprintf(name, sizeof name, "out%d", sizes[k]);
        CHECK_EQ_INT(build(&job, name, inputs, 1, dir), 0);
        CtDataset d;
        CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
        uint64_t val = d.split[CT_SPLIT_VAL].n_documents;
        CHECK_EQ_INT(d.split[CT_SPLIT_TRAIN].n_documents + val, (uint64_t)sizes[k]);
        if (expect[k] >= 0)
            CHECK_MSG(val == (uint64_t)expect[k], "%d documents: %llu held out, not %d", sizes[k], (unsigned long long)val,
                      expect[k]);
        else
            CHECK_MSG(val >= 140 && val <= 260, "%d documents: %llu held out, not about 1%%", sizes[k],
                      (unsigned long long)val);
        ct_dataset_close(&d);
        if (sizes[k] == 3000) {  // without the minimum: the fraction alone, as before (~30)
            job.val_min = 0;
            CHECK_EQ_INT(build(&job, "plain3000", inputs, 1, dir), 0);
            CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
            CHECK_MSG(d.split[CT_SPLIT_VAL].n_documents < 60, "%llu held out with --val-min 0",
                      (unsigned long long)d.split[CT_SPLIT_VAL].n_documents);
            ct_dataset_close(&d);
        }
    }
    free(text);
    ct_tokenizer_free(&t);
}

// README's flows at the sizes users bring (a 600 KB text, 5,000 SFT examples, 2,000 DPO pairs)
// with GPT-2's tokenizer and the default split: each validation split feeds the demo config's
// evaluation (batch 16 x 128; with 1% alone they held 18-50 documents and no global batch).
// --split file with too few documents for the fraction: they are counted first (each file is
// one document when it holds more than spaces and tabs; a file of newlines is one), and exactly
// min(N/10, val_min) of them are held out: 20 documents among 31 files, 2 held out.
TEST(data, sharder_counts_one_document_per_file_that_holds_text) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    char *paths[31], name[32], text[64];
    const char *inputs[31];
    for (int i = 0; i < 31; i++) {
        snprintf(name, sizeof name, "file%02d.txt", i);
        if (i < 19) snprintf(text, sizeof text, "the doc %d\n\nsays %d\n", i, i);
        else if (i == 19) snprintf(text, sizeof text, "\n\n");  // a document of newlines
        else snprintf(text, sizeof text, "%s", i % 2 ? "" : " \t ");  // no document
        inputs[i] = paths[i] = strdup(ct_test_write(name, text));  // (its buffer is reused)
    }
    CtShardJob job = text_job(&t, 2);
    job.text_split = CT_DOCS_PER_FILE;
    job.val_fraction = 0.01;
    job.val_min = 100;
    char dir[1024];
    CHECK_MSG(build(&job, "per_file", inputs, 31, dir) == 0, "%s", ct_error_message());
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
    CHECK_EQ_INT(d.split[CT_SPLIT_TRAIN].n_documents + d.split[CT_SPLIT_VAL].n_documents, 20);
    CHECK_EQ_INT(d.split[CT_SPLIT_VAL].n_documents, 2);
    ct_dataset_close(&d);
    for (int i = 0; i < 31; i++) free(paths[i]);
    ct_tokenizer_free(&t);
}

TEST(data, readme_sized_inputs_get_a_validation_split_the_demo_config_can_use) {
    const char *shared = ct_test_shared_data(), *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[8192], *out;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' synth stories --documents 3000 --out corpus.txt && "
             "'%s' synth instructions --task reverse --examples 5000 --out chats.jsonl && "
             "head -2000 chats.jsonl | sed -E 's/\"prompt\": \"reverse: ([^\"]*)\", \"response\": \"([^\"]*)\"/"
             "\"prompt\": \"reverse: \\1\", \"chosen\": \"\\2\", \"rejected\": \"\\1\"/' > pairs.jsonl && "
             "'%s' shard --tokenizer '%s/tokenizers/gpt2' --input corpus.txt --split paragraphs --out corpus && "
             "'%s' shard --tokenizer '%s/tokenizers/gpt2' --input chats.jsonl --format sft --out chats && "
             "'%s' shard --tokenizer chats/tokenizer.json --input pairs.jsonl --format dpo --out pairs",
             dir, bin, bin, bin, shared, bin, shared, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "shard: 3000 documents (2900 train, 100 val)");
    CHECK_CONTAINS(out, "shard: 5000 documents (4900 train, 100 val)");
    // 30 of the 2,000 pairs reverse a palindrome ("reverse: a b a"): chosen = rejected, skipped.
    CHECK_CONTAINS(out, "shard: 1970 documents (1870 train, 100 val)");
    CHECK_CONTAINS(out, "skipped 30 dpo pairs that cannot teach a preference");
    free(out);
    size_t corpus_bytes = 0;
    char *corpus = ct_test_read(ct_test_path("corpus.txt"), &corpus_bytes);
    free(corpus);
    CHECK_MSG(corpus_bytes > 550000 && corpus_bytes < 650000, "corpus.txt has %zu bytes, not about 600 KB", corpus_bytes);
    const char *names[3] = {"corpus", "chats", "pairs"};
    for (int i = 0; i < 3; i++) {
        char path[1100];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        CtDataset d;
        CHECK_EQ_INT(ct_dataset_open(&d, path), 0);
        CtLoaderOptions o;
        ct_loader_default_options(&o);
        o.batch = 16;  // configs/demo.json: batch_size 16, seq_len 128 (dpo: 16 pairs)
        o.seq_len = 128;
        o.shuffle = 0;
        CtLoader l;
        CHECK_MSG(ct_loader_open(&l, &d, CT_SPLIT_VAL, &o) == 0, "%s: %s", names[i], ct_error_message());
        ct_loader_close(&l);
        ct_dataset_close(&d);
    }
}

// The bytes of the masked tokens of a split, decoded.
static char *masked_text(const CtTokenizer *t, const int32_t *tokens, const uint8_t *mask, size_t n, int want) {
    int32_t *sel = ct_alloc(sizeof(int32_t) * (n + 1));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (mask[i] == want) sel[k++] = tokens[i];
    uint8_t *out = NULL;
    size_t len = 0, cap = 0;
    ct_decode(t, sel, k, &out, &len, &cap);
    char *s = malloc(len + 1);
    memcpy(s, out, len);
    s[len] = '\0';
    ct_free(out);
    ct_free(sel);
    return s;
}

TEST(data, sharder_sft_masks_exactly_the_responses_in_each_schema) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    const char *schemas[][2] = {
        {"{\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"}, {\"role\": \"user\", \"content\": \"hi\"},"
         " {\"role\": \"assistant\", \"content\": \"hello\"}, {\"role\": \"user\", \"content\": \"the end?\"},"
         " {\"role\": \"assistant\", \"content\": \"yes <|im_end|>\"}]}",
         "hello<|im_end|>yes <|im_end|><|im_end|>"},
        {"{\"prompt\": \"2+2\", \"response\": \"4\"}", "4<|im_end|>"},
        {"{\"instruction\": \"add\", \"input\": \"2 2\", \"output\": \"4\"}", "4<|im_end|>"},
    };
    CtChatTemplate tmpl;
    CHECK_EQ_INT(ct_chat_template_load(&tmpl, "chatml"), 0);
    CHECK_EQ_INT(ct_chat_template_check(&tmpl, &t), ID_IM_END);
    for (int s = 0; s < 3; s++) {
        char name[32];
        snprintf(name, sizeof name, "sft%d.jsonl", s);
        const char *inputs[1] = {ct_test_write(name, schemas[s][0])};
        CtShardJob job = text_job(&t, 2);
        job.kind = CT_SHARD_SFT;
        job.chat_template = &tmpl;
        char dir[1024];
        snprintf(name, sizeof name, "sft%d", s);
        CHECK_MSG(build(&job, name, inputs, 1, dir) == 0, "%s", ct_error_message());
        CtDataset d;
        CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
        uint8_t *mask;
        int32_t *tok = read_split(&d, CT_SPLIT_TRAIN, &mask);
        size_t n = d.split[CT_SPLIT_TRAIN].n_tokens;
        char *trained = masked_text(&t, tok, mask, n, 1);
        CHECK_STR_EQ(trained, schemas[s][1]);  // the user's "<|im_end|>" stays text; the turn ends are tokens
        free(trained);
        char *rest = masked_text(&t, tok, mask, n, 0);
        CHECK_CONTAINS(rest, "<|im_start|>user\n");
        CHECK_CONTAINS(rest, "<|im_start|>assistant\n");
        if (s == 2) CHECK_CONTAINS(rest, "add\n\n2 2<|im_end|>\n");
        free(rest);
        ct_free(tok);
        ct_free(mask);
        ct_dataset_close(&d);
    }
    ct_chat_template_free(&tmpl);
    ct_tokenizer_free(&t);
}

// sft and dpo examples over several encoding tasks (each keeps its examples' ids, and sft's
// masks, in one arena) and a skipped malformed line: the same files for 1, 2 and 4 threads, and
// every example in place: sft's trained tokens are the responses in order, dpo's three parts.
TEST(data, sharder_sft_and_dpo_are_identical_for_any_thread_count) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    CtChatTemplate tmpl;
    CHECK_EQ_INT(ct_chat_template_load(&tmpl, "chatml"), 0);
    const int n = 4000;  // about 200 KB: several tasks of 64 KB
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap), *expect = malloc(cap);
    size_t expect_len = 0;
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(text + len, cap - len, "{\"prompt\": \"say %d\", \"response\": \"it is %d\"}\n", i, i);
        expect_len += (size_t)snprintf(expect + expect_len, cap - expect_len, "it is %d<|im_end|>", i);
        if (i == n / 2) len += (size_t)snprintf(text + len, cap - len, "{\"prompt\": oops}\n");
    }
    const char *sft_in[1] = {ct_test_write("many_sft.jsonl", text)};
    len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, "{\"prompt\": \"q%d=\", \"chosen\": \"%d\", \"rejected\": \"%d\"}\n", i,
                                i, i % 100 ? i + 1 : i);  // every 100th: chosen = rejected, skipped
    const char *dpo_in[1] = {ct_test_write("many_dpo.jsonl", text)};
    free(text);
    for (int kind = 0; kind < 2; kind++) {
        CtShardJob job = text_job(&t, 1);
        job.kind = kind == 0 ? CT_SHARD_SFT : CT_SHARD_DPO;
        job.chat_template = &tmpl;
        job.skip_bad = 1;
        job.shard_tokens = 20000;
        char dirs[3][1024], name[32];
        for (int k = 0; k < 3; k++) {
            job.threads = 1 << k;
            snprintf(name, sizeof name, "%s%d", kind == 0 ? "sft" : "dpo", job.threads);
            CHECK_MSG(build(&job, name, kind == 0 ? sft_in : dpo_in, 1, dirs[k]) == 0, "%s", ct_error_message());
        }
        CHECK(same_files(dirs[0], dirs[1]));
        CHECK(same_files(dirs[0], dirs[2]));
        CtDataset d;
        CHECK_EQ_INT(ct_dataset_open(&d, dirs[2]), 0);
        const CtDatasetSplit *sp = &d.split[CT_SPLIT_TRAIN];
        uint8_t *mask = NULL;
        int32_t *tok = read_split(&d, CT_SPLIT_TRAIN, kind == 0 ? &mask : NULL);
        if (kind == 0) {
            CHECK_EQ_INT((int)sp->n_documents, n);
            char *trained = masked_text(&t, tok, mask, sp->n_tokens, 1);
            CHECK(strlen(trained) == expect_len && memcmp(trained, expect, expect_len) == 0);
            free(trained);
            ct_free(mask);
        } else {
            CHECK_EQ_INT((int)sp->n_documents, n - n / 100);
            int i = 0;
            for (int s = 0; s < sp->n_shards; s++) {
                const CtShard *sh = &sp->shards[s];
                for (uint64_t e = 0; e < sh->n_docs; e++, i++) {
                    if (i % 100 == 0) i++;  // the skipped pair
                    const int32_t *at = tok + sp->shard_first_token[s] + sh->doc_starts[e];
                    char want[3][32];
                    snprintf(want[0], sizeof want[0], "q%d=", i);
                    snprintf(want[1], sizeof want[1], "%d<|endoftext|>", i);
                    snprintf(want[2], sizeof want[2], "%d<|endoftext|>", i + 1);
                    for (int part = 0; part < 3; part++) {
                        uint32_t m = sh->dpo_lengths[3 * e + part];
                        uint8_t *out = NULL;
                        size_t out_len = 0, out_cap = 0;
                        CHECK_EQ_INT(ct_decode(&t, at, m, &out, &out_len, &out_cap), 0);
                        CHECK_MSG(out_len == strlen(want[part]) && memcmp(out, want[part], out_len) == 0,
                                  "pair %d part %d: %.*s", i, part, (int)out_len, (const char *)out);
                        ct_free(out);
                        at += m;
                    }
                }
            }
        }
        ct_free(tok);
        ct_dataset_close(&d);
    }
    free(expect);
    ct_chat_template_free(&tmpl);
    ct_tokenizer_free(&t);
}

TEST(data, sharder_dpo_keeps_prompt_and_completions_apart) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    CtChatTemplate tmpl;
    CHECK_EQ_INT(ct_chat_template_load(&tmpl, "chatml"), 0);
    const char *inputs[1] = {ct_test_write(
        "dpo.jsonl", "{\"prompt\": \"2+2=\", \"chosen\": \"4\", \"rejected\": \"5\"}\n"
                     "{\"prompt\": [{\"role\": \"user\", \"content\": \"hi\"}], \"chosen\": [{\"role\": \"assistant\","
                     " \"content\": \"hello\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"go\"}]}\n")};
    CtShardJob job = text_job(&t, 2);
    job.kind = CT_SHARD_DPO;
    job.chat_template = &tmpl;
    char dir[1024];
    CHECK_MSG(build(&job, "dpo", inputs, 1, dir) == 0, "%s", ct_error_message());
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
    CHECK_EQ_INT(d.kind, CT_SHARD_DPO);
    const CtShard *sh = &d.split[CT_SPLIT_TRAIN].shards[0];
    CHECK_EQ_INT(sh->n_docs, 2);
    int32_t *tok = read_split(&d, CT_SPLIT_TRAIN, NULL);
    const char *expect[2][3] = {{"2+2=", "4<|endoftext|>", "5<|endoftext|>"},
                                {"<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "hello<|im_end|>\n",
                                 "go<|im_end|>\n"}};
    for (int e = 0; e < 2; e++) {
        size_t at = sh->doc_starts[e];
        for (int part = 0; part < 3; part++) {
            uint32_t n = sh->dpo_lengths[3 * e + part];
            uint8_t *out = NULL;
            size_t len = 0, cap = 0;
            CHECK_EQ_INT(ct_decode(&t, tok + at, n, &out, &len, &cap), 0);
            CHECK_MSG(len == strlen(expect[e][part]) && memcmp(out, expect[e][part], len) == 0, "example %d part %d: %.*s",
                      e, part, (int)len, (const char *)out);
            ct_free(out);
            at += n;
        }
    }
    ct_free(tok);
    ct_dataset_close(&d);
    ct_chat_template_free(&tmpl);
    ct_tokenizer_free(&t);
}

// A model's own template (Qwen2.5's Jinja): the same masks as ChatML, content typed as
// "<|im_end|>" stays text, dpo's completion is what follows the generation prompt, and the
// manifest keeps the template (kind "jinja") for training and chat.
TEST(data, sharder_renders_a_models_jinja_template) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    char path[4096];
    snprintf(path, sizeof path, "%s/chat_templates/qwen2.5.jinja", ct_test_shared_data());
    CtChatTemplate tmpl;
    CHECK_MSG(ct_chat_template_load(&tmpl, path) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(ct_chat_template_check(&tmpl, &t), ID_IM_END);
    const char *inputs[1] = {ct_test_write(
        "jinja.jsonl", "{\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"}, {\"role\": \"user\", \"content\": "
                       "\"hi\"}, {\"role\": \"assistant\", \"content\": \"hello\"}, {\"role\": \"user\", \"content\": "
                       "\"the end?\"}, {\"role\": \"assistant\", \"content\": \"yes <|im_end|>\"}]}\n")};
    CtShardJob job = text_job(&t, 2);
    job.kind = CT_SHARD_SFT;
    job.chat_template = &tmpl;
    char dir[1024];
    CHECK_MSG(build(&job, "jinja", inputs, 1, dir) == 0, "%s", ct_error_message());
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
    uint8_t *mask;
    int32_t *tok = read_split(&d, CT_SPLIT_TRAIN, &mask);
    size_t n = d.split[CT_SPLIT_TRAIN].n_tokens, im_end_trained = 0;
    for (size_t i = 0; i < n; i++) im_end_trained += mask[i] && tok[i] == ID_IM_END;
    char *trained = masked_text(&t, tok, mask, n, 1), *rest = masked_text(&t, tok, mask, n, 0);
    CHECK_STR_EQ(trained, "hello<|im_end|>yes <|im_end|><|im_end|>");
    CHECK_EQ_INT(im_end_trained, 2);  // the typed one is text
    CHECK_CONTAINS(rest, "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    free(trained);
    free(rest);
    ct_free(tok);
    ct_free(mask);
    ct_dataset_close(&d);
    char *stored = ct_objective_chat_template(dir);
    CHECK(stored != NULL);
    CHECK_CONTAINS(stored, "\"kind\":\"jinja\"");
    free(stored);
    // dpo
    const char *pairs[1] = {ct_test_write(
        "jinja_dpo.jsonl", "{\"prompt\": [{\"role\": \"user\", \"content\": \"hi\"}], \"chosen\": [{\"role\": \"assistant\","
                           " \"content\": \"hello\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"go\"}]}\n")};
    job.kind = CT_SHARD_DPO;
    CHECK_MSG(build(&job, "jinja_dpo", pairs, 1, dir) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
    const CtShard *sh = &d.split[CT_SPLIT_TRAIN].shards[0];
    tok = read_split(&d, CT_SPLIT_TRAIN, NULL);
    const char *expect[3] = {"<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
                             "<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
                             "hello<|im_end|>\n", "go<|im_end|>\n"};
    size_t at = sh->doc_starts[0];
    for (int part = 0; part < 3; part++) {
        uint32_t len_tokens = sh->dpo_lengths[part];
        uint8_t *out = NULL;
        size_t len = 0, cap = 0;
        CHECK_EQ_INT(ct_decode(&t, tok + at, len_tokens, &out, &len, &cap), 0);
        CHECK_MSG(len == strlen(expect[part]) && memcmp(out, expect[part], len) == 0, "part %d: %.*s", part, (int)len,
                  (const char *)out);
        ct_free(out);
        at += len_tokens;
    }
    ct_free(tok);
    ct_dataset_close(&d);
    ct_chat_template_free(&tmpl);
    ct_tokenizer_free(&t);
}

static int folder_has_dataset_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) n += strstr(e->d_name, ".ctshard") != NULL || strcmp(e->d_name, "dataset.json") == 0;
    closedir(d);
    return n;
}

TEST(data, sharder_bad_input_names_file_and_line_and_leaves_nothing) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    char good_lines[20000];
    size_t len = 0;
    for (int i = 0; i < 400; i++) len += (size_t)snprintf(good_lines + len, sizeof good_lines - len, "{\"text\": \"doc %d\"}\n", i);
    char bad[21000];
    snprintf(bad, sizeof bad, "%s{\"text\": \"broken}\n{\"text\": \"after\"}\n", good_lines);
    const char *inputs[1] = {ct_test_write("bad.jsonl", bad)};
    CtShardJob job = text_job(&t, 2);
    job.shard_tokens = 100;  // shards are complete before the bad line is reached
    char dir[1024];
    CHECK_EQ_INT(build(&job, "bad", inputs, 1, dir), -1);
    CHECK_CONTAINS(ct_error_message(), "bad.jsonl:401: ");
    CHECK_EQ_INT(folder_has_dataset_files(dir), 0);

    job.skip_bad = 1;
    CHECK_EQ_INT(build(&job, "skipped", inputs, 1, dir), 0);
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
    CHECK_EQ_INT(d.split[CT_SPLIT_TRAIN].n_documents, 401);
    ct_dataset_close(&d);
    job.skip_bad = 0;

    inputs[0] = ct_test_write("nofield.jsonl", "{\"content\": \"x\"}\n");
    CHECK_EQ_INT(build(&job, "nofield", inputs, 1, dir), -1);
    CHECK_CONTAINS(ct_error_message(), "nofield.jsonl:1: no string field 'text' (choose the field with --field)");

    char zst[1024];
    snprintf(zst, sizeof zst, "%s/cut.jsonl.zst", ct_test_tmpdir());
    write_zst(zst, good_lines);
    size_t zn;
    char *z = ct_test_read(zst, &zn);
    FILE *f = fopen(zst, "wb");
    fwrite(z, 1, zn - 20, f);  // truncated
    fclose(f);
    free(z);
    inputs[0] = zst;
    CHECK_EQ_INT(build(&job, "cut", inputs, 1, dir), -1);
    CHECK_CONTAINS(ct_error_message(), "cut.jsonl.zst: truncated zstd stream");
    CHECK_EQ_INT(folder_has_dataset_files(dir), 0);

    inputs[0] = "/nonexistent/corpus.txt";
    CHECK_EQ_INT(build(&job, "missing", inputs, 1, dir), -1);
    CHECK_CONTAINS(ct_error_message(), "/nonexistent/corpus.txt: cannot read input");

    CtChatTemplate tmpl;
    CHECK_EQ_INT(ct_chat_template_load(&tmpl, "chatml"), 0);
    job.kind = CT_SHARD_SFT;
    job.chat_template = &tmpl;
    inputs[0] = ct_test_write("sft.jsonl", "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": \"a\"}\n");
    CHECK_EQ_INT(build(&job, "sftbad", inputs, 1, dir), -1);
    CHECK_CONTAINS(ct_error_message(), "sft.jsonl:2: no 'messages' list, 'prompt'/'response' or 'instruction'/'output'");
    ct_chat_template_free(&tmpl);
    ct_tokenizer_free(&t);
}

TEST(data, chat_template_needs_its_tokens) {
    CtTokenizer t;
    ct_tokenizer_init(&t, CT_PATTERN_GPT2, CT_MERGES_BY_RANK);
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        ct_tokenizer_add(&t, b, &byte, 1, CT_TOKEN_NORMAL);
    }
    ct_tokenizer_add(&t, 256, (const uint8_t *)"<|endoftext|>", 13, CT_TOKEN_SPECIAL);
    CHECK_EQ_INT(ct_tokenizer_finish(&t), 0);
    CtChatTemplate tmpl;
    CHECK_EQ_INT(ct_chat_template_load(&tmpl, "chatml"), 0);
    CHECK_EQ_INT(ct_chat_template_check(&tmpl, &t), -1);
    CHECK_CONTAINS(ct_error_message(), "no special token '<|im_end|>'");
    ct_chat_template_free(&tmpl);
    CHECK_EQ_INT(ct_chat_template_load(&tmpl, "plain"), 0);
    CHECK_EQ_INT(ct_chat_template_check(&tmpl, &t), 256);
    ct_chat_template_free(&tmpl);
    CHECK_EQ_INT(ct_chat_template_parse(&tmpl, "{\"turn_start\": \"\", \"turn_end\": \"\", \"end_of_turn\": \"x\","
                                               " \"trained_roles\": [\"bot\"], \"colour\": 1}", "t.json"),
                 -1);
    CHECK_CONTAINS(ct_error_message(), "t.json: unknown chat template key 'colour'");
    ct_tokenizer_free(&t);
}

TEST(data, shard_command_on_the_shared_corpus) {
    const char *shared = ct_test_shared_data();
    const char *bin = ct_test_bin();
    const char *dir = ct_test_tmpdir();
    char cmd[4096], *out;
    for (int threads = 1; threads <= 4; threads += 3) {
        snprintf(cmd, sizeof cmd,
                 "'%s' shard --tokenizer '%s/tokenizers/gpt2' --input '%s/corpora/nlp-corpus-40k.txt' --split lines "
                 "--out '%s/t%d' --threads %d --shard-tokens 300000",
                 bin, shared, shared, dir, threads, threads);
        CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
        CHECK_CONTAINS(out, "shard: 40074 documents");
        free(out);
    }
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/t1", dir);
    snprintf(b, sizeof b, "%s/t4", dir);
    CHECK(same_files(a, b));
    snprintf(cmd, sizeof cmd, "'%s' shard --info '%s/t4'", bin, dir);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "kind text, tokens stored as uint16, vocabulary 50257");
    CHECK_CONTAINS(out, "3 shards");
    CHECK_CONTAINS(out, "bytes per token: 4.1");
    free(out);
    // GPT-2 lacks ChatML's tokens: sharding SFT data adds them to the dataset's tokenizer.
    const char *sft = ct_test_write("chat.jsonl", "{\"prompt\": \"2+2\", \"response\": \"4\"}\n");
    snprintf(cmd, sizeof cmd, "'%s' shard --tokenizer '%s/tokenizers/gpt2' --input '%s' --out '%s/sft' --format sft "
             "--val-fraction 0", bin, shared, sft, dir);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "added 2 special tokens of the 'chatml' template to the tokenizer (ids 50257..50258)");
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' tokenize --tokenizer '%s/sft/tokenizer.json' --allow-special", bin, dir);
    char full[4600];
    snprintf(full, sizeof full, "printf '<|im_start|>x<|im_end|>' | %s", cmd);
    CHECK_EQ_INT(ct_test_run(full, &out), 0);
    CHECK_CONTAINS(out, "50257 87 50258");
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' shard --input x --out y", bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 2);
    CHECK_CONTAINS(out, "--tokenizer, --input and --out are required");
    free(out);
}

TEST(data, interrupted_shard_leaves_no_dataset) {
    const char *shared = ct_test_shared_data();
    const char *bin = ct_test_bin();
    const char *dir = ct_test_tmpdir();
    char cmd[4096], *out;
    // Eight copies of the corpus take about a second on an idle machine; the interrupt comes once
    // the first shard is being written (polled, not a fixed delay: a loaded machine is slower).
    snprintf(cmd, sizeof cmd,
             "for i in 1 2 3 4 5 6 7 8; do cat '%s/corpora/nlp-corpus-40k.txt'; done > '%s/big.txt'; "
             "'%s' shard --tokenizer '%s/tokenizers/gpt2' --input '%s/big.txt' --split lines --out '%s/ds' "
             "--threads 1 --shard-tokens 200000 & pid=$!; "
             "for k in $(seq 400); do ls -a '%s/ds' 2>/dev/null | grep -q ctshard && break; sleep 0.02; done; "
             "kill -INT $pid; wait $pid; echo \"exit=$?\"; ls -a '%s/ds' 2>/dev/null; true",
             shared, dir, bin, shared, dir, dir, dir, dir);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "exit=130");  // ended by SIGINT
    CHECK(!strstr(out, "dataset.json"));
    CHECK(!strstr(out, ".tmp."));
    free(out);
}
