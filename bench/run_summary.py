#!/usr/bin/env python3
"""One Markdown table row per run from its metrics.jsonl: validation loss (last and best)
and, for MoE runs, the load balance after warm-up.

    bench/run_summary.py [--after STEP] LABEL=RUN_DIR ...

The balance columns read the train lines of steps > STEP (default 100): moe_imbalance is the
most-loaded expert's load over the mean load (1.0 = even) in the worst MoE layer of that step;
the table gives its mean and its maximum over those steps, the share of steps above 1.5, and
the same ratio of the load summed over all those steps (the worst layer's): how unevenly the
experts shared the work after warm-up.
"""
import argparse
import statistics
import sys

from run_metrics import read_metrics


def read(path):
    path, lines = read_metrics(path)
    train = [o for o in lines if o.get("kind") == "train"]
    evals = [o for o in lines if o.get("kind") == "eval"]
    if not train or not evals:
        sys.exit(f"{path}: needs train and eval lines (a finished ctrain pretrain run)")
    return train, evals


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--after", type=int, default=100)
    ap.add_argument("runs", nargs="+", metavar="LABEL=PATH")
    args = ap.parse_args()
    print(f"| run | steps | tokens | val loss (last) | val loss (best) "
          f"| max/mean load after step {args.after}: mean | max | steps > 1.5 | over all those steps |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for spec in args.runs:
        label, sep, path = spec.partition("=")
        if not sep:
            sys.exit(f"run_summary.py: '{spec}' is not LABEL=PATH")
        train, evals = read(path)
        vals = [o["val_loss"] for o in evals if isinstance(o.get("val_loss"), (int, float))]
        late_lines = [o for o in train if o["step"] > args.after and "moe_imbalance" in o]
        late = [o["moe_imbalance"] for o in late_lines]
        if late:
            over = sum(1 for v in late if v > 1.5)
            loads = [o["expert_load"] for o in late_lines]  # [step][layer][expert]
            n_experts = len(loads[0][0])
            summed = max(max(sum(step[layer][e] for step in loads) for e in range(n_experts)) / len(loads) * n_experts
                         for layer in range(len(loads[0])))
            balance = f"{statistics.mean(late):.3f} | {max(late):.3f} | {over}/{len(late)} | {summed:.3f}"
        else:
            balance = "– | – | – | –"
        print(f"| {label} | {train[-1]['step']} | {train[-1]['tokens']} | {vals[-1]:.4f} | {min(vals):.4f} "
              f"| {balance} |")


if __name__ == "__main__":
    main()
