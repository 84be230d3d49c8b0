// The run attributes of every model checkpoint. See train/interop/checkpoint_meta.h.
#include "train/interop/checkpoint_meta.h"

#include <cJSON.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/version.h"

void ct_checkpoint_meta_init(CtCheckpointMeta *meta) {
    memset(meta, 0, sizeof *meta);
    meta->train_loss = meta->val_loss = meta->best_val_loss = NAN;
}

void ct_checkpoint_meta_free(CtCheckpointMeta *meta) {
    ct_free(meta->run_config_json);
    ct_free(meta->tokenizer_json);
    ct_free(meta->chat_template_json);
    ct_free(meta->generation_config_json);
    meta->run_config_json = meta->tokenizer_json = meta->chat_template_json = meta->generation_config_json = NULL;
}

// The llama variants' fields, each only where it is set: a plain model's JSON stays what it was,
// and a checkpoint written before they existed reads as zeros (plain LLaMA).
static void add_variants_json(cJSON *o, const CtModelConfig *c) {
    if (c->family) cJSON_AddStringToObject(o, "family", ct_family_name(c->family));
    const struct {
        const char *key;
        int value;
    } ints[] = {{"head_dim", c->head_dim},
                {"qkv_bias", c->qkv_bias},
                {"qk_norm", c->qk_norm},
                {"sliding_window", c->sliding_window},
                {"sliding_window_pattern", c->sliding_window_pattern},
                {"post_norms", c->post_norms},
                {"embed_scale", c->embed_scale},
                {"reward_head", c->reward_head}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].value) cJSON_AddNumberToObject(o, ints[i].key, ints[i].value);
    if (c->reward_head) cJSON_AddNumberToObject(o, "reward_pad_id", c->reward_pad_id);
    const struct {
        const char *key;
        float value;
    } floats[] = {{"rope_local_theta", c->rope_local_theta},
                  {"query_scale", c->query_scale},
                  {"attn_softcap", c->attn_softcap},
                  {"final_softcap", c->final_softcap}};
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++)
        if (floats[i].value != 0) cJSON_AddNumberToObject(o, floats[i].key, floats[i].value);
    if (c->gate_act) cJSON_AddStringToObject(o, "gate_act", ct_gate_act_name(c->gate_act));
    const CtRopeScaling *r = &c->rope_scaling;
    if (r->type == CT_ROPE_DEFAULT) return;
    cJSON *s = cJSON_AddObjectToObject(o, "rope_scaling");
    cJSON_AddStringToObject(s, "type", ct_rope_type_name(r->type));
    cJSON_AddNumberToObject(s, "factor", r->factor);
    cJSON_AddNumberToObject(s, "original_max_position", r->original_max_position);
    cJSON_AddNumberToObject(s, "low_freq_factor", r->low_freq_factor);
    cJSON_AddNumberToObject(s, "high_freq_factor", r->high_freq_factor);
    cJSON_AddNumberToObject(s, "beta_fast", r->beta_fast);
    cJSON_AddNumberToObject(s, "beta_slow", r->beta_slow);
    cJSON_AddNumberToObject(s, "mscale", r->mscale);
    cJSON_AddNumberToObject(s, "mscale_all_dim", r->mscale_all_dim);
    cJSON_AddNumberToObject(s, "attention_factor", r->attention_factor);
    cJSON_AddBoolToObject(s, "truncate", r->truncate);
}

// The Mixture-of-Experts fields, only for an MoE model: a dense model's JSON stays what it was,
// and a checkpoint written before they existed reads as dense (n_experts 0).
static void add_moe_json(cJSON *o, const CtModelConfig *c) {
    if (c->n_experts == 0) return;
    cJSON_AddNumberToObject(o, "n_experts", c->n_experts);
    cJSON_AddNumberToObject(o, "top_k", c->top_k);
    cJSON_AddNumberToObject(o, "moe_d_ff", c->moe_d_ff);
    cJSON_AddNumberToObject(o, "n_shared_experts", c->n_shared_experts);
    cJSON_AddNumberToObject(o, "shared_expert_gate", c->shared_expert_gate);
    cJSON_AddNumberToObject(o, "moe_layer_freq", c->moe_layer_freq);
    cJSON_AddStringToObject(o, "router", ct_router_name(c->router));
    cJSON_AddNumberToObject(o, "router_scale", c->router_scale);
}

