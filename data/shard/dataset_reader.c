#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/examples/chat_template.h"
#include "data/input/read_file.h"
#include "data/shard/dataset.h"
#include "data/tokenizer/tokenizer_identity.h"

static char *read_text_file(const char *path, size_t limit) {
    size_t len;
    char *text = ct_read_whole_file(path, &len);
    if (text && len > limit) {
        ct_free(text);
        errno = EFBIG;
        return NULL;
    }
    return text;
}

static int get_number(const cJSON *obj, const char *key, double *out, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0) return ct_error_set("%s: '%s' is missing or not a number", path, key);
    *out = v->valuedouble;
    return 0;
}

void ct_dataset_close(CtDataset *d) {
    for (int s = 0; s < CT_N_SPLITS; s++) {
        for (int i = 0; i < d->split[s].n_shards; i++) ct_shard_close(&d->split[s].shards[i]);
        ct_free(d->split[s].shards);
        ct_free(d->split[s].shard_first_token);
        ct_free(d->split[s].doc_starts);
    }
    ct_free(d->dir);
    memset(d, 0, sizeof *d);
}

static int open_split(CtDataset *d, CtSplit s, const cJSON *split, const char *manifest) {
    const cJSON *shards = cJSON_GetObjectItemCaseSensitive(split, "shards");
    if (!cJSON_IsArray(shards)) return ct_error_set("%s: split '%s' has no shard list", manifest, ct_split_name(s));
    int n = cJSON_GetArraySize(shards);
    CtDatasetSplit *ds = &d->split[s];
    ds->shards = ct_calloc((size_t)n + 1, sizeof(CtShard));
    ds->shard_first_token = ct_calloc((size_t)n + 1, sizeof(uint64_t));
    const cJSON *item;
    cJSON_ArrayForEach(item, shards) {
        const cJSON *file = cJSON_GetObjectItemCaseSensitive(item, "file");
        if (!cJSON_IsString(file) || strchr(file->valuestring, '/'))
            return ct_error_set("%s: shard %d of '%s' has no valid file name", manifest, ds->n_shards, ct_split_name(s));
        double tokens = 0, documents = 0;
        if (get_number(item, "tokens", &tokens, manifest) != 0 || get_number(item, "documents", &documents, manifest) != 0)
            return -1;
        size_t len = strlen(d->dir) + strlen(file->valuestring) + 2;
        char *path = ct_alloc(len);
        snprintf(path, len, "%s/%s", d->dir, file->valuestring);
        CtShard *sh = &ds->shards[ds->n_shards];
        int rc = ct_shard_open(sh, path);
        ct_free(path);
        if (rc != 0) return -1;
        ds->n_shards++;
        if (sh->kind != d->kind || sh->token_bytes != d->token_bytes || sh->vocab_size != d->vocab_size ||
            sh->tokenizer_hash != d->tokenizer_hash)
            return ct_error_set("%s: kind, token size, vocabulary or tokenizer differ from %s", sh->path, manifest);
        if (sh->dpo_margins != d->dpo_margins)
            return ct_error_set("%s: %s margins, but %s says the pairs %s (replaced or mixed shards? shard the data "
                                "again)", sh->path, sh->dpo_margins ? "holds" : "holds no", manifest,
                                d->dpo_margins ? "have margins" : "have none");
        if ((double)sh->n_tokens != tokens || (double)sh->n_docs != documents)
            return ct_error_set("%s: holds %llu tokens and %llu documents, but %s lists %.0f and %.0f (replaced or "
                                "mixed shards? shard the data again)",
                                sh->path, (unsigned long long)sh->n_tokens, (unsigned long long)sh->n_docs, manifest,
                                tokens, documents);
        if (sh->shard_index != (uint32_t)(ds->n_shards - 1))  // the writer numbers a split's shards from 0
            return ct_error_set("%s: is shard %u of its split by its header, but %s lists it as shard %d of '%s' "
                                "(renamed, reordered or repeated shards? shard the data again)",
                                sh->path, sh->shard_index, manifest, ds->n_shards - 1, ct_split_name(s));
        ds->shard_first_token[ds->n_shards] = ds->shard_first_token[ds->n_shards - 1] + sh->n_tokens;
        ds->n_documents += sh->n_docs;
    }
    ds->n_tokens = ds->shard_first_token[ds->n_shards];
    ds->doc_starts = ct_alloc(sizeof(uint64_t) * (ds->n_documents + 1));
    uint64_t k = 0;
    for (int i = 0; i < ds->n_shards; i++)
        for (uint64_t j = 0; j < ds->shards[i].n_docs; j++)
            ds->doc_starts[k++] = ds->shard_first_token[i] + ds->shards[i].doc_starts[j];
    return 0;
}

