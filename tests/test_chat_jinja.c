// The Jinja subset of models' chat templates (data/examples/jinja.h) and the chat templates of
// kind "jinja" (data/examples/chat_jinja.c): the language's pieces, errors that name the line,
// the loss ranges of each family's real template (tests/data/chat_templates), and, against
// transformers' apply_chat_template (suite chat_ref), the rendered text of every family on a set
// of conversations.
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/examples/chat_template.h"
#include "data/examples/jinja.h"
#include "data/tokenizer/tokenizer_extend.h"
#include "data/tokenizer/tokenizer_files.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "tests/test.h"

// Renders `src` on messages (role, content pairs), NULL-terminated; returns the text (ct_free) or
// NULL with the error in ct_error_message().
static char *render(const char *src, int add_generation_prompt, const char *const *pairs) {
    CtJinja *t = ct_jinja_parse(src, "test.jinja");
    if (!t) return NULL;
    CtJinjaMessage m[16];
    int n = 0;
    for (; pairs && pairs[2 * n]; n++) m[n] = (CtJinjaMessage){pairs[2 * n], pairs[2 * n + 1], strlen(pairs[2 * n + 1])};
    CtJinjaInput in = {m, n, add_generation_prompt, "<s>", "</s>"};
    CtJinjaOutput out;
    int rc = ct_jinja_render(t, &in, &out);
    ct_jinja_free(t);
    if (rc != 0) return NULL;
    ct_free(out.spans);
    return out.text;
}

#define CHECK_RENDERS(src, pairs, expected)                                  \
    do {                                                                     \
        char *got_ = render((src), 0, (pairs));                              \
        CHECK_MSG(got_ != NULL, "%s: %s", (src), ct_error_message());       \
        int same_ = strcmp(got_, (expected)) == 0;                           \
        if (!same_) ct_test_fail(__FILE__, __LINE__, "%s: got \"%s\", expected \"%s\"", (src), got_, (expected)); \
        ct_free(got_);                                                       \
        if (!same_) return;                                                  \
    } while (0)

static const char *const CONV[] = {"system", "Be brief.", "user", " Hi there ", "assistant", "Hello!", NULL};

TEST(chat_jinja, expressions_and_filters) {
    CHECK_RENDERS("{{ 'a' + 'b' ~ 1 ~ none }}", NULL, "ab1None");
    CHECK_RENDERS("{{ messages[0]['role'] }}/{{ messages[1].content|trim }}/{{ messages|length }}", CONV,
                  "system/Hi there/3");
    CHECK_RENDERS("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -1 % 3 }} {{ 2 * 3 + 1 }} {{ 1 / 2 }}", NULL, "3 -4 1 2 7 0.5");
    CHECK_RENDERS("{{ 'abcdef'[1:3] }}{{ 'abc'[::-1] }}{{ 'abcdef'[-2:] }}{{ [1,2,3][::2] }}", NULL, "bccbaef[1, 3]");
    CHECK_RENDERS("{{ 'x' if true else 'y' }}{{ 'x' if false else 'y' }}{{ 'z' if false }}", NULL, "xy");
    CHECK_RENDERS("{{ not false and (1 < 2) or 0 }} {{ 'b' in 'abc' }} {{ 3 not in [1, 2] }} {{ 'k' in {'k': 1} }}", NULL,
                  "True True True True");
    CHECK_RENDERS("{{ undefined_name is defined }} {{ none is none }} {{ 'a' is string }} {{ 1 is string }} "
                  "{{ messages is iterable }} {{ false is false }} {{ x is not defined }}", CONV,
                  "False True True False True True True");
    CHECK_RENDERS("{{ '  pad  '|trim }}|{{ 'Ab'|upper }}{{ 'Ab'|lower }}|{{ missing|default('d') }}|{{ [1, 'a']|tojson }}|"
                  "{{ {'k': [1, 2.5, none, true]}|tojson }}|{{ ['a', 'b']|join(', ') }}|{{ 'é'|length }}",
                  NULL, "pad|ABab|d|[1, \"a\"]|{\"k\": [1, 2.5, null, true]}|a, b|1");
    CHECK_RENDERS("{{ ' x\\n'.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ 'a\\n\\n'.rstrip('\\n') }}|{{ '\\nb'.lstrip() }}|"
                  "{{ 'pre-fix'.startswith('pre') }}{{ 'a.b'.endswith(('.c', '.b')) }}|{{ 'a,b,,c'.split(',') }}|"
                  "{{ ' a  b '.split() }}|{{ '<t>x</t>y'.split('</t>')[-1] }}",
                  NULL, "x|hi|a|b|TrueTrue|['a', 'b', '', 'c']|['a', 'b']|y");
    CHECK_RENDERS("{{ messages|selectattr('role', 'equalto', 'user')|list|length }}{{ messages|map(attribute='role')|join }}",
                  CONV, "1systemuserassistant");
    CHECK_RENDERS("{{ {'a': 1}.items()|list }}{{ {'a': 1}.get('b', 2) }}{{ [3, 4]|first }}{{ 'ab'|last }}", NULL,
                  "[['a', 1]]2" "3b");
}

