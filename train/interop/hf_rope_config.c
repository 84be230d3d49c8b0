// RoPE in config.json, as transformers 5.23's RotaryEmbeddingConfigMixin reads it (and as
// transformers 4 wrote it). See hf_rope_config.h.
//
// The block: `rope_scaling` (transformers 4's name) when it is a non-empty object, else
// `rope_parameters`; rope_theta from the block, else the top-level key, else the family's
// default; rope_type (or its old name `type`) defaults to "default". Gemma 3 has one block per
// layer type: full_attention (4's rope_scaling updates it, rope_theta is its base, default 1e6)
// and sliding_attention (rope_local_base_freq, default 1e4).
#include "train/interop/hf_rope_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static int is_unset(const cJSON *v) { return !v || cJSON_IsNull(v); }
static int is_empty_object(const cJSON *v) { return cJSON_IsObject(v) && !v->child; }

// The keys each type reads beyond rope_type/type, rope_theta and partial_rotary_factor.
static const struct {
    const char *name;
    CtRopeType type;
    const char *keys;
} rope_types[] = {
    {"default", CT_ROPE_DEFAULT, ""},
    {"linear", CT_ROPE_LINEAR, " factor "},
    // transformers' dynamic NTK reads max_position_embeddings, not the block's original size
    {"dynamic", CT_ROPE_DYNAMIC, " factor original_max_position_embeddings "},
    {"yarn", CT_ROPE_YARN,
     " factor original_max_position_embeddings attention_factor beta_fast beta_slow mscale mscale_all_dim truncate "},
    {"llama3", CT_ROPE_LLAMA3, " factor low_freq_factor high_freq_factor original_max_position_embeddings "},
};
#define N_ROPE_TYPES (sizeof rope_types / sizeof rope_types[0])

static int word_in(const char *list, const char *key) {
    char word[96];
    snprintf(word, sizeof word, " %s ", key);
    return strstr(list, word) != NULL;
}

typedef struct {
    const char *source;  // the file
    const char *where;   // the block's key, "rope_parameters.full_attention", ...
    const cJSON *block;  // NULL: no block
} Block;

// A number of the block: 1 when set (*out), 0 when absent or null, -1 + error when not a
// number in [lo, 1e12].
static int block_number(const Block *b, const char *key, double lo, double *out) {
    const cJSON *v = b->block ? cJSON_GetObjectItemCaseSensitive(b->block, key) : NULL;
    if (is_unset(v)) return 0;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo) || v->valuedouble > 1e12)
        return ct_error_set("%s: %s.%s must be a number of at least %g", b->source, b->where, key, lo);
    *out = v->valuedouble;
    return 1;
}

// The rope_type of a block; NULL + error when it is not a string.
static const char *type_of(const Block *b) {
    const cJSON *t = b->block ? cJSON_GetObjectItemCaseSensitive(b->block, "rope_type") : NULL;
    const char *key = "rope_type";
    if (is_unset(t)) t = b->block ? cJSON_GetObjectItemCaseSensitive(b->block, "type") : NULL, key = "type";
    if (is_unset(t)) return "default";
    if (!cJSON_IsString(t)) {
        ct_error_set("%s: %s.%s must be a string", b->source, b->where, key);
        return NULL;
    }
    return t->valuestring;
}

