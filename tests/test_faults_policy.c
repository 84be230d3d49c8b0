// Faults of training policy and messages (issue 20): settings that would train wrongly are
// refused before anything is written, a diverging run warns once, a finished run resumed says
// there is nothing to do, a full disk under metrics.jsonl stops the run with whole lines and its
// checkpoints intact, signals under mpirun are reported as received, and generate/chat check
// their prompt and options before printing anything.
#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#include "tests/test.h"
#include "tests/train_fixture.h"

static const char *CONFIG =
    "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 1, \"d_model\": 32, \"n_head\": 2, \"n_kv_head\": 1,"
    " \"d_ff\": 64, \"max_seq_len\": 32},"
    " \"train\": {\"batch_size\": 4, \"seq_len\": 32, \"max_steps\": 6, \"eval_every\": 0, \"eval_batches\": 2,"
    " \"save_every\": 0, \"n_samples\": 0},"
    " \"optim\": {\"lr\": 3e-3, \"min_lr\": 3e-4, \"warmup_steps\": 2}, \"run\": {\"threads\": 1}}";

// Stories -> tok.json (3,000 tokens) -> data/, and run.json; 0, or -1 after a recorded failure.
static int prepare(void) {
    if (train_fixture_stories(300) != 0) return -1;
    ct_test_write("run.json", CONFIG);
    return 0;
}

// Runs `ctrain ARGS` in the test's folder (stderr with stdout); returns the exit status.
static int ctrain(const char *args, char **out) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && OMP_NUM_THREADS=1 '%s' %s 2>&1", ct_test_tmpdir(), ct_test_bin(), args);
    return ct_test_run(cmd, out);
}

static int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static int exists(const char *name) {
    char *text = ct_test_read(ct_test_path(name), NULL);
    free(text);
    return text != NULL;
}

// ---- optim.min_lr and divergence ----

TEST(faults, min_lr_above_lr_is_refused_naming_both_keys_and_values) {
    if (prepare() != 0) return;
    char *out;
    CHECK_EQ_INT(ctrain("config --check run.json --optim.lr=1 --optim.min_lr=3", &out), 1);
    CHECK_CONTAINS(out, "optim.min_lr 3 is above optim.lr 1");
    CHECK_EQ_INT(count(out, "\n"), 1);
    free(out);
    // The run is refused before it writes anything.
    CHECK_EQ_INT(ctrain("pretrain run.json --data.path=data --run.out_dir=r --optim.lr=1e-4", &out), 1);
    CHECK_CONTAINS(out, "optim.min_lr 0.0003 is above optim.lr 0.0001");
    free(out);
    CHECK(!exists("r/metrics.jsonl"));
    // A constant schedule never decays to min_lr; equal rates are a constant rate too.
    CHECK_EQ_INT(ctrain("config --check run.json --optim.lr=1e-4 --optim.schedule=constant", &out), 0);
    free(out);
    CHECK_EQ_INT(ctrain("config --check run.json --optim.lr=1e-4 --optim.min_lr=1e-4", &out), 0);
    free(out);
    // Unset, min_lr follows lr (a tenth of it): a fine-tuning rate below the default min_lr needs no second key.
    CHECK_EQ_INT(ctrain("config --print --optim.lr=2e-5", &out), 0);
    CHECK_CONTAINS(out, "\"min_lr\":\t2e-06");
    free(out);
}

TEST(faults, an_exploding_loss_warns_once_with_the_step_and_the_likely_cause) {
    if (prepare() != 0) return;
    char *out;
    CHECK_EQ_INT(ctrain("pretrain run.json --data.path=data --run.out_dir=x --optim.lr=10 --optim.min_lr=1 "
                        "--optim.warmup_steps=0 --optim.grad_clip=0",
                        &out),
                 0);
    CHECK_MSG(count(out, "training is diverging") == 1, "%s", out);
    CHECK_CONTAINS(out, "warning: step 2: training is diverging: the loss");
    CHECK_CONTAINS(out, "the learning rate optim.lr 10 is too high, with no warmup (optim.warmup_steps 0) and no "
                        "gradient clipping (optim.grad_clip 0)");
    free(out);
    // A run that learns is not warned about.
    CHECK_EQ_INT(ctrain("pretrain run.json --data.path=data --run.out_dir=ok --train.max_steps=20", &out), 0);
    CHECK_MSG(!strstr(out, "diverging"), "%s", out);
    free(out);
}

