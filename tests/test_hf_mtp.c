// `export hf --keep-mtp` and its import (train/interop/hf_export.c, hf_import.c): the multi-token
// prediction modules go out in DeepSeek-V3's layout (layers n_layer.., each module's copies of the
// embedding and the head, num_nextn_predict_layers while num_hidden_layers stays the main
// model's), come back into a checkpoint with the same modules to the bit, and a copy that is not
// the main model's is refused by name. The export without the flag leaves them out (and imports
// as a model without modules). transformers' side is in test_hf_mtp_ref.c.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoints/safetensors.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "tests/hf_fixture.h"
#include "tests/test.h"
#include "train/interop/hf_interop.h"

static CtModelConfig mtp_config(CtArch arch, int tied, int depth) {
    CtModelConfig c = hf_fixture_config(arch, tied);
    c.mtp_depth = depth;
    return c;
}

static int export_hf(const char *ckpt, const char *dir, int keep) {
    CtHfExportOptions opt = {.keep_mtp = keep};
    int rc = ct_hf_export(ckpt, dir, &opt);
    if (rc != 0) ct_test_fail(__FILE__, __LINE__, "export: %s", ct_error_message());
    return rc;
}

// The tensor names of DIR/model.safetensors, each followed by a space (ct_free it), or NULL.
static char *header_of(const char *dir) {
    char path[2048];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CtSafetensors f;
    if (ct_st_open(&f, path) != 0) return NULL;
    size_t len = 1;
    for (int i = 0; i < f.n_tensors; i++) len += strlen(f.tensors[i].name) + 1;
    char *names = ct_calloc(len, 1);
    for (int i = 0; i < f.n_tensors; i++) strcat(strcat(names, f.tensors[i].name), " ");
    ct_st_close(&f);
    return names;
}

static void keep_mtp_round_trip(CtArch arch, int tied) {
    ct_log_set_level(CT_LOG_QUIET);
    const CtModelConfig c = mtp_config(arch, tied, 2);
    const char *ckpt = ct_test_path("mtp.h5"), *dir = ct_test_path("hf"), *back = ct_test_path("back.h5");
    CHECK(hf_fixture_checkpoint(ckpt, &c, 7) == 0);
    if (export_hf(ckpt, dir, 1) != 0) return;

    char *config = ct_test_read(ct_test_path("hf/config.json"), NULL);
    CHECK_CONTAINS(config, "\"num_nextn_predict_layers\":\t2");
    CHECK_CONTAINS(config, arch == CT_ARCH_GPT2 ? "\"n_layer\":\t2" : "\"num_hidden_layers\":\t2");
    free(config);
    char *names = header_of(dir);
    const char *prefix = arch == CT_ARCH_GPT2 ? "transformer.h" : "model.layers";
    char want[128];
    static const char *const module_names[] = {"enorm.weight", "hnorm.weight", "eh_proj.weight",
                                               "shared_head.norm.weight", "embed_tokens.weight",
                                               "shared_head.head.weight"};
    for (int layer = 2; layer <= 3; layer++)
        for (int i = 0; i < 6; i++) {
            snprintf(want, sizeof want, "%s.%d.%s ", prefix, layer, module_names[i]);
            CHECK_MSG(names && strstr(names, want), "the export has no %s", want);
        }
    snprintf(want, sizeof want, "%s.4.", prefix);
    CHECK_MSG(names && !strstr(names, want), "the export has a layer past the two modules");
    ct_free(names);

    CtHfImportOptions iopt = {0};
    CHECK_MSG(ct_hf_import(dir, back, &iopt) == 0, "%s", ct_error_message());
    CtModel a, b;
    CtCheckpointMeta ma = CT_CHECKPOINT_META_INIT, mb = CT_CHECKPOINT_META_INIT;
    CHECK_MSG(hf_fixture_load(ckpt, &a, &ma) == 0 && hf_fixture_load(back, &b, &mb) == 0, "%s", ct_error_message());
    if (ct_test_failed()) return;
    CHECK_EQ_INT(b.config.mtp_depth, 2);
    CHECK_EQ_INT(b.config.n_layer, c.n_layer);
    CHECK_EQ_INT(b.n_tensors, a.n_tensors);
    CHECK(a.n_params == b.n_params && memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0);
    for (int i = 0; i < a.n_tensors && i < b.n_tensors; i++) CHECK_STR_EQ(a.table[i].name, b.table[i].name);
    ct_model_free(&a), ct_model_free(&b);
    ct_checkpoint_meta_free(&ma), ct_checkpoint_meta_free(&mb);
}

TEST(hf_mtp, keep_mtp_export_imports_back_to_the_bit_llama) { keep_mtp_round_trip(CT_ARCH_LLAMA, 0); }
TEST(hf_mtp, keep_mtp_export_imports_back_to_the_bit_llama_tied) { keep_mtp_round_trip(CT_ARCH_LLAMA, 1); }
TEST(hf_mtp, keep_mtp_export_imports_back_to_the_bit_gpt2) { keep_mtp_round_trip(CT_ARCH_GPT2, 1); }

