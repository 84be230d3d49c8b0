// Prompt-learning adapters: the kinds' registry, the adapter's buffer and tensor table, and what
// every kind shares (spec JSON, decay spans, the report). See train/model/peft.h.
#include "train/model/peft.h"

#include <cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "train/model/model_internal.h"
#include "train/model/peft_hooks.h"

extern const CtPeftKind ct_peft_prompt_tuning_kind, ct_peft_p_tuning_kind;  // train/model/peft_prompt.c
extern const CtPeftKind ct_peft_prefix_tuning_kind;                           // train/model/peft_prefix.c
static const CtPeftKind *const kinds[CT_PEFT_N_TYPES] = {
    [CT_PEFT_PROMPT_TUNING] = &ct_peft_prompt_tuning_kind,
    [CT_PEFT_P_TUNING] = &ct_peft_p_tuning_kind,
    [CT_PEFT_PREFIX_TUNING] = &ct_peft_prefix_tuning_kind,
};

const CtPeftKind *ct_peft_kind(CtPeftType type) {
    return type > CT_PEFT_NONE && type < CT_PEFT_N_TYPES ? kinds[type] : NULL;
}

const CtPeftKind *ct_peft_kind_by_name(const char *name) {
    for (int t = 1; t < CT_PEFT_N_TYPES; t++)
        if (kinds[t] && (strcmp(kinds[t]->name, name) == 0 || strcmp(kinds[t]->peft_type, name) == 0)) return kinds[t];
    return NULL;
}

static const char *type_name(CtPeftType t) {
    static const char *const names[] = {"none", "prompt_tuning", "p_tuning", "prefix_tuning"};
    return t >= 0 && t < CT_PEFT_N_TYPES ? names[t] : "?";
}

int ct_peft_attach(CtModel *m, const CtPeftSpec *spec) {
    CT_CHECK(!m->lora && !m->peft, "a model takes one adapter");
    CT_CHECK(m->ops->host_memory, "attach a prompt-learning adapter on the CPU, then move the model");
    const CtPeftKind *kind = ct_peft_kind(spec->type);
    if (!kind) return ct_error_set("peft.type %s is not built in this ctrain", type_name(spec->type));
    if (!m->frozen && !spec->inference)
        return ct_error_set("%s: the base must be created frozen (CT_MODEL_FROZEN) to train an adapter", kind->name);
    if (ct_model_is_encoder(&m->config))
        return ct_error_set("%s: %s models are encoders; prompt learning here is PEFT's CAUSAL_LM (gpt2 and llama "
                            "families)", kind->name, ct_arch_name(m->config.arch));
    if (m->config.mtp_depth)
        return ct_error_set("%s: a base with multi-token prediction modules is not supported yet", kind->name);
    if (spec->num_virtual_tokens < 0) return ct_error_set("%s: num_virtual_tokens %d", kind->name, spec->num_virtual_tokens);
    CtPeft *p = ct_calloc(1, sizeof *p);
    p->spec = *spec;
    p->kind = kind;
    p->n_tensors = kind->layout(spec, &m->config, p->tensors);
    if (p->n_tensors < 0) {
        ct_free(p);
        return -1;
    }
    for (int i = 0; i < p->n_tensors; i++) {
        CtPeftTensor *t = &p->tensors[i];
        t->numel = (size_t)t->shape[0] * (size_t)(t->ndim > 1 ? t->shape[1] : 1);
        t->offset = p->n_params;
        p->n_params += t->numel;
    }
    const int rows = kind->extra_rows ? kind->extra_rows(spec) : 0;
    if (rows && ct_model_set_max_T(m, m->max_T + rows) != 0) {
        ct_free(p);
        return ct_error_prefix("%s: %d virtual tokens before sequences of %d: ", kind->name, rows, m->max_T);
    }
    p->params = ct_calloc(p->n_params ? p->n_params : 1, sizeof(float));
    p->grads = ct_calloc(p->n_params ? p->n_params : 1, sizeof(float));
    p->dev_params = p->params;
    p->dev_grads = p->grads;
    m->peft = p;
    if (kind->attach && kind->attach(m) != 0) {
        ct_peft_detach(m);
        return -1;
    }
    m->train_params = p->dev_params;
    m->train_grads = p->dev_grads;
    m->n_train = spec->inference ? 0 : p->n_params;
    return 0;
}

void ct_peft_detach(CtModel *m) {
    CtPeft *p = m->peft;
    if (!p) return;
    if (p->kind->detach) p->kind->detach(p);
    if (p->dev_params != p->params) m->ops->free(p->dev_params);
    if (p->dev_grads && p->dev_grads != p->grads) m->ops->free(p->dev_grads);
    ct_free(p->params);
    ct_free(p->grads);
    ct_free(p);
    m->peft = NULL;
    m->train_params = m->dev_params;
    m->train_grads = m->dev_grads;
    m->n_train = m->dev_grads ? m->n_params : 0;
}

