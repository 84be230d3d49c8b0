#include "train/objectives/grpo_rewards.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/examples/answer_extract.h"
#include "train/objectives/grpo_reward_command.h"
#include "train/objectives/grpo_reward_model.h"

static const char *const KIND_NAMES[] = {"exact_match", "numeric", "regex", "format", "command", "model"};
#define N_KINDS ((int)(sizeof KIND_NAMES / sizeof KIND_NAMES[0]))
#define KNOWN "exact_match, numeric, regex, format, command, model"

int ct_reward_kind_parse(const char *name, CtRewardKind *out) {
    for (int k = 0; k < N_KINDS; k++)
        if (strcmp(name, KIND_NAMES[k]) == 0) {
            *out = (CtRewardKind)k;
            return 0;
        }
    return -1;
}

const char *ct_reward_kind_name(CtRewardKind kind) {
    return (int)kind >= 0 && (int)kind < N_KINDS ? KIND_NAMES[kind] : "?";
}

// ---- configuration ----

// The comma-separated items of `list`, white space around each removed, into items[] (copies
// in one block at *block). Their count, or -1 when there are more than max.
static int split_list(const char *list, char **block, char **items, int max) {
    char *s = *block = ct_strdup(list);
    int n = 0;
    for (char *p = s;; n++) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        while (isspace((unsigned char)*p)) p++;
        size_t len = strlen(p);
        while (len > 0 && isspace((unsigned char)p[len - 1])) p[--len] = '\0';
        if (n == max) return -1;
        items[n] = p;
        if (!comma) return n + 1;
        p = comma + 1;
    }
}

static int parse_funcs(CtRewards *r, const char *funcs) {
    if (!funcs || !*funcs) return ct_error_set("grpo.reward_funcs is empty: list at least one of " KNOWN);
    char *block, *items[CT_REWARDS_MAX];
    int n = split_list(funcs, &block, items, CT_REWARDS_MAX), rc = 0;
    if (n < 0) rc = ct_error_set("grpo.reward_funcs '%s': more than %d reward functions", funcs, CT_REWARDS_MAX);
    for (int i = 0; i < n && rc == 0; i++) {
        if (!*items[i]) rc = ct_error_set("grpo.reward_funcs '%s': an empty name (item %d)", funcs, i + 1);
        else if (ct_reward_kind_parse(items[i], &r->kind[i]) != 0)
            rc = ct_error_set("grpo.reward_funcs: unknown reward function '%s' (known: " KNOWN ")", items[i]);
        for (int k = 0; k < i && rc == 0; k++)
            if (r->kind[k] == r->kind[i]) rc = ct_error_set("grpo.reward_funcs '%s': '%s' is listed twice", funcs, items[i]);
    }
    ct_free(block);
    r->n = rc == 0 ? n : 0;
    return rc;
}

static int parse_weights(CtRewards *r, const char *weights) {
    for (int i = 0; i < r->n; i++) r->weight[i] = 1.0;
    if (!weights || !*weights) return 0;
    char *block, *items[CT_REWARDS_MAX];
    const int n = split_list(weights, &block, items, CT_REWARDS_MAX);
    int rc = 0;
    if (n != r->n)
        rc = ct_error_set("grpo.reward_weights '%s': %s%d weight%s for %d reward function%s (grpo.reward_funcs): give "
                          "one per function, in its order", weights, n < 0 ? "more than " : "",
                          n < 0 ? CT_REWARDS_MAX : n, n == 1 ? "" : "s", r->n, r->n == 1 ? "" : "s");
    for (int i = 0; i < n && rc == 0; i++) {
        char *end;
        const double w = strtod(items[i], &end);
        if (!*items[i] || *end || !isfinite(w))
            rc = ct_error_set("grpo.reward_weights '%s': '%s' is not a number", weights, items[i]);
        r->weight[i] = w;
    }
    ct_free(block);
    return rc;
}

