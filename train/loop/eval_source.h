// The token stream `ctrain eval` evaluates (train/loop/eval_loss.h cuts it into windows):
//   text   the file's text encoded as the tokenizer encodes one text: its post-processor's
//          tokens around it (a BOS for tokenizers that add one, as transformers' tokenizer(text)
//          does; none for GPT-2's), nothing else
//   jsonl  each line's "text" encoded the same way and followed by the end-of-text token, in
//          file order (blank lines and empty texts skipped), as `ctrain shard` writes documents
//   data   a split of a text dataset (`ctrain shard`'s folder), read from its shards as they are
#pragma once
#include <stdint.h>

#include "data/tokenizer/bpe.h"
#include "data/shard/dataset.h"
#include "data/tokenizer/tokenizer_post.h"

typedef struct {
    const CtTokenizer *tokenizer;
    CtPostProcessor post;
    int allow_special;  // encode special-token strings in the text as their ids
    int32_t eot;        // jsonl: the token after each document
    int threads;
} CtEvalEncoding;

typedef struct {
    CtIds ids;             // text, jsonl: the whole stream
    CtDataset data;        // data
    int have_data;
    CtSplit split;
    void *dctx;
    uint64_t n_tokens;     // the stream's length
    uint64_t documents;
} CtEvalSource;

int ct_eval_source_text(CtEvalSource *s, const char *path, const CtEvalEncoding *enc);
int ct_eval_source_jsonl(CtEvalSource *s, const char *path, const CtEvalEncoding *enc);
// split: "train", "val", or NULL for the validation split when it holds at least one window of
// T tokens, else the training split (logged). A dataset of sft or dpo examples is refused.
int ct_eval_source_data(CtEvalSource *s, const char *dir, const char *split, int T);
// A CtEvalReadFn (train/loop/eval_loss.h) over the source.
int ct_eval_source_read(void *source, uint64_t first, uint64_t n, int32_t *tokens);
void ct_eval_source_close(CtEvalSource *s);
