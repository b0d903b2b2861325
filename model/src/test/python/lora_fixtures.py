"""Expected values for align4j's LoRA tests, made with PEFT, TRL and transformers (the oracles).

Writes model/src/test/resources/lora/ (see LORA.md there). Run from the repository root:

    python model/src/test/python/lora_fixtures.py

with torch 2.13 (CPU), transformers 5.17, peft 0.21 and trl 1.13 installed. The Java tests need no
Python: they read what this script wrote.

1. peft-written/<model>/: an adapter PEFT writes (save_pretrained) with non-zero A and B, and what PEFT
   computes with it: log-probs of the fixture's preference batch with the adapter on and off, the
   weights of merge_and_unload(), and one DPO step of TRL's DPOTrainer (loss, rewards, the gradient
   norm of every adapter parameter), the reference being the same model with the adapter disabled.
2. align4j-written/<model>/: the adapter align4j's LoraPeftFormatTest wrote into
   model/target/lora-align4j-written/<model>/ (run that test first), copied here, and the log-probs
   PEFT computes after PeftModel.from_pretrained on it. The Java test checks that it still writes
   exactly these files and that its log-probs equal PEFT's.
"""
import json
import math
import os
import shutil
import sys
import tempfile

import peft
import torch
import transformers
import trl
from datasets import Dataset
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
HF_TINY = os.path.join(ROOT, "model", "src", "test", "resources", "hf-tiny")
OUT = os.path.join(ROOT, "model", "src", "test", "resources", "lora")
ALIGN4J_WRITTEN = os.path.join(ROOT, "model", "target", "lora-align4j-written")
BETA = 0.1

# One configuration per fixture model, each covering a different path: GPT-2's Conv1D layers through
# all-linear; every Llama projection by name with rsLoRA; PEFT's default targets (q_proj, v_proj) on
# Qwen2's biased projections.
CONFIGS = {
    "gpt2-tiny": dict(r=4, lora_alpha=8, target_modules="all-linear"),
    "llama-tiny": dict(r=8, lora_alpha=16, use_rslora=True,
                       target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
    "qwen2-tiny": dict(r=4, lora_alpha=32, target_modules=None),
}


def our_name(peft_name):
    """base_model.model.X.lora_A.default.weight -> X.lora_A.weight (align4j's parameter name)."""
    name = peft_name.replace(".default", "")
    return name[len("base_model.model."):] if name.startswith("base_model.model.") else name


def seq_logps(model, ids, att, cm):
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=att, use_cache=False).logits.float()
    lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    m = cm[:, 1:].float()
    s = (lp * m).sum(-1)
    return s.contiguous(), (s / m.sum(-1)).contiguous()


def load_base(kind):
    return AutoModelForCausalLM.from_pretrained(os.path.join(HF_TINY, kind), dtype=torch.float32).eval()


def pref_batch(kind):
    ref = load_file(os.path.join(HF_TINY, kind, "reference.safetensors"))
    return ref["pref_input_ids"], ref["pref_attention_mask"], ref["pref_completion_mask"]


