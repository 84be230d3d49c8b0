#include "train/objectives/mlm.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "train/dist/dist.h"

int ct_mlm_run_init(CtMlmRun *st, const CtTokenizer *tok, int32_t vocab, const CtMlmRates *rates) {
    memset(st, 0, sizeof *st);
    st->last_acc = st->last_val_acc = st->unigram_acc = NAN;
    st->unigram_id = -1;
    if (!tok)
        return ct_error_set("mlm: the dataset has no tokenizer (tokenizer.json, or data.tokenizer): masked-language "
                            "modelling needs its mask token and its special tokens");
    if (ct_mlm_masking_init(&st->masking, tok, vocab, rates) != 0) return -1;
    st->have_masking = 1;
    return 0;
}

int64_t ct_mlm_mask_micro_batch(const CtMlmMasking *mm, CtStepBatches *s, int a, uint64_t run_seed, uint64_t stream,
                                int64_t first_row) {
    const int T = s->T;
    int64_t n = 0;
    for (int i = 0; i < s->rows; i++) {
        const size_t at = ((size_t)a * s->rows + (size_t)i) * (size_t)T;
        const uint64_t seed = ct_mlm_row_seed(run_seed, stream, (uint64_t)(first_row + i));
        n += ct_mlm_mask_row(mm, seed, s->tokens + at, s->doc_ids + at, T, s->targets + at, s->loss_mask + at);
    }
    s->total += n - s->counts[a];
    s->counts[a] = n;
    return n;
}

// Rows of logits [n, V] whose largest entry is their target (rows with target −1 skipped).
static int64_t count_correct(const float *logits, const int32_t *targets, int n, int V) {
    int64_t correct = 0;
    for (int k = 0; k < n; k++) {
        if (targets[k] < 0) continue;
        const float *z = logits + (size_t)k * V;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (z[v] > z[best]) best = v;
        correct += best == targets[k];
    }
    return correct;
}

int64_t ct_mlm_correct(CtModel *m, const int32_t *targets, int n) {
    const CtOps *ops = m->ops;
    const int V = m->config.vocab_size;
    if (ops->host_memory && ops->act_bytes == sizeof(float)) return count_correct(m->act.logits, targets, n, V);
    // A device's logits come back in chunks of rows (16 MB), only those holding a selected
    // position: all of them at once would take a float copy of B·T·V on both sides (2 GB for
    // BERT-base's 30,522 tokens at 32 x 512). (A device-side argmax would spare the copy.)
    const int rows = V < (1 << 22) ? (1 << 22) / V : 1;
    float *chunk = ct_alloc(sizeof(float) * (size_t)rows * (size_t)V);
    int64_t correct = 0;
    for (int r0 = 0; r0 < n; r0 += rows) {
        const int r1 = n - r0 < rows ? n : r0 + rows;
        int any = 0;
        for (int k = r0; k < r1 && !any; k++) any = targets[k] >= 0;
        if (!any) continue;
        ops->download_act(chunk, ct_act_at(ops->act_bytes, m->act.logits, (size_t)r0 * V), (size_t)(r1 - r0) * V);
        correct += count_correct(chunk, targets + r0, r1 - r0, V);
    }
    ct_free(chunk);
    return correct;
}

static CtStepResult step(CtObjectiveRun *o) {
    CtMlmRun *st = o->state;
    CtStepBatches *s = o->batches;
    CtModel *m = o->model;
    // Row i of micro-batch a on rank r is row a·world·B + r·B + i of the step, however the step is
    // cut into ranks and micro-batches.
    const int64_t global_rows = (int64_t)o->set.world * s->rows, first_row = (int64_t)ct_dist_rank() * s->rows;
    for (int a = 0; a < o->set.accum; a++)
        ct_mlm_mask_micro_batch(&st->masking, s, a, o->set.seed, ct_mlm_train_stream((uint64_t)*o->step),
                                a * global_rows + first_row);
    int64_t total = s->total;  // data parallel: the mean is over every rank's selected tokens
    ct_dist_allreduce_sum_i64(&total, 1);
    ct_step_batches_normalise(s, total);
    ct_objective_set_router_losses(o);
    CtStepResult res = {0};
    int64_t counts[2] = {0, 0};  // correct, selected
    for (int a = 0; a < o->set.accum; a++) {
        CtBatch mb = ct_step_batch(s, a, o->set.with_docs);
        ct_model_set_dropout(m, 1, ct_objective_dropout_seed(o->set.seed, (uint64_t)*o->step * 65536 + (uint64_t)a));
        res.loss += ct_model_forward(m, &mb);
        counts[0] += ct_mlm_correct(m, mb.targets, mb.B * mb.T);  // before backward turns the logits into their gradient
        counts[1] += s->counts[a];
        if (a == o->set.accum - 1) ct_grad_sync_arm(o->sync, m);
        ct_model_backward(m);
    }
    ct_grad_sync_backward_done(o->sync, m);
    ct_dist_allreduce_sum_i64(counts, 2);
    st->last_acc = counts[1] ? (double)counts[0] / (double)counts[1] : NAN;
    res.row = (CtMetricRow){"train", 2, {"mlm_acc", "mlm_selected"}, {st->last_acc, (double)counts[1]}};
    snprintf(res.progress, sizeof res.progress, " | acc %.1f%%", 100 * st->last_acc);
    return res;
}

