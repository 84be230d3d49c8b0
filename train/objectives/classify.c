#include "train/objectives/classify.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "train/dist/dist.h"
#include "train/model/model_classify.h"

// The RNG stream of the examples' order and of the validation split (apart from core/rng.h's).
#define CLASSIFY_STREAM_ORDER 0xc1a55001ULL
#define CLASSIFY_STREAM_SPLIT 0xc1a55002ULL

static void shuffle(int *a, int n, uint64_t seed, uint64_t stream) {
    CtRng rng;
    ct_rng_seed_stream(&rng, seed, stream);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)ct_rng_below(&rng, (uint32_t)(i + 1)), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

int ct_classify_run_init(CtClassifyRun *c, const char *train_path, const char *val_path, double val_fraction,
                         const char *labels, const CtTokenizer *tok, int seq_len, uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->perm_epoch = -1;
    c->last_acc = c->last_val_acc = c->last_val_f1 = NAN;
    if (labels && labels[0] && ct_label_set_parse(&c->labels, labels) != 0) return -1;
    if (ct_classify_read(train_path, tok, seq_len, &c->labels, 1, 1, &c->train) != 0) return -1;
    if (c->labels.n < 2) return ct_error_set("%s: one label only (%s): classification needs two or more", train_path, c->labels.n ? c->labels.names[0] : "");
    int *all = ct_alloc(sizeof(int) * (size_t)c->train.n);
    for (int i = 0; i < c->train.n; i++) all[i] = i;
    if (val_path && val_path[0]) {
        if (ct_classify_read(val_path, tok, seq_len, &c->labels, 0, 1, &c->val) != 0) {
            ct_free(all);
            return -1;
        }
        c->val_set = &c->val;
        c->n_val = c->val.n;
        c->val_idx = ct_alloc(sizeof(int) * (size_t)c->n_val);
        for (int i = 0; i < c->n_val; i++) c->val_idx[i] = i;
        c->train_idx = all;
        c->n_train = c->train.n;
    } else {  // a seeded fraction of the training file, in file order
        int n_val = (int)floor(val_fraction * c->train.n);
        if (val_fraction > 0 && n_val == 0) n_val = 1;
        if (n_val >= c->train.n) return ct_error_set("%s: %d examples leave none to train on after the validation fraction %g", train_path, c->train.n, val_fraction);
        shuffle(all, c->train.n, seed, CLASSIFY_STREAM_SPLIT);
        unsigned char *is_val = ct_calloc((size_t)c->train.n, 1);
        for (int i = 0; i < n_val; i++) is_val[all[i]] = 1;
        c->val_idx = ct_alloc(sizeof(int) * (size_t)(n_val ? n_val : 1));
        c->train_idx = all;
        for (int i = 0; i < c->train.n; i++) {
            if (is_val[i]) c->val_idx[c->n_val++] = i;
            else c->train_idx[c->n_train++] = i;
        }
        ct_free(is_val);
        c->val_set = &c->train;
    }
    c->perm = ct_alloc(sizeof(int) * (size_t)c->n_train);
    return 0;
}

void ct_classify_run_free(CtClassifyRun *c) {
    ct_classify_set_free(&c->train);
    ct_classify_set_free(&c->val);
    ct_free(c->train_idx);
    ct_free(c->val_idx);
    ct_free(c->perm);
    ct_label_set_free(&c->labels);
    memset(c, 0, sizeof *c);
}

void ct_classify_rows_alloc(CtClassifyRows *r, int B, int T) {
    const size_t n = (size_t)B * T;
    r->tokens = ct_alloc(sizeof(int32_t) * n);
    r->types = ct_alloc(sizeof(int32_t) * n);
    r->doc_ids = ct_alloc(sizeof(int32_t) * n);
    r->len = ct_alloc(sizeof(int) * (size_t)B);
    r->label = ct_alloc(sizeof(int) * (size_t)B);
}

void ct_classify_rows_free(CtClassifyRows *r) {
    ct_free(r->tokens);
    ct_free(r->types);
    ct_free(r->doc_ids);
    ct_free(r->len);
    ct_free(r->label);
    memset(r, 0, sizeof *r);
}

