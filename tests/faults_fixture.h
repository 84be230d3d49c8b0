// What the fault-injection tests (tests/test_faults_*.c, suite "faults") share: one folder of
// every kind of file ctrain writes and reads, made through the ctrain binary, and the checks
// every fault case makes of a command's outcome.
#pragma once

// In the test's folder: stories.txt, small.txt (its first 2 KB), tok.json (300 tokens), data/
// (text shards with a 10% validation split), run.json (a 1-layer llama), r/ (a 10-step run:
// ckpt-step00000005.h5, ckpt-step00000010.h5, best.h5), hf/ (`export hf` of r/best.h5),
// lora/ (a 4-step LoRA run on r/best.h5) and peft/ (its `lora export`). 0, or -1 after
// recording a test failure.
int faults_fixture_files(void);

// Runs SCRIPT (bash, with pipefail) in the test's folder under a `timeout SECONDS`, stdout and
// stderr together in *output (may be NULL; free()). Returns its exit status: 124 when it hung.
int faults_run(const char *script, int seconds, char **output);

// The last non-empty line of `output` (static storage, cut at 1,000 characters).
const char *faults_last_line(const char *output);

// What a fault case may end in. A crash (exit >= 128), a hang (124) or an error that is not one
// line naming the file is always a failure.
typedef enum {
    FAULT_ERROR,          // a clear one-line error naming the file, exit 1
    FAULT_ERROR_OR_SAME,  // that, or exit 0 with the same result as on the intact file
    FAULT_CLEAN,          // either of those, or exit 0 with another result: the format has no
                          // checksum and the damaged file is still a valid one (documented)
} FaultExpect;

// Checks an outcome against `expect`: `rc` and `output` of the damaged run, `baseline` the
// intact run's last line, `file` what the error must name (alternatives separated by '|': the
// file, its folder, the config key). Returns
// NULL when it is acceptable, else why not (static storage).
const char *faults_judge(FaultExpect expect, int rc, const char *output, const char *baseline, const char *file);
