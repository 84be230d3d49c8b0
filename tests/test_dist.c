// Data-parallel training under mpirun on the CPU (issue 10): N ranks with batch B train the
// model one rank trains with batch N·B, the ranks agree, resume works with the same world size
// and says so with another, and a rank that dies ends the job. Skipped without MPI.
#include <math.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "kernels/ops.h"
#include "optim/adamw.h"
#include "tests/mpi_worker.h"
#include "tests/test.h"
#include "tests/train_fixture.h"
#include "train/interop/checkpoint_io.h"
#include "train/dist/dist.h"
#include "train/dist/zero.h"

static const char *CONFIG =
    "{\"model\": {\"preset\": \"llama-tiny\", \"n_layer\": 1, \"d_model\": 32, \"n_head\": 2, \"n_kv_head\": 1,"
    " \"d_ff\": 64, \"max_seq_len\": 32},"
    " \"train\": {\"batch_size\": 2, \"seq_len\": 32, \"max_steps\": 10, \"eval_every\": 0, \"eval_batches\": 1,"
    " \"save_every\": 5, \"keep_last\": 3, \"n_samples\": 0},"
    " \"optim\": {\"lr\": 3e-3, \"warmup_steps\": 4}, \"run\": {\"threads\": 1}}";

// Skips without MPI; prepares stories -> tokenizer -> shards and sets *one (ctrain pretrain
// on one rank) and *many (the same under mpirun; append -np N and the binary's arguments).
// Under make asan, leak checking is off for the ranks: Open MPI's dlopen'd components leave
// allocations at exit that no suppression can name (their modules are unloaded by then).
static int prepare(char *one, char *many, size_t size) {
#ifndef CTRAIN_MPI
    SKIP("this build has no MPI (install OpenMPI and rebuild to test data parallelism)");
#endif
    if (ct_test_run("command -v mpirun", NULL) != 0) SKIP("mpirun is not on PATH: data-parallel tests skipped");
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    if (train_fixture_stories(300) != 0) return -1;
    ct_test_write("run.json", CONFIG);
    snprintf(one, size, "cd '%s' && OMP_NUM_THREADS=1 '%s' pretrain run.json --data.path=data", dir, bin);
    snprintf(many, size, "cd '%s' && OMP_NUM_THREADS=1 ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 timeout 300 mpirun --oversubscribe --allow-run-as-root -x ASAN_OPTIONS "
             "-x OMP_NUM_THREADS=1", dir);
    return 0;
}

static int run(const char *prefix, const char *np, const char *extra, char **out) {
    char cmd[8192];
    if (np)
        snprintf(cmd, sizeof cmd, "%s -np %s '%s' pretrain run.json --data.path=data %s 2>&1", prefix, np, ct_test_bin(),
                 extra);
    else
        snprintf(cmd, sizeof cmd, "%s %s", prefix, extra);
    return ct_test_run(cmd, out);
}

static double relative(const float *a, const float *b, size_t n) {
    double diff = 0, norm = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        diff += d * d;
        norm += (double)b[i] * b[i];
    }
    return norm > 0 ? sqrt(diff / norm) : sqrt(diff);
}

// ‖a − b‖ / ‖b‖ over the parameters of two checkpoints in the test folder (and, with_optim,
// the largest of that and the same for the AdamW moments); -1 when unreadable.
static double checkpoint_difference(const char *a_path, const char *b_path, int with_optim) {
    CtModel a, b;
    CtAdamW oa, ob;
    memset(&oa, 0, sizeof oa);
    memset(&ob, 0, sizeof ob);
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", ct_test_tmpdir(), a_path);
    if (ct_checkpoint_load(path, &a, ct_ops_cpu(), 1, 1, 0, with_optim ? &oa : NULL, &meta) != 0) return -1;
    ct_checkpoint_meta_free(&meta);
    snprintf(path, sizeof path, "%s/%s", ct_test_tmpdir(), b_path);
    if (ct_checkpoint_load(path, &b, ct_ops_cpu(), 1, 1, 0, with_optim ? &ob : NULL, &meta) != 0) return -1;
    ct_checkpoint_meta_free(&meta);
    if (a.n_params != b.n_params) return -1;
    double rel = relative(a.params, b.params, b.n_params);
    if (with_optim) {
        double m = relative(oa.m, ob.m, b.n_params), v = relative(oa.v, ob.v, b.n_params);
        rel = oa.step != ob.step ? 1.0 : fmax(rel, fmax(m, v));
        ct_adamw_free(&oa);
        ct_adamw_free(&ob);
    }
    ct_model_free(&a);
    ct_model_free(&b);
    return rel;
}
#define relative_difference(a, b) checkpoint_difference(a, b, 0)

