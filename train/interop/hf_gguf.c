// ctrain export gguf: a checkpoint as a GGUF file for llama.cpp and ollama, laid out as
// llama.cpp's convert_hf_to_gguf.py lays out a LlamaForCausalLM (and MistralForCausalLM),
// Qwen2ForCausalLM, Gemma2ForCausalLM or GPT2LMHeadModel:
//   llama: token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate,
//          ffn_up, ffn_down}, output_norm, output (absent when tied); Llama 3's RoPE scaling as
//          rope_freqs (a divisor per frequency), linear scaling as rope.scaling.* keys
//   qwen2: as llama, with attn_{q,k,v}.bias; qwen3: as llama, with attn_{q,k}_norm
//   gemma2: as llama, with post_attention_norm, ffn_norm (the pre-MLP norm) and post_ffw_norm;
//          norms hold 1 + w (the convert script adds the 1; ctrain stores it so), soft-caps and
//          the window as keys
//   gpt2:  token_embd, position_embd, blk.N.{attn_norm, attn_qkv, attn_output, ffn_norm, ffn_up,
//          ffn_down}.{weight,bias}, output_norm.{weight,bias}, output (a copy of token_embd when tied)
//   Mixture of Experts (llama, qwen2moe, qwen3moe, olmoe): in place of ffn_{gate,up,down}, the
//          router ffn_gate_inp [E, C] and the experts stacked as llama.cpp's convert script stacks
//          them: ffn_gate_exps, ffn_up_exps [E, F', C], ffn_down_exps [E, C, F'] (torch order);
//          qwen2moe's shared expert as ffn_{gate,up,down}_shexp and its gate ffn_gate_inp_shexp [1, C];
//          the routers in f32 whatever the dtype, as the convert script keeps them
// 1-D tensors (norms, biases) stay f32, as llama.cpp keeps them.
// llama.cpp's LLaMA RoPE rotates adjacent pairs (x_2i, x_2i+1), while transformers (and ctrain)
// rotate (x_i, x_i+HD/2); so, like the convert script, the rows of q and k are permuted within
// each head: new row 2i+j = old row j·HD/2 + i (j = 0, 1), which makes both compute the same.
// llama.cpp's qwen2, qwen3 and gemma2 rotate halves (NEOX), as ctrain: no permutation.
// What llama.cpp would compute differently is refused (yarn and dynamic RoPE, a window on a
// llama or qwen2 model, Gemma 2's query scale other than head_dim^-½, the other families).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "checkpoints/dtype_convert.h"
#include "checkpoints/gguf.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"
#include "data/tokenizer/byte_level.h"
#include "data/tokenizer/tokenizer_hf.h"
#include "data/tokenizer/tokenizer_identity.h"
#include "train/interop/checkpoint_io.h"
#include "train/interop/hf_interop.h"
#include "train/interop/stop_tokens.h"

enum { TOKEN_NORMAL = 1, TOKEN_CONTROL = 3, TOKEN_USER_DEFINED = 4, TOKEN_UNUSED = 5 };  // llama.cpp's token types

// Rows of a [n_heads·HD, C] projection reordered from rotate-half pairs to adjacent pairs.
static void permute_rope_rows(const float *src, float *dst, int n_heads, int HD, int C) {
    const int half = HD / 2;
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < half; i++)
            for (int j = 0; j < 2; j++)
                memcpy(dst + ((size_t)h * HD + 2 * i + j) * C, src + ((size_t)h * HD + j * half + i) * C,
                       sizeof(float) * (size_t)C);
}

typedef struct {
    CtGgufWriter w;
    void **owned;
    int n_owned, cap;
    CtDtype matrix_dtype;
} Export;

static void *own(Export *e, size_t bytes) {
    if (e->n_owned == e->cap) {
        e->cap = e->cap * 2 + 64;
        e->owned = ct_realloc(e->owned, sizeof(void *) * (size_t)e->cap);
    }
    return e->owned[e->n_owned++] = ct_alloc(bytes ? bytes : 1);
}

// Whether a matrix stays f32 whatever the dtype: the routers (ffn_gate_inp, and Qwen2-MoE's
// shared-expert gate), which convert_hf_to_gguf.py and llama-quantize keep in f32.
static int stays_f32(const char *name) {
    static const char *const suffixes[] = {".ffn_gate_inp.weight", ".ffn_gate_inp_shexp.weight"};
    const size_t n = strlen(name);
    for (int i = 0; i < 2; i++) {
        const size_t k = strlen(suffixes[i]);
        if (n >= k && strcmp(name + n - k, suffixes[i]) == 0) return 1;
    }
    return 0;
}

