// transformers (tests/ref/hf_mtp_ref.py) loads ctrain's `export hf --keep-mtp` of a model with two
// multi-token prediction modules as the plain causal LM: LlamaForCausalLM / GPT2LMHeadModel take
// the main model's tensors, leave exactly the modules' layers aside as unexpected keys, keep
// num_hidden_layers and num_nextn_predict_layers, and compute ctrain's logits (within 1e-5
// relative). Skips where torch or transformers is not importable.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"
#include "train/interop/hf_interop.h"

enum { T = 12, DEPTH = 2 };

static void loads_in_transformers(CtArch arch, int tied) {
    ct_log_set_level(CT_LOG_QUIET);
    CtModelConfig c = hf_fixture_config(arch, tied);
    c.mtp_depth = DEPTH;
    const char *ckpt = ct_test_path("mtp.h5"), *dir = ct_test_path("hf");
    CHECK(hf_fixture_checkpoint(ckpt, &c, 13) == 0);
    CtHfExportOptions opt = {.keep_mtp = 1};
    CHECK_MSG(ct_hf_export(ckpt, dir, &opt) == 0, "%s", ct_error_message());
    int32_t tokens[T];
    for (int t = 0; t < T; t++) tokens[t] = (t * 41 + 3) % c.vocab_size;
    const char *tokens_path = ct_test_path("tokens.bin"), *logits_path = ct_test_path("logits.bin");
    FILE *fp = fopen(tokens_path, "wb");
    CHECK(fp && fwrite(tokens, sizeof tokens, 1, fp) == 1);
    if (fp) fclose(fp);
    char args[4096];
    snprintf(args, sizeof args, "logits %s %s %s %d %d", dir, tokens_path, logits_path, c.n_layer, DEPTH);
    if (hf_fixture_ref("hf_mtp_ref.py", args) != 0) return;
    const size_t n = (size_t)T * (size_t)c.vocab_size;
    float *want = calloc(n, sizeof(float)), *got = calloc(n, sizeof(float));
    size_t size = 0;
    char *data = ct_test_read(logits_path, &size);
    CHECK_MSG(data && size == n * sizeof(float), "transformers wrote %zu bytes of logits", size);
    if (data && size == n * sizeof(float)) memcpy(want, data, size);
    free(data);
    CHECK_MSG(hf_fixture_logits(ckpt, tokens, T, got) == 0, "%s", ct_error_message());
    const double err = hf_fixture_relative_error(got, want, n);
    CHECK_MSG(err < 1e-5, "transformers on the --keep-mtp export differs from ctrain by %.3g (relative)", err);
    printf("    relative error %.3g\n", err);
    free(want);
    free(got);
}

TEST(hf_mtp_ref, keep_mtp_export_loads_in_transformers_llama) { loads_in_transformers(CT_ARCH_LLAMA, 0); }
TEST(hf_mtp_ref, keep_mtp_export_loads_in_transformers_llama_tied) { loads_in_transformers(CT_ARCH_LLAMA, 1); }
TEST(hf_mtp_ref, keep_mtp_export_loads_in_transformers_gpt2) { loads_in_transformers(CT_ARCH_GPT2, 1); }
