// P-tuning's LSTM prompt encoder (PEFT's PromptEncoder with
// encoder_reparameterization_type LSTM): a bidirectional torch.nn.LSTM of
// encoder_num_layers layers over the embedding E [V,C], then PEFT's head
// Linear(2H,2H)–ReLU–Linear(2H,C). train/model/peft_prompt.c's P-tuning kind
// uses it; the tensors follow the embedding in the adapter's table with
// PyTorch's state_dict names.
#pragma once
#include "kernels/ops.h"
#include "train/model/peft.h"

typedef struct CtPeftLstm CtPeftLstm;

// The tensors (embedding.weight first), into out; how many, or -1 + error.
int ct_peft_lstm_layout(const CtPeftSpec *s, int C, int H, CtPeftTensor *out);
CtPeftLstm *ct_peft_lstm_new(int V, int C, int H, int layers);
void ct_peft_lstm_free(CtPeftLstm *e);
// torch.nn.LSTM's init of the LSTM's tensors: uniform(±1/√H) (after
// ct_peft_init_default).
void ct_peft_lstm_init(CtPeft *p, uint64_t seed);
// The prompt rows P [V,C] of the adapter's current parameters (the encoder's
// buffer).
const float *ct_peft_lstm_forward(CtPeftLstm *e, const CtOps *ops, const CtPeft *p);
// dP [V,C] → every tensor's gradient (added), through the last forward's
// activations.
void ct_peft_lstm_backward(CtPeftLstm *e, const CtOps *ops, CtPeft *p, const float *dP);