// Adds a tensor of shape[ndim] (torch order) under its GGUF name: 1-D tensors and routers in f32,
// the others in the chosen dtype. `what` names the source tensor in messages.
static int add_array(Export *e, const char *name, int ndim, const int64_t *shape, const float *data, const char *what,
                     const char *source) {
    CtNamedTensor t = {.ndim = ndim};
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (size_t)(t.shape[d] = shape[d]);
    char *stored_name = own(e, strlen(name) + 1);
    strcpy(stored_name, name);
    t.name = stored_name;
    t.dtype = ndim == 1 || stays_f32(name) ? CT_DTYPE_F32 : e->matrix_dtype;
    if (t.dtype == CT_DTYPE_F32) {
        t.data = (void *)data;
    } else {
        uint16_t *half = own(e, numel * sizeof(uint16_t));
        size_t overflow = ct_f32_array_to_f16(data, half, numel);
        t.data = half;
        if (overflow)
            return ct_error_set("%s: tensor '%s' has %zu values beyond float16's range (+-65504); export with "
                                "--dtype f32", source, what, overflow);
    }
    return ct_gguf_add_tensor(&e->w, &t);
}

// Adds a parameter under its GGUF name. rope_heads > 0: permute the rows of q or k first.
static int add(Export *e, const char *name, const CtParamEntry *p, const float *data, int rope_heads, int HD,
               const char *source) {
    if (rope_heads > 0) {
        float *permuted = own(e, p->numel * sizeof(float));
        permute_rope_rows(data, permuted, rope_heads, HD, (int)p->shape[1]);
        data = permuted;
    }
    return add_array(e, name, p->ndim, p->shape, data, p->name, source);
}

// ctrain's (= Hugging Face's) tensor names and llama.cpp's, per family. Within a layer the
// names are suffixes after "model.layers.N." / "transformer.h.N." and "blk.N.".
typedef struct {
    const char *hf, *gguf;
    int rope;  // 1: q rows (n_head heads), 2: k rows (n_kv_head heads) to permute
} NameMap;

static const NameMap llama_globals[] = {
    {"model.embed_tokens.weight", "token_embd.weight", 0}, {"model.norm.weight", "output_norm.weight", 0},
    {"lm_head.weight", "output.weight", 0}, {NULL, NULL, 0}};
static const NameMap llama_layer[] = {
    {"input_layernorm.weight", "attn_norm.weight", 0},    {"self_attn.q_proj.weight", "attn_q.weight", 1},
    {"self_attn.k_proj.weight", "attn_k.weight", 2},      {"self_attn.v_proj.weight", "attn_v.weight", 0},
    {"self_attn.o_proj.weight", "attn_output.weight", 0}, {"post_attention_layernorm.weight", "ffn_norm.weight", 0},
    {"mlp.gate_proj.weight", "ffn_gate.weight", 0},       {"mlp.up_proj.weight", "ffn_up.weight", 0},
    {"mlp.down_proj.weight", "ffn_down.weight", 0},       {NULL, NULL, 0}};
static const NameMap qwen2_layer_biases[] = {
    {"self_attn.q_proj.bias", "attn_q.bias", 0}, {"self_attn.k_proj.bias", "attn_k.bias", 0},
    {"self_attn.v_proj.bias", "attn_v.bias", 0}, {NULL, NULL, 0}};
static const NameMap qwen3_layer_norms[] = {
    {"self_attn.q_norm.weight", "attn_q_norm.weight", 0}, {"self_attn.k_norm.weight", "attn_k_norm.weight", 0},
    {NULL, NULL, 0}};
static const NameMap gemma2_layer[] = {
    {"input_layernorm.weight", "attn_norm.weight", 0},
    {"self_attn.q_proj.weight", "attn_q.weight", 0},
    {"self_attn.k_proj.weight", "attn_k.weight", 0},
    {"self_attn.v_proj.weight", "attn_v.weight", 0},
    {"self_attn.o_proj.weight", "attn_output.weight", 0},
    {"post_attention_layernorm.weight", "post_attention_norm.weight", 0},
    {"pre_feedforward_layernorm.weight", "ffn_norm.weight", 0},
    {"post_feedforward_layernorm.weight", "post_ffw_norm.weight", 0},
    {"mlp.gate_proj.weight", "ffn_gate.weight", 0},
    {"mlp.up_proj.weight", "ffn_up.weight", 0},
    {"mlp.down_proj.weight", "ffn_down.weight", 0},
    {NULL, NULL, 0}};
// GPT-2: ctrain holds the Conv1D weights as [out, in] already, the layout ggml wants (the
// convert script transposes Hugging Face's [in, out] to get there).
static const NameMap gpt2_globals[] = {
    {"transformer.wte.weight", "token_embd.weight", 0},   {"transformer.wpe.weight", "position_embd.weight", 0},
    {"transformer.ln_f.weight", "output_norm.weight", 0}, {"transformer.ln_f.bias", "output_norm.bias", 0},
    {"lm_head.weight", "output.weight", 0},               {NULL, NULL, 0}};
static const NameMap gpt2_layer[] = {
    {"ln_1.weight", "attn_norm.weight", 0},         {"ln_1.bias", "attn_norm.bias", 0},
    {"attn.c_attn.weight", "attn_qkv.weight", 0},   {"attn.c_attn.bias", "attn_qkv.bias", 0},
    {"attn.c_proj.weight", "attn_output.weight", 0}, {"attn.c_proj.bias", "attn_output.bias", 0},
    {"ln_2.weight", "ffn_norm.weight", 0},          {"ln_2.bias", "ffn_norm.bias", 0},
    {"mlp.c_fc.weight", "ffn_up.weight", 0},        {"mlp.c_fc.bias", "ffn_up.bias", 0},
    {"mlp.c_proj.weight", "ffn_down.weight", 0},    {"mlp.c_proj.bias", "ffn_down.bias", 0},
    {NULL, NULL, 0}};

