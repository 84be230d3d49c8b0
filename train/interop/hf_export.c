// ctrain export hf: a checkpoint as a folder that transformers loads with
// AutoModelForCausalLM.from_pretrained(DIR) and AutoTokenizer.from_pretrained(DIR):
//   config.json, model.safetensors (or model-0000i-of-0000n.safetensors + model.safetensors.index.json
//   above the shard size), tokenizer.json + tokenizer_config.json, generation_config.json.
// The folder is built under a temporary name beside DIR and renamed when complete, so DIR
// never holds half an export.
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/dtype_convert.h"
#include "checkpoints/safetensors.h"
#include "checkpoints/safetensors_shards.h"
#include "core/alloc.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/hf_chat_template.h"
#include "train/interop/hf_interop.h"
#include "train/interop/hf_tensor_map.h"
#include "train/interop/stop_tokens.h"

#define DEFAULT_SHARD_BYTES 5000000000ull  // save_pretrained's default max_shard_size, "5GB"

static void remove_folder(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[4096];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

// DIR may not exist yet, or be an empty folder (which is replaced).
static int check_out_dir(const char *dir, int *exists) {
    struct stat st;
    *exists = 0;
    if (stat(dir, &st) != 0) return errno == ENOENT ? 0 : ct_error_errno("%s", dir);
    if (!S_ISDIR(st.st_mode)) return ct_error_set("%s exists and is not a folder; export into a new folder", dir);
    DIR *d = opendir(dir);
    if (!d) return ct_error_errno("%s", dir);
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = 0;
    closedir(d);
    if (!empty) return ct_error_set("%s exists and is not empty; export into a new or empty folder", dir);
    *exists = 1;
    return 0;
}

// Special tokens that transformers needs named: the first of these present in the tokenizer.
static int32_t first_special(const CtTokenizer *t, const char *const *texts) {
    for (int i = 0; texts[i]; i++) {
        int32_t id = ct_tokenizer_special_id(t, texts[i]);
        if (id >= 0) return id;
    }
    return -1;
}

typedef struct {
    int32_t bos, eos;
    char bos_text[64], eos_text[64];
    int32_t eos_ids[CT_MAX_STOP_TOKENS];  // the checkpoint's generation_config (an imported model's), else eos
    int n_eos;
} SpecialTokens;

static void find_specials(const char *tokenizer_json, SpecialTokens *s) {
    s->bos = s->eos = -1;
    s->n_eos = 0;
    CtTokenizer t;
    if (!tokenizer_json || ct_tokenizer_parse_hf(&t, tokenizer_json, strlen(tokenizer_json), "checkpoint tokenizer", NULL) != 0)
        return;
    static const char *const bos[] = {"<|begin_of_text|>", "<s>", "<|startoftext|>", NULL};
    s->eos = ct_tokenizer_eos_special(&t);
    s->bos = first_special(&t, bos);
    if (s->bos < 0) s->bos = s->eos;  // GPT-2 starts and ends documents with <|endoftext|>
    for (int k = 0; k < 2; k++) {
        int32_t id = k ? s->eos : s->bos;
        char *out = k ? s->eos_text : s->bos_text;
        out[0] = 0;
        if (id >= 0 && t.lengths[id] < 64) {
            memcpy(out, t.pool + t.offsets[id], t.lengths[id]);
            out[t.lengths[id]] = 0;
        }
    }
    ct_tokenizer_free(&t);
}

static int write_json(const char *dir, const char *name, cJSON *o) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    int rc = ct_write_file_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

static int write_text(const char *dir, const char *name, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return ct_write_file_atomic(path, text, strlen(text));
}

static int write_tokenizer_files(const char *dir, const CtCheckpointMeta *meta, const SpecialTokens *s, int max_len) {
    if (write_text(dir, "tokenizer.json", meta->tokenizer_json) != 0) return -1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "tokenizer_class", "PreTrainedTokenizerFast");
    if (s->bos_text[0]) cJSON_AddStringToObject(o, "bos_token", s->bos_text);
    if (s->eos_text[0]) cJSON_AddStringToObject(o, "eos_token", s->eos_text);
    cJSON_AddNumberToObject(o, "model_max_length", max_len);
    cJSON_AddBoolToObject(o, "clean_up_tokenization_spaces", 0);
    ct_hf_chat_template_add(o, meta->chat_template_json);
    return write_json(dir, "tokenizer_config.json", o);
}

