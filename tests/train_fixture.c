#include "tests/train_fixture.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/rng.h"
#include "tests/test.h"
#include "train/interop/checkpoint_io.h"

int train_fixture_load_checkpoint(const char *run_dir, const char *file, CtModel *m, CtAdamW *opt) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/%s", ct_test_tmpdir(), run_dir, file);
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    memset(opt, 0, sizeof *opt);
    int rc = ct_checkpoint_load(path, m, ct_ops_cpu(), 1, 1, 0, opt, &meta);
    if (rc == 0) ct_checkpoint_meta_free(&meta);
    return rc;
}

int train_fixture_stories(int documents) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    // The stories alone give ~530 tokens. With 200 KB of real text beside them (where
    // ../shared/data is present) the tokenizer has 3,000 and its tokenizer.json is ~80 KB, above
    // HDF5's 64 KB compact-attribute limit, so every checkpoint these runs write carries a
    // tokenizer of a real size (item 1 of issue 19 hid behind 300-token ones).
    const char *shared = getenv("CTRAIN_SHARED");
    char corpus[1024] = "";
    if (shared) snprintf(corpus, sizeof corpus, "%s/corpora/nlp-corpus-40k.txt", shared);
    int real_text = shared && access(corpus, R_OK) == 0;
    char cmd[8192], *out;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' synth stories --documents %d --out stories.txt && cp stories.txt tok-input.txt && %s%s%s"
             "'%s' tokenizer train --input tok-input.txt --vocab-size %d --special '<|endoftext|>' --out tok.json && "
             "'%s' shard --tokenizer tok.json --input stories.txt --split paragraphs --val-fraction 0.1 --out data",
             dir, bin, documents, real_text ? "head -c 200000 '" : "", real_text ? corpus : "",
             real_text ? "' >> tok-input.txt && " : "", bin, real_text ? 3000 : 300, bin);
    if (ct_test_run(cmd, &out) != 0) {
        ct_test_fail(__FILE__, __LINE__, "preparing the data failed: %s", out);
        free(out);
        return -1;
    }
    free(out);
    return 0;
}

int train_fixture_base(int documents, const char *config, const char *extra) {
    if (train_fixture_stories(documents) != 0) return -1;
    ct_test_write("run.json", config);
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' pretrain run.json --data.path=data --run.out_dir=base %s",
             ct_test_tmpdir(), ct_test_bin(), extra);
    if (ct_test_run(cmd, &out) != 0) {
        ct_test_fail(__FILE__, __LINE__, "training the base failed: %s", out);
        free(out);
        return -1;
    }
    free(out);
    return 0;
}

char *train_fixture_metric_lines(const char *run_dir, int from) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", ct_test_tmpdir(), run_dir);
    char *text = ct_test_read(path, NULL);
    if (!text) return NULL;
    size_t cap = strlen(text) + 1, len = 0;
    char *out = calloc(cap, 1);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        int step;
        const char *at = strstr(line, "\"step\": ");
        if (!strstr(line, "\"train\"") || !at || sscanf(at, "\"step\": %d", &step) != 1 || step < from) continue;
        char *cut = strstr(line, ", \"tokens_per_s\"");
        if (cut) *cut = '\0';
        len += (size_t)snprintf(out + len, cap - len, "%s\n", line);
    }
    free(text);
    return out;
}

int train_fixture_reverse_pairs(const char *dir, int pairs, char **out) {
    const char *shared = ct_test_shared_data();
    if (!shared) return 1;
    static const char *words[10] = {"apple", "banana", "cherry", "grape", "lemon",
                                    "mango", "orange", "peach", "pear", "plum"};
    CtRng rng;
    ct_rng_seed(&rng, 3);
    char path[1200];
    snprintf(path, sizeof path, "%s/pairs.jsonl", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    for (int i = 0; i < pairs; i++) {
        int a = (int)ct_rng_below(&rng, 10), b = (int)ct_rng_below(&rng, 10), c = (int)ct_rng_below(&rng, 10);
        fprintf(f, "{\"prompt\": \"List: %s %s %s\\nReversed:\", \"chosen\": \" %s %s %s\", \"rejected\": \" %s %s %s\"}\n",
                words[a], words[b], words[c], words[c], words[b], words[a], words[a], words[b], words[c]);
    }
    fclose(f);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && head -c 300000 '%s/corpora/nlp-corpus-40k.txt' > corpus.txt && '%s' tokenizer train --input "
             "corpus.txt --vocab-size 1024 --special '<|endoftext|>' --out tok.json && '%s' shard --tokenizer tok.json "
             "--input pairs.jsonl --format dpo --val-fraction 0.1 --out pairs && '%s' shard --tokenizer tok.json "
             "--input corpus.txt --val-fraction 0.1 --out text",
             dir, shared, ct_test_bin(), ct_test_bin(), ct_test_bin());
    return ct_test_run(cmd, out);
}

double train_fixture_metric(const char *metrics_path, const char *kind, int step, const char *key) {
    char *text = ct_test_read(metrics_path, NULL);
    double value = NAN;
    for (char *line = text ? strtok(text, "\n") : NULL; line && isnan(value); line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *k = cJSON_GetObjectItem(o, "kind"), *s = cJSON_GetObjectItem(o, "step"), *v = cJSON_GetObjectItem(o, key);
        if (cJSON_IsString(k) && strcmp(k->valuestring, kind) == 0 && cJSON_IsNumber(s) && s->valueint == step &&
            cJSON_IsNumber(v))
            value = v->valuedouble;
        cJSON_Delete(o);
    }
    free(text);
    return value;
}

int train_fixture_mpirun(int np, const char *args, char **out) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && OMP_NUM_THREADS=1 ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 timeout 300 mpirun --oversubscribe "
             "--allow-run-as-root -x ASAN_OPTIONS -x OMP_NUM_THREADS=1 -np %d '%s' %s 2>&1",
             ct_test_tmpdir(), np, ct_test_bin(), args);
    return ct_test_run(cmd, out);
}