TEST(chat_jinja, statements_and_whitespace) {
    // trim_blocks and lstrip_blocks as transformers sets them; '-' strips all whitespace.
    CHECK_RENDERS("{% for m in messages %}\n  {% if loop.first %}[{% endif %}{{ loop.index0 }}{{ m.role[0] }}"
                  "{% if not loop.last %},{% else %}]{% endif %}\n{% endfor %}",
                  CONV, "[0s,1u,2a]");
    CHECK_RENDERS("{% for m in messages %}\n  {{ m.role[0] }}\n{% endfor %}", CONV, "  s\n  u\n  a\n");
    CHECK_RENDERS("a  {{- ' b ' -}}  c {#- note -#}  d\n  {%- if true %} e{% endif %}", NULL, "a b cd e");
    CHECK_RENDERS("{% set ns = namespace(n=0, last=none) %}{% for m in messages[::-1] %}{% set ns.n = ns.n + 1 %}"
                  "{% if ns.last is none %}{% set ns.last = m.role %}{% endif %}{% endfor %}{{ ns.n }} {{ ns.last }}",
                  CONV, "3 assistant");
    // set in a loop stays in the loop; set at the top level (and in an if) does not.
    CHECK_RENDERS("{% set x = 1 %}{% for m in messages %}{% set x = 2 %}{% endfor %}{{ x }}"
                  "{% if true %}{% set y = 3 %}{% endif %}{{ y }}", CONV, "13");
    CHECK_RENDERS("{% for m in messages if m.role != 'system' %}{{ loop.index }}{{ m.role }}{{ loop.length }} {% endfor %}"
                  "{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"
                  "{% for x in [] %}no{% else %}empty{% endfor %}",
                  CONV, "1user2 2assistant2 a=1;b=2;empty");
    CHECK_RENDERS("{% if messages[0].role == 'user' %}u{% elif messages[0].role == 'system' %}s{% else %}o{% endif %}"
                  "{{ bos_token }}{{ eos_token }}{% generation %}g{% endgeneration %}",
                  CONV, "s<s></s>g");
}

// Strings are indexed by character and stripped of Python's whitespace, as transformers' are.
TEST(chat_jinja, unicode_strings_and_loop_controls) {
    CHECK_RENDERS("{{ 'h\u00e9llo'[1] }}|{{ '\u00e9t\u00e9'[::-1] }}|{{ '\u4e16\u754cab'[1:3] }}|{{ '\u00e9a'|first }}|"
                  "{{ '\u00e9a'|list|length }}",
                  NULL, "\u00e9|\u00e9t\u00e9|\u754ca|\u00e9|2");
    CHECK_RENDERS("[{{ '\u3000 x\u00a0\u2003'|trim }}]{{ 'a\u00a0b c'.split()|length }}[{{ '\u00e9x\u00e9'.strip('\u00e9') }}]",
                  NULL, "[x]3[x]");
    CHECK_RENDERS("{% for m in messages %}{% if m.role == 'user' %}{% continue %}{% endif %}{{ m.role }};"
                  "{% if loop.index > 2 %}{% break %}{% endif %}{% endfor %}",
                  CONV, "system;assistant;");
    CHECK(render("{% break %}", 0, NULL) == NULL);
    CHECK_CONTAINS(ct_error_message(), "outside a for loop");
}