// sft and dpo manifests carry the chat template the examples were rendered with (training
// stores it in checkpoints, chat renders with it, dpo stops answers at its end of turn): a
// damaged one is refused here, naming the manifest, not carried on into a checkpoint.
static int check_chat_template(const cJSON *root, const char *manifest) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "source"), "chat_template");
    if (!t) return 0;
    char *json = cJSON_PrintUnformatted(t);
    size_t n = strlen(manifest) + 64;
    char *where = ct_alloc(n);
    snprintf(where, n, "%s: source.chat_template", manifest);
    CtChatTemplate tmpl;
    int rc = ct_chat_template_parse(&tmpl, json ? json : "", where);
    if (rc == 0) ct_chat_template_free(&tmpl);
    free(json);
    ct_free(where);
    return rc;
}

int ct_dataset_open(CtDataset *d, const char *dir) {
    memset(d, 0, sizeof *d);
    d->dir = ct_strdup(dir);
    size_t len = strlen(dir) + 16;
    char *manifest = ct_alloc(len);
    snprintf(manifest, len, "%s/dataset.json", dir);
    char *text = read_text_file(manifest, 64u << 20);
    cJSON *root = NULL;
    int rc = -1;
    if (!text) {
        ct_error_set("%s: no dataset here (%s is missing: not made by ctrain shard, or the run did not finish)", dir,
                     "dataset.json");
        goto done;
    }
    root = cJSON_Parse(text);
    if (!cJSON_IsObject(root)) {
        ct_error_set("%s: not valid JSON", manifest);
        goto done;
    }
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsString(format) || strcmp(format->valuestring, "ctrain-shards") != 0) {
        ct_error_set("%s: not a ctrain dataset manifest", manifest);
        goto done;
    }
    double version = 0, token_bytes = 0, vocab = 0, eot = -1;
    if (get_number(root, "version", &version, manifest) != 0) goto done;
    if (version != CT_SHARD_VERSION && version != CT_SHARD_VERSION_PROMPTS && version != CT_SHARD_VERSION_DPO_MARGINS) {
        ct_error_set("%s: dataset format version %.0f; this ctrain reads versions %d to %d", manifest, version,
                     CT_SHARD_VERSION, CT_SHARD_VERSION_MAX);
        goto done;
    }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    const char *k = cJSON_IsString(kind) ? kind->valuestring : "";
    d->kind = strcmp(k, "text") == 0 ? CT_SHARD_TEXT : strcmp(k, "sft") == 0 ? CT_SHARD_SFT
            : strcmp(k, "dpo") == 0  ? CT_SHARD_DPO : strcmp(k, "prompts") == 0 ? CT_SHARD_PROMPTS : 0;
    if (!d->kind) {
        ct_error_set("%s: unknown kind '%s' (text, sft, dpo or prompts)", manifest, k);
        goto done;
    }
    if (version < ct_shard_kind_version(d->kind)) {
        ct_error_set("%s: kind '%s' in a version %.0f manifest; it came with version %d (the manifest is damaged; "
                     "shard the data again)", manifest, k, version, ct_shard_kind_version(d->kind));
        goto done;
    }
    // dpo margins (TRL's "margin" column): "margins": true, which came with version 3.
    const cJSON *margins = cJSON_GetObjectItemCaseSensitive(root, "margins");
    if (margins && (!cJSON_IsBool(margins) || (cJSON_IsTrue(margins) && (d->kind != CT_SHARD_DPO ||
                                                                          version < CT_SHARD_VERSION_DPO_MARGINS)))) {
        ct_error_set("%s: 'margins' is not a boolean, or true in a version %.0f '%s' manifest; it came with version %d "
                     "for dpo (the manifest is damaged; shard the data again)", manifest, version, k,
                     CT_SHARD_VERSION_DPO_MARGINS);
        goto done;
    }
    d->dpo_margins = cJSON_IsTrue(margins);
    if (get_number(root, "token_bytes", &token_bytes, manifest) != 0 || get_number(root, "vocab_size", &vocab, manifest) != 0)
        goto done;
    const cJSON *eot_item = cJSON_GetObjectItemCaseSensitive(root, "eot_token");
    if (cJSON_IsNumber(eot_item)) eot = eot_item->valuedouble;
    if ((token_bytes != 2 && token_bytes != 4) || vocab < 1 || vocab > 4294967295.0) {
        ct_error_set("%s: 'token_bytes' %g or 'vocab_size' %g out of range (2 or 4; 1 to 2^32-1)", manifest, token_bytes,
                     vocab);
        goto done;
    }
    d->token_bytes = (uint32_t)token_bytes;
    d->vocab_size = (uint32_t)vocab;
    // Training prompts samples with it and stops answers at it: an id outside the vocabulary
    // would index past the embedding.
    if (eot_item && (!cJSON_IsNumber(eot_item) || eot < -1 || eot >= vocab || eot != (double)(int64_t)eot)) {
        char *value = cJSON_PrintUnformatted(eot_item);
        ct_error_set("%s: 'eot_token' %s is not -1 or a token id below the vocabulary size %.0f (the manifest is "
                     "damaged; shard the data again)", manifest, value ? value : "?", vocab);
        free(value);
        goto done;
    }
    d->eot_token = (int64_t)eot;
    const cJSON *hash = cJSON_GetObjectItemCaseSensitive(root, "tokenizer_hash");
    char *end = NULL;
    if (cJSON_IsString(hash)) d->tokenizer_hash = strtoull(hash->valuestring, &end, 16);
    if (!cJSON_IsString(hash) || !end || *end || strlen(hash->valuestring) != 16) {
        ct_error_set("%s: 'tokenizer_hash' is missing or not 16 hex digits", manifest);
        goto done;
    }
    if (check_chat_template(root, manifest) != 0) goto done;
    const cJSON *splits = cJSON_GetObjectItemCaseSensitive(root, "splits");
    for (int s = 0; s < CT_N_SPLITS; s++) {
        const cJSON *split = cJSON_GetObjectItemCaseSensitive(splits, ct_split_name((CtSplit)s));
        if (!cJSON_IsObject(split)) {
            ct_error_set("%s: split '%s' is missing", manifest, ct_split_name((CtSplit)s));
            goto done;
        }
        if (open_split(d, (CtSplit)s, split, manifest) != 0) goto done;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    ct_free(text);
    ct_free(manifest);
    if (rc != 0) ct_dataset_close(d);
    return rc;
}

