// A flipped bit and a truncation in every kind of file ctrain reads (issue 20's fault suite;
// docs/reliability.md). One row per file kind x fault: the file in the fixture folder is
// damaged in place, a command that reads it runs, the file is restored. Each row says what the
// outcome may be (tests/faults_fixture.h): a clear one-line error naming the file; that or the
// same result as on the intact file; or, where the format carries no checksum and the damaged
// file is still a valid file of its kind (a digit of a JSON value, a weight of a safetensors
// file), any clean outcome — ctrain cannot tell such a file from one written that way. Never a
// crash, a hang or an unclear error.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "tests/faults_fixture.h"
#include "tests/test.h"

typedef struct {
    const char *file;     // relative to the test's folder
    const char *fault;    // see damage()
    const char *command;  // bash; its last line is the result (or ctrain's error)
    FaultExpect expect;
    const char *shown;  // what the error must name, when not `file` (a PEFT folder's other file)
} FaultRow;

// The commands that read each kind, ending in a line that sums up the result.
#define TRAIN_ON_DATA                                                                                       \
    "rm -rf q; ctrain shard --info data > /dev/null && ctrain pretrain run.json --data.path=data "          \
    "--run.out_dir=q --train.max_steps=2 --train.eval_every=2 --train.save_every=0 2>&1 | "                 \
    "grep -a -o -E 'final train loss.*|^ctrain: .*'"
#define EVAL_CKPT "ctrain ckpt info r/best.h5 > /dev/null && ctrain eval --checkpoint r/best.h5 --data data | grep -a loss="
#define IMPORT_HF "rm -f x.h5; ctrain import hf hf --out x.h5 > /dev/null && ctrain eval --checkpoint x.h5 --data data | grep -a loss="
#define IMPORT_HF_INFO "rm -f x.h5; ctrain import hf hf --out x.h5 > /dev/null && ctrain ckpt info x.h5 | cksum"
#define EVAL_PEFT "ctrain eval --checkpoint r/best.h5 --adapter peft --data data | grep -a loss="
#define TOKENIZE(t) "ctrain tokenize --tokenizer " t " --input small.txt > ids.txt && cksum < ids.txt"
// A GPT-2 folder's merges only matter where the tokenizer is written out as tokenizer.json
// (the dataset's copy, a checkpoint's attribute): encoding follows encoder.json's ranks.
#define SHARD_WITH_GPT2                                                                                     \
    "rm -rf g; ctrain shard --tokenizer gpt2 --input small.txt --val-fraction 0 --out g > /dev/null && "    \
    "cksum < g/tokenizer.json"
#define PRETRAIN_CONFIG                                                                                     \
    "rm -rf q; ctrain pretrain run.json --data.path=data --run.out_dir=q --train.max_steps=2 "              \
    "--train.eval_every=2 --train.save_every=0 2>&1 | grep -a -o -E 'final train loss.*|^ctrain: .*'"

// Damages `path` as `fault` says: "flip:half" or "flip:end-N" flips the lowest bit of the byte
// at the middle or N bytes before the end; "flip:after:TEXT" the byte just after TEXT's first
// occurrence; "flip:num:TEXT" the last digit of the number after TEXT (a valid number still);
// "flip:at:N" the byte at N; "trunc:half" / "trunc:end-N" cut the file there. 0, or -1 when
// the place is not in the file.
static int damage(const char *path, const char *fault) {
    size_t size;
    char *data = ct_test_read(path, &size);
    if (!data) return -1;
    long at = -1, cut = -1;
    if (strcmp(fault, "flip:half") == 0) at = (long)(size / 2);
    else if (strncmp(fault, "flip:end-", 9) == 0) at = (long)size - atol(fault + 9);
    else if (strncmp(fault, "flip:at:", 8) == 0) at = atol(fault + 8);
    else if (strncmp(fault, "flip:after:", 11) == 0 || strncmp(fault, "flip:num:", 9) == 0) {
        int num = fault[5] == 'n';
        const char *text = fault + (num ? 9 : 11);
        const char *hit = memmem(data, size, text, strlen(text));
        if (hit) {
            at = (long)(hit - data) + (long)strlen(text);
            if (num) {
                if (at > 0 && data[at - 1] >= '0' && data[at - 1] <= '9') at--;
                while (at < (long)size && (data[at] == ' ' || data[at] == '\t')) at++;
                while (at + 1 < (long)size && data[at + 1] >= '0' && data[at + 1] <= '9') at++;
                if (at >= (long)size || data[at] < '0' || data[at] > '9') at = -1;
            }
        }
    } else if (strcmp(fault, "trunc:half") == 0) cut = (long)(size / 2);
    else if (strncmp(fault, "trunc:end-", 10) == 0) cut = (long)size - atol(fault + 10);
    int rc = -1;
    if (at >= 0 && at < (long)size) {
        data[at] ^= 0x01;
        rc = 0;
    } else if (cut >= 0 && cut < (long)size) {
        size = (size_t)cut;
        rc = 0;
    }
    if (rc == 0) {
        FILE *f = fopen(path, "wb");
        rc = f && fwrite(data, 1, size, f) == size ? 0 : -1;
        if (f && fclose(f) != 0) rc = -1;
    }
    free(data);
    return rc;
}