TEST(chat_jinja, errors_name_the_line) {
    char *out = render("ok\n{{ raise_exception('Roles must alternate') }}", 0, CONV);
    CHECK(out == NULL);
    CHECK_CONTAINS(ct_error_message(), "test.jinja line 2");
    CHECK_CONTAINS(ct_error_message(), "Roles must alternate");
    CHECK(render("a\n\n{% macro f() %}x{% endmacro %}", 0, NULL) == NULL);
    CHECK_CONTAINS(ct_error_message(), "line 3");
    CHECK_CONTAINS(ct_error_message(), "unsupported statement 'macro'");
    CHECK(render("{% if x %}\nno end", 0, NULL) == NULL);
    CHECK_CONTAINS(ct_error_message(), "endif");
    CHECK(render("{{ x | nosuchfilter }}", 0, NULL) == NULL);
    CHECK_CONTAINS(ct_error_message(), "unsupported filter 'nosuchfilter'");
    CHECK(render("{{ 'a' + 1 }}", 0, NULL) == NULL);
    CHECK_CONTAINS(ct_error_message(), "unsupported operand types for +");
    CHECK(render("\n{{ nothing.attr }}", 0, NULL) == NULL);
    CHECK_CONTAINS(ct_error_message(), "line 2: 'nothing' is undefined");
    CHECK(render("{{ 'unclosed }}", 0, NULL) == NULL);
    CHECK_CONTAINS(ct_error_message(), "not closed");
    CHECK(render("{{ messages[] }}", 0, CONV) == NULL);  // (fuzz_jinja found these two)
    CHECK_CONTAINS(ct_error_message(), "empty subscript");
    CHECK(render("{{ 1 is equalto ) }}", 0, NULL) == NULL);
    CHECK_CONTAINS(ct_error_message(), "line 1");
}

// A tokenizer_config.json is input like any other: a hostile or broken template ends with an
// error, never a crash, a stack overflow or memory exhausted.
TEST(chat_jinja, hostile_templates_end_with_an_error) {
    char *src = malloc(200000);
    size_t n = 0;
    n += (size_t)sprintf(src + n, "{{ ");
    for (int k = 0; k < 5000; k++) src[n++] = '(';
    src[n++] = '1';
    for (int k = 0; k < 5000; k++) src[n++] = ')';
    sprintf(src + n, " }}");
    CHECK(render(src, 0, NULL) == NULL);
    CHECK_CONTAINS(ct_error_message(), "nest too deeply");
    n = (size_t)sprintf(src, "{{ 1");
    for (int k = 0; k < 20000; k++) n += (size_t)sprintf(src + n, " + 1");
    sprintf(src + n, " }}");
    CHECK(render(src, 0, NULL) == NULL);  // parsed in a loop, but evaluated recursively
    CHECK_CONTAINS(ct_error_message(), "nests too deeply");
    n = 0;
    for (int k = 0; k < 3000; k++) n += (size_t)sprintf(src + n, "{%% if x %%}");
    CHECK(render(src, 0, NULL) == NULL);
    CHECK_CONTAINS(ct_error_message(), "nest too deeply");
    free(src);
    CHECK(render("{% for i in range(100000000) %}{% endfor %}", 0, NULL) == NULL);
    CHECK_CONTAINS(ct_error_message(), "range() of more than a million");
    CHECK(render("{{ 'ab' * 1000000000 }}", 0, NULL) == NULL);
    CHECK_CONTAINS(ct_error_message(), "memory limit");
    CHECK(render("{% set ns = namespace(s='0123456789abcdef') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
                 "{% endfor %}", 0, NULL) == NULL);
    CHECK_CONTAINS(ct_error_message(), "more than 64 MiB");
    CHECK_RENDERS("{% set ns = namespace(a=1) %}{% set ns.me = ns %}{{ (ns|string)[:22] }} {{ ns == ns }} {{ ns.me|tojson|length > 0 }}",
                  NULL, "<Namespace {'a': 1, 'm True True");
}

// ---- the families' real templates ----

// tests/data/chat_templates, as make test unpacks it (CTRAIN_SHARED).
static const char *template_dir(void) {
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/chat_templates", ct_test_shared_data());
    return dir;
}

static int load_family(CtChatTemplate *t, const char *file, const char *bos, const char *eos) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", template_dir(), file);
    char *src = ct_test_read(path, NULL);
    if (!src) return ct_error_set("%s: cannot read it", path);
    int rc = ct_chat_template_from_jinja(t, src, bos, eos, path);
    free(src);
    return rc;
}

typedef struct {
    const char *file, *bos, *eos, *end_of_turn;
    const char *trained[2];  // the text of each assistant message's loss range in TWO_TURNS
} Family;

static const char *const TWO_TURNS[] = {"user", "Name a colour.", "assistant", " Blue. ", "user", "Another one.",
                                        "assistant", "Green.", NULL};

