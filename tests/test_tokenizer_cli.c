// The tokenize / detokenize commands: raw and JSON lines, NUL bytes, special tokens, stats,
// threads, and the errors a user can cause.
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"

static char gpt2[1024], cl100k[1024];

static void paths(void) {
    const char *shared = ct_test_shared_data();
    snprintf(gpt2, sizeof gpt2, "%s/tokenizers/gpt2", shared);
    snprintf(cl100k, sizeof cl100k, "%s/tokenizers/tiktoken/cl100k_base.tiktoken", shared);
}

static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return ct_test_run(cmd, out);
}

TEST(tokenizer_cli, nul_and_invalid_bytes_round_trip) {
    paths();
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char *out = NULL;
    // NULs, invalid UTF-8, CR/LF, a special-token string as text.
    CHECK_EQ_INT(run(&out, "printf 'a\\000b\\000\\000 c\\377\\376 caf\\303\\251\\r\\n<|endoftext|>\\n' > %s/in.bin && "
                           "%s tokenize --tokenizer %s < %s/in.bin > %s/ids.txt && "
                           "%s detokenize --tokenizer %s < %s/ids.txt > %s/out.bin && cmp %s/in.bin %s/out.bin",
                     dir, bin, gpt2, dir, dir, bin, gpt2, dir, dir, dir, dir),
                 0);
    free(out);
}

TEST(tokenizer_cli, empty_input) {
    paths();
    char *out = NULL;
    CHECK_EQ_INT(run(&out, "printf '' | %s tokenize --tokenizer %s", ct_test_bin(), cl100k), 0);
    CHECK_STR_EQ(out, "\n");
    free(out);
    CHECK_EQ_INT(run(&out, "printf '{\"text\": \"\"}\\n\\n{\"text\": \" \"}\\n' | %s tokenize --jsonl --tokenizer %s",
                     ct_test_bin(), cl100k),
                 0);
    CHECK_STR_EQ(out, "{\"ids\": []}\n{\"ids\": []}\n{\"ids\": [220]}\n");
    free(out);
}

TEST(tokenizer_cli, jsonl_keeps_nul_escapes) {
    paths();
    char *out = NULL;
    CHECK_EQ_INT(run(&out, "printf '{\"id\": 3, \"text\": \"a\\\\u0000b\\\\ud83d\\\\ude00\", \"x\": [1, {\"y\": null}]}\\n' | "
                           "%s tokenize --jsonl --tokenizer %s",
                     ct_test_bin(), gpt2),
                 0);
    // gpt2: "a" 64, NUL 188, "b" 65, then U+1F600 as its bytes' tokens.
    CHECK_CONTAINS(out, "{\"ids\": [64,188,65,");
    free(out);
}

TEST(tokenizer_cli, allow_special) {
    paths();
    char *out = NULL;
    CHECK_EQ_INT(run(&out, "printf 'x<|endoftext|>y' | %s tokenize --tokenizer %s", ct_test_bin(), cl100k), 0);
    CHECK(!strstr(out, "100257"));
    free(out);
    CHECK_EQ_INT(run(&out, "printf 'x<|endoftext|>y' | %s tokenize --allow-special --tokenizer %s", ct_test_bin(), cl100k), 0);
    CHECK_STR_EQ(out, "87 100257 88\n");
    free(out);
    CHECK_EQ_INT(run(&out, "printf '{\"text\": \"<|endoftext|>\"}\\n' | %s tokenize --jsonl --allow-special --tokenizer %s",
                     ct_test_bin(), gpt2),
                 0);
    CHECK_STR_EQ(out, "{\"ids\": [50256]}\n");
    free(out);
    CHECK_EQ_INT(run(&out, "echo 50256 | %s detokenize --tokenizer %s", ct_test_bin(), gpt2), 0);
    CHECK_STR_EQ(out, "<|endoftext|>");
    free(out);
}