static int has_kind(const CtRewards *r, CtRewardKind kind) {
    for (int i = 0; i < r->n; i++)
        if (r->kind[i] == kind) return 1;
    return 0;
}

static int compile_regex(CtRewards *r, const char *pattern) {
    if (!pattern || !*pattern)
        return ct_error_set("grpo.reward_regex is empty: the regex reward (grpo.reward_funcs) needs a pattern");
    regex_t *re = ct_alloc(sizeof *re);
    const int code = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB);
    if (code != 0) {
        char why[256];
        regerror(code, re, why, sizeof why);
        ct_free(re);
        return ct_error_set("grpo.reward_regex '%.80s': not a POSIX extended regular expression: %s", pattern, why);
    }
    r->regex = re;
    r->has_regex = 1;
    return 0;
}

static int open_model(CtRewards *r, const CtRewardsConfig *c) {
    if (!c->model || !*c->model)
        return ct_error_set("grpo.reward_model is empty: the model reward (grpo.reward_funcs) needs a reward-model "
                            "checkpoint (ctrain reward)");
    r->model = ct_alloc(sizeof *r->model);
    if (ct_reward_model_open(r->model, c->model, c->vocab_size, c->tokenizer_hash, c->model_batch,
                             c->model_max_tokens) != 0) {
        ct_free(r->model);
        r->model = NULL;
        return ct_error_prefix("grpo.reward_model: ");
    }
    return 0;
}

int ct_rewards_init(CtRewards *r, const CtRewardsConfig *c) {
    memset(r, 0, sizeof *r);
    if (parse_funcs(r, c->funcs) != 0 || parse_weights(r, c->weights) != 0) return -1;
    if (!(c->numeric_tolerance >= 0) || !isfinite(c->numeric_tolerance))
        return ct_error_set("grpo.numeric_tolerance must be a number ≥ 0 (got %g)", c->numeric_tolerance);
    r->numeric_tolerance = c->numeric_tolerance;
    r->answer_field = ct_strdup(c->answer_field && *c->answer_field ? c->answer_field : "answer");
    int rc = 0;
    if (has_kind(r, CT_REWARD_REGEX)) rc = compile_regex(r, c->regex);
    if (rc == 0 && has_kind(r, CT_REWARD_COMMAND)) {
        if (!c->command || !*c->command)
            rc = ct_error_set("grpo.reward_command is empty: the command reward (grpo.reward_funcs) needs a command line");
        else
            r->command = ct_strdup(c->command);
    }
    if (rc == 0 && has_kind(r, CT_REWARD_MODEL)) rc = open_model(r, c);
    if (rc != 0) ct_rewards_free(r);
    return rc;
}

void ct_rewards_free(CtRewards *r) {
    if (r->has_regex) regfree(r->regex);
    ct_free(r->regex);
    if (r->model) ct_reward_model_close(r->model);
    ct_free(r->model);
    ct_free(r->command);
    ct_free(r->answer_field);
    memset(r, 0, sizeof *r);
}

int ct_rewards_count(const CtRewards *r) { return r->n; }
const char *ct_rewards_name(const CtRewards *r, int i) { return ct_reward_kind_name(r->kind[i]); }
double ct_rewards_weight(const CtRewards *r, int i) { return r->weight[i]; }
CtRewardKind ct_rewards_kind(const CtRewards *r, int i) { return r->kind[i]; }

size_t ct_rewards_model_bytes(const CtRewards *r) {
    return r->model ? r->model->model.n_params * sizeof(float) + r->model->model.activation_bytes : 0;
}

// ---- the ground truth ----

static const char *skip_space(const char *p) {
    while (isspace((unsigned char)*p)) p++;
    return p;
}

