// ZeRO-1 on GPUs through the binary (suite "cuda", issue 10): the AdamW moments sliced over the
// ranks in device memory, gradients reduce-scattered and parameters all-gathered by NCCL over
// buffers padded to equal parts (optim/zero.h). One GPU: a communicator of one, where ZeRO-1
// must take exactly the steps of plain training and resume to the bit. Two ranks (two GPUs and
// mpirun; the CPU emulation of CUDA has two emulated GPUs and NCCL over MPI): ZeRO-1 equals
// plain data parallelism, and both equal one rank with the whole batch. Skipped without a GPU.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/device.h"
#include "optim/adamw.h"
#include "tests/test.h"
#include "tests/train_fixture.h"
#include "train/dist/dist_nccl.h"
#include "train/model/model.h"

#ifdef CTRAIN_CUDA
// A clip threshold that every step reaches, so the global norm over the slices matters.
static const char *CONFIG =
    "{\"model\": {\"preset\": \"gpt2-tiny\", \"n_layer\": 1, \"d_model\": 32, \"n_head\": 2, \"max_seq_len\": 32},"
    " \"train\": {\"batch_size\": 4, \"seq_len\": 32, \"max_steps\": 8, \"eval_every\": 0, \"eval_batches\": 1,"
    " \"save_every\": 4, \"keep_last\": 3, \"n_samples\": 0},"
    " \"optim\": {\"lr\": 3e-3, \"warmup_steps\": 2, \"grad_clip\": 0.05}, \"run\": {\"threads\": 1}}";

static int prepare(void) {
    char why[256];
    if (ct_cuda_device_count(why, sizeof why) <= 0) SKIP("%s", why);
    if (!ct_nccl_built()) SKIP("this build has no NCCL (make NCCL=1 where nccl.h is installed)");
    if (train_fixture_stories(200) != 0) return -1;
    ct_test_write("run.json", CONFIG);
    return 0;
}

// ctrain pretrain on `np` ranks (0: without mpirun) on the GPU, with `extra` arguments.
static int run(int np, const char *extra, char **out) {
    char cmd[4096], launcher[512] = "";
    if (np > 0)
        snprintf(launcher, sizeof launcher,
                 "OMP_NUM_THREADS=1 timeout 300 mpirun --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS -np %d ",
                 np);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && %s'%s' pretrain run.json --data.path=data --run.device=cuda %s 2>&1",
             ct_test_tmpdir(), launcher, ct_test_bin(), extra);
    return ct_test_run(cmd, out);
}

// ‖a − b‖ / ‖b‖ over parameters and both moments (the largest); -1 when unreadable, 1 when
// the step counts differ.
static double difference(const char *a_dir, const char *b_dir) {
    CtModel a, b;
    CtAdamW oa, ob;
    if (train_fixture_load_checkpoint(a_dir, "ckpt-step00000008.h5", &a, &oa) != 0) return -1;
    if (train_fixture_load_checkpoint(b_dir, "ckpt-step00000008.h5", &b, &ob) != 0) return -1;
    const float *pairs[3][2] = {{a.params, b.params}, {oa.m, ob.m}, {oa.v, ob.v}};
    double worst = oa.step == ob.step ? 0 : 1;
    for (int k = 0; k < 3; k++) {
        double diff = 0, norm = 0;
        for (size_t i = 0; i < b.n_params; i++) {
            double d = (double)pairs[k][0][i] - pairs[k][1][i];
            diff += d * d;
            norm += (double)pairs[k][1][i] * pairs[k][1][i];
        }
        worst = fmax(worst, norm > 0 ? sqrt(diff / norm) : sqrt(diff));
    }
    ct_model_free(&a);
    ct_model_free(&b);
    ct_adamw_free(&oa);
    ct_adamw_free(&ob);
    return worst;
}