static int restore(const char *path, const char *data, size_t size) {
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, size, f) == size;
    if (f && fclose(f) != 0) ok = 0;
    return ok ? 0 : -1;
}

static const char *expect_name(FaultExpect e) {
    return e == FAULT_ERROR ? "error" : e == FAULT_ERROR_OR_SAME ? "error or same" : "clean";
}

// Runs every row; records one failure listing every row that went wrong.
static void run_rows(const FaultRow *rows, int n) {
    char failures[16384] = "";
    size_t flen = 0;
    // The intact files' result of each distinct command, run once.
    enum { MAX_COMMANDS = 16 };
    const char *commands[MAX_COMMANDS];
    static char baselines[MAX_COMMANDS][1001];
    int n_commands = 0;
    for (int i = 0; i < n; i++) {
        const FaultRow *row = &rows[i];
        char *out = NULL;
        const char *baseline = NULL;
        for (int c = 0; c < n_commands && !baseline; c++)
            if (strcmp(commands[c], row->command) == 0) baseline = baselines[c];
        if (!baseline) {
            CHECK(n_commands < MAX_COMMANDS);
            int rc = faults_run(row->command, 120, &out);
            snprintf(baselines[n_commands], sizeof baselines[0], "%s", faults_last_line(out));
            free(out);
            if (rc != 0) {
                ct_test_fail(__FILE__, __LINE__, "%s: the intact file's run failed (exit %d): %s", row->file, rc,
                             baselines[n_commands]);
                return;
            }
            commands[n_commands] = row->command;
            baseline = baselines[n_commands++];
        }
        int rc;
        char path[1200];
        snprintf(path, sizeof path, "%s", ct_test_path(row->file));
        size_t size;
        char *intact = ct_test_read(path, &size);
        CHECK_MSG(intact, "%s: missing from the fixture", row->file);
        if (damage(path, row->fault) != 0) {
            free(intact);
            ct_test_fail(__FILE__, __LINE__, "%s: cannot apply %s", row->file, row->fault);
            return;
        }
        rc = faults_run(row->command, 120, &out);
        const char *why = faults_judge(row->expect, rc, out, baseline, row->shown ? row->shown : row->file);
        printf("  %-40s %-28.28s expect %-13s exit %3d  %s\n", row->file, row->fault, expect_name(row->expect), rc,
               faults_last_line(out));
        if (why)
            flen += (size_t)snprintf(failures + flen, flen < sizeof failures ? sizeof failures - flen : 0,
                                     "\n    %s %s: %s", row->file, row->fault, why);
        free(out);
        int restored = restore(path, intact, size);
        free(intact);
        CHECK_MSG(restored == 0, "%s: cannot restore it", path);
        if (flen >= sizeof failures) break;
    }
    if (flen) ct_test_fail(__FILE__, __LINE__, "fault cases that went wrong:%s", failures);
}

