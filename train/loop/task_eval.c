#include "train/loop/task_eval.h"

#include <cJSON.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/examples/answer_extract.h"
#include "data/input/input_reader.h"
#include "data/input/utf8.h"
#include "train/model/generate.h"

int ct_task_prompts_read(CtTaskPrompts *p, const char *path, long max_examples) {
    memset(p, 0, sizeof *p);
    CtLineReader r;
    if (ct_line_reader_open(&r, path) != 0) return -1;
    p->path = ct_alloc(strlen(path) + 1);
    memcpy(p->path, path, strlen(path) + 1);
    int cap = 0, rc = 0;
    const char *line;
    size_t len;
    while ((max_examples == 0 || p->n < max_examples) && (rc = ct_line_reader_next(&r, &line, &len, NULL)) == 1) {
        size_t blank = 0;
        while (blank < len && (line[blank] == ' ' || line[blank] == '\t' || line[blank] == '\r')) blank++;
        if (blank == len) continue;
        if (p->n == cap) {
            cap = cap ? 2 * cap : 256;
            p->items = ct_realloc(p->items, sizeof *p->items * (size_t)cap);
            p->line_no = ct_realloc(p->line_no, sizeof *p->line_no * (size_t)cap);
        }
        if (ct_parse_task_prompt(line, len, &p->items[p->n]) != 0) {
            ct_error_prefix("%s:%llu: ", path, (unsigned long long)r.line_no);
            rc = -1;
            break;
        }
        p->line_no[p->n++] = (long)r.line_no;
    }
    ct_line_reader_close(&r);
    if (rc == 0 && p->n == 0) rc = ct_error_set("%s: no prompt in the file (JSON lines with \"prompt\" or \"messages\" "
                                                "and \"answer\")", path);
    if (rc < 0) {
        ct_task_prompts_free(p);
        return -1;
    }
    return 0;
}

int ct_task_prompts_encode(CtTaskPrompts *p, const CtTokenizer *tok, const CtChatTemplate *template, int max_ctx) {
    CtEncoder *enc = ct_encoder_new(tok);
    p->offsets = ct_alloc(sizeof *p->offsets * (size_t)(p->n + 1));
    p->offsets[0] = 0;
    int rc = 0;
    for (int i = 0; i < p->n && rc == 0; i++) {
        rc = ct_encode_prompt(template, tok, enc, &p->items[i], "a checkpoint with a chat template; this one has none",
                              &p->ids);
        p->offsets[i + 1] = p->ids.len;
        const size_t n = p->offsets[i + 1] - p->offsets[i];
        if (rc == 0 && n >= (size_t)max_ctx)
            rc = ct_error_set("the prompt is %zu tokens and the model's context is %d: no room to answer", n, max_ctx);
        if (rc != 0) ct_error_prefix("%s:%ld: ", p->path, p->line_no[i]);
    }
    ct_encoder_free(enc);
    return rc;
}

void ct_task_prompts_free(CtTaskPrompts *p) {
    for (int i = 0; i < p->n; i++) ct_task_prompt_free(&p->items[i]);
    ct_free(p->items);
    ct_free(p->line_no);
    ct_free(p->path);
    ct_free(p->offsets);
    ct_ids_free(&p->ids);
    memset(p, 0, sizeof *p);
}

// The completion's text as UTF-8 (a model may end in the middle of a character, or emit bytes that
// are none): each invalid byte becomes U+FFFD, so the results file is valid JSON. NUL-terminated.
static char *valid_utf8(const uint8_t *s, size_t n) {
    char *out = ct_alloc(3 * n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = ct_utf8_decode(s + i, n - i, &cp);
        if (cp == CT_UTF8_INVALID || cp == 0) {
            o += ct_utf8_encode(cp == 0 ? 0x2400 : 0xFFFD, (uint8_t *)out + o);  // NUL as ␀: a C string holds none
        } else {
            memcpy(out + o, s + i, k);
            o += k;
        }
        i += k;
    }
    out[o] = '\0';
    return out;
}

typedef enum { STOPPED_TOKEN, STOPPED_MAX_TOKENS, STOPPED_CONTEXT } Stopped;
static const char *const stopped_names[] = {"stop_token", "max_tokens", "context"};

