// Classification examples (data/examples/classify_examples.h) on a hand-written BERT tokenizer:
// pairs framed [CLS] A [SEP] B [SEP] with type ids, truncation longest_first (the longer text loses
// tokens as HF tokenizers' LongestFirst does, the specials stay), labels sorted as run_glue.py
// sorts them (integers as numbers) or in a declared order, and the errors a file can cause.
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/examples/classify_examples.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "tests/test.h"

// [PAD] 0 [UNK] 1 [CLS] 2 [SEP] 3, words a..h 4..11 (one token each).
static int bert(CtTokenizer *t) {
    const char *json =
        "{\"added_tokens\": [{\"id\": 0, \"content\": \"[PAD]\", \"special\": true}, "
        "{\"id\": 1, \"content\": \"[UNK]\", \"special\": true}, {\"id\": 2, \"content\": \"[CLS]\", \"special\": true}, "
        "{\"id\": 3, \"content\": \"[SEP]\", \"special\": true}], "
        "\"normalizer\": {\"type\": \"BertNormalizer\", \"lowercase\": true, \"strip_accents\": null}, "
        "\"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}, "
        "\"post_processor\": {\"type\": \"BertProcessing\", \"sep\": [\"[SEP]\", 3], \"cls\": [\"[CLS]\", 2]}, "
        "\"decoder\": {\"type\": \"WordPiece\", \"prefix\": \"##\", \"cleanup\": true}, "
        "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"[PAD]\": 0, \"[UNK]\": 1, "
        "\"[CLS]\": 2, \"[SEP]\": 3, \"a\": 4, \"b\": 5, \"c\": 6, \"d\": 7, \"e\": 8, \"f\": 9, \"g\": 10, \"h\": 11}}}";
    return ct_tokenizer_parse_hf(t, json, strlen(json), "bert.json", NULL);
}

