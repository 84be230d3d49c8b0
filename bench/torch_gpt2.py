#!/usr/bin/env python3
"""PyTorch's speed on the step `ctrain bench train` times: GPT-2 (Hugging Face's GPT2LMHeadModel,
random weights), forward + backward + AdamW on random tokens, eager and torch.compile, float32
(ctrain's --precision fp32: TF32 off) and bf16 autocast (ctrain's default: bf16 products).

    python3 bench/torch_gpt2.py --batch 8 --seq 1024 --steps 10 [--device cuda] [--modes eager,compile]
    python3 bench/torch_gpt2.py --layers 2 --d-model 64 --heads 4 --vocab 512 --seq 64 --device cpu   # a smoke run

One line per (mode, precision), with the fields of ctrain's summary line so the two compare:
ms_per_step, tokens_per_s, mfu. MFU uses ctrain's formula (train/model/model.h): FLOPs per token =
6·N_matmul + 6·n_layer·T·d_model, N_matmul = every weight of a matrix product, the tied head included.
"""
import argparse
import sys

from torch_models import time_steps  # the one timing loop of the PyTorch benchmarks


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--d-model", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--device", default="cuda")
    p.add_argument("--modes", default="eager,compile")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--peak-tflops", type=float, default=0, help="peak for MFU (default: H100 SXM: 67 fp32, 989 bf16)")
    a = p.parse_args()
    try:
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError as e:
        print(f"torch_gpt2.py: {e} (pip install torch transformers)", file=sys.stderr)
        return 77
    if a.device == "cuda" and not torch.cuda.is_available():
        print("torch_gpt2.py: no CUDA device visible to torch", file=sys.stderr)
        return 77
    torch.backends.cuda.matmul.allow_tf32 = False  # true fp32 products, as ctrain's CUBLAS_COMPUTE_32F
    torch.backends.cudnn.allow_tf32 = False
    C, L, V, T, B = a.d_model, a.layers, a.vocab, a.seq, a.batch
    n_matmul = L * (3 * C * C + C * C + 8 * C * C) + V * C
    flops_per_token = 6 * n_matmul + 6 * L * T * C
    name = torch.cuda.get_device_name() if a.device == "cuda" else "cpu"
    print(f"# torch {torch.__version__}, {name}, GPT-2 L={L} C={C} V={V}, B={B} T={T}; "
          f"{flops_per_token / 1e6:.1f} MFLOP/token")
    for mode in a.modes.split(","):
        for precision in a.precisions.split(","):
            torch.manual_seed(0)
            cfg = GPT2Config(n_layer=L, n_embd=C, n_head=a.heads, vocab_size=V, n_positions=max(T, 1024),
                             resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=V - 1, eos_token_id=V - 1)
            model = GPT2LMHeadModel(cfg).to(a.device)
            model.train()
            opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1,
                                    fused=a.device == "cuda")
            step_model = torch.compile(model) if mode == "compile" else model
            x = torch.randint(0, V, (B, T), device=a.device)
            y = torch.randint(0, V, (B, T), device=a.device)
            autocast = torch.autocast(device_type=a.device, dtype=torch.bfloat16, enabled=precision == "bf16")

            losses = []

            def step():
                with autocast:
                    logits = step_model(x).logits
                    loss = torch.nn.functional.cross_entropy(logits.float().view(-1, V), y.view(-1))
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                losses.append(loss)

            sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
            if a.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            dt = sum(time_steps(step, a.warmup, a.steps, sync)) / a.steps
            loss = losses[-1]
            peak = a.peak_tflops * 1e12 if a.peak_tflops > 0 else (67e12 if precision == "fp32" else 989e12)
            mem = torch.cuda.max_memory_allocated() / 2**20 if a.device == "cuda" else 0
            tps = B * T / dt
            print(f"mode={mode} precision={precision} ms_per_step={1e3 * dt:.1f} tokens_per_s={tps:.0f} "
                  f"mfu={100 * tps * flops_per_token / peak:.1f}% peak_tflops={peak / 1e12:.0f} peak_mb={mem:.0f} "
                  f"loss={loss.item():.4f}")
            del model, opt, step_model
    return 0


if __name__ == "__main__":
    sys.exit(main())