// Runs `args` on 2 ranks with batch 2 into two_dir and on 1 rank with batch 4 into one_dir (a
// failed run fails the test; the caller then finds no checkpoint to compare).
static void two_ranks_and_one(const char *one, const char *many, const char *args, const char *two_dir,
                              const char *one_dir) {
    char extra[2048], *out;
    snprintf(extra, sizeof extra, "--run.out_dir=%s %s", two_dir, args);
    CHECK_EQ_INT(run(many, "2", extra, &out), 0);
    CHECK_CONTAINS(out, "data parallel: parameters identical on all 2 ranks");
    free(out);
    snprintf(extra, sizeof extra, "--run.out_dir=%s --train.batch_size=4 %s", one_dir, args);
    CHECK_EQ_INT(run(one, NULL, extra, &out), 0);
    free(out);
}

TEST(dist, n_ranks_with_batch_b_equal_one_rank_with_batch_nb) {
    char one[4096], many[4096], *out;
    if (prepare(one, many, sizeof one) != 0) return;
    CHECK_EQ_INT(run(many, "2", "--run.out_dir=two", &out), 0);
    CHECK_CONTAINS(out, "done: 10 steps, 1280 tokens");
    CHECK_CONTAINS(out, "data parallel: parameters identical on all 2 ranks");
    free(out);
    CHECK_EQ_INT(run(one, NULL, "--run.out_dir=one2 --train.batch_size=4", &out), 0);
    free(out);
    double rel = relative_difference("two/ckpt-step00000010.h5", "one2/ckpt-step00000010.h5");
    CHECK_MSG(rel >= 0 && rel < 1e-5, "2 ranks x batch 2 vs 1 rank x batch 4: relative difference %g", rel);
    // The initial parameters moved: the comparison means something.
    double moved = relative_difference("two/ckpt-step00000005.h5", "two/ckpt-step00000010.h5");
    CHECK_MSG(moved > 1e-3, "the parameters barely moved (%g)", moved);
    // Three ranks with gradient accumulation: 3 x 2 rows x 2 micro-batches = one rank with 6 x 2.
    CHECK_EQ_INT(run(many, "3", "--run.out_dir=three --train.grad_accum=2", &out), 0);
    CHECK_CONTAINS(out, "data parallel: parameters identical on all 3 ranks");
    free(out);
    CHECK_EQ_INT(run(one, NULL, "--run.out_dir=one3 --train.batch_size=6 --train.grad_accum=2", &out), 0);
    free(out);
    rel = relative_difference("three/ckpt-step00000010.h5", "one3/ckpt-step00000010.h5");
    CHECK_MSG(rel >= 0 && rel < 1e-5, "3 ranks x batch 2 x accum 2 vs 1 rank x batch 6 x accum 2: relative difference %g",
              rel);
    // ZeRO-1 (moments split in uneven slices over 3 ranks) takes the same steps, and its
    // checkpoint holds the whole optimizer state.
    CHECK_EQ_INT(run(many, "3", "--run.out_dir=zero --train.grad_accum=2 --optim.zero=1", &out), 0);
    CHECK_CONTAINS(out, "data parallel: parameters identical on all 3 ranks");
    free(out);
    rel = checkpoint_difference("zero/ckpt-step00000010.h5", "three/ckpt-step00000010.h5", 1);
    CHECK_MSG(rel >= 0 && rel < 1e-5, "ZeRO-1 vs plain data parallel: relative difference %g", rel);
}

