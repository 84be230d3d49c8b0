#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/version.h"
#include "data/input/read_file.h"
#include "data/shard/dataset.h"

const char *ct_split_name(CtSplit split) { return split == CT_SPLIT_TRAIN ? "train" : "val"; }

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = ct_alloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

// Removes an earlier manifest and the shards it lists: a dataset folder is rewritten whole.
static void remove_previous_dataset(const char *dir) {
    char *manifest = join_path(dir, "dataset.json");
    size_t len;
    char *text = ct_read_whole_file(manifest, &len);
    if (text) {
        unlink(manifest);  // first: from here on the folder is no dataset
        cJSON *root = cJSON_Parse(text);
        const cJSON *splits = cJSON_GetObjectItemCaseSensitive(root, "splits"), *split;
        cJSON_ArrayForEach(split, splits) {
            const cJSON *shard;
            cJSON_ArrayForEach(shard, cJSON_GetObjectItemCaseSensitive(split, "shards")) {
                const cJSON *file = cJSON_GetObjectItemCaseSensitive(shard, "file");
                // Only plain names of our own pattern: a manifest must not make us delete elsewhere.
                if (cJSON_IsString(file) && !strchr(file->valuestring, '/') && strstr(file->valuestring, ".ctshard")) {
                    char *path = join_path(dir, file->valuestring);
                    unlink(path);
                    ct_free(path);
                }
            }
        }
        cJSON_Delete(root);
        ct_free(text);
    }
    ct_free(manifest);
}

int ct_dataset_writer_open(CtDatasetWriter *w, const char *dir, const CtDatasetSpec *spec) {
    memset(w, 0, sizeof *w);
    CT_CHECK(spec->shard_tokens > 0, "shards hold at least one token");
    if (ct_make_dirs(dir) != 0) return -1;
    remove_previous_dataset(dir);
    w->dir = ct_strdup(dir);
    w->spec = *spec;
    return 0;
}

void ct_dataset_writer_compress_in_tasks(CtDatasetWriter *w, int jobs) { w->compress_tasks = jobs; }

static int close_shard(CtDatasetWriter *w, CtSplit split) {
    if (!w->split[split].writer_open) return 0;
    CtShardWriter *sw = &w->split[split].writer;
    CtShardRecord rec;
    memset(&rec, 0, sizeof rec);
    snprintf(rec.file, sizeof rec.file, "%s-%05u.ctshard", ct_split_name(split), w->split[split].n_shards);
    rec.tokens = sw->n_tokens;
    rec.documents = sw->n_docs;
    w->split[split].writer_open = 0;
    if (ct_shard_writer_close(sw, &rec.bytes) != 0) return -1;
    uint32_t n = w->split[split].n_shards++;
    w->split[split].records = ct_realloc(w->split[split].records, sizeof(CtShardRecord) * (n + 1));
    w->split[split].records[n] = rec;
    return 0;
}

static int ensure_shard(CtDatasetWriter *w, CtSplit split) {
    if (w->split[split].writer_open) return 0;
    char name[64];
    snprintf(name, sizeof name, "%s-%05u.ctshard", ct_split_name(split), w->split[split].n_shards);
    char *path = join_path(w->dir, name);
    int rc = ct_shard_writer_open(&w->split[split].writer, path, &w->spec.shard, w->split[split].n_shards);
    ct_free(path);
    if (rc != 0) return rc;
    ct_shard_writer_compress_in_tasks(&w->split[split].writer, w->compress_tasks);
    w->split[split].writer_open = 1;
    return 0;
}

static uint64_t shard_fill(const CtDatasetWriter *w, CtSplit split) {
    return w->split[split].writer_open ? w->split[split].writer.n_tokens : 0;
}

// Text tokens (no mask: text shards store none), flowing across shard boundaries; `started`: they
// continue the document already begun.
static int write_text(CtDatasetWriter *w, CtSplit split, const uint32_t *tokens, size_t n, int started) {
    while (n > 0) {
        if (shard_fill(w, split) >= w->spec.shard_tokens && close_shard(w, split) != 0) return -1;
        if (ensure_shard(w, split) != 0) return -1;
        if (!started && ct_shard_writer_begin_document(&w->split[split].writer) != 0) return -1;
        started = 1;
        uint64_t room = w->spec.shard_tokens - shard_fill(w, split);
        size_t take = n < room ? n : (size_t)room;
        if (ct_shard_writer_append(&w->split[split].writer, tokens, NULL, take) != 0) return -1;
        tokens += take;
        n -= take;
    }
    return 0;
}

int ct_dataset_write_document(CtDatasetWriter *w, CtSplit split, const uint32_t *tokens, const uint8_t *mask, size_t n) {
    if (n == 0) return 0;
    CT_CHECK(w->spec.shard.kind != CT_SHARD_DPO && w->spec.shard.kind != CT_SHARD_PROMPTS,
             "dpo examples and prompts go through ct_dataset_write_dpo and ct_dataset_write_prompt");
    w->split[split].documents++;
    w->split[split].tokens += n;
    if (w->spec.shard.kind == CT_SHARD_SFT) {  // examples stay whole
        if (shard_fill(w, split) > 0 && shard_fill(w, split) + n > w->spec.shard_tokens && close_shard(w, split) != 0)
            return -1;
        if (ensure_shard(w, split) != 0 || ct_shard_writer_begin_document(&w->split[split].writer) != 0) return -1;
        return ct_shard_writer_append(&w->split[split].writer, tokens, mask, n);
    }
    return write_text(w, split, tokens, n, 0);
}

