#include <math.h>

#include "optim/clip.h"
#include "optim/schedule.h"
#include "tests/test.h"

TEST(optim, lr_schedules_at_chosen_steps) {
    CtLrSchedule s = {CT_LR_COSINE, 6e-4, 6e-5, 10, 110, 0};
    CHECK_NEAR(ct_lr_at(&s, 0), 6e-5, 1e-15);   // (0+1)/10 of the peak
    CHECK_NEAR(ct_lr_at(&s, 4), 3e-4, 1e-15);
    CHECK_NEAR(ct_lr_at(&s, 9), 6e-4, 1e-15);   // warmup ends at the peak
    CHECK_NEAR(ct_lr_at(&s, 10), 6e-4, 1e-15);  // cosine starts at the peak
    CHECK_NEAR(ct_lr_at(&s, 60), 3.3e-4, 1e-15); // halfway: (max+min)/2
    CHECK_NEAR(ct_lr_at(&s, 35), 6e-5 + 0.5 * 5.4e-4 * (1 + cos(M_PI * 0.25)), 1e-15);
    CHECK_NEAR(ct_lr_at(&s, 110), 6e-5, 1e-15);
    CHECK_NEAR(ct_lr_at(&s, 1000), 6e-5, 1e-15);

    s.shape = CT_LR_LINEAR;
    CHECK_NEAR(ct_lr_at(&s, 60), 3.3e-4, 1e-15);
    CHECK_NEAR(ct_lr_at(&s, 35), 6e-4 - 5.4e-4 * 0.25, 1e-15);

    s.shape = CT_LR_CONSTANT;
    CHECK_NEAR(ct_lr_at(&s, 4), 3e-4, 1e-15);
    CHECK_NEAR(ct_lr_at(&s, 500), 6e-4, 1e-15);

    CtLrSchedule w = {CT_LR_WSD, 1e-3, 0, 10, 100, 0.2};  // stable until step 80, then down to 0 at 100
    CHECK_NEAR(ct_lr_at(&w, 50), 1e-3, 1e-15);
    CHECK_NEAR(ct_lr_at(&w, 79), 1e-3, 1e-15);
    CHECK_NEAR(ct_lr_at(&w, 80), 1e-3, 1e-15);
    CHECK_NEAR(ct_lr_at(&w, 90), 5e-4, 1e-15);
    CHECK_NEAR(ct_lr_at(&w, 100), 0, 1e-15);

    CtLrSchedule none = {CT_LR_COSINE, 1e-3, 1e-4, 0, 10, 0};  // no warmup
    CHECK_NEAR(ct_lr_at(&none, 0), 1e-3, 1e-15);
}

TEST(optim, clipping_matches_pytorch) {
    float g[4] = {3, 4, 0, 0};  // norm 5
    CHECK_NEAR(ct_clip_grad_norm(g, 4, 10.0), 5.0, 1e-12);
    CHECK(g[0] == 3 && g[1] == 4);  // below the limit: untouched
    double norm = ct_clip_grad_norm(g, 4, 1.0);
    CHECK_NEAR(norm, 5.0, 1e-12);
    CHECK_NEAR(g[0], 3.0 / (5.0 + 1e-6), 1e-7);  // scale = max_norm / (norm + 1e-6)
    CHECK_NEAR(g[1], 4.0 / (5.0 + 1e-6), 1e-7);
    CHECK_NEAR(ct_grad_norm(g, 4), 1.0, 1e-6);
    CHECK_NEAR(ct_clip_scale(5.0, 0), 1.0, 0);  // max_norm 0: clipping off
    CHECK_NEAR(ct_clip_scale(NAN, 1.0), 1.0, 0);
    static float big[1 << 20];
    for (int i = 0; i < (1 << 20); i++) big[i] = (i % 2) ? 0.5f : -0.5f;
    CHECK_NEAR(ct_grad_norm(big, 1 << 20), 512.0, 1e-9);  // sqrt(2^20 / 4)
}