// The llama variants of issue 22 take the same data-parallel path: a Gemma-2/Qwen3-shaped model
// (q/k biases and norms, head_dim ≠ d_model/n_head, GeGLU, post-norms, embedding scale, soft-caps,
// a window shorter than the sequence on every other layer, llama3 RoPE scaling) on 2 ranks with
// batch 2 trains the model 1 rank trains with batch 4.
TEST(dist, llama_variants_on_n_ranks_equal_one_rank) {
    char one[4096], many[4096];
    if (prepare(one, many, sizeof one) != 0) return;
    const char *shape =
        "--model.family=gemma2 --model.head_dim=24 --model.qkv_bias=true --model.qk_norm=true "
        "--model.gate_act=gelu_tanh --model.post_norms=true --model.embed_scale=true --model.query_scale=0.2 "
        "--model.sliding_window=8 --model.sliding_window_pattern=2 --model.attn_softcap=50 "
        "--model.final_softcap=30 --model.rope_type=llama3 --model.rope_factor=8 --model.rope_low_freq_factor=1 "
        "--model.rope_high_freq_factor=4 --model.rope_original_max_position=16";
    two_ranks_and_one(one, many, shape, "two", "one");
    double rel = relative_difference("two/ckpt-step00000010.h5", "one/ckpt-step00000010.h5");
    CHECK_MSG(rel >= 0 && rel < 1e-5, "2 ranks x batch 2 vs 1 rank x batch 4: relative difference %g", rel);
    double moved = relative_difference("two/ckpt-step00000005.h5", "two/ckpt-step00000010.h5");
    CHECK_MSG(moved > 1e-3, "the parameters barely moved (%g)", moved);
    printf("    gemma2/qwen3-shaped model: 2 ranks vs 1 rank %.3g, moved %.3g\n", rel, moved);
}

