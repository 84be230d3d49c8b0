// LoRA sequence classifiers against PEFT (tests/ref/peft_classify_ref.py), where torch,
// transformers and peft are importable: PEFT's SEQ_CLS task, adapters plus the classification
// head trained in full (modules_to_save classifier, score) on a tiny random
// BertForSequenceClassification / RobertaForSequenceClassification of 3 labels. Both ways:
// an adapter PEFT made loads in ctrain (onto `ctrain import hf` of the classifier, and merged by
// `ctrain lora merge`) with PEFT's logits over a padded batch with token types; an adapter
// ctrain wrote (random A, B and head) loads with PeftModel.from_pretrained on the original with
// ctrain's logits. Elsewhere the tests skip with the reason; `make test-ref` runs them.
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "kernels/ops.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/lora_peft.h"
#include "train/model/lora.h"
#include "train/model/model_classify.h"

enum { B = 2, T = 12, L = 3 };

typedef struct {
    int32_t tokens[B * T], types[B * T], mask[B * T], doc_ids[B * T];
    int len[B];
} Inputs;

static int read_inputs(const char *dir, Inputs *in) {
    if (hf_fixture_read_values(dir, "tokens.bin", in->tokens, sizeof in->tokens) != B * T ||
        hf_fixture_read_values(dir, "types.bin", in->types, sizeof in->types) != B * T ||
        hf_fixture_read_values(dir, "mask.bin", in->mask, sizeof in->mask) != B * T)
        return -1;
    in->len[0] = in->len[1] = 0;
    for (int n = 0; n < B * T; n++) {
        in->doc_ids[n] = in->mask[n] ? 0 : 1;  // pads: a document of their own
        in->len[n / T] += in->mask[n] != 0;
    }
    return 0;
}

static void logits_of(CtModel *m, const Inputs *in, float *out) {
    const CtBatch batch = {.tokens = in->tokens, .token_types = m->config.type_vocab_size > 1 ? in->types : NULL,
                           .doc_ids = in->doc_ids, .B = B, .T = T};
    ct_model_classify_forward(m, &batch, in->len, out);
}

static int load_frozen(const char *path, CtModel *m) {
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    int rc = ct_checkpoint_load(path, m, ct_ops_cpu(), B, T, CT_MODEL_FROZEN, NULL, &meta);
    ct_checkpoint_meta_free(&meta);
    return rc;
}

static void check_seq_cls(const char *arch) {
    ct_log_set_level(CT_LOG_QUIET);
    char dir[1024], args[4096];
    snprintf(dir, sizeof dir, "%s", ct_test_path("hf"));
    snprintf(args, sizeof args, "make %s %s", dir, arch);
    if (hf_fixture_ref("peft_classify_ref.py", args) != 0) return;
    Inputs in;
    CHECK(read_inputs(dir, &in) == 0);
    float base_logits[B * L], want[B * L], got[B * L];
    CHECK(hf_fixture_read_values(dir, "logits.bin", base_logits, sizeof base_logits) == B * L);
    CHECK(hf_fixture_read_values(dir, "peft_logits.bin", want, sizeof want) == B * L);
    if (hf_fixture_ctrain_ok("import hf hf --out imported.h5 --skip-tokenizer") != 0) return;
    const char *imported = ct_test_path("imported.h5");

    // PEFT's adapter in ctrain: attached (the head read from the adapters' buffer), then merged
    CtModel m;
    CHECK_MSG(load_frozen(imported, &m) == 0, "%s", ct_error_message());
    char peft_dir[1100];
    snprintf(peft_dir, sizeof peft_dir, "%s/peft", dir);
    CHECK_MSG(ct_lora_load_peft(&m, peft_dir) == 0, "%s", ct_error_message());
    CHECK_MSG(m.lora->saved.n == (strcmp(arch, "bert") == 0 ? 2 : 4), "%d head tensors saved", m.lora->saved.n);
    logits_of(&m, &in, got);
    double err = hf_fixture_relative_error(got, want, B * L), moved = hf_fixture_relative_error(base_logits, want, B * L);
    printf("    %s: PEFT's SEQ_CLS adapter in ctrain vs in PEFT: %.3g (relative; the adapter moves the logits by %.3g)\n",
           arch, err, moved);
    CHECK_MSG(err < 1e-5, "ctrain's logits with PEFT's adapter differ from PEFT's by %.3g", err);
    CHECK_MSG(moved > 1e-2, "the adapter hardly moves the logits (%.3g): the comparison would prove nothing", moved);
    ct_model_free(&m);
    snprintf(args, sizeof args, "lora merge --base imported.h5 --adapter hf/peft --out merged.h5");
    if (hf_fixture_ctrain_ok(args) != 0) return;
    CHECK_MSG(load_frozen(ct_test_path("merged.h5"), &m) == 0, "%s", ct_error_message());
    logits_of(&m, &in, got);
    ct_model_free(&m);
    err = hf_fixture_relative_error(got, want, B * L);
    printf("    %s: merged by ctrain lora merge: %.3g (relative)\n", arch, err);
    CHECK_MSG(err < 1e-5, "the merged classifier's logits differ from PEFT's by %.3g", err);

    // ctrain's adapter (random A, B and head) in PEFT, on the original classifier
    CHECK_MSG(load_frozen(imported, &m) == 0, "%s", ct_error_message());
    CtLoraSpec s = {.r = 4, .alpha = 8};
    snprintf(s.targets, sizeof s.targets, "query,value");
    snprintf(s.modules_to_save, sizeof s.modules_to_save, "classifier,score");
    CHECK_MSG(ct_lora_attach(&m, &s) == 0, "%s", ct_error_message());
    CtRng rng;
    ct_rng_seed(&rng, 9);
    for (size_t i = 0; i < m.lora->n_params; i++) m.lora->params[i] += (float)(0.2 * ct_rng_normal(&rng));
    logits_of(&m, &in, got);
    const char *adapter = ct_test_path("adapter"), *back = ct_test_path("back.bin");
    CHECK_MSG(ct_lora_save_peft(&m, adapter, NULL) == 0, "%s", ct_error_message());
    ct_model_free(&m);
    snprintf(args, sizeof args, "logits %s %s %s/tokens.bin %s/types.bin %s/mask.bin %s", dir, adapter, dir, dir, dir,
             back);
    if (hf_fixture_ref("peft_classify_ref.py", args) != 0) return;
    CHECK(hf_fixture_read_values(ct_test_tmpdir(), "back.bin", want, sizeof want) == B * L);
    err = hf_fixture_relative_error(got, want, B * L);
    moved = hf_fixture_relative_error(base_logits, want, B * L);
    printf("    %s: ctrain's SEQ_CLS adapter in PEFT vs in ctrain: %.3g (relative; it moves the logits by %.3g)\n", arch,
           err, moved);
    CHECK_MSG(err < 1e-5, "PEFT computes other logits with ctrain's adapter: %.3g", err);
    CHECK_MSG(moved > 1e-2, "ctrain's adapter hardly moves the logits (%.3g)", moved);
}

TEST_LONG(lora_classify_ref, bert_seq_cls_adapters_load_both_ways_with_peft_logits) { check_seq_cls("bert"); }
TEST_LONG(lora_classify_ref, roberta_seq_cls_adapters_load_both_ways_with_peft_logits) { check_seq_cls("roberta"); }
