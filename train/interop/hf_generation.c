#include "train/interop/hf_generation.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "data/input/read_file.h"
#include "train/interop/stop_tokens.h"

// The ids in dir/name; *found: the file exists and names eos_token_id. 0, or -1 + error.
static int read_ids(const char *dir, const char *name, int vocab_size, int32_t *ids, int *n, int *found) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    *n = *found = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;  // generation_config.json is optional; config.json was read before
    fclose(fp);
    size_t len;
    char *text = ct_read_whole_file(path, &len);
    if (!text) return -1;
    int rc = ct_eos_token_ids_parse(text, path, vocab_size, ids, CT_MAX_STOP_TOKENS - 1, n);
    ct_free(text);
    *found = *n > 0;
    return rc;
}

int ct_hf_generation_config_read(const char *dir, int vocab_size, char **out_json) {
    *out_json = NULL;
    int32_t ids[CT_MAX_STOP_TOKENS];
    int n, found;
    if (read_ids(dir, "generation_config.json", vocab_size, ids, &n, &found) != 0) return -1;
    if (!found && read_ids(dir, "config.json", vocab_size, ids, &n, &found) != 0) return -1;
    if (found) *out_json = ct_generation_config_json(ids, n);
    return 0;
}
