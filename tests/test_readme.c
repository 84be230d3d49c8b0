// README.md's command blocks, executed as written. The blocks are read from README.md itself
// (every ```sh block, in order), so the README cannot drift from what ctrain does. The commands
// run one by one through /bin/sh in a fresh folder, with ./ctrain the built binary, configs/ the
// repository's and ../shared/data the test data, and the inputs the README names prepared by the
// test (see prepare_inputs). Only what cannot run here is changed; `substitute` lists each change
// with its reason. readme.every_command_block (long) runs them all at the README's sizes and step
// counts; readme.commands_without_training runs, in seconds, those that need no training.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cjson/cJSON.h>

#include "tests/hf_fixture.h"
#include "tests/test.h"

#define MAX_COMMANDS 256

typedef struct {
    char *text;  // the command line, as README has it
    int line;    // its line in README.md
} ReadmeCommand;

// Every command line of README.md's ```sh blocks, in order (comment-only lines dropped, a line
// ending in '\' joined with the next). Returns how many, or -1 when README.md cannot be read.
static int readme_commands(ReadmeCommand *cmds, int max) {
    const char *root = getenv("CTRAIN_ROOT");
    char path[1024];
    snprintf(path, sizeof path, "%s/README.md", root ? root : ".");
    char *text = ct_test_read(path, NULL);
    if (!text) return -1;
    int n = 0, in_block = 0, line_no = 0, joined_line = 0;
    char joined[4096] = "";
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line_no++;
        if (strncmp(line, "```", 3) == 0) {
            in_block = !in_block && strcmp(line, "```sh") == 0;
            continue;
        }
        if (!in_block) continue;
        const char *s = line + strspn(line, " \t");
        if (!*s || (*s == '#' && !joined[0])) continue;
        if (!joined[0]) joined_line = line_no;
        strncat(joined, s, sizeof joined - strlen(joined) - 2);
        size_t len = strlen(joined);
        if (len && joined[len - 1] == '\\') {
            joined[len - 1] = ' ';
            continue;
        }
        if (n < max) cmds[n++] = (ReadmeCommand){strdup(joined), joined_line};
        joined[0] = '\0';
    }
    free(text);
    return n;
}

static int gpu_usable(void) {
    char cmd[1200], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' --version", ct_test_bin());
    ct_test_run(cmd, &out);
    int usable = out && strstr(out, "cuda:") && !strstr(out, "no usable CUDA device") && !strstr(out, "cuda: not built");
    free(out);
    return usable;
}

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

// What to run for README's command `cmd`: the command itself, a rewritten one (in `out`), or
// NULL with *why saying why it does not run here. Every change the test makes is in this function.
static const char *substitute(const char *cmd, char *out, size_t size, int fast, int gpu, const char **why) {
    const char *root = getenv("CTRAIN_ROOT");
    *why = NULL;
    // `make test` is this suite; `make bench` measures speed for minutes and checks nothing;
    // `make test-cuda && make bench-gpu` is the CUDA suite and a GPU benchmark.
    if (starts_with(cmd, "make test") || starts_with(cmd, "make bench")) {
        *why = "the test suite or a benchmark, not a user flow to check here";
        return NULL;
    }
    // GPU commands need a GPU (the CUDA suite checks that path where there is one).
    if (strstr(cmd, "device=cuda") || strstr(cmd, "--device cuda")) {
        if (!gpu) {
            *why = "needs a GPU";
            return NULL;
        }
    }
    if (fast) {
        static const char *const slow[] = {"make demo", "mpirun", "./ctrain pretrain", "./ctrain sft", "./ctrain dpo",
                                           "./ctrain reward", "./ctrain grpo", "./ctrain mlm", "./ctrain classify", "./ctrain chat", "./ctrain generate", "./ctrain ckpt", "./ctrain eval", "./ctrain lora", "./ctrain peft",
                                           "./ctrain import", "./ctrain export", "./ctrain bench train"};
        for (size_t i = 0; i < sizeof slow / sizeof slow[0]; i++)
            if (starts_with(cmd, slow[i])) {
                *why = "trains or needs a trained model (readme.every_command_block runs it)";
                return NULL;
            }
    }
    // `make demo` builds and writes out/demo inside the source tree: run what it runs
    // (scripts/demo.sh) with its output here and the built binary.
    if (starts_with(cmd, "make demo")) {
        snprintf(out, size, "OUT=\"$PWD/out/demo\" CTRAIN=\"$PWD/ctrain\" '%s/scripts/demo.sh'", root ? root : ".");
        return out;
    }
    // mpirun: this machine may have fewer cores than README's ranks, and tests run as root in
    // containers: 2 ranks, --oversubscribe, --allow-run-as-root, one OpenMP thread per rank.
    if (starts_with(cmd, "mpirun -np ")) {
        const char *rest = cmd + strlen("mpirun -np ");
        rest += strspn(rest, "0123456789");
        snprintf(out, size, "OMP_NUM_THREADS=1 mpirun --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS -np 2%s", rest);
        return out;
    }
    return cmd;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        ct_test_fail(__FILE__, __LINE__, "cannot write %s: %s", path, strerror(errno));
        exit(1);
    }
}