// ---- train.init_from's tokenizer ----

TEST(faults, init_from_with_another_tokenizer_is_refused_naming_both_and_the_first_id) {
    if (prepare() != 0) return;
    char *out;
    CHECK_EQ_INT(ctrain("pretrain run.json --data.path=data --run.out_dir=base --train.max_steps=2", &out), 0);
    free(out);
    // Another tokenizer: trained on other text, so its ids mean other tokens.
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "synth instructions --task reverse --examples 300 --out rev.jsonl && cp rev.jsonl rev.txt && '%s' tokenizer "
             "train --input rev.txt --vocab-size 400 --special '<|endoftext|>' --out other.json && '%s' shard "
             "--tokenizer other.json --input stories.txt --split paragraphs --val-fraction 0.1 --out other",
             ct_test_bin(), ct_test_bin());
    CHECK_EQ_INT(ctrain(cmd, &out), 0);
    free(out);
    CHECK_EQ_INT(ctrain("pretrain run.json --data.path=other --run.out_dir=o "
                        "--train.init_from=base/ckpt-step00000002.h5",
                        &out),
                 1);
    CHECK_CONTAINS(out, "train.init_from base/ckpt-step00000002.h5: its tokenizer (3000 tokens, stored in the "
                        "checkpoint) and the dataset's (other/tokenizer.json, ");
    CHECK_CONTAINS(out, "differ from id 256 on");
    CHECK_MSG(!strstr(out, "added") && !strstr(out, "step "), "%s", out);
    free(out);
    // A tokenizer that extends the model's (the SFT template's specials after its ids) still
    // starts from it, with new embedding rows.
    CHECK_EQ_INT(ctrain("shard --tokenizer tok.json --input rev.jsonl --format sft --val-fraction 0.1 --out sft", &out),
                 0);
    free(out);
    CHECK_EQ_INT(ctrain("sft run.json --data.path=sft --run.out_dir=s --train.max_steps=2 --train.eval_exact_match=0 "
                        "--train.init_from=base/ckpt-step00000002.h5",
                        &out),
                 0);
    CHECK_CONTAINS(out, "the base 3000: added 2 rows to the embedding");
    free(out);
    // ... and so does LoRA over it.
    CHECK_EQ_INT(ctrain("sft run.json --data.path=sft --run.out_dir=l --train.max_steps=2 --train.eval_exact_match=0 "
                        "--train.init_from=base/ckpt-step00000002.h5 --lora.r=4",
                        &out),
                 0);
    CHECK_CONTAINS(out, "added 2 rows to the embedding");
    free(out);
}

// ---- dpo without a starting model ----

TEST(faults, dpo_without_init_from_is_refused) {
    if (prepare() != 0) return;
    FILE *f = fopen(ct_test_path("pairs.jsonl"), "w");
    CHECK(f);
    for (int i = 0; i < 40; i++)
        fprintf(f, "{\"prompt\": \"Count to %d:\", \"chosen\": \" %d\", \"rejected\": \" %d\"}\n", i, i, i + 1);
    fclose(f);
    char *out;
    CHECK_EQ_INT(ctrain("shard --tokenizer tok.json --input pairs.jsonl --format dpo --val-fraction 0.1 --out pairs",
                        &out),
                 0);
    free(out);
    CHECK_EQ_INT(ctrain("dpo run.json --data.path=pairs --run.out_dir=d", &out), 1);
    CHECK_CONTAINS(out, "ctrain: dpo: train.init_from is not set");
    CHECK_EQ_INT(count(out, "\n"), 1);
    free(out);
    CHECK(!exists("d/metrics.jsonl"));
}

// ---- resuming a finished run ----

