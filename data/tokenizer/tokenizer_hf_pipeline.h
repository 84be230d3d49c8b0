// The parts of a Hugging Face tokenizer.json around the BPE model: normalizer, pre_tokenizer,
// decoder and the model's byte_fallback / unk_token / fuse_unk, read into what ctrain
// reproduces exactly, or an error naming what it cannot:
//   byte-level   a ByteLevel pre-tokenizer (use_regex: the gpt2 pattern), or a Split on one of
//                the supported regexes followed by ByteLevel(use_regex=false); normalizer null
//                or NFC (Qwen2)
//   SentencePiece-style (no ByteLevel anywhere): normalizer Prepend("▁") and/or
//                Replace(" ", "▁") (and NFC; alone or in a Sequence), pre-tokenizer null, Metaspace
//                (replacement "▁", prepend_scheme first/always/never, split), or a Split on " "
//                after spaces were replaced (which then splits nothing); decoder Replace("▁",
//                " "), ByteFallback, Fuse, Strip(" ", 1, 0), Metaspace, in a Sequence or alone
#pragma once
#include "data/tokenizer/bpe.h"

struct cJSON;

typedef struct {
    CtUnits units;
    int nfc;            // normalizer NFC
    CtPattern pattern;  // byte-level
    CtSpmRules spm;     // SentencePiece-style (unk_id and byte_ids are resolved later)
    char unk_token[64]; // model.unk_token, "" when none
} CtHfPipeline;

// root: the tokenizer.json object. pattern_name (may be NULL) overrides a byte-level pattern.
// 0, or -1 + error (without the file name).
int ct_hf_read_pipeline(const struct cJSON *root, const char *pattern_name, CtHfPipeline *out);

// The same parts as JSON, for writing a tokenizer.json (added to root).
void ct_hf_write_pipeline(struct cJSON *root, const CtTokenizer *t);
