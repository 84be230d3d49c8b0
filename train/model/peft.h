// Prompt-learning adapters over a frozen base, with Hugging Face PEFT's semantics (docs/peft.md):
//
//   prompt tuning (Lester et al.)   V learned embeddings P [V, C] before every sequence
//   P-tuning (Liu et al.)           the same V rows made by a prompt encoder from its own embedding:
//                                   P = Linear₃(ReLU(Linear₂(ReLU(Linear₁(E)))))  (PEFT's MLP)
//   prefix tuning (P-tuning v2)     learned keys and values of V positions in every layer (the
//                                   prefix helper's kind, train/model/peft_prefix.c)
//
// One adapter per model (m->peft; LoRA is m->lora, and a model has at most one of the two). The
// adapter's trainable tensors sit in one buffer (params/grads, what AdamW steps through
// m->train_params); each kind says which tensors it has (its CtPeftKind's layout), so checkpoints,
// moments, exports and reports walk one table whatever the kind. The base has no gradients
// (CT_MODEL_FROZEN).
//
// The prompt kinds prepend V rows: ct_model_forward(batch [B,T]) runs the model over [B, V+T]
// (the model is created with max_T + V), the virtual rows at positions 0..V-1 with targets -1,
// no loss and the document of the row's first token, the real rows at their positions + V, as
// PeftModelForCausalLM does (inputs_embeds = cat(prompts, embeddings); labels -100 before; the
// positions counting the virtual tokens). What the callers read afterwards is [B,T] again: the
// per-token losses and log-probabilities, ct_model_logits and ct_model_set_loss_weights.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/named_tensor.h"
#include "train/model/model.h"
#include "train/model/peft_hooks.h"

typedef enum { CT_PEFT_NONE, CT_PEFT_PROMPT_TUNING, CT_PEFT_P_TUNING, CT_PEFT_PREFIX_TUNING, CT_PEFT_N_TYPES } CtPeftType;
typedef enum { CT_PEFT_INIT_RANDOM, CT_PEFT_INIT_TEXT } CtPeftInit;
typedef enum { CT_PEFT_ENCODER_MLP, CT_PEFT_ENCODER_LSTM } CtPeftEncoder;

#define CT_PEFT_MAX_TENSORS 32
#define CT_PEFT_MAX_INIT_IDS 4096

// What to train (PEFT's PromptTuningConfig / PromptEncoderConfig / PrefixTuningConfig fields).
typedef struct {
    CtPeftType type;
    int num_virtual_tokens;
    CtPeftInit init;                   // prompt_tuning_init
    char init_text[1024];              // prompt_tuning_init_text (as given; recorded in adapter_config.json)
    int32_t init_ids[CT_PEFT_MAX_INIT_IDS];  // its token ids (the run's tokenizer), n_init_ids of them
    int n_init_ids;
    CtPeftEncoder encoder;             // encoder_reparameterization_type
    int encoder_hidden_size;           // 0: the model's width (PEFT's None -> token_dim)
    int encoder_num_layers;
    double encoder_dropout;
    int prefix_projection;
    // 1: the adapter holds only what inference needs, PEFT's saved prompt_embeddings (an imported
    // P_TUNING or PREFIX_TUNING folder: the encoder/projection is not in the file). Not trainable.
    int inference;
} CtPeftSpec;

// One trainable tensor of the adapter: PEFT's module-relative name ("embedding.weight",
// "mlp_head.0.weight"; "prompt_embeddings" in the inference form), its shape, where it sits in
// the buffer, and whether AdamW decays it (HF's Trainer: every weight, no bias).
typedef struct {
    char name[96];
    int ndim;
    int64_t shape[2];
    size_t offset, numel;
    int decay;
} CtPeftTensor;

typedef struct CtPeft {
    CtPeftSpec spec;
    const struct CtPeftKind *kind;
    CtPeftTensor tensors[CT_PEFT_MAX_TENSORS];
    int n_tensors;
    size_t n_params;
    float *params, *grads;          // host (grads NULL once on a device)
    float *dev_params, *dev_grads;  // what the ops use and AdamW steps: params/grads on the CPU
    void *state;                    // the kind's own (scratch, activations): its attach allocates it
    char base_path[1024];           // the base checkpoint (training runs), and its parameters' hash
    uint64_t base_hash;
} CtPeft;