static const NameMap *find_name(const NameMap *map, const char *hf) {
    for (; map->hf; map++)
        if (strcmp(map->hf, hf) == 0) return map;
    return NULL;
}

// Whether the model has exactly the features of its GGUF architecture: Llama's (Qwen2's: with
// q/k/v biases) or Gemma 2's. A model of a run config may mix them; llama.cpp cannot.
static int has_family_features(const CtModelConfig *c) {
    const int gemma = c->family == CT_FAMILY_GEMMA2;
    const int qk_norm = c->family == CT_FAMILY_QWEN3 || c->family == CT_FAMILY_QWEN3_MOE ? 1
                        : c->family == CT_FAMILY_OLMOE                                 ? 2
                                                                                       : 0;
    if (c->qk_norm != qk_norm) return 0;
    // Qwen2-MoE's config.json says whether q, k and v have biases; llama.cpp reads them when present
    if (c->family != CT_FAMILY_QWEN2_MOE && c->qkv_bias != (c->family == CT_FAMILY_QWEN2)) return 0;
    const float plain_scale = 1.0f / sqrtf((float)ct_model_head_dim(c));
    return c->post_norms == gemma && c->embed_scale == gemma &&
           c->gate_act == (gemma ? CT_GATE_GELU_TANH : CT_GATE_SILU) && c->rope_local_theta == 0 &&
           (gemma || (c->attn_softcap == 0 && c->final_softcap == 0 &&
                      (c->query_scale == 0 || fabsf(c->query_scale / plain_scale - 1) < 1e-6f)));
}

static int is_moe_family(CtFamily f) {
    return f == CT_FAMILY_MIXTRAL || f == CT_FAMILY_QWEN2_MOE || f == CT_FAMILY_QWEN3_MOE || f == CT_FAMILY_OLMOE;
}

// The GGUF architecture of a Mixture-of-Experts model; NULL + error for one llama.cpp would
// compute differently. What each of llama.cpp's MoE architectures computes (src/models/*.cpp):
// a softmax over all experts, the top k, their weights renormalised to sum 1 (llama, as Mixtral;
// qwen3moe) or not (qwen2moe, olmoe), unscaled; every layer MoE; a shared expert only in
// qwen2moe, always behind a sigmoid gate. ctrain's topk_softmax and softmax_norm give the same
// weights (the softmax of the k largest logits), so either is llama.cpp's renormalised routing.
static const char *gguf_moe_arch(const CtModelConfig *c, int windowed) {
    const char *arch;
    switch (c->family) {
    case CT_FAMILY_LLAMA:
    case CT_FAMILY_MISTRAL:
    case CT_FAMILY_MIXTRAL: arch = "llama"; break;
    case CT_FAMILY_QWEN2:
    case CT_FAMILY_QWEN2_MOE: arch = "qwen2moe"; break;
    case CT_FAMILY_QWEN3:
    case CT_FAMILY_QWEN3_MOE: arch = "qwen3moe"; break;
    case CT_FAMILY_OLMOE: arch = "olmoe"; break;
    default:
        return ct_error_set("gguf export: llama.cpp's %s architecture has no experts (a Mixture of Experts exports as "
                            "llama (Mixtral), qwen2moe, qwen3moe or olmoe)", ct_family_name(c->family)), NULL;
    }
    const int llama = strcmp(arch, "llama") == 0, qwen2 = strcmp(arch, "qwen2moe") == 0;
    const int renormalises = llama || strcmp(arch, "qwen3moe") == 0;
    if (c->n_experts == 0)
        return ct_error_set("gguf export: model.family %s is a Mixture of Experts and this model has no experts "
                            "(model.n_experts 0); give it its dense family (llama, qwen2, qwen3) to export it",
                            ct_family_name(c->family)), NULL;
    if (ct_model_router_has_bias(c))
        return ct_error_set("gguf export: model.router %s: llama.cpp's %s routes by a softmax, not by sigmoid scores",
                            ct_router_name(c->router), arch), NULL;
    if ((c->router != CT_ROUTER_SOFTMAX) != renormalises)
        return ct_error_set("gguf export: model.router %s: llama.cpp's %s %s", ct_router_name(c->router), arch,
                            renormalises ? "renormalises the top-k weights (router topk_softmax or softmax_norm)"
                                         : "does not renormalise the top-k weights (router softmax)"), NULL;
    if (ct_model_router_scale(c) != 1)
        return ct_error_set("gguf export: model.router_scale %g: llama.cpp's %s does not scale the routed weights",
                            (double)c->router_scale, arch), NULL;
    if (c->moe_layer_freq > 1)
        return ct_error_set("gguf export: model.moe_layer_freq %d: every layer of llama.cpp's %s is MoE",
                            c->moe_layer_freq, arch), NULL;
    if (qwen2 && !(c->n_shared_experts > 0 && c->shared_expert_gate))
        return ct_error_set("gguf export: llama.cpp's qwen2moe has a shared expert behind a sigmoid gate; this model "
                            "has none (model.n_shared_experts, model.shared_expert_gate)"), NULL;
    if (!qwen2 && (c->n_shared_experts > 0 || c->shared_expert_gate))
        return ct_error_set("gguf export: model.n_shared_experts %d: llama.cpp's %s has no shared experts",
                            c->n_shared_experts, arch), NULL;
    if ((qwen2 || strcmp(arch, "olmoe") == 0) && ct_model_attn_width(c) != c->d_model)
        return ct_error_set("gguf export: head_dim %d: llama.cpp's %s needs n_head x head_dim = d_model (%d)",
                            ct_model_head_dim(c), arch, c->d_model), NULL;
    if (c->rope_scaling.type == CT_ROPE_LLAMA3 && !llama)
        return ct_error_set("gguf export: llama3 RoPE scaling: llama.cpp's %s does not read rope_freqs", arch), NULL;
    if (windowed)
        return ct_error_set("gguf export: a sliding window (%d, below the context of %d) is not supported: "
                            "llama.cpp's %s architecture attends to the whole context", c->sliding_window,
                            c->max_seq_len, arch), NULL;
    return arch;
}

