"""TRL 1.13's GRPOTrainer and RLOOTrainer on replayed samples: the guard RlTrlParityTest compares align4j with.

Sampling cannot be compared across two implementations, so the samples are fixed: every prompt has a
table of completions (token ids; some end with eos, some are cut at max_completion_length, lengths
differ), and TRL's `model.generate` is patched to return them, as TRL's own tests do
(`patch.object(trainer.model, "generate", ...)`). align4j's test replays the same table through its
trainer (a replaying sampler in place of its own) and compares every metric TRL logs at every step,
and the first step's per-parameter gradient norms, within 1e-4 relative.

Pinned so that both sides compute the same thing:
- disable_dropout=True (TRL's default keeps GPT-2's 0.1 and then KL and clip ratios are not zero at
  policy = reference);
- shuffle_dataset=False: prompts in file order, each repeated num_generations times (RepeatSampler);
  align4j takes them in the same order with shuffle_dataset: false;
- one micro-batch per generation (gradient_accumulation_steps = steps_per_generation = 1), so TRL's
  shuffle of the generation batch only permutes rows inside one micro-batch;
- GPT-2 prompts all encode to the same number of tokens: TRL's training forward passes no position_ids,
  so a left-padded GPT-2 row would get shifted learned positions (Llama and Qwen2 use rotary
  embeddings, which only see relative positions: their prompts differ in length);
- reward models: TRL scores prompt + completion text (special tokens skipped, so no eos) re-tokenized
  without special tokens; align4j's trainer does the same with reward_model_append_eos: false.

Writes trainer/src/test/resources/trl-rl/<case>.json (settings, prompts, the completion table, each
step's logged metrics, step 1's gradient norms by parameter) and the tiny reward model
trainer/src/test/resources/trl-rl/reward-gpt2-tiny/ (GPT2ForSequenceClassification, seeded head).

Rerun (CPU, a few minutes):
    python3 -m venv v && v/bin/pip install torch==2.13.0+cpu transformers==5.17.0 trl==1.13.0 datasets
    v/bin/python trainer/src/test/python/trl_rl_fixtures.py [CASE ...]
"""

import json
import math
import os
import random
import sys
from unittest.mock import patch

import torch
import transformers
import trl
from datasets import Dataset
from transformers import (AutoModelForCausalLM, AutoModelForSequenceClassification, PreTrainedTokenizerFast,
                          TrainerCallback)
from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

ROOT = os.path.dirname(os.path.abspath(__file__)) + "/../../../.."
FIXTURES = ROOT + "/model/src/test/resources/hf-tiny"
OUT = ROOT + "/trainer/src/test/resources/trl-rl"
STEPS = 10
G = 4
PROMPTS_PER_STEP = 2
MAX_COMPLETION = 6
EOS, PAD = 2, 3


def sums(n, rng, equal_length, tok):
    out = []
    while len(out) < n:
        a, b = rng.randrange(100), rng.randrange(100)
        p = f"{a:02d}+{b:02d}=" if equal_length else f"{a}+{b}="
        if equal_length and out and len(tok(p, add_special_tokens=False)["input_ids"]) != len(
                tok(out[0], add_special_tokens=False)["input_ids"]):
            continue  # a prompt of another token length would be left-padded
        out.append(p)
    if equal_length:
        lengths = {len(tok(p, add_special_tokens=False)["input_ids"]) for p in out}
        assert len(lengths) == 1, f"GPT-2 prompts must encode to one length, got {lengths}"
    return out


def completion_table(prompts, rng):
    """G completions per prompt: lengths 1..MAX, eos-terminated or cut (exactly MAX tokens, no eos)."""
    table = {}
    for i, p in enumerate(prompts):
        rows = []
        for k in range(G):
            kind = (i + k) % 4
            if kind == 0:  # cut at the limit
                ids = [rng.randrange(4, 600) for _ in range(MAX_COMPLETION)]
            else:
                n = rng.randrange(0, MAX_COMPLETION)  # 0..MAX-1 tokens, then eos
                ids = [rng.randrange(4, 600) for _ in range(n)] + [EOS]
            rows.append(ids)
        if i % 5 == 3:
            rows = [rows[0]] * G  # a group of identical samples: zero reward std
        table[p] = rows
    return table


def reward_len(prompts, completions, completion_ids, **kw):
    """A continuous reward: more distinct digits and shorter completions score higher."""
    return [sum(ch.isdigit() for ch in c) * 0.5 - 0.1 * len(ids) + (0.3 if len(c) % 2 else 0.0)
            for c, ids in zip(completions, completion_ids)]


def reward_sometimes(prompts, completions, completion_ids, **kw):
    """A reward that abstains (None) on completions of odd token length: excluded as TRL excludes it."""
    return [None if len(ids) % 2 else float(len(set(ids))) / 3 for ids in completion_ids]


class Record(TrainerCallback):
    def __init__(self):
        self.steps = []
        self.norms = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
        if self.norms is None:
            self.norms = {n: p.grad.norm().item() for n, p in model.named_parameters() if p.grad is not None}

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "loss" in logs:
            row = {"step": state.global_step}
            row.update({k: float(v) for k, v in logs.items() if isinstance(v, (int, float)) and v is not None})
            self.steps.append(row)


def reward_model(tok):
    path = OUT + "/reward-gpt2-tiny"
    if not os.path.isdir(path):
        torch.manual_seed(7)
        rm = AutoModelForSequenceClassification.from_pretrained(FIXTURES + "/gpt2-tiny", num_labels=1)
        with torch.no_grad():
            rm.score.weight.normal_(0, 0.5)
        rm.config.pad_token_id = PAD
        rm.save_pretrained(path)
        tok.save_pretrained(path)
    rm = AutoModelForSequenceClassification.from_pretrained(path)
    return rm


