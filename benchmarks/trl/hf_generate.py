"""transformers' generate on a model folder, the way benchmarks/compare-generate.sh times align4j's sampler:
ROWS prompts of PROMPT random ids (seeded), NEW tokens sampled per row at temperature 1 (top-k and top-p
off, min_new_tokens = max_new_tokens so every run does the same work), KV cache on, fp32, every core.
Prints one JSON line: new_tokens_per_s (median of RUNS after WARMUP), peak_rss_bytes.

    python hf_generate.py MODEL_DIR ROWS PROMPT NEW RUNS WARMUP
"""
import json
import resource
import statistics
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM

model_dir, rows, prompt, new, runs, warmup = sys.argv[1], *map(int, sys.argv[2:7])
model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="sdpa").eval()
g = torch.Generator().manual_seed(42)
ids = torch.randint(0, model.config.vocab_size, (rows, prompt), generator=g)
mask = torch.ones_like(ids)
took = []
with torch.no_grad():
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                             max_new_tokens=new, min_new_tokens=new, use_cache=True,
                             pad_token_id=model.config.pad_token_id or 0)
        assert out.shape[1] == prompt + new
        if i >= warmup:
            took.append(time.perf_counter() - t0)
m = statistics.median(took)
print(json.dumps({"framework": "transformers", "transformers": transformers.__version__, "torch": torch.__version__,
                  "rows": rows, "prompt_tokens": prompt, "new_tokens": new, "vocab": model.config.vocab_size,
                  "new_tokens_per_s": rows * new / m, "run_ms_median": m * 1000, "run_ms_min": min(took) * 1000,
                  "run_ms_max": max(took) * 1000,
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
