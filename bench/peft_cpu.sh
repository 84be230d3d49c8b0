#!/usr/bin/env bash
# Prompt learning against LoRA and the frozen base on the synthetic instruction task (issue 27),
# the task of sft.lora_learns_a_new_answer_format (tests/test_pretrain.c): a tiny llama base
# pretrained on "reverse: a b => b a" text (at most 4 letters), then SFT in another format
# (--template plain: "reverse: a b\n b a<|endoftext|>") over the frozen base, at equal steps:
# prompt tuning, P-tuning, prefix tuning (without and with PEFT's projection), LoRA (r 16 on every
# linear layer); "frozen base" is the base's exact
# match in the SFT format at step 0. Held-out exact match on 100 validation examples (greedy).
# One example per row (data.packing false): PEFT's layout, where every example sees the virtual tokens.
#
#   bench/peft_cpu.sh [--steps N] [--base-steps N] [--virtual V] [--threads N] [--out DIR] [--only "DIR ..."]
#
# --only runs just those methods (their run folders: prompt ptuning prefix prefix_proj lora) over
# the same base (pretraining is deterministic at a given thread count).
#
# Prints a Markdown table: exact match before and after, trainable parameters, max RSS (the
# whole process: the base, its activations, the adapter and its optimizer state) and the
# training tokens/s of the run's last logged step (a shared machine disturbs it).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${CTRAIN_BIN:-build/ctrain}")
STEPS=600 BASE_STEPS=2000 V=16 THREADS=1 OUT=out/peft-bench ONLY=
while [ $# -gt 0 ]; do
    case "$1" in
        --steps) STEPS=$2; shift 2 ;;
        --base-steps) BASE_STEPS=$2; shift 2 ;;
        --virtual) V=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        *) echo "usage: $0 [--steps N] [--base-steps N] [--virtual V] [--threads N] [--out DIR] [--only \"DIR ...\"]" >&2; exit 2 ;;
    esac
done
[ -x "$BIN" ] || { echo "$BIN is missing: run make first" >&2; exit 1; }
mkdir -p "$OUT" && cd "$OUT"
if [ ! -d sft ]; then
    "$BIN" synth instructions --task reverse --examples 13000 --seed 3 --out all.jsonl
    grep -E '"response": "[a-z]( [a-z]){0,3}"}' all.jsonl > rev.jsonl
    sed -E 's/^\{"prompt": "(.*)", "response": "(.*)"\}$/\1 => \2\n/' rev.jsonl > plain.txt
    sed -E 's/"response": "/"response": " /' rev.jsonl > spaced.jsonl
    "$BIN" tokenizer train --input plain.txt --vocab-size 300 --special '<|endoftext|>' --out tok.json
    "$BIN" shard --tokenizer tok.json --input plain.txt --split paragraphs --out lm --val-fraction 0.02
    "$BIN" shard --tokenizer tok.json --input spaced.jsonl --format sft --template plain --out sft --val-fraction 0.05
fi
MODEL='"model": {"preset": "llama-tiny", "n_layer": 3, "d_model": 128, "n_head": 4, "n_kv_head": 2, "d_ff": 384, "max_seq_len": 96}'
cat > base.json <<JSON
{$MODEL, "data": {"path": "lm"}, "train": {"batch_size": 16, "seq_len": 64, "max_steps": $BASE_STEPS,
 "eval_every": $BASE_STEPS, "eval_batches": 4, "save_every": 0, "n_samples": 0},
 "optim": {"lr": 2e-3, "min_lr": 2e-4, "warmup_steps": 30, "weight_decay": 0}}
JSON
BASE=base/ckpt-step$(printf '%08d' "$BASE_STEPS").h5
[ -f "$BASE" ] || "$BIN" pretrain base.json --run.out_dir=base --run.threads="$THREADS" > base.log 2>&1
cat > sft.json <<JSON
{$MODEL, "data": {"path": "sft", "packing": false}, "train": {"batch_size": 16, "seq_len": 32, "max_steps": $STEPS,
 "eval_every": $STEPS, "eval_batches": 4, "eval_exact_match": 100, "save_every": 0, "n_samples": 0,
 "init_from": "$BASE"}, "optim": {"min_lr": 0, "warmup_steps": 20, "weight_decay": 0}}
JSON

echo "# ctrain prompt learning vs LoRA on the reverse task's new format (CPU, $THREADS thread), $STEPS steps of 16 examples (one per row, 32 tokens), $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| method | exact match at step 0 | after $STEPS steps | trainable | max RSS MB | tokens/s |"
echo "| --- | --- | --- | --- | --- | --- |"
run() {  # label, run folder, options
    local label=$1 dir=$2; shift 2
    [ -z "$ONLY" ] || [[ " $ONLY " == *" $dir "* ]] || return 0
    rm -rf "$dir"
    /usr/bin/time -f 'maxrss_kb=%M' "$BIN" sft sft.json --run.out_dir="$dir" --run.threads="$THREADS" "$@" > "$dir.log" 2>&1
    local before after trainable rss tps
    before=$(sed -n 's/.*step *0 | exact match \([0-9.]*\)%.*/\1/p' "$dir.log" | head -1)
    after=$(sed -n 's/.*done: exact match \([0-9.]*\)%.*/\1/p' "$dir.log" | tail -1)
    trainable=$(sed -n 's/.*trainable \([^ ]*\) of.*/\1/p' "$dir.log" | head -1)
    rss=$(sed -n 's/^maxrss_kb=\([0-9]*\)/\1/p' "$dir.log")
    tps=$(grep '"kind": *"train"' "$dir/metrics.jsonl" | tail -1 | sed -n 's/.*"tokens_per_s": *\([0-9.]*\).*/\1/p')
    printf '| %s | %s%% | %s%% | %s | %.0f | %s |\n' "$label" "$before" "$after" "$trainable" "$(echo "$rss / 1024" | bc -l)" "${tps%.*}"
}
# PEFT's TEXT init (Lester et al.'s advice): random normal(0, 1) rows, far larger than this base's
# embeddings, start the loss above uniform (8.2 against ln 300 = 5.7) and 300 steps do not bring it back
run "prompt tuning (V $V, text init)" prompt --peft.type=prompt_tuning --peft.num_virtual_tokens="$V" \
    --peft.prompt_tuning_init=text --peft.prompt_tuning_init_text="reverse the letters: a b c => c b a" --optim.lr=3e-2
run "P-tuning (V $V, MLP 128)" ptuning --peft.type=p_tuning --peft.num_virtual_tokens="$V" --optim.lr=3e-3
run "prefix tuning (V $V)" prefix --peft.type=prefix_tuning --peft.num_virtual_tokens="$V" --optim.lr=3e-2
run "prefix tuning (V $V, projection 64)" prefix_proj --peft.type=prefix_tuning --peft.num_virtual_tokens="$V" \
    --peft.prefix_projection=true --optim.lr=3e-3
run "LoRA r 16, all-linear" lora --lora.r=16 --lora.alpha=32 --lora.targets=all-linear --optim.lr=3e-3
