#!/usr/bin/env python3
"""Checks a GGUF file that `ctrain export gguf` wrote, with the `gguf` package (llama.cpp's own
reader) and an independent NumPy forward in llama.cpp's conventions, from the file alone:
llama: RoPE on adjacent pairs (x[2i], x[2i+1]) as llama.cpp's LLaMA computes it (each frequency
divided by rope_freqs when the file has it; positions scaled by 1/factor for rope.scaling.type
linear), grouped-query heads, RMSNorm, SwiGLU; qwen2: as llama with q/k/v biases and RoPE on
halves (x[i], x[i+HD/2], llama.cpp's NEOX); qwen3: RoPE on halves after an RMSNorm of each query
and key head (attn_q_norm, attn_k_norm); gemma2: RoPE on halves, embeddings times
sqrt(embedding_length), queries scaled by key_length^-1/2, attention and final soft-capping,
even layers sliding (attention.sliding_window), norms after attention and MLP, tanh-GELU gate;
gpt2: learned positions, LayerNorm, fused qkv with biases, tanh GELU.
Mixture of Experts (llama with experts, as Mixtral; qwen2moe; qwen3moe; olmoe), as llama.cpp's
build_moe_ffn computes it: a softmax over the router's logits (ffn_gate_inp), the
expert_used_count largest probabilities, renormalised to sum 1 for llama and qwen3moe (not for
qwen2moe and olmoe), each chosen expert's SwiGLU (ffn_{gate,up,down}_exps) weighted by them;
qwen2moe adds its shared expert (ffn_*_shexp) times sigmoid(x . ffn_gate_inp_shexp); qwen2moe
and qwen3moe rotate halves as qwen2; olmoe's q/k norms span the whole projection.

usage: check_gguf.py FILE.gguf TOKENS LOGITS
  TOKENS: int32 token ids; LOGITS: float32 [T, V] as ctrain computes them.
Exit 0 when the keys are there and the logits agree (relative error below 1e-4 for f32 files,
2e-2 for f16), 1 otherwise. Prints "SKIP: ..." and exits 0 when numpy or gguf is absent.
"""
import struct
import sys

try:
    import numpy as np
    import gguf
    from gguf import GGUFReader
except ImportError as e:
    print("SKIP: the Python module %s is not importable (pip install gguf numpy)" % e.name)
    sys.exit(0)


def field(reader, key):
    f = reader.fields.get(key)
    if f is None:
        print("missing key", key)
        sys.exit(1)
    return f.contents()


def load_tensors(r):
    W = {}
    f16 = False
    for t in r.tensors:
        shape = [int(d) for d in reversed(t.shape)]  # ne is innermost first
        W[t.name] = np.asarray(t.data, dtype=np.float64).reshape(shape)
        f16 |= t.tensor_type.name == "F16"
    return W, f16


def attention(q, k, v, NH, NKV, HD, softcap=0.0, window=0):
    T = q.shape[0]
    q, k, v = q.reshape(T, NH, HD), k.reshape(T, NKV, HD), v.reshape(T, NKV, HD)
    mask = np.triu(np.full((T, T), -np.inf), 1)
    if window:  # query t sees keys t2 with t - t2 < window
        mask = mask + np.tril(np.full((T, T), -np.inf), -window)
    out = np.zeros((T, NH, HD))
    for head in range(NH):
        kv = head // (NH // NKV)
        scores = q[:, head] @ k[:, kv].T / np.sqrt(HD)
        if softcap:
            scores = softcap * np.tanh(scores / softcap)
        scores = scores + mask
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        out[:, head] = (scores / scores.sum(-1, keepdims=True)) @ v[:, kv]
    return out.reshape(T, NH * HD)


def gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def optional(reader, key, default):
    f = reader.fields.get(key)
    return default if f is None else f.contents()


def silu(x):
    return x / (1 + np.exp(-x))