// The GGUF architecture of a model: "llama", "qwen2", "qwen3", "gemma2", "gpt2", or a Mixture of
// Experts' (gguf_moe_arch); NULL + error for a model llama.cpp would compute differently.
static const char *gguf_arch(const CtModelConfig *c) {
    if (c->arch == CT_ARCH_GPT2) return "gpt2";
    const int exported = c->family == CT_FAMILY_LLAMA || c->family == CT_FAMILY_MISTRAL || c->family == CT_FAMILY_QWEN2 ||
                         c->family == CT_FAMILY_QWEN3 || c->family == CT_FAMILY_GEMMA2 || is_moe_family(c->family);
    if (exported && !has_family_features(c))
        return ct_error_set("gguf export: this %s model mixes in features of other families (biases, q/k norms, "
                            "post-norms, GeGLU, soft-caps, ...) that llama.cpp's %s architecture does not compute",
                            ct_family_name(c->family), ct_family_name(c->family)), NULL;
    const CtRopeType rope = c->rope_scaling.type;
    if (rope == CT_ROPE_YARN || rope == CT_ROPE_DYNAMIC)
        return ct_error_set("gguf export: RoPE scaling %s is not exported (llama.cpp's keys for it are not written "
                            "here); export hf instead", ct_rope_type_name(rope)), NULL;
    const int windowed = c->sliding_window > 0 && c->sliding_window < c->max_seq_len;
    if (c->n_experts > 0 || is_moe_family(c->family)) return gguf_moe_arch(c, windowed);
    switch (c->family) {
    case CT_FAMILY_LLAMA:
    case CT_FAMILY_MISTRAL:
    case CT_FAMILY_QWEN2:
    case CT_FAMILY_QWEN3: {
        const char *arch = c->family == CT_FAMILY_QWEN2 ? "qwen2" : c->family == CT_FAMILY_QWEN3 ? "qwen3" : "llama";
        if (windowed)
            return ct_error_set("gguf export: a sliding window (%d, below the context of %d) is not supported: "
                                "llama.cpp's %s architecture attends to the whole context", c->sliding_window,
                                c->max_seq_len, arch), NULL;
        return arch;
    }
    case CT_FAMILY_GEMMA2:
        // llama.cpp scales Gemma 2's queries by head_dim^-½ (by model size, not from the file)
        if (c->query_scale > 0 && fabsf(c->query_scale * sqrtf((float)ct_model_head_dim(c)) - 1) > 1e-6f)
            return ct_error_set("gguf export: Gemma 2's query scale %g is not head_dim^-1/2, which llama.cpp uses",
                                c->query_scale), NULL;
        if (windowed && c->sliding_window_pattern != 2)
            return ct_error_set("gguf export: llama.cpp's gemma2 alternates sliding and global layers; this model's "
                                "pattern is %d", c->sliding_window_pattern), NULL;
        if (rope != CT_ROPE_DEFAULT)
            return ct_error_set("gguf export: a scaled RoPE on Gemma 2 is not exported"), NULL;
        if (!c->tie_embeddings)
            return ct_error_set("gguf export: llama.cpp's gemma2 has no output tensor (its head is the embedding); "
                                "this model's head is untied"), NULL;
        // llama.cpp's gemma2 always caps (50 and 30 when the file says nothing)
        if (!(c->attn_softcap > 0) || !(c->final_softcap > 0))
            return ct_error_set("gguf export: Gemma 2 without attention and final soft-capping: llama.cpp's gemma2 "
                                "always caps both"), NULL;
        return "gemma2";
    default:
        return ct_error_set("gguf export: the %s family is not exported as GGUF yet (llama, mistral, qwen2, qwen3, "
                            "gemma2, gpt2 and the MoE families mixtral, qwen2_moe, qwen3_moe, olmoe are); export hf "
                            "instead", ct_family_name(c->family)), NULL;
    }
}

