// PEFT's module matching rules for LoRA targets. See train/model/lora_targets.h.
#include "train/model/lora_targets.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/pyregex.h"
#include "train/model/model_config.h"

int ct_lora_name_matches(const char *full, const char *entry) {
    size_t nf = strlen(full), ne = strlen(entry);
    if (nf == ne) return strcmp(full, entry) == 0;
    return nf > ne && full[nf - ne - 1] == '.' && strcmp(full + nf - ne, entry) == 0;
}

int ct_lora_is_all_linear(const char *targets) { return strcasecmp(targets, "all-linear") == 0; }

// "<digits>." at p: the number, or -1.
static int index_at(const char *p) {
    if (!isdigit((unsigned char)*p)) return -1;
    char *end;
    long v = strtol(p, &end, 10);
    return *end == '.' && v < (1L << 30) ? (int)v : -1;
}

int ct_lora_layer_index(const char *full, const char *layers_pattern) {
    if (!layers_pattern[0]) {
        // re.match(r".*?\.[^.]*\.(?P<idx>\d+)\.", key): the first ".<segment>.<digits>."
        for (const char *dot = strchr(full, '.'); dot; dot = strchr(dot + 1, '.')) {
            const char *next = strchr(dot + 1, '.');
            if (!next) break;
            int idx = index_at(next + 1);
            if (idx >= 0) return idx;
        }
        return -1;
    }
    // each pattern in turn: re.match(rf"(?:^|.*?\.){pattern}\.(?P<idx>\d+)\.", key), the first start that fits
    for (const char *p = layers_pattern; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char pattern[256];
        snprintf(pattern, sizeof pattern, "%.*s", (int)len, p);
        CtPyRegex re;
        if (pattern[0] && ct_pyregex_compile(&re, pattern) == 0) {
            size_t n = strlen(full);
            char *piece = ct_alloc(n + 1);
            int found = -1;
            for (size_t s = 0; s < n && found < 0; s++) {
                if (s > 0 && full[s - 1] != '.') continue;  // a start: the name's, or after a '.'
                for (size_t e = s; e < n && found < 0; e++) {
                    if (full[e] != '.') continue;
                    int idx = index_at(full + e + 1);
                    if (idx < 0) continue;
                    memcpy(piece, full + s, e - s);
                    piece[e - s] = '\0';
                    if (ct_pyregex_fullmatch(&re, piece)) found = idx;
                }
            }
            ct_free(piece);
            ct_pyregex_free(&re);
            if (found >= 0) return found;
        }
        p += len + (comma ? 1 : 0);
    }
    return -1;
}

static int in_layers(const CtLoraSpec *spec, int layer) {
    for (int i = 0; i < spec->n_layers; i++)
        if (spec->layers[i] == layer) return 1;
    return 0;
}

int ct_lora_target_matches(const CtLoraSpec *spec, const char *full, int *match) {
    *match = 0;
    if (spec->target_regex[0]) return ct_pyregex_fullmatch_once(spec->target_regex, full, match);
    int suffix = 0;
    for (const char *p = spec->targets; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char entry[512];
        snprintf(entry, sizeof entry, "%.*s", (int)len, p);
        if (strcmp(full, entry) == 0) {  // named exactly: taken whatever layers_to_transform says
            *match = 1;
            return 0;
        }
        if (ct_lora_name_matches(full, entry)) suffix = 1;
        p += len + (comma ? 1 : 0);
    }
    if (suffix && spec->n_layers > 0) {
        int layer = ct_lora_layer_index(full, spec->layers_pattern);
        suffix = layer >= 0 && in_layers(spec, layer);
    }
    *match = suffix;
    return 0;
}

// PEFT's get_pattern_key: the first key that matches the name as (.*\.)?(key), or NULL.
static int pattern_value(const CtLoraPattern *patterns, int n, const char *full, const CtLoraPattern **found) {
    *found = NULL;
    for (int i = 0; i < n && !*found; i++) {
        char regex[300];
        snprintf(regex, sizeof regex, "(.*\\.)?(%s)", patterns[i].key);
        int match;
        if (ct_pyregex_fullmatch_once(regex, full, &match) != 0) return -1;
        if (match) *found = &patterns[i];
    }
    return 0;
}

int ct_lora_module_rank_alpha(const CtLoraSpec *spec, const char *full, int *r, double *alpha) {
    const CtLoraPattern *pr, *pa;
    if (pattern_value(spec->rank_pattern, spec->n_rank_pattern, full, &pr) != 0 ||
        pattern_value(spec->alpha_pattern, spec->n_alpha_pattern, full, &pa) != 0)
        return -1;
    *r = pr ? (int)pr->value : spec->r;
    *alpha = pa ? pa->value : spec->alpha;
    return 0;
}

// The modules LoRA cannot adapt, by name: PEFT would put an adapter on them when targeted.
// An encoder's: its embeddings, and the linear layers outside the blocks that it has and PEFT would
// adapt when named (BERT's pooler, the MLM head's transform and decoder).
int ct_lora_outside_blocks(const CtModelConfig *c, const char *entry, int regex, int *hit) {
    static const char *const gpt2[] = {"transformer.wte", "transformer.wpe", "lm_head"};
    static const char *const llama[] = {"model.embed_tokens", "lm_head"};
    const char *names[8];
    int n = 0;
    if (ct_model_is_encoder(c)) {
        const int rob = c->arch == CT_ARCH_ROBERTA;
        names[n++] = rob ? "roberta.embeddings.word_embeddings" : "bert.embeddings.word_embeddings";
        names[n++] = rob ? "roberta.embeddings.position_embeddings" : "bert.embeddings.position_embeddings";
        names[n++] = rob ? "roberta.embeddings.token_type_embeddings" : "bert.embeddings.token_type_embeddings";
        if (c->pooler) names[n++] = rob ? "roberta.pooler.dense" : "bert.pooler.dense";
        if (!c->num_labels) {
            names[n++] = rob ? "lm_head.dense" : "cls.predictions.transform.dense";
            names[n++] = rob ? "lm_head.decoder" : "cls.predictions.decoder";
        }
    } else {
        for (int i = 0, g = c->arch == CT_ARCH_GPT2; i < (g ? 3 : 2); i++) names[n++] = g ? gpt2[i] : llama[i];
    }
    *hit = 0;
    for (int i = 0; i < n && !*hit; i++) {
        if (regex) {
            if (ct_pyregex_fullmatch_once(entry, names[i], hit) != 0) return -1;
        } else {
            *hit = ct_lora_name_matches(names[i], entry);
        }
    }
    return 0;
}