def moe(r, W, p, h, arch):
    """The MoE MLP of llama.cpp's build_moe_ffn over h [T, C]."""
    LLM = gguf.Keys.LLM
    K = field(r, LLM.EXPERT_USED_COUNT.format(arch=arch))
    E, F, C = W[p + "ffn_gate_exps.weight"].shape
    # the sizes llama.cpp builds its tensors from must be the tensors' own
    ff_key = LLM.EXPERT_FEED_FORWARD_LENGTH if arch in ("qwen2moe", "qwen3moe") else LLM.FEED_FORWARD_LENGTH
    sizes = [(LLM.EXPERT_COUNT, E), (ff_key, F)]
    if arch == "qwen2moe":
        sizes.append((LLM.EXPERT_SHARED_FEED_FORWARD_LENGTH, W[p + "ffn_gate_shexp.weight"].shape[0]))
    for key, want in sizes:
        if field(r, key.format(arch=arch)) != want:
            print("%s is %d, the tensors say %d" % (key.format(arch=arch), field(r, key.format(arch=arch)), want))
            sys.exit(1)
    if W[p + "ffn_gate_inp.weight"].shape != (E, C) or W[p + "ffn_down_exps.weight"].shape != (E, C, F):
        print("router or ffn_down_exps shape is not (E, C) / (E, C, F)")
        sys.exit(1)
    logits = h @ W[p + "ffn_gate_inp.weight"].T
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs = probs / probs.sum(-1, keepdims=True)
    out = np.zeros_like(h)
    for t in range(h.shape[0]):
        chosen = np.argsort(-probs[t], kind="stable")[:K]
        weights = probs[t, chosen]
        if arch in ("llama", "qwen3moe"):
            weights = weights / weights.sum()
        for e, w in zip(chosen, weights):
            a = silu(W[p + "ffn_gate_exps.weight"][e] @ h[t]) * (W[p + "ffn_up_exps.weight"][e] @ h[t])
            out[t] += w * (W[p + "ffn_down_exps.weight"][e] @ a)
    if p + "ffn_gate_inp_shexp.weight" in W:
        shared = (silu(h @ W[p + "ffn_gate_shexp.weight"].T) * (h @ W[p + "ffn_up_shexp.weight"].T)) \
            @ W[p + "ffn_down_shexp.weight"].T
        gate = 1 / (1 + np.exp(-(h @ W[p + "ffn_gate_inp_shexp.weight"].reshape(-1))))
        out = out + gate[:, None] * shared
    return out