TEST(faults, resume_at_or_past_max_steps_says_there_is_nothing_to_do) {
    if (prepare() != 0) return;
    char *out;
    CHECK_EQ_INT(ctrain("pretrain run.json --data.path=data --run.out_dir=r --train.max_steps=4", &out), 0);
    free(out);
    char *before = ct_test_read(ct_test_path("r/metrics.jsonl"), NULL);
    CHECK(before);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(ctrain(i ? "pretrain run.json --data.path=data --run.out_dir=r --train.max_steps=3 --resume r"
                              : "pretrain run.json --data.path=data --run.out_dir=r --train.max_steps=4 --resume r",
                            &out),
                     0);
        const char *tail = strstr(out, "pretrain: nothing to do: r/ckpt-step00000004.h5 is at step 4 and "
                                       "train.max_steps is ");
        CHECK_MSG(tail && strchr(tail, '\n') && !strchr(tail, '\n')[1], "%s", out);  // the last line
        CHECK_MSG(!strstr(out, "nan") && !strstr(out, "resumed from") && !strstr(out, "done:"), "%s", out);
        free(out);
    }
    char *after = ct_test_read(ct_test_path("r/metrics.jsonl"), NULL);
    CHECK(after && strcmp(before, after) == 0);
    free(before);
    free(after);
}

// ---- a full disk under metrics.jsonl ----

// Every line of a metrics file is whole JSON and the file ends with a newline.
static int whole_lines(const char *text) {
    if (!text || !*text || text[strlen(text) - 1] != '\n') return 0;
    char *copy = strdup(text);
    int ok = 1;
    for (char *line = strtok(copy, "\n"); line && ok; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        ok = o != NULL;
        cJSON_Delete(o);
    }
    free(copy);
    return ok;
}

TEST(faults, a_full_disk_while_appending_metrics_stops_with_whole_lines_and_the_checkpoint_intact) {
    if (prepare() != 0) return;
    // On a 8 MB disk: a first run writes step 2's checkpoint; the disk is then filled but for two
    // pages, so the resumed run's metrics.jsonl fills it a few dozen lines later, mid-line.
    char script[4096], *out;
    const char *run = "OMP_NUM_THREADS=1 \"$CTRAIN_BIN\" pretrain ../run.json --data.path=../data --run.out_dir=out "
                      "--train.max_steps=300";
    snprintf(script, sizeof script,
             "%s --stop-after 2 > first.log 2>&1 || { cat first.log; exit 3; }; "
             "dd if=/dev/zero of=spare bs=4096 count=2 2>/dev/null; dd if=/dev/zero of=fill bs=4096 2>/dev/null; "
             "rm spare; %s --resume out > second.log 2>&1; echo \"status $?\"; tail -n 1 second.log; "
             "cp out/metrics.jsonl ../metrics.jsonl; \"$CTRAIN_BIN\" ckpt info out/ckpt-step00000002.h5 | head -n 3",
             run, run);
    const char *root = getenv("CTRAIN_ROOT");
    if (!root) SKIP("CTRAIN_ROOT is not set (make test sets it): cannot find tests/tools/small_disk.sh");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && CTRAIN_BIN='%s' sh '%s/tests/tools/small_disk.sh' 8m '%s/disk' '%s'",
             ct_test_tmpdir(), ct_test_bin(), root, ct_test_tmpdir(), script);
    int rc = ct_test_run(cmd, &out);
    if (rc == 77) {
        free(out);
        SKIP("tests/tools/small_disk.sh cannot mount a tmpfs here (needs root or user namespaces)");
    }
    CHECK_MSG(rc == 0, "%s", out);
    CHECK_CONTAINS(out, "status 1\n");  // an error, not a crash
    CHECK_CONTAINS(out, "ctrain: out/metrics.jsonl: cannot append the line of step ");
    CHECK_CONTAINS(out, ": No space left on device; stopped at step ");
    CHECK_CONTAINS(out, "the last one is out/ckpt-step00000002.h5; free space and continue with --resume out\n");
    CHECK_CONTAINS(out, "  step         2");  // the checkpoint before the fault still loads
    free(out);
    char *metrics = ct_test_read(ct_test_path("metrics.jsonl"), NULL);
    CHECK_MSG(whole_lines(metrics), "metrics.jsonl ends with a cut line: %s", metrics ? metrics : "(none)");
    CHECK(count(metrics, "\"train\"") > 10);
    free(metrics);
}

