#include "train/loop/init_tokenizer.h"

#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "train/interop/checkpoint_io.h"

static int same_token(const CtTokenizer *a, const CtTokenizer *b, int32_t id) {
    if (a->kind[id] != b->kind[id]) return 0;
    if (a->kind[id] == CT_TOKEN_ABSENT) return 1;
    return a->lengths[id] == b->lengths[id] &&
           memcmp(a->pool + a->offsets[id], b->pool + b->offsets[id], a->lengths[id]) == 0;
}

// A token as the message shows it: its bytes, quoted, with non-printing ones escaped; or "no token".
static void describe(const CtTokenizer *t, int32_t id, char *buf, size_t size) {
    if (id >= t->n_ids || t->kind[id] == CT_TOKEN_ABSENT) {
        snprintf(buf, size, "no token");
        return;
    }
    size_t n = 0;
    buf[n++] = '"';
    const uint8_t *p = t->pool + t->offsets[id];
    for (uint32_t i = 0; i < t->lengths[id] && n + 6 < size; i++)
        n += (size_t)(p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\'
                          ? snprintf(buf + n, size - n, "%c", p[i])
                          : snprintf(buf + n, size - n, "\\x%02x", p[i]));
    snprintf(buf + n, size - n, "\"");
}

int ct_init_tokenizer_check(const char *init_from, const CtTokenizer *data_tok, uint64_t data_hash,
                            const char *data_source) {
    CtModelConfig config;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_read_meta(init_from, &config, &meta) != 0) return ct_error_prefix("train.init_from: ");
    if (!meta.tokenizer_json) {
        ct_checkpoint_meta_free(&meta);
        ct_warn("train.init_from %s carries no tokenizer: cannot check that the dataset's token ids mean what they "
                "meant to that model", init_from);
        return 0;
    }
    CtTokenizer model_tok;
    int rc = ct_tokenizer_parse_hf(&model_tok, meta.tokenizer_json, strlen(meta.tokenizer_json), init_from, NULL);
    ct_checkpoint_meta_free(&meta);
    if (rc != 0) return ct_error_prefix("train.init_from: its tokenizer: ");
    if (!data_tok) {  // only the dataset's fingerprint: the same tokenizer, or refused
        rc = ct_tokenizer_is(&model_tok, data_hash)
                 ? 0
                 : ct_error_set("train.init_from %s: its tokenizer (%d tokens) is not the one the dataset was sharded "
                                "with, and without %s the two cannot be compared; shard the data with the model's "
                                "tokenizer", init_from, ct_tokenizer_vocab_size(&model_tok), data_source);
        ct_tokenizer_free(&model_tok);
        return rc;
    }
    const int32_t common = model_tok.n_ids < data_tok->n_ids ? model_tok.n_ids : data_tok->n_ids;
    int32_t differs = -1;
    for (int32_t id = 0; id < common && differs < 0; id++)
        if (!same_token(&model_tok, data_tok, id)) differs = id;
    if (differs >= 0) {
        char in_model[96], in_data[96];
        describe(&model_tok, differs, in_model, sizeof in_model);
        describe(data_tok, differs, in_data, sizeof in_data);
        rc = ct_error_set("train.init_from %s: its tokenizer (%d tokens, stored in the checkpoint) and the dataset's "
                          "(%s, %d tokens) differ from id %d on (%s in the model's, %s in the dataset's), so the "
                          "data's ids would read the wrong embedding rows; shard the data with the model's tokenizer "
                          "(or one that only adds tokens after it)", init_from, model_tok.n_ids, data_source,
                          data_tok->n_ids, differs, in_model, in_data);
    }
    ct_tokenizer_free(&model_tok);
    return rc;
}