static const Family FAMILIES[] = {
    {"llama3.jinja", "<|begin_of_text|>", "<|eot_id|>", "<|eot_id|>", {"Blue.<|eot_id|>", "Green.<|eot_id|>"}},
    {"llama3.1.jinja", "<|begin_of_text|>", "<|eot_id|>", "<|eot_id|>", {"Blue.<|eot_id|>", "Green.<|eot_id|>"}},
    {"llama3.2.jinja", "<|begin_of_text|>", "<|eot_id|>", "<|eot_id|>", {"Blue.<|eot_id|>", "Green.<|eot_id|>"}},
    {"qwen2.5.jinja", NULL, "<|im_end|>", "<|im_end|>", {" Blue. <|im_end|>", "Green.<|im_end|>"}},
    // Qwen3 gives the last answer an empty think block: the model writes it, so it is trained.
    {"qwen3.jinja", NULL, "<|im_end|>", "<|im_end|>", {" Blue. <|im_end|>", "<think>\n\n</think>\n\nGreen.<|im_end|>"}},
    // Mistral's separator space before the answer is the answer's (SentencePiece's "▁Blue").
    {"mistral-v1.jinja", "<s>", "</s>", "</s>", {"  Blue. </s>", " Green.</s>"}},
    {"mistral-v3.jinja", "<s>", "</s>", "</s>", {" Blue.</s>", " Green.</s>"}},
    {"mistral-nemo.jinja", "<s>", "</s>", "</s>", {" Blue. </s>", "Green.</s>"}},
    {"gemma2.jinja", "<bos>", "<eos>", "<end_of_turn>", {"Blue.<end_of_turn>", "Green.<end_of_turn>"}},
    {"gemma3.jinja", "<bos>", "<eos>", "<end_of_turn>", {"Blue.<end_of_turn>", "Green.<end_of_turn>"}},
    {"phi3.jinja", "<s>", "<|endoftext|>", "<|end|>", {" Blue. <|end|>", "Green.<|end|>"}},
    {"phi3.5.jinja", "<s>", "<|endoftext|>", "<|end|>", {" Blue. <|end|>", "Green.<|end|>"}},
};

static int to_messages(const char *const *pairs, CtMessage *m) {
    int n = 0;
    for (; pairs[2 * n]; n++) m[n] = (CtMessage){pairs[2 * n], pairs[2 * n + 1], strlen(pairs[2 * n + 1])};
    return n;
}

TEST(chat_jinja, loss_ranges_of_each_family) {
    for (size_t f = 0; f < sizeof FAMILIES / sizeof *FAMILIES; f++) {
        const Family *fam = &FAMILIES[f];
        CtChatTemplate t;
        CHECK_MSG(load_family(&t, fam->file, fam->bos, fam->eos) == 0, "%s", ct_error_message());
        CHECK_STR_EQ(t.end_of_turn, fam->end_of_turn);
        char specials[16][128];
        int n_specials = ct_chat_template_specials(&t, specials, 16);
        CHECK(n_specials >= 1);
        CHECK_STR_EQ(specials[0], fam->end_of_turn);
        if (strstr(fam->file, "qwen")) CHECK_EQ_INT(n_specials, 2);  // <|im_end|>, <|im_start|>
        if (strcmp(fam->file, "llama3.1.jinja") == 0) CHECK_EQ_INT(n_specials, 5);  // + headers, python_tag, eom
        CtMessage m[8];
        int n = to_messages(TWO_TURNS, m);
        for (int agp = 0; agp < 2; agp++) {
            char *text;
            size_t *ranges;
            int n_ranges;
            CHECK_MSG(ct_chat_jinja_render(&t, m, n, agp, &text, &ranges, &n_ranges) == 0, "%s: %s", fam->file,
                      ct_error_message());
            CHECK_EQ_INT(n_ranges, 2);
            for (int k = 0; k < 2; k++) {
                char got[256];
                snprintf(got, sizeof got, "%.*s", (int)(ranges[2 * k + 1] - ranges[2 * k]), text + ranges[2 * k]);
                if (strcmp(got, fam->trained[k]) != 0)
                    ct_test_fail(__FILE__, __LINE__, "%s: range %d is \"%s\", expected \"%s\"", fam->file, k, got,
                                 fam->trained[k]);
            }
            ct_free(text);
            ct_free(ranges);
            if (ct_test_failed()) return;
        }
        // Round trip through the stored JSON form (dataset manifests, checkpoints).
        char *json = ct_chat_template_to_json(&t);
        CtChatTemplate back;
        CHECK_MSG(ct_chat_template_parse(&back, json, "stored") == 0, "%s", ct_error_message());
        CHECK(back.jinja != NULL);
        CHECK_STR_EQ(back.end_of_turn, t.end_of_turn);
        CHECK_STR_EQ(back.jinja_source, t.jinja_source);
        ct_chat_template_free(&back);
        ct_free(json);
        ct_chat_template_free(&t);
    }
}