// docs.jsonl ({"text": ...} per paragraph of corpus.txt) and data.jsonl.zst (the same, zstd).
static int write_docs(const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/corpus.txt", dir);
    char *corpus = ct_test_read(path, NULL);
    if (!corpus) return -1;
    size_t cap = strlen(corpus) * 2 + 1024, len = 0;
    char *jsonl = malloc(cap);
    char *p = corpus;
    while (*p) {
        char *end = strstr(p, "\n\n");
        if (end) *end = '\0';
        cJSON *obj = cJSON_CreateObject();
        cJSON_AddStringToObject(obj, "text", p);
        char *line = cJSON_PrintUnformatted(obj);
        size_t n = strlen(line);
        if (len + n + 2 > cap) jsonl = realloc(jsonl, cap = 2 * (len + n + 2));
        memcpy(jsonl + len, line, n);
        len += n;
        jsonl[len++] = '\n';
        free(line);
        cJSON_Delete(obj);
        if (!end) break;
        p = end + 2;
    }
    jsonl[len] = '\0';
    snprintf(path, sizeof path, "%s/docs.jsonl", dir);
    write_text(path, jsonl);
    size_t bound = ZSTD_compressBound(len);
    char *zst = malloc(bound);
    size_t z = ZSTD_compress(zst, bound, jsonl, len, 3);
    snprintf(path, sizeof path, "%s/data.jsonl.zst", dir);
    FILE *f = fopen(path, "wb");
    int rc = ZSTD_isError(z) || !f || fwrite(zst, 1, z, f) != z ? -1 : 0;
    if (f) fclose(f);
    free(zst);
    free(jsonl);
    free(corpus);
    return rc;
}

// pairs.jsonl: DPO preference pairs on the reversal task (chosen: the right answer).
static void write_pairs(const char *path, int n) {
    size_t cap = (size_t)n * 160 + 1, len = 0;
    char *text = malloc(cap);
    uint64_t state = 12345;
    for (int i = 0; i < n; i++) {
        char word[16], reversed[32], spaced[32];
        int w = 2 + (int)(i % 5);
        for (int k = 0; k < w; k++) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            word[k] = (char)('a' + (state >> 33) % 26);
        }
        int a = 0, b = 0;
        for (int k = 0; k < w; k++) {
            a += snprintf(spaced + a, sizeof spaced - (size_t)a, "%s%c", k ? " " : "", word[k]);
            b += snprintf(reversed + b, sizeof reversed - (size_t)b, "%s%c", k ? " " : "", word[w - 1 - k]);
        }
        len += (size_t)snprintf(text + len, cap - len,
                                "{\"prompt\": \"reverse: %s\", \"chosen\": \"%s\", \"rejected\": \"%s\"}\n", spaced,
                                reversed, spaced);
    }
    write_text(path, text);
    free(text);
}

