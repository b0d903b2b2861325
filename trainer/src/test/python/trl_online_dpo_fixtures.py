"""TRL 1.13's OnlineDPOTrainer (trl.experimental.online_dpo) on replayed samples: the guard
OnlineDpoTrlParityTest compares align4j with.

As trl_rl_fixtures.py (whose prompts, completion tables and reward function this reuses): TRL's
`model.generate` is patched to return fixed completions, 2 per prompt (the first and second of the
prompt's table); align4j replays the same table. Every metric TRL logs at each of 10 steps and step 1's
gradient norm of every parameter are recorded.

Pinned so that both sides compute the same thing: disable_dropout=True (TRL's default too); GPT-2 prompts
of one token length (no left padding: TRL passes no position_ids); shuffle by a sampler TRL seeds is
avoided by one micro-batch of all the step's prompts in file order (per_device_train_batch_size =
prompts per step, no accumulation, and the dataloader's shuffle pinned by seed is replaced with a
sequential sampler, below).

TRL computes objective/kl, objective/entropy and objective/non_score_reward (and so objective/rlhf_reward)
over the padded completion matrix, pad positions included; the case "gpt2-odpo-equal" uses completions
of one length in every step so that those four are comparable; "gpt2-odpo-ipo" has unequal lengths and
its test leaves those four out.

Rerun (CPU, a minute):
    v/bin/python trainer/src/test/python/trl_online_dpo_fixtures.py [CASE ...]
"""

import json
import os
import random
import sys
from unittest.mock import patch

import torch
import transformers
import trl
from datasets import Dataset
from torch.utils.data import SequentialSampler
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trl_rl_fixtures import EOS, FIXTURES, OUT, PAD, Record, reward_len, reward_model, sums  # noqa: E402
from trl.experimental.online_dpo import OnlineDPOConfig, OnlineDPOTrainer  # noqa: E402

STEPS = 10
PROMPTS_PER_STEP = 4
MAX_NEW = 5

CASES = {
    # name: (extra config, rewards, equal-length completions)
    "gpt2-odpo-equal": ({"beta": 0.1}, ["len"], True),
    "gpt2-odpo-ipo": ({"loss_type": "ipo", "beta": 0.5, "missing_eos_penalty": 1.0}, ["text"], False),
    "gpt2-odpo-rm": ({"beta": 0.2, "temperature": 0.7}, ["model"], True),
}


def reward_text(prompts, completions, completion_ids, **kw):
    """reward_len on the text alone: TRL hands reward functions the padded completion ids (pad tokens included),
    so a reward of the ids' length would differ between a padded batch and align4j's real tokens."""
    return [sum(ch.isdigit() for ch in c) * 0.5 - 0.05 * len(c) + (0.3 if len(c) % 2 else 0.0) for c in completions]


def table_for(prompts, rng, equal):
    out = {}
    for i, p in enumerate(prompts):
        rows = []
        for k in range(2):
            if equal:  # MAX_NEW tokens, the last an eos or not
                ids = [rng.randrange(4, 600) for _ in range(MAX_NEW - 1)] + ([EOS] if (i + k) % 2 else [rng.randrange(4, 600)])
            else:
                kind = (i + k) % 3
                if kind == 0:
                    ids = [rng.randrange(4, 600) for _ in range(MAX_NEW)]
                else:
                    ids = [rng.randrange(4, 600) for _ in range(rng.randrange(0, MAX_NEW))] + [EOS]
            rows.append(ids)
        out[p] = rows
    return out


def run(name):
    extra, rewards, equal = CASES[name]
    path = FIXTURES + "/gpt2-tiny"
    tok = PreTrainedTokenizerFast.from_pretrained(path)
    rng = random.Random(name)
    prompts = sums(STEPS * PROMPTS_PER_STEP, rng, True, tok)
    table = table_for(prompts, rng, equal)

    def fake_generate(input_ids=None, attention_mask=None, **kw):
        # rows 0..B-1 are sample 0 of each prompt, rows B..2B-1 sample 1 (TRL repeats the prompts)
        b = input_ids.shape[0] // 2
        rows = []
        for r in range(input_ids.shape[0]):
            p = tok.decode(input_ids[r][attention_mask[r].bool()].tolist())
            rows.append(table[p][0 if r < b else 1])
        width = max(map(len, rows))
        pad = torch.tensor([x + [PAD] * (width - len(x)) for x in rows])
        return torch.cat([input_ids, pad], 1)

    funcs = {"len": [reward_len], "text": [reward_text]}.get(rewards[0]) or [reward_model(tok)]
    names = {"len": ["reward_len"], "text": ["reward_text"]}.get(rewards[0]) or ["reward-gpt2-tiny"]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path)
    common = dict(output_dir="/tmp/trl_odpo_out", per_device_train_batch_size=PROMPTS_PER_STEP, max_new_tokens=MAX_NEW,
                  max_steps=STEPS, learning_rate=1e-3, lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0,
                  max_grad_norm=1.0, logging_steps=1, report_to="none", use_cpu=True, save_strategy="no", seed=42,
                  disable_dropout=True, bf16=False, gradient_accumulation_steps=1)
    common.update(extra)
    args = OnlineDPOConfig(**common)
    trainer = OnlineDPOTrainer(model=model, reward_funcs=funcs, args=args,
                               train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]), processing_class=tok)
    trainer._get_train_sampler = lambda *a, **k: SequentialSampler(trainer.train_dataset)
    rec = Record()
    trainer.add_callback(rec)
    with patch.object(trainer.model, "generate", side_effect=fake_generate):
        trainer.train()
    settings = {k: v for k, v in common.items() if k not in ("output_dir", "report_to", "use_cpu", "save_strategy")}
    settings.setdefault("beta", args.beta)
    settings.setdefault("temperature", args.temperature)
    settings.setdefault("loss_type", args.loss_type)
    doc = {"trl": trl.__version__, "transformers": transformers.__version__, "torch": torch.__version__,
           "model": "gpt2-tiny", "trainer": "online_dpo", "settings": settings, "reward_funcs": names,
           "equal_lengths": equal, "prompts": prompts, "completions": table, "steps": rec.steps,
           "step1_grad_norm_by_param": rec.norms}
    with open(f"{OUT}/{name}.json", "w") as f:
        json.dump(doc, f, indent=1)
    print(name, "step 1:", {k: round(v, 5) for k, v in rec.steps[0].items()
                            if k in ("loss", "grad_norm", "objective/scores", "objective/kl")})


if __name__ == "__main__":
    for n in sys.argv[1:] or list(CASES):
        run(n)