// Mistral Nemo moves the system message into the last user turn, so the prompt rendered alone
// is not a prefix of the whole: the range starts at the content, and still ends at </s>.
TEST(chat_jinja, loss_range_without_a_prefix_preserving_prompt) {
    CtChatTemplate t;
    CHECK_MSG(load_family(&t, "mistral-nemo.jinja", "<s>", "</s>") == 0, "%s", ct_error_message());
    static const char *const conv[] = {"system", "Sys.", "user", "Q1", "assistant", "A1", "user", "Q2", "assistant", "A2", NULL};
    CtMessage m[8];
    int n = to_messages(conv, m);
    char *text;
    size_t *ranges;
    int n_ranges;
    CHECK_MSG(ct_chat_jinja_render(&t, m, n, 0, &text, &ranges, &n_ranges) == 0, "%s", ct_error_message());
    CHECK_STR_EQ(text, "<s>[INST]Q1[/INST]A1</s>[INST]Q2[/INST]A2</s>");
    CHECK_EQ_INT(n_ranges, 2);
    CHECK_EQ_INT(ranges[0], strlen("<s>[INST]Q1[/INST]"));
    CHECK_EQ_INT(ranges[1], strlen("<s>[INST]Q1[/INST]A1</s>"));
    CHECK_EQ_INT(ranges[3], strlen(text));
    ct_free(text);
    ct_free(ranges);
    // Gemma 2 refuses a system message: the template's own words come back.
    ct_chat_template_free(&t);
    CHECK_MSG(load_family(&t, "gemma2.jinja", "<bos>", "<eos>") == 0, "%s", ct_error_message());
    CHECK(ct_chat_jinja_render(&t, m, n, 0, &text, &ranges, &n_ranges) != 0);
    CHECK_CONTAINS(ct_error_message(), "System role not supported");
    ct_chat_template_free(&t);
}

TEST(chat_jinja, tokenizer_config_and_folder) {
    const char *dir = ct_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    ct_test_write("tokenizer_config.json",
                  "{\"bos_token\": {\"content\": \"<s>\", \"lstrip\": false}, \"eos_token\": \"</s>\", \"chat_template\": "
                  "[{\"name\": \"tool_use\", \"template\": \"x\"}, {\"name\": \"default\", \"template\": "
                  "\"{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}\"}]}");
    CtChatTemplate t;
    CHECK_MSG(ct_chat_template_load(&t, dir) == 0, "%s", ct_error_message());
    CHECK_STR_EQ(t.bos_token, "<s>");
    CHECK_STR_EQ(t.end_of_turn, "</s>");
    ct_chat_template_free(&t);
    // transformers 4.43+ saves the template beside the config: the folder's chat_template.jinja wins
    ct_test_write("chat_template.jinja", "{% for m in messages %}{{ m.content }}<|eot_id|>{% endfor %}");
    CHECK_MSG(ct_chat_template_load(&t, dir) == 0, "%s", ct_error_message());
    CHECK_STR_EQ(t.end_of_turn, "<|eot_id|>");
    CHECK_STR_EQ(t.bos_token, "<s>");
    ct_chat_template_free(&t);
    ct_test_write("t.jinja", "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}<|im_end|>{% endfor %}");
    snprintf(path, sizeof path, "%s/t.jinja", dir);
    CHECK_MSG(ct_chat_template_load(&t, path) == 0, "%s", ct_error_message());
    CHECK_STR_EQ(t.bos_token, "<s>");  // from the tokenizer_config.json beside it
    CHECK_STR_EQ(t.end_of_turn, "<|im_end|>");
    ct_chat_template_free(&t);
    ct_test_write("none.jinja", "{% for m in messages %}{{ m.content }}{% endfor %}");
    snprintf(path, sizeof path, "%s/none.jinja", dir);
    CHECK(ct_chat_template_load(&t, path) != 0);
    CHECK_CONTAINS(ct_error_message(), "end-of-turn");
}

// ---- against transformers ----

static int blank(const char *s, size_t from, size_t to) {
    for (size_t p = from; p < to; p++)
        if (s[p] != ' ' && s[p] != '\n' && s[p] != '\t' && s[p] != '\r') return 0;
    return 1;
}

// Ours [s, e) against transformers' [S, E): the same but for whitespace at either edge (TRL's
// variants keep the newline after the header or after the end of turn inside the span); and, at
// the end of the text, TRL's Phi-3 variant also trains the final eos_token, which ctrain leaves
// out (the turn ends at <|end|>; generation stops there).
static int same_range(const char *text, size_t s, size_t e, size_t S, size_t E, const char *eos) {
    if (!blank(text, s < S ? s : S, s < S ? S : s)) return 0;
    if (blank(text, e < E ? e : E, e < E ? E : e)) return 1;
    size_t len = strlen(text), n = eos ? strlen(eos) : 0;
    return E == len && e < E && n && E - n >= e && strncmp(text + E - n, eos, n) == 0 && blank(text, e, E - n);
}