// The parameters of a scaled type. transformers' defaults: beta_fast 32, beta_slow 1 (a 0 too:
// `get(...) or 32`), truncate true, original_max_position_embeddings = max_position_embeddings.
static int read_scaling(const Block *b, CtRopeType type, int max_pos, CtRopeScaling *s) {
    double v = 0;
    int rc;
    if (type != CT_ROPE_LINEAR) s->original_max_position = max_pos;
    if (type == CT_ROPE_YARN || type == CT_ROPE_LLAMA3) {
        if ((rc = block_number(b, "original_max_position_embeddings", 1, &v)) < 0) return -1;
        if (rc) s->original_max_position = (int)v;
    }
    const cJSON *factor = cJSON_GetObjectItemCaseSensitive(b->block, "factor");
    if (!factor) return ct_error_set("%s: %s.factor is missing (rope_type %s needs it)", b->source, b->where,
                                     type_of(b));
    if ((rc = block_number(b, "factor", 1e-6, &v)) < 0) return -1;
    if (rc) s->factor = (float)v;
    else if (type == CT_ROPE_YARN) s->factor = (float)max_pos / (float)s->original_max_position;  // factor: null
    else return ct_error_set("%s: %s.factor must be a number", b->source, b->where);
    if (type == CT_ROPE_LLAMA3) {
        double lo = 0, hi = 0;
        if (block_number(b, "low_freq_factor", 1e-6, &lo) != 1 || block_number(b, "high_freq_factor", 1e-6, &hi) != 1)
            return ct_error_set("%s: %s: rope_type llama3 needs low_freq_factor and high_freq_factor (numbers)", b->source,
                                b->where);
        s->low_freq_factor = (float)lo, s->high_freq_factor = (float)hi;
    }
    if (type == CT_ROPE_YARN) {
        double bf = 0, bs = 0, ms = 0, msa = 0, af = 0;
        if (block_number(b, "beta_fast", 0, &bf) < 0 || block_number(b, "beta_slow", 0, &bs) < 0 ||
            block_number(b, "mscale", 0, &ms) < 0 || block_number(b, "mscale_all_dim", 0, &msa) < 0 ||
            block_number(b, "attention_factor", 0, &af) < 0)
            return -1;
        s->beta_fast = bf > 0 ? (float)bf : 32.0f;
        s->beta_slow = bs > 0 ? (float)bs : 1.0f;
        s->mscale = (float)ms, s->mscale_all_dim = (float)msa, s->attention_factor = (float)af;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(b->block, "truncate");
        if (!is_unset(t) && !cJSON_IsBool(t)) return ct_error_set("%s: %s.truncate must be true or false", b->source, b->where);
        s->truncate = is_unset(t) || cJSON_IsTrue(t);
    }
    return 0;
}

// One block into a base and a scaling. `theta_fallback` is used when the block has no rope_theta.
static int parse_block(const Block *b, const cJSON *top_partial, double theta_fallback, int max_pos, float *theta,
                       CtRopeScaling *s) {
    memset(s, 0, sizeof *s);
    const char *name = type_of(b);
    if (!name) return -1;
    size_t t = 0;
    while (t < N_ROPE_TYPES && strcmp(rope_types[t].name, name) != 0) t++;
    if (t == N_ROPE_TYPES)
        return ct_error_set("%s: %s.rope_type '%s' is not supported: ctrain computes the RoPE types default, linear, "
                            "dynamic, yarn and llama3", b->source, b->where, name);
    for (const cJSON *e = b->block ? b->block->child : NULL; e; e = e->next) {
        const char *k = e->string;
        if (strcmp(k, "rope_type") == 0 || strcmp(k, "type") == 0 || strcmp(k, "rope_theta") == 0 ||
            strcmp(k, "partial_rotary_factor") == 0 || word_in(rope_types[t].keys, k) || cJSON_IsNull(e))
            continue;
        return ct_error_set("%s: %s.%s is not supported with rope_type '%s' (ctrain would not read it)", b->source,
                            b->where, k, name);
    }
    // transformers' families here rotate the whole head (Phi-3 reads the factor, and a model made
    // with partial rotation would compute something else): refused rather than guessed
    const cJSON *partial = b->block ? cJSON_GetObjectItemCaseSensitive(b->block, "partial_rotary_factor") : NULL;
    const char *partial_where = b->where;
    if (is_unset(partial)) partial = top_partial, partial_where = NULL;
    if (!is_unset(partial) && !(cJSON_IsNumber(partial) && partial->valuedouble == 1.0))
        return ct_error_set("%s: %s%spartial_rotary_factor is not supported: ctrain rotates the whole head", b->source,
                            partial_where ? partial_where : "", partial_where ? "." : "");
    double th = theta_fallback;
    int rc = block_number(b, "rope_theta", 1.0000001, &th);
    if (rc < 0) return ct_error_set("%s: %s.rope_theta must be a number above 1", b->source, b->where);
    if (!(th > 1) || th > 1e12) return ct_error_set("%s: rope_theta must be a number above 1", b->source);
    *theta = (float)th;
    s->type = rope_types[t].type;
    return s->type == CT_ROPE_DEFAULT ? 0 : read_scaling(b, s->type, max_pos, s);
}

