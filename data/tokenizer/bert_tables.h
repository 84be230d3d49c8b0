// What Hugging Face's BertNormalizer and BertPreTokenizer do to each code point, read off the
// `tokenizers` library by scripts/gen_bert_tables.py (data/tokenizer/bert_tables.c): a flag
// table over U+0000..U+10FFFF and the strip_accents / lowercase mappings of the code points
// they change.
#pragma once
#include <stddef.h>
#include <stdint.h>

enum {
    CT_BERT_DROP = 1,         // clean_text removes it (NUL, U+FFFD, controls except \t \n \r)
    CT_BERT_SPACE = 2,        // clean_text makes it " " (whitespace)
    CT_BERT_CHINESE = 4,      // handle_chinese_chars puts a space on each side (CJK ideographs)
    CT_BERT_PUNCT = 8,        // BertPreTokenizer makes it a piece of its own
    CT_BERT_WHITESPACE = 16,  // BertPreTokenizer splits at it and drops it
    CT_BERT_LOWER = 32,       // lowercase changes it (ct_bert_lower)
    CT_BERT_STRIP = 64,       // strip_accents changes it (ct_bert_strip: NFD without Mn marks)
};

typedef struct {
    uint32_t cp, offset, len;  // the code point's mapping: ct_bert_map_pool[offset .. offset + len)
} CtBertMapping;

extern const char ct_bert_tables_source[];
extern const uint16_t ct_bert_stage1[0x110000 >> 7];
extern const uint8_t ct_bert_stage2[][128];
extern const uint32_t ct_bert_map_pool[];
extern const CtBertMapping ct_bert_strip[], ct_bert_lower[];
extern const size_t ct_bert_strip_count, ct_bert_lower_count;

static inline unsigned ct_bert_flags(uint32_t cp) {
    if (cp >= 0x110000) return 0;
    return ct_bert_stage2[ct_bert_stage1[cp >> 7]][cp & 127];
}
