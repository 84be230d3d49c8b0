#!/usr/bin/env bash
# Sharder and loader throughput on the shared corpus (GPT-2 vocabulary).
#   bench/data.sh [CORPUS] [REPEAT]
# The corpus is ../shared/data/corpora/nlp-corpus-40k.txt (3.1 MB) repeated REPEAT times
# (default 8, so that fixed start-up costs do not dominate), one document per line.
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${1:-../shared/data/corpora/nlp-corpus-40k.txt}
REPEAT=${2:-8}
TOKENIZER=${TOKENIZER:-../shared/data/tokenizers/gpt2}
[ -f "$CORPUS" ] || { echo "bench/data.sh: $CORPUS not found (it lives in ../shared/data)"; exit 1; }
[ -x build/ctrain ] || make -s
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for _ in $(seq "$REPEAT"); do cat "$CORPUS"; done > "$work/corpus.txt"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%Y-%m-%d)"
echo "corpus: $CORPUS x $REPEAT = $(du -h "$work/corpus.txt" | cut -f1)"
printf '\n%-56s %10s %14s\n' "sharder (GPT-2, lines)" "MB/s" "tokens/s"
for t in 1 $(nproc); do
    line=$(build/ctrain shard --tokenizer "$TOKENIZER" --input "$work/corpus.txt" --split lines --out "$work/ds" \
        --threads "$t" 2>&1 | grep 'MB/s,')
    mbs=$(echo "$line" | sed -E 's/.*: ([0-9.]+) MB\/s.*/\1/')
    tps=$(echo "$line" | sed -E 's/.* ([0-9.]+)M tokens\/s.*/\1/')
    printf '%-56s %10s %13sM\n' "  --threads $t" "$mbs" "$tps"
done
printf '\n%-56s %14s %16s\n' "loader (B=8, T=1024)" "tokens/s" "slowest batch"
for mode in "" "--doc-masking" "--no-prefetch --shuffle-tokens 1000000 --step-ms 1" "--shuffle-tokens 1000000 --step-ms 1"; do
    out=$(build/ctrain bench loader --data "$work/ds" --batch 8 --seq 1024 $mode)
    tps=$(echo "$out" | sed -n 's/.*tokens_per_s=\([0-9]*\).*/\1/p')
    slow=$(echo "$out" | sed -n 's/.*slowest later batch \([0-9.]*\) ms.*/\1/p')
    printf '%-56s %13.1fM %13s ms\n' "  ${mode:-default}" "$(echo "$tps / 1000000" | bc -l)" "$slow"
done
