#!/usr/bin/env bash
# Peak resident memory of PPO with LoRA against full PPO, on a Qwen2-0.5B-shaped model.
#
#   benchmarks/ppo-memory.sh [LAYERS] [STEPS] [RUNS]   defaults: 24 layers (Qwen2-0.5B's), 2 PPO steps, "lora full"
#
# Full PPO on all 24 layers needs about 26 GiB (weights, gradients and moments of two trained models, two
# frozen copies, and the final save's copies): on a smaller machine give fewer layers, or RUNS=lora.
#
# LoRA PPO (--lora-r 16, all linear maps): policy, reference (the policy with its adapters off) and value
# model (an adapter set and score head of its own, --value-model naming the policy's folder) share ONE
# frozen base; the reward model is a second, frozen copy. Full PPO: four full models, the policy and the
# value model trained in full (weights, gradients and AdamW's two moments for both), the reference and the
# reward model frozen. Everything else is the same: 8 prompts, 2 a step, 16 new tokens, one PPO epoch of one
# mini-batch, --threads 1, fp32 on the CPU, a checkpoint only at the end. Two peaks of the align4j process:
# Linux's VmHWM read when the log shows the last step (loading and training), and GNU time's maximum
# resident set size of the whole run (the final save included: writing the checkpoint copies each tensor
# out of libtorch, which a full run's gigabytes of weights and AdamW moments make the larger peak).
#
# Model: hidden 896, 14 heads / 2 KV heads, intermediate 4864, vocabulary 151936, tied embeddings, LAYERS
# layers, seeded random weights written once by transformers (benchmarks/ppo/make_qwen2_model.py) with the
# Qwen tokenizer of the repository's chat-template corpus; the reward model is the same decoder with a new
# one-label score head (Qwen2ForSequenceClassification).
#
# Needs: PYTHON, a python with torch and transformers (to write the model once); xz; GNU time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
layers="${1:-24}"
steps="${2:-2}"
runs="${3:-lora full}"
python="${PYTHON:?set PYTHON to a python with torch and transformers}"
work="$here/benchmarks/target/ppo-memory/layers-$layers"
mkdir -p "$work"
export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
if [ ! -f "$work/policy/model.safetensors" ]; then
  mkdir -p "$work/tokenizer"
  xz -dc "$here/data/src/test/resources/chat/tokenizers/qwen3/tokenizer.json.xz" > "$work/tokenizer/tokenizer.json"
  cp "$here/data/src/test/resources/chat/models/qwen2_5/tokenizer_config.json" "$work/tokenizer/"
  "$python" "$here/benchmarks/ppo/make_qwen2_model.py" "$work/policy" "$work/reward" "$work/tokenizer" "$layers" >&2
fi
for i in 1 2 3 4 5 6 7 8; do echo "{\"prompt\": \"What is $i plus $i?\"}"; done > "$work/prompts.jsonl"
"$here/align4j" --version > /dev/null # build first, so that the build is not measured
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores," \
  "$(free -g | awk '/Mem:/ {print $2}') GiB; load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ)" >&2
# the kernel's peak (VmHWM) of the java process when the log shows the last step (before the final save),
# and GNU time's maximum resident set size of the whole run (the final save of the models and the optimizer
# state included)
run() {
  local name="$1"; shift
  rm -rf "$work/out-$name"
  /usr/bin/time -f "%M %e" -o "$work/time-$name" "$here/align4j" ppo \
    --model "$work/policy" --value-model "$work/policy" --reward-funcs "$work/reward" \
    --data "$work/prompts.jsonl" --output "$work/out-$name" --batch-size 2 --num-mini-batches 1 \
    --num-ppo-epochs 1 --max-completion-length 16 --max-steps "$steps" --eval-fraction 0 --threads 1 \
    "$@" > "$work/log-$name" 2>&1 &
  local timer=$! java="" trained=""
  while kill -0 "$timer" 2>/dev/null; do
    [ -n "$java" ] || java="$(pgrep -P "$timer" | head -1 || true)"
    if [ -z "$trained" ] && [ -n "$java" ] && grep -qs "step $steps/$steps:" "$work/out-$name/train.log"; then
      trained="$(awk '/^VmHWM:/ {print $2}' "/proc/$java/status" 2>/dev/null || true)"
    fi
    sleep 0.05
  done
  wait "$timer" || { tail -20 "$work/log-$name" >&2; exit 1; }
  read -r kib seconds < "$work/time-$name"
  printf '%-5s PPO: peak RSS %5.2f GiB through the last step, %5.2f GiB with the final save; %4.0f s  (%s)\n' \
    "$name" "$(echo "${trained:-0} / 1048576" | bc -l)" "$(echo "$kib / 1048576" | bc -l)" "$seconds" \
    "$(grep -m1 'value model:' "$work/log-$name" | sed 's/.*value model: //')"
}
for r in $runs; do
  case "$r" in
    lora) run lora --lora-r 16 --lora-alpha 32 --lora-target all-linear ;;
    full) run full ;;
    *) echo "RUNS: lora and/or full, got $r" >&2; exit 2 ;;
  esac
done
