#include "train/objectives/mlm_mask.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"

static const uint8_t *token_bytes(const CtTokenizer *t, int32_t id, uint32_t *len) {
    *len = t->lengths[id];
    return t->pool + t->offsets[id];
}

static int has_prefix(const uint8_t *b, uint32_t len, const char *prefix) {
    const size_t n = strlen(prefix);
    return len >= n && memcmp(b, prefix, n) == 0;
}

static int is_space(uint8_t c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

#define SPM_SPACE "\xE2\x96\x81"  // U+2581 "▁", SentencePiece's space

// The mask token: a special token spelled [MASK] (BERT) or <mask> (RoBERTa); -1 when none.
static int32_t find_mask_token(const CtTokenizer *t) {
    for (int32_t i = 0; i < t->n_special; i++) {
        uint32_t len;
        const uint8_t *b = token_bytes(t, t->special_ids[i], &len);
        if ((len == 6 && memcmp(b, "[MASK]", 6) == 0) || (len == 6 && memcmp(b, "<mask>", 6) == 0))
            return t->special_ids[i];
    }
    return -1;
}

// WordPiece vocabularies continue words with "##" tokens and hold no token with a space in it;
// byte-level BPE always has tokens that begin with a space, SentencePiece ones with "▁".
static int is_wordpiece(const CtTokenizer *t) {
    int continuations = 0;
    for (int32_t id = 0; id < t->n_ids; id++) {
        if (t->kind[id] != CT_TOKEN_NORMAL) continue;
        uint32_t len;
        const uint8_t *b = token_bytes(t, id, &len);
        if (len && (is_space(b[0]) || has_prefix(b, len, SPM_SPACE))) return 0;
        continuations += has_prefix(b, len, "##") && len > 2;
    }
    return continuations > 0;
}

static void word_tables(CtMlmMasking *mm, const CtTokenizer *t) {
    const int wordpiece = is_wordpiece(t);
    mm->word_rule = wordpiece ? "WordPiece: a word is a token and its following ## tokens"
                    : t->units == CT_UNITS_CHARS
                        ? "SentencePiece: a word begins at a token starting with the space marker"
                        : "byte-level BPE: a word begins at a token starting with a space (\xC4\xA0 in tokenizer.json) or after whitespace";
    const int32_t n = t->n_ids < mm->vocab ? t->n_ids : mm->vocab;
    for (int32_t id = 0; id < n; id++) {
        if (!mm->selectable[id]) {  // specials stand alone: the tokens around them begin and end words
            mm->starts_word[id] = mm->ends_word[id] = 1;
            continue;
        }
        uint32_t len;
        const uint8_t *b = token_bytes(t, id, &len);
        if (wordpiece) {
            mm->starts_word[id] = !(has_prefix(b, len, "##") && len > 2);
        } else {
            mm->starts_word[id] = len == 0 || is_space(b[0]) || has_prefix(b, len, SPM_SPACE);
            mm->ends_word[id] = len > 0 && is_space(b[len - 1]);
        }
    }
}

int ct_mlm_masking_init(CtMlmMasking *mm, const CtTokenizer *tok, int32_t vocab, const CtMlmRates *rates) {
    memset(mm, 0, sizeof *mm);
    const CtMlmRates *r = rates;
    if (!(r->mlm_probability >= 0 && r->mlm_probability <= 1 && r->mask_replace_prob >= 0 &&
          r->mask_replace_prob <= 1 && r->random_replace_prob >= 0 && r->random_replace_prob <= 1))
        return ct_error_set("mlm: mlm_probability %g, mask_replace_prob %g and random_replace_prob %g must each be "
                            "between 0 and 1", r->mlm_probability, r->mask_replace_prob, r->random_replace_prob);
    if (r->mask_replace_prob + r->random_replace_prob > 1 + 1e-12)
        return ct_error_set("mlm: mask_replace_prob %g + random_replace_prob %g exceed 1 (they are shares of the "
                            "selected tokens; the rest stay unchanged)", r->mask_replace_prob, r->random_replace_prob);
    mm->rates = *r;
    mm->vocab = vocab;
    mm->mask_id = find_mask_token(tok);
    if (mm->mask_id < 0)
        return ct_error_set("mlm: the tokenizer has no mask token (a special token [MASK] or <mask>): masked-language "
                            "modelling replaces selected tokens with it; train the tokenizer with --special including "
                            "<mask> (or use one that has it, as BERT's and RoBERTa's do) and shard again");
    if (mm->mask_id >= vocab)
        return ct_error_set("mlm: the mask token (id %d) is outside the model's vocabulary of %d", mm->mask_id, vocab);
    mm->selectable = ct_calloc((size_t)vocab, 1);
    mm->starts_word = ct_calloc((size_t)vocab, 1);
    mm->ends_word = ct_calloc((size_t)vocab, 1);
    mm->random_ids = ct_alloc(sizeof(int32_t) * (size_t)vocab);
    for (int32_t id = 0; id < tok->n_ids && id < vocab; id++)
        if (tok->kind[id] == CT_TOKEN_NORMAL || tok->kind[id] == CT_TOKEN_ADDED) {
            mm->selectable[id] = 1;
            mm->random_ids[mm->n_random++] = id;
        }
    word_tables(mm, tok);
    if (mm->n_random == 0) {
        ct_mlm_masking_free(mm);
        return ct_error_set("mlm: the tokenizer has no ordinary token within the model's vocabulary of %d", vocab);
    }
    return 0;
}

void ct_mlm_masking_free(CtMlmMasking *mm) {
    ct_free(mm->selectable);
    ct_free(mm->starts_word);
    ct_free(mm->ends_word);
    ct_free(mm->random_ids);
    memset(mm, 0, sizeof *mm);
}

uint64_t ct_mlm_train_stream(uint64_t step) { return CT_RNG_STREAM_MLM + step; }

uint64_t ct_mlm_eval_stream(uint64_t batch) { return CT_RNG_STREAM_MLM_EVAL + batch; }

uint64_t ct_mlm_row_seed(uint64_t run_seed, uint64_t stream, uint64_t row) {
    CtRng batch, r;
    ct_rng_seed_stream(&batch, run_seed, stream);
    ct_rng_seed_stream(&r, ct_rng_next(&batch), row);
    return ct_rng_next(&r);
}

int ct_mlm_mask_row(const CtMlmMasking *mm, uint64_t row_seed, int32_t *tokens, const int32_t *doc_ids, int T,
                    int32_t *targets, uint8_t *selected) {
    const CtMlmRates *r = &mm->rates;
    CtRng rng;
    ct_rng_seed(&rng, row_seed);
    int n = 0, word_selected = 0, prev_ends = 1;
    for (int t = 0; t < T; t++) {
        // Three draws at every position, used or not: a position's fate depends on the seed and
        // its place alone.
        const double u_select = ct_rng_uniform(&rng), u_kind = ct_rng_uniform(&rng);
        const int32_t random_id = mm->random_ids[ct_rng_below(&rng, (uint32_t)mm->n_random)];
        const int32_t x = tokens[t];
        const int candidate = (!doc_ids || doc_ids[t] >= 0) && x >= 0 && x < mm->vocab && mm->selectable[x];
        int pick;
        if (!r->whole_word_mask) {
            pick = candidate && u_select < r->mlm_probability;
        } else {
            if (!candidate || prev_ends || mm->starts_word[x])  // a new word: its first token draws for it
                word_selected = candidate && u_select < r->mlm_probability;
            pick = candidate && word_selected;
            prev_ends = !candidate || mm->ends_word[x];
        }
        targets[t] = pick ? x : -1;
        selected[t] = (uint8_t)pick;
        if (!pick) continue;
        n++;
        if (u_kind < r->mask_replace_prob)
            tokens[t] = mm->mask_id;
        else if (u_kind < r->mask_replace_prob + r->random_replace_prob)
            tokens[t] = random_id;
    }
    return n;
}
