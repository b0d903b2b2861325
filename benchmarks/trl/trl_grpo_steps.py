"""TRL 1.13's GRPOTrainer for a few steps, the way benchmarks/compare-trl-grpo.sh times align4j's grpo: prompts
from a JSONL file ({"prompt": ...}), G samples each at temperature 1 with exactly NEW new tokens (min_new_tokens =
max_completion_length: both sides do the same work whatever the weights sample), one micro-batch of BATCH
completions a step, beta 0.04 (a reference copy), loss dapo, a reward that reads the completion's length only,
fp32 on the CPU, every core, dropout off. Prints one JSON line: real tokens (prompt + completion) per second of
the steps after the first, the median step time, peak RSS.

    python trl_grpo_steps.py MODEL_DIR PROMPTS.jsonl BATCH G NEW STEPS OUT_DIR
"""
import json
import resource
import statistics
import sys
import time

import torch
import transformers
import trl
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

model_dir, prompts_file, batch, g, new, steps, out = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7]), sys.argv[7]
prompts = [json.loads(l)["prompt"] for l in open(prompts_file) if l.strip()]
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="sdpa")


def length_reward(completions, **kw):
    return [float(len(c) % 7) for c in completions]


class Timer(TrainerCallback):
    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "step_time" in logs:
            self.logs.append(dict(logs))


args = GRPOConfig(output_dir=out, per_device_train_batch_size=batch, num_generations=g, max_completion_length=new,
                  max_steps=steps, learning_rate=1e-6, beta=0.04, logging_steps=1, report_to="none", use_cpu=True,
                  save_strategy="no", seed=42, disable_dropout=True, bf16=False,
                  generation_kwargs={"min_new_tokens": new})
t = GRPOTrainer(model=model, reward_funcs=length_reward, args=args,
                train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]), processing_class=tok)
timer = Timer()
t.add_callback(timer)
t.train()
rows = timer.logs[1:]  # the first step warms up
tokens = [b["num_tokens"] - a["num_tokens"] for a, b in zip(timer.logs, timer.logs[1:])]
times = [r["step_time"] for r in rows]
print(json.dumps({"framework": "trl", "trl": trl.__version__, "transformers": transformers.__version__,
                  "torch": torch.__version__, "steps_timed": len(rows),
                  "tokens_per_s": sum(tokens) / sum(times), "step_s_median": statistics.median(times),
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
