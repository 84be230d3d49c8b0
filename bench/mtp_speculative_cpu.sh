#!/usr/bin/env bash
# Self-speculative decoding on the CPU (issue 25): tokens/s of plain decoding against
# `generate --speculative` (the checkpoint's own multi-token-prediction modules draft) at batch
# 1, for a checkpoint with modules (model.mtp_depth D > 0), with the acceptance overall and per
# depth. Nothing is trained here: name the checkpoint.
#
#   CKPT=run/ckpt-step00000600.h5 bench/mtp_speculative_cpu.sh [--threads N] [--tokens N]
#
# Prints a Markdown table: decoder, drafts per round, acceptance (overall; depth 1, 2, ...: the
# share of the d-th drafted tokens that were accepted, over the prompts), tokens/s (median over
# the prompts of each one's fastest of 3 runs) and the speed-up over plain decoding; greedy for
# every K from 1 to D (bf16 drafts, generate's default), greedy with fp32 drafts at K = D, then
# sampling at temperature 0.8 with K = D. The decoders take turns, prompt by prompt and run by run,
# so that a busy machine slows them alike; the load average is printed at the start and the end.
# --threads defaults to 1: on a shared machine OpenMP threads that wait on each other slow a
# batch-1 decode down.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CTRAIN_BIN:-build/ctrain}
THREADS=1
TOKENS=192
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) THREADS=$2; shift 2 ;;
        --tokens) TOKENS=$2; shift 2 ;;
        *) echo "usage: CKPT=file.h5 $0 [--threads N] [--tokens N]" >&2; exit 2 ;;
    esac
done
[ -x "$BIN" ] || { echo "$BIN is missing: run make first" >&2; exit 1; }
[ -n "${CKPT:-}" ] && [ -e "$CKPT" ] || { echo "name a checkpoint with modules: CKPT=file.h5 $0" >&2; exit 1; }
DEPTH=$("$BIN" ckpt info "$CKPT" 2>/dev/null | sed -n 's/.*"mtp_depth":[[:space:]]*\([0-9]*\).*/\1/p' | head -1)
if [ -z "$DEPTH" ]; then  # ckpt info names no depth: --speculative's own error says what is wrong
    DEPTH=$("$BIN" generate --checkpoint "$CKPT" --speculative --draft-tokens 64 --prompt x --max-tokens 1 \
            --threads 1 2>&1 | sed -n 's/.*(model.mtp_depth), which draft at most \([0-9]*\).*/\1/p')
fi
[ -n "$DEPTH" ] && [ "$DEPTH" -gt 0 ] || { "$BIN" generate --checkpoint "$CKPT" --speculative --prompt x \
                                              --max-tokens 1 --threads 1 >/dev/null; exit 1; }

# the opening words of 8 held-out lines of the shared corpus (lines the shard of bench/mtp_cpu.sh,
# `--split lines --val-fraction 0.05 --seed 1337`, puts in validation: no model there trained on them)
prompts=("The importance of filling the" "Gandhi also campaigned hard going" "It can become habit just"
         "We cannot renew our country" "As we speak, routes in" "They did however take care"
         "The parties agree that the" "Identify the assets can you")
# The decoders compared, one line each: label | drafts per round | temperature | extra args.
# Greedy for every K from 1 to D (the modules drafting with their bf16 weight copies, generate's
# default, and once more with the fp32 weights at K = D), then sampling at temperature 0.8 with K = D.
decoders=("plain, greedy|-|0|")
for ((k = 1; k <= DEPTH; k++)); do decoders+=("--speculative, greedy|$k|0|--speculative --draft-tokens $k"); done
decoders+=("--speculative --draft-weights fp32, greedy|$DEPTH|0|--speculative --draft-weights fp32")
decoders+=("plain, temperature 0.8|-|0.8|" "--speculative, temperature 0.8|$DEPTH|0.8|--speculative")
# Per prompt and decoder the fastest of 3 runs (stderr's "N tokens in S s, R tokens/s"), the
# decoders taking turns (prompt by prompt, run by run) so that a busy machine slows them alike.
declare -A best accept
started="$(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for p in "${prompts[@]}"; do
    for _ in 1 2 3; do
        for d in "${!decoders[@]}"; do
            IFS='|' read -r _ _ temp extra <<<"${decoders[$d]}"
            # shellcheck disable=SC2086  # extra is a list of words
            err=$("$BIN" generate --checkpoint "$CKPT" --prompt "$p" --temperature "$temp" --ignore-eos \
                  --max-tokens "$TOKENS" --threads "$THREADS" --stats $extra 2>&1 >/dev/null)
            r=$(echo "$err" | sed -n 's/.* \([0-9.]*\) tokens\/s$/\1/p')
            key="$d|$p"
            best[$key]=$(echo "if ($r > ${best[$key]:-0}) $r else ${best[$key]:-0}" | bc -l)
            accept[$key]="$(echo "$err" | grep 'acceptance by depth' || true)"
        done
    done
done
# Decoder d: the median over the prompts of their fastest runs, then the acceptance summed over
# the prompts: overall and per depth ("-" for plain).
summary() {
    local d=$1 rates=() lines="" median acc
    for p in "${prompts[@]}"; do
        rates+=("${best[$d|$p]}")
        lines+="${accept[$d|$p]}"$'\n'
    done
    median=$(printf '%s\n' "${rates[@]}" | sort -g |
             awk '{v[NR] = $1} END {printf "%.1f", (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2}')
    # "generate: acceptance by depth: 1: 81.0% (30 of 37), 2: ..." -> the counts summed per depth
    acc=$(echo "$lines" | grep -o '[0-9]*: [0-9.]*% ([0-9]* of [0-9]*)' |
          awk '{d=$1; sub(":", "", d); a[d]+=substr($3, 2); n[d]+=$5; if (d > D) D = d}
               END {if (!D) {print "-"; exit} for (d = 1; d <= D; d++) {A+=a[d]; N+=n[d]}
                    printf "%.1f%%;", N ? 100*A/N : 0
                    for (d = 1; d <= D; d++) printf " depth %d %.1f%% (%d of %d)%s", d, n[d] ? 100*a[d]/n[d] : 0, a[d], n[d], d < D ? "," : ""}')
    echo "$median $acc"
}
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
echo "# ctrain self-speculative decoding (CPU, batch 1, $TOKENS tokens after each of ${#prompts[@]} prompts), $started"
echo "# $CKPT (model.mtp_depth $DEPTH); $("$BIN" --version | sed -n 's/^  compute: //p' | sed 's/; [0-9]* threads$//'); --threads $THREADS (0: every core)"
echo
echo "| decoder | drafts per round | acceptance (overall; per depth) | tokens/s (median) | speed-up |"
echo "| --- | --- | --- | --- | --- |"
base=""
for d in "${!decoders[@]}"; do
    IFS='|' read -r label k _ extra <<<"${decoders[$d]}"
    read -r r a <<<"$(summary "$d")"
    [ -z "$extra" ] && base=$r  # a plain decoder: the speed-ups below are against it
    echo "| $label | $k | $a | $r | $(ratio "$r" "$base") |"
done
echo "# at the end: $(date -u '+%H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
