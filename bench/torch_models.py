#!/usr/bin/env python3
"""PyTorch models of ctrain's two decoder architectures, for timing the step `ctrain bench train`
times (forward, backward, AdamW on random tokens):

  gpt2   nanoGPT-style GPT-2: learned positions, pre-LayerNorm blocks with biases, tanh-GELU MLP,
         the head tied to the token embeddings.
  llama  LLaMA: RMSNorm, rotary positions, SwiGLU MLP, grouped-query attention (n_kv_head of
         n_head), no biases, the head tied or not.

Both attend with F.scaled_dot_product_attention(is_causal=True), so torch picks its fastest
attention kernel. One training loop (`time_steps`) serves every caller.

    python3 bench/torch_models.py --arch llama --layers 2 --d-model 64 --heads 4 --kv-heads 2 \
        --d-ff 172 --vocab 512 --batch 2 --seq 32 --steps 3          # one run, one line
    python3 bench/torch_models.py ... --serve                         # bench/compare_cpu.py's worker

--serve builds the model once (and compiles it with --mode compile), runs the warm-up steps,
prints `ready build_s=... first_step_s=...`, then for each line `run N` on standard input runs
one warm-up step and N timed steps and prints `steps ms,ms,...`; a failure prints `error ...`.
"""
import argparse
import math
import sys
import time


