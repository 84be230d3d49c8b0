// Faults around checkpoints and the run folder (issue 20): damaged attributes, disk full while a
// checkpoint is written, resume past a damaged checkpoint, temporaries left by kill -9, two runs
// in one folder. Each case: a clear one-line error or a correct result, no crash, nothing lost.
#include <hdf5.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/checkpoint.h"
#include "core/alloc.h"
#include "core/error.h"
#include "tests/test.h"
#include "train/interop/checkpoint_io.h"

// A tiny LLaMA (d_model 8) on synthetic stories with a 300-token tokenizer: a run takes well
// under a second, a checkpoint with its optimizer state is ~170 KB.
static const char *TINY_RUN =
    "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 1, \"d_model\": 8, \"n_head\": 2, \"n_kv_head\": 1,"
    " \"d_ff\": 16, \"max_seq_len\": 16},"
    " \"train\": {\"batch_size\": 2, \"seq_len\": 16, \"max_steps\": 4, \"eval_every\": 0, \"eval_batches\": 1,"
    " \"save_every\": 2, \"keep_last\": 5, \"n_samples\": 0},"
    " \"optim\": {\"lr\": 3e-3, \"warmup_steps\": 1},"
    " \"data\": {\"path\": \"data\"}, \"run\": {\"threads\": 1}}";