// ---- signals and world sizes under mpirun ----

static int have_mpirun(void) {
#ifndef CTRAIN_MPI
    SKIP("this build has no MPI (install OpenMPI and rebuild to test data parallelism)");
#endif
    if (ct_test_run("command -v mpirun", NULL) != 0) SKIP("mpirun is not on PATH: data-parallel tests skipped");
    return 1;
}

// mpirun with 2 ranks of a long run in the background; once both train, `signal_cmd` runs
// ($MPIRUN is mpirun's pid); the run's log, with mpirun's status last, comes back in *out.
static int interrupted_run(const char *out_dir, const char *signal_cmd, char **out) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cd '%s' || exit 1; OMP_NUM_THREADS=1 ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 mpirun --oversubscribe "
             "--allow-run-as-root -x ASAN_OPTIONS -x OMP_NUM_THREADS=1 -np 2 '%s' pretrain run.json --data.path=data "
             "--run.out_dir=%s --train.max_steps=1000000 > %s.log 2>&1 & MPIRUN=$!; "
             "(sleep 120; kill -KILL $MPIRUN) > /dev/null 2>&1 & WATCH=$!; "
             "for i in $(seq 300); do grep -q '\"train\"' %s/metrics.jsonl 2>/dev/null && break; sleep 0.1; done; %s; "
             "wait $MPIRUN; echo \"status $?\" >> %s.log; kill $WATCH; cat %s.log",
             ct_test_tmpdir(), ct_test_bin(), out_dir, out_dir, out_dir, signal_cmd, out_dir, out_dir);
    return ct_test_run(cmd, out);
}

TEST(faults, signals_under_mpirun_are_reported_as_the_ranks_received_them) {
    if (!have_mpirun() || prepare() != 0) return;
    char *out;
    // Ctrl-C to mpirun: Open MPI's ends the ranks with SIGTERM, which is what they say, with the
    // likely origin (an mpirun that passes SIGINT on gets SIGINT reported).
    CHECK_EQ_INT(interrupted_run("a", "kill -INT $MPIRUN", &out), 0);
    // (mpirun signals the ranks one after the other: a step may end when only the first has it,
    // so "1 of 2" is as truthful as "2 of 2"; the ranks stop together either way.)
    CHECK_MSG((strstr(out, "by SIGTERM (received by ") &&
               strstr(out, " of 2 ranks; mpirun passes a Ctrl-C or SIGINT it receives on to the ranks as SIGTERM")) ||
                  strstr(out, "by SIGINT (received by "),
              "%s", out);
    CHECK_CONTAINS(out, "continue with --resume a");
    free(out);
    // SIGINT to rank 1 alone: rank 0 reports SIGINT, not a SIGTERM nobody sent.
    CHECK_EQ_INT(interrupted_run("b", "for p in $(pgrep -P $MPIRUN); do grep -qz '^OMPI_COMM_WORLD_RANK=1$' "
                                      "/proc/$p/environ && kill -INT $p; done",
                                 &out),
                 0);
    CHECK_CONTAINS(out, "by SIGINT (received by 1 of 2 ranks)");
    free(out);
}

TEST(faults, resume_on_another_world_size_is_refused_before_saying_resumed) {
    if (!have_mpirun() || prepare() != 0) return;
    char *out;
    CHECK_EQ_INT(ctrain("pretrain run.json --data.path=data --run.out_dir=w --stop-after 2", &out), 0);
    free(out);
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && OMP_NUM_THREADS=1 ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 timeout 120 mpirun "
             "--oversubscribe --allow-run-as-root -x ASAN_OPTIONS -x OMP_NUM_THREADS=1 -np 2 '%s' pretrain run.json "
             "--data.path=data --run.out_dir=w --resume w 2>&1",
             ct_test_tmpdir(), ct_test_bin());
    CHECK(ct_test_run(cmd, &out) != 0);
    CHECK_CONTAINS(out, "w/ckpt-step00000002.h5 was written by a run of 1 ranks with this batch; this one has 2");
    CHECK_MSG(!strstr(out, "resumed from"), "%s", out);
    free(out);
}