int ct_dataset_check_tokenizer(const CtDataset *d, const CtTokenizer *t) {
    if (ct_tokenizer_is(t, d->tokenizer_hash)) return 0;
    return ct_error_set("%s: shards were made with tokenizer %016" PRIx64 ", but this run uses tokenizer %016" PRIx64
                        " (another vocabulary, merge list, pattern or special tokens); shard the data again with this "
                        "tokenizer", d->dir, d->tokenizer_hash, ct_tokenizer_fingerprint(t));
}

int ct_dataset_read_range(const CtDataset *d, CtSplit split, uint64_t first, uint64_t n, void *dctx, int32_t *tokens,
                          uint8_t *mask) {
    const CtDatasetSplit *ds = &d->split[split];
    CT_CHECK(first + n <= ds->n_tokens, "token range inside the split");
    int lo = 0, hi = ds->n_shards;  // the shard holding `first`
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (ds->shard_first_token[mid] <= first)
            lo = mid;
        else
            hi = mid;
    }
    uint64_t done = 0;
    for (int i = lo; done < n; i++) {
        uint64_t from = first + done - ds->shard_first_token[i];
        uint64_t take = ds->shards[i].n_tokens - from;
        if (take > n - done) take = n - done;
        if (ct_shard_read_range(&ds->shards[i], from, take, dctx, tokens + done, mask ? mask + done : NULL) != 0)
            return -1;
        done += take;
    }
    return 0;
}
