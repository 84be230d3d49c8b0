// Shared between the files of the model (train/model/model*.c); not for other code.
#pragma once
#include "train/model/model.h"

// The parameter layout walk (train/model/model_params.c).
void ct_model_layout_count(const CtModelConfig *c, int *n_tensors, size_t *n_floats);
void ct_model_layout_table(const CtModelConfig *c, CtParamEntry *table);
void ct_model_layout_bind(const CtModelConfig *c, float *base, CtModelTensors *t);

// Activations (train/model/model_activations.c).
void ct_model_activations_alloc(CtModel *m);
// Per-layer slices; with recompute the recomputed tensors have one slice for every layer.
CtAct *ct_act_ln1(const CtModel *m, int layer);
CtAct *ct_act_ln2(const CtModel *m, int layer);
CtAct *ct_act_fch_act(const CtModel *m, int layer);

// Device backends (train/model/model_backend.c). The batch in the ops' memory, with positions
// 0..T-1 when it brings none (on the CPU: the batch itself, positions filled in act.positions).
CtBatch ct_model_stage_batch(CtModel *m, const CtBatch *batch);
// Frees what lives in the ops' memory (activations; on a device also parameters, gradients
// and staging buffers).
void ct_model_free_backend(CtModel *m);
// A device buffer of n floats, uploaded from host (zeros when NULL), with room for `shards`
// equal parts (CtModel.train_shards): the padding past n is zeros.
float *ct_model_device_buffer(const CtOps *ops, const float *host, size_t n, int shards, const char *what);
