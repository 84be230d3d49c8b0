// A sequence classifier on the model (config.num_labels L > 0): one vector per sequence pooled from
// its hidden states (config.cls_pooling: [CLS]/<s>, the mean, or the last token), then the head of
// transformers' *ForSequenceClassification for the family:
//   BERT     logits = classifier(dropout(tanh(pooler.dense(h))))
//   RoBERTa  logits = out_proj(dropout(tanh(dense(dropout(h)))))    (classifier.dense, .out_proj)
//   decoders logits = score · h   (h: the final norm's output; score [L, C], no bias)
// Encoders pool their last block's output; the MLM head (kept in the table) does not run.
// Batches are right-padded: row r holds len[r] tokens (1..T), then padding that the caller keeps
// out of attention (its own doc id).
#pragma once
#include "train/model/model.h"

// Forward of `batch` (targets not read) and each row's L logits into logits[B·L] (host memory).
void ct_model_classify_forward(CtModel *m, const CtBatch *batch, const int *len, float *logits);
// Backward of a loss given d_logits[B·L] = ∂loss/∂logits (host memory): gradients added.
void ct_model_classify_backward(CtModel *m, const float *d_logits);

// The pooling, on host arrays: out[B,C] from h[B,T,C]; backward writes dh[B,T,C] (zero off the
// pooled tokens). Mean: (1/len) Σ_{t<len} h_t, so ∂/∂h_t = dout/len for t < len.
void ct_classify_pool(CtPooling pooling, const double *h, int B, int T, int C, const int *len, double *out);
void ct_classify_pool_backward(CtPooling pooling, const double *dout, int B, int T, int C, const int *len, double *dh);
// Cross-entropy of one row's L logits against `label`: −log softmax(z)_label; with dz (may be
// NULL) its gradient times scale: scale·(softmax(z) − onehot(label)).
double ct_classify_xent(const float *z, int L, int label, double scale, float *dz);
