// ctrain eval --task arithmetic through the binary: the accuracy line agrees with the
// per-example file, whose extracted answers and verdicts are recomputed here with the answer
// rule; answers that we set to what the model says count as correct, so the score follows the
// reference; a message list is the same prompt as its string; bad input stops with FILE:LINE.
// The learning check (SFT on the task takes held-out accuracy from ~0 to most) is in test-long.
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "data/examples/answer_extract.h"
#include "tests/test.h"

// A tokenizer, an SFT dataset of the task and a checkpoint after `steps` steps of SFT (run/),
// with held-out prompts in held.jsonl. `task_options`: ranges for synth.
static int make_model(const char *task_options, int steps) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' synth instructions --task arithmetic %s --examples %d --out train.jsonl && "
             "'%s' synth instructions --task arithmetic %s --split heldout --seed 2 --examples 200 --out held.jsonl && "
             "cp train.jsonl train.txt && '%s' tokenizer train --input train.txt --vocab-size 300 --pattern qwen2 "
             "--special '<|endoftext|>' --out tok.json && '%s' shard --tokenizer tok.json --input train.jsonl "
             "--format sft --val-fraction 0.02 --out data",
             dir, bin, task_options, steps >= 1000 ? 20000 : 4000, bin, task_options, bin, bin);
    int rc = ct_test_run(cmd, &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "%s", out ? out : "");
    free(out);
    if (rc != 0) return rc;
    ct_test_write("sft.json",
                  "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 3, \"d_model\": 128, \"n_head\": 4, \"n_kv_head\": 2,"
                  " \"d_ff\": 384, \"max_seq_len\": 64}, \"data\": {\"path\": \"data\"},"
                  " \"train\": {\"batch_size\": 16, \"seq_len\": 64, \"max_steps\": 1, \"eval_every\": 0,"
                  " \"eval_batches\": 2, \"save_every\": 0, \"n_samples\": 0},"
                  " \"optim\": {\"lr\": 2e-3, \"min_lr\": 2e-4, \"warmup_steps\": 30, \"weight_decay\": 0.0}}");
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' sft sft.json --run.out_dir=run --run.threads=1 --train.max_steps=%d",
             dir, bin, steps);
    rc = ct_test_run(cmd, &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "%s", out ? out : "");
    free(out);
    return rc;
}

// `ctrain eval --task arithmetic ARGS` in the test's folder. Returns the exit status; the last
// line's numbers in *acc, *correct, *examples (NAN/-1 when absent); *out gets the output.
static int eval_task(const char *args, double *acc, int *correct, int *examples, char **out) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' eval --threads 1 --task arithmetic %s 2>&1", ct_test_tmpdir(),
             ct_test_bin(), args);
    char *text = NULL;
    int rc = ct_test_run(cmd, &text);
    const char *last = text ? strstr(text, "accuracy=") : NULL;
    *acc = -1, *correct = *examples = -1;
    if (rc == 0 && (!last || sscanf(last, "accuracy=%lf correct=%d examples=%d", acc, correct, examples) != 3)) rc = -1;
    *out = text;
    return rc;
}

typedef struct {
    char completion[1024], extracted[256], answer[64];
    int correct, line;
} Result;

// The per-example file into results[max]; returns how many lines (-1 on a malformed one).
static int read_results(const char *name, Result *r, int max) {
    char *text = ct_test_read(ct_test_path(name), NULL);
    if (!text) return -1;
    int n = 0;
    for (char *line = strtok(text, "\n"); line && n < max; line = strtok(NULL, "\n"), n++) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *c = cJSON_GetObjectItem(o, "completion"), *e = cJSON_GetObjectItem(o, "extracted"),
                    *a = cJSON_GetObjectItem(o, "answer"), *ok = cJSON_GetObjectItem(o, "correct"),
                    *l = cJSON_GetObjectItem(o, "line");
        if (!cJSON_IsString(c) || !cJSON_IsString(e) || !cJSON_IsString(a) || !cJSON_IsBool(ok) || !cJSON_IsNumber(l)) {
            cJSON_Delete(o);
            free(text);
            return -1;
        }
        snprintf(r[n].completion, sizeof r[n].completion, "%s", c->valuestring);
        snprintf(r[n].extracted, sizeof r[n].extracted, "%s", e->valuestring);
        snprintf(r[n].answer, sizeof r[n].answer, "%s", a->valuestring);
        r[n].correct = cJSON_IsTrue(ok);
        r[n].line = (int)l->valuedouble;
        cJSON_Delete(o);
    }
    free(text);
    return n;
}

