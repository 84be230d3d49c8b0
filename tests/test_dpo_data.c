// DPO pairs as TRL 1.x's DPOTrainer tokenizes them, with GPT-2's tokenizer: plain strings
// tokenized whole (prompt, prompt+chosen, prompt+rejected), the completion from their common
// prefix, the end of text appended once; and `ctrain shard` leaves the vocabulary of plain
// pairs alone (no chat template).
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/shard/dataset.h"
#include "data/examples/examples.h"
#include "data/tokenizer/tokenizer_files.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "tests/test.h"

static int load_gpt2(CtTokenizer *t) {
    const char *shared = ct_test_shared_data();
    if (!shared) return -1;
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizers/gpt2", shared);
    return ct_tokenizer_load(t, path, NULL);
}

static void encode_text(CtEncoder *enc, const char *text, CtIds *out) {
    out->len = 0;
    ct_encode(enc, (const uint8_t *)text, strlen(text), 0, out);
}

static int same_ids(const CtIds *a, const CtIds *b) {
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len * sizeof(int32_t)) == 0);
}

// The pair's three token lists from ct_encode_plain_preference, and how many prompt tokens it dropped.
typedef struct {
    CtIds prompt, chosen, rejected;
    size_t dropped;
} Tokenized;

static Tokenized tokenize(CtEncoder *enc, const CtTokenizer *t, const char *line) {
    Tokenized out;
    memset(&out, 0, sizeof out);
    CtPreference p;
    out.dropped = (size_t)-1;  // unless the line is a plain pair (the test's lines are)
    if (ct_parse_dpo_example(line, strlen(line), &p) != 0) return out;
    if (!p.conversational)
        out.dropped = ct_encode_plain_preference(enc, t, ct_tokenizer_special_id(t, "<|endoftext|>"), &p, &out.prompt,
                                                 &out.chosen, &out.rejected);
    ct_preference_free(&p);
    return out;
}

static void tokenized_free(Tokenized *x) {
    ct_ids_free(&x->prompt);
    ct_ids_free(&x->chosen);
    ct_ids_free(&x->rejected);
}

TEST(dpo, plain_pair_whose_tokens_merge_across_the_prompt_boundary_is_cut_where_they_part) {
    CtTokenizer t;
    if (!ct_test_shared_data()) return;
    CHECK_MSG(load_gpt2(&t) == 0, "%s", ct_error_message());
    CtEncoder *enc = ct_encoder_new(&t);
    const int32_t eos = ct_tokenizer_special_id(&t, "<|endoftext|>");
    CtIds want = {0}, got = {0};
    // "Hello wor" + "ld": GPT-2 reads " world" as one token; alone the prompt is "Hello", " wor".
    Tokenized x = tokenize(enc, &t, "{\"prompt\": \"Hello wor\", \"chosen\": \"ld\", \"rejected\": \"ks\"}");
    CHECK_EQ_INT((int)x.dropped, 1);
    encode_text(enc, "Hello", &want);
    CHECK_MSG(same_ids(&x.prompt, &want), "the prompt is the common prefix: %zu tokens", x.prompt.len);
    encode_text(enc, " world", &want);
    ct_ids_push(&want, eos);
    CHECK_MSG(same_ids(&x.chosen, &want), "chosen: %zu tokens, the first %d", x.chosen.len,
              x.chosen.len ? x.chosen.data[0] : -1);
    encode_text(enc, " works", &want);
    ct_ids_push(&want, eos);
    CHECK(same_ids(&x.rejected, &want));
    // prompt + completion is the whole text tokenized, as TRL's tokenizer call sees it
    encode_text(enc, "Hello world", &want);
    ct_ids_push(&want, eos);
    for (size_t i = 0; i < x.prompt.len; i++) ct_ids_push(&got, x.prompt.data[i]);
    for (size_t i = 0; i < x.chosen.len; i++) ct_ids_push(&got, x.chosen.data[i]);
    CHECK(same_ids(&got, &want));
    tokenized_free(&x);

    // A prompt that ends on a token boundary keeps all its tokens; a completion that already ends
    // with the end of text gets no second one (TRL's endswith check).
    x = tokenize(enc, &t,
                 "{\"prompt\": \"Question: 2+2?\\nAnswer:\", \"chosen\": \" 4<|endoftext|>\", \"rejected\": \" 5\"}");
    CHECK_EQ_INT((int)x.dropped, 0);
    encode_text(enc, "Question: 2+2?\nAnswer:", &want);
    CHECK(same_ids(&x.prompt, &want));
    encode_text(enc, " 4", &want);
    ct_ids_push(&want, eos);
    CHECK(same_ids(&x.chosen, &want));
    encode_text(enc, " 5", &want);
    ct_ids_push(&want, eos);
    CHECK(same_ids(&x.rejected, &want));
    tokenized_free(&x);

    // A trailing space merges into the completion's first word (" world"): not a prefix either.
    x = tokenize(enc, &t, "{\"prompt\": \"Say hello \", \"chosen\": \"world\", \"rejected\": \"there\"}");
    CHECK_EQ_INT((int)x.dropped, 1);
    encode_text(enc, " world", &want);
    ct_ids_push(&want, eos);
    CHECK(same_ids(&x.chosen, &want));
    tokenized_free(&x);
    ct_ids_free(&want);
    ct_ids_free(&got);
    ct_encoder_free(enc);
    ct_tokenizer_free(&t);
}

