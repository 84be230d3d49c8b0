// Sequence-classification examples (ctrain classify): JSON lines {"text": ..., "label": ...} or
// {"text_a": ..., "text_b": ..., "label": ...} (.jsonl, .jsonl.zst), each encoded as transformers'
// tokenizer(text_a, text_b, truncation=True, max_length=seq_len) encodes it: the post-processor's
// framing ([CLS] A [SEP] B [SEP] with type ids 0…0 1…1 for BERT), and when too long the texts
// lose tokens from their ends as HF tokenizers' "longest_first" cuts them (the specials stay): the
// shorter text keeps its n1 tokens and the longer gets the rest of the budget m, or, when even that
// does not fit, the first keeps m/2 and the second m/2 + m%2.
//
// Labels as transformers' run_glue.py maps a JSON dataset's: the sorted distinct labels of the
// training file get ids 0, 1, … in that order (numbers sorted as numbers, strings byte by byte), or
// a declared list's order; a label a later file (validation, predictions) has outside the list is
// an error. A label is a JSON number (an integer) or a string; label names never hold a comma (the
// list travels as classify.labels "a,b,c").
#pragma once
#include <stdint.h>

#include "data/tokenizer/bpe.h"

typedef struct {
    char **names;  // [n] in id order
    int n;
    int numeric;   // 1: every label was a number
} CtLabelSet;

typedef struct {
    int32_t *ids, *types;  // every example's framed tokens and token types, back to back
    size_t *start;         // [n + 1]: example i is ids[start[i] .. start[i+1])
    int *label;            // [n] ids in the label set; -1 for an example without a label (predictions)
    int n;
    uint64_t truncated;    // examples that lost tokens to seq_len
    int pairs;             // 1: the examples are text pairs
} CtClassifySet;

// The label set from a declared list "a,b,c" (names unique, not empty). 0, or -1 + error.
int ct_label_set_parse(CtLabelSet *ls, const char *list);
// "a,b,c" (ct_alloc'd).
char *ct_label_set_join(const CtLabelSet *ls);
void ct_label_set_free(CtLabelSet *ls);

// Reads and encodes path. With labels->n == 0 and collect_labels, the label set is the file's
// sorted distinct labels; otherwise each label must be in *labels. need_labels 0 (predictions):
// lines without "label" are taken (label -1). 0, or -1 + error naming the file and line.
int ct_classify_read(const char *path, const CtTokenizer *tok, int seq_len, CtLabelSet *labels, int collect_labels,
                     int need_labels, CtClassifySet *out);
void ct_classify_set_free(CtClassifySet *s);
static inline int ct_classify_len(const CtClassifySet *s, int i) { return (int)(s->start[i + 1] - s->start[i]); }