// The text of the first member `name` of the JSON object `fields`, as the fields spell it:
// [*from, *to). 0, or -1 when there is none. cJSON finds where each key and value ends.
static int member_text(const char *fields, const char *name, const char **from, const char **to) {
    const char *p = skip_space(fields), *end;
    if (*p++ != '{') return -1;
    for (;;) {
        p = skip_space(p);
        cJSON *key = *p == '"' ? cJSON_ParseWithOpts(p, &end, 0) : NULL;
        const int is_key = cJSON_IsString(key), same = is_key && strcmp(key->valuestring, name) == 0;
        cJSON_Delete(key);
        if (!is_key) return -1;
        p = skip_space(end);
        if (*p++ != ':') return -1;
        p = skip_space(p);
        cJSON *value = cJSON_ParseWithOpts(p, &end, 0);
        const int parsed = value != NULL;
        cJSON_Delete(value);
        if (!parsed) return -1;
        if (same) {
            *from = p, *to = end;
            return 0;
        }
        p = skip_space(end);
        if (*p++ != ',') return -1;
    }
}

// Completion j's ground truth (free with ct_free): the answer field, a string's text or a number
// as the fields spell it. NULL + error naming the field, the completion and the source.
static char *ground_truth(const CtRewards *r, const CtRewardInput *in, int j, CtRewardKind kind) {
    const char *fields = in->fields && *in->fields ? in->fields : "{}";
    cJSON *root = cJSON_Parse(fields);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, r->answer_field);
    const char *from, *to;
    char *out = NULL;
    if (!cJSON_IsObject(root)) {
        ct_error_set("completion %d: its prompt's fields are not a JSON object (%s reads grpo.answer_field '%s' there)",
                     j, ct_reward_kind_name(kind), r->answer_field);
    } else if (!v) {
        ct_error_set("grpo.answer_field '%s': the fields of completion %d's prompt have no such member (%s compares "
                     "with it); the prompts need it, or name another field", r->answer_field, j, ct_reward_kind_name(kind));
    } else if (cJSON_IsString(v)) {
        out = ct_strdup(v->valuestring);
    } else if (cJSON_IsNumber(v) && member_text(fields, r->answer_field, &from, &to) == 0) {
        out = ct_alloc((size_t)(to - from) + 1);
        memcpy(out, from, (size_t)(to - from));
        out[to - from] = '\0';
    } else {
        ct_error_set("grpo.answer_field '%s': completion %d's prompt has a value that is neither a string nor a number "
                     "there (%s compares with it)", r->answer_field, j, ct_reward_kind_name(kind));
    }
    cJSON_Delete(root);
    return out;
}