// The unigram baseline of the validation selection: the share of its most frequent token.
static void unigram_baseline(CtMlmRun *st, double *token_counts, int V) {
    ct_dist_allreduce_sum_f64(token_counts, (size_t)V);
    double total = 0, best = 0;
    for (int v = 0; v < V; v++) {
        total += token_counts[v];
        if (token_counts[v] > best) best = token_counts[v], st->unigram_id = v;
    }
    st->unigram_acc = total > 0 ? best / total : NAN;
}

// ' "the"': a token's text for a log line (control bytes shown as spaces), cut to fit.
static void describe_token(const CtTokenizer *tok, int32_t id, char *buf, size_t size) {
    uint8_t *bytes = NULL;
    size_t len = 0, cap = 0;
    if (ct_decode(tok, &id, 1, &bytes, &len, &cap) == 0) {
        for (size_t i = 0; i < len; i++)
            if (bytes[i] < 0x20 || bytes[i] == '"') bytes[i] = ' ';
        snprintf(buf, size, " \"%.*s\"", (int)(len < 40 ? len : 40), (const char *)bytes);
    }
    ct_free(bytes);
}

// The validation loss and accuracy over the fixed validation batches with their fixed masks.
static double evaluate(CtObjectiveRun *o, int *failed) {
    CtMlmRun *st = o->state;
    CtModel *m = o->model;
    const uint64_t n = ct_objective_val_start(o);
    const int V = m->config.vocab_size, want_baseline = isnan(st->unigram_acc);
    double *token_counts = want_baseline ? ct_calloc((size_t)V, sizeof(double)) : NULL;
    CtStepBatches s;
    ct_step_batches_init(&s, 1, o->val->batch.rows, o->set.seq_len);
    const int64_t first_row = (int64_t)ct_dist_rank() * s.rows;
    double sums[3] = {0, 0, 0};  // Σ loss·count, Σ count, Σ correct
    for (uint64_t i = 0; i < n; i++) {
        if (ct_step_batches_fetch(&s, o->val) != 0) {
            ct_step_batches_free(&s);
            ct_free(token_counts);
            *failed = 1;
            ct_error_prefix("validation: ");
            return NAN;
        }
        ct_mlm_mask_micro_batch(&st->masking, &s, 0, o->set.seed, ct_mlm_eval_stream(i), first_row);
        CtBatch mb = ct_step_batch(&s, 0, o->set.with_docs);
        mb.loss_weights = NULL;  // each selected token counts once
        const float loss = ct_model_forward(m, &mb);
        sums[0] += (double)loss * m->loss_count;
        sums[1] += m->loss_count;
        sums[2] += (double)ct_mlm_correct(m, mb.targets, mb.B * mb.T);
        for (int k = 0; token_counts && k < mb.B * mb.T; k++)
            if (mb.targets[k] >= 0) token_counts[mb.targets[k]] += 1;
    }
    ct_step_batches_free(&s);
    ct_dist_allreduce_sum_f64(sums, 3);
    st->last_val_acc = sums[1] > 0 ? sums[2] / sums[1] : NAN;
    if (token_counts) {
        unigram_baseline(st, token_counts, V);
        ct_free(token_counts);
        char text[64] = "";
        if (o->tokenizer && st->unigram_id >= 0) describe_token(o->tokenizer, st->unigram_id, text, sizeof text);
        ct_log("mlm: unigram baseline %.2f%% of the %.0f validation positions selected: always answering token %d%s, "
               "their most frequent", 100 * st->unigram_acc, sums[1], st->unigram_id, text);
    }
    if (o->metrics.write) {
        CtMetricRow row = {"eval", 3, {"val_mlm_acc", "val_mlm_unigram_acc", "val_mlm_selected"},
                           {st->last_val_acc, st->unigram_acc, sums[1]}};
        o->metrics.write(o->metrics.ctx, &row);
    }
    ct_log("step %6lld | mlm val: masked-token accuracy %.2f%% (unigram baseline %.2f%%)", (long long)*o->step,
           100 * st->last_val_acc, 100 * st->unigram_acc);
    return sums[1] > 0 ? sums[0] / sums[1] : NAN;
}

static void report_done(CtObjectiveRun *o) {
    const CtMlmRun *st = o->state;
    if (isfinite(st->last_val_acc))
        ct_log("done: held-out masked-token accuracy %.2f%% vs the unigram baseline %.2f%%", 100 * st->last_val_acc,
               100 * st->unigram_acc);
}

static void free_run(CtObjectiveRun *o) {
    CtMlmRun *st = o->state;
    if (st && st->have_masking) ct_mlm_masking_free(&st->masking);
}

const CtObjective ct_objective_mlm = {
    .name = "mlm", .data_kind = CT_SHARD_TEXT, .cross_entropy = 1,
    .step = step, .evaluate = evaluate, .report_done = report_done, .free = free_run,
};