void ct_classify_rows_fill(CtClassifyRows *r, const CtClassifySet *s, const int *idx, int n, int32_t pad_id,
                           int with_types) {
    int T = 1;
    for (int i = 0; i < n; i++)
        if (ct_classify_len(s, idx[i]) > T) T = ct_classify_len(s, idx[i]);
    for (int i = 0; i < n; i++) {
        const int e = idx[i], len = ct_classify_len(s, e);
        const size_t at = s->start[e];
        r->len[i] = len > 0 ? len : 1;
        r->label[i] = s->label[e];
        for (int t = 0; t < T; t++) {
            const size_t o = (size_t)i * T + t;
            const int real = t < len;
            r->tokens[o] = real ? s->ids[at + t] : pad_id;
            r->types[o] = real ? s->types[at + t] : 0;
            r->doc_ids[o] = !real && !(t == 0 && len == 0);
        }
    }
    r->batch = (CtBatch){.tokens = r->tokens, .doc_ids = r->doc_ids, .B = n, .T = T,
                         .token_types = with_types ? r->types : NULL};
}

static int uses_types(const CtModel *m) { return ct_model_is_encoder(&m->config) && m->config.type_vocab_size > 1; }

// Sums of a set of examples: loss, correct, count, then per label tp, fp, fn.
typedef struct {
    double *v;  // [3 + 3L]
    int L;
} Stats;

static Stats stats_new(int L) { return (Stats){ct_calloc((size_t)(3 + 3 * L), sizeof(double)), L}; }

static void stats_add(Stats *st, const float *logits, const int *labels, int n, double scale, float *d_logits) {
    const int L = st->L;
    for (int r = 0; r < n; r++) {
        const float *z = logits + (size_t)r * L;
        const double loss = ct_classify_xent(z, L, labels[r], scale, d_logits ? d_logits + (size_t)r * L : NULL);
        int pred = 0;
        for (int k = 1; k < L; k++)
            if (z[k] > z[pred]) pred = k;
        st->v[0] += loss;
        st->v[1] += pred == labels[r];
        st->v[2] += 1;
        if (pred == labels[r]) {
            st->v[3 + pred] += 1;
        } else {
            st->v[3 + L + pred] += 1;       // fp of the predicted label
            st->v[3 + 2 * L + labels[r]] += 1;  // fn of the true one
        }
    }
}

double ct_classify_macro_f1(const double *tp, const double *fp, const double *fn, int L) {
    double sum = 0;
    int n = 0;
    for (int k = 0; k < L; k++) {
        const double d = 2 * tp[k] + fp[k] + fn[k];
        if (d == 0) continue;  // neither true nor predicted anywhere
        sum += 2 * tp[k] / d;
        n++;
    }
    return n ? sum / n : 0;
}

// The training example at global place g of the run's order (epoch g / n, shuffled per epoch).
static int example_at(CtClassifyRun *c, uint64_t seed, int64_t g) {
    const int64_t epoch = g / c->n_train;
    if (epoch != c->perm_epoch) {
        memcpy(c->perm, c->train_idx, sizeof(int) * (size_t)c->n_train);
        shuffle(c->perm, c->n_train, seed, CLASSIFY_STREAM_ORDER + 0x100 * (uint64_t)epoch);
        c->perm_epoch = epoch;
    }
    return c->perm[g % c->n_train];
}

static CtStepResult step(CtObjectiveRun *o) {
    CtClassifyRun *c = o->state;
    CtModel *m = o->model;
    const int B = o->set.batch_size, L = m->config.num_labels, world = o->set.world, rank = ct_dist_rank();
    ct_objective_set_router_losses(o);
    CtClassifyRows rows;
    ct_classify_rows_alloc(&rows, B, o->set.seq_len);
    float *logits = ct_alloc(sizeof(float) * (size_t)B * L), *d_logits = ct_alloc(sizeof(float) * (size_t)B * L);
    int *idx = ct_alloc(sizeof(int) * (size_t)B);
    Stats st = stats_new(L);
    const double scale = 1.0 / ((double)world * o->set.accum * B);
    for (int a = 0; a < o->set.accum; a++) {
        const int64_t first = (((int64_t)*o->step * o->set.accum + a) * world + rank) * B;
        for (int i = 0; i < B; i++) idx[i] = example_at(c, o->set.seed, first + i);
        ct_classify_rows_fill(&rows, &c->train, idx, B, c->pad_id, uses_types(m));
        // each micro-batch of each rank its own masks: N ranks × B draws what 1 rank × N·B would not, but
        // every row its own (the pooled vector's dropout is drawn per row of the micro-batch)
        ct_model_set_dropout(m, 1, ct_objective_dropout_seed(o->set.seed, (uint64_t)*o->step * 65536 + (uint64_t)(a * world + rank)));
        ct_model_classify_forward(m, &rows.batch, rows.len, logits);
        stats_add(&st, logits, rows.label, B, scale, d_logits);
        ct_model_classify_backward(m, d_logits);
    }
    CtStepResult res = {.loss = st.v[0] * scale};  // this rank's share of the step's mean
    double sums[2] = {st.v[1], st.v[2]};
    if (world > 1) ct_dist_allreduce_sum_f64(sums, 2);
    c->last_acc = sums[0] / sums[1];
    res.row = (CtMetricRow){"train", 1, {"acc"}, {c->last_acc}};
    snprintf(res.progress, sizeof res.progress, " | acc %.3f", c->last_acc);
    ct_free(st.v);
    ct_free(idx);
    ct_free(logits);
    ct_free(d_logits);
    ct_classify_rows_free(&rows);
    return res;
}