// The layer names of a GGUF architecture; 1 when q and k rows are permuted.
static const NameMap *layer_names(const char *arch, int *permute) {
    *permute = strcmp(arch, "llama") == 0;
    if (strcmp(arch, "gpt2") == 0) return gpt2_layer;
    return strcmp(arch, "gemma2") == 0 ? gemma2_layer : llama_layer;
}

// Llama 3's RoPE scaling as llama.cpp takes it: rope_freqs.weight, a divisor of each frequency
// (convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors).
static int add_rope_freqs(Export *e, const CtModelConfig *c, const char *source) {
    const CtRopeScaling *s = &c->rope_scaling;
    const int HD = ct_model_head_dim(c), n = HD / 2;
    float *factors = own(e, sizeof(float) * (size_t)n);
    const double low_wavelen = s->original_max_position / s->low_freq_factor;
    const double high_wavelen = s->original_max_position / s->high_freq_factor;
    for (int i = 0; i < n; i++) {
        double wavelen = 2 * M_PI * pow(c->rope_theta, 2.0 * i / HD);
        if (wavelen < high_wavelen) {
            factors[i] = 1;
        } else if (wavelen > low_wavelen) {
            factors[i] = s->factor;
        } else {
            double smooth = (s->original_max_position / wavelen - s->low_freq_factor) /
                            (s->high_freq_factor - s->low_freq_factor);
            factors[i] = (float)(1 / ((1 - smooth) / s->factor + smooth));
        }
    }
    CtParamEntry p = {.ndim = 1, .shape = {n, 0}, .numel = (size_t)n};
    snprintf(p.name, sizeof p.name, "rope_freqs");
    return add(e, "rope_freqs.weight", &p, factors, 0, 0, source);
}

// An MoE layer's router and shared expert (the routed experts are stacked by add_experts).
static const NameMap moe_layer[] = {
    {"mlp.gate.weight", "ffn_gate_inp.weight", 0},
    {"mlp.shared_expert.gate_proj.weight", "ffn_gate_shexp.weight", 0},
    {"mlp.shared_expert.up_proj.weight", "ffn_up_shexp.weight", 0},
    {"mlp.shared_expert.down_proj.weight", "ffn_down_shexp.weight", 0},
    {"mlp.shared_expert_gate.weight", "ffn_gate_inp_shexp.weight", 0},
    {NULL, NULL, 0}};

// Layer l's E experts as the three stacked tensors of llama.cpp: ffn_gate_exps and ffn_up_exps
// [E, F', C], ffn_down_exps [E, C, F'] (torch order; ggml's ne is the reverse). `first` is expert
// 0's gate_proj: expert e's gate, up and down follow at first + e·3F'C + {0, F'C, 2F'C}
// (train/model/model_params.c).
static int add_experts(Export *e, const CtModelConfig *c, int layer, const float *first, const char *source) {
    static const char *const names[3] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
    const int64_t E = c->n_experts, F = c->moe_d_ff, C = c->d_model;
    const size_t block = (size_t)(F * C);
    for (int j = 0; j < 3; j++) {
        float *stacked = own(e, sizeof(float) * block * (size_t)E);
        for (int64_t x = 0; x < E; x++) memcpy(stacked + x * block, first + (3 * x + j) * block, sizeof(float) * block);
        const int64_t shape[3] = {E, j < 2 ? F : C, j < 2 ? C : F};
        char name[64], what[96];
        snprintf(name, sizeof name, "blk.%d.%s.weight", layer, names[j]);
        snprintf(what, sizeof what, "model.layers.%d.mlp.experts.*.%s_proj.weight", layer, j == 0 ? "gate" : j == 1 ? "up" : "down");
        if (add_array(e, name, 3, shape, stacked, what, source) != 0) return -1;
    }
    return 0;
}

// An MoE layer's tensor (suffix after "model.layers.N."): 1 when added or when it is an expert
// weight that add_experts writes with expert 0's gate_proj; 0 when it is not an MoE tensor.
static int add_moe_tensor(Export *e, const CtModelConfig *c, int layer, const char *suffix, const CtParamEntry *p,
                          const float *data, const char *source) {
    int expert, n = 0;
    if (sscanf(suffix, "mlp.experts.%d.%n", &expert, &n) == 1 && n > 0) {
        if (expert != 0 || strcmp(suffix + n, "gate_proj.weight") != 0) return 1;
        return add_experts(e, c, layer, data, source) != 0 ? -1 : 1;
    }
    const NameMap *hit = find_name(moe_layer, suffix);
    if (!hit) return 0;
    char name[128];
    snprintf(name, sizeof name, "blk.%d.%s", layer, hit->gguf);
    return add(e, name, p, data, 0, 0, source) != 0 ? -1 : 1;
}

// Whether llama.cpp's architecture has an output tensor of its own even when the model ties it
// to the embedding: then the convert script writes a copy of the embedding as output.weight.
static int needs_output_copy(const char *arch) {
    return strcmp(arch, "gpt2") == 0 || strcmp(arch, "qwen2moe") == 0 || strcmp(arch, "olmoe") == 0;
}