void ct_peft_init(CtModel *m, uint64_t seed) {
    m->peft->kind->init(m, seed);
    ct_peft_sync(m, 1);
}

CtPeftTensor ct_peft_tensor(const char *name, int64_t rows, int64_t cols, int decay) {
    CtPeftTensor t = {.ndim = cols ? 2 : 1, .shape = {rows, cols}, .decay = decay};
    snprintf(t.name, sizeof t.name, "%s", name);
    return t;
}

void ct_peft_init_default(CtModel *m, uint64_t seed) {
    CtPeft *p = m->peft;
    for (int i = 0; i < p->n_tensors; i++) {
        const CtPeftTensor *t = &p->tensors[i];
        float *v = p->params + t->offset;
        CtRng rng;
        ct_rng_seed_stream(&rng, seed, CT_RNG_STREAM_PEFT_INIT + (uint64_t)i);
        if (i == 0) {  // torch.nn.Embedding: normal(0, 1)
            for (size_t j = 0; j < t->numel; j++) v[j] = (float)ct_rng_normal(&rng);
            continue;
        }
        // torch.nn.Linear: weight and bias uniform(±1/√in)
        const int64_t in = t->ndim == 2 ? t->shape[1] : p->tensors[i - 1].shape[1];
        const float bound = 1.0f / sqrtf((float)in);
        for (size_t j = 0; j < t->numel; j++) v[j] = (2 * ct_rng_uniform(&rng) - 1) * bound;
    }
}

void ct_peft_named_tensors(const CtPeft *p, const float *buffer, CtNamedTensor *out) {
    for (int i = 0; i < p->n_tensors; i++) {
        const CtPeftTensor *t = &p->tensors[i];
        out[i] = (CtNamedTensor){.name = t->name, .ndim = t->ndim, .dtype = CT_DTYPE_F32,
                                 .data = (void *)(buffer + t->offset)};
        for (int d = 0; d < t->ndim; d++) out[i].shape[d] = t->shape[d];
    }
}

void ct_peft_decay_spans(const CtPeft *p, CtParamSpan *spans) {
    for (int i = 0; i < p->n_tensors; i++)
        spans[i] = (CtParamSpan){p->tensors[i].offset, p->tensors[i].numel, p->tensors[i].decay};
}

void ct_peft_report(const CtModel *m) {
    const CtPeft *p = m->peft;
    char trainable[32], total[32], saved[32], what[160];
    ct_format_count(trainable, sizeof trainable, (double)p->n_params);
    ct_format_count(total, sizeof total, (double)(m->n_params + p->n_params));
    // full fine-tuning keeps a gradient and two AdamW moments (float32) per base parameter; the
    // adapter keeps its values, gradients and two moments (16 bytes each)
    const double saving = 12.0 * (double)m->n_params - 16.0 * (double)p->n_params;
    ct_format_bytes(saved, sizeof saved, fabs(saving));
    if (p->spec.type == CT_PEFT_P_TUNING)
        snprintf(what, sizeof what, ", prompt encoder %s of width %d", p->spec.encoder == CT_PEFT_ENCODER_LSTM ? "LSTM" : "MLP",
                 p->spec.encoder_hidden_size > 0 ? p->spec.encoder_hidden_size : m->config.d_model);  // 0: the model's
    else if (p->spec.type == CT_PEFT_PROMPT_TUNING)
        snprintf(what, sizeof what, ", initialised %s", p->spec.init == CT_PEFT_INIT_TEXT ? "from a text" : "at random");
    else if (p->spec.type == CT_PEFT_PREFIX_TUNING && !p->spec.inference)
        snprintf(what, sizeof what, ", keys and values in each of %d layers%s", m->config.n_layer,
                 p->spec.prefix_projection ? " through PEFT's projection" : "");
    else
        what[0] = '\0';
    ct_log("peft: %s, %d virtual tokens%s; trainable %s of %s parameters (%.3f%%); no gradients or optimizer state "
           "for the frozen base: %s %s memory than full fine-tuning", p->kind->name, p->spec.num_virtual_tokens, what,
           trainable, total, 100.0 * (double)p->n_params / (double)(m->n_params + p->n_params), saved,
           saving >= 0 ? "less" : "more");
}

void ct_peft_record_base(CtPeft *p, const char *base_path, uint64_t hash) {
    char abs[PATH_MAX];
    snprintf(p->base_path, sizeof p->base_path, "%s", realpath(base_path, abs) ? abs : base_path);
    p->base_hash = hash;
}

