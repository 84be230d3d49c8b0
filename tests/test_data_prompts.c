// Prompts datasets (ctrain shard --format prompts) and the prompt loader: what is written reads
// back exactly (ids rendered with the chat template's generation prompt, or as plain text; the
// line's other fields verbatim), bad lines stop with FILE:LINE, --verify finds damage, and the
// loader's order is seeded, resumable and sliced across ranks. A small byte-level tokenizer is
// built in memory; the end-to-end test runs the ctrain binary on the arithmetic task.
#include <cjson/cJSON.h>
#include <dirent.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/examples/examples.h"
#include "data/loader/loader.h"
#include "data/loader/prompt_loader.h"
#include "data/shard/dataset.h"
#include "data/shard/shard_builder.h"
#include "data/tokenizer/tokenizer_files.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "tests/test.h"
#include "tests/tokenizer_fixture.h"


static CtShardJob prompts_job(const CtTokenizer *t, const CtChatTemplate *tmpl) {
    CtShardJob j;
    memset(&j, 0, sizeof j);
    j.kind = CT_SHARD_PROMPTS;
    j.tokenizer = t;
    j.chat_template = tmpl;
    j.eot = ID_ENDOFTEXT;
    j.tokenizer_hash = ct_tokenizer_fingerprint(t);
    j.seed = 1;
    j.threads = 2;
    j.shard_tokens = 1000000;
    j.chunk_tokens = 64;
    j.zstd_level = 3;
    return j;
}

static int build(const CtShardJob *job, const char *out_name, const char *input, char *out_dir) {
    snprintf(out_dir, 1024, "%s/%s", ct_test_tmpdir(), out_name);
    CtInputList list;
    const char *inputs[1] = {input};
    if (ct_input_list_collect(&list, inputs, 1) != 0) return -1;
    CtShardStats stats;
    int rc = ct_shard_build(job, &list, out_dir, &stats, NULL);
    ct_input_list_free(&list);
    return rc;
}

// Appends the tokens of text (no special tokens) to ids.
static void push_text(const CtTokenizer *t, const char *text, CtIds *ids) {
    CtEncoder *enc = ct_encoder_new(t);
    ct_encode(enc, (const uint8_t *)text, strlen(text), 0, ids);
    ct_encoder_free(enc);
}

static int same_ids(const int32_t *a, size_t na, const CtIds *b) {
    return na == b->len && memcmp(a, b->data, sizeof(int32_t) * na) == 0;
}

// The prompts of a split in file order (shuffle off, one rank, batch 1).
static int open_in_order(CtPromptLoader *l, const CtDataset *d, CtSplit split) {
    CtPromptLoaderOptions o;
    ct_prompt_loader_default_options(&o);
    o.batch = 1;
    o.shuffle = 0;
    return ct_prompt_loader_open(l, d, split, &o);
}

