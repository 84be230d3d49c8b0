#!/usr/bin/env python3
"""Plots one field of several runs' metrics.jsonl files against tokens seen (or steps), as one SVG.

    bench/plot_runs.py --out FILE.svg [--field val_loss|loss|moe_imbalance|reward|kl] [--kind train|eval]
                       [--x tokens|step] [--title T] [--ylabel Y] [--smooth N] [--ylim LO,HI] [--depths]
                       LABEL=RUN_DIR_OR_METRICS_JSONL ...

--field val_loss reads the "eval" lines, any other field the "train" lines, unless --kind says
which (grpo's held-out reward: --field reward --kind eval); --smooth N averages
each point with the N-1 before it (train lines are noisy); --ylim shows that range only
(the first evaluations of a run sit far above where the runs differ). --depths draws, beside each
run's loss (--field loss) or validation loss (val_loss), the losses of its multi-token prediction
depths (mtp_loss/k, val_mtp_loss/k; docs/mtp.md), dashed in the run's colour, one dash pattern per
depth. Python's standard library only, so that it runs wherever ctrain does.
"""
import argparse
import math
import os
import sys

from run_metrics import read_metrics

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
W, H, LEFT, RIGHT, TOP, BOTTOM = 720, 420, 70, 190, 40, 50


DASHES = ["6 3", "2 2", "8 3 2 3", "4 4", "1 3", "10 4", "6 2 1 2", "3 6"]


def depth_field(field, k):
    """The metrics.jsonl key of multi-token prediction depth k beside `field` (loss or val_loss)."""
    if field not in ("loss", "val_loss"):
        sys.exit(f"plot_runs.py: --depths goes with --field loss or val_loss, not '{field}'")
    return ("val_" if field == "val_loss" else "") + f"mtp_loss/{k}"


def read_curve(path, field, smooth, kind=None, x="tokens", required=True):
    path, lines = read_metrics(path)
    kind = kind or ("eval" if field.startswith("val_") else "train")
    points = [(o[x], float(o[field])) for o in lines
              if o.get("kind") == kind and isinstance(o.get(field), (int, float))]
    if not points:
        if not required:
            return []
        sys.exit(f"{path}: no {kind} line has a number in '{field}'")
    if smooth > 1:
        ys = [y for _, y in points]
        points = [(x, sum(ys[max(0, i - smooth + 1):i + 1]) / (i + 1 - max(0, i - smooth + 1)))
                  for i, (x, _) in enumerate(points)]
    return points


def nice_ticks(lo, hi, count=6):
    """Round-numbered ticks (1, 2, 2.5 or 5 times a power of ten apart) covering [lo, hi]."""
    raw = (hi - lo if hi > lo else 1.0) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    t = math.ceil(lo / step - 1e-9) * step
    ticks = []
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--field", default="val_loss")
    ap.add_argument("--title", default="")
    ap.add_argument("--ylabel", default=None)
    ap.add_argument("--smooth", type=int, default=1)
    ap.add_argument("--kind", choices=["train", "eval"], default=None)
    ap.add_argument("--x", choices=["tokens", "step"], default="tokens")
    ap.add_argument("--ylim", default=None, metavar="LO,HI")
    ap.add_argument("--depths", action="store_true", help="add each run's multi-token prediction depth losses")
    ap.add_argument("runs", nargs="+", metavar="LABEL=PATH")
    args = ap.parse_args()

    curves = []
    for spec in args.runs:
        label, sep, path = spec.partition("=")
        if not sep:
            sys.exit(f"plot_runs.py: '{spec}' is not LABEL=PATH")
        curve = read_curve(path, args.field, args.smooth, args.kind, args.x)
        depths = []
        for k in range(1, 9 if args.depths else 1):  # model.mtp_depth is at most 8
            d = read_curve(path, depth_field(args.field, k), args.smooth, args.kind, args.x, required=False)
            if not d:
                break
            depths.append(d)
        if args.depths and not depths:
            sys.exit(f"plot_runs.py: {path} has no '{depth_field(args.field, 1)}' (a run without model.mtp_depth)")
        curves.append((label, curve, depths))

    xs = [x for _, c, ds in curves for x, _ in c + [p for d in ds for p in d]]
    ys = [y for _, c, ds in curves for _, y in c + [p for d in ds for p in d]]
    x0, x1 = 0, max(xs)
    if args.ylim:
        try:
            y0, y1 = (float(v) for v in args.ylim.split(","))
        except ValueError:
            sys.exit(f"plot_runs.py: --ylim '{args.ylim}' is not LO,HI")
    else:
        y0, y1 = min(ys), max(ys)
        pad = (y1 - y0) * 0.05 or 0.1
        y0, y1 = y0 - pad, y1 + pad
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x):
        return LEFT + (x - x0) / (x1 - x0 or 1) * pw

    def py(y):
        return TOP + (y1 - y) / (y1 - y0) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{LEFT}" y="22" font-size="14">{args.title}</text>',
           f'<clipPath id="plot"><rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}"/></clipPath>',
           f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>']
    for t in nice_ticks(y0, y1):
        out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    for t in nice_ticks(x0, x1):
        label = f"{t:g}" if args.x == "step" else f"{t / 1e6:g}M" if x1 >= 1e6 else f"{t / 1e3:g}k"
        out.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{TOP}" y2="{TOP + ph}" stroke="#eee"/>')
        out.append(f'<text x="{px(t):.1f}" y="{TOP + ph + 16}" text-anchor="middle">{label}</text>')
    xlabel = "step" if args.x == "step" else "tokens seen"
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 10}" text-anchor="middle">{xlabel}</text>')
    out.append(f'<text x="16" y="{TOP + ph / 2}" text-anchor="middle" transform="rotate(-90 16 {TOP + ph / 2})">'
               f'{args.ylabel or args.field}</text>')
    row = 0
    for i, (label, c, depths) in enumerate(curves):
        colour = COLOURS[i % len(COLOURS)]
        for k, curve in enumerate([c] + depths):
            dash = f' stroke-dasharray="{DASHES[(k - 1) % len(DASHES)]}"' if k else ""
            d = " ".join(f"{'M' if j == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for j, (x, y) in enumerate(curve))
            out.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="{1.2 if k else 1.8}"{dash} '
                       f'clip-path="url(#plot)"/>')
            ly = TOP + 14 + row * 20
            row += 1
            name = f"{label} depth {k}" if k else label
            out.append(f'<line x1="{LEFT + pw + 12}" x2="{LEFT + pw + 32}" y1="{ly - 4}" y2="{ly - 4}" '
                       f'stroke="{colour}" stroke-width="2.5"{dash}/>')
            out.append(f'<text x="{LEFT + pw + 38}" y="{ly}">{name} ({curve[-1][1]:.3f})</text>')
    out.append("</svg>")
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