// Without the flag: no module tensor, no num_nextn_predict_layers, and the folder imports as the
// main model alone.
TEST(hf_mtp, plain_export_imports_as_the_model_without_modules) {
    ct_log_set_level(CT_LOG_QUIET);
    const CtModelConfig c = mtp_config(CT_ARCH_LLAMA, 0, 1);
    const char *ckpt = ct_test_path("mtp.h5"), *dir = ct_test_path("hf"), *back = ct_test_path("back.h5");
    CHECK(hf_fixture_checkpoint(ckpt, &c, 3) == 0);
    if (export_hf(ckpt, dir, 0) != 0) return;
    char *config = ct_test_read(ct_test_path("hf/config.json"), NULL);
    CHECK(config && !strstr(config, "num_nextn_predict_layers"));
    free(config);
    char *names = header_of(dir);
    CHECK(names && !strstr(names, "model.layers.2.") && !strstr(names, "shared_head"));
    ct_free(names);
    CtHfImportOptions iopt = {0};
    CHECK_MSG(ct_hf_import(dir, back, &iopt) == 0, "%s", ct_error_message());
    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CHECK(hf_fixture_load(back, &m, &meta) == 0);
    if (ct_test_failed()) return;
    CHECK_EQ_INT(m.config.mtp_depth, 0);
    ct_model_free(&m);
    ct_checkpoint_meta_free(&meta);
}

// Changes one value of tensor `name` in DIR/model.safetensors.
static int perturb(const char *dir, const char *name) {
    char path[2048];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CtSafetensors f;
    if (ct_st_open(&f, path) != 0) return -1;
    const CtStTensor *t = ct_st_find(&f, name);
    const long at = t ? (long)(t->data - (const unsigned char *)f.map) + 5 * 4 : -1;  // f32: the 6th value
    ct_st_close(&f);
    if (at < 0) return -1;
    FILE *fp = fopen(path, "r+b");
    float v;
    int ok = fp && fseek(fp, at, SEEK_SET) == 0 && fread(&v, 4, 1, fp) == 1;
    v = v * 1.5f + 0.25f;
    ok = ok && fseek(fp, at, SEEK_SET) == 0 && fwrite(&v, 4, 1, fp) == 1;
    if (fp) fclose(fp);
    return ok ? 0 : -1;
}

static void refuses_a_copy_that_differs(const char *tensor) {
    ct_log_set_level(CT_LOG_QUIET);
    const CtModelConfig c = mtp_config(CT_ARCH_LLAMA, 0, 2);
    const char *ckpt = ct_test_path("mtp.h5"), *dir = ct_test_path("hf"), *back = ct_test_path("back.h5");
    CHECK(hf_fixture_checkpoint(ckpt, &c, 5) == 0);
    if (export_hf(ckpt, dir, 1) != 0) return;
    CHECK(perturb(dir, tensor) == 0);
    CtHfImportOptions iopt = {0};
    CHECK(ct_hf_import(dir, back, &iopt) != 0);
    const char *msg = ct_error_message();
    CHECK_CONTAINS(msg, tensor);
    CHECK_CONTAINS(msg, "share the main model's embedding and head");
    CHECK(strchr(msg, '\n') == NULL);
    CHECK(access(back, F_OK) != 0);
}

TEST(hf_mtp, import_refuses_a_module_embedding_that_is_not_the_models) {
    refuses_a_copy_that_differs("model.layers.3.embed_tokens.weight");
}
TEST(hf_mtp, import_refuses_a_module_head_that_is_not_the_models) {
    refuses_a_copy_that_differs("model.layers.2.shared_head.head.weight");
}

// Through the binary: --keep-mtp writes the modules and says where; the plain export says how to keep them.
TEST(hf_mtp, cli_keep_mtp_says_what_it_wrote) {
    ct_log_set_level(CT_LOG_QUIET);
    const CtModelConfig c = mtp_config(CT_ARCH_LLAMA, 0, 2);
    CHECK(hf_fixture_checkpoint(ct_test_path("mtp.h5"), &c, 9) == 0);
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' export hf mtp.h5 --out kept --keep-mtp 2>&1 && '%s' export hf mtp.h5 "
             "--out plain 2>&1 && '%s' import hf kept --out back.h5 2>&1", ct_test_tmpdir(), ct_test_bin(),
             ct_test_bin(), ct_test_bin());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);
    CHECK_CONTAINS(out, "2 multi-token prediction modules are kept in DeepSeek-V3's layout (layers 2..3, "
                        "num_nextn_predict_layers 2");
    CHECK_CONTAINS(out, "2 multi-token prediction modules are left out (transformers' model has none; --keep-mtp "
                        "writes them)");
    CHECK_CONTAINS(out, "and its multi-token prediction modules (num_nextn_predict_layers)");
    free(out);
    char *config = ct_test_read(ct_test_path("kept/config.json"), NULL);
    CHECK_CONTAINS(config, "\"num_nextn_predict_layers\":\t2");
    free(config);
}

// A folder with the modules' tensors whose config.json says num_nextn_predict_layers 0: the error
// names the layer and the key that counts the modules.
TEST(hf_mtp, module_tensors_without_the_config_key_are_refused_with_the_key) {
    ct_log_set_level(CT_LOG_QUIET);
    const CtModelConfig c = mtp_config(CT_ARCH_LLAMA, 0, 1);
    const char *ckpt = ct_test_path("mtp.h5"), *dir = ct_test_path("hf");
    CHECK(hf_fixture_checkpoint(ckpt, &c, 4) == 0);
    if (export_hf(ckpt, dir, 1) != 0) return;
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd, "cd '%s' && sed -i 's/\"num_nextn_predict_layers\":.*1$/\"num_nextn_predict_layers\": 0/' "
             "hf/config.json && grep -c '\"num_nextn_predict_layers\": 0' hf/config.json", ct_test_tmpdir());
    CHECK_EQ_INT(ct_test_run(cmd, &out), 0);  // 0 modules: a count the import reads too
    free(out);
    CtHfImportOptions iopt = {0};
    CHECK(ct_hf_import(dir, ct_test_path("back.h5"), &iopt) != 0);
    CHECK_CONTAINS(ct_error_message(), "is in layer 2, past the model's 2 layers");
    CHECK_CONTAINS(ct_error_message(), "num_nextn_predict_layers");
}
