#!/usr/bin/env bash
# GRPO on the arithmetic task (issue 24): the recipe of tests/test_grpo_run.c's learning test, with
# the curves for docs/grpo.md. A 0.66M-parameter llama (3 layers, d_model 128) SFT-trained on sums
# of two 1-2 digit numbers (the 1000-step schedule of tests/test_eval_task.c, stopped at step 550,
# where it answers about a third of held-out sums), then configs/grpo-arithmetic.json (16 prompts x
# 8 completions a step, lr 1e-4, exact-match reward, 800 steps) three ways:
#   beta0        beta 0 (TRL's default: no reference), run.seed 1337
#   beta0-seed2  the same with run.seed 2 (another order of prompts, other samples)
#   beta0.04     beta 0.04: the k3 KL to the SFT model in the loss
# Each final checkpoint answers the 200 held-out sums greedily (ctrain eval --task arithmetic).
#
#   bench/grpo_cpu.sh [--work DIR] [--steps N] [--jobs J] [--skip-runs]
#
# --jobs J runs J GRPO runs at once, one thread each (default 2: both cores). Writes
# DIR/runs/*/metrics.jsonl, DIR/heldout.svg, DIR/reward.svg and DIR/kl.svg, and prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CTRAIN_BIN:-build/ctrain}
WORK=out/bench-grpo STEPS=800 JOBS=2 SKIP_RUNS=0
while [ $# -gt 0 ]; do
    case "$1" in
        --work) WORK=$2; shift 2 ;;
        --steps) STEPS=$2; shift 2 ;;
        --jobs) JOBS=$2; shift 2 ;;
        --skip-runs) SKIP_RUNS=1; shift ;;
        *) echo "usage: $0 [--work DIR] [--steps N] [--jobs J] [--skip-runs]" >&2; exit 2 ;;
    esac
done
[ -x "$BIN" ] || { echo "$BIN is missing: run make first" >&2; exit 1; }
ROOT=$PWD
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
mkdir -p "$WORK/runs"
cd "$WORK"
TASK="--task arithmetic --operands 2 --digits 1-2"
if [ "$SKIP_RUNS" = 0 ]; then
    "$BIN" synth instructions $TASK --examples 20000 --out train.jsonl
    "$BIN" synth instructions $TASK --split heldout --seed 2 --examples 200 --out held.jsonl
    "$BIN" synth instructions $TASK --examples 4000 --seed 7 --out rl.jsonl
    cp train.jsonl train.txt
    "$BIN" tokenizer train --input train.txt --vocab-size 300 --pattern qwen2 --special '<|endoftext|>' --out tok.json
    rm -rf data prompts runs/sft
    "$BIN" shard --tokenizer tok.json --input train.jsonl --format sft --val-fraction 0.02 --out data
    "$BIN" shard --tokenizer tok.json --input rl.jsonl --format prompts --val-fraction 0.05 --out prompts
    cat > sft.json <<'JSON'
{"model": {"preset": "llama-tiny", "n_layer": 3, "d_model": 128, "n_head": 4, "n_kv_head": 2, "d_ff": 384, "max_seq_len": 64},
 "data": {"path": "data"},
 "train": {"batch_size": 16, "seq_len": 64, "max_steps": 1000, "eval_every": 0, "eval_batches": 2, "eval_exact_match": 0,
           "save_every": 0, "n_samples": 0},
 "optim": {"lr": 2e-3, "min_lr": 2e-4, "warmup_steps": 30, "weight_decay": 0.0}}
JSON
    "$BIN" sft sft.json --run.out_dir=runs/sft --run.threads=2 --stop-after 550
    run() {  # NAME ARGS...
        local name=$1; shift
        rm -rf "runs/$name"
        "$BIN" grpo "$ROOT/configs/grpo-arithmetic.json" --data.path=prompts --train.init_from=runs/sft/ckpt-step00000550.h5 \
            --run.out_dir="runs/$name" --run.threads=1 --train.max_steps="$STEPS" "$@" > "runs/$name.log" 2>&1
    }
    run beta0 &
    [ "$JOBS" -ge 2 ] || wait
    run beta0-seed2 --run.seed=2 &
    wait
    run beta0.04 --grpo.beta=0.04
fi
accuracy() { "$BIN" eval --threads 2 --task arithmetic --checkpoint "$1" --prompts held.jsonl 2>/dev/null | grep -o 'accuracy=[0-9.]*' | cut -d= -f2; }
printf '| run | held-out sums before | after %s steps | held-out prompts, greedy reward (step 0 → %s) | GRPO time |\n' "$STEPS" "$STEPS"
printf '| --- | --- | --- | --- | --- |\n'
before=$(accuracy runs/sft/ckpt-step00000550.h5)
last=$(printf 'ckpt-step%08d.h5' "$STEPS")
for name in beta0 beta0-seed2 beta0.04; do
    after=$(accuracy "runs/$name/$last")
    curve=$(python3 -c "
import json, sys
rows = [json.loads(l) for l in open('runs/$name/metrics.jsonl')]
ev = [r['reward'] for r in rows if r.get('kind') == 'eval' and 'reward' in r]
print(f'{ev[0]:.3f} → {ev[-1]:.3f}')")
    secs=$(grep -o 'in [0-9.]* s of compute' "runs/$name.log" | tail -1 | cut -d' ' -f2)
    awk -v n="$name" -v b="$before" -v a="$after" -v c="$curve" -v s="$secs" \
        'BEGIN { printf "| %s | %.1f%% | %.1f%% | %s | %s s |\n", n, 100 * b, 100 * a, c, s }'
done
python3 "$ROOT/bench/plot_runs.py" --out heldout.svg --field reward --kind eval --x step --ylabel "held-out reward (greedy)" \
    --title "GRPO on sums: held-out prompts answered right" beta0=runs/beta0 beta0-seed2=runs/beta0-seed2 beta0.04=runs/beta0.04
python3 "$ROOT/bench/plot_runs.py" --out reward.svg --field reward --x step --smooth 25 --ylabel "training reward (sampled)" \
    --title "GRPO on sums: reward of the sampled completions" beta0=runs/beta0 beta0-seed2=runs/beta0-seed2 beta0.04=runs/beta0.04
python3 "$ROOT/bench/plot_runs.py" --out kl.svg --field kl --x step --smooth 25 --ylabel "KL to the SFT model (k3, nats/token)" \
    --title "GRPO on sums, beta 0.04: KL to the reference" beta0.04=runs/beta0.04
echo "wrote $WORK/heldout.svg, $WORK/reward.svg, $WORK/kl.svg"
