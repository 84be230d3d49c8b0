// Masking for the masked-language-model objective (BERT; transformers'
// DataCollatorForLanguageModeling): of each sequence's tokens, each one that may be selected is
// selected with probability mlm_probability; a selected token becomes the mask token with
// probability mask_replace_prob, a random token with random_replace_prob, and stays itself
// otherwise (BERT: 15%, then 80% / 10% / 10%). Special tokens ([CLS], [SEP], [PAD], <s>, </s>,
// <|endoftext|>, the mask token itself: the tokenizer's specials) and padding are never selected.
// The model is trained to give back the original token at every selected position, and only
// there.
//
// Whole-word masking: the draw is made for the first token of each word and the word's other
// tokens follow it (transformers 5's whole_word_mask; Google's BERT WWM). A word is a token and
// the tokens that continue it: WordPiece's "##" tokens; for byte-level BPE (and SentencePiece)
// the tokens up to the next one that begins with a space (GPT-2's "Ġ", SentencePiece's "▁") or
// follows one that ends with whitespace (a newline). Each selected token then gets its own
// mask / random / keep draw, as Google's BERT does (transformers 5 masks whole words always with
// the mask token: mask_replace_prob 1, random_replace_prob 0 give that).
//
// A row's draws are a pure function of a 64-bit row seed (ct_mlm_row_seed: the run's seed, the
// step or the validation batch, and the row's place among the step's rows: micro-batch a, rank r
// and row i of B give a·world·B + r·B + i), so a resumed run masks as the uninterrupted one did,
// every data-parallel rank masks its own rows, and N ranks with batch B, or one rank
// accumulating N micro-batches of B, mask what one rank with batch N·B masks.
#pragma once
#include <stdint.h>

#include "data/tokenizer/bpe.h"

typedef struct {
    double mlm_probability;      // a token (whole-word: a word) is selected with this probability
    double mask_replace_prob;    // a selected token becomes the mask token
    double random_replace_prob;  // ... or a random token of random_ids; else it stays itself
    int whole_word_mask;
} CtMlmRates;

typedef struct {
    CtMlmRates rates;
    int32_t mask_id;        // [MASK] or <mask>
    int32_t vocab;          // V: ids at or above it are never selected (there is no row for them)
    uint8_t *selectable;    // [V] 1: an ordinary token (not special, present in the tokenizer)
    uint8_t *starts_word;   // [V] 1: begins a word (whole-word masking)
    uint8_t *ends_word;     // [V] 1: ends with whitespace: the next token begins a word
    int32_t *random_ids;    // the ids random replacements are drawn from: every selectable one
    int32_t n_random;
    const char *word_rule;  // how words were found: "wordpiece ##", "space-prefixed (byte-level BPE)", ...
} CtMlmMasking;

// The tables of `tok` for a model of `vocab` rows. 0, or -1 + error: rates outside [0, 1] or
// mask + random above 1, no mask token ([MASK] or <mask> among the specials), the mask token
// outside the model's vocabulary, or no ordinary token to draw.
int ct_mlm_masking_init(CtMlmMasking *mm, const CtTokenizer *tok, int32_t vocab, const CtMlmRates *rates);
void ct_mlm_masking_free(CtMlmMasking *mm);

// The seed of one row: `stream` names the step or batch (ct_mlm_train_stream, ct_mlm_eval_stream),
// `row` the row's place among its rows (micro-batch a, rank r, row i of B: a·world·B + r·B + i).
uint64_t ct_mlm_row_seed(uint64_t run_seed, uint64_t stream, uint64_t row);
uint64_t ct_mlm_train_stream(uint64_t step);
uint64_t ct_mlm_eval_stream(uint64_t batch);  // the same for every evaluation: a fixed mask

// Masks one row of T tokens in place. doc_ids[t] < 0 marks padding, as the loader marks it
// (NULL: every position is data). On return tokens holds the model's inputs, targets the original token at every
// selected position and -1 elsewhere, selected[t] 1 where selected. Returns the number selected.
int ct_mlm_mask_row(const CtMlmMasking *mm, uint64_t row_seed, int32_t *tokens, const int32_t *doc_ids, int T,
                    int32_t *targets, uint8_t *selected);
