// A full disk during every kind of write ctrain makes (issue 20's fault suite;
// docs/reliability.md), made real with tests/tools/small_disk.sh: a tmpfs of a few KB in a
// private mount namespace. Each case asserts a clear one-line error that says the disk is full,
// a non-zero exit that is not a crash, and no file under the final name (the output appears
// whole or not at all; a hidden temporary may remain). Checkpoints, best.h5 and metrics.jsonl
// are tests/test_faults_ckpt.c's and test_faults_data.c's.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/faults_fixture.h"
#include "tests/test.h"

typedef struct {
    const char *what;
    const char *size;     // of the disk; "full" fills it before the command starts
    const char *command;  // runs on the disk; $F is the fixture folder
    const char *gone;     // must not exist after the failure (NULL: the output is stdout)
} DiskCase;

// Runs each case; records one failure listing every case that went wrong.
static void run_cases(const DiskCase *cases, int n) {
    char root[1024], failures[8192] = "";
    snprintf(root, sizeof root, "%s", ct_test_tmpdir());
    size_t flen = 0;
    for (int i = 0; i < n; i++) {
        const DiskCase *c = &cases[i];
        int full = strcmp(c->size, "full") == 0;
        char script[4096], cmd[8192], *out = NULL;
        // The log lives outside the small disk (a full disk could not hold it).
        snprintf(script, sizeof script,
                 "%s{ %s; } > \"$F/disk.log\" 2>&1; echo \"exit=$?\"; "
                 "if [ -n '%s' ] && [ -e '%s' ]; then echo 'left=%s'; fi",
                 full ? "head -c 64M /dev/zero > .fill 2>/dev/null; " : "", c->command, c->gone ? c->gone : "",
                 c->gone ? c->gone : "", c->gone ? c->gone : "");
        ct_test_write("disk-case.sh", script);
        snprintf(cmd, sizeof cmd, "cd '%s' && F='%s' PATH=\"$(dirname '%s'):$PATH\" OMP_NUM_THREADS=1 timeout 120 "
                 "'%s/tests/tools/small_disk.sh' %s '%s/disk' 'sh \"$F/disk-case.sh\"'",
                 root, root, ct_test_bin(), getenv("CTRAIN_ROOT") ? getenv("CTRAIN_ROOT") : ".", full ? "64k" : c->size,
                 root);
        int rc = ct_test_run(cmd, &out);
        if (rc == 77) {
            free(out);
            SKIP("tests/tools/small_disk.sh cannot mount a small disk here (needs root or user namespaces)");
        }
        char path[1200];
        snprintf(path, sizeof path, "%s/disk.log", root);
        char *log = ct_test_read(path, NULL);
        int exit_code = -1;
        const char *at = out ? strstr(out, "exit=") : NULL;
        if (at) sscanf(at, "exit=%d", &exit_code);
        const char *last = faults_last_line(log);
        // The error names the output: its folder, the file, or stdout.
        char shown[256];
        snprintf(shown, sizeof shown, "%s", c->gone ? c->gone : "stdout");
        char *slash = strchr(shown, '/');
        if (slash) slash[1] = '\0';
        char why[1400] = "";
        if (rc != 0) snprintf(why, sizeof why, "small_disk.sh failed (exit %d): %s", rc, out);
        else if (exit_code == 0) snprintf(why, sizeof why, "exit 0 on a full disk: %s", last);
        else if (exit_code >= 124) snprintf(why, sizeof why, "exit %d (a crash or a hang): %s", exit_code, last);
        else if (strncmp(last, "ctrain: ", 8) != 0 || !strstr(last, "No space left on device"))
            snprintf(why, sizeof why, "exit %d without a one-line error saying the disk is full; last line: %s",
                     exit_code, last);
        else if (!strstr(last, shown))
            snprintf(why, sizeof why, "the error does not name %s: %s", shown, last);
        else if (strstr(out, "left="))
            snprintf(why, sizeof why, "%s is there after the failure", c->gone);
        printf("  %-28s disk %-5s exit %3d  %s\n", c->what, c->size, exit_code, last);
        if (why[0]) flen += (size_t)snprintf(failures + flen, flen < sizeof failures ? sizeof failures - flen : 0,
                                             "\n    %s: %s", c->what, why);
        free(out);
        free(log);
        if (flen >= sizeof failures) break;
    }
    if (flen) ct_test_fail(__FILE__, __LINE__, "disk-full cases that went wrong:%s", failures);
}