// Mixture of Experts (issue 23): expert weights replicated, routing statistics all-reduced.
// The router z-loss is a mean over each micro-batch's rows, weighed 1/(accum·world): 2 ranks with
// batch 2 train the model 1 rank trains with batch 4. The load-balancing loss is a product of two
// means over a micro-batch, so it depends on how the step is cut: with it (and DeepSeek-V3's
// aux-free bias, moved from the counts summed over the ranks) 2 ranks with batch 2 equal 1 rank
// accumulating 2 micro-batches of 2, and the ranks end with the same parameters, the bias included.
TEST(dist, moe_on_n_ranks_equals_one_rank) {
    char one[4096], many[4096];
    if (prepare(one, many, sizeof one) != 0) return;
    const char *moe = "--model.n_layer=2 --model.n_experts=4 --model.top_k=2 --model.moe_d_ff=16 "
                      "--model.n_shared_experts=1";
    char args[1024], extra[2048], *out;
    snprintf(args, sizeof args, "%s --train.aux_loss_coef=0 --train.router_z_loss_coef=0.01", moe);
    two_ranks_and_one(one, many, args, "moez2", "moez1");
    double rel = relative_difference("moez2/ckpt-step00000010.h5", "moez1/ckpt-step00000010.h5");
    CHECK_MSG(rel >= 0 && rel < 1e-5, "MoE with the z-loss, 2 ranks x batch 2 vs 1 rank x batch 4: relative difference %g",
              rel);
    double moved = relative_difference("moez2/ckpt-step00000005.h5", "moez2/ckpt-step00000010.h5");
    CHECK_MSG(moved > 1e-3, "the parameters barely moved (%g)", moved);
    snprintf(args, sizeof args, "%s --model.router=sigmoid_norm --train.aux_loss_coef=0.1 --train.aux_free_bias_rate=0.01",
             moe);
    snprintf(extra, sizeof extra, "--run.out_dir=moeb2 %s", args);
    CHECK_EQ_INT(run(many, "2", extra, &out), 0);
    CHECK_CONTAINS(out, "data parallel: parameters identical on all 2 ranks");
    free(out);
    snprintf(extra, sizeof extra, "--run.out_dir=moeb1 --train.grad_accum=2 %s", args);
    CHECK_EQ_INT(run(one, NULL, extra, &out), 0);
    free(out);
    rel = relative_difference("moeb2/ckpt-step00000010.h5", "moeb1/ckpt-step00000010.h5");
    CHECK_MSG(rel >= 0 && rel < 1e-5, "MoE with the aux loss and bias, 2 ranks x batch 2 vs 1 rank x batch 2 x accum 2: "
              "relative difference %g", rel);
    // ZeRO-1 (each rank steps its slice, then the whole is gathered) moves the bias alike.
    snprintf(extra, sizeof extra, "--run.out_dir=moeb2z --optim.zero=1 %s", args);
    CHECK_EQ_INT(run(many, "2", extra, &out), 0);
    CHECK_CONTAINS(out, "data parallel: parameters identical on all 2 ranks");
    free(out);
    double zero = checkpoint_difference("moeb2z/ckpt-step00000010.h5", "moeb2/ckpt-step00000010.h5", 1);
    CHECK_MSG(zero >= 0 && zero < 1e-5, "MoE with ZeRO-1 vs plain data parallel: relative difference %g", zero);
    // The biases moved (by the counts of both ranks: the comparison with one rank above says so).
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    char path[1200];
    snprintf(path, sizeof path, "%s/moeb2/ckpt-step00000010.h5", ct_test_tmpdir());
    CHECK_EQ_INT(ct_checkpoint_load(path, &m, ct_ops_cpu(), 1, 1, 0, NULL, &meta), 0);
    ct_checkpoint_meta_free(&meta);
    int biases = 0, moved_bias = 0;
    for (int i = 0; i < m.n_tensors; i++)
        if (strstr(m.table[i].name, "e_score_correction_bias"))
            for (size_t k = 0; k < m.table[i].numel; k++, biases++) moved_bias += m.params[m.table[i].offset + k] != 0;
    CHECK_MSG(biases == 8 && moved_bias > 0, "%d of %d biases moved", moved_bias, biases);
    ct_model_free(&m);
    // The loads rank 0 reports are the whole step's: those of the one rank that saw every row.
    char *two = train_fixture_metric_lines("moeb2", 0), *single = train_fixture_metric_lines("moeb1", 0);
    const char *a = two ? strstr(two, "\"expert_load\"") : NULL, *b = single ? strstr(single, "\"expert_load\"") : NULL;
    CHECK(a && b);
    if (a && b) {
        const char *a_end = strstr(a, "\"moe_imbalance\""), *b_end = strstr(b, "\"moe_imbalance\"");
        CHECK(a_end && b_end && a_end - a == b_end - b && strncmp(a, b, (size_t)(a_end - a)) == 0);
    }
    free(two);
    free(single);
    printf("    MoE: 2 ranks vs 1 rank %.3g (z-loss), %.3g (aux loss and bias); ZeRO-1 vs plain %.3g\n",
           relative_difference("moez2/ckpt-step00000010.h5", "moez1/ckpt-step00000010.h5"), rel, zero);
}

// The "val_loss" values of DIR/metrics.jsonl (DIR in the test folder), in order; their count.
static int val_losses(const char *run_dir, double *v, int cap) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", ct_test_tmpdir(), run_dir);
    char *text = ct_test_read(path, NULL);
    int n = 0;
    for (const char *at = text; at && (at = strstr(at, "\"val_loss\": ")) && n < cap; at++) v[n++] = atof(at + 12);
    free(text);
    return n;
}

// The validation losses of two runs agree to `tol` (relative), at least `min_count` of them.
static void check_same_val_losses(const char *a, const char *b, int min_count, double tol) {
    double va[64], vb[64];
    int na = val_losses(a, va, 64), nb = val_losses(b, vb, 64);
    CHECK_MSG(na == nb && na >= min_count, "%s has %d validation losses, %s %d", a, na, b, nb);
    for (int i = 0; i < na && i < nb; i++)
        CHECK_MSG(fabs(va[i] - vb[i]) <= tol * fabs(vb[i]), "evaluation %d: validation loss %.9g (%s) vs %.9g (%s)", i,
                  va[i], a, vb[i], b);
}