TEST(prompts, round_trip_keeps_ids_and_fields_exactly) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    CtChatTemplate tmpl;
    CHECK_EQ_INT(ct_chat_template_load(&tmpl, "chatml"), 0);
    // A string prompt, one with a system message, and a chat whose trailing assistant turns
    // (the reference answer an SFT file carries) are no part of the prompt.
    const char *input = ct_test_write(
        "p.jsonl",
        "{\"prompt\": \"the sum\", \"answer\": \"4\"}\n"
        "{\"system\": \"be brief\", \"prompt\": \"the end\", \"answer\": 7, \"id\": \"b\"}\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"},"
        " {\"role\": \"user\", \"content\": \"the x\"}, {\"role\": \"assistant\", \"content\": \"42\"}], \"answer\": \"42\"}\n"
        "{\"prompt\": \"no fields\"}\n");
    CtShardJob job = prompts_job(&t, &tmpl);
    char dir[1024];
    CHECK_MSG(build(&job, "p", input, dir) == 0, "%s", ct_error_message());
    CtDataset d;
    CHECK_MSG(ct_dataset_open(&d, dir) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(d.kind, CT_SHARD_PROMPTS);
    CHECK_EQ_INT(d.split[CT_SPLIT_TRAIN].n_documents + d.split[CT_SPLIT_VAL].n_documents, 4);
    // The chatml rendering, spelled out: each turn <|im_start|>role\n content <|im_end|>\n, then
    // the generation prompt <|im_start|>assistant\n.
    const char *turns[4][6] = {{"user", "the sum"},
                               {"system", "be brief", "user", "the end"},
                               {"user", "hi", "assistant", "yo", "user", "the x"},
                               {"user", "no fields"}};
    const int n_turns[4] = {1, 2, 3, 1};
    const char *fields[4] = {"{\"answer\":\"4\"}", "{\"answer\":7,\"id\":\"b\"}", "{\"answer\":\"42\"}", "{}"};
    // Which example landed in which split is the seeded draw's business: read both, match by fields.
    int seen = 0;
    for (int s = 0; s < CT_N_SPLITS; s++) {
        if (d.split[s].n_documents == 0) continue;
        CtPromptLoader l;
        CHECK_MSG(open_in_order(&l, &d, (CtSplit)s) == 0, "%s", ct_error_message());
        for (uint64_t i = 0; i < l.n_prompts; i++) {
            const CtPrompt *p;
            CHECK_EQ_INT(ct_prompt_loader_next(&l, &p), 0);
            int k = -1;
            for (int j = 0; j < 4; j++)
                if (strcmp(p->fields, fields[j]) == 0) k = j;
            CHECK_MSG(k >= 0, "unexpected fields %s", p->fields);
            CHECK_EQ_INT(p->fields_len, strlen(fields[k]));
            CtIds want = {0};
            for (int m = 0; m < n_turns[k]; m++) {
                const char *role = turns[k][2 * m], *content = turns[k][2 * m + 1];
                ct_ids_push(&want, ID_IM_START);
                push_text(&t, role, &want);
                push_text(&t, "\n", &want);
                push_text(&t, content, &want);
                ct_ids_push(&want, ID_IM_END);
                push_text(&t, "\n", &want);
            }
            ct_ids_push(&want, ID_IM_START);
            push_text(&t, "assistant\n", &want);
            CHECK_MSG(same_ids(p->ids, p->n_ids, &want), "prompt %d: %zu ids, expected %zu", k, p->n_ids, want.len);
            ct_ids_free(&want);
            seen |= 1 << k;
        }
        ct_prompt_loader_close(&l);
    }
    CHECK_EQ_INT(seen, 15);
    ct_dataset_close(&d);
    ct_chat_template_free(&tmpl);
    ct_tokenizer_free(&t);
}

TEST(prompts, template_none_keeps_the_plain_text_and_refuses_chats) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    const char *input = ct_test_write("plain.jsonl", "{\"prompt\": \"the sum of <|im_end|> the\", \"answer\": \"x\"}\n");
    CtShardJob job = prompts_job(&t, NULL);
    job.val_fraction = 0;
    char dir[1024];
    CHECK_MSG(build(&job, "plain", input, dir) == 0, "%s", ct_error_message());
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
    CtPromptLoader l;
    CHECK_MSG(open_in_order(&l, &d, CT_SPLIT_TRAIN) == 0, "%s", ct_error_message());
    const CtPrompt *p;
    CHECK_EQ_INT(ct_prompt_loader_next(&l, &p), 0);
    CtIds want = {0};
    push_text(&t, "the sum of <|im_end|> the", &want);  // the special-token string stays text
    CHECK(same_ids(p->ids, p->n_ids, &want));
    for (size_t i = 0; i < p->n_ids; i++) CHECK(p->ids[i] != ID_IM_END && p->ids[i] != ID_IM_START);
    CHECK_STR_EQ(p->fields, "{\"answer\":\"x\"}");
    ct_ids_free(&want);
    ct_prompt_loader_close(&l);
    ct_dataset_close(&d);
    // With the template the same line starts with the chat header: the two renderings differ.
    CtChatTemplate tmpl;
    CHECK_EQ_INT(ct_chat_template_load(&tmpl, "chatml"), 0);
    job.chat_template = &tmpl;
    CHECK_EQ_INT(build(&job, "chat", input, dir), 0);
    CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
    CHECK_EQ_INT(open_in_order(&l, &d, CT_SPLIT_TRAIN), 0);
    CHECK_EQ_INT(ct_prompt_loader_next(&l, &p), 0);
    CHECK_EQ_INT(p->ids[0], ID_IM_START);
    CHECK(p->n_ids > want.len);
    ct_prompt_loader_close(&l);
    ct_dataset_close(&d);
    ct_chat_template_free(&tmpl);
    // No template: a system message or a message list cannot be rendered.
    job.chat_template = NULL;
    input = ct_test_write("sys.jsonl", "{\"prompt\": \"a\"}\n{\"system\": \"s\", \"prompt\": \"b\"}\n");
    CHECK_EQ_INT(build(&job, "sys", input, dir), -1);
    CHECK_CONTAINS(ct_error_message(), "sys.jsonl:2: a system message or a message list needs a chat template, and --template none gives none");
    ct_tokenizer_free(&t);
}

