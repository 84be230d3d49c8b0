#!/usr/bin/env bash
# Encoders on the shared corpus (issue 26): does MLM pretraining help a classifier? A WordPiece
# tokenizer and a small BERT pretrained with ctrain mlm on the corpus minus held-out lines; a
# synthetic sentence-classification set built from those held-out lines; the classifier fine-tuned
# from the pretrained encoder and from random initialisation at equal steps; one table.
#
# Task (--task order, default): "original" or "shuffled" — half the held-out sentences (their first
# --words words) keep their word order, the other half have their words shuffled (never back into
# the original order). Both classes have the same bag of words, so only word order tells them
# apart: knowledge an MLM-pretrained encoder has. --task lexicon: "yes" when the sentence holds one
# of a set of words (the 40 words ranked 200-239 by frequency in the held-out lines; a bag of
# words suffices), for contrast.
#
# Recipe (defaults; every knob below): WordPiece, 8,192 tokens, lowercased, trained on the
# pretraining lines; BERT with 4 layers, d_model 256, 4 heads, d_ff 1024, T = 64, B = 32, dropout
# 0.1; MLM 1,500 steps (3.1M tokens), AdamW 1e-3 -> 1e-4 after 100 warm-up steps, weight decay 0.01 (BERT's 15%,
# 80/10/10); fine-tuning 300 steps of 32 on 4,000 examples (val 1,000), AdamW 3e-4 from the MLM
# checkpoint (--ft-lr) and 1e-3 from random initialisation (--ft-lr-random: a fresh model wants a
# larger rate; set both equal to compare at one rate), linear decay to 0 after 30 warm-up steps,
# weight decay 0.01; seed 1337.
# Takes about 20-30 minutes on 2 idle cores, most of it the pretraining (--mlm-steps sets it; this
# model ran at 1,333 tokens/s on 2 cores shared with other jobs at load 5, faster alone).
#
#   bench/encoder_cpu.sh [--work DIR] [--mlm-steps N] [--ft-steps N] [--ft-train N] [--ft-val N]
#                        [--ft-lr LR] [--ft-lr-random LR] [--task order|lexicon] [--words N] [--layers N] [--d-model N]
#                        [--vocab N] [--threads N] [--skip-pretrain]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CTRAIN_BIN:-build/ctrain}
CORPUS=${CORPUS:-../shared/data/corpora/nlp-corpus-40k.txt}
WORK=out/bench-encoder MLM_STEPS=1500 FT_STEPS=300 FT_TRAIN=4000 FT_VAL=1000 FT_LR=3e-4 FT_LR_RANDOM=1e-3 TASK=order WORDS=12
LAYERS=4 DMODEL=256 VOCAB=8192 THREADS=2 SKIP_PRETRAIN=0
while [ $# -gt 0 ]; do
    case "$1" in
        --work) WORK=$2; shift 2 ;;
        --mlm-steps) MLM_STEPS=$2; shift 2 ;;
        --ft-steps) FT_STEPS=$2; shift 2 ;;
        --ft-train) FT_TRAIN=$2; shift 2 ;;
        --ft-val) FT_VAL=$2; shift 2 ;;
        --ft-lr) FT_LR=$2; shift 2 ;;
        --ft-lr-random) FT_LR_RANDOM=$2; shift 2 ;;
        --task) TASK=$2; shift 2 ;;
        --words) WORDS=$2; shift 2 ;;
        --layers) LAYERS=$2; shift 2 ;;
        --d-model) DMODEL=$2; shift 2 ;;
        --vocab) VOCAB=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --skip-pretrain) SKIP_PRETRAIN=1; shift ;;
        *) sed -n '2,26p' "$0" >&2; exit 2 ;;
    esac
done
[ -x "$BIN" ] || { echo "$BIN is missing: run make first" >&2; exit 1; }
[ -f "$CORPUS" ] || { echo "bench/encoder_cpu.sh: $CORPUS not found (it lives in ../shared/data)" >&2; exit 1; }
mkdir -p "$WORK"
HELD=$((FT_TRAIN + FT_VAL))

# the held-out lines (the corpus's last lines with at least --words words) and the pretraining rest
python3 - "$CORPUS" "$WORK" "$HELD" "$WORDS" <<'PY'
import sys
corpus, work, held, words = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
lines = [l.strip() for l in open(corpus, encoding="utf-8") if l.strip()]
out, rest = [], []
for l in reversed(lines):
    (out if len(out) < held and len(l.split()) >= words + 2 else rest).append(l)
open(f"{work}/pretrain.txt", "w").write("\n".join(reversed(rest)) + "\n")
open(f"{work}/heldout.txt", "w").write("\n".join(reversed(out)) + "\n")
PY

python3 - "$WORK" "$FT_TRAIN" "$TASK" "$WORDS" <<'PY'
import collections, json, random, sys
work, n_train, task, words = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rng = random.Random(1337)
lines = [l.split()[:words] for l in open(f"{work}/heldout.txt", encoding="utf-8") if l.strip()]
rows = []
if task == "order":
    for i, w in enumerate(lines):
        label = "original" if i % 2 == 0 else "shuffled"
        if label == "shuffled":
            s = w[:]
            while s == w and len(set(w)) > 1:
                rng.shuffle(s)
            w = s
        rows.append({"text": " ".join(w), "label": label})