// The end-of-sequence ids: the checkpoint's generation_config when it names some (Llama 3
// Instruct: <|end_of_text|>, <|eom_id|>, <|eot_id|>), else the tokenizer's one.
static int find_eos_ids(const CtCheckpointMeta *meta, int vocab_size, const char *source, SpecialTokens *s) {
    if (meta->generation_config_json &&
        ct_eos_token_ids_parse(meta->generation_config_json, source, vocab_size, s->eos_ids, CT_MAX_STOP_TOKENS, &s->n_eos) != 0)
        return -1;
    if (s->n_eos == 0 && s->eos >= 0) s->eos_ids[s->n_eos++] = s->eos;
    return 0;
}

static int write_generation_config(const char *dir, const SpecialTokens *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "_from_model_config", 1);
    if (s->bos >= 0) cJSON_AddNumberToObject(o, "bos_token_id", s->bos);
    if (s->n_eos == 1) cJSON_AddNumberToObject(o, "eos_token_id", s->eos_ids[0]);
    if (s->n_eos > 1) cJSON_AddItemToObject(o, "eos_token_id", cJSON_CreateIntArray(s->eos_ids, s->n_eos));
    return write_json(dir, "generation_config.json", o);
}

// One tensor in the chosen dtype; `src` (f32) is owned by the caller. *owned: what to free.
static int to_dtype(CtNamedTensor *out, const float *src, size_t numel, CtDtype dtype, void **owned, const char *source) {
    if (dtype == CT_DTYPE_F32) {
        out->data = (void *)src;
        return 0;
    }
    uint16_t *half = ct_alloc(numel * sizeof(uint16_t));
    size_t overflow = 0;
    if (dtype == CT_DTYPE_F16) overflow = ct_f32_array_to_f16(src, half, numel);
    else ct_f32_array_to_bf16(src, half, numel);
    *owned = half;
    out->data = half;
    if (overflow)
        return ct_error_set("%s: tensor '%s' has %zu values beyond float16's range (+-65504); export with --dtype bf16 "
                            "or f32", source, out->name, overflow);
    return 0;
}

// The f32 values of the file's tensor that starts with table entry i (a fused tensor gathers
// the entries placed in it; GPT-2's Conv1D weights are transposed back to [in, out]; Gemma's
// norms lose their 1). NULL when entry i's values go out as they are.
static float *file_values(const CtModel *m, int i, const CtHfPlace *place, int64_t *rows) {
    const CtParamEntry *e = &m->table[i];
    const float *src = m->params + e->offset;
    const int64_t cols = e->ndim == 2 ? e->shape[1] : 1;
    *rows = place->rows;
    if (!e->hf_transposed && place->rows == e->shape[0] && place->offset == 0) return NULL;
    float *v = ct_alloc((size_t)(place->rows * cols) * sizeof(float));
    if (e->hf_transposed) {
        const int64_t r_out = e->shape[0], c_in = e->shape[1];  // [out, in] here
        for (int64_t r = 0; r < r_out; r++)
            for (int64_t c = 0; c < c_in; c++) v[c * r_out + r] = src[r * c_in + c];
        return v;
    }
    for (int k = i; k < m->n_tensors; k++) {  // the entries of a fused tensor follow each other
        CtHfPlace p;
        ct_hf_place_of(&m->config, &m->table[k], &p);
        if (strcmp(p.name, place->name) != 0) break;
        const float *part = m->params + m->table[k].offset;
        for (size_t j = 0; j < m->table[k].numel; j++) v[p.row0 * cols + (int64_t)j] = part[j] - p.offset;
    }
    return v;
}

// DeepSeek-V3's checkpoints store each module's embedding and output head (shared with the
// main model's) under the module's layer: copies of the main model's, appended after the table.
static int mtp_shared_copies(const CtModel *m, CtDtype dtype, CtNamedTensor *out, char (*names)[128], void **owned,
                             int *n, const char *source) {
    const CtModelConfig *c = &m->config;
    for (int k = 1; k <= c->mtp_depth; k++)
        for (int head = 0; head <= 1; head++) {
            const int i = (*n)++;
            ct_hf_mtp_shared_name(c, k, head, names[i], sizeof names[i]);
            out[i] = (CtNamedTensor){.name = names[i], .ndim = 2, .dtype = dtype};
            out[i].shape[0] = c->vocab_size;
            out[i].shape[1] = c->d_model;
            const float *src = head ? m->w.lm_head : m->w.wte;
            if (to_dtype(&out[i], src, (size_t)c->vocab_size * (size_t)c->d_model, dtype, &owned[i], source) != 0)
                return -1;
        }
    return 0;
}