TEST(prompts, fields_keep_unicode_nesting_and_numbers_byte_for_byte) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    CtChatTemplate tmpl;
    CHECK_EQ_INT(ct_chat_template_load(&tmpl, "chatml"), 0);
    // Members in their order, each value as the line spells it: escapes, nesting with its spaces,
    // integers past 2^53 and trailing zeros that a parse-and-print would change; "system" stays a
    // field where the prompt is a message list (it is not part of it).
    const char *line =
        "{\"answer\": \"\xd9\xa1\xd9\xa2 \xe2\x80\x94 \xc3\xbc\xf0\x9f\x99\x82\", \"meta\": {\"a\": [1, {\"b\": null}], "
        "\"s\": \"x\\\"y\\u00e9\\\\\"}, \"messages\": [{\"role\": \"user\", \"content\": \"q\"}], \"big\": "
        "12345678901234567890, \"f\": 1.50, \"ok\": true, \"system\": \"kept\", \"e\": []}";
    const char *want = "{\"answer\":\"\xd9\xa1\xd9\xa2 \xe2\x80\x94 \xc3\xbc\xf0\x9f\x99\x82\",\"meta\":{\"a\": [1, "
                       "{\"b\": null}], \"s\": \"x\\\"y\\u00e9\\\\\"},\"big\":12345678901234567890,\"f\":1.50,"
                       "\"ok\":true,\"system\":\"kept\",\"e\":[]}";
    char text[2048];  // the line twice, the first after a byte-order mark (a file's first line may carry one)
    snprintf(text, sizeof text, "\xEF\xBB\xBF%s\n%s\n", line, line);
    const char *input = ct_test_write("u.jsonl", text);
    CtShardJob job = prompts_job(&t, &tmpl);
    job.val_fraction = 0;
    char dir[1024];
    CHECK_MSG(build(&job, "u", input, dir) == 0, "%s", ct_error_message());
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
    CtPromptLoader l;
    CHECK_EQ_INT(open_in_order(&l, &d, CT_SPLIT_TRAIN), 0);
    const CtPrompt *p;
    CHECK_EQ_INT(ct_prompt_loader_next(&l, &p), 0);
    CHECK_STR_EQ(p->fields, want);
    CHECK_EQ_INT(ct_prompt_loader_next(&l, &p), 0);
    CHECK_STR_EQ(p->fields, want);
    // And it is JSON that means what the line meant.
    cJSON *f = cJSON_Parse(p->fields), *orig = cJSON_Parse(line);
    CHECK(f && orig);
    cJSON_DeleteItemFromObjectCaseSensitive(orig, "messages");
    CHECK(cJSON_Compare(f, orig, 1));
    cJSON_Delete(f);
    cJSON_Delete(orig);
    ct_prompt_loader_close(&l);
    ct_dataset_close(&d);
    ct_chat_template_free(&tmpl);
    ct_tokenizer_free(&t);
}

TEST(prompts, bad_lines_stop_with_file_line_and_leave_no_dataset) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    CtChatTemplate tmpl;
    CHECK_EQ_INT(ct_chat_template_load(&tmpl, "chatml"), 0);
    const char *good = "{\"prompt\": \"a\", \"answer\": \"1\"}\n";
    const char *cases[][2] = {
        {"{\"prompt\": \"a\", \"answer\": }", "column 27: invalid JSON"},
        {"[1, 2]", "expected a JSON object"},
        {"{\"answer\": \"1\"}", "no 'prompt' (a string or a message list) or 'messages' list"},
        {"{\"messages\": [{\"role\": \"assistant\", \"content\": \"x\"}]}", "'messages' holds only assistant messages"},
        {"{\"messages\": [{\"role\": \"assitant\", \"content\": \"x\"}]}", "'messages' message 1 has role 'assitant'"},
        {"{\"prompt\": [{\"role\": \"user\"}]}", "'prompt' message 1 needs string 'role' and 'content'"},
        {"{\"prompt\": \"a\", \"note\": \"\xff\"}", "the fields hold a byte 0xff that is not UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512], name[32], want[256];
        snprintf(text, sizeof text, "%s%s%s\n", good, good, cases[i][0]);
        snprintf(name, sizeof name, "bad%zu.jsonl", i);
        const char *input = ct_test_write(name, text);
        CtShardJob job = prompts_job(&t, &tmpl);
        char dir[1024], out_name[32];
        snprintf(out_name, sizeof out_name, "out%zu", i);
        CHECK_MSG(build(&job, out_name, input, dir) == -1, "case %zu was accepted", i);
        snprintf(want, sizeof want, "%s:3: %s", name, cases[i][1]);
        CHECK_CONTAINS(ct_error_message(), want);
        CHECK_MSG(!strchr(ct_error_message(), '\n'), "a one-line error: %s", ct_error_message());
        char manifest[1100];
        snprintf(manifest, sizeof manifest, "%s/dataset.json", dir);
        CHECK_MSG(access(manifest, F_OK) != 0, "case %zu left a dataset", i);
    }
    ct_chat_template_free(&tmpl);
    ct_tokenizer_free(&t);
}

