#!/usr/bin/env bash
# Encoders on the shared corpus (issue 26): does MLM pretraining help a classifier? A WordPiece
# tokenizer and a small BERT pretrained with ctrain mlm on the corpus minus held-out lines; a
# synthetic sentence-classification set built from those held-out lines (train, val, test); the
# classifier fine-tuned from the pretrained encoder and from random initialisation at equal steps,
# each start at each rate of a small sweep; the rate chosen on val, its accuracy on test; one table.
#
# Task (--task order, default): "original" or "shuffled" — half the held-out sentences (their
# first --words words) are left as written, the other half have their words shuffled (never back
# into the original order). Both classes hold the same words (a bag of words scores 0.5; the bench
# prints naive-Bayes baselines on words and word bigrams on test), so only word order tells them
# apart, which the MLM's learned positions know and a fresh BERT has to learn first.
# --task replaced: half the sentences have --replace of their words swapped for random words of
# about the same corpus frequency (rank within 0.8-1.25 times the replaced word's among the
# pretraining lines' words; capitals kept): whether each word fits its context. --task lexicon:
# "yes" when the sentence holds one of the 40 words ranked 200-239 by frequency in the held-out
# lines (a bag of words suffices), for contrast.
#
# Recipe (defaults; every knob below): the held-out lines are the corpus's last 5,000 with at
# least --words + 2 words (--ft-train 3,000 + --ft-val 1,000 + --ft-test 1,000), the pretraining
# lines the rest; --ft-extra 7,000 more training sentences drawn from the pretraining lines of at
# least --words + 2 words (text the MLM saw, unlabelled; validation and test stay held out), so
# 10,000 training examples; WordPiece, 8,192 tokens, lowercased; BERT with 4 layers, d_model 256,
# 4 heads, d_ff 1024, dropout 0.1; MLM 1,000 steps of 32 rows x 128 tokens (4.1M tokens, 6.2
# epochs) with data.doc_masking, AdamW 1e-3 -> 1e-4 after 100 warm-up steps, weight decay 0.01
# (BERT's 15%, 80/10/10); fine-tuning 600 steps of 32 (1.9 epochs) at each of --ft-lrs (1e-4 3e-4
# 1e-3) from the MLM checkpoint and from random initialisation, AdamW with linear decay to 0 after
# 60 warm-up steps, weight decay 0.01, mean pooling (docs/encoder.md says why); the rate of each
# start with the highest final val_acc is its result, measured on test with --predict from the
# final checkpoint (equal steps); seed 1337.
# Takes about 2 hours on a busy 2-core VM: the pretraining 3,346 s of compute at 1,224 tokens/s
# on 2 threads, each of the six fine-tuning runs 0.4-1.3 core-seconds a step.
#
#   bench/encoder_cpu.sh [--work DIR] [--task order|replaced|lexicon] [--words N] [--replace N]
#                        [--mlm-steps N] [--ft-steps N] [--ft-train N] [--ft-val N] [--ft-test N] [--ft-extra N]
#                        [--ft-lrs "LR ..."] [--layers N] [--d-model N] [--vocab N] [--threads N]
#                        [--skip-pretrain]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CTRAIN_BIN:-build/ctrain}
CORPUS=${CORPUS:-../shared/data/corpora/nlp-corpus-40k.txt}
WORK=out/bench-encoder TASK=order WORDS=12 REPLACE=3 MLM_STEPS=1000 FT_STEPS=600 FT_TRAIN=3000 FT_VAL=1000
FT_TEST=1000 FT_EXTRA=7000 FT_LRS="1e-4 3e-4 1e-3" LAYERS=4 DMODEL=256 VOCAB=8192 THREADS=2 SKIP_PRETRAIN=0
while [ $# -gt 0 ]; do
    case "$1" in
        --work) WORK=$2; shift 2 ;;
        --task) TASK=$2; shift 2 ;;
        --words) WORDS=$2; shift 2 ;;
        --replace) REPLACE=$2; shift 2 ;;
        --mlm-steps) MLM_STEPS=$2; shift 2 ;;
        --ft-steps) FT_STEPS=$2; shift 2 ;;
        --ft-train) FT_TRAIN=$2; shift 2 ;;
        --ft-val) FT_VAL=$2; shift 2 ;;
        --ft-test) FT_TEST=$2; shift 2 ;;
        --ft-extra) FT_EXTRA=$2; shift 2 ;;
        --ft-lrs) FT_LRS=$2; shift 2 ;;
        --layers) LAYERS=$2; shift 2 ;;
        --d-model) DMODEL=$2; shift 2 ;;
        --vocab) VOCAB=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --skip-pretrain) SKIP_PRETRAIN=1; shift ;;
        *) sed -n '2,37p' "$0" >&2; exit 2 ;;
    esac