// The top-level rope_theta, or `def` when absent. -1 + error when it is not a number above 1.
static int top_theta(const cJSON *root, const char *source, const char *key, double def, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = def;
    if (is_unset(v)) return 0;
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 1) || v->valuedouble > 1e12)
        return ct_error_set("%s: %s must be a number above 1", source, key);
    *out = v->valuedouble;
    return 0;
}

static int is_nested(const cJSON *block) {
    return cJSON_GetObjectItemCaseSensitive(block, "full_attention") ||
           cJSON_GetObjectItemCaseSensitive(block, "sliding_attention");
}

// Gemma 3: a block per layer type; transformers 4's rope_scaling updates the full_attention one.
static int parse_gemma3(const cJSON *root, const char *source, CtModelConfig *m) {
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    const cJSON *scaling = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (!is_unset(params) && !(cJSON_IsObject(params) && (is_nested(params) || !params->child)))
        return ct_error_set("%s: rope_parameters of gemma3_text must hold a full_attention and a sliding_attention "
                            "block", source);
    if (!is_unset(scaling) && !cJSON_IsObject(scaling))
        return ct_error_set("%s: config key 'rope_scaling' must be an object", source);
    double global, local;
    if (top_theta(root, source, "rope_theta", 1e6, &global) || top_theta(root, source, "rope_local_base_freq", 1e4, &local))
        return -1;
    const cJSON *partial = cJSON_GetObjectItemCaseSensitive(root, "partial_rotary_factor");
    const cJSON *full = is_unset(params) ? NULL : cJSON_GetObjectItemCaseSensitive(params, "full_attention");
    const cJSON *slide = is_unset(params) ? NULL : cJSON_GetObjectItemCaseSensitive(params, "sliding_attention");
    cJSON *merged = full && cJSON_IsObject(full) ? cJSON_Duplicate(full, 1) : cJSON_CreateObject();
    for (const cJSON *e = scaling && cJSON_IsObject(scaling) ? scaling->child : NULL; e; e = e->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(merged, e->string);
        cJSON_AddItemToObject(merged, e->string, cJSON_Duplicate(e, 1));
    }
    Block fb = {source, scaling && scaling->child ? "rope_scaling" : "rope_parameters.full_attention", merged};
    int rc = parse_block(&fb, partial, global, m->max_seq_len, &m->rope_theta, &m->rope_scaling);
    cJSON_Delete(merged);
    if (rc != 0) return -1;
    CtRopeScaling local_scaling;
    Block sb = {source, "rope_parameters.sliding_attention", slide && cJSON_IsObject(slide) ? slide : NULL};
    if (parse_block(&sb, partial, local, m->max_seq_len, &m->rope_local_theta, &local_scaling) != 0) return -1;
    if (local_scaling.type != CT_ROPE_DEFAULT)
        return ct_error_set("%s: rope_parameters.sliding_attention: a scaled RoPE on the sliding layers is not "
                            "supported (ctrain scales the global layers' RoPE only)", source);
    return 0;
}