// The greedy answer to the prompt ids[0..n): its tokens in *answer (without the stop token).
static Stopped greedy_answer(CtGenerator *g, const CtTaskEvalSetup *s, const int32_t *ids, size_t n, CtIds *answer) {
    ct_generator_reset(g);
    const float *logits = NULL;
    if (n > 0) logits = ct_generator_feed_prompt(g, ids, (int)n);
    const CtSampling greedy = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f};
    const int V = s->model->config.vocab_size;
    answer->len = 0;
    for (;;) {
        if ((int)answer->len >= s->max_new_tokens) return STOPPED_MAX_TOKENS;
        const int32_t next = ct_sample(logits, V, &greedy, NULL);
        if (ct_stop_tokens_has(s->stop, next)) return STOPPED_TOKEN;
        ct_ids_push(answer, next);
        if (g->n_ctx >= g->max_ctx) return STOPPED_CONTEXT;
        logits = ct_generator_feed(g, next);
    }
}

static void write_result(FILE *f, const CtTaskPrompts *p, int i, const char *completion, const char *extracted,
                         int correct, Stopped stopped) {
    const CtTaskPrompt *t = &p->items[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "line", (double)p->line_no[i]);
    cJSON_AddItemToObject(o, t->prompt_key,
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive((cJSON *)t->root, t->prompt_key), 1));
    cJSON_AddStringToObject(o, "completion", completion);
    cJSON_AddStringToObject(o, "extracted", extracted);
    cJSON_AddStringToObject(o, "answer", t->answer);
    cJSON_AddBoolToObject(o, "correct", correct);
    cJSON_AddStringToObject(o, "stopped", stopped_names[stopped]);
    char *text = cJSON_PrintUnformatted(o);
    fputs(text, f);
    fputc('\n', f);
    cJSON_free(text);
    cJSON_Delete(o);
}

int ct_task_eval_run(const CtTaskEvalSetup *s, const CtTaskPrompts *p, FILE *results, CtTaskEvalTotals *totals) {
    memset(totals, 0, sizeof *totals);
    CtGenerator g;
    ct_generator_init(&g, s->model, s->model->config.max_seq_len);
    CtProgress bar;
    if (s->progress) ct_progress_start(&bar, "eval", (uint64_t)p->n, "prompts");
    const int32_t tok_vocab = ct_tokenizer_vocab_size(s->tok);
    CtIds answer = {0}, printable = {0};
    uint8_t *bytes = NULL;
    size_t cap = 0;
    int rc = 0;
    for (int i = 0; i < p->n && rc == 0; i++) {
        const Stopped stopped =
            greedy_answer(&g, s, p->ids.data + p->offsets[i], p->offsets[i + 1] - p->offsets[i], &answer);
        printable.len = 0;  // ids past the tokenizer's vocabulary (a padded embedding) have no text
        for (size_t k = 0; k < answer.len; k++)
            if (answer.data[k] < tok_vocab) ct_ids_push(&printable, answer.data[k]);
        size_t len = 0;
        if (ct_decode_text(s->tok, printable.data, printable.len, &bytes, &len, &cap) != 0) {
            rc = -1;
            break;
        }
        char *completion = valid_utf8(bytes, len);
        char *extracted = ct_extract_answer(completion, strlen(completion));
        const int correct = ct_answer_matches(extracted, p->items[i].answer);
        totals->examples++;
        totals->correct += correct;
        totals->cut_short += stopped != STOPPED_TOKEN;
        if (results) write_result(results, p, i, completion, extracted, correct, stopped);
        ct_free(extracted);
        ct_free(completion);
        if (s->progress) ct_progress_update(&bar, (uint64_t)i + 1);
    }
    if (s->progress) ct_progress_finish(&bar);
    ct_free(bytes);
    ct_ids_free(&answer);
    ct_ids_free(&printable);
    ct_generator_free(&g);
    if (rc == 0 && results && (fflush(results) != 0 || ferror(results)))
        rc = ct_error_errno("writing the results failed");
    return rc;
}