// reviews.jsonl, reviews-val.jsonl and new.jsonl: short reviews labelled by the words they use
// ("positive" / "negative"), for README's classify commands.
static void write_reviews(const char *work, const char *name, int n, int seed) {
    static const char *const good[] = {"great", "lovely", "wonderful", "excellent", "delightful"};
    static const char *const bad[] = {"awful", "boring", "terrible", "dreadful", "dull"};
    static const char *const things[] = {"film", "book", "meal", "hotel", "song", "game"};
    size_t cap = (size_t)n * 96 + 1, len = 0;
    char *text = malloc(cap);
    unsigned state = (unsigned)seed * 2654435761u + 1;
    for (int i = 0; i < n; i++) {
        state = state * 1103515245u + 12345u;
        const int positive = (state >> 16) & 1;
        const char *word = positive ? good[(state >> 8) % 5] : bad[(state >> 8) % 5];
        len += (size_t)snprintf(text + len, cap - len, "{\"text\": \"the %s was %s\", \"label\": \"%s\"}\n",
                                things[(state >> 20) % 6], word, positive ? "positive" : "negative");
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", work, name);
    write_text(path, text);
    free(text);
}

// The inputs README's commands name, in `work`: corpus.txt, chats.jsonl, pairs.jsonl, docs.jsonl,
// reviews*.jsonl, new.jsonl, data.jsonl.zst, heldout.txt (text for `eval`), my.json, o200k_base.tiktoken, the tiny HF folder
// that stands for SmolLM-135M,
// and ./ctrain, configs/ and ../shared/data pointing at the build, the repository and the test data.
static int prepare_inputs(const char *work, int fast) {
    const char *dir = ct_test_tmpdir(), *root = getenv("CTRAIN_ROOT"), *bin = ct_test_bin(),
               *shared = ct_test_shared_data();
    char cmd[8192], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' '%s/shared' && cd '%s' && ln -s '%s' ../shared/data && ln -s '%s' ctrain && "
             "ln -s '%s/configs' configs && ln -s ../shared/data/tokenizers/tiktoken/o200k_base.tiktoken . && "
             "./ctrain synth stories --documents %d --out corpus.txt && "
             "./ctrain synth instructions --task reverse --examples %d --out chats.jsonl && "
             "tail -n 200 corpus.txt > heldout.txt",
             work, dir, work, shared, bin, root ? root : ".", fast ? 2000 : 20000, fast ? 500 : 5000);
    if (ct_test_run(cmd, &out) != 0) {
        ct_test_fail(__FILE__, __LINE__, "preparing the inputs failed: %s", out);
        free(out);
        return -1;
    }
    free(out);
    char path[1200];
    snprintf(path, sizeof path, "%s/pairs.jsonl", work);
    write_pairs(path, fast ? 200 : 2000);
    write_reviews(work, "reviews.jsonl", 400, 1);
    write_reviews(work, "reviews-val.jsonl", 100, 2);
    write_reviews(work, "new.jsonl", 20, 3);
    if (write_docs(work) != 0) {
        ct_test_fail(__FILE__, __LINE__, "cannot write docs.jsonl / data.jsonl.zst");
        return -1;
    }
    // my.json: the user's own config (README does not show one): the demo's small model on the
    // GPT-2 shards README's commands write to out/corpus-gpt2, a short run.
    snprintf(path, sizeof path, "%s/my.json", work);
    write_text(path, "{\"run\": {\"out_dir\": \"out/my\", \"seed\": 7},\n"
                     " \"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 2, \"d_model\": 64, \"n_head\": 4, "
                     "\"n_kv_head\": 2, \"d_ff\": 192, \"max_seq_len\": 64},\n"
                     " \"data\": {\"path\": \"out/corpus-gpt2\"},\n"
                     " \"train\": {\"batch_size\": 8, \"seq_len\": 64, \"max_steps\": 20, \"eval_every\": 10, "
                     "\"eval_batches\": 2, \"save_every\": 10}}\n");
    if (fast) return 0;
    // ./SmolLM-135M: the hub cannot be reached from a test; a tiny LLaMA-family model exported
    // to a Hugging Face folder by ctrain stands for it.
    snprintf(path, sizeof path, "%s/tiny-llama.h5", dir);
    CtModelConfig config = hf_fixture_config(CT_ARCH_LLAMA, 0);
    if (hf_fixture_checkpoint(path, &config, 5) != 0) {
        ct_test_fail(__FILE__, __LINE__, "cannot write the tiny model for ./SmolLM-135M");
        return -1;
    }
    snprintf(cmd, sizeof cmd, "cd '%s' && ./ctrain export hf '%s' --out SmolLM-135M", work, path);
    if (ct_test_run(cmd, &out) != 0) {
        ct_test_fail(__FILE__, __LINE__, "cannot export the tiny model for ./SmolLM-135M: %s", out);
        free(out);
        return -1;
    }
    free(out);
    return 0;
}