done
case "$TASK" in replaced|order|lexicon) ;; *) echo "bench/encoder_cpu.sh: --task is replaced, order or lexicon" >&2; exit 2 ;; esac
[ -x "$BIN" ] || { echo "$BIN is missing: run make first" >&2; exit 1; }
[ -f "$CORPUS" ] || { echo "bench/encoder_cpu.sh: $CORPUS not found (it lives in ../shared/data)" >&2; exit 1; }
mkdir -p "$WORK"
HELD=$((FT_TRAIN + FT_VAL + FT_TEST))

# the held-out lines (the corpus's last lines with at least --words + 2 words) and the pretraining rest
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

python3 - "$WORK" "$TASK" "$WORDS" "$REPLACE" "$FT_TRAIN" "$FT_VAL" "$FT_EXTRA" <<'PY'
import collections, json, random, sys
work, task, words, k, n_train, n_val, n_extra = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
rng = random.Random(1337)
P = ".,;:!?\"'()[]-"
def core(x):  # a word without its punctuation, or None when it is not all letters
    c = x.strip(P)
    return c if c.isalpha() else None
lines = [l.split()[:words] for l in open(f"{work}/heldout.txt", encoding="utf-8") if l.strip()]
# --ft-extra: more training sentences from the pretraining lines (text the MLM saw, unlabelled)
extra = [l.split()[:words] for l in open(f"{work}/pretrain.txt", encoding="utf-8") if len(l.split()) >= words + 2]
extra = random.Random(7).sample(extra, min(n_extra, len(extra)))
rows = []
if task == "lexicon":  # its lexicon comes from the held-out lines alone, as it was measured
    Q = ".,;:!?\"'()"
    freq = collections.Counter(x.lower().strip(Q) for w in lines for x in w)
    lexicon = {x for x, _ in freq.most_common(240)[200:]}
elif task == "replaced":
    freq = collections.Counter(c.lower() for l in open(f"{work}/pretrain.txt", encoding="utf-8")
                               for x in l.split() if (c := core(x)))
    vocab = [w for w, n in freq.most_common() if n >= 3]
    rank = {w: i for i, w in enumerate(vocab)}
def label(lines):  # the task's rows from lines of words
    rows = []
    if task == "replaced":
        for i, w in enumerate(lines):
            y = "original" if i % 2 == 0 else "replaced"
            if y == "replaced":
                w = w[:]
                spots = [j for j, x in enumerate(w) if core(x)]
                for j in rng.sample(spots, min(k, len(spots))):
                    c = core(w[j])
                    r = rank.get(c.lower(), len(vocab) - 1)
                    lo, hi = int(r * 0.8), min(len(vocab) - 1, int(r * 1.25) + 1)
                    new = c.lower()
                    while new == c.lower():
                        new = vocab[rng.randint(lo, hi)]
                    w[j] = w[j].replace(c, new.capitalize() if c[0].isupper() else new, 1)
            rows.append({"text": " ".join(w), "label": y})
    elif task == "order":
        for i, w in enumerate(lines):
            y = "original" if i % 2 == 0 else "shuffled"
            if y == "shuffled":
                s = w[:]
                while s == w and len(set(w)) > 1:
                    rng.shuffle(s)
                w = s
            rows.append({"text": " ".join(w), "label": y})
    else:
        for w in lines:
            hit = any(x.lower().strip(Q) in lexicon for x in w)
            rows.append({"text": " ".join(w), "label": "yes" if hit else "no"})
    return rows
rows = label(lines)
rng.shuffle(rows)
train = rows[:n_train]
if extra:
    train += label(extra)
    rng.shuffle(train)
