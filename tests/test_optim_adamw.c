#include <math.h>

#include "optim/adamw.h"
#include "tests/test.h"

TEST(optim, adamw_matches_torch_step_by_step) {
    // Expected values: torch.optim.AdamW(lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    // with element 2 in a group without weight decay, computed operation by operation in
    // float32 as torch's single-tensor path does (lerp, addcmul, sqrt/div/add, addcdiv).
    float p[4] = {0.5f, -1.25f, 2.0f, 0.0f};
    const float g[3][4] = {{0.1f, -0.2f, 3.0f, 1e-4f}, {-0.05f, 0.3f, 2.5f, 0.0f}, {0.2f, 0.2f, -1.0f, -1e-3f}};
    const float expect[3][4] = {
        {0x1.feecc0p-2f, -0x1.3fb644p+0f, 0x1.ffbe76p+0f, -0x1.061e26p-10f},
        {0x1.fe9952p-2f, -0x1.3fbe3cp+0f, 0x1.ff7d5cp+0f, -0x1.b7f830p-10f},
        {0x1.fde230p-2f, -0x1.3fd558p+0f, 0x1.ff56a0p+0f, -0x1.2275c8p-10f},
    };
    CtAdamW opt;
    ct_adamw_init(&opt, 4, 1e-3, 0.9, 0.95, 1e-8, 0.1);
    CtParamSpan spans[3] = {{0, 2, 1}, {2, 1, 0}, {3, 1, 1}};
    ct_adamw_set_spans(&opt, spans, 3);
    for (int t = 0; t < 3; t++) {
        ct_adamw_step(&opt, p, g[t]);
        for (int i = 0; i < 4; i++) CHECK_MSG(p[i] == expect[t][i], "step %d element %d: %a, expected %a", t + 1, i, p[i], expect[t][i]);
    }
    CHECK_EQ_INT(opt.step, 3);
    ct_adamw_free(&opt);
}

// The update runs vectorized over long spans: 1,003 elements in spans that start and end off the
// vector width, over several steps, equal to the bit to torch's float32 arithmetic written out one
// element at a time (sqrt and divide are correctly rounded in every lane).
TEST(optim, adamw_long_spans_equal_elementwise_arithmetic) {
    enum { N = 1003, STEPS = 3 };
    const double lr = 3e-4, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
    static float p[N], ref[N], g[N], m[N], v[N];
    for (int i = 0; i < N; i++) p[i] = ref[i] = 0.01f * (float)((i * 37) % 201 - 100);
    CtAdamW opt;
    ct_adamw_init(&opt, N, lr, b1, b2, eps, wd);
    CtParamSpan spans[3] = {{5, 301, 1}, {306, 13, 0}, {319, 650, 1}};  // 0..4 and 969..1002: no span, decayed
    ct_adamw_set_spans(&opt, spans, 3);
    int mismatches = 0;
    for (int t = 1; t <= STEPS; t++) {
        for (int i = 0; i < N; i++) g[i] = 1e-3f * (float)((i * 53 + t * 11) % 97 - 48);
        ct_adamw_step(&opt, p, g);
        const double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
        const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
        for (int i = 0; i < N; i++) {
            int decay = !(i >= 306 && i < 319);
            float keep = decay ? (float)(1.0 - lr * wd) : 1.0f;
            float pi = ref[i] * keep;
            m[i] = m[i] + (float)(1 - b1) * (g[i] - m[i]);
            v[i] = v[i] * (float)b2 + (float)(1 - b2) * g[i] * g[i];
            float denom = sqrtf(v[i]) / bc2_sqrt + (float)eps;
            ref[i] = pi + (-step_size * m[i]) / denom;
            if (p[i] != ref[i] && mismatches++ < 5) CHECK_MSG(0, "step %d element %d: %a, expected %a", t, i, p[i], ref[i]);
        }
    }
    CHECK_EQ_INT(mismatches, 0);
    ct_adamw_free(&opt);
}

TEST(optim, adamw_decay_only_where_spans_say) {
    float p[6] = {1, 1, 1, 1, 1, 1}, zero[6] = {0};
    CtAdamW opt;
    ct_adamw_init(&opt, 6, 0.1, 0.9, 0.999, 1e-8, 0.5);
    CtParamSpan spans[2] = {{0, 2, 0}, {2, 2, 1}};  // elements 4 and 5: no span, decayed
    ct_adamw_set_spans(&opt, spans, 2);
    ct_adamw_step(&opt, p, zero);
    const float decayed = (float)(1.0 - 0.1 * 0.5);
    CHECK(p[0] == 1 && p[1] == 1);
    for (int i = 2; i < 6; i++) CHECK(p[i] == decayed);
    ct_adamw_free(&opt);
}

TEST(optim, adamw_expectations_agree_with_torch_where_present) {
    const char *root = getenv("CTRAIN_ROOT");
    if (!root) SKIP("CTRAIN_ROOT is not set (run through make test)");
    char cmd[1200], *out;
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/ref/adamw_torch.py'", root);
    int rc = ct_test_run(cmd, &out);
    if (strstr(out, "SKIP")) {
        free(out);
        SKIP("torch is not importable here (tests/ref/adamw_torch.py compares where it is)");
    }
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
}
