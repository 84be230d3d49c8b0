#!/usr/bin/env bash
# Mixture of Experts against a dense model with the same active parameters per token (issue 23),
# on the shared corpus. Four pretraining runs of one recipe (LLaMA-style, 4 layers, d_model 256,
# 4 heads, T = 128, B = 16, 600 steps, AdamW 3e-3 → 3e-4, seed 1337):
#   dense          SwiGLU d_ff 1024
#   moe            8 experts, top-2, moe_d_ff 512 (= the dense layer's active width), Mixtral's
#                  router (top-k then softmax), aux loss 0.01, router z-loss 0.001
#   moe-unbalanced the same with both losses off (does routing collapse?)
#   moe-aux-free   DeepSeek-V3's router (sigmoid, renormalised) balanced by the selection bias
#                  alone (train.aux_free_bias_rate 0.001), no aux loss, no z-loss
# then a throughput comparison of the dense and MoE steps (ctrain bench train, same shapes).
#
#   bench/moe_cpu.sh [--work DIR] [--steps N] [--jobs J] [--threads N] [--skip-runs]
#
# --jobs J runs J pretraining runs at once with --threads each (default 2 × 1 thread: both cores
# busy, and each run's numbers do not depend on the other's timing). Writes DIR/runs/*/metrics.jsonl,
# DIR/val_loss.svg and DIR/imbalance.svg, and prints Markdown tables (docs/benchmarks.md, docs/moe.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CTRAIN_BIN:-build/ctrain}
CORPUS=${CORPUS:-../shared/data/corpora/nlp-corpus-40k.txt}
WORK=out/bench-moe STEPS=600 JOBS=2 THREADS=1 SKIP_RUNS=0
while [ $# -gt 0 ]; do
    case "$1" in
        --work) WORK=$2; shift 2 ;;
        --steps) STEPS=$2; shift 2 ;;
        --jobs) JOBS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --skip-runs) SKIP_RUNS=1; shift ;;
        *) echo "usage: $0 [--work DIR] [--steps N] [--jobs J] [--threads N] [--skip-runs]" >&2; exit 2 ;;
    esac
done
[ -x "$BIN" ] || { echo "$BIN is missing: run make first" >&2; exit 1; }
[ -f "$CORPUS" ] || { echo "bench/moe_cpu.sh: $CORPUS not found (it lives in ../shared/data)" >&2; exit 1; }
mkdir -p "$WORK/runs"

if [ ! -f "$WORK/data/dataset.json" ]; then
    "$BIN" tokenizer train --input "$CORPUS" --vocab-size 4096 --special '<|endoftext|>' --out "$WORK/tok.json"
    "$BIN" shard --tokenizer "$WORK/tok.json" --input "$CORPUS" --split lines --out "$WORK/data"
fi

cat > "$WORK/dense.json" <<EOF
{
  "run": {"seed": 1337},
  "model": {"preset": "llama-tiny", "n_layer": 4, "d_model": 256, "n_head": 4, "n_kv_head": 4, "d_ff": 1024,
            "max_seq_len": 128},
  "data": {"path": "$(realpath "$WORK/data")"},
  "train": {"batch_size": 16, "seq_len": 128, "max_steps": $STEPS, "eval_every": 50, "eval_batches": 16,
            "save_every": 0, "n_samples": 0},
  "optim": {"lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 40, "weight_decay": 0.1, "grad_clip": 1.0}
}
EOF
MOE="--model.n_experts=8 --model.top_k=2 --model.moe_d_ff=512"
declare -A RUNS=(
    [dense]=""
    [moe]="$MOE --model.router=topk_softmax --train.aux_loss_coef=0.01 --train.router_z_loss_coef=0.001"
    [moe-unbalanced]="$MOE --model.router=topk_softmax --train.aux_loss_coef=0 --train.router_z_loss_coef=0"
    [moe-aux-free]="$MOE --model.router=sigmoid_norm --train.aux_loss_coef=0 --train.router_z_loss_coef=0 --train.aux_free_bias_rate=0.001"
)
ORDER="dense moe moe-unbalanced moe-aux-free"

if [ "$SKIP_RUNS" = 0 ]; then
    running=0
    for name in $ORDER; do
        rm -rf "$WORK/runs/$name"
        # shellcheck disable=SC2086  # the options are words
        OMP_NUM_THREADS=$THREADS "$BIN" pretrain "$WORK/dense.json" --run.out_dir="$WORK/runs/$name" \
            --run.threads="$THREADS" ${RUNS[$name]} > "$WORK/runs/$name.log" 2>&1 &
        running=$((running + 1))
        if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
    done
    wait
fi

echo "# ctrain MoE vs dense on $(basename "$CORPUS") (CPU, $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
args=()
for name in $ORDER; do args+=("$name=$WORK/runs/$name"); done
python3 bench/run_summary.py --after 100 "${args[@]}"
python3 bench/plot_runs.py --out "$WORK/val_loss.svg" --title "Validation loss: dense vs 8-expert top-2 MoE (same active parameters)" \
    "dense (d_ff 1024)=$WORK/runs/dense" "MoE 8×512, top-2, aux 0.01=$WORK/runs/moe"
python3 bench/plot_runs.py --out "$WORK/imbalance.svg" --field moe_imbalance --smooth 10 \
    --ylabel "max / mean expert load (worst layer)" --title "Load balance (10-step average)" \
    "aux loss 0.01=$WORK/runs/moe" "no aux, no z-loss=$WORK/runs/moe-unbalanced" "aux-free bias=$WORK/runs/moe-aux-free"
echo
echo "plots: $WORK/val_loss.svg, $WORK/imbalance.svg"

echo
echo "## Training step throughput (ctrain bench train, B=16, T=128, 30 timed steps, fastest of 3 rounds, load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| threads | dense tokens/s | MoE tokens/s | MoE / dense |"
echo "| --- | --- | --- | --- |"
for t in 1 "$(nproc)"; do
    best_dense=0 best_moe=0
    for _ in 1 2 3; do
        d=$("$BIN" bench train --config "$WORK/dense.json" --batch 16 --seq 128 --steps 30 --threads "$t" |
            sed -n 's/.*tokens_per_s=\([0-9.]*\).*/\1/p')
        # shellcheck disable=SC2086
        m=$("$BIN" bench train --config "$WORK/dense.json" --batch 16 --seq 128 --steps 30 --threads "$t" \
                ${RUNS[moe]} | sed -n 's/.*tokens_per_s=\([0-9.]*\).*/\1/p')
        best_dense=$(echo "if ($d > $best_dense) $d else $best_dense" | bc -l)
        best_moe=$(echo "if ($m > $best_moe) $m else $best_moe" | bc -l)
    done
    printf '| %s | %.0f | %.0f | %.2f |\n' "$t" "$best_dense" "$best_moe" "$(echo "$best_moe / $best_dense" | bc -l)"
done