// The loss ranges against transformers' assistant masks ("masks" of chat_template_ref.py).
// Returns how many conversations were compared (a failure is recorded).
static int compare_masks(const cJSON *root) {
    const cJSON *convs = cJSON_GetObjectItem(root, "conversations"), *mask;
    int compared = 0;
    cJSON_ArrayForEach(mask, cJSON_GetObjectItem(root, "masks")) {
        const char *family = cJSON_GetObjectItem(mask, "family")->valuestring;
        const cJSON *fam = NULL, *f;
        cJSON_ArrayForEach(f, cJSON_GetObjectItem(root, "families")) if (strcmp(cJSON_GetObjectItem(f, "name")->valuestring, family) == 0) fam = f;
        const cJSON *bos = cJSON_GetObjectItem(fam, "bos"), *eos = cJSON_GetObjectItem(fam, "eos");
        const char *eos_text = cJSON_IsString(eos) ? eos->valuestring : NULL;
        CtChatTemplate t;
        if (load_family(&t, cJSON_GetObjectItem(fam, "file")->valuestring, cJSON_IsString(bos) ? bos->valuestring : NULL,
                        eos_text) != 0) {
            ct_test_fail(__FILE__, __LINE__, "%s", ct_error_message());
            return compared;
        }
        int ci = cJSON_GetObjectItem(mask, "conversation")->valueint;
        CtMessage m[16];
        int n = 0;
        const cJSON *msg;
        cJSON_ArrayForEach(msg, cJSON_GetArrayItem(convs, ci)) {
            const char *content = cJSON_GetObjectItem(msg, "content")->valuestring;
            m[n++] = (CtMessage){cJSON_GetObjectItem(msg, "role")->valuestring, content, strlen(content)};
        }
        char *text = NULL;
        size_t *ranges = NULL;
        int n_ranges = 0;
        int ok = ct_chat_jinja_render(&t, m, n, 0, &text, &ranges, &n_ranges) == 0;
        const cJSON *spans = cJSON_GetObjectItem(mask, "spans");
        if (!ok || n_ranges != cJSON_GetArraySize(spans)) {
            ct_test_fail(__FILE__, __LINE__, "%s conversation %d: %d loss ranges, transformers has %d assistant spans %s", family,
                         ci, n_ranges, cJSON_GetArraySize(spans), ok ? "" : ct_error_message());
        }
        for (int k = 0; ok && k < n_ranges && !ct_test_failed(); k++) {
            const cJSON *span = cJSON_GetArrayItem(spans, k);
            size_t S = (size_t)cJSON_GetArrayItem(span, 0)->valuedouble, E = (size_t)cJSON_GetArrayItem(span, 1)->valuedouble;
            size_t s = ranges[2 * k], e = ranges[2 * k + 1];
            if (!same_range(text, s, e, S, E, eos_text))
                ct_test_fail(__FILE__, __LINE__, "%s conversation %d, range %d: ctrain trains \"%.*s\", transformers' mask "
                             "covers \"%.*s\"", family, ci, k, (int)(e - s), text + s, (int)(E - S), text + S);
        }
        ct_free(text);
        ct_free(ranges);
        ct_chat_template_free(&t);
        if (ct_test_failed()) return compared;
        compared++;
    }
    return compared;
}

// For each family, GPT-2's tokenizer with the template's special tokens (its end of turn and
// <|...|> strings, bos, eos, Gemma's <start_of_turn>), written as DIR/<family>.json.
static const char *base_kinds;  // NULL: GPT-2's BPE; else a folder of make_hf_tokenizer_kinds.py's kinds

static const char *kind_of(const char *family) {
    if (strstr(family, "llama")) return "llama3";
    if (strstr(family, "qwen")) return "qwen2";
    if (strstr(family, "mistral")) return "mistral";
    if (strstr(family, "gemma")) return "gemma";
    return "phi3";
}

