"""Reward-model fixtures from HF transformers 5.17 and TRL 1.13: what align4j's reward models are held to.

Three parts, each writing small data into the test resources (the tests need no Python):

1. transformers-written reward models (model/src/test/resources/reward/transformers-written/<m>):
   AutoModelForSequenceClassification(num_labels=1) over the gpt2-tiny and llama-tiny fixtures, the
   score head redrawn from N(0, 0.1) (seeded) so that every hidden unit visibly moves the reward, saved
   with save_pretrained, tokenizer beside it; rewards.json holds the rewards transformers gives the
   16 sequences of hf-tiny/prefs.jsonl (prompt + response + eos, tokenized as TRL's RewardTrainer does)
   unpadded, right-padded, left-padded (with position_ids from the attention mask, and without, which
   shifts positions), and right-padded with eos as the pad token (the reward is then read before the
   final eos, as transformers picks the last token that is not the pad token).
2. align4j-written reward models (model/src/test/resources/reward/align4j-written/<m>, written by
   align4j's RewardModelFixtureWriter, see REWARD.md): each is loaded with
   AutoModelForSequenceClassification (missing and unexpected keys must be empty) and its rewards
   under the same batches are written to transformers_rewards.json beside it.
3. TRL 1.13 RewardTrainer, ten steps on the transformers-written models (batch 8 = every pair, lr 1e-3,
   linear schedule, fp32, no dropout, no gradient checkpointing): every logged metric at every step,
   and the per-parameter gradient norms of step 1 (TRL's compute_loss on the first batch, backward),
   to trainer/src/test/resources/trl/reward-<m>[-margin].json. The -margin run adds a per-pair margin
   column and center_rewards_coefficient 0.01; its data is written to trl/reward-prefs-margin.jsonl.
4. TRL 1.13 RewardTrainer's own tokenization (its _prepare_dataset) of a plain and a conversational
   pair with the Llama 3.1 tokenizer of data/src/test/resources/chat (a bos added to plain text, the
   chat template for conversations): data/src/test/resources/chat/fixtures/reward_sequences.json.

Rerun (CPU, under a minute), from the repository root, after writing the align4j models with
    ./mvnw -q -o -pl model -am test -Dtest=RewardModelFixtureWriter -Dalign4j.writeRewardFixtures=true \
        -Dsurefire.failIfNoSpecifiedTests=false -Dinvoker.skip
then
    v/bin/python trainer/src/test/python/reward_fixtures.py
with v a venv of torch 2.13 (CPU), transformers 5.17.0, trl 1.13.0.
"""

import json
import os
import sys

import torch
import transformers
import trl
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerFast, TrainerCallback
from trl import RewardConfig, RewardTrainer
from trl.trainer.reward_trainer import suppress_seqcls_warning

ROOT = os.path.dirname(os.path.abspath(__file__)) + "/../../../.."
FIXTURES = ROOT + "/model/src/test/resources/hf-tiny"
REWARD = ROOT + "/model/src/test/resources/reward"
TRL_OUT = ROOT + "/trainer/src/test/resources/trl"
SEED = 42
MODELS = ["gpt2-tiny", "llama-tiny"]
VERSIONS = {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__}


def tokenizer(folder):
    """The class tokenizer_config.json names (AutoTokenizer in transformers 5 would swap in Qwen's
    pre-tokenizer for a qwen2 folder; the file's own rule is what the fixtures and DJL define)."""
    return PreTrainedTokenizerFast.from_pretrained(folder)


def prefs():
    with open(FIXTURES + "/prefs.jsonl") as f:
        return [json.loads(line) for line in f]


def sequences(tok):
    """TRL RewardTrainer's plain-text rule: eos appended when missing, prompt + response tokenized whole."""
    rows = []
    for side in ["chosen", "rejected"]:
        for p in prefs():
            response = p[side] if p[side].endswith(tok.eos_token) else p[side] + tok.eos_token
            rows.append(tok(text=p["prompt"] + response)["input_ids"])
    return rows


def pad(rows, pad_id, side):
    t = max(len(r) for r in rows)
    ids = torch.full((len(rows), t), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), t), dtype=torch.long)
    for i, r in enumerate(rows):
        if side == "right":
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        else:
            ids[i, t - len(r):] = torch.tensor(r)
            mask[i, t - len(r):] = 1
    return ids, mask


