#!/usr/bin/env bash
# Decoding on the CPU, ctrain against llama.cpp on the same model (issue 28): `ctrain bench
# generate` with fp32 and bf16 weights, and bench/llama_cpp_bench.c (libllama) on the model
# exported with `ctrain export gguf` at F32 and F16: prompt processing (prefill) and greedy
# decoding tokens/s, the weights' GB/s while decoding and its fraction of the memory bandwidth
# (measured by ctrain in the same runs, on the same threads).
#
#   bench/generate_vs_llamacpp.sh [--threads N] [--prompt-len P] [--gen N] [--rounds R] [--models "llama-tiny llama-110m"]
#
# Each model (a preset, random weights: decoding speed does not depend on the values) becomes a
# checkpoint with one pretraining step on a few synthetic stories with a 512-token tokenizer (the
# preset's vocabulary kept; llama.cpp needs a tokenizer in the file), then two GGUF files; all kept
# in OUT (default out/bench-generate) and reused. The four engines take turns, round by round
# (one untimed and one timed pass each per round), so that a busy machine slows them alike; the
# table gives the median and best over the rounds. Needs build/ctrain and llama.cpp
# (scripts/build_llama_cpp.sh --bench: libllama from $CTRAIN_LLAMA_CPP_DIR, default build/llama.cpp);
# exits 77 when llama.cpp cannot be built here. Defaults take about 3-5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CTRAIN_BIN:-build/ctrain}
OUT=${OUT:-out/bench-generate}
THREADS=$(nproc 2>/dev/null || echo 2)
PROMPT=64
GEN=32
ROUNDS=3
MODELS="llama-tiny llama-110m"
usage() { echo "usage: $0 [--threads N] [--prompt-len P] [--gen N] [--rounds R] [--models \"PRESET ...\"]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage
    case "$1" in
        --threads) THREADS=$2 ;;
        --prompt-len) PROMPT=$2 ;;
        --gen) GEN=$2 ;;
        --rounds) ROUNDS=$2 ;;
        --models) MODELS=$2 ;;
        *) usage ;;
    esac
    shift 2
done
[ -x "$BIN" ] || { echo "$BIN is missing: run make first" >&2; exit 1; }
set +e
LLAMA=$(scripts/build_llama_cpp.sh --bench)
rc=$?
set -e
[ $rc -eq 0 ] || { echo "generate_vs_llamacpp: llama.cpp is not available here (scripts/build_llama_cpp.sh --bench: exit $rc)" >&2; exit "$rc"; }
mkdir -p "$OUT"

# A tokenizer and a dataset for the one pretraining step that writes each checkpoint.
if [ ! -e "$OUT/data/dataset.json" ]; then
    "$BIN" synth stories --documents 300 --out "$OUT/stories.txt" >&2
    "$BIN" tokenizer train --input "$OUT/stories.txt" --vocab-size 512 --special '<|endoftext|>' --out "$OUT/tokenizer.json" >&2
    "$BIN" shard --tokenizer "$OUT/tokenizer.json" --input "$OUT/stories.txt" --out "$OUT/data" >&2
fi
prepare() {  # preset: the checkpoint and the two GGUF files
    local m=$1 dir=$OUT/$1
    [ -e "$dir/model.f16.gguf" ] && return
    # the preset's vocabulary, not the tokenizer's 512 (pretraining would take the tokenizer's)
    local vocab err
    err=$("$BIN" bench generate --model "$m" --prompt-len 1 --gen 1 --rounds 1 --weights fp32 --threads 1 2>&1 >/dev/null) || true
    vocab=$(echo "$err" | sed -n 's/.* vocab_size \([0-9]*\),.*/\1/p')
    [ -n "$vocab" ] || { echo "generate_vs_llamacpp: $m: $(echo "$err" | tail -n 1)" >&2; exit 1; }
    mkdir -p "$dir"
    echo "{\"model\": {\"preset\": \"$m\"}}" >"$dir/config.json"
    "$BIN" pretrain "$dir/config.json" --data.path="$OUT/data" --run.out_dir="$dir/run" --model.vocab_size="$vocab" \
        --train.max_steps=1 --train.batch_size=1 --train.seq_len=32 --train.eval_every=0 --train.n_samples=0 \
        --train.save_every=0 --run.threads="$THREADS" >"$dir/pretrain.log" 2>&1 \
        || { tail -n 3 "$dir/pretrain.log" >&2; exit 1; }
    mv "$(ls "$dir"/run/ckpt-step*.h5 | tail -1)" "$dir/model.h5"
    "$BIN" export gguf "$dir/model.h5" --out "$dir/model.f32.gguf" --dtype f32 >&2
    "$BIN" export gguf "$dir/model.h5" --out "$dir/model.f16.gguf" --dtype f16 >&2
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }  # the values of key=value, a line each
stats() { sort -g | awk '{v[NR]=$1} END {m = NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2; printf "%.6g %.6g", m, v[NR]}'; }

