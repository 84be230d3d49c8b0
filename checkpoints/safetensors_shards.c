// A Hugging Face model folder's weights, one file or shards with an index. See
// checkpoints/safetensors_shards.h.
#include "checkpoints/safetensors_shards.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/json_file.h"
#include "core/alloc.h"
#include "core/atomic_file.h"
#include "core/error.h"

void ct_st_shards_close(CtStShards *w) {
    for (int i = 0; i < w->n_files; i++) ct_st_close(&w->files[i]);
    w->n_files = 0;
}

static int open_shard(CtStShards *w, const char *dir, const char *name) {
    if (!name[0] || strchr(name, '/') || strcmp(name, "..") == 0 || strcmp(name, ".") == 0)
        return ct_error_set("%s/model.safetensors.index.json: shard name '%s' is not a file name in the folder", dir, name);
    for (int i = 0; i < w->n_files; i++) {
        const char *slash = strrchr(w->files[i].source, '/');
        if (strcmp(slash ? slash + 1 : w->files[i].source, name) == 0) return 0;
    }
    if (w->n_files == CT_ST_MAX_SHARDS) return ct_error_set("%s: more than %d shards", dir, CT_ST_MAX_SHARDS);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (ct_st_open(&w->files[w->n_files], path) != 0) return -1;
    w->n_files++;
    return 0;
}

// The index: {"metadata": {...}, "weight_map": {tensor: shard file}}. Every shard it names is
// opened, and every tensor it lists must be in the shard it names.
static int open_index(CtStShards *w, const char *dir, const char *index_path) {
    char *text = ct_json_file_read(index_path);
    if (!text) return -1;
    cJSON *root = cJSON_Parse(text);
    ct_free(text);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    int rc = 0;
    if (!cJSON_IsObject(map)) rc = ct_error_set("%s: not an index (no weight_map object)", index_path);
    for (const cJSON *e = map ? map->child : NULL; e && rc == 0; e = e->next) {
        if (!cJSON_IsString(e)) {
            rc = ct_error_set("%s: weight_map entry '%s' is not a file name", index_path, e->string);
            break;
        }
        rc = open_shard(w, dir, e->valuestring);
        if (rc != 0) break;
        const CtSafetensors *f = NULL;
        for (int i = 0; i < w->n_files; i++) {
            const char *slash = strrchr(w->files[i].source, '/');
            if (strcmp(slash + 1, e->valuestring) == 0) f = &w->files[i];
        }
        if (!ct_st_find(f, e->string))
            rc = ct_error_set("%s: tensor '%s' is listed in %s but that file does not hold it", index_path, e->string,
                              e->valuestring);
    }
    cJSON_Delete(root);
    return rc;
}

int ct_st_shards_open(CtStShards *w, const char *dir) {
    memset(w, 0, sizeof *w);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    FILE *probe = fopen(path, "rb");
    int rc;
    if (probe) {
        fclose(probe);
        rc = open_index(w, dir, path);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        probe = fopen(path, "rb");
        if (!probe) {
            snprintf(path, sizeof path, "%s/pytorch_model.bin", dir);
            probe = fopen(path, "rb");
            if (probe) fclose(probe);
            return ct_error_set("%s: no model.safetensors or model.safetensors.index.json%s", dir,
                                probe ? " (pytorch_model.bin is a pickle, which ctrain does not read: convert it "
                                        "with save_pretrained(..., safe_serialization=True))"
                                      : "");
        }
        fclose(probe);
        rc = open_shard(w, dir, "model.safetensors");
    }
    if (rc != 0) {
        ct_st_shards_close(w);
        return -1;
    }
    // a tensor in two shards would make the choice between them arbitrary
    for (int i = 0; i < w->n_files; i++)
        for (int k = 0; k < w->files[i].n_tensors && rc == 0; k++)
            for (int j = 0; j < i && rc == 0; j++)
                if (ct_st_find(&w->files[j], w->files[i].tensors[k].name))
                    rc = ct_error_set("%s: tensor '%s' is also in %s", w->files[i].source, w->files[i].tensors[k].name,
                                      w->files[j].source);
    if (rc != 0) ct_st_shards_close(w);
    return rc;
}


int ct_st_shards_write(const char *dir, const CtNamedTensor *t, int n, uint64_t max_bytes, int *n_shards_out) {
    static const CtStMetaEntry meta[1] = {{"format", "pt"}};
    uint64_t total = 0;
    for (int i = 0; i < n; i++) total += ct_named_tensor_bytes(&t[i]);
    char path[4096];
    if (total <= max_bytes) {
        *n_shards_out = 1;
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        return ct_st_write(path, t, n, (CtStMetaEntry *)meta, 1);
    }
    int *shard_of = ct_alloc(sizeof(int) * (size_t)n);
    int n_shards = 0;
    uint64_t in_shard = 0;
    for (int i = 0; i < n; i++) {
        uint64_t b = ct_named_tensor_bytes(&t[i]);
        if (i == 0 || (in_shard > 0 && in_shard + b > max_bytes)) n_shards++, in_shard = 0;
        shard_of[i] = n_shards - 1;
        in_shard += b;
    }
    cJSON *index = cJSON_CreateObject();
    cJSON *imeta = cJSON_AddObjectToObject(index, "metadata");
    cJSON_AddNumberToObject(imeta, "total_size", (double)total);
    cJSON *map = cJSON_AddObjectToObject(index, "weight_map");
    int rc = 0;
    for (int s = 0, first = 0; s < n_shards && rc == 0; s++) {
        int count = 0;
        while (first + count < n && shard_of[first + count] == s) count++;
        char name[64];
        snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        rc = ct_st_write(path, t + first, count, (CtStMetaEntry *)meta, 1);
        for (int i = first; i < first + count; i++) cJSON_AddStringToObject(map, t[i].name, name);
        first += count;
    }
    ct_free(shard_of);
    *n_shards_out = n_shards;
    if (rc != 0) {
        cJSON_Delete(index);
        return -1;
    }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    char *text = cJSON_Print(index);
    cJSON_Delete(index);
    rc = ct_write_file_atomic(path, text, strlen(text));
    free(text);
    return rc;
}
