#!/usr/bin/env python3
"""Checks a GGUF file that `ctrain export gguf` wrote, with the `gguf` package (llama.cpp's own
reader) and an independent NumPy forward in llama.cpp's conventions, from the file alone:
llama: RoPE on adjacent pairs (x[2i], x[2i+1]) as llama.cpp's LLaMA computes it, grouped-query
heads, RMSNorm, SwiGLU; gpt2: learned positions, LayerNorm, fused qkv with biases, tanh GELU.

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


def attention(q, k, v, NH, NKV, HD):
    T = q.shape[0]
    q, k, v = q.reshape(T, NH, HD), k.reshape(T, NKV, HD), v.reshape(T, NKV, HD)
    mask = np.triu(np.full((T, T), -np.inf), 1)
    out = np.zeros((T, NH, HD))
    for head in range(NH):
        kv = head // (NH // NKV)
        scores = q[:, head] @ k[:, kv].T / np.sqrt(HD) + mask
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        out[:, head] = (scores / scores.sum(-1, keepdims=True)) @ v[:, kv]
    return out.reshape(T, NH * HD)


def llama_forward(r, W, tokens):
    L = field(r, "llama.block_count")
    NH = field(r, "llama.attention.head_count")
    NKV = field(r, "llama.attention.head_count_kv")
    HD = field(r, "llama.rope.dimension_count")
    eps = field(r, "llama.attention.layer_norm_rms_epsilon")
    base = field(r, "llama.rope.freq_base")
    T = len(tokens)

    def rmsnorm(x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    def rope(x, n_heads):  # x [T, n_heads*HD], adjacent pairs
        x = x.reshape(T, n_heads, HD // 2, 2)
        angle = np.arange(T)[:, None] * base ** (-2.0 * np.arange(HD // 2) / HD)
        c, s = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
        x0, x1 = x[..., 0], x[..., 1]
        return np.stack([x0 * c - x1 * s, x0 * s + x1 * c], -1).reshape(T, n_heads * HD)

    x = W["token_embd.weight"][tokens]
    for layer in range(L):
        p = "blk.%d." % layer
        h = rmsnorm(x, W[p + "attn_norm.weight"])
        q = rope(h @ W[p + "attn_q.weight"].T, NH)
        k = rope(h @ W[p + "attn_k.weight"].T, NKV)
        x = x + attention(q, k, h @ W[p + "attn_v.weight"].T, NH, NKV, HD) @ W[p + "attn_output.weight"].T
        h = rmsnorm(x, W[p + "ffn_norm.weight"])
        g = h @ W[p + "ffn_gate.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ W[p + "ffn_up.weight"].T)) @ W[p + "ffn_down.weight"].T
    head_w = W.get("output.weight", W["token_embd.weight"])
    return rmsnorm(x, W["output_norm.weight"]) @ head_w.T


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

    def gelu(x):
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))

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
    if arch not in ("llama", "gpt2"):
        print("architecture %r is not llama or gpt2" % arch)
        return 1
    V = field(r, arch + ".vocab_size")
    if len(field(r, "tokenizer.ggml.tokens")) != V or len(field(r, "tokenizer.ggml.token_type")) != V:
        print("tokenizer arrays do not have vocab_size entries")
        return 1
    field(r, "tokenizer.ggml.merges")
    # every tensor name must be one llama.cpp knows for the architecture (gguf-py's own tables)
    allowed = set()
    for t in gguf.MODEL_TENSORS[{"llama": gguf.MODEL_ARCH.LLAMA, "gpt2": gguf.MODEL_ARCH.GPT2}[arch]]:
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
    got = (llama_forward if arch == "llama" else gpt2_forward)(r, W, tokens)
    err = np.abs(got - want).max() / np.abs(want).max()
    tol = 2e-2 if f16 else 1e-4
    print("gguf %s (%s): %d tensors, logits relative error %.3g (tolerance %g)" % (path, arch, len(r.tensors), err, tol))
    return 0 if err < tol else 1


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
