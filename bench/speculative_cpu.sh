#!/usr/bin/env bash
# Speculative decoding on the CPU (issue 25): tokens/s of plain greedy decoding against
# `generate --draft` at batch 1, with a pair trained here for 300 steps each on the shared corpus
# (../shared/data/corpora/nlp-corpus-40k.txt, or CORPUS=file) with one tokenizer: a target
# (LLaMA-style, d_model 384, 6 layers) and a small draft (d_model 128, 2 layers), plus the target
# as its own draft (every draft accepted: the upper bound, and what the verify pass costs).
# Training the pair takes several minutes on 2 cores; it is kept in OUT and reused.
#
#   bench/speculative_cpu.sh [--threads N] [--tokens N]
#
# Prints a Markdown table: decoder, --draft-tokens, acceptance, tokens/s (median over the prompts
# of each one's fastest of 3 runs), speed-up over plain decoding; greedy, then sampling at temperature 0.8. On a shared
# machine use --threads 1: with every core busy, OpenMP threads that wait on each other made a
# 2-thread decode 100× slower here.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CTRAIN_BIN:-build/ctrain}
OUT=${OUT:-out/bench-speculative}
THREADS=0
TOKENS=192
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) THREADS=$2; shift 2 ;;
        --tokens) TOKENS=$2; shift 2 ;;
        *) echo "usage: $0 [--threads N] [--tokens N]" >&2; exit 2 ;;
    esac
done
[ -x "$BIN" ] || { echo "$BIN is missing: run make first" >&2; exit 1; }
mkdir -p "$OUT"
CORPUS=${CORPUS:-../shared/data/corpora/nlp-corpus-40k.txt}
[ -e "$CORPUS" ] || { echo "$CORPUS is missing: name a text file with CORPUS=" >&2; exit 1; }
if [ ! -e "$OUT/data/dataset.json" ]; then
    "$BIN" tokenizer train --input "$CORPUS" --vocab-size 4096 --special '<|endoftext|>' --out "$OUT/tokenizer.json" >&2
    "$BIN" shard --tokenizer "$OUT/tokenizer.json" --input "$CORPUS" --val-fraction 0.02 --out "$OUT/data" >&2
fi
ckpt() { ls "$OUT/$1"/ckpt-step*.h5 2>/dev/null | tail -1; }  # a run's last checkpoint
train() {  # name steps overrides...
    local name=$1 steps=$2
    shift 2
    [ -n "$(ckpt "$name")" ] && return
    "$BIN" pretrain configs/demo.json --run.out_dir="$OUT/$name" --data.path="$OUT/data" --train.max_steps="$steps" \
        --train.eval_every=100 --train.save_every=0 --train.n_samples=0 --run.threads="$THREADS" "$@" >&2
}
train draft 300 --model.n_layer=2 --model.d_model=128 --model.n_head=4 --model.n_kv_head=2 --model.d_ff=384 \
    --model.max_seq_len=256 --train.seq_len=128
train target 300 --model.n_layer=6 --model.d_model=384 --model.n_head=6 --model.n_kv_head=2 --model.d_ff=1024 \
    --model.max_seq_len=256 --train.seq_len=128

prompts=("The film" "In this report, the Committee" "I think that")
# tokens/s of each prompt (the fastest of 3 runs: on a shared machine the least disturbed one;
# stderr's "N tokens in S s, R tokens/s"), and the acceptance
measure() {  # temperature, extra args...
    local temp=$1
    shift
    local rates=() acc=()
    for p in "${prompts[@]}"; do
        local err best=0 r
        for _ in 1 2 3; do
            err=$("$BIN" generate --checkpoint "$(ckpt target)" --prompt "$p" --temperature "$temp" --ignore-eos \
                  --max-tokens "$TOKENS" --threads "$THREADS" --stats "$@" 2>&1 >/dev/null)
            r=$(echo "$err" | sed -n 's/.* \([0-9.]*\) tokens\/s$/\1/p')
            best=$(echo "if ($r > $best) $r else $best" | bc -l)
        done
        rates+=("$best")
        acc+=("$(echo "$err" | sed -n 's/.*draft acceptance \([0-9.]*\)%.*/\1/p')")
    done
    local median
    median=$(printf '%s\n' "${rates[@]}" | sort -g | sed -n 2p)
    local mean_acc=-
    [ -n "${acc[0]}" ] && mean_acc=$(printf '%s\n' "${acc[@]}" | awk '{s+=$1} END {printf "%.1f%%", s/NR}')
    echo "$median $mean_acc"
}
echo "# ctrain speculative decoding (CPU, batch 1, $TOKENS tokens after each of 3 prompts), $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $("$BIN" --version | sed -n 's/^  compute: //p' | sed 's/; [0-9]* threads$//'); --threads $THREADS (0: every core)"
echo
echo "| decoder | --draft-tokens | acceptance | tokens/s (median) | speed-up |"
echo "| --- | --- | --- | --- | --- |"
read -r plain _ <<<"$(measure 0)"
echo "| plain | - | - | $plain | 1.00 |"
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
for k in 2 4 6; do
    read -r r a <<<"$(measure 0 --draft "$(ckpt draft)" --draft-tokens "$k")"
    echo "| draft model (d128, 2 layers) | $k | $a | $r | $(ratio "$r" "$plain") |"
done
read -r r a <<<"$(measure 0 --draft "$(ckpt target)" --draft-tokens 4)"
echo "| the target as its own draft | 4 | $a | $r | $(ratio "$r" "$plain") |"
# sampling (temperature 0.8, seed 1337): another text than greedy's, the same for plain and
# speculative only in distribution
read -r splain _ <<<"$(measure 0.8)"
echo "| plain, temperature 0.8 | - | - | $splain | 1.00 |"
read -r r a <<<"$(measure 0.8 --draft "$(ckpt draft)" --draft-tokens 4)"
echo "| draft model, temperature 0.8 | 4 | $a | $r | $(ratio "$r" "$splain") |"
