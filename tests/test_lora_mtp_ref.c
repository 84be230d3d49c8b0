// PEFT (tests/ref/peft_ref.py `logits`) on ctrain's adapters of a model with multi-token
// prediction modules: the adapters on q_proj, v_proj and eh_proj (the modules' blocks and eh_proj
// included, as layers 2 and 3) are written as a PEFT folder; PEFT puts them on transformers' load
// of the `export hf --keep-mtp` folder, which has the main model alone, and computes ctrain's
// logits: the main model's adapters apply, the modules' stay aside as they do in transformers. And
// PEFT's own adapter, made on that load (no modules), reads onto the base with modules (theirs at
// zero) with PEFT's logits.
// Skips where torch, transformers or peft is not importable.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "kernels/ops.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"
#include "train/interop/hf_interop.h"
#include "train/interop/lora_peft.h"
#include "train/model/lora.h"

enum { T = 12 };

TEST(lora_mtp_ref, peft_applies_the_main_adapters_of_a_model_with_modules) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c = hf_fixture_config(CT_ARCH_LLAMA, 0);
    c.mtp_depth = 2;
    const char *base = ct_test_path("base.h5"), *hf = ct_test_path("hf"), *adapter = ct_test_path("adapter");
    CHECK(hf_fixture_checkpoint(base, &c, 17) == 0);
    CtHfExportOptions eopt = {.keep_mtp = 1};
    CHECK_MSG(ct_hf_export(base, hf, &eopt) == 0, "%s", ct_error_message());
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(ct_checkpoint_load(base, &m, ct_ops_cpu(), 1, T, CT_MODEL_FROZEN, NULL, &meta) == 0);
    ct_checkpoint_meta_free(&meta);
    CtLoraSpec s = {.r = 4, .alpha = 8};
    snprintf(s.targets, sizeof s.targets, "q_proj,v_proj,eh_proj");
    CHECK_MSG(ct_lora_attach(&m, &s) == 0, "%s", ct_error_message());
    if (ct_test_failed()) return;
    CHECK_EQ_INT(m.lora->n_adapters, 2 * 2 + 3 * 2);  // two main layers' q, v; two modules' eh_proj, q, v
    CtRng rng;
    ct_rng_seed(&rng, 8);
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] = (float)(0.3 * ct_rng_normal(&rng));
    CHECK_MSG(ct_lora_save_peft(&m, adapter, hf) == 0, "%s", ct_error_message());

    int32_t tokens[T];
    for (int t = 0; t < T; t++) tokens[t] = (t * 37 + 5) % c.vocab_size;
    const char *tokens_path = ct_test_path("tokens.bin"), *out = ct_test_path("peft_logits.bin");
    FILE *fp = fopen(tokens_path, "wb");
    CHECK(fp && fwrite(tokens, sizeof tokens, 1, fp) == 1);
    if (fp) fclose(fp);
    const char *peft_adapter = ct_test_path("peft_adapter"), *peft_out = ct_test_path("peft_own_logits.bin");
    char args[4096];
    snprintf(args, sizeof args, "both %s %s %s %s %s %s q_proj,v_proj 4 8 0", hf, adapter, tokens_path, out,
             peft_adapter, peft_out);
    if (hf_fixture_ref("peft_ref.py", args) != 0) return;

    const size_t n = (size_t)T * (size_t)c.vocab_size;
    size_t size = 0;
    char *want = ct_test_read(out, &size);
    CHECK_MSG(want && size == n * sizeof(float), "PEFT wrote %zu bytes of logits", size);
    CtBatch b = {.tokens = tokens, .B = 1, .T = T};
    ct_model_forward(&m, &b);
    if (want && size == n * sizeof(float)) {
        const double err = hf_fixture_relative_error(m.act.logits, (const float *)want, n);
        printf("    ctrain vs PEFT on the --keep-mtp export: relative error %.3g\n", err);
        CHECK_MSG(err < 1e-5, "ctrain's logits differ from PEFT's by %.3g (relative)", err);
        ct_lora_detach(&m);  // the comparison proves something only where the adapters move the logits
        ct_model_forward(&m, &b);
        const double effect = hf_fixture_relative_error(m.act.logits, (const float *)want, n);
        CHECK_MSG(effect > 1e-2, "the adapters hardly change the logits (%.3g)", effect);
    }
    free(want);

    // PEFT's own adapter (q_proj, v_proj on transformers' model: the main layers alone) read onto the
    // base with modules: the modules' q and v adapters start at zero, the logits are PEFT's
    CHECK_MSG(ct_lora_load_peft(&m, peft_adapter) == 0, "%s", ct_error_message());
    if (ct_test_failed()) return;
    CHECK_EQ_INT(m.lora->n_adapters, 2 * 2 + 2 * 2);
    want = ct_test_read(peft_out, &size);
    CHECK_MSG(want && size == n * sizeof(float), "PEFT wrote %zu bytes of logits", size);
    ct_model_forward(&m, &b);
    if (want && size == n * sizeof(float)) {
        const double err = hf_fixture_relative_error(m.act.logits, (const float *)want, n);
        printf("    PEFT's own adapter read by ctrain onto the base with modules: relative error %.3g\n", err);
        CHECK_MSG(err < 1e-5, "ctrain's logits with PEFT's adapter differ from PEFT's by %.3g (relative)", err);
    }
    free(want);
    ct_model_free(&m);
}