// The whole of s (white space around it allowed) as one finite number. 0, or -1.
static int read_number(const char *s, double *out) {
    char *end;
    s = skip_space(s);
    const double v = strtod(s, &end);
    if (end == s || *skip_space(end) || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

// ---- the rules ----

static double exact_match(const char *answer, const char *truth) { return ct_answer_matches(answer, truth) ? 1.0 : 0.0; }

static double numeric(const CtRewards *r, const char *answer, double truth) {
    double x;
    if (read_number(answer, &x) != 0) return 0.0;
    return fabs(x - truth) <= r->numeric_tolerance * fmax(1.0, fabs(truth)) ? 1.0 : 0.0;
}

// Where `tag` first occurs in s at or after from, or NULL.
static const char *find_tag(const char *from, const char *tag) { return strstr(from, tag); }

// Whether s[0..end) holds `tag`.
static int holds(const char *s, const char *end, const char *tag) {
    const char *at = strstr(s, tag);
    return at && at + strlen(tag) <= end;
}

// The shape "<think>A</think> <answer>B</answer>" with white space around the blocks.
static int has_r1_shape(const char *c) {
    c = skip_space(c);
    if (strncmp(c, "<think>", 7) != 0) return 0;
    const char *a = c + 7, *a_end = find_tag(a, "</think>");
    if (!a_end || holds(a, a_end, "<think>")) return 0;
    const char *b = skip_space(a_end + 8);
    if (strncmp(b, "<answer>", 8) != 0) return 0;
    b += 8;
    const char *b_end = find_tag(b, "</answer>");
    if (!b_end || holds(b, b_end, "<answer>")) return 0;
    return *skip_space(b_end + 9) == '\0';
}

// Whether the prompt ends inside a thinking block the chat template opened: "<think>" and
// nothing but white space after it.
static int prompt_opens_think(const char *prompt) {
    size_t n = prompt ? strlen(prompt) : 0;
    while (n > 0 && isspace((unsigned char)prompt[n - 1])) n--;
    return n >= 7 && memcmp(prompt + n - 7, "<think>", 7) == 0;
}

int ct_reward_format_ok(const char *prompt, const char *completion) {
    if (!prompt_opens_think(prompt) || strncmp(skip_space(completion), "<think>", 7) == 0) return has_r1_shape(completion);
    char *whole = ct_alloc(strlen(completion) + 8);
    memcpy(whole, "<think>", 7);
    strcpy(whole + 7, completion);
    const int ok = has_r1_shape(whole);
    ct_free(whole);
    return ok;
}

// exact_match or numeric for every completion into out. 0, or -1 + error.
static int score_answers(const CtRewards *r, CtRewardKind kind, const CtRewardInput *in, int n, double *out) {
    for (int j = 0; j < n; j++) {
        char *truth = ground_truth(r, &in[j], j, kind);
        if (!truth) return -1;
        double y = 0;
        if (kind == CT_REWARD_NUMERIC && read_number(truth, &y) != 0) {
            ct_error_set("grpo.answer_field '%s': completion %d's prompt has '%.40s' there, not a number (numeric "
                         "compares numbers)", r->answer_field, j, truth);
            ct_free(truth);
            return -1;
        }
        const char *completion = in[j].completion ? in[j].completion : "";
        char *answer = ct_extract_answer(completion, strlen(completion));
        out[j] = kind == CT_REWARD_NUMERIC ? numeric(r, answer, y) : exact_match(answer, truth);
        ct_free(answer);
        ct_free(truth);
    }
    return 0;
}

static int score_source(CtRewards *r, int i, const CtRewardInput *in, int n, double *out) {
    switch (r->kind[i]) {
    case CT_REWARD_EXACT_MATCH:
    case CT_REWARD_NUMERIC: return score_answers(r, r->kind[i], in, n, out);
    case CT_REWARD_REGEX:
        for (int j = 0; j < n; j++) out[j] = regexec(r->regex, in[j].completion ? in[j].completion : "", 0, NULL, 0) == 0;
        return 0;
    case CT_REWARD_FORMAT:
        for (int j = 0; j < n; j++) out[j] = ct_reward_format_ok(in[j].prompt, in[j].completion ? in[j].completion : "");
        return 0;
    case CT_REWARD_COMMAND: return ct_reward_command_run(r->command, in, n, out);
    case CT_REWARD_MODEL:
        return ct_reward_model_score(r->model, in, n, out) == 0 ? 0 : ct_error_prefix("grpo.reward_model: ");
    }
    return ct_error_set("reward source %d of an unknown kind", i);
}

int ct_rewards_score(CtRewards *r, const CtRewardInput *in, int n, double *per_source, double *total) {
    if (n <= 0) return 0;
    double *scores = per_source ? per_source : ct_calloc((size_t)r->n * (size_t)n + 1, sizeof(double));
    int rc = 0;
    for (int i = 0; i < r->n && rc == 0; i++) rc = score_source(r, i, in, n, scores + (size_t)i * n);
    for (int j = 0; j < n && rc == 0; j++) {  // TRL: (rewards_per_func · weights).nansum(dim=1), in source order
        double sum = 0;
        for (int i = 0; i < r->n; i++) sum += r->weight[i] * scores[(size_t)i * n + j];
        total[j] = sum;
    }
    if (!per_source) ct_free(scores);
    return rc;
}