// ---- generate and chat ----

// A trained checkpoint with a 32-token context: base/ckpt-step00000002.h5.
static int prepare_checkpoint(void) {
    if (prepare() != 0) return -1;
    char *out;
    int rc = ctrain("pretrain run.json --data.path=data --run.out_dir=base --train.max_steps=2", &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "%s", out);
    free(out);
    return rc == 0 ? 0 : -1;
}

static const char *LONG_PROMPT =
    "Once upon a time there was a little girl who lived in a village near the forest. Whenever she went out, the "
    "little girl wore a red riding cloak, so everyone in the village called her Little Red Riding Hood.";

TEST(faults, generate_refuses_a_prompt_longer_than_the_context_before_echoing_it) {
    if (prepare_checkpoint() != 0) return;
    char args[2048], *out;
    snprintf(args, sizeof args, "generate --checkpoint base/ckpt-step00000002.h5 --prompt '%s'", LONG_PROMPT);
    CHECK_EQ_INT(ctrain(args, &out), 1);
    CHECK_CONTAINS(out, "and the model's context is 32: no room to generate");
    CHECK_MSG(!strstr(out, "Once upon"), "the prompt was echoed: %s", out);
    CHECK_EQ_INT(count(out, "\n"), 1);
    free(out);
    snprintf(args, sizeof args, "chat --checkpoint base/ckpt-step00000002.h5 --template plain --prompt '%s'",
             LONG_PROMPT);
    CHECK_EQ_INT(ctrain(args, &out), 1);
    CHECK_CONTAINS(out, "with the chat template and the model's context is 32, of which 16 are kept for the answer");
    CHECK_EQ_INT(count(out, "\n"), 1);
    free(out);
}

TEST(faults, generate_says_when_the_context_is_full) {
    if (prepare_checkpoint() != 0) return;
    char *out;
    // 23 prompt tokens, 50 asked for: the context of 32 ends it first.
    CHECK_EQ_INT(ctrain("generate --checkpoint base/ckpt-step00000002.h5 --temperature 0 --max-tokens 50 --prompt "
                        "'Once upon a time there was a little girl who lived in a village near the forest, and every'",
                        &out),
                 0);
    CHECK_CONTAINS(out, "generate: stopped after ");
    CHECK_CONTAINS(out, " tokens: the model's context of 32 tokens is full (prompt ");
    free(out);
    CHECK_EQ_INT(ctrain("chat --checkpoint base/ckpt-step00000002.h5 --template plain --temperature 0 --max-tokens 50 "
                        "--prompt 'Once upon a time'",
                        &out),
                 0);
    CHECK_CONTAINS(out, "chat: stopped after ");
    CHECK_CONTAINS(out, " tokens: the model's context of 32 tokens is full");
    free(out);
    // --max-tokens ends it silently, as asked.
    CHECK_EQ_INT(ctrain("generate --checkpoint base/ckpt-step00000002.h5 --temperature 0 --max-tokens 3 --prompt "
                        "'Once upon a time'",
                        &out),
                 0);
    CHECK_MSG(!strstr(out, "stopped after"), "%s", out);
    free(out);
}

TEST(faults, bad_sampling_options_are_named_with_their_range) {
    if (prepare_checkpoint() != 0) return;
    static const char *cases[][2] = {
        {"--top-p 1.5", "--top-p 1.5: must be above 0 and at most 1"},
        {"--top-p 0", "--top-p 0: must be above 0 and at most 1"},
        {"--temperature -1", "--temperature -1: must be 0 (greedy) or more"},
        {"--top-k -2", "--top-k -2: must be 0 (off) or more"},
        {"--max-tokens 0", "--max-tokens 0: must be at least 1"},
        {"--temperature hot", "option '--temperature' expects a number, got 'hot'"},
    };
    for (int c = 0; c < 2; c++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char args[512], *out;
            snprintf(args, sizeof args, "%s --checkpoint base/ckpt-step00000002.h5 %s", c ? "chat" : "generate",
                     cases[i][0]);
            CHECK_EQ_INT(ctrain(args, &out), 2);
            CHECK_CONTAINS(out, cases[i][1]);
            free(out);
        }
}
