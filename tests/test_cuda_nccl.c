// NCCL collectives on GPU buffers (train/dist/dist_nccl.h). Suite "nccl", everywhere: the bucket
// arithmetic (train/dist/grad_buckets.h) and what ct_nccl_init refuses. Suite "cuda" (make
// test-cuda), skipped without a GPU: one rank (a communicator of one, no mpirun needed), and two
// ranks under mpirun where there are two GPUs: NCCL refuses two ranks on one GPU ("Duplicate GPU
// detected"), so a one-GPU machine cannot run them.
#include "core/error.h"
#include "tests/mpi_worker.h"
#include "tests/cuda_fixture.h"
#include "tests/test.h"
#include "train/dist/dist_nccl.h"
#include "train/dist/grad_buckets.h"

// ---- everywhere ----

TEST(nccl, buckets_are_handed_out_from_the_end_as_backward_finishes_them) {
    CtGradBuckets b;
    ct_grad_buckets_init(&b, 1000, 256 * sizeof(float));  // buckets [0,256) [256,512) [512,768) [768,1000)
    CHECK_EQ_INT(b.size, 256);
    CHECK_EQ_INT(b.n_buckets, 4);
    size_t begin = 0, count = 0;
    CHECK(!ct_grad_buckets_take(&b, 1000, &begin, &count));  // nothing final yet
    CHECK(!ct_grad_buckets_take(&b, 769, &begin, &count));   // the last bucket not wholly
    CHECK(ct_grad_buckets_take(&b, 768, &begin, &count));
    CHECK_EQ_INT(begin, 768);
    CHECK_EQ_INT(count, 232);
    CHECK(!ct_grad_buckets_take(&b, 700, &begin, &count));
    CHECK(ct_grad_buckets_take(&b, 100, &begin, &count));  // two at once, last first
    CHECK_EQ_INT(begin, 512);
    CHECK(ct_grad_buckets_take(&b, 100, &begin, &count));
    CHECK_EQ_INT(begin, 256);
    CHECK_EQ_INT(count, 256);
    CHECK(!ct_grad_buckets_take(&b, 100, &begin, &count));
    CHECK(ct_grad_buckets_take(&b, 0, &begin, &count));
    CHECK_EQ_INT(begin, 0);
    CHECK_EQ_INT(count, 256);
    CHECK(!ct_grad_buckets_take(&b, 0, &begin, &count));  // all out
    ct_grad_buckets_restart(&b);
    size_t covered = 0;
    while (ct_grad_buckets_take(&b, 0, &begin, &count)) covered += count;
    CHECK_EQ_INT(covered, 1000);
}

TEST(nccl, bucket_sizes_are_whole_256_byte_units) {
    CtGradBuckets b;
    ct_grad_buckets_init(&b, 124439808, 0);  // GPT-2 124M: 25 MiB buckets
    CHECK_EQ_INT(b.size, 25 << 18);
    CHECK_EQ_INT(b.n_buckets, 19);
    ct_grad_buckets_init(&b, 10, 1000);  // 250 floats -> 192
    CHECK_EQ_INT(b.size, 192);
    CHECK_EQ_INT(b.n_buckets, 1);
    ct_grad_buckets_init(&b, 10, 8);  // at least one unit
    CHECK_EQ_INT(b.size, 64);
    ct_grad_buckets_init(&b, 0, 0);
    size_t begin, count;
    CHECK_EQ_INT(b.n_buckets, 0);
    CHECK(!ct_grad_buckets_take(&b, 0, &begin, &count));
}

TEST(nccl, init_refuses_a_bad_timeout) {
    if (!ct_nccl_built()) SKIP("this build has no NCCL");
    setenv("CTRAIN_NCCL_TIMEOUT", "ten", 1);  // this test's own process
    CHECK_EQ_INT(ct_nccl_init(), -1);
    CHECK_CONTAINS(ct_error_message(), "CTRAIN_NCCL_TIMEOUT=ten: expected seconds");
}

TEST(nccl, builds_without_nccl_say_so) {
    if (ct_nccl_built()) SKIP("this build has NCCL");
    CHECK_EQ_INT(ct_nccl_init(), -1);
    CHECK_CONTAINS(ct_error_message(), "without");
    CHECK_EQ_INT(ct_nccl_device(), -1);
}

#ifdef CTRAIN_CUDA
#include <unistd.h>

#include "core/alloc.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/device.h"
#include "train/dist/dist.h"
#include "train/dist/zero.h"

