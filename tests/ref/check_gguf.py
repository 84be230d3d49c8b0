#!/usr/bin/env python3
"""Checks a GGUF file that `ctrain export gguf` wrote, with the `gguf` package (llama.cpp's own
reader) and an independent NumPy LLaMA forward in llama.cpp's conventions: RoPE on adjacent pairs
(x[2i], x[2i+1]) as llama.cpp's LLaMA computes it, grouped-query heads, RMSNorm, SwiGLU.

usage: check_gguf.py FILE.gguf TOKENS LOGITS
  TOKENS: int32 token ids; LOGITS: float32 [T, V] as ctrain computes them.
Exit 0 when the keys are there and the logits agree (relative error below 1e-4 for f32 files,
2e-2 for f16), 1 otherwise. Prints "SKIP: ..." and exits 0 when numpy or gguf is absent.
"""
import struct
import sys

try:
    import numpy as np
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


def main(path, tokens_path, logits_path):
    r = GGUFReader(path)
    if field(r, "general.architecture") != "llama":
        print("not a llama file")
        return 1
    L = field(r, "llama.block_count")
    NH = field(r, "llama.attention.head_count")
    NKV = field(r, "llama.attention.head_count_kv")
    C = field(r, "llama.embedding_length")
    HD = field(r, "llama.rope.dimension_count")
    eps = field(r, "llama.attention.layer_norm_rms_epsilon")
    base = field(r, "llama.rope.freq_base")
    V = field(r, "llama.vocab_size")
    tokens_list = field(r, "tokenizer.ggml.tokens")
    if len(tokens_list) != V or len(field(r, "tokenizer.ggml.token_type")) != V:
        print("tokenizer arrays do not have vocab_size entries")
        return 1
    field(r, "tokenizer.ggml.merges")
    W = {}
    f16 = False
    for t in r.tensors:
        shape = [int(d) for d in reversed(t.shape)]  # ne is innermost first
        W[t.name] = np.asarray(t.data, dtype=np.float64).reshape(shape)
        f16 |= t.tensor_type.name == "F16"

    tokens = list(struct.unpack("<%di" % (len(open(tokens_path, "rb").read()) // 4), open(tokens_path, "rb").read()))
    T = len(tokens)
    want = np.frombuffer(open(logits_path, "rb").read(), dtype=np.float32).reshape(T, V).astype(np.float64)

    def rmsnorm(x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    def rope(x, n_heads):  # x [T, n_heads*HD], adjacent pairs
        x = x.reshape(T, n_heads, HD // 2, 2)
        pos = np.arange(T)[:, None]
        angle = pos * base ** (-2.0 * np.arange(HD // 2) / HD)
        c, s = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
        x0, x1 = x[..., 0], x[..., 1]
        return np.stack([x0 * c - x1 * s, x0 * s + x1 * c], -1).reshape(T, n_heads * HD)

    x = W["token_embd.weight"][tokens]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for layer in range(L):
        p = "blk.%d." % layer
        h = rmsnorm(x, W[p + "attn_norm.weight"])
        q = rope(h @ W[p + "attn_q.weight"].T, NH).reshape(T, NH, HD)
        k = rope(h @ W[p + "attn_k.weight"].T, NKV).reshape(T, NKV, HD)
        v = (h @ W[p + "attn_v.weight"].T).reshape(T, NKV, HD)
        out = np.zeros((T, NH, HD))
        for head in range(NH):
            kv = head // (NH // NKV)
            scores = q[:, head] @ k[:, kv].T / np.sqrt(HD) + mask
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            out[:, head] = (scores / scores.sum(-1, keepdims=True)) @ v[:, kv]
        x = x + out.reshape(T, NH * HD) @ W[p + "attn_output.weight"].T
        h = rmsnorm(x, W[p + "ffn_norm.weight"])
        g = h @ W[p + "ffn_gate.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ W[p + "ffn_up.weight"].T)) @ W[p + "ffn_down.weight"].T
    head_w = W.get("output.weight", W["token_embd.weight"])
    got = rmsnorm(x, W["output_norm.weight"]) @ head_w.T
    err = np.abs(got - want).max() / np.abs(want).max()
    tol = 2e-2 if f16 else 1e-4
    print("gguf %s: %d tensors, logits relative error %.3g (tolerance %g)" % (path, len(r.tensors), err, tol))
    return 0 if err < tol else 1


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
