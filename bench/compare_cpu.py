#!/usr/bin/env python3
"""ctrain against PyTorch on the CPU, side by side (`make bench-compare`, issue 28).

For each size (GPT-2 124M at B 4, T 64; llama-tiny at B 8, T 256) and each of --rounds rounds, in
an order that rotates from round to round, on the same --threads:
  - the sgemm ceiling: `ctrain bench matmul` on the model's MLP product [B·T, d_model]·[d_ff, d_model]ᵀ,
  - `ctrain bench train` (fp32, AdamW lr 3e-4, betas 0.9/0.95, eps 1e-8, weight decay 0.1),
  - the same model in PyTorch (bench/torch_models.py), eager and torch.compile, the same AdamW.
Every run takes one untimed warm-up step, then --steps timed steps. The PyTorch models are built
(and compiled) once per size in worker processes that stay up between rounds, so the compile is
paid once and reported apart. The dimensions come from ctrain's preset table
(train/model/model_config.c), not from here.

Prints one Markdown table: median and fastest step over every round's timed steps, the ratio of
each to ctrain's, the fastest step's GFLOP/s over the ceiling (FLOPs as `ctrain bench train`
counts them), and how far the mean step is above the fastest (a quiet machine: a few percent).

    python3 bench/compare_cpu.py [--rounds 3] [--steps 6] [--threads N] [--sizes gpt2-124m,llama-tiny]

Exits 0 with one line when torch is not importable.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = {"gpt2-124m": (4, 64), "llama-tiny": (8, 256)}  # (B, T) of issue 28's comparison


def preset_dims(name):
    """The preset's CtModelConfig fields, read from ctrain's own table: the macro's parameter list
    and body (`.n_layer = L, ...`) are parsed, and the preset's arguments substituted."""
    src = open(os.path.join(ROOT, "train/model/model_config.c")).read()
    src = src.replace("\\\n", " ")
    m = re.search(r'\{\s*"%s"\s*,\s*"(?:[^"\\]|\\.)*"\s*,\s*(\w+)\(([^)]*)\)\s*\}' % re.escape(name), src)
    if not m:
        sys.exit(f"compare_cpu.py: train/model/model_config.c: no preset '{name}'")
    macro, args = m.group(1), [s.strip() for s in m.group(2).split(",")]
    d = re.search(r"#define %s\(([^)]*)\)\s*\{(.*?)\}" % macro, src)
    params = [s.strip() for s in d.group(1).split(",")]
    env = {p: float(v.rstrip("fF")) for p, v in zip(params, args)}
    dims = {}
    for field, expr in re.findall(r"\.(\w+)\s*=\s*([^,]+)", d.group(2)):
        if field == "arch":  # CT_ARCH_GPT2 -> gpt2
            dims[field] = expr.strip().removeprefix("CT_ARCH_").lower()
        else:
            dims[field] = eval(re.sub(r"(\d)[fF]\b", r"\1", expr), {"__builtins__": {}}, env)  # noqa: S307 (our own source)
    return dims


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {(p.stderr.strip().splitlines() or ['?'])[-1]}")
    return p.stdout, p.stderr


def ctrain_matmul(bin_, n, c, oc, threads, seconds):
    out, _ = run([bin_, "bench", "matmul", "--n", str(n), "--c", str(c), "--oc", str(oc), "--seconds", str(seconds),
                  "--threads", str(threads)])
    return float(re.search(r"gflops=([0-9.]+)", out).group(1))


def ctrain_train(bin_, preset, B, T, steps, threads):
    """Timed step ms of one `ctrain bench train`, and the FLOPs of a step (its own count)."""
    _, err = run([bin_, "bench", "train", "--model", preset, "--batch", str(B), "--seq", str(T), "--steps", str(steps),
                  "--warmup", "1", "--threads", str(threads)])
    times = [float(x) for x in re.findall(r"step \d+: loss \S+\s+([0-9.]+) ms", err)]
    fast = re.search(r"fastest step ([0-9.]+) ms \(([0-9.]+) GFLOP/s\)", err)
    return times, float(fast.group(1)) * 1e-3 * float(fast.group(2)) * 1e9


class TorchWorker:
    """bench/torch_models.py --serve: the model built (and compiled) once, steps on request."""

    def __init__(self, python, dims, B, T, mode, threads):
        self.log = tempfile.TemporaryFile(mode="w+")
        cmd = [python, os.path.join(ROOT, "bench/torch_models.py"), "--serve", "--mode", mode, "--arch", dims["arch"],
               "--layers", str(int(dims["n_layer"])), "--d-model", str(int(dims["d_model"])),
               "--heads", str(int(dims["n_head"])), "--kv-heads", str(int(dims["n_kv_head"])),
               "--d-ff", str(int(dims["d_ff"])), "--vocab", str(int(dims["vocab_size"])), "--tie", str(int(dims["tie_embeddings"])),
               "--norm-eps", repr(dims["norm_eps"]), "--rope-theta", repr(dims["rope_theta"]),
               "--batch", str(B), "--seq", str(T), "--threads", str(threads)]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.error, self.first_step_s = None, None
        t0 = time.perf_counter()
        line = self._line()
        self.ready_s = time.perf_counter() - t0
        if line.startswith("ready"):
            self.first_step_s = float(re.search(r"first_step_s=([0-9.]+)", line).group(1))

    def _line(self):
        line = self.p.stdout.readline()
        if line.startswith("error "):
            self.error = line[6:].strip()
        elif not line:
            self.log.seek(0)
            tail = [s for s in self.log.read().splitlines() if s.strip()]
            self.error = f"worker exited {self.p.wait()}: {tail[-1][:200] if tail else '?'}"
        return line

    def steps(self, n):
        if self.error:
            return []
        self.p.stdin.write(f"run {n}\n")
        self.p.stdin.flush()
        line = self._line()
        return [float(x) for x in line.split()[1].split(",")] if line.startswith("steps ") else []

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            self.p.wait()
        self.log.close()


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return os.uname().machine


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def fmt(x, spec):
    return "—" if x is None else format(x, spec)