static int gpus(void) {
    char why[256];
    return ct_cuda_device_count(why, sizeof why);
}

static void need_gpu(void) {
    char why[256];
    if (ct_cuda_device_count(why, sizeof why) <= 0) SKIP("%s", why);
    if (!ct_nccl_built()) SKIP("this build has no NCCL (make NCCL=1 where nccl.h is installed)");
}

static float *upload(const float *host, size_t n) { return cuda_fixture_up(host, n * sizeof(float), "test buffer"); }

// x_r[i] = (r+1)·(i%97 + 1): integers, so every sum below is exact in float.
static float value(int rank, size_t i) { return (float)((rank + 1) * (int)(i % 97 + 1)); }
static float summed(int world, size_t i) { return (float)(world * (world + 1) / 2 * (int)(i % 97 + 1)); }

TEST(nccl, init_without_a_gpu_says_so) {
    if (!ct_nccl_built()) SKIP("this build has no NCCL");
    if (gpus() > 0) SKIP("this machine has a GPU");
    CHECK_EQ_INT(ct_nccl_init(), -1);
    CHECK_CONTAINS(ct_error_message(), "CUDA device");
    CHECK_EQ_INT(ct_nccl_device(), -1);
}

// ---- one rank: a communicator of one ----

TEST(cuda, nccl_allreduce_one_rank) {
    need_gpu();
    CHECK_EQ_INT(ct_nccl_init(), 0);
    CHECK_EQ_INT(ct_nccl_device(), 0);
    enum { N = 5000 };
    float *x = ct_alloc(N * sizeof(float));
    for (size_t i = 0; i < N; i++) x[i] = value(0, i);
    float *d = upload(x, N);
    ct_nccl_allreduce_sum_f32(d, N);  // Σ over one rank: unchanged
    float *h = cuda_fixture_down(d, N);
    CHECK(memcmp(h, x, N * sizeof(float)) == 0);
    ct_free(h);
    ct_nccl_allreduce_mean_f32(d, N);  // and the mean
    h = cuda_fixture_down(d, N);
    CHECK(memcmp(h, x, N * sizeof(float)) == 0);
    ct_free(h);
    ct_cuda_free(d);
    ct_free(x);
    ct_nccl_finalize();
    CHECK_EQ_INT(ct_nccl_device(), -1);
}

// Backward simulated: each step the default stream writes (scales by 2) the part that became
// final, then the buckets above the watermark are handed to NCCL; the all-reduce must see it.
static void run_buckets(size_t n, size_t step, int world) {
    float *x = ct_alloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = value(ct_dist_rank(), i);
    float *d = upload(x, n);
    CtGradBuckets b;
    ct_grad_buckets_init(&b, n, 1024);  // 256 floats: many buckets
    size_t done = n;
    while (done > 0) {
        size_t from = done > step ? done - step : 0;
        ct_cuda_scale(d + from, done - from, 2.0f);
        ct_nccl_buckets_ready_from(&b, d, from, CT_NCCL_SUM);
        done = from;
    }
    ct_nccl_wait_all();
    CHECK_EQ_INT(b.next, -1);
    float *h = cuda_fixture_down(d, n);
    for (size_t i = 0; i < n; i++) CHECK_MSG(h[i] == 2 * summed(world, i), "element %zu: %g", i, h[i]);
    ct_free(h);
    ct_cuda_free(d);
    ct_free(x);
}

TEST(cuda, nccl_buckets_one_rank) {
    need_gpu();
    CHECK_EQ_INT(ct_nccl_init(), 0);
    run_buckets(10007, 900, 1);
    if (ct_test_failed()) return;
    ct_nccl_finalize();
}

