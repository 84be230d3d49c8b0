#!/usr/bin/env bash
# make demo: the whole pipeline on a corpus that needs no download.
#   1. a corpus: CORPUS=path (your .txt or .jsonl), or 20,000 short stories ctrain writes itself
#   2. a byte-level BPE tokenizer trained on it
#   3. token shards with a 2% validation split
#   4. a small LLaMA-style model pretrained for a few minutes on the CPU, printing the
#      validation loss as it falls and samples before and after
# Everything goes to OUT (default out/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/demo}
CTRAIN=${CTRAIN:-./ctrain}
STEPS=${STEPS:-}
mkdir -p "$OUT"
start=$(date +%s)
if [ -n "${CORPUS:-}" ]; then
    [ -e "$CORPUS" ] || { echo "demo: CORPUS=$CORPUS does not exist" >&2; exit 1; }
    corpus=$CORPUS
    echo "== demo: corpus $corpus"
else
    corpus=$OUT/stories.txt
    echo "== demo: writing 20,000 synthetic stories to $corpus"
    $CTRAIN synth stories --documents 20000 --out "$corpus"
    head -c 400 "$corpus"; echo "..."
fi
echo "== demo: training a tokenizer"
$CTRAIN tokenizer train --input "$corpus" --vocab-size 2048 --special '<|endoftext|>' --out "$OUT/tokenizer.json"
echo "== demo: sharding"
$CTRAIN shard --tokenizer "$OUT/tokenizer.json" --input "$corpus" --split paragraphs --val-fraction 0.02 --out "$OUT/data"
echo "== demo: pretraining (Ctrl-C saves a checkpoint; make demo again resumes nothing, it starts over)"
extra=()
[ -n "$STEPS" ] && extra+=("--train.max_steps=$STEPS")
if [ -n "${CORPUS:-}" ]; then extra+=("--train.sample_prompt="); fi
$CTRAIN pretrain configs/demo.json --run.out_dir="$OUT/run" --data.path="$OUT/data" "${extra[@]}"
echo "== demo: finished in $(( $(date +%s) - start )) s"
echo "   checkpoint:  $OUT/run/best.h5 (lowest validation loss) and $OUT/run/ckpt-step*.h5"
echo "   loss plot:   $OUT/run/loss.svg (open it in a browser)"
echo "   metrics:     $OUT/run/metrics.jsonl"
echo "   try:         ./ctrain generate --checkpoint $OUT/run/best.h5 --prompt 'One rainy day,' --temperature 0.7"