// Runs the shell command FMT (formatted) in the test's folder with $BIN the ctrain binary.
// Returns the exit status; *out as ct_test_run.
static int shell(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int shell(char **out, const char *fmt, ...) {
    char script[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(script, sizeof script, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' || exit 99; BIN='%s'; %s", ct_test_tmpdir(), ct_test_bin(), script);
    return ct_test_run(cmd, out);
}
#define ctrain(out, fmt, ...) shell(out, "\"$BIN\" " fmt, ##__VA_ARGS__)

// stories -> tokenizer -> shards in data/, and run.json (TINY_RUN). 0, or -1 after a failure.
static int tiny_data(void) {
    char *out;
    ct_test_write("run.json", TINY_RUN);
    int rc = shell(&out,
                   "$BIN synth stories --documents 200 --out stories.txt && $BIN tokenizer train --input stories.txt "
                   "--vocab-size 300 --out tok.json --quiet && $BIN shard --tokenizer tok.json --input stories.txt "
                   "--split paragraphs --val-fraction 0.1 --out data");
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "preparing the data failed: %s", out);
    free(out);
    return rc ? -1 : 0;
}

// Replaces the first `len` bytes equal to `find` in FILE (in the test's folder) with `repl`.
static int patch_bytes(const char *file, const void *find, const void *repl, size_t len) {
    const char *path = ct_test_path(file);
    size_t size;
    char *data = ct_test_read(path, &size);
    char *at = data ? memmem(data, size, find, len) : NULL;
    int rc = -1;
    if (at) {
        memcpy(at, repl, len);
        FILE *f = fopen(path, "wb");
        rc = f && fwrite(data, 1, size, f) == size ? 0 : -1;
        if (f) fclose(f);
    }
    free(data);
    return rc;
}

static long file_size(const char *file) {
    struct stat st;
    return stat(ct_test_path(file), &st) == 0 ? (long)st.st_size : -1;
}

// ---- item: every attribute carries a checksum ----

// Replaces `find` by `repl` (the same length) in the text attribute `name` of FILE, through HDF5
// as h5py would (attrs[name] = ...): HDF5's own checks see a well-formed file.
static int edit_text_attribute(const char *file, const char *name, const char *find, const char *repl) {
    hid_t f = H5Fopen(ct_test_path(file), H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t attr = H5Aopen(f, name, H5P_DEFAULT), type = H5Aget_type(attr);
    char *text = calloc(H5Tget_size(type) + 1, 1);
    int rc = H5Aread(attr, type, text) < 0 ? -1 : 0;
    char *at = strstr(text, find);
    if (at) memcpy(at, repl, strlen(repl));
    if (!at || H5Awrite(attr, type, text) < 0) rc = -1;
    free(text);
    H5Tclose(type);
    H5Aclose(attr);
    if (H5Fclose(f) < 0) rc = -1;
    return rc;
}

// rope_theta edited after the file was written: every reader refuses the file, naming it and the
// attribute, instead of generating with another model.
TEST(faults, an_edited_model_config_is_refused_by_info_generate_export_init_from_and_resume) {
    if (tiny_data() != 0) return;
    char *out;
    CHECK_EQ_INT(ctrain(&out, "pretrain run.json --run.out_dir=run --train.max_steps=2"), 0);
    free(out);
    CHECK_EQ_INT(shell(NULL, "cp run/ckpt-step00000002.h5 edited.h5 && cp edited.h5 flipped.h5"), 0);
    CHECK_EQ_INT(edit_text_attribute("edited.h5", "model_config", "\"rope_theta\":10000", "\"rope_theta\":10001"), 0);
    static const char *const commands[] = {
        "ckpt info edited.h5",
        "generate --checkpoint edited.h5 --prompt 'Once' --max-tokens 4 --temperature 0",
        "export hf edited.h5 --out hf",
        "pretrain run.json --run.out_dir=again --train.max_steps=2 --train.init_from=edited.h5",
    };
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(ctrain(&out, "%s", commands[i]), 1);
        CHECK_CONTAINS(out, "edited.h5: attribute 'model_config' fails its checksum");
        free(out);
    }
    CHECK(access(ct_test_path("hf/config.json"), F_OK) != 0);
    // As the newest checkpoint of a run: --resume skips it, saying why, and takes the one before.
    CHECK_EQ_INT(shell(NULL, "cp edited.h5 run/ckpt-step00000004.h5"), 0);
    CHECK_EQ_INT(ctrain(&out, "pretrain run.json --run.out_dir=run --train.max_steps=3 --resume run"), 0);
    CHECK_CONTAINS(out, "skipping run/ckpt-step00000004.h5: run/ckpt-step00000004.h5: attribute 'model_config' fails");
    CHECK_CONTAINS(out, "resumed from run/ckpt-step00000002.h5 at step 2");
    free(out);
    // The same bytes changed on disk, under HDF5: refused as a damaged file.
    CHECK_EQ_INT(patch_bytes("flipped.h5", "\"rope_theta\":10000", "\"rope_theta\":10001", 18), 0);
    CHECK_EQ_INT(ctrain(&out, "ckpt info flipped.h5"), 1);
    CHECK_CONTAINS(out, "flipped.h5: ");
    CHECK_CONTAINS(out, "(damaged file)");
    free(out);
    // The untouched original says what it checked.
    CHECK_EQ_INT(ctrain(&out, "ckpt info run/ckpt-step00000002.h5"), 0);
    CHECK_CONTAINS(out, "version 1.1");
    CHECK_CONTAINS(out, "checksums    36 tensors and");
    CHECK_CONTAINS(out, "attributes verified");
    free(out);
}

// Each kind of attribute (text, integer, double, integer array) rewritten after the file was
// committed, one removed, one added: the open refuses the file and names the attribute.
static void write_small_checkpoint(const char *path) {
    CtCheckpoint c;
    float w[6] = {1, 2, 3, 4, 5, 6};
    CtNamedTensor t = {"w", 2, {2, 3}, CT_DTYPE_F32, w};
    uint64_t rng[4] = {1, 2, 3, 4};
    if (ct_ckpt_create(&c, path) != 0 || ct_ckpt_write_tensors(&c, "model", &t, 1) != 0 ||
        ct_ckpt_set_string(&c, "config", "{\"run\": {\"seed\": 7}}") != 0 || ct_ckpt_set_int(&c, "step", 1234) != 0 ||
        ct_ckpt_set_double(&c, "val_loss", 2.5) != 0 || ct_ckpt_set_u64s(&c, "rng", rng, 4) != 0 ||
        ct_ckpt_commit(&c) != 0)
        ct_test_fail(__FILE__, __LINE__, "writing %s: %s", path, ct_error_message());
}

// Rewrites attribute `name` of `path` with HDF5 itself: its stored bytes with the last one changed.
static int rewrite_attribute(const char *path, const char *name) {
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
    hid_t type = H5Aget_type(attr), space = H5Aget_space(attr);
    size_t bytes = H5Tget_size(type) * (size_t)H5Sget_simple_extent_npoints(space);
    unsigned char *buf = calloc(bytes, 1);
    int rc = H5Aread(attr, type, buf) < 0 ? -1 : 0;
    buf[bytes - (H5Tget_class(type) == H5T_STRING ? 2 : 1)] ^= 0x01;  // a string keeps its final 0
    if (rc == 0 && H5Awrite(attr, type, buf) < 0) rc = -1;
    free(buf);
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(attr);
    H5Fclose(file);
    return rc;
}

TEST(faults, every_kind_of_attribute_is_checked_when_a_checkpoint_opens) {
    const char *path = ct_test_path("small.h5");
    write_small_checkpoint(path);
    if (ct_test_failed()) return;
    CtCheckpoint c;
    CHECK_MSG(ct_ckpt_open(&c, path) == 0, "%s", ct_error_message());
    ct_ckpt_close(&c);
    static const char *const names[] = {"config", "step", "val_loss", "rng", "format", "version_minor"};
    for (int i = 0; i < 6; i++) {
        const char *copy = ct_test_path("edited.h5");
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path, copy);
        CHECK_EQ_INT(ct_test_run(cmd, NULL), 0);
        CHECK_EQ_INT(rewrite_attribute(copy, names[i]), 0);
        CHECK_MSG(ct_ckpt_open(&c, copy) != 0, "an edited '%s' was accepted", names[i]);
        char want[256];
        snprintf(want, sizeof want, "edited.h5: attribute '%s' fails its checksum", names[i]);
        CHECK_CONTAINS(ct_error_message(), want);
    }
    // The table itself damaged, or removed from a file that says it is of format 1.1.
    const char *copy = ct_test_path("table.h5");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path, copy);
    CHECK_EQ_INT(ct_test_run(cmd, NULL), 0);
    CHECK_EQ_INT(rewrite_attribute(copy, "attribute_crc32"), 0);
    CHECK(ct_ckpt_open(&c, copy) != 0);
    CHECK_CONTAINS(ct_error_message(), "table.h5: attribute 'attribute_crc32' (the table of attribute checksums) fails its own");
    hid_t file = H5Fopen(copy, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK(H5Adelete(file, "attribute_crc32") >= 0);
    H5Fclose(file);
    CHECK(ct_ckpt_open(&c, copy) != 0);
    CHECK_CONTAINS(ct_error_message(), "table.h5: checkpoint version 1.1 has no attribute checksums");
    // One removed, one added by another program: both are refused by name.
    file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK(H5Adelete(file, "step") >= 0);
    H5Fclose(file);
    CHECK(ct_ckpt_open(&c, path) != 0);
    CHECK_CONTAINS(ct_error_message(), "small.h5: attribute 'step' is missing");
    write_small_checkpoint(path);
    file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t space = H5Screate(H5S_SCALAR);
    int64_t value = 5;
    hid_t attr = H5Acreate2(file, "extra", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(attr >= 0 && H5Awrite(attr, H5T_NATIVE_INT64, &value) >= 0);
    H5Aclose(attr);
    H5Sclose(space);
    H5Fclose(file);
    CHECK(ct_ckpt_open(&c, path) != 0);
    CHECK_CONTAINS(ct_error_message(), "small.h5: attribute 'extra' has no checksum");
}

// Checkpoints written before attributes had checksums (ctrain 0.1.0 with compact attribute
// storage; the dense-storage format after it) still load, and ckpt info says what was not checked.
TEST(faults, checkpoints_without_attribute_checksums_load_and_info_says_they_are_unchecked) {
    const char *root = getenv("CTRAIN_ROOT");
    if (!root) SKIP("CTRAIN_ROOT is not set (run through make test)");
    static const char *const fixtures[] = {"ckpt-compact-attributes-0.1.0.h5.gz", "ckpt-dense-attributes-unchecked.h5.gz"};
    for (int i = 0; i < 2; i++) {
        char *out;
        CHECK_EQ_INT(shell(&out, "gzip -dc '%s/tests/data/%s' > old.h5 && $BIN ckpt info old.h5 && $BIN generate "
                                 "--checkpoint old.h5 --prompt 'The' --max-tokens 4 --temperature 0 >/dev/null",
                           root, fixtures[i]),
                     0);
        CHECK_CONTAINS(out, "version 1.0");
        CHECK_CONTAINS(out, "attributes unchecked (written before ctrain checksummed them)");
        CHECK_CONTAINS(out, "checksums    36 tensors verified");
        free(out);
    }
}

// ---- item: disk full while a checkpoint is written ----

// Runs SCRIPT with the test folder's `disk` a tmpfs of `kib` KiB (tests/tools/small_disk.sh);
// returns its exit status, or skips where this machine cannot mount one.
static int on_small_disk(long kib, const char *script, char **out) {
    const char *root = getenv("CTRAIN_ROOT");
    if (!root) SKIP("CTRAIN_ROOT is not set (run through make test)");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "sh '%s/tests/tools/small_disk.sh' %ldk '%s' \"BIN='%s' T='%s'; %s\"", root, kib,
             ct_test_path("disk"), ct_test_bin(), ct_test_tmpdir(), script);
    int rc = ct_test_run(cmd, out);
    if (rc == 77) SKIP("cannot mount a small tmpfs here (tests/tools/small_disk.sh needs root or user namespaces)");
    return rc;
}

// A run on a disk with room for what it writes up to its first `kept` file (measured on the
// ordinary disk: a run of `measure_steps`, its step checkpoints left out unless `kept` is one)
// plus half of that file, so that writing the next one fails. It must end with one clear line
// naming `failing`, exit status 1 (not SIGSEGV in HDF5's clean-up at exit), `kept` intact (ckpt
// info verifies every checksum) and no temporary file left.
static void check_disk_full_run(const char *extra, int measure_steps, const char *kept, const char *failing) {
    char *out;
    CHECK_EQ_INT(ctrain(&out, "pretrain run.json --run.out_dir=measure --train.max_steps=%d %s", measure_steps, extra), 0);
    free(out);
    char file[64];
    snprintf(file, sizeof file, "measure/%s", kept);
    long size = file_size(file);
    CHECK(size > 0);
    CHECK_EQ_INT(shell(&out, "%s du -sk measure | cut -f1", strncmp(kept, "ckpt-", 5) ? "rm measure/ckpt-step*;" : ""), 0);
    long kib = atol(out) + 8 + size / 2048;
    free(out);
    char script[4096];
    snprintf(script, sizeof script,
             "\\$BIN pretrain \\$T/run.json --data.path=\\$T/data --run.out_dir=out --train.max_steps=8 %s; "
             "echo exit=\\$?; \\$BIN ckpt info out/%s; echo info=\\$?; ls -a out",
             extra, kept);
    CHECK_EQ_INT(on_small_disk(kib, script, &out), 0);
    CHECK_MSG(strstr(out, "exit=1\n") != NULL, "expected exit status 1 (disk of %ld KiB):\n%s", kib, out);
    char want[128];
    snprintf(want, sizeof want, "ctrain: out/%s: ", failing);
    const char *line = strstr(out, want);
    CHECK_MSG(line != NULL, "expected \"%s\" in:\n%s", want, out);
    CHECK_MSG(!strstr(line + 1, "ctrain: "), "expected one error line:\n%s", out);
    CHECK_CONTAINS(line, "No space left on device");
    CHECK_CONTAINS(out, "info=0");
    CHECK_CONTAINS(out, "attributes verified");
    CHECK_MSG(strstr(out, ".tmp.") == NULL, "a temporary file was left behind:\n%s", out);
    free(out);
}

TEST(faults, disk_full_during_a_checkpoint_exits_cleanly_and_keeps_the_earlier_one) {
    if (tiny_data() != 0) return;
    check_disk_full_run("--train.save_every=2 --train.eval_every=0", 2, "ckpt-step00000002.h5", "ckpt-step00000004.h5");
}

// best.h5 is replaced when the validation loss improves: with no room for the new one beside the
// old, the old one stays.
TEST(faults, disk_full_during_best_h5_exits_cleanly_and_keeps_the_earlier_one) {
    if (tiny_data() != 0) return;
    check_disk_full_run("--train.save_every=0 --train.eval_every=1 --optim.lr=1e-2", 1, "best.h5", "best.h5");
}

// A LoRA run's checkpoints (adapters and their optimizer state) on a full disk, the same.
TEST(faults, disk_full_during_a_lora_checkpoint_exits_cleanly_and_keeps_the_earlier_one) {
    if (tiny_data() != 0) return;
    char *out;
    CHECK_EQ_INT(ctrain(&out, "pretrain run.json --run.out_dir=base --train.max_steps=2"), 0);
    free(out);
    char extra[2048];
    snprintf(extra, sizeof extra,
             "--train.init_from=%s/base/ckpt-step00000002.h5 --lora.r=4 --lora.targets=q_proj,v_proj "
             "--train.save_every=2 --train.eval_every=0",
             ct_test_tmpdir());
    check_disk_full_run(extra, 2, "ckpt-step00000002.h5", "ckpt-step00000004.h5");
}

// ---- item: --resume goes past a checkpoint whose tensor fails its checksum ----

TEST(faults, resume_skips_a_checkpoint_whose_tensor_fails_its_checksum) {
    if (tiny_data() != 0) return;
    char *out;
    CHECK_EQ_INT(ctrain(&out, "pretrain run.json --run.out_dir=run --train.max_steps=4"), 0);
    free(out);
    // One byte of a tensor's data (found by its values) flipped in the newest checkpoint.
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK_EQ_INT(ct_checkpoint_load(ct_test_path("run/ckpt-step00000004.h5"), &m, ct_ops_cpu(), 1, 1, 0, NULL, &meta), 0);
    ct_checkpoint_meta_free(&meta);
    unsigned char find[32], repl[32];
    memcpy(find, m.params + m.n_params / 2, sizeof find);
    memcpy(repl, find, sizeof repl);
    repl[13] ^= 0x10;
    ct_model_free(&m);
    CHECK_EQ_INT(patch_bytes("run/ckpt-step00000004.h5", find, repl, sizeof find), 0);
    CHECK_EQ_INT(shell(NULL, "cp run/ckpt-step00000004.h5 damaged.h5"), 0);
    CHECK_EQ_INT(ctrain(&out, "pretrain run.json --run.out_dir=run --train.max_steps=6 --resume run"), 0);
    CHECK_CONTAINS(out, "skipping run/ckpt-step00000004.h5: run/ckpt-step00000004.h5: tensor ");
    CHECK_CONTAINS(out, "fails its checksum (damaged file)");
    CHECK_CONTAINS(out, "resumed from run/ckpt-step00000002.h5 at step 2");
    CHECK_CONTAINS(out, "done: 6 steps");
    free(out);
    // ckpt info reads every tensor too.
    CHECK_EQ_INT(ctrain(&out, "ckpt info damaged.h5"), 1);
    CHECK_CONTAINS(out, "damaged.h5: tensor model/");
    CHECK_CONTAINS(out, "fails its checksum (damaged file)");
    free(out);
}

// ---- item: temporaries left by kill -9 during a save ----

TEST(faults, stale_temporaries_are_removed_when_a_run_starts_in_the_folder) {
    if (tiny_data() != 0) return;
    char *out;
    CHECK_EQ_INT(ctrain(&out, "pretrain run.json --run.out_dir=run --train.max_steps=2"), 0);
    free(out);
    // What an interrupted save leaves (ctrain's own pattern, .NAME.tmp.XXXXXX), and names that only
    // look alike, which stay.
    static const char *const stale[] = {"run/.ckpt-step00000004.h5.tmp.Ab12Cd", "run/.loss.svg.tmp.x9Y8z7"};
    static const char *const others[] = {"run/notes.tmp.Ab12Cd", "run/.notes.tmp.Ab12Cd7", "run/.notes.tmp.Ab-2Cd",
                                         "run/.tmp.Ab12Cd"};
    for (int i = 0; i < 2; i++) ct_test_write(stale[i], "half a checkpoint");
    for (int i = 0; i < 4; i++) ct_test_write(others[i], "not ours");
    CHECK_EQ_INT(ctrain(&out, "pretrain run.json --run.out_dir=run --train.max_steps=4 --resume run"), 0);
    CHECK_CONTAINS(out, "removed run/.ckpt-step00000004.h5.tmp.Ab12Cd (17 bytes)");
    CHECK_CONTAINS(out, "run/.loss.svg.tmp.x9Y8z7");
    CHECK_CONTAINS(out, "resumed from run/ckpt-step00000002.h5");
    free(out);
    for (int i = 0; i < 2; i++) CHECK_MSG(access(ct_test_path(stale[i]), F_OK) != 0, "%s is still there", stale[i]);
    for (int i = 0; i < 4; i++) CHECK_MSG(access(ct_test_path(others[i]), F_OK) == 0, "%s was removed", others[i]);
}

// A real kill -9 in the middle of a save: the next run in the folder removes what it left, and
// resumes from a checkpoint that verifies.
TEST_LONG(faults, kill_9_during_a_save_leaves_a_temporary_that_the_next_run_removes) {
    if (tiny_data() != 0) return;
    char *out;
    // A run that saves at every step; killed once it has a checkpoint and a temporary is seen.
    int rc = ctrain(&out,
                    "pretrain run.json --run.out_dir=run --train.max_steps=100000 --train.save_every=1 "
                    "--train.keep_last=2 --model.d_model=64 --model.d_ff=256 >/dev/null 2>&1 & pid=$!; "
                    "for k in $(seq 4000); do l=$(ls -a run 2>/dev/null); echo \"$l\" | grep -q '^ckpt-step' && "
                    "echo \"$l\" | grep -q '^\\.ckpt.*\\.tmp\\.' && break; done; "
                    "kill -9 $pid; wait $pid; ls -a run | grep -c '\\.tmp\\.' || true");
    CHECK_EQ_INT(rc, 0);
    int left = atoi(out);
    free(out);
    CHECK_EQ_INT(ctrain(&out, "pretrain run.json --run.out_dir=run --train.max_steps=100000 --model.d_model=64 "
                              "--model.d_ff=256 --resume run --stop-after 1 && echo listing: && ls -a run"),
                 0);
    if (left > 0) CHECK_CONTAINS(out, "a temporary file left by a save that was interrupted");
    CHECK_CONTAINS(out, "resumed from");
    const char *listing = strstr(out, "listing:");
    CHECK_MSG(listing && !strstr(listing, ".tmp."), "a temporary file is still there:\n%s", out);
    free(out);
}

// ---- item: two runs in one folder ----

TEST(faults, a_second_run_in_the_same_folder_is_refused_with_the_holders_pid) {
    if (tiny_data() != 0) return;
    char *out;
    // A run that goes on until killed; a second one started beside it while it trains.
    int rc = ctrain(&out,
                    "pretrain run.json --run.out_dir=run --train.max_steps=1000000 --train.save_every=1 "
                    "--train.keep_last=2 >/dev/null 2>&1 & pid=$!; "
                    "for k in $(seq 400); do sleep 0.02; [ -f run/ckpt-step00000001.h5 ] && break; done; "
                    "echo holder=$pid; $BIN pretrain run.json --run.out_dir=run --train.max_steps=2; echo second=$?; "
                    "$BIN pretrain run.json --run.out_dir=run --train.max_steps=2 --resume run; echo third=$?; "
                    "kill -9 $pid; wait $pid");
    CHECK(rc == 137 || rc == 0);
    const char *holder = strstr(out, "holder=");
    CHECK(holder);
    int pid = atoi(holder + 7);
    char want[256];
    snprintf(want, sizeof want, "run: another run (pid %d) is writing into this folder", pid);
    CHECK_CONTAINS(out, want);
    CHECK_CONTAINS(out, "second=1");
    CHECK_CONTAINS(out, "third=1");
    free(out);
    // The holder was killed (-9): its lock went with it, so the run resumes, and a later run reuses
    // the folder.
    CHECK_EQ_INT(ctrain(&out, "pretrain run.json --run.out_dir=run --train.max_steps=1000000 --resume run --stop-after 1"), 0);
    CHECK_CONTAINS(out, "resumed from run/ckpt-step");
    free(out);
    CHECK_EQ_INT(ctrain(&out, "pretrain run.json --run.out_dir=run --train.max_steps=2"), 0);
    free(out);
}
