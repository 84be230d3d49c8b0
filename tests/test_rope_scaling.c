// RoPE scaling (train/model/rope_scaling.h): the frequency tables against transformers'
// ROPE_INIT_FUNCTIONS (suite rope_ref, tests/ref/rope_scaling_ref.py), and the rules that need no
// reference: which layers use which base, and what each type does to the default table.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"
#include "train/model/rope_scaling.h"

typedef struct {
    const char *line;  // the script's case line: type theta head_dim max_position seq_len key=value...
    float theta;
    int HD, max_position, seq_len;
    CtRopeScaling s;
} RopeCase;

static const RopeCase cases[] = {
    {"default 10000 16 64 8", 10000, 16, 64, 8, {.type = CT_ROPE_DEFAULT}},
    {"default 500000 64 64 8", 500000, 64, 64, 8, {.type = CT_ROPE_DEFAULT}},
    {"linear 10000 32 64 8 factor=2.5", 10000, 32, 64, 8, {.type = CT_ROPE_LINEAR, .factor = 2.5f}},
    {"dynamic 10000 32 64 200 factor=2.0", 10000, 32, 64, 200, {.type = CT_ROPE_DYNAMIC, .factor = 2.0f}},
    {"dynamic 10000 32 64 40 factor=2.0", 10000, 32, 64, 40, {.type = CT_ROPE_DYNAMIC, .factor = 2.0f}},
    {"yarn 10000 32 128 8 factor=4.0 original_max_position_embeddings=32", 10000, 32, 128, 8,
     {.type = CT_ROPE_YARN, .factor = 4, .original_max_position = 32, .truncate = 1}},
    {"yarn 1000000 64 4096 8 factor=8.0 original_max_position_embeddings=512 beta_fast=16 beta_slow=2 truncate=false",
     1000000, 64, 4096, 8,
     {.type = CT_ROPE_YARN, .factor = 8, .original_max_position = 512, .beta_fast = 16, .beta_slow = 2}},
    {"yarn 10000 32 256 8 factor=4.0 original_max_position_embeddings=64 mscale=0.707 mscale_all_dim=1.0", 10000, 32,
     256, 8,
     {.type = CT_ROPE_YARN, .factor = 4, .original_max_position = 64, .mscale = 0.707f, .mscale_all_dim = 1,
      .truncate = 1}},
    {"yarn 10000 32 256 8 factor=4.0 original_max_position_embeddings=64 attention_factor=1.25", 10000, 32, 256, 8,
     {.type = CT_ROPE_YARN, .factor = 4, .original_max_position = 64, .attention_factor = 1.25f, .truncate = 1}},
    {"llama3 500000 64 131072 8 factor=8.0 low_freq_factor=1.0 high_freq_factor=4.0 original_max_position_embeddings=8192",
     500000, 64, 131072, 8,
     {.type = CT_ROPE_LLAMA3, .factor = 8, .low_freq_factor = 1, .high_freq_factor = 4, .original_max_position = 8192}},
    {"llama3 10000 32 1024 8 factor=4.0 low_freq_factor=1.0 high_freq_factor=4.0 original_max_position_embeddings=256",
     10000, 32, 1024, 8,
     {.type = CT_ROPE_LLAMA3, .factor = 4, .low_freq_factor = 1, .high_freq_factor = 4, .original_max_position = 256}},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

// Distance in float steps (units in the last place) between two positive floats.
static long ulps(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    return labs((long)ia - (long)ib);
}

TEST(rope_ref, inv_freq_and_attention_factor_equal_transformers) {
    const char *root = getenv("CTRAIN_ROOT");
    if (!root) SKIP("CTRAIN_ROOT is not set (run through make test)");
    FILE *f = fopen(ct_test_path("cases.txt"), "w");
    CHECK(f != NULL);
    for (int i = 0; i < N_CASES; i++) fprintf(f, "%s\n", cases[i].line);
    CHECK(fclose(f) == 0);
    char cmd[4096], *out = NULL, out_path[1024];
    snprintf(out_path, sizeof out_path, "%s", ct_test_path("ref.txt"));
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/ref/rope_scaling_ref.py' '%s' '%s'", root, ct_test_path("cases.txt"),
             out_path);
    int rc = ct_test_run(cmd, &out);
    if (rc == 77) SKIP("%s", out);
    CHECK_MSG(rc == 0, "tests/ref/rope_scaling_ref.py exited %d: %s", rc, out);
    free(out);
    char *ref = ct_test_read(out_path, NULL);
    CHECK(ref != NULL);
    char *line = ref;
    long worst = 0;
    for (int i = 0; i < N_CASES; i++) {
        const RopeCase *c = &cases[i];
        float inv_freq[256], factor;
        ct_rope_inv_freq(inv_freq, &factor, c->theta, &c->s, c->HD, c->max_position, c->seq_len);
        char *end;
        float want = strtof(line, &end);
        CHECK_MSG(end != line, "case %d (%s): no reference line", i, c->line);
        CHECK_MSG(fabsf(factor - want) <= 1e-6f * want, "case %d (%s): attention factor %.9g, transformers %.9g", i,
                  c->line, factor, want);
        for (int j = 0; j < c->HD / 2; j++) {
            line = end;
            want = strtof(line, &end);
            CHECK_MSG(end != line, "case %d (%s): reference has fewer than %d numbers", i, c->line, c->HD / 2);
            long d = ulps(inv_freq[j], want);
            if (d > worst) worst = d;
            // powf of glibc and torch's vectorised pow may differ in the last place
            CHECK_MSG(d <= 2, "case %d (%s): inv_freq[%d] = %.9g, transformers %.9g (%ld ulps)", i, c->line, j,
                      inv_freq[j], want, d);
        }
        line = strchr(end, '\n');
        CHECK(line != NULL);
        line++;
    }
    printf("    %d cases, worst difference %ld ulps\n", N_CASES, worst);
    free(ref);
}