// n prompts "p<i>" with fields {"answer":"<i>"}, sharded into out_name (all in train).
static int build_numbered(const CtTokenizer *t, const CtChatTemplate *tmpl, int n, const char *out_name, char *dir) {
    size_t cap = (size_t)n * 64 + 1, at = 0;
    char *text = ct_alloc(cap);
    for (int i = 0; i < n; i++) at += (size_t)snprintf(text + at, cap - at, "{\"prompt\": \"p%d\", \"answer\": \"%d\"}\n", i, i);
    char name[64];
    snprintf(name, sizeof name, "%s.jsonl", out_name);
    const char *input = ct_test_write(name, text);
    ct_free(text);
    CtShardJob job = prompts_job(t, tmpl);
    job.val_fraction = 0;
    job.shard_tokens = 100;  // several shards
    return build(&job, out_name, input, dir);
}

TEST(prompts, verify_finds_a_damaged_chunk_or_fields_frame) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    char dir[1024];
    CHECK_MSG(build_numbered(&t, NULL, 40, "v", dir) == 0, "%s", ct_error_message());
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
    CtDatasetVerified v;
    CHECK_MSG(ct_dataset_verify_split(&d, CT_SPLIT_TRAIN, &v) == 0, "%s", ct_error_message());
    CHECK(d.split[CT_SPLIT_TRAIN].n_shards >= 2);
    CHECK_EQ_INT(v.field_examples, 40);
    CHECK_EQ_INT(v.field_frames, d.split[CT_SPLIT_TRAIN].n_shards);
    // One byte flipped in the middle of shard 1's fields frame, then in its first token chunk.
    const CtShard *s = &d.split[CT_SPLIT_TRAIN].shards[1];
    char path[1100];
    snprintf(path, sizeof path, "%s", s->path);
    const uint64_t places[2] = {s->field_frame_offsets[0] + s->field_frame_sizes[0] / 2, s->chunk_offsets[0] + s->chunk_sizes[0] / 2};
    const char *found[2] = {"train-00001.ctshard: fields frame 0 (bytes", "train-00001.ctshard: chunk 0 (bytes"};
    ct_dataset_close(&d);
    for (int k = 0; k < 2; k++) {
        size_t size;
        char *bytes = ct_test_read(path, &size);
        CHECK(bytes && places[k] < size);
        bytes[places[k]] ^= 0x10;
        FILE *f = fopen(path, "wb");
        CHECK(f && fwrite(bytes, 1, size, f) == size);
        fclose(f);
        CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);  // headers and indexes are intact
        CHECK_EQ_INT(ct_dataset_verify_split(&d, CT_SPLIT_TRAIN, NULL), -1);
        CHECK_CONTAINS(ct_error_message(), found[k]);
        CtPromptLoader l;  // the loader reads the same damage and refuses it
        CHECK_EQ_INT(open_in_order(&l, &d, CT_SPLIT_TRAIN), -1);
        CHECK_CONTAINS(ct_error_message(), found[k]);
        ct_dataset_close(&d);
        bytes[places[k]] ^= 0x10;  // mend it for the next case
        f = fopen(path, "wb");
        CHECK(f && fwrite(bytes, 1, size, f) == size);
        fclose(f);
        free(bytes);
    }
    ct_tokenizer_free(&t);
}

