#!/usr/bin/env bash
# Multi-token prediction on the shared corpus (issue 25): the same model pretrained without MTP
# modules and with D modules (DeepSeek-V3's sequential modules, train.mtp_weight 0.3; --depths
# "0 2" by default), at equal tokens; then the deepest one drafting for itself
# (`generate --speculative`, bench/mtp_speculative_cpu.sh) against plain decoding at batch 1.
#
# Recipe: a 4,096-token BPE trained by ctrain on the corpus, sharded by lines (5% of the lines
# held out, seed 1337); LLaMA-style, 12 layers, d_model 384, 6 heads (2 key/value heads),
# d_ff 1024, T = 128, B = 16, 600 steps (1.23M tokens), AdamW 2e-3 → 2e-4 after 40 warm-up
# steps, weight decay 0.1, seed 1337; validation loss (the main head's) over 16 fixed batches.
#
#   bench/mtp_cpu.sh [--work DIR] [--steps N] [--depths "0 1 2"] [--jobs J] [--threads N] [--skip-runs] [--tokens N]
#
# --jobs J runs J pretraining runs at once with --threads each (default 2 × 1 thread: each run's
# numbers do not depend on the other's timing). Prints Markdown tables (docs/benchmarks.md,
# docs/mtp.md) and writes DIR/val_loss.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CTRAIN_BIN:-build/ctrain}
CORPUS=${CORPUS:-../shared/data/corpora/nlp-corpus-40k.txt}
WORK=out/bench-mtp STEPS=600 DEPTHS="0 2" JOBS=2 THREADS=1 SKIP_RUNS=0 TOKENS=192
while [ $# -gt 0 ]; do
    case "$1" in
        --work) WORK=$2; shift 2 ;;
        --steps) STEPS=$2; shift 2 ;;
        --depths) DEPTHS=$2; shift 2 ;;
        --jobs) JOBS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --tokens) TOKENS=$2; shift 2 ;;
        --skip-runs) SKIP_RUNS=1; shift ;;
        *) echo "usage: $0 [--work DIR] [--steps N] [--depths LIST] [--jobs J] [--threads N] [--skip-runs] [--tokens N]" >&2
           exit 2 ;;
    esac
done
[ -x "$BIN" ] || { echo "$BIN is missing: run make first" >&2; exit 1; }
[ -f "$CORPUS" ] || { echo "bench/mtp_cpu.sh: $CORPUS not found (it lives in ../shared/data)" >&2; exit 1; }
mkdir -p "$WORK/runs"

if [ ! -f "$WORK/data/dataset.json" ]; then
    "$BIN" tokenizer train --input "$CORPUS" --vocab-size 4096 --special '<|endoftext|>' --out "$WORK/tok.json"
    "$BIN" shard --tokenizer "$WORK/tok.json" --input "$CORPUS" --split lines --val-fraction 0.05 --out "$WORK/data"
fi

cat > "$WORK/base.json" <<EOF
{
  "run": {"seed": 1337},
  "model": {"preset": "llama-tiny", "n_layer": 12, "d_model": 384, "n_head": 6, "n_kv_head": 2, "d_ff": 1024,
            "max_seq_len": 256},
  "data": {"path": "$(realpath "$WORK/data")"},
  "train": {"batch_size": 16, "seq_len": 128, "max_steps": $STEPS, "eval_every": 100, "eval_batches": 16,
            "save_every": 0, "n_samples": 0},
  "optim": {"lr": 2e-3, "min_lr": 2e-4, "warmup_steps": 40, "weight_decay": 0.1, "grad_clip": 1.0}
}
EOF
ORDER=$(for d in $DEPTHS; do printf 'd%s ' "$d"; done)
ORDER=${ORDER% }
depth() { echo "${1#d}"; }

if [ "$SKIP_RUNS" = 0 ]; then
    running=0
    for name in $ORDER; do
        rm -rf "$WORK/runs/$name"
        OMP_NUM_THREADS=$THREADS "$BIN" pretrain "$WORK/base.json" --run.out_dir="$WORK/runs/$name" \
            --run.threads="$THREADS" --model.mtp_depth="$(depth "$name")" > "$WORK/runs/$name.log" 2>&1 &
        running=$((running + 1))
        if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
    done
    wait
fi

echo "# ctrain multi-token prediction on $(basename "$CORPUS") (CPU, $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
# the last evaluation of each run: the main head's validation loss, and the depths' where the run logs them
python3 - "$WORK/runs" $ORDER <<'EOF'
import json, sys
runs, names = sys.argv[1], sys.argv[2:]
def last_eval(name):
    evals = [json.loads(l) for l in open(f"{runs}/{name}/metrics.jsonl") if '"eval"' in l]
    return evals[-1]
base = last_eval("d0")["val_loss"] if "d0" in names else None
print("| model.mtp_depth | tokens | main-head val loss | vs D = 0 | depth val losses |")
print("| --- | --- | --- | --- | --- |")
for n in names:
    e = last_eval(n)
    depths = " · ".join(f"{e[k]:.4f}" for k in sorted(e) if k.startswith("val_mtp_loss/")) or "–"
    rel = f"{100 * (e['val_loss'] / base - 1):+.2f}%" if base else "–"
    print(f"| {n[1:]} | {e['tokens']:,} | {e['val_loss']:.4f} | {rel} | {depths} |")
EOF
plots=()
for name in $ORDER; do
    if [ "$name" = d0 ]; then plots+=("no MTP=$WORK/runs/d0"); else plots+=("mtp_depth $(depth "$name")=$WORK/runs/$name"); fi
done
python3 bench/plot_runs.py --out "$WORK/val_loss.svg" --kind eval --field val_loss --ylabel "validation loss (main head)" \
    --title "12 layers, d_model 384: with and without multi-token prediction" "${plots[@]}"
echo
echo "plot: $WORK/val_loss.svg"

# decoding: the deepest run drafting for itself, against plain decoding
deepest=${ORDER##* }
if [ "$(depth "$deepest")" -gt 0 ]; then
    echo
    CKPT=$(ls "$WORK/runs/$deepest"/ckpt-step*.h5 | tail -1) bench/mtp_speculative_cpu.sh --tokens "$TOKENS"
fi