elif task == "lexicon":
    freq = collections.Counter(x.lower().strip(".,;:!?\"'()") for w in lines for x in w)
    lexicon = {x for x, _ in freq.most_common(240)[200:]}
    for w in lines:
        hit = any(x.lower().strip(".,;:!?\"'()") in lexicon for x in w)
        rows.append({"text": " ".join(w), "label": "yes" if hit else "no"})
else:
    sys.exit("--task is order or lexicon")
rng.shuffle(rows)
with open(f"{work}/ft_train.jsonl", "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows[:n_train])
with open(f"{work}/ft_val.jsonl", "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows[n_train:])
PY

if [ ! -f "$WORK/data/dataset.json" ]; then
    "$BIN" tokenizer train --model wordpiece --lowercase --input "$WORK/pretrain.txt" --vocab-size "$VOCAB" \
        --quiet --out "$WORK/tok.json"
    "$BIN" shard --tokenizer "$WORK/tok.json" --input "$WORK/pretrain.txt" --split lines --val-fraction 0.02 \
        --out "$WORK/data" > "$WORK/shard.log" 2>&1
fi

cat > "$WORK/model.json" <<EOF
{
  "run": {"seed": 1337, "device": "cpu", "threads": $THREADS},
  "model": {"preset": "bert-tiny", "n_layer": $LAYERS, "d_model": $DMODEL, "n_head": 4, "d_ff": $((4 * DMODEL)),
            "max_seq_len": 128, "dropout": 0.1},
  "data": {"path": "$(realpath "$WORK/data")", "tokenizer": "$(realpath "$WORK/tok.json")"},
  "train": {"batch_size": 32, "seq_len": 64, "max_steps": $MLM_STEPS, "eval_every": 500, "eval_batches": 16,
            "save_every": 0, "n_samples": 0},
  "optim": {"lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 100, "weight_decay": 0.01, "grad_clip": 1.0}
}
EOF
if [ "$SKIP_PRETRAIN" = 0 ] || [ ! -f "$WORK/mlm/best.h5" ]; then
    rm -rf "$WORK/mlm"
    OMP_NUM_THREADS=$THREADS "$BIN" mlm "$WORK/model.json" --run.out_dir="$WORK/mlm" > "$WORK/mlm.log" 2>&1
fi

FT="--data.path=$WORK/ft_train.jsonl --classify.val_path=$WORK/ft_val.jsonl --train.max_steps=$FT_STEPS
    --train.eval_every=$((FT_STEPS / 3 > 0 ? FT_STEPS / 3 : 1)) --optim.min_lr=0
    --optim.warmup_steps=$((FT_STEPS / 10)) --optim.weight_decay=0.01"
for init in pretrained random; do
    rm -rf "$WORK/ft-$init"
    from="--optim.lr=$FT_LR_RANDOM"
    [ "$init" = pretrained ] && from="--optim.lr=$FT_LR --train.init_from=$(realpath "$WORK/mlm/best.h5")"
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=$THREADS "$BIN" classify "$WORK/model.json" --run.out_dir="$WORK/ft-$init" $FT $from \
        > "$WORK/ft-$init.log" 2>&1
done

echo "# ctrain encoders on $(basename "$CORPUS") (CPU, $(lscpu | sed -n 's/^Model name: *//p'), $THREADS threads), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
python3 - "$WORK" "$TASK" "$MLM_STEPS" "$FT_STEPS" "$FT_LR" "$FT_LR_RANDOM" <<'PY'
import json, sys
work, task, mlm_steps, ft_steps, lr, lr_random = sys.argv[1:]
def evals(path):  # the eval lines of each step merged (the loop's and the objective's)
    by_step = {}
    for l in open(path):
        o = json.loads(l) if l.startswith("{") else {}
        if o.get("kind") == "eval":
            by_step.setdefault(o["step"], {}).update(o)
    return [by_step[k] for k in sorted(by_step)]
mlm = evals(f"{work}/mlm/metrics.jsonl")
first, last = mlm[0], mlm[-1]
print(f"MLM pretraining, {mlm_steps} steps: val_loss {first['val_loss']:.3f} -> {last['val_loss']:.3f}, "
      f"val_mlm_acc {first['val_mlm_acc']:.4f} -> {last['val_mlm_acc']:.4f} "
      f"(unigram baseline {first['val_mlm_unigram_acc']:.4f})")
print()
print(f"| fine-tuning ({task} task, {ft_steps} steps) | lr | val_acc | val_f1 | val_loss | best val_acc |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for init in ("pretrained", "random"):
    ev = evals(f"{work}/ft-{init}/metrics.jsonl")
    print(f"| from {'the MLM checkpoint' if init == 'pretrained' else 'random initialisation'} | "
          f"{lr if init == 'pretrained' else lr_random} | {ev[-1]['val_acc']:.4f} | {ev[-1]['val_f1']:.4f} | {ev[-1]['val_loss']:.4f} | "
          f"{max(o['val_acc'] for o in ev):.4f} |")
PY