static int json_int(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : 0;
}
static float json_float(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (float)v->valuedouble : 0.0f;
}

// An enum spelled by name: absent is 0 (its first name); a name it does not know is an error.
static int json_enum(const cJSON *o, const char *key, int (*from_name)(const char *, int *), int *out,
                     const char *source) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = 0;
    if (!v) return 0;
    if (!cJSON_IsString(v) || from_name(v->valuestring, out) != 0)
        return ct_error_set("%s: model_config has an unknown %s%s%s", source, key, cJSON_IsString(v) ? " " : "",
                            cJSON_IsString(v) ? v->valuestring : "");
    return 0;
}
static int family_from_name(const char *name, int *out) {
    CtFamily f;
    int rc = ct_family_from_name(name, &f);
    *out = (int)f;
    return rc;
}
static int gate_act_from_name(const char *name, int *out) {
    CtGateAct a;
    int rc = ct_gate_act_from_name(name, &a);
    *out = (int)a;
    return rc;
}
static int rope_type_from_name(const char *name, int *out) {
    CtRopeType t;
    int rc = ct_rope_type_from_name(name, &t);
    *out = (int)t;
    return rc;
}

static int mtp_style_from_name(const char *name, int *out) {
    CtMtpStyle st;
    int rc = ct_mtp_style_from_name(name, &st);
    *out = (int)st;
    return rc;
}

static int router_from_name(const char *name, int *out) {
    CtRouter r;
    int rc = ct_router_from_name(name, &r);
    *out = (int)r;
    return rc;
}

static int parse_moe_json(const cJSON *o, CtModelConfig *c, const char *source) {
    int router;
    if (json_enum(o, "router", router_from_name, &router, source) != 0) return -1;
    c->router = (CtRouter)router;
    c->n_experts = json_int(o, "n_experts");
    c->top_k = json_int(o, "top_k");
    c->moe_d_ff = json_int(o, "moe_d_ff");
    c->n_shared_experts = json_int(o, "n_shared_experts");
    c->shared_expert_gate = json_int(o, "shared_expert_gate");
    c->moe_layer_freq = json_int(o, "moe_layer_freq");
    c->router_scale = json_float(o, "router_scale");
    return 0;
}

static int parse_variants_json(const cJSON *o, CtModelConfig *c, const char *source) {
    int family, gate_act, rope_type;
    if (json_enum(o, "family", family_from_name, &family, source) ||
        json_enum(o, "gate_act", gate_act_from_name, &gate_act, source))
        return -1;
    c->family = (CtFamily)family;
    c->gate_act = (CtGateAct)gate_act;
    c->head_dim = json_int(o, "head_dim");
    c->qkv_bias = json_int(o, "qkv_bias");
    c->qk_norm = json_int(o, "qk_norm");
    c->sliding_window = json_int(o, "sliding_window");
    c->sliding_window_pattern = json_int(o, "sliding_window_pattern");
    c->post_norms = json_int(o, "post_norms");
    c->embed_scale = json_int(o, "embed_scale");
    c->reward_head = json_int(o, "reward_head");
    const cJSON *pad = cJSON_GetObjectItemCaseSensitive(o, "reward_pad_id");
    c->reward_pad_id = !c->reward_head ? 0 : cJSON_IsNumber(pad) ? (int)pad->valuedouble : -1;  // 0: unused
    c->rope_local_theta = json_float(o, "rope_local_theta");
    c->query_scale = json_float(o, "query_scale");
    c->attn_softcap = json_float(o, "attn_softcap");
    c->final_softcap = json_float(o, "final_softcap");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "rope_scaling");
    if (!s) return 0;
    if (!cJSON_IsObject(s) || json_enum(s, "type", rope_type_from_name, &rope_type, source) != 0)
        return cJSON_IsObject(s) ? -1 : ct_error_set("%s: model_config's rope_scaling is not an object", source);
    CtRopeScaling *r = &c->rope_scaling;
    r->type = (CtRopeType)rope_type;
    r->factor = json_float(s, "factor");
    r->original_max_position = json_int(s, "original_max_position");
    r->low_freq_factor = json_float(s, "low_freq_factor");
    r->high_freq_factor = json_float(s, "high_freq_factor");
    r->beta_fast = json_float(s, "beta_fast");
    r->beta_slow = json_float(s, "beta_slow");
    r->mscale = json_float(s, "mscale");
    r->mscale_all_dim = json_float(s, "mscale_all_dim");
    r->attention_factor = json_float(s, "attention_factor");
    r->truncate = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "truncate"));
    return 0;
}