TEST(tokenizer_cli, stats) {
    paths();
    char *out = NULL;
    CHECK_EQ_INT(run(&out, "printf 'hello world' | %s tokenize --stats --tokenizer %s 2>&1 >/dev/null", ct_test_bin(), gpt2), 0);
    CHECK_CONTAINS(out, "bytes 11");
    CHECK_CONTAINS(out, "tokens 2");
    CHECK_CONTAINS(out, "bytes/token 5.500");
    CHECK_CONTAINS(out, "MB/s");
    free(out);
}

TEST(tokenizer_cli, threads_give_the_same_ids) {
    paths();
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir(), *shared = ct_test_shared_data();
    char *out = NULL;
    // 3 MB cut into ~50 chunks at safe places, with specials allowed (there are none in the
    // corpus, but the chunking path with specials runs too).
    CHECK_EQ_INT(run(&out,
                     "%s tokenize --tokenizer %s --threads 1 --input %s/corpora/nlp-corpus-40k.txt > %s/one.txt && "
                     "%s tokenize --tokenizer %s --threads 2 --allow-special --input %s/corpora/nlp-corpus-40k.txt > %s/two.txt && "
                     "cmp %s/one.txt %s/two.txt",
                     bin, cl100k, shared, dir, bin, cl100k, shared, dir, dir, dir),
                 0);
    free(out);
    // And one call over the whole corpus as a single text equals the same text encoded in
    // pieces by the library's one-thread path (the jsonl of the whole text, one line).
    int rc = run(&out,
                     "python3 -c 'import json,sys; print(json.dumps({\"text\": open(sys.argv[1]).read()}))' "
                     "%s/corpora/nlp-corpus-40k.txt > %s/whole.jsonl 2>/dev/null || exit 77; "
                     "%s tokenize --jsonl --threads 1 --tokenizer %s < %s/whole.jsonl | tr -d '{}\"ids:[] ' | tr ',' ' ' > %s/j.txt && "
                     "tr -d '\\n' < %s/one.txt > %s/one1.txt && tr -d '\\n' < %s/j.txt > %s/j1.txt && cmp %s/one1.txt %s/j1.txt",
                     shared, dir, bin, cl100k, dir, dir, dir, dir, dir, dir, dir, dir);
    free(out);
    if (rc == 77) SKIP("python3 is absent (used to write the corpus as one JSON line)");
    CHECK_EQ_INT(rc, 0);
}

TEST(tokenizer_cli, user_errors_are_one_line) {
    paths();
    const char *bin = ct_test_bin();
    char *out = NULL;
    CHECK_EQ_INT(run(&out, "printf 'x' | %s tokenize", bin), 1);
    CHECK_CONTAINS(out, "--tokenizer PATH is required");
    free(out);
    CHECK_EQ_INT(run(&out, "printf 'x' | %s tokenize --tokenizer /nonexistent/tok.json", bin), 1);
    CHECK_CONTAINS(out, "/nonexistent/tok.json");
    CHECK(strchr(out, '\n') == out + strlen(out) - 1);
    free(out);
    CHECK_EQ_INT(run(&out, "printf '{\"text\": \"a\"}\\n{\"text\": 5}\\n' | %s tokenize --jsonl --tokenizer %s", bin, gpt2), 1);
    CHECK_CONTAINS(out, "stdin:2: no string field \"text\"");
    free(out);
    CHECK_EQ_INT(run(&out, "printf '{\"text\": \"a\"\\n' | %s tokenize --jsonl --tokenizer %s", bin, gpt2), 1);
    CHECK_CONTAINS(out, "stdin:1: column");
    free(out);
    CHECK_EQ_INT(run(&out, "echo '1 2 99999999' | %s detokenize --tokenizer %s", bin, gpt2), 1);
    CHECK_CONTAINS(out, "token id 99999999 is not in the vocabulary");
    free(out);
    CHECK_EQ_INT(run(&out, "printf x | %s tokenize --tokenizer %s --threads 0", bin, gpt2), 2);
    free(out);
}