TEST(prompts, a_fields_frame_that_is_not_json_objects_is_refused) {
    // The writer stores what its caller checked; a frame whose text is not one JSON object per
    // prompt (a bug, or a crafted file with valid checksums) is refused when read.
    CtShardSpec spec = {CT_SHARD_PROMPTS, 2, 1000, 0x1234, 64, 3, 0};
    const char *path = ct_test_path("x.ctshard");
    CtShardWriter w;
    CHECK_EQ_INT(ct_shard_writer_open(&w, path, &spec, 0), 0);
    const uint32_t ids[3] = {5, 6, 7};
    CHECK_EQ_INT(ct_shard_writer_append_prompt(&w, ids, 3, "{\"a\":1}", 7), 0);
    CHECK_EQ_INT(ct_shard_writer_append_prompt(&w, ids, 2, "[1,2]", 5), 0);
    CHECK_EQ_INT(ct_shard_writer_close(&w, NULL), 0);
    CtShard s;
    CHECK_MSG(ct_shard_open(&s, path) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(s.n_docs, 2);
    CHECK_EQ_INT(s.n_field_frames, 1);
    CHECK_EQ_INT(s.field_lengths[0], 7);
    char out[64];
    void *dctx = ct_shard_dctx_new();
    CHECK_EQ_INT(ct_shard_read_fields_frame(&s, 0, dctx, out), -1);
    CHECK_CONTAINS(ct_error_message(), "the fields of example 1 are not one JSON object");
    ct_shard_dctx_free(dctx);
    ct_shard_close(&s);
}

TEST(prompts, shards_are_version_2_and_other_kinds_stay_version_1) {
    CtShardSpec spec = {CT_SHARD_PROMPTS, 2, 1000, 0x1234, 64, 3, 0};
    const char *paths[2] = {ct_test_path("p.ctshard"), ct_test_path("s.ctshard")};
    CtShardWriter w;
    const uint32_t ids[2] = {1, 2};
    CHECK_EQ_INT(ct_shard_writer_open(&w, paths[0], &spec, 0), 0);
    CHECK_EQ_INT(ct_shard_writer_append_prompt(&w, ids, 2, "{}", 2), 0);
    CHECK_EQ_INT(ct_shard_writer_close(&w, NULL), 0);
    spec.kind = CT_SHARD_SFT;
    CHECK_EQ_INT(ct_shard_writer_open(&w, paths[1], &spec, 0), 0);
    CHECK_EQ_INT(ct_shard_writer_begin_document(&w), 0);
    CHECK_EQ_INT(ct_shard_writer_append(&w, ids, NULL, 2), 0);
    CHECK_EQ_INT(ct_shard_writer_close(&w, NULL), 0);
    for (int k = 0; k < 2; k++) {
        size_t size;
        unsigned char *b = (unsigned char *)ct_test_read(paths[k], &size);
        CHECK(b && size > 12);
        CHECK_EQ_INT(b[8], k == 0 ? 2 : 1);
        CHECK_EQ_INT(b[12], k == 0 ? 4 : 2);
        free(b);
    }
}

TEST(prompts, loader_order_is_seeded_and_resumes_exactly) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    char dir[1024];
    CHECK_MSG(build_numbered(&t, NULL, 30, "o", dir) == 0, "%s", ct_error_message());
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
    CtPromptLoaderOptions o;
    ct_prompt_loader_default_options(&o);
    o.batch = 4;  // 7 steps an epoch; 20 steps cross two epoch ends
    enum { STEPS = 20, SAVE_AT = 9 };
    uint64_t runs[3][STEPS * 4];
    const uint64_t seeds[3] = {5, 5, 6};
    CtLoaderState saved = {0};
    for (int r = 0; r < 3; r++) {
        o.seed = seeds[r];
        CtPromptLoader l;
        CHECK_EQ_INT(ct_prompt_loader_open(&l, &d, CT_SPLIT_TRAIN, &o), 0);
        CHECK_EQ_INT(l.steps_per_epoch, 7);
        for (int s = 0; s < STEPS; s++) {
            if (r == 0 && s == SAVE_AT) saved = ct_prompt_loader_state(&l);
            const CtPrompt *p;
            CHECK_EQ_INT(ct_prompt_loader_next(&l, &p), 0);
            for (int i = 0; i < 4; i++) {
                runs[r][s * 4 + i] = p[i].index;
                char want[32];  // each prompt comes with its own fields
                snprintf(want, sizeof want, "{\"answer\":\"%llu\"}", (unsigned long long)p[i].index);
                CHECK_STR_EQ(p[i].fields, want);
            }
        }
        ct_prompt_loader_close(&l);
    }
    CHECK(memcmp(runs[0], runs[1], sizeof runs[0]) == 0);
    CHECK(memcmp(runs[0], runs[2], sizeof runs[0]) != 0);
    // Within an epoch no prompt repeats; the next epoch's order is another.
    for (int a = 0; a < 28; a++)
        for (int b = a + 1; b < 28; b++) CHECK(runs[0][a] != runs[0][b]);
    CHECK(memcmp(runs[0], runs[0] + 28, 28 * sizeof(uint64_t)) != 0);
    // A fresh loader restored to the saved position serves what the first run served after it.
    o.seed = 999;  // the saved state's seed wins
    CtPromptLoader l;
    CHECK_EQ_INT(ct_prompt_loader_open(&l, &d, CT_SPLIT_TRAIN, &o), 0);
    CHECK_EQ_INT(ct_prompt_loader_restore(&l, &saved), 0);
    for (int s = SAVE_AT; s < STEPS; s++) {
        const CtPrompt *p;
        CHECK_EQ_INT(ct_prompt_loader_next(&l, &p), 0);
        for (int i = 0; i < 4; i++) CHECK_EQ_INT(p[i].index, runs[0][s * 4 + i]);
    }
    CtLoaderState bad = saved;
    bad.step = 8;
    CHECK_EQ_INT(ct_prompt_loader_restore(&l, &bad), -1);
    CHECK_CONTAINS(ct_error_message(), "past the end of an epoch of 7 steps");
    ct_prompt_loader_close(&l);
    ct_dataset_close(&d);
    ct_tokenizer_free(&t);
}