@torch.no_grad()
def rewards(model, tok):
    model.eval()
    rows = sequences(tok)
    trl_rows = RewardTrainer._prepare_dataset(None, Dataset.from_list(prefs()), tok, RewardConfig(output_dir="/tmp/reward-fixtures", use_cpu=True, bf16=False,
                                                                                                  report_to="none"), "train")
    assert rows == list(trl_rows["chosen_ids"]) + list(trl_rows["rejected_ids"]), "TRL tokenizes the fixture pairs otherwise"
    pad_id = model.config.pad_token_id
    out = {"sequence_ids": rows, "pad_token_id": pad_id}
    out["unpadded"] = [model(input_ids=torch.tensor([r])).logits[0, 0].item() for r in rows]
    ids, mask = pad(rows, pad_id, "right")
    out["right_padded"] = model(input_ids=ids, attention_mask=mask).logits[:, 0].tolist()
    ids, mask = pad(rows, pad_id, "left")
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out["left_padded"] = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, 0].tolist()
    out["left_padded_arange_positions"] = model(input_ids=ids, attention_mask=mask).logits[:, 0].tolist()
    # eos as the pad token (what a GPT-2 without a pad token gets): the reward is read before the final eos
    eos = tok.eos_token_id
    model.config.pad_token_id = eos
    ids, mask = pad(rows, eos, "right")
    out["right_padded_pad_is_eos"] = model(input_ids=ids, attention_mask=mask).logits[:, 0].tolist()
    out["pad_is_eos_read_at"] = [len(r) - 2 for r in rows]
    model.config.pad_token_id = pad_id
    return out


def transformers_written(name):
    torch.manual_seed(SEED)
    tok = tokenizer(f"{FIXTURES}/{name}")
    with suppress_seqcls_warning():
        model = AutoModelForSequenceClassification.from_pretrained(f"{FIXTURES}/{name}", num_labels=1, dtype=torch.float32)
    with torch.no_grad():
        model.score.weight.normal_(0.0, 0.1)
    model.config.pad_token_id = tok.pad_token_id
    folder = f"{REWARD}/transformers-written/{name}"
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    doc = {"made_by": "trainer/src/test/python/reward_fixtures.py", "versions": VERSIONS,
           "architectures": model.config.architectures, **rewards(model, tok)}
    with open(f"{folder}/rewards.json", "w") as f:
        json.dump(doc, f, indent=1)
    print(name, "transformers-written, rewards", [round(x, 4) for x in doc["right_padded"][:4]], file=sys.stderr)


def align4j_written(name):
    folder = f"{REWARD}/align4j-written/{name}"
    if not os.path.isdir(folder):
        print(f"{folder}: absent (write it with RewardModelFixtureWriter first); skipped", file=sys.stderr)
        return
    tok = tokenizer(folder)
    model, info = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        raise SystemExit(f"{folder}: transformers reports {problems}")
    doc = {"made_by": "trainer/src/test/python/reward_fixtures.py", "versions": VERSIONS, "loading_info": {k: list(v) for k, v in info.items()},
           "class": type(model).__name__, **rewards(model, tok)}
    with open(f"{folder}/transformers_rewards.json", "w") as f:
        json.dump(doc, f, indent=1)
    print(name, "align4j-written, loaded as", type(model).__name__, file=sys.stderr)


class Record(TrainerCallback):
    def __init__(self):
        self.steps = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            row = {"step": state.global_step}
            row.update({k: float(v) for k, v in logs.items() if isinstance(v, (int, float))})
            self.steps.append(row)


COMMON = dict(
    per_device_train_batch_size=8,
    gradient_accumulation_steps=1,
    max_steps=10,
    learning_rate=1e-3,
    lr_scheduler_type="linear",
    warmup_steps=0,
    weight_decay=0.0,
    max_grad_norm=1.0,
    logging_steps=1,
    save_strategy="no",
    report_to="none",
    seed=SEED,
    use_cpu=True,
    bf16=False,
    gradient_checkpointing=False,
    dataloader_drop_last=False,
)


def margin_prefs():
    rows = prefs()
    for i, r in enumerate(rows):
        r["margin"] = round(0.25 * i - 0.75, 2)
    return rows