def llama_forward(r, W, tokens, arch):
    L = field(r, arch + ".block_count")
    NH = field(r, arch + ".attention.head_count")
    NKV = field(r, arch + ".attention.head_count_kv")
    C = field(r, arch + ".embedding_length")
    HD = optional(r, arch + ".attention.key_length", C // NH)
    eps = field(r, arch + ".attention.layer_norm_rms_epsilon")
    base = optional(r, arch + ".rope.freq_base", 10000.0)
    gemma = arch == "gemma2"
    T = len(tokens)
    inv_freq = base ** (-2.0 * np.arange(HD // 2) / HD)
    if "rope_freqs.weight" in W:
        inv_freq = inv_freq / W["rope_freqs.weight"]
    pos = np.arange(T) / (optional(r, arch + ".rope.scaling.factor", 1.0)
                          if optional(r, arch + ".rope.scaling.type", "none") == "linear" else 1.0)

    def rmsnorm(x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    def rope(x, n_heads):  # x [T, n_heads*HD]: adjacent pairs (llama) or halves (NEOX: qwen2, gemma2)
        angle = pos[:, None] * inv_freq
        c, s = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
        if arch == "llama":
            x = x.reshape(T, n_heads, HD // 2, 2)
            x0, x1 = x[..., 0], x[..., 1]
            return np.stack([x0 * c - x1 * s, x0 * s + x1 * c], -1).reshape(T, n_heads * HD)
        x = x.reshape(T, n_heads, 2, HD // 2)
        x0, x1 = x[:, :, 0], x[:, :, 1]
        return np.concatenate([x0 * c - x1 * s, x0 * s + x1 * c], -1).reshape(T, n_heads * HD)

    def linear(x, p):
        y = x @ W[p + ".weight"].T
        return y + W[p + ".bias"] if p + ".bias" in W else y

    x = W["token_embd.weight"][tokens]
    if gemma:
        x = x * np.float32(np.sqrt(C))
    softcap = optional(r, arch + ".attn_logit_softcapping", 0.0) if gemma else 0.0
    for layer in range(L):
        p = "blk.%d." % layer
        h = rmsnorm(x, W[p + "attn_norm.weight"])
        q, k = linear(h, p + "attn_q"), linear(h, p + "attn_k")
        if p + "attn_q_norm.weight" in W and arch == "olmoe":  # RMSNorm over the whole projection
            q, k = rmsnorm(q, W[p + "attn_q_norm.weight"]), rmsnorm(k, W[p + "attn_k_norm.weight"])
        elif p + "attn_q_norm.weight" in W:  # qwen3: RMSNorm over each head before RoPE
            q = rmsnorm(q.reshape(T, NH, HD), W[p + "attn_q_norm.weight"]).reshape(T, NH * HD)
            k = rmsnorm(k.reshape(T, NKV, HD), W[p + "attn_k_norm.weight"]).reshape(T, NKV * HD)
        q, k = rope(q, NH), rope(k, NKV)
        window = field(r, arch + ".attention.sliding_window") if gemma and layer % 2 == 0 else 0
        att = attention(q, k, linear(h, p + "attn_v"), NH, NKV, HD, softcap, window) @ W[p + "attn_output.weight"].T
        x = x + (rmsnorm(att, W[p + "post_attention_norm.weight"]) if gemma else att)
        h = rmsnorm(x, W[p + "ffn_norm.weight"])
        if p + "ffn_gate_inp.weight" in W:
            mlp = moe(r, W, p, h, arch)
        else:
            g = h @ W[p + "ffn_gate.weight"].T
            act = gelu(g) if gemma else g / (1 + np.exp(-g))
            mlp = (act * (h @ W[p + "ffn_up.weight"].T)) @ W[p + "ffn_down.weight"].T
        x = x + (rmsnorm(mlp, W[p + "post_ffw_norm.weight"]) if gemma else mlp)
    head_w = W.get("output.weight", W["token_embd.weight"])
    logits = rmsnorm(x, W["output_norm.weight"]) @ head_w.T
    final_cap = optional(r, arch + ".final_logit_softcapping", 0.0) if gemma else 0.0
    return final_cap * np.tanh(logits / final_cap) if final_cap else logits


def gpt2_forward(r, W, tokens):
    L = field(r, "gpt2.block_count")
    NH = field(r, "gpt2.attention.head_count")
    C = field(r, "gpt2.embedding_length")
    eps = field(r, "gpt2.attention.layer_norm_epsilon")
    T = len(tokens)

    def layernorm(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * W[p + ".weight"] + W[p + ".bias"]

    def linear(x, p):
        return x @ W[p + ".weight"].T + W[p + ".bias"]

    x = W["token_embd.weight"][tokens] + W["position_embd.weight"][:T]
    for layer in range(L):
        p = "blk.%d." % layer
        qkv = linear(layernorm(x, p + "attn_norm"), p + "attn_qkv")
        att = attention(qkv[:, :C], qkv[:, C:2 * C], qkv[:, 2 * C:], NH, NH, C // NH)
        x = x + linear(att, p + "attn_output")
        x = x + linear(gelu(linear(layernorm(x, p + "ffn_norm"), p + "ffn_up")), p + "ffn_down")
    return layernorm(x, "output_norm") @ W["output.weight"].T


def main(path, tokens_path, logits_path):
    r = GGUFReader(path)
    arch = field(r, "general.architecture")
    archs = {"llama": gguf.MODEL_ARCH.LLAMA, "gpt2": gguf.MODEL_ARCH.GPT2, "qwen2": gguf.MODEL_ARCH.QWEN2,
             "qwen3": gguf.MODEL_ARCH.QWEN3, "gemma2": gguf.MODEL_ARCH.GEMMA2, "qwen2moe": gguf.MODEL_ARCH.QWEN2MOE,
             "qwen3moe": gguf.MODEL_ARCH.QWEN3MOE, "olmoe": gguf.MODEL_ARCH.OLMOE}
    if arch not in archs:
        print("architecture %r is not one of %s" % (arch, list(archs)))
        return 1
    V = field(r, arch + ".vocab_size")
    if len(field(r, "tokenizer.ggml.tokens")) != V or len(field(r, "tokenizer.ggml.token_type")) != V:
        print("tokenizer arrays do not have vocab_size entries")
        return 1
    field(r, "tokenizer.ggml.merges")
    # every tensor name must be one llama.cpp knows for the architecture (gguf-py's own tables)
    allowed = set()
    for t in gguf.MODEL_TENSORS[archs[arch]]:
        name = gguf.TENSOR_NAMES[t]
        for suffix in (".weight", ".bias"):
            allowed.update(name.format(bid=b) + suffix for b in range(field(r, arch + ".block_count")))
    unknown = [t.name for t in r.tensors if t.name not in allowed]
    if unknown:
        print("tensor names llama.cpp does not know for %s: %s" % (arch, unknown[:5]))
        return 1
    for key in (gguf.Keys.LLM.CONTEXT_LENGTH, gguf.Keys.LLM.EMBEDDING_LENGTH, gguf.Keys.LLM.BLOCK_COUNT,
                gguf.Keys.LLM.FEED_FORWARD_LENGTH, gguf.Keys.Attention.HEAD_COUNT):
        field(r, key.format(arch=arch))
    for key in (gguf.Keys.Tokenizer.MODEL, gguf.Keys.Tokenizer.PRE, gguf.Keys.Tokenizer.EOS_ID,
                gguf.Keys.General.ARCHITECTURE, gguf.Keys.General.FILE_TYPE):
        field(r, key)
    W, f16 = load_tensors(r)
    data = open(tokens_path, "rb").read()
    tokens = list(struct.unpack("<%di" % (len(data) // 4), data))
    want = np.frombuffer(open(logits_path, "rb").read(), dtype=np.float32).reshape(len(tokens), V).astype(np.float64)
    got = gpt2_forward(r, W, tokens) if arch == "gpt2" else llama_forward(r, W, tokens, arch)
    err = np.abs(got - want).max() / np.abs(want).max()
    tol = 2e-2 if f16 else 1e-4
    print("gguf %s (%s): %d tensors, logits relative error %.3g (tolerance %g)" % (path, arch, len(r.tensors), err, tol))
    return 0 if err < tol else 1


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