int ct_hf_rope_parse(const cJSON *root, const char *source, CtModelConfig *m) {
    if (m->family == CT_FAMILY_GEMMA3) return parse_gemma3(root, source, m);
    const char *key = "rope_scaling";
    const cJSON *block = cJSON_GetObjectItemCaseSensitive(root, key);
    if (is_unset(block) || is_empty_object(block)) block = cJSON_GetObjectItemCaseSensitive(root, key = "rope_parameters");
    if (is_unset(block)) block = NULL;
    if (block && !cJSON_IsObject(block)) return ct_error_set("%s: config key '%s' must be an object", source, key);
    if (block && is_nested(block))
        return ct_error_set("%s: %s has a block per layer type, which only gemma3_text reads", source, key);
    double theta;
    // MixtralConfig's default_theta is 1e6; the other families' 1e4
    if (top_theta(root, source, "rope_theta", m->family == CT_FAMILY_MIXTRAL ? 1e6 : 10000.0, &theta) != 0) return -1;
    Block b = {source, key, block};
    if (m->family == CT_FAMILY_PHI3) {  // Phi-3 reads default and longrope only (su and yarn mean longrope)
        const char *type = type_of(&b);
        if (!type) return -1;
        if (strcmp(type, "default") != 0)
            return ct_error_set("%s: %s.rope_type '%s' is not supported: Phi-3 reads it as longrope, which ctrain does "
                                "not compute", source, key, type);
    }
    return parse_block(&b, cJSON_GetObjectItemCaseSensitive(root, "partial_rotary_factor"), theta, m->max_seq_len,
                       &m->rope_theta, &m->rope_scaling);
}

double ct_hf_short_float(float f) {
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    return strtod(buf, NULL);
}

// A block of transformers' shape: rope_type, rope_theta (when theta > 0) and the type's parameters.
static cJSON *block_json(const CtRopeScaling *s, float theta) {
    static const char *const names[] = {"default", "linear", "dynamic", "yarn", "llama3"};
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "rope_type", names[s->type]);
    if (theta > 0) cJSON_AddNumberToObject(b, "rope_theta", ct_hf_short_float(theta));
    if (s->type == CT_ROPE_DEFAULT) return b;
    cJSON_AddNumberToObject(b, "factor", ct_hf_short_float(s->factor));
    if (s->type == CT_ROPE_YARN || s->type == CT_ROPE_LLAMA3)
        cJSON_AddNumberToObject(b, "original_max_position_embeddings", s->original_max_position);
    if (s->type == CT_ROPE_LLAMA3) {
        cJSON_AddNumberToObject(b, "low_freq_factor", ct_hf_short_float(s->low_freq_factor));
        cJSON_AddNumberToObject(b, "high_freq_factor", ct_hf_short_float(s->high_freq_factor));
    }
    if (s->type == CT_ROPE_YARN) {
        cJSON_AddNumberToObject(b, "beta_fast", ct_hf_short_float(s->beta_fast));
        cJSON_AddNumberToObject(b, "beta_slow", ct_hf_short_float(s->beta_slow));
        if (s->mscale > 0) cJSON_AddNumberToObject(b, "mscale", ct_hf_short_float(s->mscale));
        if (s->mscale_all_dim > 0) cJSON_AddNumberToObject(b, "mscale_all_dim", ct_hf_short_float(s->mscale_all_dim));
        if (s->attention_factor > 0)
            cJSON_AddNumberToObject(b, "attention_factor", ct_hf_short_float(s->attention_factor));
        if (!s->truncate) cJSON_AddBoolToObject(b, "truncate", 0);  // transformers' default is true
    }
    return b;
}

void ct_hf_rope_write(cJSON *o, const CtModelConfig *m) {
    const CtRopeScaling *s = &m->rope_scaling;
    if (m->family == CT_FAMILY_GEMMA3) {
        cJSON *params = cJSON_AddObjectToObject(o, "rope_parameters");
        CtRopeScaling plain = {0};
        float local = m->rope_local_theta > 0 ? m->rope_local_theta : m->rope_theta;
        cJSON_AddItemToObject(params, "full_attention", block_json(s, m->rope_theta));
        cJSON_AddItemToObject(params, "sliding_attention", block_json(&plain, local));
        cJSON_AddNumberToObject(o, "rope_local_base_freq", ct_hf_short_float(local));
    } else {
        cJSON_AddItemToObject(o, "rope_parameters", block_json(s, m->rope_theta));
    }
    // transformers 4: the base at the top level, the scaling (without a base) in rope_scaling
    cJSON_AddNumberToObject(o, "rope_theta", ct_hf_short_float(m->rope_theta));
    if (s->type == CT_ROPE_DEFAULT) cJSON_AddNullToObject(o, "rope_scaling");
    else cJSON_AddItemToObject(o, "rope_scaling", block_json(s, 0));
}