int ct_dataset_continue_document(CtDatasetWriter *w, CtSplit split, const uint32_t *tokens, size_t n) {
    CT_CHECK(w->spec.shard.kind == CT_SHARD_TEXT, "only text documents are written in parts");
    w->split[split].tokens += n;
    return write_text(w, split, tokens, n, 1);
}

int ct_dataset_write_dpo(CtDatasetWriter *w, CtSplit split, const uint32_t *prompt, uint32_t n_prompt,
                         const uint32_t *chosen, uint32_t n_chosen, const uint32_t *rejected, uint32_t n_rejected,
                         double margin) {
    uint64_t n = (uint64_t)n_prompt + n_chosen + n_rejected;
    if (shard_fill(w, split) > 0 && shard_fill(w, split) + n > w->spec.shard_tokens && close_shard(w, split) != 0)
        return -1;
    if (ensure_shard(w, split) != 0) return -1;
    w->split[split].documents++;
    w->split[split].tokens += n;
    return ct_shard_writer_append_dpo(&w->split[split].writer, prompt, n_prompt, chosen, n_chosen, rejected, n_rejected,
                                      margin);
}

int ct_dataset_write_prompt(CtDatasetWriter *w, CtSplit split, const uint32_t *tokens, size_t n, const char *fields,
                            size_t fields_len) {
    CT_CHECK(w->spec.shard.kind == CT_SHARD_PROMPTS, "prompts go into a prompts dataset");
    if (shard_fill(w, split) > 0 && shard_fill(w, split) + n > w->spec.shard_tokens && close_shard(w, split) != 0)
        return -1;
    if (ensure_shard(w, split) != 0) return -1;
    w->split[split].documents++;
    w->split[split].tokens += n;
    return ct_shard_writer_append_prompt(&w->split[split].writer, tokens, n, fields, fields_len);
}

static const char *kind_word(CtShardKind kind) { return ct_shard_kind_name(kind); }

int ct_dataset_writer_finish(CtDatasetWriter *w, const char *source_json) {
    for (int s = 0; s < CT_N_SPLITS; s++)
        if (close_shard(w, (CtSplit)s) != 0) {
            ct_dataset_writer_abort(w);
            return -1;
        }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", "ctrain-shards");
    const int margins = w->spec.shard.kind == CT_SHARD_DPO && w->spec.shard.dpo_margins;
    cJSON_AddNumberToObject(root, "version", ct_shard_write_version(w->spec.shard.kind, margins));
    cJSON_AddStringToObject(root, "kind", kind_word(w->spec.shard.kind));
    if (margins) cJSON_AddTrueToObject(root, "margins");
    cJSON_AddNumberToObject(root, "token_bytes", w->spec.shard.token_bytes);
    cJSON_AddNumberToObject(root, "vocab_size", w->spec.shard.vocab_size);
    char hash[32];
    snprintf(hash, sizeof hash, "%016" PRIx64, w->spec.shard.tokenizer_hash);
    cJSON_AddStringToObject(root, "tokenizer_hash", hash);
    cJSON_AddNumberToObject(root, "eot_token", (double)w->spec.eot_token);
    cJSON *splits = cJSON_AddObjectToObject(root, "splits");
    for (int s = 0; s < CT_N_SPLITS; s++) {
        cJSON *split = cJSON_AddObjectToObject(splits, ct_split_name((CtSplit)s));
        cJSON_AddNumberToObject(split, "tokens", (double)w->split[s].tokens);
        cJSON_AddNumberToObject(split, "documents", (double)w->split[s].documents);
        cJSON *shards = cJSON_AddArrayToObject(split, "shards");
        for (uint32_t i = 0; i < w->split[s].n_shards; i++) {
            const CtShardRecord *r = &w->split[s].records[i];
            cJSON *shard = cJSON_CreateObject();
            cJSON_AddStringToObject(shard, "file", r->file);
            cJSON_AddNumberToObject(shard, "tokens", (double)r->tokens);
            cJSON_AddNumberToObject(shard, "documents", (double)r->documents);
            cJSON_AddNumberToObject(shard, "bytes", (double)r->bytes);
            cJSON_AddItemToArray(shards, shard);
        }
    }
    cJSON *source = source_json ? cJSON_Parse(source_json) : NULL;
    if (source) cJSON_AddItemToObject(root, "source", source);
    cJSON_AddStringToObject(root, "created_by", "ctrain " CTRAIN_VERSION);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    char *path = join_path(w->dir, "dataset.json");
    size_t len = strlen(text);
    text[len] = '\n';  // the terminating NUL becomes a final newline; text is no string after this
    int rc = ct_write_file_atomic(path, text, len + 1);
    free(text);
    ct_free(path);
    if (rc != 0) {
        ct_dataset_writer_abort(w);
        return -1;
    }
    for (int s = 0; s < CT_N_SPLITS; s++) ct_free(w->split[s].records);
    ct_free(w->dir);
    memset(w, 0, sizeof *w);
    return 0;
}

void ct_dataset_writer_abort(CtDatasetWriter *w) {
    for (int s = 0; s < CT_N_SPLITS; s++) {
        if (w->split[s].writer_open) ct_shard_writer_abort(&w->split[s].writer);
        for (uint32_t i = 0; i < w->split[s].n_shards; i++) {
            char *path = join_path(w->dir, w->split[s].records[i].file);
            unlink(path);
            ct_free(path);
        }
        ct_free(w->split[s].records);
    }
    ct_free(w->dir);
    memset(w, 0, sizeof *w);
}