for name, part in (("train", train), ("val", rows[n_train:n_train + n_val]), ("test", rows[n_train + n_val:])):
    with open(f"{work}/ft_{name}.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in part)
PY

if [ ! -f "$WORK/data/dataset.json" ]; then
    "$BIN" tokenizer train --model wordpiece --lowercase --input "$WORK/pretrain.txt" --vocab-size "$VOCAB" \
        --quiet --out "$WORK/tok.json"
    "$BIN" shard --tokenizer "$WORK/tok.json" --input "$WORK/pretrain.txt" --split lines --val-fraction 0.02 \
        --out "$WORK/data" > "$WORK/shard.log" 2>&1
fi

cat > "$WORK/model.json" <<JSON
{
  "run": {"seed": 1337, "device": "cpu", "threads": $THREADS},
  "model": {"preset": "bert-tiny", "n_layer": $LAYERS, "d_model": $DMODEL, "n_head": 4, "d_ff": $((4 * DMODEL)),
            "max_seq_len": 128, "dropout": 0.1},
  "data": {"path": "$(realpath "$WORK/data")", "tokenizer": "$(realpath "$WORK/tok.json")", "doc_masking": true},
  "train": {"batch_size": 32, "seq_len": 128, "max_steps": $MLM_STEPS, "eval_every": 200, "eval_batches": 16,
            "save_every": 0, "n_samples": 0},
  "optim": {"lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 100, "weight_decay": 0.01, "grad_clip": 1.0}
}
JSON
if [ "$SKIP_PRETRAIN" = 0 ] || [ ! -f "$WORK/mlm/best.h5" ]; then
    rm -rf "$WORK/mlm"
    OMP_NUM_THREADS=$THREADS "$BIN" mlm "$WORK/model.json" --run.out_dir="$WORK/mlm" > "$WORK/mlm.log" 2>&1
fi

# every start at every rate; the final checkpoint (equal steps) of each run predicts the test split
FT="--data.path=$WORK/ft_train.jsonl --classify.val_path=$WORK/ft_val.jsonl --train.max_steps=$FT_STEPS
    --train.eval_every=$((FT_STEPS / 3 > 0 ? FT_STEPS / 3 : 1)) --train.save_every=0 --train.seq_len=64 --classify.pooling=mean
    --optim.min_lr=0 --optim.warmup_steps=$((FT_STEPS / 10)) --optim.weight_decay=0.01"
for init in pretrained random; do
    for lr in $FT_LRS; do
        run="$WORK/ft-$init-$lr"
        rm -rf "$run"
        from=""
        [ "$init" = pretrained ] && from="--train.init_from=$(realpath "$WORK/mlm/best.h5")"
        # shellcheck disable=SC2086
        OMP_NUM_THREADS=$THREADS "$BIN" classify "$WORK/model.json" --run.out_dir="$run" $FT --optim.lr="$lr" $from \
            > "$run.log" 2>&1
        last=$(ls "$run"/ckpt-step*.h5 | sort | tail -n 1)
        OMP_NUM_THREADS=$THREADS "$BIN" classify "$WORK/model.json" --train.init_from="$last" --train.seq_len=64 \
            --predict "$WORK/ft_test.jsonl" --out "$run/test_predictions.jsonl" > "$run.test.log" 2>&1
    done
done

echo "# ctrain encoders on $(basename "$CORPUS") (CPU, $(lscpu | sed -n 's/^Model name: *//p'), $THREADS threads), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
python3 - "$WORK" "$TASK" "$MLM_STEPS" "$FT_STEPS" "$FT_LRS" <<'PY'
import collections, json, math, re, sys
sys.path.insert(0, "bench")
from run_metrics import read_metrics
work, task, mlm_steps, ft_steps, lrs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split()
def evals(run):  # the eval lines of each step merged (the loop's and the objective's)
    by_step = {}
    for o in read_metrics(run)[1]:
        if o.get("kind") == "eval":
            by_step.setdefault(o["step"], {}).update(o)
    return [by_step[k] for k in sorted(by_step)]
mlm = evals(f"{work}/mlm")
first, last = mlm[0], mlm[-1]
print(f"MLM pretraining, {mlm_steps} steps: val_loss {first['val_loss']:.3f} -> {last['val_loss']:.3f}, "
      f"val_mlm_acc {first['val_mlm_acc']:.4f} -> {last['val_mlm_acc']:.4f} "
      f"(unigram baseline {first['val_mlm_unigram_acc']:.4f})")
rows = lambda split: [json.loads(l) for l in open(f"{work}/ft_{split}.jsonl")]
def naive_bayes(n):  # a bag of words (n = 1) or of word bigrams (n = 2), Laplace-smoothed, on test
    grams = lambda t: list(zip(*[t.lower().split()[i:] for i in range(n)]))
    count, prior = collections.defaultdict(collections.Counter), collections.Counter()
    for r in rows("train"):
        prior[r["label"]] += 1
        count[r["label"]].update(grams(r["text"]))
    size = len(set().union(*count.values()))
    total = {y: sum(c.values()) + size for y, c in count.items()}
    score = lambda y, t: math.log(prior[y]) + sum(math.log((count[y][g] + 1) / total[y]) for g in grams(t))
    test = rows("test")
    return sum(max(prior, key=lambda y: score(y, r["text"])) == r["label"] for r in test) / len(test)
print(f"Naive Bayes on test ({task} task): bag of words {naive_bayes(1):.4f}, bag of word bigrams {naive_bayes(2):.4f}")
print()
print(f"| fine-tuning ({task} task, {ft_steps} steps) | lr | val_acc | val_f1 | best val_acc | test_acc | test_f1 |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for init in ("pretrained", "random"):
    results = []
    for lr in lrs:
        ev = evals(f"{work}/ft-{init}-{lr}")
        m = re.search(r"accuracy ([0-9.]+), macro-F1 ([0-9.]+)", open(f"{work}/ft-{init}-{lr}.test.log").read())
        results.append((ev[-1]["val_acc"], lr, ev, float(m[1]), float(m[2])))
    chosen = max(results, key=lambda r: r[0])[1]
    for val_acc, lr, ev, test_acc, test_f1 in results:
        mark = " (chosen on val)" if lr == chosen else ""
        print(f"| from {'the MLM checkpoint' if init == 'pretrained' else 'random initialisation'}{mark} | {lr} | "
              f"{val_acc:.4f} | {ev[-1]['val_f1']:.4f} | {max(o['val_acc'] for o in ev):.4f} | {test_acc:.4f} | {test_f1:.4f} |")
PY
