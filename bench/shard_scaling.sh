#!/usr/bin/env bash
# Sharding that scales (issue 28): `ctrain shard` with 1, 2, 4 ... threads up to the cores, on
#   many  FILES files, each the shared corpus COPIES times, one document per line (--split lines)
#   one   the same text as one .txt document (--split file: cut at the pre-tokenizer's split points)
# beside `ctrain tokenize` on one thread over the same text (its --stats encoding time: the
# single-thread tokenize speed the target is stated in; N threads should shard at >= 0.8 x N x that). Every run's dataset is compared
# with the one-thread run's, byte for byte. Wall-clock MB/s, and MB per CPU-second of the whole
# process (user + system), which on a machine shared with other jobs is the speed the code has
# while it runs.
#   bench/shard_scaling.sh [FILES] [COPIES]        (default 10 files x 2 copies: 62 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${1:-10}
COPIES=${2:-2}
CORPUS=${CORPUS:-../shared/data/corpora/nlp-corpus-40k.txt}
TOKENIZER=${TOKENIZER:-../shared/data/tokenizers/gpt2}
CTRAIN=${CTRAIN:-build/ctrain}  # another build to compare with
[ -f "$CORPUS" ] || { echo "bench/shard_scaling.sh: $CORPUS not found (it lives in ../shared/data)"; exit 1; }
[ -x "$CTRAIN" ] || make -s
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/many"
for f in $(seq -w "$FILES"); do for _ in $(seq "$COPIES"); do cat "$CORPUS"; done > "$work/many/part-$f.txt"; done
cat "$work"/many/*.txt > "$work/one.txt"
bytes=$(stat -c %s "$work/one.txt")
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M') UTC; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "text: $FILES files x $COPIES copies of $CORPUS = $((bytes / 1000000)) MB"
# runs "$@" and prints "wall_s cpu_s" of it
timed() { /usr/bin/time -f '%e %U %S' -o "$work/time" "$@" > /dev/null 2> "$work/log" || { cat "$work/log"; exit 1; }
          awk '{printf "%s %.2f", $1, $2 + $3}' "$work/time"; }
rate() { awk -v b="$bytes" -v s="$1" 'BEGIN{printf "%.1f", b / s / 1e6}'; }
read -r wall cpu <<< "$(timed "$CTRAIN" tokenize --tokenizer "$TOKENIZER" --input "$work/one.txt" --threads 1 --stats)"
encode=$(sed -n 's/.*thread, \([0-9.]*\) s).*/\1/p' "$work/log")
printf '%-40s %8s %10s %12s\n' "" "wall s" "MB/s" "MB/cpu-s"
printf '%-40s %8s %10s %12s\n' "ctrain tokenize, 1 thread (encoding)" "$encode" "$(rate "$encode")" ""
printf '%-40s %8s %10s %12s\n' "  the whole process (reading, printing)" "$wall" "$(rate "$wall")" "$(rate "$cpu")"
threads=1
while :; do
    for input in many one; do
        if [ $input = many ]; then args=(--input "$work/many" --split lines); else args=(--input "$work/one.txt" --split file); fi
        read -r wall cpu <<< "$(timed "$CTRAIN" shard --tokenizer "$TOKENIZER" "${args[@]}" --out "$work/ds-$input-$threads" --threads "$threads")"
        same=""
        if [ "$threads" != 1 ]; then
            if diff -rq "$work/ds-$input-1" "$work/ds-$input-$threads" > /dev/null; then same="  (same bytes as 1 thread)"
            else same="  (DIFFERS from 1 thread)"; fi
        fi
        printf '%-40s %8s %10s %12s%s\n' "ctrain shard, $input, $threads thread(s)" "$wall" "$(rate "$wall")" "$(rate "$cpu")" "$same"
    done
    [ "$threads" -ge "$(nproc)" ] && break
    threads=$((threads * 2 > $(nproc) ? $(nproc) : threads * 2))
done