// The parameter table as Hugging Face holds it, every tensor in the chosen dtype; *n: how many
// (fewer than the table's entries when some are fused). Buffers are owned by `owned` (free each).
// A value beyond float16's range is an error: an infinity in the weights is a broken model.
static int hf_tensors(const CtModel *m, CtDtype dtype, int keep_mtp, CtNamedTensor *out, char (*names)[128],
                      void **owned, int *n, const char *source) {
    *n = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const CtParamEntry *e = &m->table[i];
        CtHfPlace place;
        ct_hf_place_of(&m->config, e, &place);
        if (place.row0 > 0) continue;  // written with the fused tensor's first part
        // a reward model's files are *ForSequenceClassification's, which has no LM head
        if (m->config.reward_head && strcmp(e->name, "lm_head.weight") == 0) continue;
        if (!keep_mtp && ct_hf_is_mtp_tensor(&m->config, place.name)) continue;  // the model as transformers runs it
        int64_t rows;
        float *values = file_values(m, i, &place, &rows);
        const int k = (*n)++;
        snprintf(names[k], sizeof names[k], "%s", place.name);
        out[k] = (CtNamedTensor){.name = names[k], .ndim = e->ndim, .dtype = dtype};
        out[k].shape[0] = e->hf_transposed ? e->shape[1] : rows;
        out[k].shape[1] = e->hf_transposed ? e->shape[0] : e->shape[1];
        const size_t numel = (size_t)(out[k].shape[0] * (e->ndim == 2 ? out[k].shape[1] : 1));
        void *half = NULL;
        int rc = to_dtype(&out[k], values ? values : m->params + e->offset, numel, dtype, &half, source);
        if (half) {
            ct_free(values);
            owned[k] = half;
        } else {
            owned[k] = values;
        }
        if (rc != 0) return -1;
    }
    return keep_mtp ? mtp_shared_copies(m, dtype, out, names, owned, n, source) : 0;
}

static int dtype_from_option(const char *s, CtDtype *dtype, const char **torch_name) {
    if (!s || strcmp(s, "f32") == 0 || strcmp(s, "float32") == 0) *dtype = CT_DTYPE_F32, *torch_name = "float32";
    else if (strcmp(s, "f16") == 0 || strcmp(s, "float16") == 0) *dtype = CT_DTYPE_F16, *torch_name = "float16";
    else if (strcmp(s, "bf16") == 0 || strcmp(s, "bfloat16") == 0) *dtype = CT_DTYPE_BF16, *torch_name = "bfloat16";
    else return ct_error_set("--dtype '%s': choose f32, f16 or bf16", s);
    return 0;
}

// DeepSeek-V3's config key for the modules; num_hidden_layers stays the main model's.
static char *add_nextn_layers(char *config, int depth) {
    cJSON *o = cJSON_Parse(config);
    free(config);
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "num_nextn_predict_layers", depth);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

static int export_into(const char *ckpt_path, const char *tmp, const CtModel *m, const CtCheckpointMeta *meta, CtDtype dtype,
                       const char *torch_name, uint64_t max_bytes, int keep_mtp, int *n_shards) {
    SpecialTokens s;
    find_specials(meta->tokenizer_json, &s);
    if (find_eos_ids(meta, m->config.vocab_size, ckpt_path, &s) != 0) return -1;
    char *config = ct_hf_config_json(&m->config, s.bos, s.eos_ids, s.n_eos, torch_name);
    if (config && keep_mtp) config = add_nextn_layers(config, m->config.mtp_depth);
    if (!config) return ct_error_prefix("%s: ", ckpt_path);
    int rc = write_text(tmp, "config.json", config);
    free(config);
    if (rc == 0 && !ct_model_is_encoder(&m->config)) rc = write_generation_config(tmp, &s);  // encoders do not generate
    if (rc == 0 && meta->tokenizer_json) rc = write_tokenizer_files(tmp, meta, &s, m->config.max_seq_len);
    if (rc != 0) return -1;
    const size_t slots = (size_t)m->n_tensors + 2 * (size_t)m->config.mtp_depth;  // + the modules' shared copies
    CtNamedTensor *t = ct_alloc(sizeof(CtNamedTensor) * slots);
    char(*names)[128] = ct_alloc(sizeof *names * slots);
    void **owned = ct_calloc(slots, sizeof(void *));
    int n = 0;
    rc = hf_tensors(m, dtype, keep_mtp, t, names, owned, &n, ckpt_path);
    if (rc == 0) rc = ct_st_shards_write(tmp, t, n, max_bytes, n_shards);
    for (size_t i = 0; i < slots; i++) ct_free(owned[i]);
    ct_free(owned);
    ct_free(names);
    ct_free(t);
    return rc;
}