// Inputs that come from README's own earlier commands: base.h5 (the LoRA block's frozen base) is
// the model the pretraining block above trained, whose tokenizer the chat shards use.
static void prepare_before(const char *work, const char *cmd) {
    if (strstr(cmd, "base.h5")) {
        char sh[2048];
        snprintf(sh, sizeof sh, "cd '%s' && { test -e base.h5 || cp out/mine/best.h5 base.h5; }", work);
        ct_test_run(sh, NULL);
    }
}

// The expected output README states in a comment of numbers (`# 15496 995`), or NULL.
static const char *expected_output(const char *cmd, char *buf, size_t size) {
    const char *hash = strstr(cmd, "# ");
    if (!hash) return NULL;
    const char *e = hash + 2;
    if (!*e || strspn(e, "0123456789 ") != strlen(e)) return NULL;
    snprintf(buf, size, "%s", e);
    return buf;
}

static void run_readme(int fast) {
    ReadmeCommand cmds[MAX_COMMANDS];
    int n = readme_commands(cmds, MAX_COMMANDS);
    CHECK_MSG(n > 20, "README.md has %d command lines in ```sh blocks (CTRAIN_ROOT not set?)", n);
    char work[1100];
    snprintf(work, sizeof work, "%s/work", ct_test_tmpdir());
    if (prepare_inputs(work, fast) != 0) return;
    int gpu = gpu_usable(), ran = 0, failed = 0;
    char failures[4096] = "";
    for (int i = 0; i < n; i++) {
        char rewritten[4096], script[1200], expect[256];
        const char *why, *cmd = substitute(cmds[i].text, rewritten, sizeof rewritten, fast, gpu, &why);
        if (!cmd) {
            if (!fast) printf("  readme:%d not run (%s): %s\n", cmds[i].line, why, cmds[i].text);
            continue;
        }
        prepare_before(work, cmd);
        snprintf(script, sizeof script, "%s/../step-%03d.sh", work, i);
        write_text(script, cmd);
        char sh[4096], *out = NULL;
        snprintf(sh, sizeof sh, "cd '%s' && timeout 1800 sh '%s' < /dev/null", work, script);
        int rc = ct_test_run(sh, &out);
        const char *want = expected_output(cmds[i].text, expect, sizeof expect);
        int ok = rc == 0 && (!want || (out && strstr(out, want)));
        ran++;
        if (!fast || !ok)
                printf("  readme:%d %s%s: %s\n", cmds[i].line, ok ? "ok" : "FAILED",
                   cmd == cmds[i].text ? "" : " (substituted)", cmd);
        if (!ok) {
            failed++;
            // the last lines of its output say why
            const char *tail = out ? out + strlen(out) : "";
            for (int lines = 0; out && tail > out && lines < 4;) lines += *--tail == '\n';
            printf("    exit %d%s%s; output ends:\n%s\n", rc, want ? ", expected output " : "", want ? want : "",
                   tail);
            snprintf(failures + strlen(failures), sizeof failures - strlen(failures), " %d", cmds[i].line);
        }
        free(out);
        fflush(stdout);
    }
    for (int i = 0; i < n; i++) free(cmds[i].text);
    CHECK_MSG(failed == 0, "%d of %d README commands failed (README.md lines%s)", failed, ran, failures);
}

TEST(readme, commands_without_training) { run_readme(1); }
TEST_LONG(readme, every_command_block) { run_readme(0); }