static int write_family_tokenizers(const char *dir, const cJSON *families) {
    const cJSON *f;
    cJSON_ArrayForEach(f, families) {
        const char *name = cJSON_GetObjectItem(f, "name")->valuestring;
        const cJSON *bos = cJSON_GetObjectItem(f, "bos"), *eos = cJSON_GetObjectItem(f, "eos");
        CtChatTemplate t;
        if (load_family(&t, cJSON_GetObjectItem(f, "file")->valuestring, cJSON_IsString(bos) ? bos->valuestring : NULL,
                        cJSON_IsString(eos) ? eos->valuestring : NULL) != 0)
            return -1;
        char specials[20][128], path[4200];
        const char *names[20];
        int n = ct_chat_template_specials(&t, specials, 16);
        ct_chat_template_free(&t);
        for (int k = 0; k < n; k++) names[k] = specials[k];
        if (cJSON_IsString(bos)) names[n++] = bos->valuestring;
        if (cJSON_IsString(eos)) names[n++] = eos->valuestring;
        if (strstr(name, "gemma")) names[n++] = "<start_of_turn>";
        CtTokenizer tok;
        if (base_kinds) snprintf(path, sizeof path, "%s/%s/tokenizer.json", base_kinds, kind_of(name));
        else snprintf(path, sizeof path, "%s/tokenizers/gpt2", ct_test_shared_data());
        if (ct_tokenizer_load(&tok, path, NULL) != 0 || ct_tokenizer_add_specials(&tok, names, n) < 0) return -1;
        char *json = ct_tokenizer_hf_json(&tok);
        snprintf(path, sizeof path, "%s/%s.json", dir, name);
        FILE *fp = fopen(path, "w");
        fputs(json, fp);
        fclose(fp);
        free(json);
        ct_tokenizer_free(&tok);
    }
    return 0;
}

// ctrain's tokens of a conversation (ct_chat_encode) against transformers' (r's "ids").
static int same_ids(const char *family, const cJSON *r, const CtChatTemplate *t, const CtMessage *m, int n, int agp) {
    static char loaded[64];  // the family whose tokenizer is loaded (renders come family by family)
    static CtTokenizer tok;
    static CtEncoder *enc;
    if (strcmp(loaded, family) != 0) {
        if (loaded[0]) {
            ct_encoder_free(enc);
            ct_tokenizer_free(&tok);
        }
        char path[4200];
        snprintf(path, sizeof path, "%s/tok/%s.json", ct_test_tmpdir(), family);
        if (ct_tokenizer_load(&tok, path, NULL) != 0) return ct_test_fail(__FILE__, __LINE__, "%s", ct_error_message()), 0;
        enc = ct_encoder_new(&tok);
        snprintf(loaded, sizeof loaded, "%s", family);
    }
    CtMaskedIds ids = {0};
    int ok = ct_chat_encode(t, &tok, enc, m, n, agp, &ids) == 0;
    const cJSON *expected = cJSON_GetObjectItem(r, "ids");
    ok = ok && (size_t)cJSON_GetArraySize(expected) == ids.ids.len;
    for (size_t i = 0; ok && i < ids.ids.len; i++) ok = cJSON_GetArrayItem(expected, (int)i)->valueint == ids.ids.data[i];
    if (!ok) {
        char *theirs = cJSON_PrintUnformatted(expected);
        ct_test_fail(__FILE__, __LINE__, "%s conversation %d (generation prompt %d): %zu ids differ from transformers' %s",
                     family, cJSON_GetObjectItem(r, "conversation")->valueint, agp, ids.ids.len, theirs);
        free(theirs);
    }
    ct_masked_ids_free(&ids);
    return ok;
}

static void renders_as_transformers(void);
TEST(chat_ref, renders_as_transformers_apply_chat_template) { renders_as_transformers(); }

// The same with a tokenizer of each family's kind (tests/ref/make_hf_tokenizer_kinds.py: HF's
// trainer in the shape of Llama 3's and Qwen2's byte-level files and of Mistral's, Gemma's and
// Phi-3's SentencePiece-style ones, whose Metaspace prepend, byte fallback and rstrip chat
// tokens the token-to-text alignment of the masks must follow).
TEST(chat_ref, tokenizes_as_transformers_with_each_tokenizer_kind) {
    const char *root = getenv("CTRAIN_ROOT");
    if (!root) SKIP("CTRAIN_ROOT is not set");
    static char kinds[4200];
    snprintf(kinds, sizeof kinds, "%s/kinds", ct_test_tmpdir());
    char cmd[8192], *out = NULL;
    snprintf(cmd, sizeof cmd, "python3 %s/tests/ref/make_hf_tokenizer_kinds.py %s %s", root, ct_test_shared_data(), kinds);
    int rc = ct_test_run(cmd, &out);
    if (rc == 77) SKIP("%s", out);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    base_kinds = kinds;
    renders_as_transformers();
}

