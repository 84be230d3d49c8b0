#!/usr/bin/env python3
"""Checks ctrain's model against PyTorch autograd.

usage: check_model.py DIR

DIR holds what tests/test_model_ref.c wrote: case.json (config, batch, parameter table,
ctrain's loss), params.bin, grads.bin, logits.bin (float32, ctrain's layout: weights are
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


def attention(q, k, v, doc, T):
    """q [B,NH,T,HD], k/v [B,NKV,T,HD]; causal and inside documents."""
    group = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(group, dim=1)  # query head h reads kv head h // group
    v = v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    same_doc = doc[:, :, None] == doc[:, None, :]  # [B,T,T]
    allowed = causal[None] & same_doc
    scores = scores.masked_fill(~allowed[:, None], float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope(x, positions, theta):
    """x [B,H,T,HD]; Hugging Face LLaMA's rotate-half convention."""
    hd = x.shape[-1]
    inv_freq = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    angles = positions.to(torch.float64)[..., None] * inv_freq  # [B,T,HD/2]
    emb = torch.cat((angles, angles), dim=-1)[:, None]  # [B,1,T,HD]
    return x * emb.cos() + rotate_half(x) * emb.sin()


def rmsnorm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def forward(cfg, P, batch):
    B, T, C = cfg["B"], cfg["T"], cfg["d_model"]
    NH, NKV = cfg["n_head"], cfg["n_kv_head"]
    HD = C // NH
    eps = cfg["norm_eps"]
    tok, pos, doc = batch["tokens"], batch["positions"], batch["doc_ids"]
    gpt2 = cfg["arch"] == "gpt2"

    def heads(x, n):
        return x.view(B, T, n, HD).transpose(1, 2)

    if gpt2:
        x = P["transformer.wte.weight"][tok] + P["transformer.wpe.weight"][pos]
    else:
        x = P["model.embed_tokens.weight"][tok]
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
            p = lambda n: P[f"model.layers.{l}.{n}"]
            h = rmsnorm(x, p("input_layernorm.weight"), eps)
            q = rope(heads(h @ p("self_attn.q_proj.weight").T, NH), pos, cfg["rope_theta"])
            k = rope(heads(h @ p("self_attn.k_proj.weight").T, NKV), pos, cfg["rope_theta"])
            v = heads(h @ p("self_attn.v_proj.weight").T, NKV)
            y = attention(q, k, v, doc, T).transpose(1, 2).reshape(B, T, C)
            x = x + y @ p("self_attn.o_proj.weight").T
            h = rmsnorm(x, p("post_attention_layernorm.weight"), eps)
            h = F.silu(h @ p("mlp.gate_proj.weight").T) * (h @ p("mlp.up_proj.weight").T)
            x = x + h @ p("mlp.down_proj.weight").T
    if gpt2:
        x = F.layer_norm(x, (C,), P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], eps)
        head = P["transformer.wte.weight"] if cfg["tie_embeddings"] else P["lm_head.weight"]
    else:
        x = rmsnorm(x, P["model.norm.weight"], eps)
        head = P["model.embed_tokens.weight"] if cfg["tie_embeddings"] else P["lm_head.weight"]
    logits = x @ head.T
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
            print(f"    {cfg['arch']}: {what}: relative error {err:.2e}{'' if ok else '  FAIL'}")
    report("logits", rel_error(ct_logits, logits.detach()))
    report("loss", abs(cfg["loss"] - loss.item()) / abs(loss.item()))
    worst = 0.0
    for t in cfg["tensors"]:
        err = rel_error(tensor(grads, t), P[t["name"]].grad)
        worst = max(worst, err)
        report("grad " + t["name"], err)
    print(f"    {cfg['arch']}: worst gradient relative error {worst:.2e} over {len(cfg['tensors'])} tensors "
          f"(torch {torch.__version__})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
