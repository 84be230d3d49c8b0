#!/usr/bin/env bash
# Mixture of Experts against a dense model with the same active parameters per token (issue 23),
# on the shared corpus. Nine pretraining runs of one recipe (LLaMA-style, 4 layers, d_model 256,
# 4 heads, T = 128, B = 16, 600 steps, AdamW 3e-3 → 3e-4, seed 1337, aux loss 0.01 and router
# z-loss 0.001 unless said):
#   dense              SwiGLU d_ff 1024
#   moe                8 experts, top-2, moe_d_ff 512 (2 × 512 = the dense width per token),
#                      Mixtral's router (top-k then softmax)
#   moe-scale2         the same, the weights (which sum to 1) times 2 (model.router_scale)
#   moe-fine-shared    DeepSeekMoE's shape: 16 experts of 256, top-3, plus 1 shared expert of 256
#                      (4 × 256 per token), router softmax_norm
#   moe-aux0.05/0.1    moe with a stronger load-balancing loss
#   moe-unbalanced     moe with both losses off (does routing collapse?)
#   moe-aux-free*      DeepSeek-V3's router (sigmoid, renormalised) balanced by the selection bias
#                      alone (train.aux_free_bias_rate 0.001 / 0.01), no aux loss, no z-loss
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
LOSSES="--train.aux_loss_coef=0.01 --train.router_z_loss_coef=0.001"
NO_LOSSES="--train.aux_loss_coef=0 --train.router_z_loss_coef=0"
declare -A RUNS=(
    [dense]=""
    [moe]="$MOE --model.router=topk_softmax $LOSSES"
    [moe-scale2]="$MOE --model.router=topk_softmax --model.router_scale=2 $LOSSES"
    [moe-fine-shared]="--model.n_experts=16 --model.top_k=3 --model.moe_d_ff=256 --model.n_shared_experts=1 --model.router=softmax_norm $LOSSES"
    [moe-aux0.05]="$MOE --model.router=topk_softmax --train.aux_loss_coef=0.05 --train.router_z_loss_coef=0.001"
    [moe-aux0.1]="$MOE --model.router=topk_softmax --train.aux_loss_coef=0.1 --train.router_z_loss_coef=0.001"
    [moe-unbalanced]="$MOE --model.router=topk_softmax $NO_LOSSES"
    [moe-aux-free0.001]="$MOE --model.router=sigmoid_norm $NO_LOSSES --train.aux_free_bias_rate=0.001"
    [moe-aux-free0.01]="$MOE --model.router=sigmoid_norm $NO_LOSSES --train.aux_free_bias_rate=0.01"
)
ORDER="dense moe moe-scale2 moe-fine-shared moe-aux0.05 moe-aux0.1 moe-unbalanced moe-aux-free0.001 moe-aux-free0.01"

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
python3 bench/plot_runs.py --out "$WORK/val_loss.svg" --ylim 4.9,6.2 --ylabel "validation loss" \
    --title "Dense vs MoE of the same active width (d_ff 1024 per token)" \
    "dense, d_ff 1024=$WORK/runs/dense" "8 experts x 512, top-2=$WORK/runs/moe" \
    "8 x 512, top-2, scale 2=$WORK/runs/moe-scale2" "16 x 256, top-3 + shared=$WORK/runs/moe-fine-shared"
python3 bench/plot_runs.py --out "$WORK/imbalance.svg" --field moe_imbalance --smooth 10 \
    --ylabel "max / mean expert load (worst layer)" --title "Load balance, 8 experts top-2 (10-step average)" \
    "aux 0.01=$WORK/runs/moe" "aux 0.05=$WORK/runs/moe-aux0.05" "aux 0.1=$WORK/runs/moe-aux0.1" \
    "no aux, no z-loss=$WORK/runs/moe-unbalanced" "aux-free, 0.001=$WORK/runs/moe-aux-free0.001" \
    "aux-free, 0.01=$WORK/runs/moe-aux-free0.01"
echo
echo "plots: $WORK/val_loss.svg, $WORK/imbalance.svg"

echo
echo "## Training step throughput (ctrain bench train, B=16, T=128, 30 timed steps, fastest of 3 rounds, load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| threads | dense tokens/s | MoE 8 x 512 top-2 tokens/s | ratio | MoE 16 x 256 top-3 + shared tokens/s | ratio |"
echo "| --- | --- | --- | --- | --- | --- |"
speed() {  # threads, options: the fastest of 3 rounds of 30 steps
    local best=0 v
    for _ in 1 2 3; do
        # shellcheck disable=SC2086  # the options are words
        v=$("$BIN" bench train --config "$WORK/dense.json" --batch 16 --seq 128 --steps 30 --threads "$1" $2 2>/dev/null |
            sed -n 's/.*tokens_per_s=\([0-9.]*\).*/\1/p')
        best=$(echo "if ($v > $best) $v else $best" | bc -l)
    done
    echo "$best"
}
for t in 1 "$(nproc)"; do
    d=$(speed "$t" "") m=$(speed "$t" "${RUNS[moe]}") f=$(speed "$t" "${RUNS[moe-fine-shared]}")
    printf '| %s | %.0f | %.0f | %.2f | %.0f | %.2f |\n' "$t" "$d" "$m" "$(echo "$m / $d" | bc -l)" "$f" "$(echo "$f / $d" | bc -l)"
done
