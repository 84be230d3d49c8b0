#include "train/loop/eval_source.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer/bpe_parallel.h"
#include "data/input/input_reader.h"
#include "data/shard/shard.h"
#include "data/input/text_input.h"

typedef struct {
    CtEvalSource *s;
    const CtEvalEncoding *enc;
    CtEncoder **encoders;
    int jsonl;
} Reading;

static int add_document(void *ctx, const uint8_t *text, size_t len) {
    Reading *r = ctx;
    if (r->jsonl && len == 0) return 0;  // as the sharder: an empty text is no document
    const CtEvalEncoding *e = r->enc;
    for (int i = 0; i < e->post.n_prefix; i++) ct_ids_push(&r->s->ids, e->post.prefix[i]);
    if (e->threads > 1 && len > ((size_t)1 << 16))  // threads pay off on long texts only
        ct_encode_parallel(e->tokenizer, r->encoders, e->threads, text, len, e->allow_special, &r->s->ids);
    else
        ct_encode(r->encoders[0], text, len, e->allow_special, &r->s->ids);
    for (int i = 0; i < e->post.n_suffix; i++) ct_ids_push(&r->s->ids, e->post.suffix[i]);
    if (r->jsonl) ct_ids_push(&r->s->ids, e->eot);
    r->s->documents++;
    return 0;
}

static int read_file(CtEvalSource *s, const char *path, const CtEvalEncoding *enc, int jsonl) {
    memset(s, 0, sizeof *s);
    if (ct_input_is_jsonl(path) != jsonl)
        return jsonl ? ct_error_set("%s: --jsonl reads .jsonl or .json files (optionally .zst); give a text file "
                                    "with --text", path)
                     : ct_error_set("%s: is JSON lines; evaluate the \"text\" of its lines with --jsonl", path);
    CtEncoder **encoders = ct_alloc(sizeof(CtEncoder *) * (size_t)enc->threads);
    for (int i = 0; i < enc->threads; i++) encoders[i] = ct_encoder_new(enc->tokenizer);
    Reading r = {s, enc, encoders, jsonl};
    int rc = ct_read_documents(path, add_document, &r);
    for (int i = 0; i < enc->threads; i++) ct_encoder_free(encoders[i]);
    ct_free(encoders);
    s->n_tokens = s->ids.len;
    if (rc != 0) ct_eval_source_close(s);
    return rc;
}

int ct_eval_source_text(CtEvalSource *s, const char *path, const CtEvalEncoding *enc) {
    return read_file(s, path, enc, 0);
}

int ct_eval_source_jsonl(CtEvalSource *s, const char *path, const CtEvalEncoding *enc) {
    return read_file(s, path, enc, 1);
}

int ct_eval_source_data(CtEvalSource *s, const char *dir, const char *split, int T) {
    memset(s, 0, sizeof *s);
    if (ct_dataset_open(&s->data, dir) != 0) return -1;
    s->have_data = 1;
    int rc = 0;
    if (s->data.kind != CT_SHARD_TEXT) {
        rc = ct_error_set("%s: holds %s examples; eval reads text datasets (ctrain shard --format text)", dir,
                          ct_shard_kind_name(s->data.kind));
    } else if (split) {
        if (strcmp(split, "train") == 0) s->split = CT_SPLIT_TRAIN;
        else if (strcmp(split, "val") == 0) s->split = CT_SPLIT_VAL;
        else rc = ct_error_set("--split must be train or val (got '%s')", split);
    } else {
        s->split = s->data.split[CT_SPLIT_VAL].n_tokens >= (uint64_t)T ? CT_SPLIT_VAL : CT_SPLIT_TRAIN;
        if (s->split == CT_SPLIT_TRAIN)
            ct_log("eval: %s has %s; evaluating its train split", dir,
                   s->data.split[CT_SPLIT_VAL].n_tokens ? "a validation split shorter than one window"
                                                        : "no validation split");
    }
    if (rc == 0) {
        s->n_tokens = s->data.split[s->split].n_tokens;
        s->documents = s->data.split[s->split].n_documents;
        s->dctx = ct_shard_dctx_new();
    } else {
        ct_eval_source_close(s);
    }
    return rc;
}

int ct_eval_source_read(void *source, uint64_t first, uint64_t n, int32_t *tokens) {
    CtEvalSource *s = source;
    if (s->have_data) return ct_dataset_read_range(&s->data, s->split, first, n, s->dctx, tokens, NULL);
    memcpy(tokens, s->ids.data + first, sizeof(int32_t) * n);
    return 0;
}

void ct_eval_source_close(CtEvalSource *s) {
    ct_ids_free(&s->ids);
    if (s->dctx) ct_shard_dctx_free(s->dctx);
    if (s->have_data) ct_dataset_close(&s->data);
    memset(s, 0, sizeof *s);
}