// Validation covers the same rows whatever the number of ranks: each rank its share of every
// global batch, the sums of losses and tokens added over the ranks (before, only rank 0's rows
// were evaluated, and 2 ranks reported another loss than 1).
TEST(dist, validation_loss_equals_one_rank_s) {
    char one[4096], many[4096], *out;
    if (prepare(one, many, sizeof one) != 0) return;
    const char *eval = "--train.eval_every=5 --train.eval_batches=3";
    char extra[512];
    two_ranks_and_one(one, many, eval, "v2", "v1");
    check_same_val_losses("v2", "v1", 3, 1e-6);  // steps 0, 5 and 10
    // Three ranks of 2 rows = one rank of 6.
    snprintf(extra, sizeof extra, "--run.out_dir=v3 %s", eval);
    CHECK_EQ_INT(run(many, "3", extra, &out), 0);
    free(out);
    snprintf(extra, sizeof extra, "--run.out_dir=v6 --train.batch_size=6 %s", eval);
    CHECK_EQ_INT(run(one, NULL, extra, &out), 0);
    free(out);
    check_same_val_losses("v3", "v6", 3, 1e-6);
}

TEST(dist, only_rank_0_prints_and_resume_needs_the_same_world_size) {
    char one[4096], many[4096], *out;
    if (prepare(one, many, sizeof one) != 0) return;
    CHECK_EQ_INT(run(many, "2", "--run.out_dir=a", &out), 0);
    // One log of the run, not one per rank.
    const char *first = strstr(out, "done: 10 steps");
    CHECK_MSG(first && !strstr(first + 1, "done: 10 steps"), "%s", out);
    free(out);
    CHECK_EQ_INT(run(many, "2", "--run.out_dir=b --stop-after 5", &out), 0);
    CHECK_CONTAINS(out, "stopped after 5 steps as asked");
    free(out);
    CHECK_EQ_INT(run(many, "3", "--run.out_dir=b --resume b", &out) != 0, 1);
    CHECK_CONTAINS(out, "b/ckpt-step00000005.h5 was written by a run of 2 ranks with this batch; this one has 3: "
                        "resume with mpirun -np 2");
    free(out);
    CHECK_EQ_INT(run(many, "2", "--run.out_dir=b --resume b", &out), 0);
    CHECK_CONTAINS(out, "resumed from b/ckpt-step00000005.h5 at step 5");
    free(out);
    CHECK_EQ_INT(checkpoint_difference("a/ckpt-step00000010.h5", "b/ckpt-step00000010.h5", 1), 0);
    // ZeRO-1 resumes from the whole state its checkpoint holds.
    CHECK_EQ_INT(run(many, "2", "--run.out_dir=z --stop-after 5 --optim.zero=1", &out), 0);
    free(out);
    CHECK_EQ_INT(run(many, "2", "--run.out_dir=z --resume z --optim.zero=1", &out), 0);
    CHECK_CONTAINS(out, "resumed from z/ckpt-step00000005.h5 at step 5");
    free(out);
    double rel = checkpoint_difference("z/ckpt-step00000010.h5", "a/ckpt-step00000010.h5", 1);
    CHECK_MSG(rel >= 0 && rel < 1e-5, "ZeRO-1 resumed vs plain data parallel: relative difference %g", rel);
}

