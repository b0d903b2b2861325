"""Kept token sets of transformers' logits warpers on fixed logits, for SamplingTest.

    python3 sampling_fixtures.py OUT.json      (torch 2.13 CPU, transformers 5.17)

The logits are drawn here (seeded) and written with the result, so the Java test reads both; the
warpers are transformers' own classes, applied in the order `_get_logits_processor` applies them
(temperature, top-k, top-p, min-p).
"""
import json, sys, torch
import transformers
from transformers.generation.logits_process import (LogitsProcessorList, MinPLogitsWarper,
    TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)

g = torch.Generator().manual_seed(1234)
logits = torch.randn(4, 64, generator=g, dtype=torch.float32) * 3
cases = []
for t, k, p, mp in [(1.0, 0, 1.0, 0.0), (0.7, 5, 1.0, 0.0), (1.0, 0, 0.9, 0.0), (1.3, 0, 0.5, 0.0),
                    (1.0, 0, 1.0, 0.1), (0.8, 10, 0.8, 0.0), (1.0, 20, 0.95, 0.05), (2.0, 0, 1.0, 0.3),
                    (1.0, 1, 1.0, 0.0), (1.0, 0, 1e-6, 0.0)]:
    procs = LogitsProcessorList()
    if t != 1.0:
        procs.append(TemperatureLogitsWarper(t))
    if k > 0:
        procs.append(TopKLogitsWarper(top_k=k))
    if p < 1.0:
        procs.append(TopPLogitsWarper(top_p=p))
    if mp > 0:
        procs.append(MinPLogitsWarper(min_p=mp))
    out = procs(torch.zeros(4, 1, dtype=torch.long), logits.clone())
    kept = [[i for i in range(out.shape[1]) if torch.isfinite(out[r, i])] for r in range(out.shape[0])]
    probs = torch.softmax(out, dim=-1)
    cases.append({"temperature": t, "top_k": k, "top_p": p, "min_p": mp, "kept": kept,
                  "probs": probs.tolist()})
json.dump({"transformers": transformers.__version__, "torch": torch.__version__,
           "logits": logits.tolist(), "cases": cases}, open(sys.argv[1], "w"))
print("wrote", sys.argv[1], len(cases), "cases")