// Shards are checked by their header, index and zstd frame checksums; every read the same way
// (the validation split as the training one).
TEST(faults, damaged_shards_are_refused_naming_the_file) {
    if (faults_fixture_files() != 0) return;
    static const FaultRow rows[] = {
        {"data/train-00000.ctshard", "flip:half", TRAIN_ON_DATA, FAULT_ERROR, NULL},
        {"data/train-00000.ctshard", "flip:at:20", TRAIN_ON_DATA, FAULT_ERROR, NULL},
        {"data/train-00000.ctshard", "flip:end-3", TRAIN_ON_DATA, FAULT_ERROR, NULL},
        {"data/train-00000.ctshard", "trunc:half", TRAIN_ON_DATA, FAULT_ERROR, NULL},
        {"data/train-00000.ctshard", "trunc:end-1", TRAIN_ON_DATA, FAULT_ERROR, NULL},
        {"data/val-00000.ctshard", "flip:half", TRAIN_ON_DATA, FAULT_ERROR, NULL},
        {"data/val-00000.ctshard", "flip:at:20", TRAIN_ON_DATA, FAULT_ERROR, NULL},
        {"data/val-00000.ctshard", "trunc:half", TRAIN_ON_DATA, FAULT_ERROR, NULL},
        {"data/dataset.json", "flip:after:\"splits\"", TRAIN_ON_DATA, FAULT_ERROR, NULL},
        {"data/dataset.json", "trunc:half", TRAIN_ON_DATA, FAULT_ERROR, NULL},
        {"data/tokenizer.json", "trunc:half", TRAIN_ON_DATA, FAULT_ERROR, NULL},
    };
    run_rows(rows, (int)(sizeof rows / sizeof rows[0]));
}

// Checkpoints: every tensor carries a checksum, and so does every attribute (model config,
// tokenizer, run config): an edited rope_theta must not change what the model computes.
TEST(faults, damaged_checkpoints_are_refused_naming_the_file) {
    if (faults_fixture_files() != 0) return;
    static const FaultRow rows[] = {
        {"r/best.h5", "flip:half", EVAL_CKPT, FAULT_ERROR, NULL},
        {"r/best.h5", "flip:end-2000", EVAL_CKPT, FAULT_ERROR_OR_SAME, NULL},
        {"r/best.h5", "flip:at:1000", EVAL_CKPT, FAULT_ERROR_OR_SAME, NULL},
        {"r/best.h5", "trunc:half", EVAL_CKPT, FAULT_ERROR, NULL},
        {"r/best.h5", "trunc:end-1", EVAL_CKPT, FAULT_ERROR, NULL},
        {"r/best.h5", "flip:num:\"rope_theta\":1", EVAL_CKPT, FAULT_ERROR, NULL},
        {"r/best.h5", "flip:num:\"vocab\":\t{\n\t\t\t\"\xc4\x80\":", EVAL_CKPT, FAULT_ERROR, NULL},
    };
    run_rows(rows, (int)(sizeof rows / sizeof rows[0]));
}

// Tokenizer files carry no checksum; what a flip makes inconsistent (an id twice, a merge of
// tokens that are not in the vocabulary, a rank file cut short) is refused.
TEST(faults, damaged_tokenizer_files_are_refused_or_read_the_same) {
    if (faults_fixture_files() != 0) return;
    const char *shared = ct_test_shared_data();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "mkdir -p gpt2 && cp '%s'/tokenizers/gpt2/* gpt2/ && cp '%s'/tokenizers/tiktoken/o200k_base.* .",
             shared, shared);
    CHECK_EQ_INT(faults_run(cmd, 60, NULL), 0);
    static const FaultRow rows[] = {
        {"tok.json", "flip:half", TOKENIZE("tok.json"), FAULT_ERROR_OR_SAME, NULL},
        {"tok.json", "flip:num:\"vocab\":\t{\n\t\t\t\"\xc4\x80\":", TOKENIZE("tok.json"), FAULT_ERROR, NULL},
        {"tok.json", "flip:after:\"merges\":\t[\"", TOKENIZE("tok.json"), FAULT_ERROR, NULL},
        {"tok.json", "trunc:half", TOKENIZE("tok.json"), FAULT_ERROR, NULL},
        {"tok.json", "trunc:end-1", TOKENIZE("tok.json"), FAULT_ERROR, NULL},
        {"o200k_base.tiktoken", "flip:half", TOKENIZE("o200k_base.tiktoken"), FAULT_ERROR, NULL},
        {"o200k_base.tiktoken", "flip:end-10", TOKENIZE("o200k_base.tiktoken"), FAULT_ERROR, NULL},
        {"o200k_base.tiktoken", "trunc:half", TOKENIZE("o200k_base.tiktoken"), FAULT_ERROR, NULL},
        {"o200k_base.tiktoken", "trunc:end-12", TOKENIZE("o200k_base.tiktoken"), FAULT_ERROR, NULL},
        {"gpt2/encoder.json", "flip:half", TOKENIZE("gpt2"), FAULT_ERROR_OR_SAME, NULL},
        {"gpt2/encoder.json", "trunc:half", TOKENIZE("gpt2"), FAULT_ERROR, NULL},
        {"gpt2/vocab.bpe", "flip:half", SHARD_WITH_GPT2, FAULT_ERROR, NULL},
        {"gpt2/vocab.bpe", "trunc:half", SHARD_WITH_GPT2, FAULT_ERROR, NULL},
        {"gpt2/vocab.bpe", "trunc:end-20", SHARD_WITH_GPT2, FAULT_ERROR, NULL},
    };
    run_rows(rows, (int)(sizeof rows / sizeof rows[0]));
}

