// ctrain classify end to end (train/objectives/classify.h): a tiny BERT learns a synthetic
// sentence-classification task (does the sentence name a colour?) to a stated held-out accuracy,
// a llama (last-token pooling) learns it too, a run resumes to the bit, --predict writes labels and
// probabilities, text pairs with integer labels get ids in numeric order, and a validation label
// outside the training file's is refused. LoRA (PEFT's SEQ_CLS: adapters, the head in full) over
// an MLM base learns it, counts its trainable parameters as expected, exports PEFT's folder and
// resumes to the bit; 2 ranks equal 1 rank of twice the batch, in full and with LoRA.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/rng.h"
#include "tests/test.h"
#include "tests/train_fixture.h"
#include "train/model/lora.h"

static const char *const adjs[] = {"big", "small", "red", "blue", "old", "young", "happy", "sad", "quiet", "loud"};
static const char *const nouns[] = {"cat", "dog", "bird", "fish", "horse", "cow", "sheep", "goat", "mouse", "frog"};
static const char *const verbs[] = {"sees", "likes", "finds", "eats", "chases", "hears", "meets", "helps"};
#define PICK(rng, a) a[ct_rng_below(rng, (uint32_t)(sizeof a / sizeof a[0]))]

// "the ADJ NOUN VERB the ADJ NOUN": label "yes" when an adjective is a colour (red, blue): about 36%.
static void sentence(CtRng *rng, char *out, size_t n, int *colour) {
    const char *a1 = PICK(rng, adjs), *n1 = PICK(rng, nouns), *v = PICK(rng, verbs), *a2 = PICK(rng, adjs),
               *n2 = PICK(rng, nouns);
    snprintf(out, n, "the %s %s %s the %s %s", a1, n1, v, a2, n2);
    *colour = !strcmp(a1, "red") || !strcmp(a1, "blue") || !strcmp(a2, "red") || !strcmp(a2, "blue");
}

static void write_set(const char *name, int n, uint64_t seed, int corpus) {
    CtRng rng;
    ct_rng_seed(&rng, seed);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", ct_test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < n; i++) {
        char s[128];
        int colour;
        sentence(&rng, s, sizeof s, &colour);
        if (corpus) fprintf(f, "%s\n", s);
        else fprintf(f, "{\"text\": \"%s\", \"label\": \"%s\"}\n", s, colour ? "yes" : "no");
    }
    fclose(f);
}

static const char *CONFIG =
    "{\"run\": {\"out_dir\": \"run\", \"device\": \"cpu\", \"seed\": 1},\n"
    " \"model\": {\"preset\": \"bert-tiny\", \"d_model\": 64, \"n_head\": 2, \"d_ff\": 128, \"max_seq_len\": 32,\n"
    "           \"dropout\": 0.1},\n"
    " \"data\": {\"path\": \"train.jsonl\", \"tokenizer\": \"tok.json\"},\n"
    " \"classify\": {\"val_path\": \"val.jsonl\"},\n"
    " \"train\": {\"batch_size\": 16, \"seq_len\": 16, \"max_steps\": 20, \"eval_every\": 10, \"save_every\": 10},\n"
    " \"optim\": {\"lr\": 1e-3, \"warmup_steps\": 10}}\n";

static int prepare(char *prefix, size_t size) {
    write_set("train.jsonl", 2000, 1, 0);
    write_set("val.jsonl", 300, 2, 0);
    write_set("corpus.txt", 3000, 3, 1);
    ct_test_write("run.json", CONFIG);
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' tokenizer train --model wordpiece --lowercase --input corpus.txt "
             "--vocab-size 200 --quiet --out tok.json 2>&1", ct_test_tmpdir(), ct_test_bin());
    if (ct_test_run(cmd, &out) != 0) {
        ct_test_fail(__FILE__, __LINE__, "training the tokenizer failed: %s", out);
        free(out);
        return -1;
    }
    free(out);
    snprintf(prefix, size, "cd '%s' && '%s' classify run.json", ct_test_tmpdir(), ct_test_bin());
    return 0;
}

static int classify(const char *prefix, const char *extra, char **out) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", prefix, extra);
    return ct_test_run(cmd, out);
}

static double metric(const char *run, const char *kind, int step, const char *key) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", ct_test_tmpdir(), run);
    return train_fixture_metric(path, kind, step, key);
}