for m in $MODELS; do prepare "$m"; done
echo "# ctrain bench generate vs llama.cpp (CPU, batch 1), $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $("$BIN" --version | sed -n 's/^  compute: //p' | sed 's/; [0-9]* threads$//'); $THREADS thread(s); prompt $PROMPT tokens, $GEN decoded; median (best) of $ROUNDS rounds, engines interleaved"
echo
echo "| model | engine | weights | weight MB | prefill tokens/s | decode tokens/s | decode GB/s | of bandwidth | ctrain / llama.cpp (prefill; decode) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for m in $MODELS; do
    dir=$OUT/$m
    : >"$dir/lines"
    for _ in $(seq "$ROUNDS"); do
        for e in fp32 F32 bf16 F16; do
            case $e in
                fp32 | bf16) line=$("$BIN" bench generate --checkpoint "$dir/model.h5" --weights "$e" --prompt-len "$PROMPT" \
                                    --gen "$GEN" --rounds 1 --threads "$THREADS" 2>>"$dir/stderr.log") ;;
                F32) line=$("$LLAMA" "$dir/model.f32.gguf" --prompt-len "$PROMPT" --gen "$GEN" --rounds 1 --threads "$THREADS" 2>>"$dir/stderr.log") ;;
                F16) line=$("$LLAMA" "$dir/model.f16.gguf" --prompt-len "$PROMPT" --gen "$GEN" --rounds 1 --threads "$THREADS" 2>>"$dir/stderr.log") ;;
            esac
            echo "$e $line" >>"$dir/lines"
        done
    done
    mem=$(grep -E '^(fp32|bf16) ' "$dir/lines" | field mem_gbs | stats | cut -d' ' -f1)
    declare -A prefill decode
    for e in fp32 F32 bf16 F16; do
        read -r prefill[$e] _ <<<"$(grep "^$e " "$dir/lines" | field prefill_tokens_per_s | stats)"
        read -r decode[$e] _ <<<"$(grep "^$e " "$dir/lines" | field decode_tokens_per_s | stats)"
    done
    for e in fp32 F32 bf16 F16; do
        lines=$(grep "^$e " "$dir/lines")
        mb=$(echo "$lines" | field weight_mb | head -1)
        read -r pm pb <<<"$(echo "$lines" | field prefill_tokens_per_s | stats)"
        read -r dm db <<<"$(echo "$lines" | field decode_tokens_per_s | stats)"
        gbs=$(echo "$mb * $dm / 1000" | bc -l)
        case $e in
            fp32) engine=ctrain; other=F32 ;;
            bf16) engine=ctrain; other=F16 ;;
            *) engine=llama.cpp; other= ;;
        esac
        ratio=-
        [ -n "$other" ] && ratio=$(printf '%.2f; %.2f' "$(echo "${prefill[$e]} / ${prefill[$other]}" | bc -l)" \
                                                      "$(echo "${decode[$e]} / ${decode[$other]}" | bc -l)")
        printf '| %s | %s | %s | %.1f | %.1f (%.1f) | %.2f (%.2f) | %.2f | %.2f of %.1f GB/s | %s |\n' "$m" "$engine" "$e" \
            "$mb" "$pm" "$pb" "$dm" "$db" "$gbs" "$(echo "$gbs / $mem" | bc -l)" "$mem" "$ratio"
    done
    unset prefill decode
done