char *ct_model_config_json(const CtModelConfig *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "arch", ct_arch_name(c->arch));
    cJSON_AddNumberToObject(o, "n_layer", c->n_layer);
    cJSON_AddNumberToObject(o, "n_head", c->n_head);
    cJSON_AddNumberToObject(o, "n_kv_head", c->n_kv_head);
    cJSON_AddNumberToObject(o, "d_model", c->d_model);
    cJSON_AddNumberToObject(o, "d_ff", c->d_ff);
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(o, "max_seq_len", c->max_seq_len);
    cJSON_AddNumberToObject(o, "norm_eps", c->norm_eps);
    cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
    cJSON_AddBoolToObject(o, "tie_embeddings", c->tie_embeddings);
    cJSON_AddNumberToObject(o, "dropout", c->dropout);
    if (ct_model_is_encoder(c)) {  // only for encoders: a decoder writes the JSON it always did
        cJSON_AddNumberToObject(o, "type_vocab_size", c->type_vocab_size);
        cJSON_AddNumberToObject(o, "pad_token_id", c->pad_token_id);
        cJSON_AddBoolToObject(o, "pooler", c->pooler);
    }
    add_variants_json(o, c);
    add_moe_json(o, c);
    // only with modules: a model without them writes the JSON it always did
    if (c->mtp_depth) cJSON_AddNumberToObject(o, "mtp_depth", c->mtp_depth);
    if (c->mtp_style != CT_MTP_SEQUENTIAL) cJSON_AddStringToObject(o, "mtp_style", ct_mtp_style_name(c->mtp_style));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int get_int(const cJSON *o, const char *key, int *out, const char *source) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) return ct_error_set("%s: model_config has no number '%s'", source, key);
    *out = (int)v->valuedouble;
    return 0;
}

int ct_model_config_parse_json(const char *json, CtModelConfig *out, const char *source) {
    memset(out, 0, sizeof *out);
    cJSON *o = cJSON_Parse(json);
    int rc = -1;
    if (!cJSON_IsObject(o)) {
        ct_error_set("%s: model_config is not a JSON object", source);
        goto done;
    }
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(o, "arch");
    if (!cJSON_IsString(arch) || ct_arch_from_name(arch->valuestring, &out->arch) != 0) {
        ct_error_set("%s: model_config has no arch gpt2, llama, bert or roberta", source);
        goto done;
    }
    if (get_int(o, "n_layer", &out->n_layer, source) || get_int(o, "n_head", &out->n_head, source) ||
        get_int(o, "n_kv_head", &out->n_kv_head, source) || get_int(o, "d_model", &out->d_model, source) ||
        get_int(o, "d_ff", &out->d_ff, source) || get_int(o, "vocab_size", &out->vocab_size, source) ||
        get_int(o, "max_seq_len", &out->max_seq_len, source))
        goto done;
    const cJSON *v;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, "norm_eps"))) out->norm_eps = (float)v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, "rope_theta"))) out->rope_theta = (float)v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(o, "dropout"))) out->dropout = (float)v->valuedouble;
    out->tie_embeddings = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "tie_embeddings"));
    out->type_vocab_size = json_int(o, "type_vocab_size");  // absent (decoders): 0
    out->pad_token_id = json_int(o, "pad_token_id");
    out->pooler = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "pooler"));
    if (parse_variants_json(o, out, source) != 0 || parse_moe_json(o, out, source) != 0) goto done;
    out->mtp_depth = json_int(o, "mtp_depth");  // absent (checkpoints before it): 0, no modules
    int mtp_style;  // absent (sequential modules, or none): sequential
    if (json_enum(o, "mtp_style", mtp_style_from_name, &mtp_style, source) != 0) goto done;
    out->mtp_style = (CtMtpStyle)mtp_style;
    if (ct_model_config_validate(out) != 0) {
        ct_error_prefix("%s: model_config: ", source);
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(o);
    return rc;
}