static int add_weights(Export *e, const CtModel *m, const char *arch, const char *source) {
    const CtModelConfig *c = &m->config;
    const int gpt2 = c->arch == CT_ARCH_GPT2;
    int permute;
    const NameMap *globals = gpt2 ? gpt2_globals : llama_globals, *layer_map = layer_names(arch, &permute);
    const char *layer_format = gpt2 ? "transformer.h.%d.%95s" : "model.layers.%d.%95s";
    for (int i = 0; i < m->n_tensors; i++) {
        const CtParamEntry *p = &m->table[i];
        const float *data = m->params + p->offset;
        char name[128], suffix[96];
        int layer = -1;
        const NameMap *hit = find_name(globals, p->name);
        const int in_layer = !hit && sscanf(p->name, layer_format, &layer, suffix) == 2;
        if (in_layer && layer >= c->n_layer) continue;  // a multi-token prediction module: llama.cpp runs none
        if (in_layer && c->n_experts > 0) {
            const int moe = add_moe_tensor(e, c, layer, suffix, p, data, source);
            if (moe < 0) return -1;
            if (moe > 0) continue;
        }
        if (hit) {
            snprintf(name, sizeof name, "%s", hit->gguf);
        } else if (in_layer &&
                   ((hit = find_name(layer_map, suffix)) || (c->qkv_bias && (hit = find_name(qwen2_layer_biases, suffix))) ||
                    (c->qk_norm && (hit = find_name(qwen3_layer_norms, suffix))))) {
            snprintf(name, sizeof name, "blk.%d.%s", layer, hit->gguf);
        } else {
            return ct_error_set("gguf export: no GGUF name for tensor '%s'", p->name);
        }
        int rope_heads = !permute ? 0 : hit->rope == 1 ? c->n_head : hit->rope == 2 ? c->n_kv_head : 0;
        if (add(e, name, p, data, rope_heads, ct_model_head_dim(c), source) != 0) return -1;
        // GPT-2's head is the embedding; llama.cpp's convert script writes it out as output.weight too
        if (needs_output_copy(arch) && c->tie_embeddings && strcmp(name, "token_embd.weight") == 0 &&
            add(e, "output.weight", p, data, 0, 0, source) != 0)
            return -1;
    }
    return c->rope_scaling.type == CT_ROPE_LLAMA3 ? add_rope_freqs(e, c, source) : 0;
}

// tokenizer.ggml.pre: the name under which llama.cpp (src/llama-vocab.cpp) keeps the regular
// expression of each pattern ctrain has; an unknown name makes llama.cpp refuse the file.
//   gpt-2      GPT-2's pattern (r50k, p50k)
//   llama-bpe  Llama 3's pattern, which is cl100k_base's
//   gpt-4o     o200k_base's pattern
//   qwen2      Qwen2's (cl100k's with single digits)
static const char *pre_tokenizer_name(CtPattern p) {
    switch (p) {
    case CT_PATTERN_GPT2: return "gpt-2";
    case CT_PATTERN_CL100K: return "llama-bpe";
    case CT_PATTERN_O200K: return "gpt-4o";
    case CT_PATTERN_QWEN2: return "qwen2";
    }
    CT_FATAL("this is a bug in ctrain", "no llama.cpp pre-tokenizer name for pattern %d", (int)p);
}