char *ct_peft_spec_json(const CtPeftSpec *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type_name(s->type));
    cJSON_AddNumberToObject(o, "num_virtual_tokens", s->num_virtual_tokens);
    cJSON_AddStringToObject(o, "prompt_tuning_init", s->init == CT_PEFT_INIT_TEXT ? "text" : "random");
    cJSON_AddStringToObject(o, "prompt_tuning_init_text", s->init_text);
    cJSON *ids = cJSON_AddArrayToObject(o, "prompt_tuning_init_ids");
    for (int i = 0; i < s->n_init_ids; i++) cJSON_AddItemToArray(ids, cJSON_CreateNumber(s->init_ids[i]));
    cJSON_AddStringToObject(o, "encoder_reparameterization_type", s->encoder == CT_PEFT_ENCODER_LSTM ? "LSTM" : "MLP");
    cJSON_AddNumberToObject(o, "encoder_hidden_size", s->encoder_hidden_size);
    cJSON_AddNumberToObject(o, "encoder_num_layers", s->encoder_num_layers);
    cJSON_AddNumberToObject(o, "encoder_dropout", s->encoder_dropout);
    cJSON_AddBoolToObject(o, "prefix_projection", s->prefix_projection);
    cJSON_AddBoolToObject(o, "inference", s->inference);
    char *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

static double number(const cJSON *o, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

int ct_peft_spec_parse_json(const char *json, CtPeftSpec *s, const char *source) {
    memset(s, 0, sizeof *s);
    cJSON *o = cJSON_Parse(json);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
    const CtPeftKind *k = cJSON_IsString(type) ? ct_peft_kind_by_name(type->valuestring) : NULL;
    int rc = 0;
    if (!k) {
        rc = ct_error_set("%s: peft_config is not {\"type\": \"prompt_tuning\" | \"p_tuning\" | \"prefix_tuning\", ...}"
                          "%s", source, cJSON_IsString(type) ? " (or that kind is not built in this ctrain)" : "");
    } else {
        s->type = k->type;
        s->num_virtual_tokens = (int)number(o, "num_virtual_tokens", 0);
        const cJSON *init = cJSON_GetObjectItemCaseSensitive(o, "prompt_tuning_init");
        s->init = cJSON_IsString(init) && strcmp(init->valuestring, "text") == 0 ? CT_PEFT_INIT_TEXT : CT_PEFT_INIT_RANDOM;
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(o, "prompt_tuning_init_text");
        snprintf(s->init_text, sizeof s->init_text, "%s", cJSON_IsString(text) ? text->valuestring : "");
        const cJSON *id;
        cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(o, "prompt_tuning_init_ids")) {
            if (s->n_init_ids < CT_PEFT_MAX_INIT_IDS && cJSON_IsNumber(id))
                s->init_ids[s->n_init_ids++] = (int32_t)id->valuedouble;
        }
        const cJSON *enc = cJSON_GetObjectItemCaseSensitive(o, "encoder_reparameterization_type");
        s->encoder = cJSON_IsString(enc) && strcmp(enc->valuestring, "LSTM") == 0 ? CT_PEFT_ENCODER_LSTM
                                                                                   : CT_PEFT_ENCODER_MLP;
        s->encoder_hidden_size = (int)number(o, "encoder_hidden_size", 0);
        s->encoder_num_layers = (int)number(o, "encoder_num_layers", 2);
        s->encoder_dropout = number(o, "encoder_dropout", 0);
        s->prefix_projection = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "prefix_projection"));
        s->inference = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "inference"));
        if (s->num_virtual_tokens < 0) rc = ct_error_set("%s: peft_config has num_virtual_tokens < 0", source);
    }
    cJSON_Delete(o);
    return rc;
}

// As LoRA's adapters (ct_lora_to_backend): the parameters uploaded (and declared to a table that
// keeps low-precision copies of weights: the projections read them), the gradients on the device
// only; then the kind's state. ct_model_to_backend has just named the frozen base's buffers, so
// what trains is named again here.
void ct_peft_to_backend(CtModel *m) {
    CtPeft *p = m->peft;
    const CtOps *ops = m->ops;
    if (p->dev_params == p->params) {  // not there yet
        p->dev_params = ct_model_device_buffer(ops, p->params, p->n_params, m->train_shards, "prompt-learning adapter");
        if (ops->keep_low_precision_weights) ops->keep_low_precision_weights(p->dev_params, p->n_params, NULL);
        p->dev_grads = ct_model_device_buffer(ops, NULL, p->n_params, m->train_shards, "prompt-learning gradients");
        ct_free(p->grads);
        p->grads = NULL;
        if (p->kind->to_backend) p->kind->to_backend(m);
    }
    m->train_params = p->dev_params;
    m->train_grads = p->dev_grads;
    m->n_train = p->spec.inference ? 0 : p->n_params;
}

void ct_peft_sync(CtModel *m, int to_device) {
    CtPeft *p = m->peft;
    if (!p || p->dev_params == p->params) return;
    if (to_device) {
        m->ops->upload(p->dev_params, p->params, p->n_params * sizeof(float));
        if (m->ops->keep_low_precision_weights) m->ops->keep_low_precision_weights(p->dev_params, p->n_params, NULL);
    } else {
        m->ops->download(p->params, p->dev_params, p->n_params * sizeof(float));
    }
}

const float *ct_peft_params_host(const CtModel *m) { return m->peft->params; }
