#!/usr/bin/env bash
# LoRA against full fine-tuning (issue 7): the same model, batch and random tokens (seed 1337),
# one training step = forward + backward + AdamW. LoRA: r = 8, alpha 16 on the attention
# projections (GPT-2: c_attn and attn.c_proj), base frozen: no base gradients (backward skips
# every dW product) and no AdamW moments for the base.
#
#   bench/lora_cpu.sh [--model PRESET] [--batch B] [--seq T] [--steps N] [--threads N]
#
# Prints a Markdown table: ms/step (mean and fastest), tokens/s, CPU share the process got (a
# shared machine disturbs means; the fastest step disturbs least), trainable parameters and peak
# memory (ctrain's allocator high-water mark, and the process's max RSS).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CTRAIN_BIN:-build/ctrain}
MODEL=gpt2-124m B=2 T=128 STEPS=3 THREADS=0
while [ $# -gt 0 ]; do
    case "$1" in
        --model) MODEL=$2; shift 2 ;;
        --batch) B=$2; shift 2 ;;
        --seq) T=$2; shift 2 ;;
        --steps) STEPS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        *) echo "usage: $0 [--model PRESET] [--batch B] [--seq T] [--steps N] [--threads N]" >&2; exit 2 ;;
    esac
done
[ -x "$BIN" ] || { echo "$BIN is missing: run make first" >&2; exit 1; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

echo "# ctrain LoRA vs full fine-tuning (CPU), $MODEL B=$B T=$T, $STEPS timed steps, $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| run | trainable | ms/step | fastest ms | tokens/s | CPU share | peak MB (ctrain) | max RSS MB |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
run() {  # label, extra options
    local label=$1; shift
    local out rss
    out=$( { /usr/bin/time -f 'maxrss_kb=%M' "$BIN" bench train --model "$MODEL" --batch "$B" --seq "$T" \
               --steps "$STEPS" --threads "$THREADS" "$@"; } 2>&1)
    local line fastest share trainable
    line=$(echo "$out" | grep '^ms_per_step=')
    fastest=$(echo "$out" | sed -n 's/.*fastest step \([0-9.]*\) ms.*/\1/p')
    share=$(echo "$out" | sed -n 's/.*this process got \([0-9]*%\).*/\1/p')
    trainable=$(echo "$out" | sed -n 's/.*trainable \([^ ]*\) of.*/\1/p')
    [ -n "$trainable" ] || trainable=$(echo "$out" | sed -n 's/.*): \([^ ]*\) parameters.*/\1 (all)/p')
    rss=$(echo "$out" | field maxrss_kb)
    printf '| %s | %s | %s | %s | %s | %s | %s | %.1f |\n' "$label" "$trainable" "$(echo "$line" | field ms_per_step)" \
        "$fastest" "$(echo "$line" | field tokens_per_s)" "$share" "$(echo "$line" | field peak_mb)" "$(echo "$rss / 1024" | bc -l)"
}
run "full fine-tuning"
run "LoRA r=8 (attention)" --lora.r=8 --lora.alpha=16 --lora.targets=c_attn,attn.c_proj