// tokenizer.ggml.*: byte-level BPE ("gpt2" model) with tokens in the byte-level alphabet,
// special tokens as their text, ids past the tokenizer up to vocab_size as unused padding.
// eos_token_id: the model's first end-of-sequence id when the checkpoint names them (llama.cpp
// also ends generation at the tokens it knows by name: <|eot_id|>, <|im_end|>, <|endoftext|>...).
static int add_tokenizer(Export *e, const char *json, const char *generation_config_json, int vocab_size,
                         const char *source) {
    CtTokenizer t;
    if (ct_tokenizer_parse_hf(&t, json, strlen(json), source, NULL) != 0) return -1;
    if (t.units != CT_UNITS_BYTES) {  // llama.cpp's "llama" (SentencePiece) and "bert" vocabularies are not written yet
        int spm = t.units == CT_UNITS_CHARS;
        ct_tokenizer_free(&t);
        return ct_error_set("%s: a %s tokenizer cannot be written to GGUF yet (ctrain writes byte-level vocabularies only)",
                            source, spm ? "SentencePiece-style (Llama 2, Mistral, Gemma, Phi-3)" : "WordPiece (BERT)");
    }
    const char **texts = own(e, sizeof(char *) * (size_t)vocab_size);
    size_t *lengths = own(e, sizeof(size_t) * (size_t)vocab_size);
    int32_t *types = own(e, sizeof(int32_t) * (size_t)vocab_size);
    for (int id = 0; id < vocab_size; id++) {
        int kind = id < t.n_ids ? t.kind[id] : CT_TOKEN_ABSENT;
        const uint8_t *bytes = kind != CT_TOKEN_ABSENT ? t.pool + t.offsets[id] : NULL;
        size_t n = kind != CT_TOKEN_ABSENT ? t.lengths[id] : 0;
        char *s;
        if (kind == CT_TOKEN_NORMAL) {
            s = own(e, 2 * n + 1);
            lengths[id] = ct_byte_level_encode(bytes, n, s);
            types[id] = TOKEN_NORMAL;
        } else if (kind == CT_TOKEN_SPECIAL || kind == CT_TOKEN_ADDED) {
            s = own(e, n + 1);
            memcpy(s, bytes, n);
            s[n] = 0;
            lengths[id] = n;
            types[id] = kind == CT_TOKEN_SPECIAL ? TOKEN_CONTROL : TOKEN_USER_DEFINED;
        } else {
            s = own(e, 24);
            lengths[id] = (size_t)snprintf(s, 24, "[PAD%d]", id);
            types[id] = TOKEN_UNUSED;
        }
        texts[id] = s;
    }
    const char **merges = own(e, sizeof(char *) * (size_t)(t.n_merges + 1));
    size_t *merge_lengths = own(e, sizeof(size_t) * (size_t)(t.n_merges + 1));
    for (int i = 0; i < t.n_merges; i++) {
        int32_t ids[2] = {t.merges[i].left, t.merges[i].right};
        char *s = own(e, 2 * (t.lengths[ids[0]] + t.lengths[ids[1]]) + 2);
        size_t k = ct_byte_level_encode(t.pool + t.offsets[ids[0]], t.lengths[ids[0]], s);
        s[k++] = ' ';
        k += ct_byte_level_encode(t.pool + t.offsets[ids[1]], t.lengths[ids[1]], s + k);
        merges[i] = s;
        merge_lengths[i] = k;
    }
    ct_gguf_add_string(&e->w, "tokenizer.ggml.model", "gpt2");
    ct_gguf_add_string(&e->w, "tokenizer.ggml.pre", pre_tokenizer_name(t.pattern));
    ct_gguf_add_string_array(&e->w, "tokenizer.ggml.tokens", texts, lengths, (uint64_t)vocab_size);
    ct_gguf_add_i32_array(&e->w, "tokenizer.ggml.token_type", types, (uint64_t)vocab_size);
    ct_gguf_add_string_array(&e->w, "tokenizer.ggml.merges", merges, merge_lengths, (uint64_t)t.n_merges);
    static const char *const eos[] = {"<|endoftext|>", "<|end_of_text|>", "</s>", "<|eot_id|>", NULL};
    static const char *const bos[] = {"<|begin_of_text|>", "<s>", NULL};
    int32_t eos_id = -1, bos_id = -1;
    int32_t model_eos[CT_MAX_STOP_TOKENS];
    int n_model_eos = 0;
    if (generation_config_json &&
        ct_eos_token_ids_parse(generation_config_json, source, vocab_size, model_eos, CT_MAX_STOP_TOKENS, &n_model_eos) != 0) {
        ct_tokenizer_free(&t);
        return -1;
    }
    if (n_model_eos > 0) eos_id = model_eos[0];
    for (int i = 0; eos[i] && eos_id < 0; i++) eos_id = ct_tokenizer_special_id(&t, eos[i]);
    for (int i = 0; bos[i] && bos_id < 0; i++) bos_id = ct_tokenizer_special_id(&t, bos[i]);
    if (eos_id >= 0) ct_gguf_add_u32(&e->w, "tokenizer.ggml.eos_token_id", (uint32_t)eos_id);
    ct_gguf_add_u32(&e->w, "tokenizer.ggml.bos_token_id", (uint32_t)(bos_id >= 0 ? bos_id : eos_id >= 0 ? eos_id : 0));
    ct_gguf_add_bool(&e->w, "tokenizer.ggml.add_bos_token", bos_id >= 0);
    ct_tokenizer_free(&t);
    return 0;
}

