#!/usr/bin/env bash
# CPU training-step benchmarks (issue 5): GPT-2 124M at B=4 T=64 (llm.c's CPU reference
# configuration) and a small LLaMA (llama-tiny: d_model 288, 6 layers, 6 heads, vocab 8192) at
# B=8 T=256. Each is measured right after the sgemm ceiling of this machine, so the ratio holds
# even on a shared machine whose load changes. Fixed inputs: random tokens from seed 1337.
#
#   bench/train_cpu.sh [--threads N] [--steps N]     (make bench runs it)
#
# Prints a Markdown table: ms/step, tokens/s, achieved GFLOP/s, sgemm ceiling, ratio, peak memory,
# and, because a shared machine disturbs means, the fastest step's GFLOP/s and the share of the
# threads' CPU time the process actually got.
# FLOPs per token = 6·N_matmul + 6·n_layer·T·d_model (see docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CTRAIN_BIN:-build/ctrain}
THREADS=0
STEPS=10
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) THREADS=$2; shift 2 ;;
        --steps) STEPS=$2; shift 2 ;;
        *) echo "usage: $0 [--threads N] [--steps N]" >&2; exit 2 ;;
    esac
done
[ -x "$BIN" ] || { echo "$BIN is missing: run make first" >&2; exit 1; }

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

echo "# ctrain bench train (CPU), $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $("$BIN" --version | sed -n 's/^  compute: //p')"
echo
echo "| model | B | T | ms/step | tokens/s | GFLOP/s | sgemm ceiling GFLOP/s | of ceiling | fastest step GFLOP/s | CPU share | peak MB |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
run() {  # preset B T ceiling-shape(n c oc)
    local preset=$1 B=$2 T=$3 n=$4 c=$5 oc=$6
    local ceiling line
    ceiling=$("$BIN" bench matmul --n "$n" --c "$c" --oc "$oc" --seconds 2 --threads "$THREADS" 2>/dev/null | field gflops)
    local all
    all=$("$BIN" bench train --model "$preset" --batch "$B" --seq "$T" --steps "$STEPS" --threads "$THREADS" 2>&1)
    line=$(echo "$all" | grep '^ms_per_step=')
    local best share
    best=$(echo "$all" | sed -n 's/^fastest step [0-9.]* ms (\([0-9.]*\) GFLOP.*/\1/p')
    share=$(echo "$all" | sed -n "s/.*this process got \([0-9]*%\).*/\1/p")
    local ms tps gf mb
    ms=$(echo "$line" | field ms_per_step); tps=$(echo "$line" | field tokens_per_s)
    gf=$(echo "$line" | field gflops); mb=$(echo "$line" | field peak_mb)
    printf "| %s | %d | %d | %s | %s | %s | %s | %.0f%% | %s | %s | %s |\n" "$preset" "$B" "$T" "$ms" "$tps" "$gf" \
        "$ceiling" "$(echo "100 * $gf / $ceiling" | bc -l)" "$best" "$share" "$mb"
}
# the ceiling is measured on the model's own MLP product shape: [B·T, d_model] x [d_ff, d_model]ᵀ
run gpt2-124m 4 64 256 768 3072
run llama-tiny 8 256 2048 288 768