TEST(dist, a_rank_that_dies_ends_the_job) {
    char one[4096], many[4096], *out;
    if (prepare(one, many, sizeof one) != 0) return;
    char cmd[8192];
    // A long run; once it has logged a few steps, one rank's process (a child of mpirun) is
    // killed with SIGKILL, and mpirun must end the job.
    snprintf(cmd, sizeof cmd,
             "cd '%s' && { OMP_NUM_THREADS=1 ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 mpirun --oversubscribe --allow-run-as-root -x ASAN_OPTIONS -x OMP_NUM_THREADS=1 -np 2 '%s' "
             "pretrain run.json --data.path=data --run.out_dir=k --train.max_steps=1000000 --train.save_every=0 "
             "> k.log 2>&1 & pid=$!; "
             "for i in $(seq 600); do sleep 0.1; n=$(grep -c train k/metrics.jsonl 2>/dev/null || true); "
             "[ \"${n:-0}\" -ge 3 ] && break; done; "
             "victim=$(pgrep -P $pid -x ctrain | sort -n | tail -1); echo \"victim=${victim:-none}\"; "
             "kill -KILL $victim; start=$(date +%%s); "
             "wait $pid; rc=$?; echo \"exit=$rc seconds=$(( $(date +%%s) - start ))\"; }",
             ct_test_tmpdir(), ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    int rc = -1, seconds = -1;
    CHECK_MSG(!strstr(out, "victim=none"), "no rank process found under mpirun: %s", out);
    const char *line = strstr(out, "exit=");
    CHECK_MSG(line && sscanf(line, "exit=%d seconds=%d", &rc, &seconds) == 2, "%s", out);
    CHECK_MSG(rc != 0 && rc != 124 && seconds < 60, "after a rank was killed: exit %d after %d s", rc, seconds);
    free(out);
}

// SFT (each rank's rows hold different numbers of response tokens: the loss must be the mean
// over the global count) and DPO (the mean over the global pairs) match one rank too.
TEST(dist, sft_and_dpo_match_one_rank_with_the_whole_batch) {
    char one[4096], many[4096], *out;
    if (prepare(one, many, sizeof one) != 0) return;
    const char *bin = ct_test_bin(), *dir = ct_test_tmpdir();
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' synth instructions --task reverse --examples 400 --out rev.jsonl && cp rev.jsonl rev.txt && "
             "'%s' tokenizer train --input rev.txt --vocab-size 300 --special '<|endoftext|>' --out rtok.json && "
             "'%s' shard --tokenizer rtok.json --input rev.jsonl --format sft --val-fraction 0.05 --out sft && "
             "sed -E 's/\"prompt\": \"reverse: ([^\"]*)\", \"response\": \"([^\"]*)\"/\"prompt\": \"reverse: \\1\", "
             "\"chosen\": \"\\2\", \"rejected\": \"\\1\"/' rev.jsonl > pairs.jsonl && "
             "'%s' shard --tokenizer sft/tokenizer.json --input pairs.jsonl --format dpo --val-fraction 0.1 --out pairs",
             dir, bin, bin, bin, bin);
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    free(out);
    const char *tail = "--train.eval_exact_match=0 --train.max_steps=10 2>&1";
    for (int dpo = 0; dpo < 2; dpo++) {
        const char *verb = dpo ? "dpo" : "sft", *data = dpo ? "pairs" : "sft";
        // DPO starts from a trained model (it refuses random weights): the sft run's.
        const char *from = dpo ? "--train.init_from=sft1/ckpt-step00000010.h5" : "";
        snprintf(cmd, sizeof cmd, "%s -np 2 '%s' %s run.json --data.path=%s --run.out_dir=%s2 %s %s", many, bin, verb, data,
                 verb, from, tail);
        CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
        CHECK_CONTAINS(out, "data parallel: parameters identical on all 2 ranks");
        free(out);
        snprintf(cmd, sizeof cmd, "cd '%s' && OMP_NUM_THREADS=1 '%s' %s run.json --data.path=%s --run.out_dir=%s1 "
                 "--train.batch_size=4 %s %s", dir, bin, verb, data, verb, from, tail);
        CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
        free(out);
        char a[64], b[64];
        snprintf(a, sizeof a, "%s2/ckpt-step00000010.h5", verb);
        snprintf(b, sizeof b, "%s1/ckpt-step00000010.h5", verb);
        double rel = checkpoint_difference(a, b, 1);
        CHECK_MSG(rel >= 0 && rel < 1e-5, "%s: 2 ranks x batch 2 vs 1 rank x batch 4: relative difference %g", verb, rel);
        snprintf(a, sizeof a, "%s2", verb);  // the validation losses (steps 0 and 10) are one rank's too
        snprintf(b, sizeof b, "%s1", verb);
        check_same_val_losses(a, b, 2, 1e-6);
    }
}

// ---- ZeRO-1's state in process: no rank keeps the whole moments; a save gathers them into a
// temporary on rank 0 (train/dist/zero.h) ----

// Moments and gradients that make a step change every element.
static void fill_state(CtAdamW *opt, float *params, float *grads, size_t n) {
    for (size_t i = 0; i < n; i++) {
        opt->m[i] = 0.01f * (float)i - 0.02f;
        opt->v[i] = 0.001f * (float)(i + 1);
        params[i] = 1.0f - 0.1f * (float)i;
        grads[i] = 0.05f * (float)((i * 7) % 5) - 0.1f;
    }
    opt->step = 3;
}