static void add_model_keys(Export *e, const CtModelConfig *c, const char *arch, const char *name) {
    CtGgufWriter *w = &e->w;
    char key[96];
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
    ct_gguf_add_string(w, "general.architecture", arch);
    ct_gguf_add_string(w, "general.name", name);
    ct_gguf_add_u32(w, "general.file_type", e->matrix_dtype == CT_DTYPE_F32 ? 0 : 1);  // ALL_F32, MOSTLY_F16
    ct_gguf_add_u32(w, "general.alignment", CT_GGUF_ALIGNMENT);
    ct_gguf_add_u32(w, KEY("context_length"), (uint32_t)c->max_seq_len);
    ct_gguf_add_u32(w, KEY("embedding_length"), (uint32_t)c->d_model);
    ct_gguf_add_u32(w, KEY("block_count"), (uint32_t)c->n_layer);
    // llama.cpp's llama and olmoe size their experts by feed_forward_length (Mixtral's and OLMoE's
    // intermediate_size); qwen2moe and qwen3moe by expert_feed_forward_length
    const int experts_by_ff = c->n_experts > 0 && (strcmp(arch, "llama") == 0 || strcmp(arch, "olmoe") == 0);
    ct_gguf_add_u32(w, KEY("feed_forward_length"), (uint32_t)(experts_by_ff ? c->moe_d_ff : c->d_ff));
    ct_gguf_add_u32(w, KEY("attention.head_count"), (uint32_t)c->n_head);
    if (c->n_experts > 0) {
        ct_gguf_add_u32(w, KEY("expert_count"), (uint32_t)c->n_experts);
        ct_gguf_add_u32(w, KEY("expert_used_count"), (uint32_t)c->top_k);
        if (!experts_by_ff) ct_gguf_add_u32(w, KEY("expert_feed_forward_length"), (uint32_t)c->moe_d_ff);
        if (c->n_shared_experts > 0)
            ct_gguf_add_u32(w, KEY("expert_shared_feed_forward_length"), (uint32_t)(c->n_shared_experts * c->moe_d_ff));
    }
    if (c->arch == CT_ARCH_GPT2) {
        ct_gguf_add_f32(w, KEY("attention.layer_norm_epsilon"), c->norm_eps);
    } else {
        ct_gguf_add_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_head);
        ct_gguf_add_u32(w, KEY("rope.dimension_count"), (uint32_t)ct_model_head_dim(c));
        ct_gguf_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps);
        ct_gguf_add_f32(w, KEY("rope.freq_base"), c->rope_theta);
        if (c->head_dim) {  // llama.cpp derives it from embedding_length / head_count otherwise
            ct_gguf_add_u32(w, KEY("attention.key_length"), (uint32_t)ct_model_head_dim(c));
            ct_gguf_add_u32(w, KEY("attention.value_length"), (uint32_t)ct_model_head_dim(c));
        }
        if (c->rope_scaling.type == CT_ROPE_LINEAR) {
            ct_gguf_add_string(w, KEY("rope.scaling.type"), "linear");
            ct_gguf_add_f32(w, KEY("rope.scaling.factor"), c->rope_scaling.factor);
        }
    }
    if (c->family == CT_FAMILY_GEMMA2) {
        if (c->attn_softcap > 0) ct_gguf_add_f32(w, KEY("attn_logit_softcapping"), c->attn_softcap);
        if (c->final_softcap > 0) ct_gguf_add_f32(w, KEY("final_logit_softcapping"), c->final_softcap);
        // no window: one as long as the context, which masks nothing
        ct_gguf_add_u32(w, KEY("attention.sliding_window"),
                        (uint32_t)(c->sliding_window > 0 ? c->sliding_window : c->max_seq_len));
    }
    ct_gguf_add_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size);
#undef KEY
}

int ct_gguf_export(const char *ckpt_path, const char *out_path, const CtGgufExportOptions *opt) {
    Export e;
    memset(&e, 0, sizeof e);
    if (!opt->dtype || strcmp(opt->dtype, "f16") == 0) e.matrix_dtype = CT_DTYPE_F16;
    else if (strcmp(opt->dtype, "f32") == 0) e.matrix_dtype = CT_DTYPE_F32;
    else return ct_error_set("--dtype '%s': GGUF export writes f16 or f32", opt->dtype);
    CtCheckpointMeta meta = CT_CHECKPOINT_META_INIT;
    CtModel m;
    if (ct_checkpoint_load(ckpt_path, &m, ct_ops_cpu(), 1, 1, 0, NULL, &meta) != 0) return -1;
    if (ct_model_is_encoder(&m.config)) {  // llama.cpp's bert arch differs (no MLM head); not written yet
        const char *encoder = ct_arch_name(m.config.arch);
        ct_model_free(&m);
        ct_checkpoint_meta_free(&meta);
        return ct_error_set("%s: a %s model: GGUF export writes decoders (gpt2, llama); export it with ctrain export hf",
                            ckpt_path, encoder);
    }
    if (m.config.reward_head) {  // llama.cpp's GGUF has no place for a reward model's score head
        ct_model_free(&m);
        ct_checkpoint_meta_free(&meta);
        return ct_error_set("%s: a reward model (score.weight): GGUF export writes language models; export it with "
                            "ctrain export hf (as *ForSequenceClassification)", ckpt_path);
    }
    const char *arch = gguf_arch(&m.config);
    if (!arch) {
        ct_model_free(&m);
        ct_checkpoint_meta_free(&meta);
        return ct_error_prefix("%s: ", ckpt_path);
    }
    ct_gguf_init(&e.w);
    const char *base = strrchr(ckpt_path, '/');
    add_model_keys(&e, &m.config, arch, base ? base + 1 : ckpt_path);
    int rc = 0;
    if (meta.tokenizer_json)
        rc = add_tokenizer(&e, meta.tokenizer_json, meta.generation_config_json, m.config.vocab_size, ckpt_path);
    else ct_log("warning: %s has no tokenizer; the GGUF file will have none and llama.cpp will refuse it", ckpt_path);
    if (rc == 0) rc = add_weights(&e, &m, arch, ckpt_path);
    if (rc == 0) rc = ct_gguf_write(&e.w, out_path);
    if (rc == 0)
        ct_log("exported %s (%s, %zu parameters, %s) to %s", ckpt_path, arch, m.n_params,
               e.matrix_dtype == CT_DTYPE_F32 ? "f32" : "f16", out_path);
    for (int i = 0; i < e.n_owned; i++) ct_free(e.owned[i]);
    ct_free(e.owned);
    ct_gguf_free(&e.w);
    ct_model_free(&m);
    ct_checkpoint_meta_free(&meta);
    return rc;
}
