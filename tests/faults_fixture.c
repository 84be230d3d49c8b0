#include "tests/faults_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"

static const char *RUN_CONFIG =
    "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 1, \"d_model\": 32, \"n_head\": 2, \"n_kv_head\": 1,"
    " \"d_ff\": 64, \"max_seq_len\": 32},"
    " \"train\": {\"batch_size\": 4, \"seq_len\": 32, \"max_steps\": 10, \"eval_every\": 5, \"eval_batches\": 2,"
    " \"save_every\": 5, \"keep_last\": 3, \"n_samples\": 0},"
    " \"optim\": {\"lr\": 3e-3, \"warmup_steps\": 4}, \"run\": {\"threads\": 1}}";

int faults_run(const char *script, int seconds, char **output) {
    const char *path = ct_test_write("fault-case.sh", script);
    char cmd[4096];
    // ctrain is on PATH for the scripts; OMP_NUM_THREADS=1 keeps a case's timing out of the
    // machine's load.
    snprintf(cmd, sizeof cmd,
             "cd '%s' && PATH=\"$(dirname '%s'):$PATH\" OMP_NUM_THREADS=1 timeout -k 5 %d bash -o pipefail '%s' 2>&1",
             ct_test_tmpdir(), ct_test_bin(), seconds, path);
    return ct_test_run(cmd, output);
}

int faults_fixture_files(void) {
    const char *bin = ct_test_bin();
    const char *base = strrchr(bin, '/');
    if (!base || strcmp(base, "/ctrain") != 0) SKIP("CTRAIN_BIN must be a file named ctrain (scripts call it by name)");
    ct_test_write("run.json", RUN_CONFIG);
    char *out = NULL;
    int rc = faults_run(
        "set -e\n"
        "ctrain synth stories --documents 400 --out stories.txt\n"
        "head -c 2000 stories.txt > small.txt\n"
        "ctrain tokenizer train --input stories.txt --vocab-size 300 --special '<|endoftext|>' --out tok.json\n"
        "ctrain shard --tokenizer tok.json --input stories.txt --split paragraphs --val-fraction 0.1 --out data\n"
        "ctrain pretrain run.json --data.path=data --run.out_dir=r\n"
        "ctrain export hf r/best.h5 --out hf\n"
        "ctrain pretrain run.json --data.path=data --run.out_dir=lora --train.init_from=r/best.h5 --lora.r=4 "
        "--train.max_steps=4 --train.save_every=2 --train.eval_every=2\n"
        "ctrain lora export lora/ckpt-step00000004.h5 --out peft --base-name tiny\n",
        300, &out);
    if (rc != 0) {
        ct_test_fail(__FILE__, __LINE__, "preparing the fault fixture failed (exit %d): %s", rc, out);
        free(out);
        return -1;
    }
    free(out);
    return 0;
}

const char *faults_last_line(const char *output) {
    static char line[1001];
    line[0] = '\0';
    if (!output) return line;
    size_t end = strlen(output);
    while (end > 0 && (output[end - 1] == '\n' || output[end - 1] == '\r' || output[end - 1] == ' ')) end--;
    size_t start = end;
    while (start > 0 && output[start - 1] != '\n') start--;
    size_t n = end - start < sizeof line - 1 ? end - start : sizeof line - 1;
    memcpy(line, output + start, n);
    line[n] = '\0';
    return line;
}

// `names` lists what the line may name, separated by '|'.
static int names_one_of(const char *line, const char *names) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", names);
    for (char *save = NULL, *name = strtok_r(buf, "|", &save); name; name = strtok_r(NULL, "|", &save))
        if (strstr(line, name)) return 1;
    return 0;
}

const char *faults_judge(FaultExpect expect, int rc, const char *output, const char *baseline, const char *file) {
    static char why[1400];
    const char *last = faults_last_line(output);
    if (rc == 124 || rc == 137) return "it hung (killed by the timeout)";
    if (rc >= 128) {
        snprintf(why, sizeof why, "it crashed (exit %d): %s", rc, last);
        return why;
    }
    if (rc != 0) {
        if (strncmp(last, "ctrain: ", 8) != 0 || !names_one_of(last, file) || strstr(last, "fatal error")) {
            snprintf(why, sizeof why, "exit %d without a one-line error naming %s; last line: %s", rc, file, last);
            return why;
        }
        return NULL;
    }
    if (expect == FAULT_ERROR) {
        snprintf(why, sizeof why, "it was accepted (exit 0): %s", last);
        return why;
    }
    if (expect == FAULT_ERROR_OR_SAME && strcmp(last, baseline) != 0) {
        snprintf(why, sizeof why, "a silently different result: \"%s\" instead of \"%s\"", last, baseline);
        return why;
    }
    return NULL;
}