// The label is a function of two of the seven words: a bag of words learns it; 150 steps of 16
// (1.2 epochs) take about 5 s on 2 cores and reach 100% on the 300 held-out sentences (measured);
// the test asks 95%, from the 64% of always answering "no".
TEST(classify, a_tiny_bert_learns_whether_a_sentence_names_a_colour) {
    char prefix[4096], *out;
    if (prepare(prefix, sizeof prefix) != 0) return;
    CHECK_EQ_INT(classify(prefix, "--train.max_steps=150 --train.eval_every=50 --train.save_every=0", &out), 0);
    CHECK_CONTAINS(out, "classify: 2 labels (no,yes; ids in that order, the training file's sorted)");
    CHECK_CONTAINS(out, "done: held-out accuracy");
    free(out);
    const double acc0 = metric("run", "eval", 0, "val_acc"), acc = metric("run", "eval", 150, "val_acc");
    const double f1 = metric("run", "eval", 150, "val_f1"), train_acc = metric("run", "train", 150, "acc");
    CHECK_MSG(acc0 < 0.8 && acc >= 0.95, "val_acc %.4f at the start, %.4f after 150 steps", acc0, acc);
    CHECK_MSG(f1 >= 0.95 && f1 <= 1, "val_f1 %.4f after 150 steps", f1);
    CHECK(train_acc > 0.9 && train_acc <= 1);
    // the trained classifier labels the validation file as the run measured it
    CHECK_EQ_INT(classify(prefix, "--predict val.jsonl --out pred.jsonl --train.init_from=run/best.h5", &out), 0);
    CHECK_CONTAINS(out, "classify: 300 predictions written to pred.jsonl");
    char expect[128];
    snprintf(expect, sizeof expect, "classify: 300 labelled examples: accuracy %.4f", acc);
    CHECK_CONTAINS(out, expect);
    free(out);
    char path[4096];
    snprintf(path, sizeof path, "%s/pred.jsonl", ct_test_tmpdir());
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char line[512];
    CHECK(fgets(line, sizeof line, f) != NULL);
    CHECK_CONTAINS(line, "\"label_id\":");
    CHECK_CONTAINS(line, "\"probs\":{\"no\":");
    fclose(f);
}

TEST(classify, a_llama_reads_the_last_token_and_learns_too) {
    char prefix[4096], *out;
    if (prepare(prefix, sizeof prefix) != 0) return;
    CHECK_EQ_INT(classify(prefix, "--model.preset=llama-tiny --model.arch=llama "
                                  "--model.max_seq_len=32 --model.d_model=64 --model.n_head=2 --model.n_kv_head=2 "
                                  "--model.d_ff=128 --model.dropout=0 --train.max_steps=150 --train.eval_every=150 "
                                  "--train.save_every=0", &out), 0);
    CHECK_CONTAINS(out, "last pooling");
    free(out);
    const double acc = metric("run", "eval", 150, "val_acc");
    CHECK_MSG(acc >= 0.9, "val_acc %.4f after 150 steps", acc);
}

TEST(classify, resume_continues_to_the_bit) {
    char prefix[4096], *out;
    if (prepare(prefix, sizeof prefix) != 0) return;
    CHECK_EQ_INT(classify(prefix, "--run.out_dir=a", &out), 0);
    free(out);
    CHECK_EQ_INT(classify(prefix, "--run.out_dir=b --stop-after 10", &out), 0);
    free(out);
    CHECK_EQ_INT(classify(prefix, "--run.out_dir=b --resume b", &out), 0);
    CHECK_CONTAINS(out, "resumed from b/ckpt-step00000010.h5 at step 10");
    free(out);
    char *a = train_fixture_metric_lines("a", 11), *b = train_fixture_metric_lines("b", 11);
    CHECK(a && b && strstr(a, "\"acc\"") && strstr(a, "\"step\": 20"));
    CHECK_MSG(a && b && strcmp(a, b) == 0, "losses after resuming differ:\n%s\nvs\n%s", a, b);
    free(a);
    free(b);
    CHECK(metric("a", "eval", 20, "val_acc") == metric("b", "eval", 20, "val_acc"));
    CtModel ma, mb;
    CtAdamW oa, ob;
    CHECK(train_fixture_load_checkpoint("a", "ckpt-step00000020.h5", &ma, &oa) == 0);
    CHECK(train_fixture_load_checkpoint("b", "ckpt-step00000020.h5", &mb, &ob) == 0);
    CHECK(ma.n_params == mb.n_params && memcmp(ma.params, mb.params, ma.n_params * sizeof(float)) == 0);
    CHECK_EQ_INT(ma.config.num_labels, 2);
    ct_model_free(&ma), ct_model_free(&mb), ct_adamw_free(&oa), ct_adamw_free(&ob);
}