static const char *row(const CtClassifySet *s, int i, int types) {
    static char buf[256];
    size_t n = 0;
    buf[0] = 0;
    for (size_t k = s->start[i]; k < s->start[i + 1]; k++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%d", k > s->start[i] ? " " : "", types ? s->types[k] : s->ids[k]);
    return buf;
}

TEST(classify, pairs_are_framed_with_type_ids_and_truncated_longest_first) {
    CtTokenizer t;
    CHECK(bert(&t) == 0);
    ct_test_write("p.jsonl", "{\"text_a\": \"a b c\", \"text_b\": \"d e\", \"label\": 1}\n"
                             "{\"text_a\": \"a b c d e f\", \"text_b\": \"g h\", \"label\": 0}\n"
                             "{\"text_a\": \"a b c\", \"text_b\": \"d e f\", \"label\": 1}\n"
                             "\n"
                             "{\"text\": \"a b c d e f g h\", \"label\": 0}\n");
    CtLabelSet ls = {0};
    CtClassifySet s;
    CHECK(ct_classify_read(ct_test_path("p.jsonl"), &t, 8, &ls, 1, 1, &s) == 0);
    CHECK_EQ_INT(s.n, 4);
    CHECK_EQ_INT(s.pairs, 1);
    CHECK_STR_EQ(row(&s, 0, 0), "2 4 5 6 3 7 8 3");  // 8 tokens: fits
    CHECK_STR_EQ(row(&s, 0, 1), "0 0 0 0 0 1 1 1");
    CHECK_STR_EQ(row(&s, 1, 0), "2 4 5 6 3 10 11 3");  // a loses 3 (the longer), b keeps 2
    CHECK_STR_EQ(row(&s, 2, 0), "2 4 5 3 7 8 9 3");    // 3 + 3 into 5: the first 5/2, the second 5/2 + 1
    CHECK_STR_EQ(row(&s, 3, 0), "2 4 5 6 7 8 9 3");    // a single text keeps its first 6
    CHECK_EQ_INT((int)s.truncated, 3);
    CHECK_EQ_INT(ls.n, 2);
    CHECK_STR_EQ(ls.names[0], "0");
    CHECK_EQ_INT(s.label[0], 1);
    CHECK_EQ_INT(s.label[1], 0);
    ct_classify_set_free(&s);
    // 5 + 5 into 7: the first 3, the second 4 (the ids HF tokenizers 0.23 gives these lines, checked by hand)
    ct_test_write("q.jsonl", "{\"text_a\": \"a b c d e\", \"text_b\": \"f g h a b\", \"label\": 1}\n");
    CHECK(ct_classify_read(ct_test_path("q.jsonl"), &t, 10, &ls, 0, 1, &s) == 0);
    CHECK_STR_EQ(row(&s, 0, 0), "2 4 5 6 3 9 10 11 4 3");
    ct_classify_set_free(&s);
    ct_label_set_free(&ls);
    ct_tokenizer_free(&t);
}

TEST(classify, labels_sort_as_numbers_or_follow_a_declared_list) {
    CtTokenizer t;
    CHECK(bert(&t) == 0);
    ct_test_write("n.jsonl", "{\"text\": \"a\", \"label\": 10}\n{\"text\": \"b\", \"label\": 2}\n{\"text\": \"c\", \"label\": 10}\n");
    CtLabelSet ls = {0};
    CtClassifySet s;
    CHECK(ct_classify_read(ct_test_path("n.jsonl"), &t, 8, &ls, 1, 1, &s) == 0);
    char *list = ct_label_set_join(&ls);
    CHECK_STR_EQ(list, "2,10");
    CHECK(s.label[0] == 1 && s.label[1] == 0 && s.label[2] == 1);
    ct_free(list);
    ct_classify_set_free(&s);
    ct_label_set_free(&ls);
    ct_test_write("s.jsonl", "{\"text\": \"a\", \"label\": \"pos\"}\n{\"text\": \"b\", \"label\": \"neg\"}\n");
    CHECK(ct_label_set_parse(&ls, "pos,neg,neutral") == 0);
    CHECK(ct_classify_read(ct_test_path("s.jsonl"), &t, 8, &ls, 1, 1, &s) == 0);
    CHECK(ls.n == 3 && s.label[0] == 0 && s.label[1] == 1);
    ct_classify_set_free(&s);
    ct_label_set_free(&ls);
    CHECK(ct_label_set_parse(&ls, "a,,b") != 0);
    CHECK_CONTAINS(ct_error_message(), "an empty label name");
    CHECK(ct_label_set_parse(&ls, "a,b,a") != 0);
    CHECK_CONTAINS(ct_error_message(), "label a twice");
    ct_tokenizer_free(&t);
}

TEST(classify, a_bad_line_is_an_error_naming_file_and_line) {
    CtTokenizer t;
    CHECK(bert(&t) == 0);
    CtLabelSet ls = {0};
    CtClassifySet s;
    ct_test_write("a.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"txt\": \"b\", \"label\": 1}\n");
    CHECK(ct_classify_read(ct_test_path("a.jsonl"), &t, 8, &ls, 1, 1, &s) != 0);
    CHECK_CONTAINS(ct_error_message(), "a.jsonl: line 2: no \"text\" or \"text_a\" string");
    ct_test_write("b.jsonl", "{\"text\": \"a\", \"label\": 1.5}\n");
    CHECK(ct_classify_read(ct_test_path("b.jsonl"), &t, 8, &ls, 1, 1, &s) != 0);
    CHECK_CONTAINS(ct_error_message(), "b.jsonl: line 1: \"label\" is not an integer or a short string");
    ct_test_write("c.jsonl", "{\"text\": \"a\"}\n");
    CHECK(ct_classify_read(ct_test_path("c.jsonl"), &t, 8, &ls, 1, 1, &s) != 0);
    CHECK_CONTAINS(ct_error_message(), "c.jsonl: line 1: no \"label\"");
    CHECK(ct_classify_read(ct_test_path("c.jsonl"), &t, 8, &ls, 0, 0, &s) == 0);  // predictions need none
    CHECK_EQ_INT(s.label[0], -1);
    ct_classify_set_free(&s);
    ct_test_write("d.jsonl", "{\"text\": \"a\", \"label\": 1\n");
    CHECK(ct_classify_read(ct_test_path("d.jsonl"), &t, 8, &ls, 1, 1, &s) != 0);
    CHECK_CONTAINS(ct_error_message(), "d.jsonl: line 1: ");
    ct_tokenizer_free(&t);
}
