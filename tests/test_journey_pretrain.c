// Pretraining journeys at real sizes (issue 19): README's flow with each real tokenizer, an
// 8k vocabulary trained by `ctrain tokenizer train`, GPT-2's encoder.json + vocab.bpe and
// o200k_base's rank file, run as a user runs it: shard, pretrain with periodic checkpoints,
// Ctrl-C (SIGINT), --resume, generation from the checkpoint, LoRA on top of it (train.init_from,
// a LoRA checkpoint), export hf imported back (same greedy tokens) and export gguf. The models
// are small (o200k's 200k-row embedding takes a d_model of 8) and the runs a few steps long;
// the tokenizers are the real ones, so every checkpoint carries their tokenizer.json (240 KB,
// 1.6 MB, 11.6 MB): before issue 19 the 8k run died at its first checkpoint (HDF5's 64 KB
// attribute limit) and GPT-2's at its start (the shards' tokenizer had another identity).
// On 2 idle cores: 8k and GPT-2 take ~4 s each, o200k ~10 s (11.6 MB of tokenizer.json parsed by
// every command, 31 MB checkpoints).
#include <stdarg.h>
#include <string.h>

#include "tests/test.h"

typedef struct {
    const char *tokenizer;  // shard's --tokenizer, relative to ../shared/data; NULL: README's 8k training
    const char *split;      // README's --split for the flow
    int vocab;              // the tokenizer's ids, as ckpt info prints them
    const char *model;      // overrides of configs/demo.json: small dims
} Journey;