// run_glue.py sorts a JSON dataset's labels: integers as numbers (2 before 10), so ids follow them.
TEST(classify, pairs_take_type_ids_and_integer_labels_sort_as_numbers) {
    char prefix[4096], *out;
    if (prepare(prefix, sizeof prefix) != 0) return;
    ct_test_write("pairs.jsonl", "{\"text_a\": \"the red cat\", \"text_b\": \"the dog\", \"label\": 10}\n"
                                 "{\"text_a\": \"the cat\", \"text_b\": \"the blue dog\", \"label\": 2}\n"
                                 "{\"text_a\": \"the cat\", \"text_b\": \"the dog\", \"label\": 10}\n"
                                 "{\"text_a\": \"the old cat\", \"text_b\": \"a dog\", \"label\": 2}\n");
    CHECK_EQ_INT(classify(prefix, "--data.path=pairs.jsonl --classify.val_path= --classify.val_fraction=0.25 "
                                  "--train.batch_size=2 --train.max_steps=2 --train.eval_every=0 --train.save_every=0", &out), 0);
    CHECK_CONTAINS(out, "classify: 2 labels (2,10; ids in that order");
    CHECK_CONTAINS(out, "3 training and 1 validation examples (text pairs)");
    free(out);
    // a validation label the training file does not have
    ct_test_write("odd.jsonl", "{\"text\": \"the cat\", \"label\": \"maybe\"}\n");
    CHECK(classify(prefix, "--classify.val_path=odd.jsonl --train.max_steps=1", &out) != 0);
    CHECK_CONTAINS(out, "odd.jsonl: example 1 has label maybe, which is not among the labels no,yes");
    free(out);
}

// A classifier added to train.init_from's model pools as that model's family does: an MLM
// encoder started from a config whose model keys describe a llama (README's demo.json) reads
// [CLS], not the last token.
TEST(classify, auto_pooling_follows_the_model_it_starts_from) {
    char prefix[4096], *out;
    if (prepare(prefix, sizeof prefix) != 0) return;
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' shard --tokenizer tok.json --input corpus.txt --split lines --out mlmdata "
             "&& '%s' mlm run.json --data.path=mlmdata --data.doc_masking=true --run.out_dir=mlm --train.max_steps=2 "
             "--train.eval_every=0 2>&1", ct_test_tmpdir(), ct_test_bin(), ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    CHECK_EQ_INT(classify(prefix, "--model.preset=llama-tiny --model.arch=llama --model.n_kv_head=2 "
                                  "--train.init_from=mlm/ckpt-step00000002.h5 --train.max_steps=2 --train.eval_every=0",
                          &out), 0);
    CHECK_CONTAINS(out, "added a classifier of 2 labels (cls pooling)");
    free(out);
}

// An MLM checkpoint of the task's own sentences (a few steps of ctrain mlm on corpus.txt) in
// DIR/mlm/ckpt-step<steps>.h5 (ctrain's BERT keeps a pooler, untrained by MLM).
static int mlm_base(const char *dir, int steps) {
    char cmd[8192], *out;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' shard --tokenizer tok.json --input corpus.txt --split lines --out mlmdata "
             "&& '%s' mlm run.json --data.path=mlmdata --data.doc_masking=true --run.out_dir=%s --train.max_steps=%d "
             "--train.eval_every=0 --train.save_every=%d --model.dropout=0 --optim.lr=3e-3 --run.threads=1 2>&1",
             ct_test_tmpdir(), ct_test_bin(), ct_test_bin(), dir, steps, steps);
    int rc = ct_test_run(cmd, &out);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "the MLM base failed: %s", out);
    free(out);
    return rc;
}

#define LORA_TARGETS "query,key,value,attention.output.dense,intermediate.dense,output.dense"
#define LORA_ARGS                                                                                                   \
    "--train.init_from=mlm/ckpt-step00000100.h5 --run.threads=1 --lora.r=8 --lora.alpha=16 --lora.targets=" LORA_TARGETS

