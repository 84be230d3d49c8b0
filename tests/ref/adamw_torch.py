#!/usr/bin/env python3
"""Checks the expected values of tests/test_optim_adamw.c against torch.optim.AdamW itself.

ctrain's C test is bit-exact against a float32 emulation of torch's formula; torch's own kernels
(vectorised sqrt, fused multiply-adds, depending on the build) may differ from that emulation in
the last bits, so here the agreement asked for is float32 rounding: 1e-6 relative.
Prints "SKIP: ..." and exits 0 where torch is not importable. Exit 1 on a mismatch.
"""
import sys

try:
    import torch
except ImportError:
    print("SKIP: torch is not importable here")
    sys.exit(0)

hexes = [
    ["0x1.feecc0p-2", "-0x1.3fb644p+0", "0x1.ffbe76p+0", "-0x1.061e26p-10"],
    ["0x1.fe9952p-2", "-0x1.3fbe3cp+0", "0x1.ff7d5cp+0", "-0x1.b7f830p-10"],
    ["0x1.fde230p-2", "-0x1.3fd558p+0", "0x1.ff56a0p+0", "-0x1.2275c8p-10"],
]
decayed = torch.nn.Parameter(torch.tensor([0.5, -1.25, 0.0], dtype=torch.float32))  # elements 0, 1, 3
plain = torch.nn.Parameter(torch.tensor([2.0], dtype=torch.float32))                # element 2
opt = torch.optim.AdamW([{"params": [decayed]}, {"params": [plain], "weight_decay": 0.0}],
                        lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, foreach=False)
grads = [(0.1, -0.2, 3.0, 1e-4), (-0.05, 0.3, 2.5, 0.0), (0.2, 0.2, -1.0, -1e-3)]
bad = 0
worst = 0.0
for t, g in enumerate(grads):
    decayed.grad = torch.tensor([g[0], g[1], g[3]], dtype=torch.float32)
    plain.grad = torch.tensor([g[2]], dtype=torch.float32)
    opt.step()
    got = [decayed[0].item(), decayed[1].item(), plain[0].item(), decayed[2].item()]
    want = [float.fromhex(h) for h in hexes[t]]
    for i in range(4):
        rel = abs(got[i] - want[i]) / max(abs(want[i]), 1e-30)
        worst = max(worst, rel)
        if rel > 1e-6:
            print(f"step {t + 1} element {i}: torch {got[i].hex()} ctrain's expectation {want[i].hex()}")
            bad += 1
print(f"adamw: torch agrees within {worst:.2g} relative" if not bad else f"adamw: {bad} mismatches")
sys.exit(1 if bad else 0)