TEST(prompts, rank_slices_are_disjoint_and_make_up_the_global_batch) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    char dir[1024];
    CHECK_MSG(build_numbered(&t, NULL, 36, "r", dir) == 0, "%s", ct_error_message());
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
    enum { WORLD = 3, B = 2, STEPS = 6 };  // 36 prompts = 6 global batches of 6: one epoch
    CtPromptLoaderOptions o;
    ct_prompt_loader_default_options(&o);
    o.seed = 11;
    o.batch = WORLD * B;
    CtPromptLoader one;
    CHECK_EQ_INT(ct_prompt_loader_open(&one, &d, CT_SPLIT_TRAIN, &o), 0);
    CtPromptLoader ranks[WORLD];
    o.batch = B;
    o.world = WORLD;
    for (int r = 0; r < WORLD; r++) {
        o.rank = r;
        CHECK_EQ_INT(ct_prompt_loader_open(&ranks[r], &d, CT_SPLIT_TRAIN, &o), 0);
    }
    int count[36] = {0};
    for (int s = 0; s < STEPS; s++) {
        const CtPrompt *all;
        CHECK_EQ_INT(ct_prompt_loader_next(&one, &all), 0);
        for (int r = 0; r < WORLD; r++) {
            const CtPrompt *mine;
            CHECK_EQ_INT(ct_prompt_loader_next(&ranks[r], &mine), 0);
            for (int i = 0; i < B; i++) {
                CHECK_EQ_INT(mine[i].index, all[r * B + i].index);  // rank r: rows r·B … r·B+B-1
                CHECK(mine[i].n_ids == all[r * B + i].n_ids && mine[i].ids[0] == all[r * B + i].ids[0]);
                count[mine[i].index]++;
            }
        }
    }
    for (int i = 0; i < 36; i++) CHECK_MSG(count[i] == 1, "prompt %d served %d times in the epoch", i, count[i]);
    for (int r = 0; r < WORLD; r++) ct_prompt_loader_close(&ranks[r]);
    ct_prompt_loader_close(&one);
    // Too few prompts for one global batch, and the wrong kind of loader, are refused by name.
    o.batch = 13;
    o.rank = 0;
    CtPromptLoader l;
    CHECK_EQ_INT(ct_prompt_loader_open(&l, &d, CT_SPLIT_TRAIN, &o), -1);
    CHECK_CONTAINS(ct_error_message(), "has 36 prompts, fewer than one global batch (3 ranks x 13)");
    CtLoaderOptions lo;
    ct_loader_default_options(&lo);
    CtLoader rows;
    CHECK_EQ_INT(ct_loader_open(&rows, &d, CT_SPLIT_TRAIN, &lo), -1);
    CHECK_CONTAINS(ct_error_message(), "a prompts dataset holds prompts to answer");
    ct_dataset_close(&d);
    ct_tokenizer_free(&t);
}

TEST(prompts, long_prompts_keep_their_end) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    const char *input = ct_test_write("long.jsonl", "{\"prompt\": \"abcdefghij\"}\n{\"prompt\": \"xy\"}\n");
    CtShardJob job = prompts_job(&t, NULL);
    job.val_fraction = 0;
    char dir[1024];
    CHECK_EQ_INT(build(&job, "long", input, dir), 0);
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, dir), 0);
    CtPromptLoaderOptions o;
    ct_prompt_loader_default_options(&o);
    o.batch = 2;
    o.shuffle = 0;
    o.max_prompt_tokens = 4;
    CtPromptLoader l;
    CHECK_EQ_INT(ct_prompt_loader_open(&l, &d, CT_SPLIT_TRAIN, &o), 0);
    CHECK_EQ_INT(l.truncated, 1);
    const CtPrompt *p;
    CHECK_EQ_INT(ct_prompt_loader_next(&l, &p), 0);
    CHECK_EQ_INT(p[0].n_ids, 4);
    for (int i = 0; i < 4; i++) CHECK_EQ_INT(p[0].ids[i], "ghij"[i]);  // byte tokens
    CHECK_EQ_INT(p[1].n_ids, 2);
    ct_prompt_loader_close(&l);
    ct_dataset_close(&d);
    ct_tokenizer_free(&t);
}