// The tokens of example e of a dataset's train split: prompt, chosen, rejected.
static int32_t *example_tokens(const CtDataset *d, uint64_t e, uint32_t len[3]) {
    const CtShard *sh = &d->split[CT_SPLIT_TRAIN].shards[0];
    memcpy(len, sh->dpo_lengths + 3 * e, 3 * sizeof(uint32_t));
    uint64_t n = (uint64_t)len[0] + len[1] + len[2];
    int32_t *tok = ct_alloc(sizeof(int32_t) * (n + 1));
    uint8_t *mask = ct_alloc(n + 1);
    void *dctx = ct_shard_dctx_new();
    int rc = ct_dataset_read_range(d, CT_SPLIT_TRAIN, d->split[CT_SPLIT_TRAIN].doc_starts[e], n, dctx, tok, mask);
    ct_shard_dctx_free(dctx);
    ct_free(mask);
    if (rc == 0) return tok;
    ct_free(tok);
    return NULL;
}

TEST(dpo, shard_keeps_the_vocabulary_and_its_ids_for_plain_string_pairs) {
    CtTokenizer t;
    if (!ct_test_shared_data()) return;
    CHECK_MSG(load_gpt2(&t) == 0, "%s", ct_error_message());
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir(), *shared = ct_test_shared_data();
    ct_test_write("plain.jsonl", "{\"prompt\": \"Hello wor\", \"chosen\": \"ld\", \"rejected\": \"ks\"}\n"
                                 "{\"prompt\": \"The sky is\", \"chosen\": \" blue\", \"rejected\": \" green\"}\n");
    ct_test_write("chat.jsonl", "{\"prompt\": [{\"role\": \"user\", \"content\": \"The sky is\"}], \"chosen\": [{\"role\": "
                                "\"assistant\", \"content\": \"blue\"}], \"rejected\": [{\"role\": \"assistant\", "
                                "\"content\": \"green\"}]}\n");
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' shard --tokenizer '%s/tokenizers/gpt2' --input plain.jsonl --format dpo "
             "--val-fraction 0 --out plain", dir, bin, shared);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_MSG(!strstr(out, "added"), "%s", out);  // no template, no special tokens added
    CHECK_CONTAINS(out, "the tokenized prompt is not a prefix");  // TRL's warning, for the first pair
    CHECK_CONTAINS(out, "plain.jsonl:1");
    free(out);
    CtDataset d;
    CHECK_MSG(ct_dataset_open(&d, ct_test_path("plain")) == 0, "%s", ct_error_message());
    CHECK_EQ_INT((int)d.vocab_size, 50257);  // GPT-2's, not 50259
    CHECK_EQ_INT((int)d.eot_token, 50256);
    uint32_t len[3];
    int32_t *tok = example_tokens(&d, 1, len);
    CHECK_MSG(tok != NULL, "%s", ct_error_message());
    CtEncoder *enc = ct_encoder_new(&t);
    CtIds want = {0};
    encode_text(enc, "The sky is blue", &want);  // GPT-2's own ids, then the end of text
    ct_ids_push(&want, 50256);
    CHECK_EQ_INT((int)(len[0] + len[1]), (int)want.len);
    CHECK(len[0] + len[1] == want.len && memcmp(tok, want.data, want.len * sizeof(int32_t)) == 0);
    ct_free(tok);
    ct_dataset_close(&d);
    // Message lists still go through the chat template, which adds its tokens.
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' shard --tokenizer '%s/tokenizers/gpt2' --input chat.jsonl --format dpo "
             "--val-fraction 0 --out chat", dir, bin, shared);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "added 2 special tokens");
    free(out);
    CHECK_MSG(ct_dataset_open(&d, ct_test_path("chat")) == 0, "%s", ct_error_message());
    CHECK_EQ_INT((int)d.vocab_size, 50259);
    ct_dataset_close(&d);
    ct_ids_free(&want);
    ct_encoder_free(enc);
    ct_tokenizer_free(&t);
}