// safetensors has no checksum: a damaged header is refused, a flipped weight is a valid file
// (as for transformers). The same for a PEFT folder's adapter_model.safetensors.
TEST(faults, damaged_safetensors_and_peft_folders_are_refused_or_still_valid) {
    if (faults_fixture_files() != 0) return;
    static const FaultRow rows[] = {
        {"hf/model.safetensors", "flip:at:3", IMPORT_HF, FAULT_ERROR, NULL},
        {"hf/model.safetensors", "flip:after:\"dtype\":\"", IMPORT_HF, FAULT_ERROR, NULL},
        {"hf/model.safetensors", "flip:num:\"data_offsets\":[0,", IMPORT_HF, FAULT_ERROR, NULL},
        {"hf/model.safetensors", "flip:after:\"__metadata__\":{", IMPORT_HF, FAULT_ERROR, NULL},
        {"hf/model.safetensors", "flip:end-100", IMPORT_HF, FAULT_CLEAN, NULL},
        {"hf/model.safetensors", "trunc:half", IMPORT_HF, FAULT_ERROR, NULL},
        {"hf/model.safetensors", "trunc:end-1", IMPORT_HF, FAULT_ERROR, NULL},
        {"peft/adapter_model.safetensors", "flip:after:\"dtype\":\"", EVAL_PEFT, FAULT_ERROR, NULL},
        {"peft/adapter_model.safetensors", "flip:num:\"shape\":[", EVAL_PEFT, FAULT_ERROR, NULL},
        {"peft/adapter_model.safetensors", "flip:end-50", EVAL_PEFT, FAULT_CLEAN, NULL},
        {"peft/adapter_model.safetensors", "trunc:half", EVAL_PEFT, FAULT_ERROR, NULL},
        // r names the adapters' shape: the error names the tensor that does not have it, and r.
        {"peft/adapter_config.json", "flip:num:\"r\":\t", EVAL_PEFT, FAULT_ERROR, "peft/"},
        {"peft/adapter_config.json", "flip:after:\"peft_type\":\t\"", EVAL_PEFT, FAULT_ERROR, NULL},
        {"peft/adapter_config.json", "flip:num:\"lora_alpha\":\t", EVAL_PEFT, FAULT_CLEAN, NULL},
        {"peft/adapter_config.json", "trunc:half", EVAL_PEFT, FAULT_ERROR, NULL},
    };
    run_rows(rows, (int)(sizeof rows / sizeof rows[0]));
}