// PEFT's SEQ_CLS task: adapters on every linear layer of the blocks, the classifier in full, the
// rest of the BERT frozen (its pooler too, as PEFT leaves it). Trainable: r·(in + out) per adapted
// layer, and the classifier's 2·C + 2. Measured (2026-12-07): val_acc 0.373 at step 0, 1.000 after
// 150 steps at lr 3e-3 (a 100-step run: 0.817); the test asks 0.9.
TEST(classify, a_lora_bert_classifier_learns_whether_a_sentence_names_a_colour) {
    ct_log_set_level(CT_LOG_QUIET);  // (loading the LoRA checkpoints below reports them)
    char prefix[4096], *out;
    if (prepare(prefix, sizeof prefix) != 0 || mlm_base("mlm", 100) != 0) return;
    CHECK_EQ_INT(classify(prefix, LORA_ARGS " --run.out_dir=lora --optim.lr=3e-3 --train.max_steps=150 "
                                  "--train.eval_every=50 --train.save_every=150", &out), 0);
    CHECK_CONTAINS(out, "lora: r 8, alpha 16, scale 2, targets " LORA_TARGETS ": 12 adapters + the classification "
                        "head in full (classifier,score: 2 tensors)");
    free(out);
    const double acc0 = metric("lora", "eval", 0, "val_acc"), acc = metric("lora", "eval", 150, "val_acc");
    printf("    LoRA classifier: val_acc %.4f at step 0, %.4f after 150 steps\n", acc0, acc);
    CHECK_MSG(acc0 < 0.8 && acc >= 0.9, "val_acc %.4f at the start, %.4f after 150 steps", acc0, acc);
    CtModel m;
    CtAdamW opt;
    CHECK(train_fixture_load_checkpoint("lora", "ckpt-step00000150.h5", &m, &opt) == 0);
    CHECK(m.lora != NULL && m.frozen && m.config.num_labels == 2);
    const size_t C = (size_t)m.config.d_model, F = (size_t)m.config.d_ff, r = 8;
    const size_t want = (size_t)m.config.n_layer * r * (4 * 2 * C + (C + F) + (F + C)) + 2 * C + 2;
    CHECK_MSG(m.n_train == want && opt.n == want, "trainable %zu (optimizer %zu), expected %zu", m.n_train, opt.n, want);
    ct_model_free(&m), ct_adamw_free(&opt);
    // PEFT's folder: SEQ_CLS, the head saved whole
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' lora export lora/ckpt-step00000150.h5 --out adapter 2>&1 && "
             "cat adapter/adapter_config.json", ct_test_tmpdir(), ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "\"task_type\":\t\"SEQ_CLS\"");
    CHECK_CONTAINS(out, "\"modules_to_save\":\t[\"classifier\", \"score\"]");
    free(out);
    // the checkpoint as a classifier (adapters and head merged) labels as the run measured
    CHECK_EQ_INT(classify(prefix, "--predict val.jsonl --out pred.jsonl --train.init_from=lora/ckpt-step00000150.h5",
                          &out), 0);
    char expect[128];
    snprintf(expect, sizeof expect, "classify: 300 labelled examples: accuracy %.4f", acc);
    CHECK_CONTAINS(out, expect);
    free(out);
}