TEST(prompts, output_is_the_same_for_any_thread_count) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    CtChatTemplate tmpl;
    CHECK_EQ_INT(ct_chat_template_load(&tmpl, "chatml"), 0);
    char dirs[2][1024];
    for (int k = 0; k < 2; k++) {
        size_t cap = 200 * 80, at = 0;
        char *text = ct_alloc(cap);
        for (int i = 0; i < 200; i++)
            at += (size_t)snprintf(text + at, cap - at, "{\"prompt\": \"the %d\", \"answer\": %d, \"k\": [%d]}\n", i, i * 7, i % 3);
        const char *input = ct_test_write("th.jsonl", text);
        ct_free(text);
        CtShardJob job = prompts_job(&t, &tmpl);
        job.threads = k == 0 ? 1 : 3;
        job.val_fraction = 0.1;
        job.shard_tokens = 700;
        char name[16];
        snprintf(name, sizeof name, "th%d", k);
        CHECK_EQ_INT(build(&job, name, input, dirs[k]), 0);
    }
    DIR *dir = opendir(dirs[0]);
    CHECK(dir);
    int files = 0, val = 0;
    for (struct dirent *entry; (entry = readdir(dir));) {
        if (entry->d_name[0] == '.') continue;
        char a[1400], b[1400];
        snprintf(a, sizeof a, "%s/%s", dirs[0], entry->d_name);
        snprintf(b, sizeof b, "%s/%s", dirs[1], entry->d_name);
        size_t na, nb;
        char *x = ct_test_read(a, &na), *y = ct_test_read(b, &nb);
        CHECK_MSG(x && y && na == nb && memcmp(x, y, na) == 0, "%s differs", entry->d_name);
        free(x);
        free(y);
        files++;
        val += strncmp(entry->d_name, "val-", 4) == 0;
    }
    closedir(dir);
    CHECK(files >= 4 && val >= 1);  // the manifest, several train shards, a val shard
    ct_chat_template_free(&tmpl);
    ct_tokenizer_free(&t);
}