def size_rows(args, preset):
    """Runs one size's rounds; returns its table rows."""
    B, T = SHAPES[preset]
    dims = preset_dims(preset)
    C, F = int(dims["d_model"]), int(dims["d_ff"])
    print(f"# {preset}: {int(dims['n_layer'])} layers, d_model {C}, {int(dims['n_head'])} heads "
          f"({int(dims['n_kv_head'])} kv), d_ff {F}, vocab {int(dims['vocab_size'])}, B {B}, T {T}", file=sys.stderr)
    workers = {}
    for mode in ("eager", "compile"):
        w = workers[mode] = TorchWorker(args.python, dims, B, T, mode, args.threads)
        print(f"#   torch {mode}: " + (f"failed: {w.error}" if w.error else
              f"ready in {w.ready_s:.1f} s (first step{', compile included' if mode == 'compile' else ''}: "
              f"{w.first_step_s:.1f} s)"), file=sys.stderr)
    times = {"ctrain": [], "eager": [], "compile": []}
    ceilings, step_flops = [], None
    try:
        for r in range(args.rounds):
            order = ["ctrain", "eager", "compile"]
            order = order[r % 3:] + order[:r % 3]
            for impl in order:
                if impl == "ctrain":
                    ceilings.append(ctrain_matmul(args.ctrain, B * T, C, F, args.threads, args.matmul_seconds))
                    t, step_flops = ctrain_train(args.ctrain, preset, B, T, args.steps, args.threads)
                else:
                    t = workers[impl].steps(args.steps)
                times[impl] += t
                print(f"#   round {r + 1} {impl}: " + ", ".join(f"{x:.0f}" for x in t) + " ms", file=sys.stderr)
    finally:
        for w in workers.values():
            w.close()
    base = times["ctrain"]
    base_med, base_min = statistics.median(base), min(base)
    ceiling = max(ceilings)
    rows = []
    for impl, name in (("ctrain", "ctrain"), ("eager", "torch eager"), ("compile", "torch.compile")):
        t = times[impl]
        w = workers.get(impl)
        if not t:
            why = w.error if w and w.error else "no step ran"
            rows.append(f"| {preset} B{B} T{T} | {name} | — | — | — | — | — | — | failed: {why} |")
            continue
        med, fast, mean = statistics.median(t), min(t), statistics.fmean(t)
        of_ceiling = step_flops / (fast * 1e-3) / (ceiling * 1e9)
        if impl == "ctrain":
            note = f"sgemm ceiling {ceiling:.1f} GFLOP/s (best of {len(ceilings)}, {B * T}×{C}→{F})"
        else:
            note = f"first step (compile included) {w.first_step_s:.1f} s" if impl == "compile" else ""
        rows.append(f"| {preset} B{B} T{T} | {name} | {med:.0f} | {fast:.0f} | {med / base_med:.2f} | {fast / base_min:.2f} "
                    f"| {of_ceiling:.2f} | +{100 * (mean / fast - 1):.0f}% | {note} |")
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=6, help="timed steps per run (after one warm-up step)")
    p.add_argument("--threads", type=int, default=0, help="threads for every run (default: every core)")
    p.add_argument("--sizes", default="gpt2-124m,llama-tiny")
    p.add_argument("--matmul-seconds", type=float, default=2.0, help="how long each ceiling measurement lasts")
    p.add_argument("--ctrain", default=os.environ.get("CTRAIN_BIN", os.path.join(ROOT, "build/ctrain")))
    p.add_argument("--python", default=sys.executable, help="the python that runs the PyTorch models")
    args = p.parse_args()
    if args.rounds < 1 or args.steps < 1:
        sys.exit("compare_cpu.py: --rounds and --steps must be at least 1")
    for s in args.sizes.split(","):
        if s not in SHAPES:
            sys.exit(f"compare_cpu.py: --sizes: unknown size '{s}' (sizes: {', '.join(SHAPES)})")
    if not os.access(args.ctrain, os.X_OK):
        sys.exit(f"compare_cpu.py: {args.ctrain} is missing: run make first (or set CTRAIN_BIN)")
    probe = subprocess.run([args.python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True)
    if probe.returncode != 0:
        print(f"bench-compare: skipped: torch is not importable by {args.python} "
              "(scripts/ref_venv.sh, run by make test-ref, creates ~/.cache/ctrain/ref-venv with it)")
        return 0
    if args.threads <= 0:
        args.threads = len(os.sched_getaffinity(0))
    version = run([args.ctrain, "--version"])[0].splitlines()[0].strip()
    load_before, start = loadavg(), time.time()
    rows = []
    for s in args.sizes.split(","):
        rows += size_rows(args, s)
    print(f"# bench-compare {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(start))}: {cpu_model()}, {args.threads} threads; "
          f"load average {load_before} before, {loadavg()} after; {args.rounds} round{'s' * (args.rounds > 1)} × {args.steps} step{'s' * (args.steps > 1)} "
          f"(+1 warm-up each), {time.time() - start:.0f} s; {version}; torch {probe.stdout.strip()}")
    print()
    print("| size | implementation | median ms | fastest ms | ÷ ctrain (median) | ÷ ctrain (fastest) "
          "| fastest of sgemm ceiling | mean over fastest | notes |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