// Configs: a broken structure or an unknown key is refused; a changed value that is still valid
// (a learning rate, an epsilon) is what the file says, as for transformers.
TEST(faults, damaged_configs_are_refused_or_still_valid) {
    if (faults_fixture_files() != 0) return;
    static const FaultRow rows[] = {
        {"run.json", "flip:after:\"train\": {\"", PRETRAIN_CONFIG, FAULT_ERROR, NULL},
        {"run.json", "flip:at:0", PRETRAIN_CONFIG, FAULT_ERROR, NULL},
        {"run.json", "flip:num:\"lr\": 3e-", PRETRAIN_CONFIG, FAULT_CLEAN, NULL},
        {"run.json", "trunc:half", PRETRAIN_CONFIG, FAULT_ERROR, NULL},
        {"hf/config.json", "flip:num:\"hidden_size\":\t", IMPORT_HF, FAULT_ERROR, NULL},
        {"hf/config.json", "flip:after:\"model_type\":\t\"", IMPORT_HF, FAULT_ERROR, NULL},
        {"hf/config.json", "flip:num:\"rms_norm_eps\":\t", IMPORT_HF, FAULT_CLEAN, NULL},
        {"hf/config.json", "trunc:half", IMPORT_HF, FAULT_ERROR, NULL},
        {"hf/generation_config.json", "flip:num:\"eos_token_id\":\t", IMPORT_HF_INFO, FAULT_CLEAN, NULL},
        {"hf/generation_config.json", "trunc:half", IMPORT_HF_INFO, FAULT_ERROR, NULL},
        {"hf/tokenizer.json", "trunc:half", IMPORT_HF_INFO, FAULT_ERROR, NULL},
    };
    run_rows(rows, (int)(sizeof rows / sizeof rows[0]));
}

// The sweep: seeded random single-bit flips and truncations in every kind, each judged as
// "clean" (no crash, no hang, an error is one line naming the file). The seed is printed.
TEST_LONG(faults, random_damage_in_every_file_kind_never_crashes_or_hangs) {
    if (faults_fixture_files() != 0) return;
    const char *shared = ct_test_shared_data();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "mkdir -p gpt2 && cp '%s'/tokenizers/gpt2/* gpt2/", shared);
    CHECK_EQ_INT(faults_run(cmd, 60, NULL), 0);
    // What an error may name: the file, or for a folder format (a dataset, a PEFT or HF folder)
    // the folder or another file of it (dataset.json's shard list names a shard), or for the run
    // config the key whose value is wrong (a key may also come from a --SECTION.KEY override).
    static const struct {
        const char *file, *command, *shown;
    } kinds[] = {
        {"data/train-00000.ctshard", TRAIN_ON_DATA, NULL},
        {"data/val-00000.ctshard", TRAIN_ON_DATA, NULL},
        {"data/dataset.json", TRAIN_ON_DATA, "data/"},
        {"r/best.h5", EVAL_CKPT, NULL},
        {"tok.json", TOKENIZE("tok.json"), NULL},
        {"gpt2/vocab.bpe", SHARD_WITH_GPT2, NULL},
        {"hf/model.safetensors", IMPORT_HF, "hf/"},
        {"hf/config.json", IMPORT_HF, "hf/"},
        {"hf/generation_config.json", IMPORT_HF_INFO, "hf/"},
        {"peft/adapter_config.json", EVAL_PEFT, "peft"},
        {"peft/adapter_model.safetensors", EVAL_PEFT, "peft"},
        {"run.json", PRETRAIN_CONFIG, "run.json|run.|model.|data.|train.|optim."},
    };
    uint64_t seed = 20;
    const char *env = getenv("CTRAIN_FAULT_SEED");
    if (env) seed = strtoull(env, NULL, 10);
    printf("  random damage: seed %llu (CTRAIN_FAULT_SEED=%llu replays it)\n", (unsigned long long)seed,
           (unsigned long long)seed);
    CtRng rng;
    ct_rng_seed(&rng, seed);
    enum { PER_KIND = 6 };
    static FaultRow rows[sizeof kinds / sizeof kinds[0] * PER_KIND];
    static char faults[sizeof rows / sizeof rows[0]][32];
    int n = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        size_t size;
        char *data = ct_test_read(ct_test_path(kinds[k].file), &size);
        CHECK_MSG(data && size > 1, "%s: missing from the fixture", kinds[k].file);
        free(data);
        for (int j = 0; j < PER_KIND; j++, n++) {
            uint64_t at = ct_rng_next(&rng) % size;
            snprintf(faults[n], sizeof faults[n], j < PER_KIND - 1 ? "flip:at:%llu" : "trunc:end-%llu",
                     (unsigned long long)(j < PER_KIND - 1 ? at : size - at));
            rows[n] = (FaultRow){kinds[k].file, faults[n], kinds[k].command, FAULT_CLEAN, kinds[k].shown};
        }
    }
    run_rows(rows, n);
}
