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