TEST(faults, disk_full_while_writing_data_tokenizers_and_exports_fails_cleanly) {
    if (faults_fixture_files() != 0) return;
    CHECK_EQ_INT(faults_run("head -n 5 stories.txt | sed 's/\"//g; s/.*/{\"text\": \"&\"}/' > small.jsonl && "
                            "ctrain tokenize --tokenizer tok.json --input small.txt > ids.txt", 60, NULL), 0);
    static const DiskCase cases[] = {
        {"shard", "16k", "ctrain shard --tokenizer \"$F/tok.json\" --input \"$F/stories.txt\" --split paragraphs "
                         "--val-fraction 0.1 --out d", "d/dataset.json"},
        {"shard --format sft", "full", "ctrain synth instructions --task reverse --examples 50 --out \"$F/rev.jsonl\" && "
                                       "ctrain shard --tokenizer \"$F/tok.json\" --input \"$F/rev.jsonl\" --format sft --out s",
         "s/dataset.json"},
        {"tokenizer train", "4k", "ctrain tokenizer train --input \"$F/stories.txt\" --vocab-size 300 --out t.json",
         "t.json"},
        {"tokenize", "4k", "ctrain tokenize --tokenizer \"$F/tok.json\" --input \"$F/small.txt\" > ids.txt", NULL},
        {"tokenize --jsonl", "full", "ctrain tokenize --tokenizer \"$F/tok.json\" --jsonl --input \"$F/small.jsonl\" > ids.jsonl",
         NULL},
        {"detokenize", "full", "ctrain detokenize --tokenizer \"$F/tok.json\" --input \"$F/ids.txt\" > text.txt", NULL},
        {"synth stories", "16k", "ctrain synth stories --documents 400 --out s.txt", "s.txt"},
        {"synth instructions", "8k", "ctrain synth instructions --task reverse --examples 400 --out s.jsonl", "s.jsonl"},
        {"export hf", "64k", "ctrain export hf \"$F/r/best.h5\" --out h", "h"},
        {"export hf --dtype bf16", "full", "ctrain export hf \"$F/r/best.h5\" --out h --dtype bf16", "h"},
        {"export gguf", "32k", "ctrain export gguf \"$F/r/best.h5\" --out m.gguf", "m.gguf"},
        {"lora export", "4k", "ctrain lora export \"$F/lora/ckpt-step00000004.h5\" --out p", "p"},
        {"eval", "full", "ctrain eval --checkpoint \"$F/r/best.h5\" --data \"$F/data\" > eval.txt", NULL},
        {"generate", "full", "ctrain generate --checkpoint \"$F/r/best.h5\" --max-tokens 8 > gen.txt", NULL},
        {"ckpt info", "full", "ctrain ckpt info \"$F/r/best.h5\" > info.txt", NULL},
    };
    run_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}

// `import hf` and `lora merge` write checkpoints through the checkpoint writer: an HDF5 close
// on the error path crashed there (exit 139) until the checkpoint helper's fix of issue 20.
TEST(faults, disk_full_while_importing_or_merging_into_a_checkpoint_fails_cleanly) {
    if (faults_fixture_files() != 0) return;
    static const DiskCase cases[] = {
        {"import hf", "64k", "ctrain import hf \"$F/hf\" --out x.h5", "x.h5"},
        {"lora merge", "64k", "ctrain lora merge --base \"$F/r/best.h5\" --adapter \"$F/peft\" --out m.h5", "m.h5"},
    };
    run_cases(cases, (int)(sizeof cases / sizeof cases[0]));
}