// ctrain synth instructions --task arithmetic writes {"prompt", "response", "answer"}: sharded
// as prompts directly, each prompt reads back rendered with the chat template, and its other
// two members as its fields, as the line spelled them.
TEST(prompts, arithmetic_task_shards_as_prompts_end_to_end) {
    const char *bin = ct_test_bin(), *data = ct_test_shared_data();
    const char *jsonl = ct_test_path("arith.jsonl"), *out = ct_test_path("arith");
    char cmd[4096], *log = NULL;
    snprintf(cmd, sizeof cmd, "%s synth instructions --task arithmetic --examples 300 --seed 3 --out %s", bin, jsonl);
    CHECK_EQ_INT(ct_test_run(cmd, NULL), 0);
    snprintf(cmd, sizeof cmd, "%s shard --tokenizer %s/tokenizers/gpt2 --input %s --out %s --format prompts --threads 2",
             bin, data, jsonl, out);
    int rc = ct_test_run(cmd, &log);
    CHECK_MSG(rc == 0, "%s", log);
    free(log);
    snprintf(cmd, sizeof cmd, "%s shard --info %s --verify", bin, out);
    CHECK_EQ_INT(ct_test_run(cmd, &log), 0);
    CHECK_CONTAINS(log, "kind prompts");
    CHECK_CONTAINS(log, "every checksum, token and fields object good");
    free(log);
    // What the lines said, in file order.
    size_t size;
    char *text = ct_test_read(jsonl, &size);
    CHECK(text);
    char *lines[300];
    int n = 0;
    for (char *line = strtok(text, "\n"); line && n < 300; line = strtok(NULL, "\n")) lines[n++] = line;
    CHECK_EQ_INT(n, 300);
    char tok_path[1200];
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", out);
    CtTokenizer tok;
    CHECK_MSG(ct_tokenizer_load(&tok, tok_path, NULL) == 0, "%s", ct_error_message());
    CtChatTemplate tmpl;
    CHECK_EQ_INT(ct_chat_template_load(&tmpl, "chatml"), 0);
    CtEncoder *enc = ct_encoder_new(&tok);
    CtDataset d;
    CHECK_MSG(ct_dataset_open(&d, out) == 0, "%s", ct_error_message());
    CHECK_EQ_INT(ct_dataset_check_tokenizer(&d, &tok), 0);
    // The split draw is the sharder's: walk the lines, matching each to the next prompt of its split.
    CtPromptLoader l[2];
    uint64_t left[2];
    for (int s = 0; s < 2; s++) {
        CHECK_EQ_INT(open_in_order(&l[s], &d, (CtSplit)s), 0);
        left[s] = l[s].n_prompts;
    }
    CHECK_EQ_INT(left[0] + left[1], 300);
    CHECK(left[1] >= 30);  // a tenth held out for validation
    const CtPrompt *next[2] = {NULL, NULL};
    for (int s = 0; s < 2; s++) CHECK_EQ_INT(ct_prompt_loader_next(&l[s], &next[s]), 0);
    for (int i = 0; i < n; i++) {
        cJSON *root = cJSON_Parse(lines[i]);
        char want[256];
        snprintf(want, sizeof want, "{\"response\":\"%s\",\"answer\":\"%s\"}",
                 cJSON_GetObjectItem(root, "response")->valuestring, cJSON_GetObjectItem(root, "answer")->valuestring);
        CtTaskPrompt tp;
        CHECK_EQ_INT(ct_parse_task_prompt(lines[i], strlen(lines[i]), &tp), 0);
        CtIds ids = {0};
        CHECK_EQ_INT(ct_encode_prompt(&tmpl, &tok, enc, &tp, "?", &ids), 0);
        int s = -1;
        for (int k = 0; k < 2; k++)
            if (left[k] > 0 && strcmp(next[k]->fields, want) == 0 && same_ids(next[k]->ids, next[k]->n_ids, &ids)) s = k;
        CHECK_MSG(s >= 0, "line %d (%s) is neither split's next prompt", i + 1, lines[i]);
        CHECK_STR_EQ(tp.answer, cJSON_GetObjectItem(root, "answer")->valuestring);
        if (--left[s] > 0) CHECK_EQ_INT(ct_prompt_loader_next(&l[s], &next[s]), 0);
        ct_ids_free(&ids);
        ct_task_prompt_free(&tp);
        cJSON_Delete(root);
    }
    // A damaged byte is found by --info --verify, with the file and the place.
    const CtShard *sh = &d.split[CT_SPLIT_TRAIN].shards[0];
    const uint64_t at = sh->field_frame_offsets[0] + sh->field_frame_sizes[0] / 3;
    char shard_path[1200];
    snprintf(shard_path, sizeof shard_path, "%s", sh->path);
    for (int s = 0; s < 2; s++) ct_prompt_loader_close(&l[s]);
    ct_dataset_close(&d);
    char *bytes = ct_test_read(shard_path, &size);
    bytes[at] ^= 1;
    FILE *f = fopen(shard_path, "wb");
    CHECK(f && fwrite(bytes, 1, size, f) == size);
    fclose(f);
    free(bytes);
    snprintf(cmd, sizeof cmd, "%s shard --info %s --verify", bin, out);
    CHECK_EQ_INT(ct_test_run(cmd, &log), 1);
    CHECK_CONTAINS(log, "train-00000.ctshard: fields frame 0 (bytes");
    free(log);
    ct_encoder_free(enc);
    ct_chat_template_free(&tmpl);
    ct_tokenizer_free(&tok);
    free(text);
}

TEST(prompts, a_manifest_that_calls_prompts_version_1_is_refused_as_damaged) {
    CtTokenizer t;
    tiny_tokenizer(&t);
    char dir[1024];
    CHECK_MSG(build_numbered(&t, NULL, 5, "m", dir) == 0, "%s", ct_error_message());
    char path[1100];
    snprintf(path, sizeof path, "%s/dataset.json", dir);
    size_t size;
    char *text = ct_test_read(path, &size);
    CHECK(text);
    char *v = strstr(text, "\"version\":\t2");
    CHECK_MSG(v, "%s", text);
    v[strlen("\"version\":\t")] = '1';
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(text, 1, size, f) == size);
    fclose(f);
    free(text);
    CtDataset d;
    CHECK_EQ_INT(ct_dataset_open(&d, dir), -1);
    CHECK_CONTAINS(ct_error_message(), "kind 'prompts' in a version 1 manifest; it came with version 2");
    ct_tokenizer_free(&t);
}