// Runs one step of the journey in the test's folder (C is the ctrain binary); records a
// failure naming the step and showing its output, and returns NULL, when it fails.
static char *step(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *step(const char *what, const char *fmt, ...) {
    char body[6000], cmd[8192], *out = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && C='%s' && { %s\n}", ct_test_tmpdir(), ct_test_bin(), body);
    int rc = ct_test_run(cmd, &out);
    if (rc != 0) {
        size_t n = out ? strlen(out) : 0;
        ct_test_fail(__FILE__, __LINE__, "%s: exit %d: %s", what, rc, out ? out + (n > 3000 ? n - 3000 : 0) : "");
        free(out);
        return NULL;
    }
    return out;
}

#define STEP(out, what, ...)                              \
    do {                                                  \
        if (!((out) = step((what), __VA_ARGS__))) return; \
    } while (0)

static void journey(const Journey *j) {
    const char *shared = ct_test_shared_data();
    const char *root = getenv("CTRAIN_ROOT");
    if (!root) SKIP("CTRAIN_ROOT is not set (run through make test)");
    char tok[1200], run[2048], *out;
    if (j->tokenizer)
        snprintf(tok, sizeof tok, "'%s/%s'", shared, j->tokenizer);
    else
        snprintf(tok, sizeof tok, "tok.json");
    // The run as README gives it (configs/demo.json, data/corpus, out/mine), with small dims.
    snprintf(run, sizeof run,
             "$C pretrain demo.json --data.path=data/corpus --run.out_dir=out/mine %s --train.batch_size=2 "
             "--train.seq_len=32 --model.max_seq_len=32 --train.save_every=3 --train.eval_every=3 --train.eval_batches=1 "
             "--train.n_samples=0 --optim.warmup_steps=2",
             j->model);
    STEP(out, "corpus", "head -c 400000 '%s/corpora/nlp-corpus-40k.txt' > corpus.txt && cp '%s/configs/demo.json' .",
         shared, root);
    free(out);
    if (!j->tokenizer) {
        STEP(out, "tokenizer train",
             "$C tokenizer train --input corpus.txt --vocab-size 8192 --special '<|endoftext|>' --out tok.json");
        free(out);
    }
    STEP(out, "shard", "$C shard --tokenizer %s --input corpus.txt --split %s --out data/corpus", tok, j->split);
    CHECK_CONTAINS(out, "shard: wrote data/corpus");
    free(out);
    // Ctrl-C once a periodic checkpoint is written (step 3 of a long run).
    STEP(out, "pretrain, then Ctrl-C",
         "%s --train.max_steps=100000 & pid=$!; for k in $(seq 1200); do sleep 0.05; "
         "[ -f out/mine/ckpt-step00000003.h5 ] && break; kill -0 $pid 2>/dev/null || break; done; "
         "sleep 0.2; kill -INT $pid; wait $pid; echo \"exit=$?\"",
         run);
    CHECK_CONTAINS(out, "exit=130");
    CHECK_CONTAINS(out, "interrupted at step");
    CHECK_CONTAINS(out, "continue with --resume out/mine");
    free(out);
    STEP(out, "resume", "%s --train.max_steps=100000 --resume out/mine --stop-after 3", run);
    CHECK_CONTAINS(out, "resumed from out/mine/ckpt-step");
    CHECK_CONTAINS(out, "stopped after 3 steps as asked");
    free(out);
    STEP(out, "the last checkpoint", "ls out/mine/ckpt-step*.h5 | tail -1 > last && $C ckpt info $(cat last)");
    char want[128];
    snprintf(want, sizeof want, "tokenizer    %d ids", j->vocab);
    CHECK_CONTAINS(out, want);
    CHECK_CONTAINS(out, "/optim/m");
    free(out);
    STEP(out, "generate",
         "$C generate --checkpoint $(cat last) --prompt 'The' --max-tokens 8 --temperature 0 > gen.txt && cat gen.txt");
    CHECK_CONTAINS(out, "The");
    free(out);
    // LoRA over the checkpoint: the adapters' checkpoint carries the tokenizer too.
    STEP(out, "lora",
         "$C pretrain demo.json --data.path=data/corpus --run.out_dir=out/lora %s --train.batch_size=2 --train.seq_len=32 "
         "--model.max_seq_len=32 --train.max_steps=2 --train.save_every=2 --train.eval_every=0 --train.n_samples=0 "
         "--train.init_from=$(cat last) --lora.r=4 && $C ckpt info out/lora/ckpt-step00000002.h5 && "
         "$C generate --checkpoint out/lora/ckpt-step00000002.h5 --prompt 'The' --max-tokens 4 --temperature 0",
         j->model);
    CHECK_CONTAINS(out, want);
    CHECK_CONTAINS(out, "/lora");
    free(out);
    // export hf, imported back (its tokenizer.json is the large one): the same greedy tokens.
    STEP(out, "export hf, import hf",
         "$C export hf $(cat last) --out hf && $C import hf hf --out back.h5 && $C ckpt info back.h5 && "
         "$C generate --checkpoint back.h5 --prompt 'The' --max-tokens 8 --temperature 0 > gen-back.txt && "
         "cmp gen.txt gen-back.txt && echo same-tokens");
    CHECK_CONTAINS(out, want);
    CHECK_CONTAINS(out, "same-tokens");
    free(out);
    STEP(out, "export gguf", "$C export gguf $(cat last) --out m.gguf && head -c 4 m.gguf && echo");
    CHECK_CONTAINS(out, "GGUF");
    free(out);
}

TEST(journey, pretrain_with_an_8k_tokenizer_trained_by_ctrain) {
    Journey j = {NULL, "paragraphs", 8192,
                 "--model.n_layer=1 --model.d_model=32 --model.n_head=2 --model.n_kv_head=1 --model.d_ff=64"};
    journey(&j);
}

TEST(journey, pretrain_with_gpt2s_tokenizer_files) {
    Journey j = {"tokenizers/gpt2", "lines", 50257,
                 "--model.n_layer=1 --model.d_model=16 --model.n_head=2 --model.n_kv_head=1 --model.d_ff=32 "
                 "--model.tie_embeddings=true"};
    journey(&j);
}

TEST(journey, pretrain_with_o200k_base) {
    Journey j = {"tokenizers/tiktoken/o200k_base.tiktoken", "lines", 200019,
                 "--model.n_layer=1 --model.d_model=8 --model.n_head=2 --model.n_kv_head=1 --model.d_ff=16 "
                 "--model.tie_embeddings=true"};
    journey(&j);
}
