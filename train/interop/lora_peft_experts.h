// The routed experts' adapters in PEFT's files. transformers 5 holds an MoE layer's experts as
// two 3-D parameters of one module, mlp.experts.gate_up_proj [E, 2F', C] and down_proj
// [E, C, F'], and PEFT adapts them through target_parameters: a lora.ParamWrapper per parameter,
// nested on the experts module in the order the module registers them (gate_up_proj inside), so
// that with both adapted the names are
//   <layer>.mlp.experts.base_layer.lora_A.weight / lora_B.weight   gate_up_proj's
//   <layer>.mlp.experts.lora_A.weight / lora_B.weight              down_proj's
// and with one of them, that one's under <layer>.mlp.experts.lora_*. Its lora_A is one
// nn.Linear(in, r·E): [E·r, in], expert e's A in rows e·r..e·r+r-1 (ctrain's [E, r, in] as is);
// its lora_B one nn.Linear(r·E, out): [out, r·E], read as reshape(out, r, E), so expert e's
// B_e[o, k] is column k·E + e (ctrain keeps [E, out, r]: B is interleaved on writing and
// gathered back on reading). The delta of expert e is scale·B_e·A_e on its [out, in] weight
// (ParamWrapper.get_delta_weight, einsum "o r e, e r i -> e o i").
#pragma once
#include "core/named_tensor.h"
#include "train/model/model.h"

typedef struct {
    CtNamedTensor *tensors;  // every tensor of m's adapters (ct_lora_n_tensors), PEFT's names and shapes
    int n;
    char (*names)[160];      // the experts' names
    float **b;               // per adapter: an expert adapter's B in PEFT's [out, r·E] layout (owned), else NULL
    int n_b;
} CtPeftExperts;

// The tensors PEFT's folder holds for m's adapters (m->lora set): module adapters and token rows as
// ct_lora_named_tensors gives them (over the adapters' host buffer), expert adapters renamed, A a
// [E·r, in] view, B an interleaved copy. Free with ct_peft_experts_free.
void ct_peft_experts_tensors(const CtModel *m, CtPeftExperts *out);
// After the tensors were read into out's buffers: each expert adapter's B back into the adapters'
// host buffer (the A views were read in place).
void ct_peft_experts_gather(CtModel *m, const CtPeftExperts *f);
void ct_peft_experts_free(CtPeftExperts *f);