int ct_checkpoint_write_meta(CtCheckpoint *c, const CtCheckpointMeta *meta) {
    uint64_t loader[3] = {meta->loader.seed, meta->loader.epoch, meta->loader.step};
    int rc = ct_ckpt_set_int(c, "step", meta->step) || ct_ckpt_set_int(c, "tokens_seen", meta->tokens_seen) ||
             ct_ckpt_set_u64s(c, "loader", loader, 3) || ct_ckpt_set_u64s(c, "rng", meta->rng, 4) ||
             ct_ckpt_set_double(c, "train_loss", meta->train_loss) || ct_ckpt_set_double(c, "val_loss", meta->val_loss) ||
             ct_ckpt_set_double(c, "best_val_loss", meta->best_val_loss) ||
             ct_ckpt_set_string(c, "created_by", "ctrain " CTRAIN_VERSION) ||
             ct_ckpt_set_u64s(c, "tokenizer_hash", &meta->tokenizer_hash, 1);
    if (rc == 0 && meta->run_config_json) rc = ct_ckpt_set_string(c, "config", meta->run_config_json);
    if (rc == 0 && meta->tokenizer_json) rc = ct_ckpt_set_string(c, "tokenizer", meta->tokenizer_json);
    if (rc == 0 && meta->chat_template_json) rc = ct_ckpt_set_string(c, "chat_template", meta->chat_template_json);
    if (rc == 0 && meta->generation_config_json)
        rc = ct_ckpt_set_string(c, "generation_config", meta->generation_config_json);
    return rc ? -1 : 0;
}

int ct_checkpoint_read_meta_open(CtCheckpoint *c, const char *path, CtModelConfig *config, CtCheckpointMeta *meta) {
    ct_checkpoint_meta_init(meta);
    char *json = NULL;
    if (ct_ckpt_get_string(c, "model_config", &json) != 0) return ct_error_prefix("not a model checkpoint: ");
    int rc = ct_model_config_parse_json(json, config, path);
    ct_free(json);
    if (rc != 0) return -1;
    uint64_t loader[3] = {0, 0, 0};
    if (ct_ckpt_has(c, "step") && ct_ckpt_get_int(c, "step", &meta->step) != 0) return -1;
    if (ct_ckpt_has(c, "tokens_seen") && ct_ckpt_get_int(c, "tokens_seen", &meta->tokens_seen) != 0) return -1;
    if (ct_ckpt_has(c, "loader") && ct_ckpt_get_u64s(c, "loader", loader, 3) != 0) return -1;
    meta->loader = (CtLoaderState){loader[0], loader[1], loader[2]};
    if (ct_ckpt_has(c, "rng") && ct_ckpt_get_u64s(c, "rng", meta->rng, 4) != 0) return -1;
    if (ct_ckpt_has(c, "train_loss")) ct_ckpt_get_double(c, "train_loss", &meta->train_loss);
    if (ct_ckpt_has(c, "val_loss")) ct_ckpt_get_double(c, "val_loss", &meta->val_loss);
    if (ct_ckpt_has(c, "best_val_loss")) ct_ckpt_get_double(c, "best_val_loss", &meta->best_val_loss);
    if (ct_ckpt_has(c, "tokenizer_hash") && ct_ckpt_get_u64s(c, "tokenizer_hash", &meta->tokenizer_hash, 1) != 0) return -1;
    if (ct_ckpt_has(c, "config") && ct_ckpt_get_string(c, "config", &meta->run_config_json) != 0) return -1;
    if (ct_ckpt_has(c, "tokenizer") && ct_ckpt_get_string(c, "tokenizer", &meta->tokenizer_json) != 0) return -1;
    if (ct_ckpt_has(c, "chat_template") && ct_ckpt_get_string(c, "chat_template", &meta->chat_template_json) != 0)
        return -1;
    if (ct_ckpt_has(c, "generation_config") &&
        ct_ckpt_get_string(c, "generation_config", &meta->generation_config_json) != 0)
        return -1;
    return 0;
}

int ct_checkpoint_read_meta(const char *path, CtModelConfig *config, CtCheckpointMeta *meta) {
    CtCheckpoint c;
    if (ct_ckpt_open(&c, path) != 0) return -1;
    int rc = ct_checkpoint_read_meta_open(&c, path, config, meta);
    ct_ckpt_close(&c);
    if (rc != 0) ct_checkpoint_meta_free(meta);
    return rc;
}