// The results agree with the rule: each extraction and verdict recomputed from the completion.
static int count_checked_correct(const Result *r, int n) {
    int correct = 0;
    for (int i = 0; i < n; i++) {
        char *got = ct_extract_answer(r[i].completion, strlen(r[i].completion));
        int same = strcmp(got, r[i].extracted) == 0 && ct_answer_matches(got, r[i].answer) == r[i].correct;
        ct_free(got);
        if (!same) {
            ct_test_fail(__FILE__, __LINE__, "line %d: completion \"%s\" extracted \"%s\" answer %s correct %d",
                         r[i].line, r[i].completion, r[i].extracted, r[i].answer, r[i].correct);
            return -1;
        }
        correct += r[i].correct;
    }
    return correct;
}

TEST(eval_task, accuracy_line_agrees_with_the_per_example_file) {
    if (make_model("", 1) != 0) return;
    double acc;
    int correct, examples;
    char *out;
    int rc = eval_task("--checkpoint run/ckpt-step00000001.h5 --prompts held.jsonl --examples 50 --max-new-tokens 6 "
                       "--out res.jsonl", &acc, &correct, &examples, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    static Result r[64];
    CHECK_EQ_INT(read_results("res.jsonl", r, 64), 50);
    CHECK_EQ_INT(examples, 50);
    CHECK(acc >= 0 && acc <= 1);
    CHECK_EQ_INT(count_checked_correct(r, 50), correct);
    CHECK_NEAR(acc, correct / 50.0, 1e-6);
    for (int i = 0; i < 50; i++) CHECK_EQ_INT(r[i].line, i + 1);
}

// The score follows the reference: with the answers of half the prompts set to what the model
// said (after a short SFT its answers are numbers), exactly those count, plus any it got right.
TEST(eval_task, answers_set_to_the_models_own_are_counted_correct) {
    if (make_model("--operands 2 --digits 1-2", 60) != 0) return;
    double acc;
    int correct, examples;
    char *out;
    int rc = eval_task("--checkpoint run/ckpt-step00000060.h5 --prompts held.jsonl --examples 40 --out first.jsonl", &acc,
                       &correct, &examples, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    static Result r[40];
    CHECK_EQ_INT(read_results("first.jsonl", r, 40), 40);
    char *held = ct_test_read(ct_test_path("held.jsonl"), NULL);
    CHECK(held);
    FILE *f = fopen(ct_test_path("rigged.jsonl"), "w");
    CHECK(f);
    int expected = 0, numbers = 0, i = 0;
    for (char *line = strtok(held, "\n"); line && i < 40; line = strtok(NULL, "\n"), i++) {
        cJSON *o = cJSON_Parse(line);
        if (i % 2 == 0 && r[i].extracted[0]) {
            cJSON_ReplaceItemInObject(o, "answer", cJSON_CreateString(r[i].extracted));
            expected++, numbers++;
        } else {
            expected += r[i].correct;
        }
        char *text = cJSON_PrintUnformatted(o);
        fprintf(f, "%s\n", text);
        cJSON_free(text);
        cJSON_Delete(o);
    }
    fclose(f);
    free(held);
    CHECK_MSG(numbers >= 10, "only %d of 20 answers held a number", numbers);
    rc = eval_task("--checkpoint run/ckpt-step00000060.h5 --prompts rigged.jsonl --out second.jsonl", &acc, &correct,
                   &examples, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    CHECK_EQ_INT(examples, 40);
    CHECK_EQ_INT(correct, expected);
    static Result again[40];
    CHECK_EQ_INT(read_results("second.jsonl", again, 40), 40);
    for (i = 0; i < 40; i++) CHECK_STR_EQ(again[i].completion, r[i].completion);  // greedy: the same answers
}

// A message list (with its assistant answer, as an SFT file has it) is the prompt of its user
// message: the same rendering, the same completion.
TEST(eval_task, a_message_list_is_the_same_prompt_as_its_string) {
    if (make_model("--operands 2 --digits 1-2", 60) != 0) return;  // answers in digits: chat prints raw bytes
    ct_test_write("p.jsonl", "{\"prompt\": \"What is 3 + 41?\", \"answer\": \"44\"}\n"
                             "\n"
                             "{\"messages\": [{\"role\": \"user\", \"content\": \"What is 3 + 41?\"}, {\"role\": "
                             "\"assistant\", \"content\": \"44\"}], \"answer\": 44}\n");
    double acc;
    int correct, examples;
    char *out;
    int rc = eval_task("--checkpoint run/ckpt-step00000060.h5 --prompts p.jsonl --max-new-tokens 5 --out r.jsonl", &acc,
                       &correct, &examples, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    Result r[2];
    CHECK_EQ_INT(read_results("r.jsonl", r, 2), 2);
    CHECK_EQ_INT(examples, 2);
    CHECK_EQ_INT(r[0].line, 1);
    CHECK_EQ_INT(r[1].line, 3);  // the blank line is skipped, and counted
    CHECK_STR_EQ(r[0].completion, r[1].completion);
    CHECK_STR_EQ(r[1].answer, "44");  // an integer answer, as text
    // and it is what `ctrain chat` answers to that message, greedily, within the same 5 tokens
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' chat --checkpoint run/ckpt-step00000060.h5 --prompt 'What is 3 + 41?' "
             "--temperature 0 --max-tokens 5 --threads 1 2>/dev/null", ct_test_tmpdir(), ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    char want[1100];
    snprintf(want, sizeof want, "%s\n", r[0].completion);
    CHECK_STR_EQ(out, want);
    free(out);
}

// A checkpoint without a chat template (pretraining's) reads a string prompt as plain text, as
// `ctrain generate --prompt` does, and refuses what needs a template.
TEST(eval_task, without_a_chat_template_a_string_prompt_is_its_text) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' synth instructions --task arithmetic --examples 2000 --out t.jsonl && cp t.jsonl t.txt && "
             "'%s' tokenizer train --input t.txt --vocab-size 300 --pattern qwen2 --out tok.json && "
             "'%s' shard --tokenizer tok.json --input t.txt --split lines --out lm && "
             "'%s' pretrain lm.json --run.out_dir=run --run.threads=1",
             dir, bin, bin, bin, bin);
    // 30 steps: enough for greedy text of ASCII (generate prints raw bytes, the results file U+FFFD)
    ct_test_write("lm.json", "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 1, \"d_model\": 32, \"n_head\": 2,"
                             " \"n_kv_head\": 1, \"d_ff\": 64, \"max_seq_len\": 64}, \"data\": {\"path\": \"lm\"},"
                             " \"train\": {\"batch_size\": 4, \"seq_len\": 64, \"max_steps\": 30, \"eval_every\": 0,"
                             " \"eval_batches\": 1, \"save_every\": 0, \"n_samples\": 0}, \"optim\": {\"lr\": 1e-2}}");
    CHECK_MSG(ct_test_run(cmd, &out) == 0, "%s", out);
    free(out);
    ct_test_write("p.jsonl", "{\"prompt\": \"What is 3 + 41?\", \"answer\": \"44\"}\n");
    ct_test_write("sys.jsonl", "{\"prompt\": \"What is 3 + 41?\", \"system\": \"Add.\", \"answer\": \"44\"}\n");
    double acc;
    int correct, examples;
    int rc = eval_task("--checkpoint run/ckpt-step00000030.h5 --prompts p.jsonl --max-new-tokens 12 --out r.jsonl", &acc,
                       &correct, &examples, &out);
    CHECK_MSG(rc == 0, "%s", out);
    CHECK_CONTAINS(out, "as plain text, no chat template");
    free(out);
    Result r[1];
    CHECK_EQ_INT(read_results("r.jsonl", r, 1), 1);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' generate --checkpoint run/ckpt-step00000030.h5 --prompt 'What is 3 + 41?' "
             "--temperature 0 --max-tokens 12 --threads 1 2>/dev/null", dir, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    char want[1200];
    snprintf(want, sizeof want, "What is 3 + 41?%s\n", r[0].completion);
    CHECK_STR_EQ(out, want);
    free(out);
    rc = eval_task("--checkpoint run/ckpt-step00000030.h5 --prompts sys.jsonl", &acc, &correct, &examples, &out);
    CHECK_MSG(rc != 0 && strstr(out, "sys.jsonl:1: a system message or a message list needs a checkpoint with a chat "
                                     "template"), "%s", out);
    free(out);
}

static void check_fails(const char *args, const char *message, int line) {
    double acc;
    int correct, examples;
    char *out;
    int rc = eval_task(args, &acc, &correct, &examples, &out);
    if (rc == 0 || !out || !strstr(out, message))
        ct_test_fail(__FILE__, line, "eval --task arithmetic %s: want a failure with \"%s\", got %d: %s", args, message,
                     rc, out ? out : "");
    free(out);
}
#define FAILS(args, message) check_fails(args, message, __LINE__)

TEST(eval_task, bad_prompts_and_options_are_refused_with_file_and_line) {
    if (make_model("--operands 2 --digits 1", 1) != 0) return;
    const char *ck = "--checkpoint run/ckpt-step00000001.h5";
    char args[1024];
    ct_test_write("bad_json.jsonl", "{\"prompt\": \"What is 1 + 2?\", \"answer\": \"3\"}\n{\"prompt\": \"What\n");
    ct_test_write("no_answer.jsonl", "{\"prompt\": \"What is 1 + 2?\", \"answer\": \"3\"}\n\n{\"prompt\": \"x\"}\n");
    ct_test_write("float_answer.jsonl", "{\"prompt\": \"What is 1 + 2?\", \"answer\": 3.5}\n");
    ct_test_write("no_prompt.jsonl", "{\"question\": \"What is 1 + 2?\", \"answer\": \"3\"}\n");
    ct_test_write("only_assistant.jsonl", "{\"messages\": [{\"role\": \"assistant\", \"content\": \"3\"}], \"answer\": \"3\"}\n");
    ct_test_write("empty.jsonl", "\n\n");
    char long_prompt[1200] = "{\"prompt\": \"What is";
    for (int i = 0; i < 100; i++) strcat(long_prompt, " 1 +");
    strcat(long_prompt, " 1?\", \"answer\": \"101\"}\n");
    ct_test_write("long.jsonl", long_prompt);
    snprintf(args, sizeof args, "%s --prompts bad_json.jsonl", ck);
    FAILS(args, "bad_json.jsonl:2: column");
    snprintf(args, sizeof args, "%s --prompts no_answer.jsonl", ck);
    FAILS(args, "no_answer.jsonl:3: no 'answer'");
    snprintf(args, sizeof args, "%s --prompts float_answer.jsonl", ck);
    FAILS(args, "float_answer.jsonl:1: 'answer' must be a string or an integer");
    snprintf(args, sizeof args, "%s --prompts no_prompt.jsonl", ck);
    FAILS(args, "no_prompt.jsonl:1: no 'prompt'");
    snprintf(args, sizeof args, "%s --prompts only_assistant.jsonl", ck);
    FAILS(args, "only_assistant.jsonl:1: 'messages' holds only assistant messages");
    snprintf(args, sizeof args, "%s --prompts empty.jsonl", ck);
    FAILS(args, "empty.jsonl: no prompt in the file");
    snprintf(args, sizeof args, "%s --prompts long.jsonl --out r.jsonl", ck);
    FAILS(args, "long.jsonl:1: the prompt is ");
    CHECK(ct_test_read(ct_test_path("r.jsonl"), NULL) == NULL);  // nothing written on failure
    snprintf(args, sizeof args, "%s --prompts missing.jsonl", ck);
    FAILS(args, "missing.jsonl");
    snprintf(args, sizeof args, "%s --prompts held.jsonl --text held.jsonl", ck);
    FAILS(args, "--text goes without --task");
    snprintf(args, sizeof args, "%s", ck);
    FAILS(args, "--task needs --prompts FILE");
    snprintf(args, sizeof args, "%s --prompts held.jsonl --max-new-tokens 0", ck);
    FAILS(args, "--max-new-tokens must be between 1");
    // --task's own options without it, and an unknown task
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' eval %s --text held.jsonl --out r.jsonl 2>&1; '%s' eval %s --task sums "
             "--prompts held.jsonl 2>&1", ct_test_tmpdir(), ct_test_bin(), ck, ct_test_bin(), ck);
    ct_test_run(cmd, &out);
    CHECK_CONTAINS(out, "--out goes with --task");
    CHECK_CONTAINS(out, "unknown task 'sums' (arithmetic)");
    free(out);
}

TEST(synth, arithmetic_options_are_checked_and_its_files_shard_for_sft) {
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' synth instructions --task arithmetic --examples 300 --format think "
             "--out t.jsonl && cp t.jsonl t.txt && '%s' tokenizer train --input t.txt --vocab-size 280 --pattern qwen2 --out tok.json && "
             "'%s' shard --tokenizer tok.json --input t.jsonl --format sft --out data && "
             "'%s' synth instructions --task arithmetic --split heldout --examples 50 --seed 5 --out h1.jsonl && "
             "'%s' synth instructions --task arithmetic --split heldout --examples 50 --seed 5 --out h2.jsonl && "
             "cmp h1.jsonl h2.jsonl && test $(wc -l < h1.jsonl) = 50",
             dir, bin, bin, bin, bin, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "shard: wrote data");
    free(out);
    static const char *const bad[][2] = {
        {"--task arithmetic --operands 1-3", "--operands '1-3': must lie within 2-8"},
        {"--task arithmetic --digits 3-1", "--digits '3-1': must lie within 1-15, the smaller first"},
        {"--task arithmetic --digits x", "--digits 'x': expected N or MIN-MAX"},
        {"--task arithmetic --format long", "--format must be plain or think"},
        {"--task arithmetic --split val", "--split must be train or heldout"},
        {"--task reverse --split heldout", "--split goes with --task arithmetic"},
        {"--task sums", "unknown task 'sums' (reverse, add or arithmetic)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "'%s' synth instructions %s --examples 2 2>&1", bin, bad[i][0]);
        CHECK_EQ_INT(ct_test_run(cmd, &out), 2);
        CHECK_CONTAINS(out, bad[i][1]);
        free(out);
    }
}

// SFT on the task teaches it: sums of two numbers of 1-2 digits, a 0.66M-parameter model trained
// from scratch for 1000 steps of 16 x 64 tokens (about a minute on one core) answers most held-out
// sums right, where the model after one step answers none (measured: 0% -> 92%).
TEST_LONG(eval_task, sft_takes_heldout_accuracy_on_two_digit_sums_from_under_5_to_over_70_percent) {
    if (make_model("--operands 2 --digits 1-2", 1000) != 0) return;
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' sft sft.json --run.out_dir=run0 --run.threads=1 --train.max_steps=1",
             ct_test_tmpdir(), ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    double before, after;
    int correct, examples;
    int rc = eval_task("--checkpoint run0/ckpt-step00000001.h5 --prompts held.jsonl --max-new-tokens 8", &before,
                       &correct, &examples, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    rc = eval_task("--checkpoint run/ckpt-step00001000.h5 --prompts held.jsonl --out res.jsonl", &after, &correct,
                   &examples, &out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    CHECK_EQ_INT(examples, 200);
    CHECK_MSG(before < 0.05 && after >= 0.70, "held-out accuracy %.1f%% -> %.1f%%", 100 * before, 100 * after);
}