TEST(cuda, zero_on_one_gpu_takes_the_steps_of_plain_training_and_resumes) {
    if (prepare() != 0) return;
    char *out;
    CHECK_EQ_INT(run(0, "--run.precision=fp32 --run.out_dir=plain", &out), 0);
    free(out);
    CHECK_EQ_INT(run(0, "--run.precision=fp32 --run.out_dir=zero --optim.zero=1", &out), 0);
    CHECK_CONTAINS(out, "optim.zero 1: AdamW moments");
    CHECK_CONTAINS(out, "in GPU memory");
    free(out);
    CHECK_EQ_INT(run(0, "--run.precision=fp32 --run.out_dir=resumed --optim.zero=1 --stop-after 4", &out), 0);
    free(out);
    CHECK_EQ_INT(run(0, "--run.precision=fp32 --run.out_dir=resumed --optim.zero=1 --resume resumed", &out), 0);
    CHECK_CONTAINS(out, "at step 4");
    free(out);
    // bf16: the weights' bf16 copy, rewritten after each all-gather, and re-created on resume.
    CHECK_EQ_INT(run(0, "--run.precision=bf16 --run.out_dir=plain16", &out), 0);
    free(out);
    CHECK_EQ_INT(run(0, "--run.precision=bf16 --run.out_dir=zero16 --optim.zero=1 --stop-after 4", &out), 0);
    free(out);
    CHECK_EQ_INT(run(0, "--run.precision=bf16 --run.out_dir=zero16 --optim.zero=1 --resume zero16", &out), 0);
    free(out);
    // One rank owns everything: the same kernels on the same numbers, so the same bits.
    double d = difference("zero", "plain");
    CHECK_MSG(d == 0, "ZeRO-1 on one GPU vs plain training: relative difference %g", d);
    d = difference("resumed", "zero");
    CHECK_MSG(d == 0, "ZeRO-1 resumed at step 4 vs uninterrupted: relative difference %g", d);
    d = difference("zero16", "plain16");
    CHECK_MSG(d == 0, "bf16: ZeRO-1 on one GPU, resumed at step 4, vs plain training: relative difference %g", d);
}

TEST(cuda, zero_on_two_gpus_equals_plain_data_parallel_and_one_rank) {
    if (prepare() != 0) return;
    char why[256];
    int gpus = ct_cuda_device_count(why, sizeof why);
    if (gpus < 2) SKIP("two ranks need two GPUs (NCCL refuses two ranks on one GPU); this machine has %d", gpus);
#ifndef CTRAIN_MPI
    SKIP("this build has no MPI (install OpenMPI and rebuild to test multi-rank runs)");
#endif
    if (ct_test_run("command -v mpirun", NULL) != 0) SKIP("mpirun is not on PATH: multi-rank test skipped");
    char *out;
    CHECK_EQ_INT(run(2, "--run.precision=fp32 --run.out_dir=zero2 --train.batch_size=2 --optim.zero=1", &out), 0);
    CHECK_CONTAINS(out, "split over 2 ranks");
    CHECK_CONTAINS(out, "data parallel: parameters identical on all 2 ranks");
    free(out);
    CHECK_EQ_INT(run(2, "--run.precision=fp32 --run.out_dir=plain2 --train.batch_size=2", &out), 0);
    free(out);
    CHECK_EQ_INT(run(0, "--run.precision=fp32 --run.out_dir=one", &out), 0);
    free(out);
    // bf16: each rank steps its slice of the weights' bf16 copy; after the all-gather every
    // rank must hold the owners' copy of the rest, or the ranks' products (and the parameters'
    // agreement) drift from plain data parallelism.
    CHECK_EQ_INT(run(2, "--run.precision=bf16 --run.out_dir=zero2b --train.batch_size=2 --optim.zero=1", &out), 0);
    CHECK_CONTAINS(out, "data parallel: parameters identical on all 2 ranks");
    free(out);
    CHECK_EQ_INT(run(2, "--run.precision=bf16 --run.out_dir=plain2b --train.batch_size=2", &out), 0);
    free(out);
    double d = difference("zero2", "plain2");
    CHECK_MSG(d >= 0 && d < 1e-5, "ZeRO-1 vs plain data parallel on 2 GPUs: relative difference %g", d);
    d = difference("plain2", "one");
    CHECK_MSG(d >= 0 && d < 1e-5, "2 GPUs x batch 2 vs 1 GPU x batch 4: relative difference %g", d);
    d = difference("zero2b", "plain2b");
    CHECK_MSG(d >= 0 && d < 1e-5, "bf16: ZeRO-1 vs plain data parallel on 2 GPUs: relative difference %g", d);
}

#else
TEST(cuda, zero) { SKIP("this ctrain was built without CUDA (make CUDA=1 where nvcc is installed)"); }
#endif
