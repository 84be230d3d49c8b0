// ctrain bench train, and the OpenBLAS core choice in the start-up line.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"

#include "kernels/device.h"

TEST(bench, train_prints_the_summary_line) {
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s bench train --model gpt2-tiny --batch 2 --seq 16 --steps 2 --threads 2", ct_test_bin());
    int rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    CHECK_CONTAINS(out, "ms_per_step=");
    CHECK_CONTAINS(out, " tokens_per_s=");
    CHECK_CONTAINS(out, " gflops=");
    CHECK_CONTAINS(out, " peak_mb=");
    CHECK_CONTAINS(out, "OpenBLAS");
    free(out);
    snprintf(cmd, sizeof cmd, "%s bench train --model llama-tiny --model.n_layer=1 --batch 1 --seq 8 --steps 1 --recompute",
             ct_test_bin());
    rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    CHECK_CONTAINS(out, "recompute saves");
    free(out);
}

TEST(bench, train_on_cuda_or_a_clear_refusal_and_bad_options) {
    char cmd[1024], *out = NULL, why[256];
    snprintf(cmd, sizeof cmd, "%s bench train --model gpt2-tiny --device cuda --steps 2", ct_test_bin());
    if (ct_cuda_device_count(why, sizeof why) > 0) {  // a GPU: the model trains there
        int rc = ct_test_run(cmd, &out);
        CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
        CHECK_CONTAINS(out, "device=cuda");
    } else {
        CHECK_EQ_INT(ct_test_run(cmd, &out), 1);
        CHECK_CONTAINS(out, "device cuda: no usable GPU");
    }
    free(out);
    snprintf(cmd, sizeof cmd, "%s bench train --model gpt2-tiny --device tpu", ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 2);
    CHECK_CONTAINS(out, "--device must be cpu, cuda or auto");
    free(out);
    snprintf(cmd, sizeof cmd, "%s bench train --model gpt2-huge", ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 1);
    CHECK_CONTAINS(out, "unknown model preset 'gpt2-huge'");
    free(out);
    snprintf(cmd, sizeof cmd, "%s bench train --model gpt2-tiny --seq 100000", ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 1);
    CHECK_CONTAINS(out, "max_seq_len");
    free(out);
}

// When OpenBLAS picks a weak core on an AVX-512 or AVX2 CPU, ctrain re-executes itself with
// OPENBLAS_CORETYPE set and says so. The misdetection is simulated; a user's choice is kept.
TEST(bench, blas_core_misdetection_is_corrected) {
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "env -u OPENBLAS_CORETYPE CTRAIN_TEST_PRETEND_BLAS_CORE=Prescott %s --version", ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    if (strstr(out, "no AVX2")) SKIP("this CPU has no AVX2: nothing to correct");
    CHECK_CONTAINS(out, "set by ctrain: the library chose Prescott");
    free(out);
    snprintf(cmd, sizeof cmd, "OPENBLAS_CORETYPE=Haswell %s --version", ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "core Haswell (from OPENBLAS_CORETYPE)");
    free(out);
}

// Every field of bench generate's lines, for both weight types, with sane values (no timing is
// asserted: only that the rates are positive and the derived figures follow from them).
TEST(bench, generate_prints_prefill_decode_and_bandwidth_lines) {
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s bench generate --model llama-tiny --model.n_layer=1 --prompt-len 8 --gen 4 --rounds 2 "
             "--threads 1", ct_test_bin());
    int rc = ct_test_run(cmd, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    CHECK_CONTAINS(out, "memory bandwidth (1 thread, best of 5): copy ");
    const char *types[] = {"fp32", "bf16"};
    // the products of 1 layer and the head: 288·864 + 288·288 + 3·288·768 + 8192·288 weights, 4 or 2 bytes each
    const double weight_mb[] = {13.418496, 6.709248};
    for (int i = 0; i < 2; i++) {
        char key[32];
        snprintf(key, sizeof key, "weights=%s ", types[i]);
        const char *line = strstr(out, key);
        CHECK_MSG(line != NULL, "no line for %s: %s", types[i], out);
        int P = 0, gen = 0, threads = 0;
        double prefill, prefill_best, decode, decode_best, mb, gbs, mem, fraction;
        CHECK_EQ_INT(sscanf(line + strlen(key), "prompt_len=%d gen=%d threads=%d prefill_tokens_per_s=%lf prefill_best=%lf "
                            "decode_tokens_per_s=%lf decode_best=%lf weight_mb=%lf decode_gbs=%lf mem_gbs=%lf "
                            "mem_fraction=%lf", &P, &gen, &threads, &prefill, &prefill_best, &decode, &decode_best, &mb,
                            &gbs, &mem, &fraction), 11);
        CHECK(P == 8 && gen == 4 && threads == 1);
        CHECK(prefill > 0 && prefill_best >= prefill && decode > 0 && decode_best >= decode && mem > 0);
        CHECK_MSG(mb > weight_mb[i] - 0.06 && mb < weight_mb[i] + 0.06, "%s: weight_mb %.3f", types[i], mb);
        // a model this small sits in the caches: its fraction may pass 1, so only the arithmetic is checked
        CHECK_MSG(fabs(gbs - mb * 1e-3 * decode) < 0.01 * gbs + 0.01 && fabs(fraction - gbs / mem) < 0.01 * fraction + 0.002,
                  "%s: decode_gbs %.3f, mem_gbs %.3f, fraction %.3f", types[i], gbs, mem, fraction);
    }
    free(out);
}

TEST(bench, generate_refuses_bad_options_in_one_line) {
    struct {
        const char *args, *message;
        int rc;
    } cases[] = {
        {"--gen 0", "--gen must be a whole number from 1 to", 2},
        {"--prompt-len x", "--prompt-len must be a whole number", 2},
        {"--weights fp16", "--weights must be fp32, bf16 or both (got 'fp16')", 2},
        {"--prompt-len 200 --gen 100", "more than the model's context (max_seq_len 256)", 1},
        {"--model bert-tiny", "encoders", 1},
        {"--checkpoint /nonexistent/m.h5", "/nonexistent/m.h5", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[1024], *out = NULL;
        snprintf(cmd, sizeof cmd, "%s bench generate --rounds 1 --threads 1 %s", ct_test_bin(), cases[i].args);
        CHECK_EQ_INT(ct_test_run(cmd, &out), cases[i].rc);
        CHECK_CONTAINS(out, cases[i].message);
        free(out);
    }
}