// One step of ct_zero_* on `world` ranks (this one among them) against one AdamW step on the
// whole state with the gradients summed over the ranks (each rank has the same grads here).
static void zero_step_matches_adamw(void) {
    const size_t n = 7;  // uneven: slices of 4 and 3 over 2 ranks, 3, 3 and 1 over 3
    const int world = ct_dist_world(), rank = ct_dist_rank();
    CtAdamW full, ref;
    ct_adamw_init(&full, n, 1e-2, 0.9, 0.95, 1e-8, 0.1);
    ct_adamw_init(&ref, n, 1e-2, 0.9, 0.95, 1e-8, 0.1);
    float params[7], grads[7], ref_params[7], sum[7];
    fill_state(&full, params, grads, n);
    fill_state(&ref, ref_params, sum, n);
    for (size_t i = 0; i < n; i++) sum[i] *= (float)world;
    CtZero z;
    CHECK_EQ_INT(ct_zero_init(&z, &full, ct_ops_cpu()), 0);
    ct_zero_release_state(&full);  // every rank, rank 0 included, keeps only its slice
    CHECK(full.m == NULL && full.v == NULL);
    const size_t part = (n + (size_t)world - 1) / (size_t)world;  // equal parts of the padded buffer
    CHECK_EQ_INT(z.begin, (size_t)rank * part);
    CHECK_EQ_INT(z.count, z.begin >= n ? 0 : n - z.begin < part ? n - z.begin : part);
    ct_zero_reduce_clip(&z, grads, 1e9);
    ct_zero_update(&z, params, grads, 1e-2);
    ref.lr = 1e-2;
    ct_adamw_step(&ref, ref_params, sum);
    for (size_t i = 0; i < n; i++) CHECK_NEAR(params[i], ref_params[i], 1e-6);
    ct_zero_gather_state(&z, &full, 0);  // a save: the moments land in a temporary on rank 0 only
    CHECK_EQ_INT(full.step, 4);
    if (rank == 0) {
        CHECK(full.m != NULL && full.v != NULL);
        for (size_t i = 0; i < n; i++) {
            CHECK_NEAR(full.m[i], ref.m[i], 1e-7);
            CHECK_NEAR(full.v[i], ref.v[i], 1e-9);
        }
    } else {
        CHECK(full.m == NULL && full.v == NULL);
    }
    ct_zero_release_state(&full);
    CHECK(full.m == NULL);
    ct_zero_free(&z);
    ct_adamw_free(&full);
    ct_adamw_free(&ref);
}

TEST(dist, zero_gathers_the_moments_into_a_temporary_for_a_save) {
    CHECK_EQ_INT(ct_dist_world(), 1);
    ct_log_set_level(CT_LOG_QUIET);  // ct_zero_init's line about the moments' memory
    zero_step_matches_adamw();
}

TEST(dist, zero_padding_gives_every_rank_an_equal_part) {
    CHECK_EQ_INT(ct_zero_padded_count(10, 4), 12);
    CHECK_EQ_INT(ct_zero_padded_count(12, 4), 12);
    CHECK_EQ_INT(ct_zero_padded_count(0, 3), 0);
    CHECK_EQ_INT(ct_zero_padded_count(5, 1), 5);
    CHECK_EQ_INT(ct_zero_padded_count(124439808, 3), 124439808);
    CHECK_EQ_INT(ct_zero_padded_count(124439809, 8), 124439816);
}

TEST(dist_worker, zero_moments) {
    mpi_worker_only();
    CHECK_EQ_INT(ct_dist_init(), 0);
    CHECK_EQ_INT(ct_dist_world(), 2);
    zero_step_matches_adamw();
    if (ct_test_failed()) return;
    ct_dist_finalize();
}

TEST(dist, zero_on_two_ranks_keeps_slices_and_gathers_for_a_save) {
    char *out = NULL;
    int rc = mpi_worker_run(2, "dist_worker.zero_moments", NULL, 120, &out);
    CHECK_MSG(rc == 0 && mpi_worker_all_passed(out, 2), "mpirun exit %d: %s", rc, out);
    free(out);
}
