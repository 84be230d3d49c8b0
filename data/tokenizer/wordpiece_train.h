// Learning a WordPiece vocabulary from text, as Hugging Face's WordPieceTrainer does: the text
// is normalized and split into words by BERT's rules (data/tokenizer/wordpiece_rules.h); every
// word is a sequence of characters, the first as itself and the others with the continuing
// prefix ("h", "##e", "##l"...); BPE merges over these (the most frequent adjacent pair first,
// the right part's "##" dropped when joined: "h" + "##e" = "he", "##l" + "##o" = "##lo"); the
// vocabulary is the special tokens (ids 0..), the characters of both kinds, then the merged
// tokens. The merge order is discarded: WordPiece encodes by longest match.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer/bpe.h"

typedef struct {
    int32_t vocab_size;     // including the special tokens and the characters
    const char **specials;  // given ids 0, 1, ...; must hold the unk token ([UNK])
    int n_specials;
    const char *unk;        // which special is the unk token
    int lowercase;          // bert-base-uncased's normalizer (lowercase, accents stripped), else -cased's
    int progress;
} CtWordPieceTrainOptions;

typedef struct CtWordPieceTrainer CtWordPieceTrainer;

CtWordPieceTrainer *ct_wordpiece_trainer_new(const CtWordPieceTrainOptions *options);
void ct_wordpiece_trainer_free(CtWordPieceTrainer *trainer);
// Counts the words of one document.
void ct_wordpiece_trainer_add_document(CtWordPieceTrainer *trainer, const uint8_t *text, size_t len);
// Merges and builds a finished WordPiece tokenizer: BERT's pipeline, and when [CLS] and [SEP]
// are among the specials, BERT's post-processor ([CLS] A [SEP] / [CLS] A [SEP] B [SEP]).
// 0, or -1 + error.
int ct_wordpiece_trainer_train(CtWordPieceTrainer *trainer, CtTokenizer *out);
size_t ct_wordpiece_trainer_distinct_words(const CtWordPieceTrainer *trainer);