static void renders_as_transformers(void) {
    const char *root = getenv("CTRAIN_ROOT"), *dir = ct_test_tmpdir();
    if (!root) SKIP("CTRAIN_ROOT is not set (run through make test)");
    char cmd[8192], *out = NULL;
    // First the families' names (a run without tokenizers), then their tokenizers, then the run.
    snprintf(cmd, sizeof cmd, "python3 %s/tests/ref/chat_template_ref.py %s %s/ref.json", root, template_dir(), dir);
    int rc0 = ct_test_run(cmd, &out);
    if (rc0 == 127 || (out && strncmp(out, "SKIP", 4) == 0)) SKIP("%s", out && *out ? out : "python3 is absent");
    CHECK_MSG(rc0 == 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s/ref.json", dir);
    char *first = ct_test_read(cmd, NULL);
    cJSON *names = cJSON_Parse(first);
    free(first);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/tok", dir);
    CHECK(ct_test_run(cmd, NULL) == 0);
    snprintf(cmd, sizeof cmd, "%s/tok", dir);
    CHECK_MSG(write_family_tokenizers(cmd, cJSON_GetObjectItem(names, "families")) == 0, "%s", ct_error_message());
    cJSON_Delete(names);
    snprintf(cmd, sizeof cmd, "python3 %s/tests/ref/chat_template_ref.py %s %s/ref.json %s/tok", root, template_dir(), dir, dir);
    int rc = ct_test_run(cmd, &out);
    if (rc == 127 || (out && strncmp(out, "SKIP", 4) == 0)) SKIP("%s", out && *out ? out : "python3 is absent");
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s/ref.json", dir);
    char *json = ct_test_read(cmd, NULL);
    cJSON *root_json = cJSON_Parse(json);
    free(json);
    CHECK(root_json != NULL);
    const cJSON *convs = cJSON_GetObjectItem(root_json, "conversations"), *families = cJSON_GetObjectItem(root_json, "families");
    const cJSON *r;
    int compared = 0, refused = 0, tokenized = 0;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(root_json, "renders")) {
        const char *family = cJSON_GetObjectItem(r, "family")->valuestring;
        const cJSON *fam = NULL, *f;
        cJSON_ArrayForEach(f, families) if (strcmp(cJSON_GetObjectItem(f, "name")->valuestring, family) == 0) fam = f;
        const cJSON *bos = cJSON_GetObjectItem(fam, "bos"), *eos = cJSON_GetObjectItem(fam, "eos");
        CtChatTemplate t;
        CHECK_MSG(load_family(&t, cJSON_GetObjectItem(fam, "file")->valuestring, cJSON_IsString(bos) ? bos->valuestring : NULL,
                              cJSON_IsString(eos) ? eos->valuestring : NULL) == 0, "%s", ct_error_message());
        int ci = cJSON_GetObjectItem(r, "conversation")->valueint, agp = cJSON_IsTrue(cJSON_GetObjectItem(r, "add_generation_prompt"));
        CtMessage m[16];
        int n = 0;
        const cJSON *msg;
        cJSON_ArrayForEach(msg, cJSON_GetArrayItem(convs, ci)) {
            const char *content = cJSON_GetObjectItem(msg, "content")->valuestring;
            m[n++] = (CtMessage){cJSON_GetObjectItem(msg, "role")->valuestring, content, strlen(content)};
        }
        char *text;
        size_t *ranges;
        int n_ranges;
        int ok = ct_chat_jinja_render(&t, m, n, agp, &text, &ranges, &n_ranges) == 0;
        const cJSON *expected = cJSON_GetObjectItem(r, "text");
        if (!expected) {
            CHECK_MSG(!ok, "%s conversation %d (generation prompt %d): transformers refuses it (%s), ctrain renders \"%s\"",
                      family, ci, agp, cJSON_GetObjectItem(r, "error")->valuestring, text);
            refused++;
        } else {
            CHECK_MSG(ok, "%s conversation %d (generation prompt %d): %s", family, ci, agp, ct_error_message());
            CHECK_MSG(strcmp(text, expected->valuestring) == 0,
                      "%s conversation %d (generation prompt %d):\n ctrain: \"%s\"\n transformers: \"%s\"", family, ci,
                      agp, text, expected->valuestring);
            if (cJSON_GetObjectItem(r, "ids") && !same_ids(family, r, &t, m, n, agp)) return;
            tokenized += cJSON_GetObjectItem(r, "ids") != NULL;
            ct_free(text);
            ct_free(ranges);
            compared++;
        }
        ct_chat_template_free(&t);
    }
    CHECK(compared >= 120);
    CHECK(refused >= 1);
    CHECK_MSG(tokenized == compared, "%d of %d renderings tokenized", tokenized, compared);
    int masks = compare_masks(root_json);
    cJSON_Delete(root_json);
    CHECK_MSG(masks >= 40, "%d conversations' masks compared", masks);
}