TEST(classify, a_lora_classifier_resumes_to_the_bit) {
    ct_log_set_level(CT_LOG_QUIET);  // (loading the LoRA checkpoints below reports them)
    char prefix[4096], *out;
    if (prepare(prefix, sizeof prefix) != 0 || mlm_base("mlm", 100) != 0) return;
    CHECK_EQ_INT(classify(prefix, LORA_ARGS " --run.out_dir=a", &out), 0);
    free(out);
    CHECK_EQ_INT(classify(prefix, LORA_ARGS " --run.out_dir=b --stop-after 10", &out), 0);
    free(out);
    CHECK_EQ_INT(classify(prefix, LORA_ARGS " --run.out_dir=b --resume b", &out), 0);
    CHECK_CONTAINS(out, "resumed from b/ckpt-step00000010.h5 at step 10");
    free(out);
    char *a = train_fixture_metric_lines("a", 11), *b = train_fixture_metric_lines("b", 11);
    CHECK_MSG(a && b && strcmp(a, b) == 0, "losses after resuming differ:\n%s\nvs\n%s", a, b);
    free(a);
    free(b);
    CtModel ma, mb;
    CtAdamW oa, ob;
    CHECK(train_fixture_load_checkpoint("a", "ckpt-step00000020.h5", &ma, &oa) == 0);
    CHECK(train_fixture_load_checkpoint("b", "ckpt-step00000020.h5", &mb, &ob) == 0);
    CHECK(ma.lora && mb.lora && ma.n_train == mb.n_train &&
          memcmp(ma.lora->params, mb.lora->params, ma.n_train * sizeof(float)) == 0);
    CHECK(memcmp(oa.m, ob.m, oa.n * sizeof(float)) == 0 && memcmp(oa.v, ob.v, oa.n * sizeof(float)) == 0);
    ct_model_free(&ma), ct_model_free(&mb), ct_adamw_free(&oa), ct_adamw_free(&ob);
}

// Data parallel (issue 10's rule): 2 ranks of batch 8 take the steps of 1 rank of batch 16, full
// fine-tuning and LoRA. Dropout off: its masks follow the row's place in the micro-batch.
TEST(classify, two_ranks_equal_one_rank_with_twice_the_batch) {
    ct_log_set_level(CT_LOG_QUIET);  // (loading the LoRA checkpoints below reports them)
#ifndef CTRAIN_MPI
    SKIP("this build has no MPI (install OpenMPI and rebuild to test data parallelism)");
#endif
    if (ct_test_run("command -v mpirun", NULL) != 0) SKIP("mpirun is not on PATH: data-parallel tests skipped");
    char prefix[4096], *out;
    if (prepare(prefix, sizeof prefix) != 0 || mlm_base("mlm", 100) != 0) return;
    static const char *const kinds[] = {"--train.init_from=mlm/ckpt-step00000100.h5", LORA_ARGS};
    for (int k = 0; k < 2; k++) {
        char args[1024], cmd[8192];
        snprintf(args, sizeof args, "%s --model.dropout=0 --run.threads=1 --train.max_steps=10 --train.eval_every=10",
                 kinds[k]);
        snprintf(cmd, sizeof cmd, "%s --run.out_dir=one%d", args, k);
        CHECK_EQ_INT(classify(prefix, cmd, &out), 0);
        free(out);
        snprintf(cmd, sizeof cmd, "classify run.json %s --run.out_dir=two%d --train.batch_size=8", args, k);
        CHECK_EQ_INT(train_fixture_mpirun(2, cmd, &out), 0);
        CHECK_CONTAINS(out, "data parallel: parameters identical on all 2 ranks");
        free(out);
        char one[16], two[16];
        snprintf(one, sizeof one, "one%d", k);
        snprintf(two, sizeof two, "two%d", k);
        CtModel a, b;
        CtAdamW oa, ob;
        CHECK(train_fixture_load_checkpoint(one, "ckpt-step00000010.h5", &a, &oa) == 0);
        CHECK(train_fixture_load_checkpoint(two, "ckpt-step00000010.h5", &b, &ob) == 0);
        double diff = 0, norm = 0;
        const float *pa = a.lora ? a.lora->params : a.params, *pb = b.lora ? b.lora->params : b.params;
        CHECK(a.n_train == b.n_train && a.n_train > 0);
        for (size_t i = 0; i < a.n_train; i++) {
            diff += ((double)pa[i] - pb[i]) * ((double)pa[i] - pb[i]);
            norm += (double)pb[i] * pb[i];
        }
        printf("    %s: 2 ranks x 8 vs 1 rank x 16 after 10 steps: relative difference %.3g\n", k ? "LoRA" : "full",
               sqrt(diff / norm));
        CHECK_MSG(sqrt(diff / norm) < 1e-5, "%s: relative difference %g", k ? "LoRA" : "full", sqrt(diff / norm));
        CHECK_NEAR(metric(one, "eval", 10, "val_loss"), metric(two, "eval", 10, "val_loss"), 1e-5);
        CHECK(metric(one, "eval", 10, "val_acc") == metric(two, "eval", 10, "val_acc"));
        ct_model_free(&a), ct_model_free(&b), ct_adamw_free(&oa), ct_adamw_free(&ob);
    }
}