def reward_trainer(name, with_margin):
    folder = f"{REWARD}/transformers-written/{name}"
    data = margin_prefs() if with_margin else prefs()
    extra = {"center_rewards_coefficient": 0.01} if with_margin else {}

    def trainer(callbacks):
        torch.manual_seed(SEED)
        model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32)
        args = RewardConfig(output_dir="/tmp/reward-fixtures", **COMMON, **extra)
        return RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(data), processing_class=tokenizer(folder),
                             callbacks=callbacks)

    # step 1's gradient, parameter by parameter: TRL's own compute_loss on the first batch
    t = trainer([])
    batch = next(iter(t.get_train_dataloader()))
    t.model.train()
    loss = t.compute_loss(t.model, dict(batch))
    loss.backward()
    norms = {n: p.grad.norm().item() for n, p in t.model.named_parameters() if p.grad is not None}
    total = torch.sqrt(sum(torch.tensor(v) ** 2 for v in norms.values())).item()

    rec = Record()
    trainer([rec]).train()
    settings = {"trainer": "reward", "model": folder[len(ROOT) + 1:], "attention": t.model.config._attn_implementation,
                "margin": with_margin, **extra}
    settings.update({k: v for k, v in COMMON.items() if isinstance(v, (int, float, str))})
    doc = {"made_by": "trainer/src/test/python/reward_fixtures.py", "versions": VERSIONS, "settings": settings,
           "step1": {"loss": loss.item(), "grad_norm_by_param": norms, "grad_norm_total": total}, "steps": rec.steps}
    os.makedirs(TRL_OUT, exist_ok=True)
    out = f"{TRL_OUT}/reward-{name}{'-margin' if with_margin else ''}.json"
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
    print(os.path.basename(out), "loss", [round(s["loss"], 5) for s in rec.steps], file=sys.stderr)


def trl_sequences():
    import lzma
    import tempfile

    chat = ROOT + "/data/src/test/resources/chat"
    pairs = {
        "plain": {"prompt": "What is the capital of France?", "chosen": " Paris.", "rejected": " Lyon, I think."},
        "plain_ending_with_eos": {"prompt": "Say hi.", "chosen": " Hi!<|eot_id|>", "rejected": " No."},
        "conversational": {"prompt": [{"role": "user", "content": "What is the capital of France?"}],
                           "chosen": [{"role": "assistant", "content": "Paris."}],
                           "rejected": [{"role": "assistant", "content": "Lyon."}]},
    }
    out = {"made_by": "trainer/src/test/python/reward_fixtures.py", "versions": VERSIONS, "model": "llama3_1", "pairs": {}}
    with tempfile.TemporaryDirectory() as d:
        with lzma.open(f"{chat}/tokenizers/llama3_1/tokenizer.json.xz") as src, open(f"{d}/tokenizer.json", "wb") as dst:
            dst.write(src.read())
        with open(f"{chat}/models/llama3_1/tokenizer_config.json") as src, open(f"{d}/tokenizer_config.json", "w") as dst:
            dst.write(src.read())
        tok = PreTrainedTokenizerFast.from_pretrained(d)
        args = RewardConfig(output_dir="/tmp/reward-fixtures", max_length=None, report_to="none", use_cpu=True, bf16=False)
        for name, pair in pairs.items():
            ds = RewardTrainer._prepare_dataset(None, Dataset.from_list([pair]), tok, args, "train")
            out["pairs"][name] = {"record": pair, "chosen_ids": ds[0]["chosen_ids"], "rejected_ids": ds[0]["rejected_ids"]}
    with open(f"{chat}/fixtures/reward_sequences.json", "w") as f:
        json.dump(out, f, indent=1)
    print("reward_sequences.json", {k: len(v["chosen_ids"]) for k, v in out["pairs"].items()}, file=sys.stderr)


def main():
    torch.set_num_threads(1)
    trl_sequences()
    for m in MODELS:
        transformers_written(m)
        align4j_written(m)
    with open(f"{TRL_OUT}/reward-prefs-margin.jsonl", "w") as f:
        for r in margin_prefs():
            f.write(json.dumps(r) + "\n")
    for m in MODELS:
        reward_trainer(m, with_margin=False)
    reward_trainer("gpt2-tiny", with_margin=True)


if __name__ == "__main__":
    main()