static double evaluate(CtObjectiveRun *o, int *failed) {
    (void)failed;
    CtClassifyRun *c = o->state;
    CtModel *m = o->model;
    ct_model_set_dropout(m, 0, 0);
    const int B = o->set.batch_size, L = m->config.num_labels, world = o->set.world, rank = ct_dist_rank();
    CtClassifyRows rows;
    ct_classify_rows_alloc(&rows, B, o->set.seq_len);
    float *logits = ct_alloc(sizeof(float) * (size_t)B * L);
    Stats st = stats_new(L);
    for (int at = 0; at < c->n_val; at += world * B) {  // rank k: rows k·B … of each global batch
        const int from = at + rank * B, n = c->n_val - from < B ? c->n_val - from : B;
        if (n <= 0) continue;
        ct_classify_rows_fill(&rows, c->val_set, c->val_idx + from, n, c->pad_id, uses_types(m));
        ct_model_classify_forward(m, &rows.batch, rows.len, logits);
        stats_add(&st, logits, rows.label, n, 1, NULL);
    }
    ct_dist_allreduce_sum_f64(st.v, (size_t)(3 + 3 * L));
    const double loss = st.v[0] / st.v[2];
    c->last_val_acc = st.v[1] / st.v[2];
    c->last_val_f1 = ct_classify_macro_f1(st.v + 3, st.v + 3 + L, st.v + 3 + 2 * L, L);
    if (o->metrics.write) {
        CtMetricRow row = {"eval", 2, {"val_acc", "val_f1"}, {c->last_val_acc, c->last_val_f1}};
        o->metrics.write(o->metrics.ctx, &row);
    }
    ct_log("step %6lld | classify val: loss %.4f  val_acc %.4f  val_f1 %.4f (%d examples)", (long long)*o->step, loss,
           c->last_val_acc, c->last_val_f1, c->n_val);
    ct_free(st.v);
    ct_free(logits);
    ct_classify_rows_free(&rows);
    return loss;
}

void ct_classify_predict(CtModel *m, const CtClassifySet *s, int batch, int32_t pad_id, float *probs) {
    const int L = m->config.num_labels;
    ct_model_set_dropout(m, 0, 0);
    CtClassifyRows rows;
    ct_classify_rows_alloc(&rows, batch, m->max_T);
    int *idx = ct_alloc(sizeof(int) * (size_t)batch);
    for (int at = 0; at < s->n; at += batch) {
        const int n = s->n - at < batch ? s->n - at : batch;
        for (int i = 0; i < n; i++) idx[i] = at + i;
        ct_classify_rows_fill(&rows, s, idx, n, pad_id, uses_types(m));
        float *z = probs + (size_t)at * L;
        ct_model_classify_forward(m, &rows.batch, rows.len, z);
        for (int r = 0; r < n; r++) {  // softmax
            float *p = z + (size_t)r * L, mx = p[0];
            for (int k = 1; k < L; k++) mx = p[k] > mx ? p[k] : mx;
            double sum = 0;
            for (int k = 0; k < L; k++) sum += exp((double)p[k] - mx);
            for (int k = 0; k < L; k++) p[k] = (float)(exp((double)p[k] - mx) / sum);
        }
    }
    ct_free(idx);
    ct_classify_rows_free(&rows);
}

static void report_done(CtObjectiveRun *o) {
    const CtClassifyRun *c = o->state;
    if (isfinite(c->last_val_acc))
        ct_log("done: held-out accuracy %.4f, macro-F1 %.4f over %d examples", c->last_val_acc, c->last_val_f1, c->n_val);
}

const CtObjective ct_objective_classify = {
    .name = "classify", .cross_entropy = 0, .own_data = 1,
    .step = step, .evaluate = evaluate, .report_done = report_done,
};