// Reduce-scatter then all-gather over a padded buffer: every element has one owner.
static void run_zero_round_trip(size_t n, int world, int rank) {
    const size_t padded = ct_zero_padded_count(n, world), shard = padded / (size_t)world;
    float *x = ct_calloc(padded, sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = value(rank, i);
    float *full = upload(x, padded), *mine = ct_cuda_malloc(shard * sizeof(float), "test shard");
    ct_nccl_reduce_scatter_sum_f32(full, mine, padded);
    float *h = cuda_fixture_down(mine, shard);
    for (size_t j = 0; j < shard; j++) {
        size_t i = (size_t)rank * shard + j;
        CHECK_MSG(h[j] == (i < n ? summed(world, i) : 0.0f), "rank %d, shard element %zu: %g", rank, j, h[j]);
    }
    ct_free(h);
    // Each owner's part, updated (here: negated), then gathered in place.
    ct_cuda_scale(mine, shard, -1.0f);
    ct_cuda_copy(full + (size_t)rank * shard, mine, shard * sizeof(float));
    ct_nccl_allgather_f32(full, padded);
    h = cuda_fixture_down(full, padded);
    for (size_t i = 0; i < padded; i++)
        CHECK_MSG(h[i] == (i < n ? -summed(world, i) : 0.0f), "rank %d, element %zu: %g", rank, i, h[i]);
    ct_free(h);
    ct_cuda_free(full);
    ct_cuda_free(mine);
    ct_free(x);
}

TEST(cuda, nccl_zero_round_trip_one_rank) {
    need_gpu();
    CHECK_EQ_INT(ct_nccl_init(), 0);
    run_zero_round_trip(1001, 1, 0);
    if (ct_test_failed()) return;
    ct_nccl_finalize();
}

// ---- two ranks under mpirun (two GPUs) ----

static void need_two_gpus(void) {
    need_gpu();
    int n = gpus();
    if (n < 2)
        SKIP("two ranks need two GPUs (NCCL refuses two ranks on one GPU); this machine has %d", n);
}

TEST(nccl_worker, two_ranks) {
    mpi_worker_only();
    CHECK_EQ_INT(ct_dist_init(), 0);
    const int world = ct_dist_world(), rank = ct_dist_rank();
    CHECK_EQ_INT(world, 2);
    CHECK_EQ_INT(ct_nccl_init(), 0);
    CHECK_EQ_INT(ct_nccl_device(), ct_dist_local_rank() % gpus());
    enum { N = 4099 };
    float *x = ct_alloc(N * sizeof(float));
    for (size_t i = 0; i < N; i++) x[i] = value(rank, i);
    float *d = upload(x, N);
    ct_nccl_allreduce_sum_f32(d, N);
    float *h = cuda_fixture_down(d, N);
    for (size_t i = 0; i < N; i++) CHECK_MSG(h[i] == summed(world, i), "sum, element %zu: %g", i, h[i]);
    ct_nccl_allreduce_mean_f32(d, N);  // the same on both ranks: the mean keeps it
    ct_free(h);
    h = cuda_fixture_down(d, N);
    for (size_t i = 0; i < N; i++) CHECK_MSG(h[i] == summed(world, i), "mean, element %zu: %g", i, h[i]);
    ct_free(h);
    ct_cuda_free(d);
    ct_free(x);
    // The ranks report their watermarks at different points: the collectives still match.
    run_buckets(10007, rank == 0 ? 900 : 1700, world);
    run_zero_round_trip(1001, world, rank);  // odd: one float of padding
    if (ct_test_failed()) return;
    ct_nccl_finalize();
    ct_dist_finalize();
}

// Rank 1 never joins the all-reduce: rank 0's watchdog must end the job.
TEST(nccl_worker, hang) {
    mpi_worker_only();
    CHECK_EQ_INT(ct_dist_init(), 0);
    CHECK_EQ_INT(ct_nccl_init(), 0);
    float *d = ct_cuda_malloc(1024 * sizeof(float), "test buffer");
    ct_cuda_zero(d, 1024 * sizeof(float));
    if (ct_dist_rank() == 1) {
        sleep(60);
        return;
    }
    ct_nccl_allreduce_sum_f32(d, 1024);
    CHECK_MSG(0, "the all-reduce returned although rank 1 never joined it");
}

TEST(cuda, nccl_two_ranks) {
    need_two_gpus();
    char *out = NULL;
    int rc = mpi_worker_run(2, "nccl_worker.two_ranks", "CTRAIN_NCCL_TIMEOUT=60", 300, &out);
    CHECK_MSG(rc == 0 && mpi_worker_all_passed(out, 2), "mpirun exit %d: %s", rc, out);
    free(out);
}

TEST(cuda, nccl_watchdog_ends_a_hung_job) {
    need_two_gpus();
    char *out = NULL;
    int rc = mpi_worker_run(2, "nccl_worker.hang", "CTRAIN_NCCL_TIMEOUT=5", 50, &out);
    CHECK_MSG(rc != 0 && rc != 124, "mpirun exit %d (124: not ended by the watchdog): %s", rc, out);
    CHECK_CONTAINS(out, "rank 0 of 2");
    CHECK_CONTAINS(out, "CTRAIN_NCCL_TIMEOUT");
    free(out);
}

#endif