CASES = {
    # name: (model, kind, extra config, rewards)
    "gpt2-grpo-dapo": ("gpt2-tiny", "grpo", {}, ["len"]),
    "gpt2-grpo-grpo-beta": ("gpt2-tiny", "grpo", {"loss_type": "grpo", "beta": 0.1}, ["len"]),
    "gpt2-grpo-bnpo-iter2": ("gpt2-tiny", "grpo", {"loss_type": "bnpo", "beta": 0.05, "num_iterations": 2}, ["len"]),
    "gpt2-grpo-drgrpo-batch": ("gpt2-tiny", "grpo",
                               {"loss_type": "dr_grpo", "scale_rewards": "batch", "epsilon_high": 0.28,
                                "num_iterations": 2}, ["len"]),
    "gpt2-grpo-none-mask": ("gpt2-tiny", "grpo",
                            {"scale_rewards": "none", "mask_truncated_completions": True, "reward_weights": [1.0, 0.5]},
                            ["len", "sometimes"]),
    "gpt2-grpo-rm": ("gpt2-tiny", "grpo", {"beta": 0.1, "temperature": 0.7, "reward_weights": [1.0, 0.25]},
                     ["model", "len"]),
    "gpt2-rloo": ("gpt2-tiny", "rloo", {}, ["len"]),
    "gpt2-rloo-iter2-norm": ("gpt2-tiny", "rloo", {"beta": 0.0, "num_iterations": 2, "normalize_advantages": True},
                             ["len"]),
    "gpt2-rloo-rm": ("gpt2-tiny", "rloo", {"beta": 0.1}, ["model"]),
    "llama-grpo-dapo-beta": ("llama-tiny", "grpo", {"beta": 0.1}, ["len"]),
    "llama-rloo": ("llama-tiny", "rloo", {"temperature": 0.9}, ["len"]),
    "qwen2-grpo-grpo-iter2": ("qwen2-tiny", "grpo", {"loss_type": "grpo", "beta": 0.1, "num_iterations": 2}, ["len"]),
    "qwen2-rloo": ("qwen2-tiny", "rloo", {}, ["len"]),
}


def run(name):
    model_name, kind, extra, rewards = CASES[name]
    path = FIXTURES + "/" + model_name
    tok = PreTrainedTokenizerFast.from_pretrained(path)
    rng = random.Random(name)
    iterations = extra.get("num_iterations", 1)
    generations = math.ceil(STEPS / iterations)
    prompts = sums(generations * PROMPTS_PER_STEP, rng, model_name.startswith("gpt2"), tok)
    table = completion_table(prompts, rng)
    calls = {}

    def fake_generate(input_ids=None, attention_mask=None, **kw):
        rows = []
        for r in range(input_ids.shape[0]):
            p = tok.decode(input_ids[r][attention_mask[r].bool()].tolist())
            k = calls.get(p, 0)
            calls[p] = k + 1
            rows.append(table[p][k % G])
        width = max(map(len, rows))
        pad = torch.tensor([x + [PAD] * (width - len(x)) for x in rows])
        return torch.cat([input_ids, pad], 1)

    funcs, names = [], []
    for r in rewards:
        if r == "len":
            funcs.append(reward_len)
            names.append("reward_len")
        elif r == "sometimes":
            funcs.append(reward_sometimes)
            names.append("reward_sometimes")
        else:
            funcs.append(reward_model(tok))
            names.append("reward-gpt2-tiny")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path)
    common = dict(output_dir="/tmp/trl_rl_out", per_device_train_batch_size=G * PROMPTS_PER_STEP, num_generations=G,
                  max_completion_length=MAX_COMPLETION, max_steps=STEPS, learning_rate=1e-3, lr_scheduler_type="linear",
                  warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, logging_steps=1, report_to="none", use_cpu=True,
                  save_strategy="no", seed=42, disable_dropout=True, shuffle_dataset=False, bf16=False,
                  gradient_accumulation_steps=1)
    common.update(extra)
    cls, cfg = (GRPOTrainer, GRPOConfig) if kind == "grpo" else (RLOOTrainer, RLOOConfig)
    args = cfg(**common)
    trainer = cls(model=model, reward_funcs=funcs if len(funcs) > 1 else funcs[0], args=args,
                  train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]), processing_class=tok)
    rec = Record()
    trainer.add_callback(rec)
    with patch.object(trainer.model, "generate", side_effect=fake_generate):
        trainer.train()
    settings = {k: v for k, v in common.items() if k not in ("output_dir", "report_to", "use_cpu", "save_strategy")}
    settings.setdefault("beta", args.beta)
    settings.setdefault("temperature", args.temperature)
    doc = {"trl": trl.__version__, "transformers": transformers.__version__, "torch": torch.__version__,
           "model": model_name, "trainer": kind, "settings": settings, "reward_funcs": names,
           "prompts": prompts, "completions": table, "steps": rec.steps, "step1_grad_norm_by_param": rec.norms}
    os.makedirs(OUT, exist_ok=True)
    with open(f"{OUT}/{name}.json", "w") as f:
        json.dump(doc, f, indent=1)
    print(name, "step 1:", {k: round(v, 5) for k, v in rec.steps[0].items() if k in ("loss", "grad_norm", "reward", "kl")})


if __name__ == "__main__":
    for n in sys.argv[1:] or list(CASES):
        run(n)