def peft_written(kind):
    out = os.path.join(OUT, "peft-written", kind)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    ids, att, cm = pref_batch(kind)
    tokenizer = AutoTokenizer.from_pretrained(os.path.join(HF_TINY, kind))
    pairs = [json.loads(l) for l in open(os.path.join(HF_TINY, "prefs.jsonl"))][:4]
    with tempfile.TemporaryDirectory() as tmp:
        # TRL wraps the base model with a new adapter itself (its reference is then the model with the
        # adapter disabled, as align4j's); the adapter's weights are then set to non-zero values, the
        # state of a run some steps in
        args = trl.DPOConfig(output_dir=tmp, beta=BETA, loss_type=["sigmoid"], per_device_train_batch_size=4, report_to=[],
                             use_cpu=True, disable_dropout=True)
        trainer = trl.DPOTrainer(model=load_base(kind), args=args, processing_class=tokenizer, train_dataset=Dataset.from_list(pairs),
                                 peft_config=LoraConfig(lora_dropout=0.0, task_type="CAUSAL_LM", **CONFIGS[kind]))
        model = trainer.model
        g = torch.Generator().manual_seed(2021)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_" in name:
                    # s·B·A then has entries of 0.04 to 0.16 next to base weights of std 0.15: every
                    # log-prob moves, and the model stays in a regime where fp32 is accurate
                    p.copy_(0.1 * torch.randn(p.shape, generator=g))
        model.eval()
        model.save_pretrained(out)
        os.remove(os.path.join(out, "README.md"))  # PEFT's model card template, not needed
        # PEFT records the base model's path as given (absolute here); point it at the fixture relative to
        # the adapter folder, so the folder loads on its own on any machine
        config_file = os.path.join(out, "adapter_config.json")
        config = json.load(open(config_file))
        config["base_model_name_or_path"] = "../../../hf-tiny/" + kind
        json.dump(config, open(config_file, "w"), indent=2, sort_keys=True)
        expected = {}
        expected["policy_logps"], expected["policy_logps_mean"] = seq_logps(model, ids, att, cm)
        with model.disable_adapter():
            expected["reference_logps"], expected["reference_logps_mean"] = seq_logps(model, ids, att, cm)
        model.zero_grad()
        loss = trainer.compute_loss(model, {"input_ids": ids, "attention_mask": att, "completion_mask": cm})
        loss.backward()
        metrics = {k: v[-1] for k, v in trainer._metrics["eval"].items()}
    norms = {our_name(n): p.grad.norm().item() for n, p in model.named_parameters() if p.grad is not None}
    assert norms and all("lora_" in n for n in norms), "only adapter parameters may receive gradients"
    dpo = {"beta": BETA, "loss": loss.item(), "grad_norm_by_param": norms,
           "grad_norm_total": math.sqrt(sum(v * v for v in norms.values())),
           "metrics": {k: metrics[k] for k in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
                                               "logps/chosen", "logps/rejected")},
           "rewards_chosen": (BETA * (expected["policy_logps"][:4] - expected["reference_logps"][:4])).tolist(),
           "rewards_rejected": (BETA * (expected["policy_logps"][4:] - expected["reference_logps"][4:])).tolist()}
    adapted = {our_name(n).rsplit(".lora_", 1)[0] for n, _ in model.named_parameters() if "lora_A" in n}
    merged = model.merge_and_unload()
    for name, p in merged.named_parameters():
        if name.rsplit(".", 1)[0] in adapted:
            expected["merged." + name] = p.detach().contiguous()
    save_file(expected, os.path.join(out, "expected.safetensors"))
    json.dump({"config": CONFIGS[kind], "adapted_modules": sorted(adapted), "dpo_step": dpo}, open(os.path.join(out, "expected.json"), "w"),
              indent=1)
    print(kind, "peft-written: DPO loss", dpo["loss"], "rewards", dpo["metrics"]["rewards/chosen"], dpo["metrics"]["rewards/rejected"],
          flush=True)


def align4j_written(kind):
    src = os.path.join(ALIGN4J_WRITTEN, kind)
    if not os.path.isdir(src):
        print(kind, "align4j-written: skipped,", src, "missing (run LoraPeftFormatTest first)", flush=True)
        return
    out = os.path.join(OUT, "align4j-written", kind)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    for f in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy(os.path.join(src, f), os.path.join(out, f))
    # align4j wrote the absolute path of the base model on the machine that ran the test: keep the
    # fixture free of it (the test ignores this key)
    config_file = os.path.join(out, "adapter_config.json")
    config = json.load(open(config_file))
    config["base_model_name_or_path"] = "../../../hf-tiny/" + kind
    json.dump(config, open(config_file, "w"), indent=2, sort_keys=True)
    ids, att, cm = pref_batch(kind)
    model = PeftModel.from_pretrained(load_base(kind), out).eval()
    expected = {}
    expected["policy_logps"], expected["policy_logps_mean"] = seq_logps(model, ids, att, cm)
    save_file(expected, os.path.join(out, "peft_logps.safetensors"))
    print(kind, "align4j-written: loaded in PEFT", flush=True)


if __name__ == "__main__":
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    for kind in CONFIGS:
        peft_written(kind)
        align4j_written(kind)
    json.dump({"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__, "trl": trl.__version__,
               "script": "model/src/test/python/lora_fixtures.py"}, open(os.path.join(OUT, "versions.json"), "w"), indent=1)
    sys.exit(0)
