// BertForSequenceClassification and RobertaForSequenceClassification against transformers
// (tests/ref/hf_classify_ref.py), where torch and transformers are importable: a tiny random
// classifier of 3 named labels that transformers builds and saves imports with `ctrain import hf`;
// ctrain's logits over a padded batch with token types are transformers' within 1e-5 (relative to
// the largest); `ctrain export hf` of the import loads in transformers (num_labels, problem_type,
// id2label as the original's) with the original's logits. Elsewhere the tests skip with the
// reason; `make test-ref` runs them.
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "kernels/ops.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"
#include "train/interop/checkpoint_io.h"
#include "train/model/model_classify.h"

enum { B = 2, T = 12, L = 3 };

static int ctrain_logits(const char *ckpt, const int32_t *tokens, const int32_t *types, const int32_t *mask,
                         float *out) {
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_load(ckpt, &m, ct_ops_cpu(), B, T, 0, NULL, &meta) != 0) return -1;
    int32_t doc_ids[B * T];
    int len[B] = {0, 0};
    for (int n = 0; n < B * T; n++) {
        doc_ids[n] = mask[n] ? 0 : 1;
        len[n / T] += mask[n] != 0;
    }
    const CtBatch batch = {.tokens = tokens, .token_types = m.config.type_vocab_size > 1 ? types : NULL,
                           .doc_ids = doc_ids, .B = B, .T = T};
    int rc = m.config.num_labels == L ? 0 : ct_error_set("%s: %d labels", ckpt, m.config.num_labels);
    if (rc == 0) ct_model_classify_forward(&m, &batch, len, out);
    if (rc == 0 && !(meta.run_config_json && strstr(meta.run_config_json, "\"labels\":\"neg,neutral,pos\"")))
        rc = ct_error_set("%s: the label names were not kept (%s)", ckpt, meta.run_config_json ? meta.run_config_json : "none");
    ct_checkpoint_meta_free(&meta);
    ct_model_free(&m);
    return rc;
}

static void check_classifier(const char *arch) {
    ct_log_set_level(CT_LOG_QUIET);
    char dir[1024], args[4096];
    snprintf(dir, sizeof dir, "%s", ct_test_path("hf"));
    snprintf(args, sizeof args, "make %s %s", dir, arch);
    if (hf_fixture_ref("hf_classify_ref.py", args) != 0) return;
    int32_t tokens[B * T], types[B * T], mask[B * T];
    float want[B * L], got[B * L], back[B * L];
    CHECK(hf_fixture_read_values(dir, "tokens.bin", tokens, sizeof tokens) == B * T);
    CHECK(hf_fixture_read_values(dir, "types.bin", types, sizeof types) == B * T);
    CHECK(hf_fixture_read_values(dir, "mask.bin", mask, sizeof mask) == B * T);
    CHECK(hf_fixture_read_values(dir, "logits.bin", want, sizeof want) == B * L);
    if (hf_fixture_ctrain_ok("import hf hf --out imported.h5 --skip-tokenizer") != 0) return;
    CHECK_MSG(ctrain_logits(ct_test_path("imported.h5"), tokens, types, mask, got) == 0, "%s", ct_error_message());
    const double err = hf_fixture_relative_error(got, want, B * L);
    printf("    %s: ctrain's classifier logits vs transformers': %.3g (relative; a padded batch)\n", arch, err);
    CHECK_MSG(err < 1e-5, "%s: ctrain's logits differ from transformers' by %.3g (relative)", arch, err);

    if (hf_fixture_ctrain_ok("export hf imported.h5 --out exported") != 0) return;
    snprintf(args, sizeof args, "logits %s %s/tokens.bin %s/types.bin %s/mask.bin %s", ct_test_path("exported"), dir,
             dir, dir, ct_test_path("back.bin"));
    if (hf_fixture_ref("hf_classify_ref.py", args) != 0) return;
    CHECK(hf_fixture_read_values(ct_test_tmpdir(), "back.bin", back, sizeof back) == B * L);
    const double through = hf_fixture_relative_error(back, want, B * L);
    printf("    transformers on the export of the import vs on the original: %.3g (relative)\n", through);
    CHECK_MSG(through < 1e-6, "transformers computes other logits on the export of the import: %.3g", through);
}

TEST_LONG(classify_ref, bert_for_sequence_classification_matches_transformers_and_exports_back) {
    check_classifier("bert");
}
TEST_LONG(classify_ref, roberta_for_sequence_classification_matches_transformers_and_exports_back) {
    check_classifier("roberta");
}
