#!/usr/bin/env python3
"""Checks ctrain's model against PyTorch autograd.

usage: check_model.py DIR

DIR holds what tests/test_model_ref.c wrote: case.json (config, batch, parameter table,
ctrain's loss; for the llama variants their fields as ctrain's model_config JSON, "variants", and
each layer's RoPE table, "rope"), params.bin, grads.bin, logits.bin (float32, ctrain's layout: weights are
[out, in] like torch.nn.Linear). The same model is built here from plain torch ops (an
independent implementation: the backward comes from autograd) in float64; logits, loss and the
gradient of every parameter tensor must agree with ctrain's float32 results within a relative
error of 1e-4 (max |a - b| / max |b| per tensor).

Exit status: 0 agree, 1 disagree, 77 torch is not importable (the test then skips).
"""
import json
import math
import os
import sys

TOL = 1e-4

try:
    import warnings

    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")  # torch without numpy is fine here
    import torch
    import torch.nn.functional as F
except ImportError:
    print("PyTorch is not importable here (pip install torch); the reference check is skipped")
    sys.exit(77)


def load_floats(path):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=torch.float32).to(torch.float64)


def rel_error(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def attention(q, k, v, doc, T, scale=None, softcap=0.0, window=0):
    """q [B,NH,T,HD], k/v [B,NKV,T,HD]; causal and inside documents; scores scaled by `scale`
    (1/√HD when None), soft-capped (cap·tanh(s/cap)), within `window` keys (0: all)."""
    group = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(group, dim=1)  # query head h reads kv head h // group
    v = v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-1, -2) * (scale if scale else 1 / math.sqrt(q.shape[-1]))
    if softcap:
        scores = softcap * torch.tanh(scores / softcap)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    if window:
        t = torch.arange(T)
        causal = causal & ((t[:, None] - t[None, :]) < window)
    same_doc = doc[:, :, None] == doc[:, None, :]  # [B,T,T]
    allowed = causal[None] & same_doc
    scores = scores.masked_fill(~allowed[:, None], float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope(x, positions, theta, table=None):
    """x [B,H,T,HD]; Hugging Face LLaMA's rotate-half convention. table: {inv_freq, attention_factor}
    of a scaled RoPE (ctrain's, which tests/test_rope_scaling.c checks against transformers')."""
    hd = x.shape[-1]
    inv_freq = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    factor = 1.0
    if table is not None:
        inv_freq, factor = torch.tensor(table["inv_freq"], dtype=torch.float64), table["attention_factor"]
    angles = positions.to(torch.float64)[..., None] * inv_freq  # [B,T,HD/2]
    emb = torch.cat((angles, angles), dim=-1)[:, None]  # [B,1,T,HD]
    return x * (emb.cos() * factor) + rotate_half(x) * (emb.sin() * factor)


def rmsnorm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def llama_block(cfg, P, l, x, pos, doc):
    """One llama block with the variants of cfg["variants"] (ctrain's model_config JSON)."""
    B, T, C = cfg["B"], cfg["T"], cfg["d_model"]
    NH, NKV, eps, var = cfg["n_head"], cfg["n_kv_head"], cfg["norm_eps"], cfg.get("variants", {})
    HD = var.get("head_dim") or C // NH
    p = lambda n: P[f"model.layers.{l}.{n}"]
    has = lambda n: f"model.layers.{l}.{n}" in P

    def heads(t, n):
        return t.view(B, T, n, HD).transpose(1, 2)

    def proj(h, name):
        y = h @ p(f"self_attn.{name}.weight").T
        return y + p(f"self_attn.{name}.bias") if has(f"self_attn.{name}.bias") else y

    h = rmsnorm(x, p("input_layernorm.weight"), eps)
    q, k, v = proj(h, "q_proj"), proj(h, "k_proj"), proj(h, "v_proj")
    if var.get("qk_norm") == 2:  # OLMoE: one norm over the whole q (k) projection, before the heads
        q, k = rmsnorm(q, p("self_attn.q_norm.weight"), eps), rmsnorm(k, p("self_attn.k_norm.weight"), eps)
    q, k, v = heads(q, NH), heads(k, NKV), heads(v, NKV)
    if var.get("qk_norm") == 1:  # Qwen3, Gemma 3: per head, over head_dim
        q, k = rmsnorm(q, p("self_attn.q_norm.weight"), eps), rmsnorm(k, p("self_attn.k_norm.weight"), eps)
    table = cfg["rope"][l] if "rope" in cfg else None
    q, k = rope(q, pos, cfg["rope_theta"], table), rope(k, pos, cfg["rope_theta"], table)
    window, pattern = var.get("sliding_window", 0), var.get("sliding_window_pattern", 0)
    slides = window and (pattern == 0 or (l + 1) % pattern != 0)
    y = attention(q, k, v, doc, T, var.get("query_scale"), var.get("attn_softcap", 0.0), window if slides else 0)
    y = y.transpose(1, 2).reshape(B, T, NH * HD) @ p("self_attn.o_proj.weight").T
    post = var.get("post_norms")
    x = x + (rmsnorm(y, p("post_attention_layernorm.weight"), eps) if post else y)
    h = rmsnorm(x, p("pre_feedforward_layernorm.weight" if post else "post_attention_layernorm.weight"), eps)
    gate, up = h @ p("mlp.gate_proj.weight").T, h @ p("mlp.up_proj.weight").T
    act = F.gelu(gate, approximate="tanh") if var.get("gate_act") == "gelu_tanh" else F.silu(gate)
    y = (act * up) @ p("mlp.down_proj.weight").T
    return x + (rmsnorm(y, p("post_feedforward_layernorm.weight"), eps) if post else y)


def forward(cfg, P, batch):
    B, T, C = cfg["B"], cfg["T"], cfg["d_model"]
    NH = cfg["n_head"]
    HD = C // NH
    eps = cfg["norm_eps"]
    var = cfg.get("variants", {})
    tok, pos, doc = batch["tokens"], batch["positions"], batch["doc_ids"]
    gpt2 = cfg["arch"] == "gpt2"

    def heads(x, n):
        return x.view(B, T, n, HD).transpose(1, 2)

    if gpt2:
        x = P["transformer.wte.weight"][tok] + P["transformer.wpe.weight"][pos]
    else:
        x = P["model.embed_tokens.weight"][tok]
        if var.get("embed_scale"):  # Gemma: √C rounded to float32, as transformers' normalizer
            x = x * float(torch.tensor(C**0.5, dtype=torch.float32))
    for l in range(cfg["n_layer"]):
        if gpt2:
            p = lambda n: P[f"transformer.h.{l}.{n}"]
            h = F.layer_norm(x, (C,), p("ln_1.weight"), p("ln_1.bias"), eps)
            qkv = h @ p("attn.c_attn.weight").T + p("attn.c_attn.bias")
            q, k, v = qkv.split(C, dim=-1)
            y = attention(heads(q, NH), heads(k, NH), heads(v, NH), doc, T)
            y = y.transpose(1, 2).reshape(B, T, C)
            x = x + y @ p("attn.c_proj.weight").T + p("attn.c_proj.bias")
            h = F.layer_norm(x, (C,), p("ln_2.weight"), p("ln_2.bias"), eps)
            h = F.gelu(h @ p("mlp.c_fc.weight").T + p("mlp.c_fc.bias"), approximate="tanh")
            x = x + h @ p("mlp.c_proj.weight").T + p("mlp.c_proj.bias")
        else:
            x = llama_block(cfg, P, l, x, pos, doc)
    if gpt2:
        x = F.layer_norm(x, (C,), P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], eps)
        head = P["transformer.wte.weight"] if cfg["tie_embeddings"] else P["lm_head.weight"]
    else:
        x = rmsnorm(x, P["model.norm.weight"], eps)
        head = P["model.embed_tokens.weight"] if cfg["tie_embeddings"] else P["lm_head.weight"]
    logits = x @ head.T
    if var.get("final_softcap"):
        logits = var["final_softcap"] * torch.tanh(logits / var["final_softcap"])
    # loss = Σ w·(-log p(target)) / #{w != 0}, w = mask·weight, 0 for ignored targets
    targets = batch["targets"]
    w = batch["loss_mask"].to(torch.float64) * batch["loss_weights"] * (targets >= 0)
    logp = torch.log_softmax(logits, dim=-1)
    picked = logp.gather(-1, targets.clamp_min(0)[..., None])[..., 0]
    loss = -(w * picked).sum() / (w != 0).sum()
    return logits, loss


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    d = sys.argv[1]
    with open(os.path.join(d, "case.json")) as f:
        cfg = json.load(f)
    B, T, V = cfg["B"], cfg["T"], cfg["vocab_size"]
    params, grads = load_floats(os.path.join(d, "params.bin")), load_floats(os.path.join(d, "grads.bin"))
    ct_logits = load_floats(os.path.join(d, "logits.bin")).view(B, T, V)

    def tensor(flat, t):
        n = math.prod(t["shape"])
        return flat[t["offset"]: t["offset"] + n].view(*t["shape"])

    P = {t["name"]: tensor(params, t).clone().requires_grad_(True) for t in cfg["tensors"]}
    batch = {k: torch.tensor(cfg[k]).view(B, T) for k in ("tokens", "targets", "doc_ids", "positions", "loss_mask")}
    batch["loss_weights"] = torch.tensor(cfg["loss_weights"], dtype=torch.float64).view(B, T)
    logits, loss = forward(cfg, P, batch)
    loss.backward()

    failures = 0
    def report(what, err):
        nonlocal failures
        ok = err < TOL
        failures += not ok
        if not ok or what in ("logits", "loss"):
            print(f"    {cfg.get('name', cfg['arch'])}: {what}: relative error {err:.2e}{'' if ok else '  FAIL'}")
    report("logits", rel_error(ct_logits, logits.detach()))
    report("loss", abs(cfg["loss"] - loss.item()) / abs(loss.item()))
    worst = 0.0
    for t in cfg["tensors"]:
        err = rel_error(tensor(grads, t), P[t["name"]].grad)
        worst = max(worst, err)
        report("grad " + t["name"], err)
    print(f"    {cfg.get('name', cfg['arch'])}: worst gradient relative error {worst:.2e} over {len(cfg['tensors'])} tensors "
          f"(torch {torch.__version__})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