def build_model(torch, a):
    """The model of `a` (parsed arguments) as an nn.Module whose forward(x, y) returns the mean
    next-token cross-entropy, the loss inside the module so torch.compile sees the whole step."""
    nn, F = torch.nn, torch.nn.functional
    C, H, L, V = a.d_model, a.heads, a.layers, a.vocab
    KV = a.kv_heads or H
    hd = C // H

    class GPT2Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = nn.LayerNorm(C, eps=a.norm_eps), nn.LayerNorm(C, eps=a.norm_eps)
            self.c_attn, self.attn_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
            self.c_fc, self.mlp_proj = nn.Linear(C, a.d_ff), nn.Linear(a.d_ff, C)

        def forward(self, x):
            B, T, _ = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q, k, v = (t.view(B, T, H, hd).transpose(1, 2) for t in (q, k, v))
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.attn_proj(att.transpose(1, 2).reshape(B, T, C))
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

    class LlamaBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention_norm, self.ffn_norm = nn.RMSNorm(C, eps=a.norm_eps), nn.RMSNorm(C, eps=a.norm_eps)
            self.wq, self.wk, self.wv = nn.Linear(C, H * hd, bias=False), nn.Linear(C, KV * hd, bias=False), \
                nn.Linear(C, KV * hd, bias=False)
            self.wo = nn.Linear(H * hd, C, bias=False)
            self.w1, self.w3 = nn.Linear(C, a.d_ff, bias=False), nn.Linear(C, a.d_ff, bias=False)
            self.w2 = nn.Linear(a.d_ff, C, bias=False)

        def forward(self, x, cos, sin):
            B, T, _ = x.shape
            h = self.attention_norm(x)
            q = rope(self.wq(h).view(B, T, H, hd).transpose(1, 2), cos, sin)
            k = rope(self.wk(h).view(B, T, KV, hd).transpose(1, 2), cos, sin)
            v = self.wv(h).view(B, T, KV, hd).transpose(1, 2)
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=KV != H)
            x = x + self.wo(att.transpose(1, 2).reshape(B, T, C))
            h = self.ffn_norm(x)
            return x + self.w2(F.silu(self.w1(h)) * self.w3(h))

    def rope(t, cos, sin):  # rotate the two halves of each head (the Hugging Face layout)
        t1, t2 = t[..., : hd // 2], t[..., hd // 2:]
        return torch.cat((t1 * cos - t2 * sin, t2 * cos + t1 * sin), dim=-1)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(V, C)
            if a.arch == "gpt2":
                self.wpe = nn.Embedding(a.seq, C)
                self.blocks = nn.ModuleList(GPT2Block() for _ in range(L))
                self.norm = nn.LayerNorm(C, eps=a.norm_eps)
            else:
                self.blocks = nn.ModuleList(LlamaBlock() for _ in range(L))
                self.norm = nn.RMSNorm(C, eps=a.norm_eps)
                inv = 1.0 / a.rope_theta ** (torch.arange(0, hd // 2, dtype=torch.float32) * 2 / hd)
                ang = torch.outer(torch.arange(a.seq, dtype=torch.float32), inv)  # [T, hd/2]
                self.register_buffer("cos", ang.cos(), persistent=False)
                self.register_buffer("sin", ang.sin(), persistent=False)
            self.head = nn.Linear(C, V, bias=False)
            if a.tie:
                self.head.weight = self.wte.weight
            for name, p in self.named_parameters():  # GPT-2's initialisation (speed does not depend on it)
                if p.dim() == 2:
                    nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * L) if name.endswith(("proj.weight", "wo.weight", "w2.weight")) else 0.02)
                elif name.endswith("bias"):
                    nn.init.zeros_(p)

        def forward(self, idx, targets):
            B, T = idx.shape
            x = self.wte(idx)
            if a.arch == "gpt2":
                x = x + self.wpe(torch.arange(T, device=idx.device))
                for blk in self.blocks:
                    x = blk(x)
            else:
                for blk in self.blocks:
                    x = blk(x, self.cos[:T], self.sin[:T])
            logits = self.head(self.norm(x))
            return F.cross_entropy(logits.view(-1, V), targets.view(-1))

    return Model()


def time_steps(step, warmup, steps, sync=lambda: None):
    """Runs `warmup` untimed and `steps` timed calls of step(); returns the timed ones' seconds.
    sync waits for queued work (torch.cuda.synchronize on a GPU), so each step is timed whole."""
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def make_step(torch, a):
    """Builds the model, AdamW as ctrain's bench train sets it (lr 3e-4, betas 0.9/0.95, eps 1e-8,
    weight decay 0.1 on every parameter), fixed random tokens; returns (step, n_params)."""
    torch.manual_seed(1337)
    model = build_model(torch, a)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1,
                            fused=a.fused_adamw)
    fwd = torch.compile(model) if a.mode == "compile" else model
    x = torch.randint(0, a.vocab, (a.batch, a.seq))
    y = torch.randint(0, a.vocab, (a.batch, a.seq))

    def step():
        loss = fwd(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    return step, sum(p.numel() for p in model.parameters())


def serve(torch, a):
    t0 = time.perf_counter()
    try:
        step, _ = make_step(torch, a)
        t1 = time.perf_counter()
        step()  # the first step: torch.compile traces and compiles here
        t2 = time.perf_counter()
        time_steps(step, a.warmup, 0)
    except Exception as e:  # report it as a line the driver puts in its table
        print("error " + (f"{type(e).__name__}: {e}".splitlines() or ["?"])[0][:200], flush=True)
        return 1
    print(f"ready build_s={t1 - t0:.1f} first_step_s={t2 - t1:.1f}", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd[:1] != ["run"]:
            break
        try:
            times = time_steps(step, 1, int(cmd[1]))
        except Exception as e:
            print("error " + f"{type(e).__name__}: {e}".splitlines()[0][:200], flush=True)
            return 1
        print("steps " + ",".join(f"{1e3 * t:.1f}" for t in times), flush=True)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=["gpt2", "llama"], default="gpt2")
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--d-model", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--kv-heads", type=int, default=0, help="llama: key/value heads (default: --heads)")
    p.add_argument("--d-ff", type=int, default=3072)
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--tie", type=int, default=1, help="1: the head shares the token embeddings")
    p.add_argument("--norm-eps", type=float, default=1e-5)
    p.add_argument("--rope-theta", type=float, default=10000.0)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--mode", choices=["eager", "compile"], default="eager")
    p.add_argument("--fused-adamw", type=int, default=1, help="1: torch's fused AdamW kernel (its fastest on a CPU)")
    p.add_argument("--serve", action="store_true", help="run steps on request (see above)")
    a = p.parse_args()
    try:
        import torch
    except ImportError as e:
        print(f"torch_models.py: {e} (pip install torch)", file=sys.stderr)
        return 77
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.serve:
        return serve(torch, a)
    step, n = make_step(torch, a)
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    times = sorted(time_steps(step, a.warmup, a.steps))
    print(f"# torch {torch.__version__}, {a.arch}, {n / 1e6:.1f}M parameters, B={a.batch} T={a.seq}, "
          f"{torch.get_num_threads()} threads, {a.mode}")
    print(f"mode={a.mode} first_step_s={first:.1f} median_ms={1e3 * times[len(times) // 2]:.1f} "
          f"fastest_ms={1e3 * times[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