int ct_hf_export(const char *ckpt_path, const char *out_dir, const CtHfExportOptions *opt) {
    CtDtype dtype = CT_DTYPE_F32;
    const char *torch_name = "float32";
    if (dtype_from_option(opt->dtype, &dtype, &torch_name) != 0) return -1;
    uint64_t max_bytes = opt->max_shard_bytes ? opt->max_shard_bytes : DEFAULT_SHARD_BYTES;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out_dir);
    for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--) dir[n - 1] = 0;
    int exists;
    if (check_out_dir(dir, &exists) != 0) return -1;

    CtModel m;
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    if (ct_checkpoint_load(ckpt_path, &m, ct_ops_cpu(), 1, 1, 0, NULL, &meta) != 0) return -1;
    // DeepSeek-V3's layout holds sequential modules; parallel heads read another state and have no
    // enorm, hnorm or eh_proj, so a tool reading that layout would run them wrong
    const int parallel = m.config.mtp_depth > 0 && m.config.mtp_style == CT_MTP_PARALLEL;
    if (opt->keep_mtp && parallel) {
        ct_error_set("%s: --keep-mtp writes multi-token prediction modules in DeepSeek-V3's layout, and this "
                     "checkpoint's %d heads are parallel ones (model.mtp_style parallel), which no Hugging Face "
                     "layout describes; export without --keep-mtp (the main model alone)",
                     ckpt_path, m.config.mtp_depth);
        ct_checkpoint_meta_free(&meta);
        ct_model_free(&m);
        return -1;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", dir);
    int rc = 0, n_shards = 0;
    if (!mkdtemp(tmp)) rc = ct_error_errno("%s: cannot create a folder beside it", dir);
    const int keep_mtp = opt->keep_mtp && m.config.mtp_depth > 0;
    if (rc == 0) rc = export_into(ckpt_path, tmp, &m, &meta, dtype, torch_name, max_bytes, keep_mtp, &n_shards);
    if (rc == 0 && chmod(tmp, 0755) != 0) rc = ct_error_errno("%s: chmod", tmp);
    if (rc == 0 && exists && rmdir(dir) != 0) rc = ct_error_errno("%s: cannot replace the empty folder", dir);
    if (rc == 0 && rename(tmp, dir) != 0) rc = ct_error_errno("%s: cannot move the export into place", dir);
    if (rc != 0) {
        remove_folder(tmp);
    } else {
        if (keep_mtp)
            ct_log("export hf: %s's %d multi-token prediction module%s kept in DeepSeek-V3's layout (layers %d..%d, "
                   "num_nextn_predict_layers %d; transformers' %s ignores them)", ckpt_path, m.config.mtp_depth,
                   m.config.mtp_depth == 1 ? " is" : "s are", m.config.n_layer, m.config.n_layer + m.config.mtp_depth - 1,
                   m.config.mtp_depth, m.config.arch == CT_ARCH_GPT2 ? "GPT2LMHeadModel" : "model");
        else if (m.config.mtp_depth > 0)
            ct_log("export hf: %s's %d multi-token prediction module%s left out (transformers' model has none%s)",
                   ckpt_path, m.config.mtp_depth, m.config.mtp_depth == 1 ? " is" : "s are",
                   parallel ? "" : "; --keep-mtp writes them");
        else if (opt->keep_mtp)
            ct_log("export hf: --keep-mtp: %s has no multi-token prediction modules (model.mtp_depth 0)", ckpt_path);
        ct_log("exported %s (%s, %zu parameters, %s) to %s: %d weight file%s%s", ckpt_path,
               m.config.arch == CT_ARCH_LLAMA ? ct_family_name(m.config.family) : ct_arch_name(m.config.arch),
               m.n_params, torch_name, dir, n_shards, n_shards == 1 ? "" : "s",
               meta.tokenizer_json ? ", tokenizer.json" : "; the checkpoint has no tokenizer, so no tokenizer.json");
    }
    ct_model_free(&m);
    ct_checkpoint_meta_free(&meta);
    return rc;
}