TEST(rope, gemma3_sliding_layers_use_the_local_base_unscaled) {
    CtModelConfig c = {.arch = CT_ARCH_LLAMA, .n_layer = 6, .n_head = 2, .n_kv_head = 1, .d_model = 32, .head_dim = 16,
                       .max_seq_len = 64, .rope_theta = 1000000, .rope_local_theta = 10000, .sliding_window = 4,
                       .sliding_window_pattern = 6,
                       .rope_scaling = {.type = CT_ROPE_LINEAR, .factor = 8}};
    float local[8], global[8], want[8], af;
    ct_model_layer_inv_freq(&c, 0, 8, local, &af);
    CHECK(af == 1.0f);
    ct_model_layer_inv_freq(&c, 5, 8, global, &af);  // (5 + 1) % 6 == 0: global
    for (int i = 0; i < 8; i++) {
        CHECK_EQ_INT(local[i] == 1.0f / powf(10000.0f, (float)(2 * i) / 16.0f), 1);
        want[i] = 1.0f / powf(1000000.0f, (float)(2 * i) / 16.0f) / 8.0f;
        CHECK_EQ_INT(global[i] == want[i], 1);
    }
    // without a local base every layer is the scaled global one
    c.rope_local_theta = 0;
    ct_model_layer_inv_freq(&c, 0, 8, local, &af);
    CHECK(memcmp(local, global, sizeof local) == 0);
}

TEST(rope, llama3_keeps_high_frequencies_and_divides_low_ones) {
    const CtRopeScaling s = {.type = CT_ROPE_LLAMA3, .factor = 8, .low_freq_factor = 1, .high_freq_factor = 4,
                             .original_max_position = 8192};
    const CtRopeScaling none = {.type = CT_ROPE_DEFAULT};
    float scaled[64], plain[64], af;
    ct_rope_inv_freq(scaled, &af, 500000, &s, 128, 0, 1);
    ct_rope_inv_freq(plain, &af, 500000, &none, 128, 0, 1);
    CHECK(scaled[0] == plain[0]);                // wavelength 2π: high frequency, kept
    CHECK(scaled[63] == plain[63] / 8.0f);       // the longest wavelength: divided by the factor
    for (int i = 0; i < 64; i++) CHECK(scaled[i] <= plain[i] && scaled[i] >= plain[i] / 8.0f * 0.999999f);
}

TEST(rope, dynamic_changes_nothing_within_the_original_length) {
    const CtRopeScaling s = {.type = CT_ROPE_DYNAMIC, .factor = 4};
    const CtRopeScaling none = {.type = CT_ROPE_DEFAULT};
    float a[16], b[16], af;
    ct_rope_inv_freq(a, &af, 10000, &s, 32, 128, 128);
    ct_rope_inv_freq(b, &af, 10000, &none, 32, 128, 128);
    CHECK(memcmp(a, b, sizeof a) == 0);
    ct_rope_inv_freq(a, &af, 10000, &s, 32, 128, 129);  // longer: the base grows, frequencies fall
    for (int i = 1; i < 16; i++) CHECK(a[i] < b[i]);
}