// A kind of adapter: which tensors it has and what it computes. ct_peft_kind finds them by type;
// the prompt kinds are train/model/peft_prompt.c's, prefix tuning is train/model/peft_prefix.c's.
typedef struct CtPeftKind {
    CtPeftType type;
    const char *name;       // the config's peft.type value: "prompt_tuning"
    const char *peft_type;  // adapter_config.json's: "PROMPT_TUNING"
    // The tensors of spec over a model of config c, into out (names, shapes, decay; not offsets).
    // Returns how many, or -1 + error when the spec does not fit the model.
    int (*layout)(const CtPeftSpec *spec, const CtModelConfig *c, CtPeftTensor *out);
    // Rows placed before every sequence in the model's activations (prompt kinds: V; prefix: 0).
    int (*extra_rows)(const CtPeftSpec *spec);
    // After the buffers exist (m->peft set): the kind's state. 0, or -1 + error.
    int (*attach)(CtModel *m);
    void (*detach)(CtPeft *p);
    // PEFT's initialisation from seed (and spec.init_ids for prompt tuning from text).
    void (*init)(CtModel *m, uint64_t seed);
    // PEFT's saved "prompt_embeddings" (what get_prompt_embedding_to_save computes): [rows, width]
    // into a new host buffer (free with ct_free), shape into shape.
    float *(*prompt_embeddings)(CtModel *m, int64_t shape[2]);
    // The inverse for an inference adapter (spec.inference): the buffer from PEFT's tensor.
    // 0, or -1 + error (a shape that does not fit).
    int (*set_prompt_embeddings)(CtModel *m, const float *data, const int64_t shape[2]);
    // Device backends: move the state's buffers into m->ops' memory (may be NULL: nothing to move).
    void (*to_backend)(CtModel *m);
} CtPeftKind;

const CtPeftKind *ct_peft_kind(CtPeftType type);
// A kind's layout entry: [rows, cols] (cols 0: a vector [rows]), decayed by AdamW or not.
CtPeftTensor ct_peft_tensor(const char *name, int64_t rows, int64_t cols, int decay);
// By the config's name ("p_tuning") or PEFT's peft_type ("P_TUNING"); NULL if none.
const CtPeftKind *ct_peft_kind_by_name(const char *name);

// Adds the adapter of spec to m (created CT_MODEL_FROZEN, on the CPU, for the batches it will run),
// its tensors zero; m->train_params etc. point at it. A prompt kind grows the model's max_T by its
// virtual rows (ct_model_set_max_T). 0, or -1 + error naming what does not fit.
int ct_peft_attach(CtModel *m, const CtPeftSpec *spec);
void ct_peft_init(CtModel *m, uint64_t seed);
// PEFT's default initialisation of the tensors (a kind's init may call it): the first, an
// nn.Embedding, normal(0, 1); the others the weights and biases of nn.Linear layers, uniform(±1/√in)
// (in: a weight's columns; a bias follows its weight). Each tensor draws from its own stream.
void ct_peft_init_default(CtModel *m, uint64_t seed);
// The adapter's tensors as named tensors over a buffer of its layout (params, grads, a moment).
void ct_peft_named_tensors(const CtPeft *p, const float *buffer, CtNamedTensor *out);
// AdamW's decay spans of the adapter's buffer (spans must hold p->n_tensors): weights decay, biases not.
void ct_peft_decay_spans(const CtPeft *p, CtParamSpan *spans);
// Logs what trains and what it saves against full fine-tuning.
void ct_peft_report(const CtModel *m);
// The spec as JSON (checkpoints' peft_config attribute; free with free()) and back.
char *ct_peft_spec_json(const CtPeftSpec *spec);
int ct_peft_spec_parse_json(const char *json, CtPeftSpec *spec, const char *source);
// Records which base the adapter adapts: its absolute path and parameter hash (ct_lora_base_hash).
void ct_peft_record_base(CtPeft *p, const char *base_path, uint64_t hash);
