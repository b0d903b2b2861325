"""Expected values for align4j's LoRA reward models, made with PEFT 0.21 and transformers 5.17 (the oracles).

A reward model with LoRA is what TRL's RewardTrainer trains with a PEFT LoraConfig(task_type="SEQ_CLS"):
adapters on the decoder, and the score head trained in full beside them, which PEFT saves as its
modules_to_save (tensor base_model.model.score.weight, adapter_config.json with task_type SEQ_CLS and
modules_to_save ["classifier", "score"]). Writes model/src/test/resources/reward/lora/ (see LORA.md there).
Run from the repository root:

    python model/src/test/python/reward_lora_fixtures.py

with torch 2.13 (CPU), transformers 5.17 and peft 0.21 installed. The Java tests need no Python.

1. peft-written/<model>/: AutoModelForSequenceClassification(num_labels=1) over the hf-tiny causal LM,
   get_peft_model with task_type SEQ_CLS, every lora_B and the score head drawn from N(0, 0.1) (seeded:
   a trained state, not the zero-B start), save_pretrained; peft_rewards.json: the rewards PEFT gives the
   16 sequences of reward/transformers-written/<model>/rewards.json (TRL's tokenization of
   hf-tiny/prefs.jsonl) unpadded, right-padded and left-padded (position ids from the attention mask).
2. align4j-written/<model>/: the adapter folder align4j's RewardLoraTest wrote into
   model/target/reward-lora-align4j-written/<model>/ (run that test first), copied here, loaded with
   PeftModel.from_pretrained on the same base, and the rewards PEFT gives it (peft_rewards.json). The Java
   test checks that align4j still writes exactly these files and gives these rewards.
"""
import json
import os
import shutil
import sys

import peft
import torch
import transformers
from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
RES = os.path.join(ROOT, "model", "src", "test", "resources")
HF_TINY = os.path.join(RES, "hf-tiny")
OUT = os.path.join(RES, "reward", "lora")
ALIGN4J_WRITTEN = os.path.join(ROOT, "model", "target", "reward-lora-align4j-written")
VERSIONS = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}
SEED = 11

CONFIGS = {
    "gpt2-tiny": dict(r=4, lora_alpha=8, target_modules="all-linear"),
    "llama-tiny": dict(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"]),
}


def base(kind):
    # the causal LM read as a sequence classifier, a new score head: what TRL's RewardTrainer starts from
    return AutoModelForSequenceClassification.from_pretrained(os.path.join(HF_TINY, kind), num_labels=1, dtype=torch.float32)


def sequences(kind):
    with open(os.path.join(RES, "reward", "transformers-written", kind, "rewards.json")) as f:
        fx = json.load(f)
    return fx["sequence_ids"], fx["pad_token_id"]


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
def rewards(model, kind):
    model.eval()
    rows, pad_id = sequences(kind)
    assert model.config.pad_token_id == pad_id, (model.config.pad_token_id, pad_id)
    out = {"sequence_ids": rows, "pad_token_id": pad_id}
    out["unpadded"] = [model(input_ids=torch.tensor([r])).logits[0, 0].item() for r in rows]
    ids, mask = pad(rows, pad_id, "right")
    out["right_padded"] = model(input_ids=ids, attention_mask=mask).logits[:, 0].tolist()
    ids, mask = pad(rows, pad_id, "left")
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out["left_padded"] = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, 0].tolist()
    return out


def relative_base(folder, kind):
    """Names the base by a path relative to the adapter folder, so the fixture works from any checkout."""
    path = os.path.join(folder, "adapter_config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["base_model_name_or_path"] = os.path.relpath(os.path.join(HF_TINY, kind), folder)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def peft_written(kind):
    folder = os.path.join(OUT, "peft-written", kind)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    torch.manual_seed(SEED)
    model = get_peft_model(base(kind), LoraConfig(task_type=TaskType.SEQ_CLS, **CONFIGS[kind]))
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n or "score.modules_to_save" in n:
                p.normal_(0.0, 0.1)
    model.save_pretrained(folder)
    os.remove(os.path.join(folder, "README.md"))
    relative_base(folder, kind)
    saved = sorted(load_file(os.path.join(folder, "adapter_model.safetensors")).keys())
    doc = {"made_by": "model/src/test/python/reward_lora_fixtures.py", "versions": VERSIONS, "trainable_parameters": trainable,
           "saved_tensors": saved, **rewards(model, kind)}
    with open(os.path.join(folder, "peft_rewards.json"), "w") as f:
        json.dump(doc, f, indent=1)
    print(kind, "peft-written:", len(trainable), "trainable tensors, score saved as", [s for s in saved if "score" in s], file=sys.stderr)


def align4j_written(kind):
    src = os.path.join(ALIGN4J_WRITTEN, kind)
    if not os.path.isdir(src):
        print(f"{src}: absent (run RewardLoraTest first); skipped", file=sys.stderr)
        return
    folder = os.path.join(OUT, "align4j-written", kind)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    for name in ["adapter_config.json", "adapter_model.safetensors"]:
        shutil.copy(os.path.join(src, name), folder)
    relative_base(folder, kind)
    model = PeftModel.from_pretrained(base(kind), folder)
    # PEFT took the score head from the folder, not the new one of the base
    saved = load_file(os.path.join(folder, "adapter_model.safetensors"))
    assert torch.equal(model.base_model.model.score.weight, saved["base_model.model.score.weight"]), "score head not loaded"
    for n, t in saved.items():
        if "lora_" in n:
            peft_name = n.replace(".weight", ".default.weight")
            got = dict(model.named_parameters())[peft_name]
            assert torch.equal(got, t), n
    doc = {"made_by": "model/src/test/python/reward_lora_fixtures.py", "versions": VERSIONS, "class": type(model.base_model.model).__name__,
           **rewards(model, kind)}
    with open(os.path.join(folder, "peft_rewards.json"), "w") as f:
        json.dump(doc, f, indent=1)
    print(kind, "align4j-written: loaded by PEFT as", doc["class"], file=sys.stderr)


def main():
    torch.set_num_threads(1)
    for kind in CONFIGS:
        peft_written(kind)
        align4j_written(kind)


if __name__ == "__main__":
    main()
