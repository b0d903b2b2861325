"""TRL 1.13's per-step metrics on the hf-tiny fixture models: the guard TrlParityTest compares align4j with.

Runs HF TRL's DPOTrainer (every loss_type, two mixes, the f-divergences, ld_alpha, use_weighting), SFTTrainer
(prompt-completion records, and the language-modeling text and messages records), KTOTrainer (kto and
apo_zero_unpaired, on unpaired records and on pairs it unpairs) and the experimental ORPOTrainer and CPOTrainer
(sigmoid, hinge, ipo, simpo with and without the BC term, AlphaPO) for 10 steps on the
gpt2, llama and qwen2 fixtures of model/src/test/resources/hf-tiny, with every pair in every step
(batch 8, no accumulation), AdamW at lr 1e-3, β 0.1, a linear schedule without warm-up, and writes
every metric TRL logs at every step to trainer/src/test/resources/trl/<model>-<run>.json, with the
settings used. align4j's test runs its own trainer with the same settings and compares.

Dropout: DPOTrainer turns it off (disable_dropout=True, its default). SFTTrainer keeps the model's
(GPT-2: 0.1); for the run with dropout the global torch generator is seeded right before each
forward pass with seed + 1000003 * step, the rule align4j follows, so that both draw the same masks
(libtorch 2.7.1 and torch 2.13 produce the same random stream on the CPU; align4j adds the index of
the micro-batch within the step, 0 here), and attention is eager on both sides (the SDPA kernels'
internal dropout differs between versions). Masks also depend on which row of the batch an example
sits in, so every run takes the rows in align4j's order (java.util.Random and Collections.shuffle as
their Javadoc specifies them, reimplemented below) instead of the Trainer's RandomSampler.

KTO takes its rows in order (KTOConfig's train_sampling_strategy "sequential", which its KL estimate needs:
each row's mismatched completion is its predecessor's in the same batch), as align4j's kto does; its
data are kto-unpaired.jsonl and kto-conversational.jsonl here (12 records, labels mixed within every
batch of 4) and prefs.jsonl unpaired by TRL itself (a batch of 8 desirable rows, then one of 8
undesirable rows). ORPO and CPO take prefs.jsonl (and prefs-conversational.jsonl) in align4j's order.

Rerun (CPU, a few minutes):
    python3 -m venv v && v/bin/pip install torch==2.13.0+cpu transformers==5.17.0 trl==1.13.0
    v/bin/python trainer/src/test/python/trl_fixtures.py [NAME ...]   (all, or only the fixtures named)
"""

import json
import os
import sys

import torch
import transformers
import trl
from datasets import Dataset
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, TrainerCallback
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer, SFTConfig, SFTTrainer
from trl.experimental.cpo import CPOConfig, CPOTrainer
from trl.experimental.orpo import ORPOConfig, ORPOTrainer

ROOT = os.path.dirname(os.path.abspath(__file__)) + "/../../../.."
FIXTURES = ROOT + "/model/src/test/resources/hf-tiny"
OUT = ROOT + "/trainer/src/test/resources/trl"
SEED = 42
STEPS = 10
COMMON = dict(
    per_device_train_batch_size=8,
    gradient_accumulation_steps=1,
    max_steps=STEPS,
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


class Record(TrainerCallback):
    def __init__(self):
        self.steps = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            row = {"step": state.global_step}
            row.update({k: float(v) for k, v in logs.items() if isinstance(v, (int, float))})
            self.steps.append(row)


class JavaRandom:
    """java.util.Random as its Javadoc specifies it: a 48-bit linear congruential generator."""

    MASK = (1 << 48) - 1

    def __init__(self, seed):
        self.seed = (seed ^ 0x5DEECE66D) & self.MASK

    def next(self, bits):
        self.seed = (self.seed * 0x5DEECE66D + 0xB) & self.MASK
        r = self.seed >> (48 - bits)
        return r - (1 << 32) if r >= 1 << 31 else r

    def next_int(self, bound):
        r = self.next(31)
        m = bound - 1
        if bound & m == 0:
            return (bound * r) >> 31
        u = r
        while True:
            r = u % bound
            if u - r + m < (1 << 31):  # Java's int overflow test: u - r + m < 0 as a signed int
                return r
            u = self.next(31)


def align4j_order(n, seed, epoch):
    """The order align4j's trainers take a dataset's rows in (PairOrder, without length grouping):
    java.util.Collections.shuffle of 0..n-1 with java.util.Random(seed * 1000003 + epoch)."""
    order = list(range(n))
    rnd = JavaRandom((seed * 1000003 + epoch) & ((1 << 64) - 1))
    for i in range(n, 1, -1):
        j = rnd.next_int(i)
        order[i - 1], order[j] = order[j], order[i - 1]
    return order


class Align4jOrder(torch.utils.data.Sampler):
    """Each pass over the data (an epoch) in align4j's order, so that both trainers put the same rows
    in the same places of a batch: the sum of a loss does not care, dropout masks do."""

    def __init__(self, n, seed):
        self.n, self.seed, self.epoch = n, seed, 0

    def __iter__(self):
        order = align4j_order(self.n, self.seed, self.epoch)
        self.epoch += 1
        return iter(order)

    def __len__(self):
        return self.n


def in_align4j_order(cls):
    class InOrder(cls):
        def _get_train_sampler(self, train_dataset=None):
            return Align4jOrder(len(train_dataset if train_dataset is not None else self.train_dataset), self.args.seed)

    return InOrder


def reseeding(cls):
    """The trainer class with the global generator seeded before each forward pass (the dropout runs)."""

    class Reseeding(cls):
        def compute_loss(self, model, inputs, *args, **kwargs):
            torch.manual_seed(SEED + 1000003 * self.state.global_step)
            return super().compute_loss(model, inputs, *args, **kwargs)

    return Reseeding


def tokenizer(model_name):
    """The class tokenizer_config.json names: AutoTokenizer in transformers 5 picks Qwen2Tokenizer from
    config.json's model_type for qwen2-tiny and replaces the tokenizer.json's pre-tokenizer with Qwen's
    digit-splitting rule; the file's own rule is what the fixture (and DJL's tokenizers) define."""
    return PreTrainedTokenizerFast.from_pretrained(f"{FIXTURES}/{model_name}")


def prefs():
    with open(FIXTURES + "/prefs.jsonl") as f:
        return [json.loads(line) for line in f]


def write(name, settings, steps):
    os.makedirs(OUT, exist_ok=True)
    doc = {
        "made_by": "trainer/src/test/python/trl_fixtures.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__},
        "settings": settings,
        "steps": steps,
    }
    with open(f"{OUT}/{name}.json", "w") as f:
        json.dump(doc, f, indent=1)
    print(name, "loss", [round(s["loss"], 6) for s in steps], file=sys.stderr)


def dpo(model_name, loss_type, label_smoothing=0.0, **options):
    """One DPOTrainer run: loss_type is one name or a list (a mix, with options' loss_weights); options are
    DPOConfig's other loss settings (f_divergence_type, f_alpha_divergence_coef, ld_alpha, use_weighting,
    discopop_tau), recorded in the settings only when given."""
    torch.manual_seed(SEED)
    tok = tokenizer(model_name)
    policy = AutoModelForCausalLM.from_pretrained(f"{FIXTURES}/{model_name}", dtype=torch.float32)
    ref = AutoModelForCausalLM.from_pretrained(f"{FIXTURES}/{model_name}-ref", dtype=torch.float32)
    types = loss_type if isinstance(loss_type, list) else [loss_type]
    args = DPOConfig(output_dir="/tmp/trl-fixtures", loss_type=types, beta=0.1, label_smoothing=label_smoothing,
                     **options, **COMMON)
    rec = Record()
    trainer = in_align4j_order(DPOTrainer)(model=policy, ref_model=ref, args=args, train_dataset=Dataset.from_list(prefs()),
                         processing_class=tok, callbacks=[rec])
    trainer.train()
    settings = {"trainer": "dpo", "model": model_name, "reference_model": model_name + "-ref", "loss_type": loss_type,
                "beta": 0.1, "label_smoothing": label_smoothing, "attention": policy.config._attn_implementation}
    settings.update(options)
    settings.update({k: v for k, v in COMMON.items() if isinstance(v, (int, float, str))})
    return settings, rec.steps


# Issue 25: TRL's other loss types, two mixes and the modifiers; name -> (loss_type, label_smoothing, options)
MORE = {
    "exo_pair": ("exo_pair", 1e-3, {}),
    "nca_pair": ("nca_pair", 0.0, {}),
    "bco_pair": ("bco_pair", 0.0, {}),
    "sppo_hard": ("sppo_hard", 0.0, {}),
    "aot": ("aot", 0.0, {}),
    "aot_unpaired": ("aot_unpaired", 0.0, {}),
    "apo_zero": ("apo_zero", 0.0, {}),
    "apo_down": ("apo_down", 0.0, {}),
    # τ 0.2, not the default 0.05: at 0.05 TRL's own float32 run leaves its float64 run by 15% in grad_norm
    # within five steps (1 - sigmoid(h/τ) rounds away at h/τ > 10), so no implementation can be compared there
    "discopop": ("discopop", 0.0, {"discopop_tau": 0.2}),
    "sigmoid_norm": ("sigmoid_norm", 0.0, {}),
    "mpo": (["sigmoid", "bco_pair", "sft"], 0.0, {"loss_weights": [0.8, 0.2, 1.0]}),
    "sigmoid-sft": (["sigmoid", "sft"], 0.0, {}),
    "forward_kl": ("sigmoid", 0.0, {"f_divergence_type": "forward_kl"}),
    "js_divergence": ("sigmoid", 0.0, {"f_divergence_type": "js_divergence"}),
    "alpha_divergence": ("sigmoid", 0.0, {"f_divergence_type": "alpha_divergence", "f_alpha_divergence_coef": 0.5}),
    "ipo-js_divergence": ("ipo", 0.0, {"f_divergence_type": "js_divergence"}),
    "ld_alpha": ("sigmoid", 0.0, {"ld_alpha": 0.5}),
    "wpo": ("sigmoid", 0.0, {"use_weighting": True}),
}
# the runs made on all three fixture models (the rest on gpt2-tiny only)
ON_ALL_MODELS = ["exo_pair", "bco_pair", "apo_zero", "sigmoid_norm", "mpo", "alpha_divergence", "ld_alpha", "wpo"]


def sft(model_name, dropout):
    torch.manual_seed(SEED)
    tok = tokenizer(model_name)
    kwargs = {"dtype": torch.float32}
    if model_name.startswith("gpt2"):
        kwargs["attn_implementation"] = "eager"
        if not dropout:
            kwargs.update(attn_pdrop=0.0, embd_pdrop=0.0, resid_pdrop=0.0)
    model = AutoModelForCausalLM.from_pretrained(f"{FIXTURES}/{model_name}", **kwargs)
    data = [{"prompt": p["prompt"], "completion": p["chosen"]} for p in prefs()]
    args = SFTConfig(output_dir="/tmp/trl-fixtures", **COMMON)
    rec = Record()
    cls = in_align4j_order(reseeding(SFTTrainer) if dropout else SFTTrainer)
    trainer = cls(model=model, args=args, train_dataset=Dataset.from_list(data), processing_class=tok, callbacks=[rec])
    trainer.train()
    settings = {"trainer": "sft", "model": model_name, "dropout": dropout, "attention": model.config._attn_implementation,
                "seed_rule": "seed + 1000003 * step before each forward" if dropout else None}
    settings.update({k: v for k, v in COMMON.items() if isinstance(v, (int, float, str))})
    return settings, rec.steps


def rows(path):
    with open(ROOT + "/" + path) as f:
        return [json.loads(line) for line in f]


def settings_of(trainer, model_name, data, common, **extra):
    s = {"trainer": trainer, "model": model_name, "data": data}
    s.update(extra)
    s.update({k: v for k, v in common.items() if isinstance(v, (int, float, str))})
    return s


KTO_DATA = "trainer/src/test/resources/trl/kto-unpaired.jsonl"
PREFS = "model/src/test/resources/hf-tiny/prefs.jsonl"


def kto(model_name, data=KTO_DATA, loss_type="kto", batch=4, accum=1, desirable_weight=1.0, undesirable_weight=1.4):
    """One KTOTrainer run against the -ref model: rows in order, as KTOConfig's default sampling."""
    torch.manual_seed(SEED)
    tok = tokenizer(model_name)
    policy = AutoModelForCausalLM.from_pretrained(f"{FIXTURES}/{model_name}", dtype=torch.float32)
    ref = AutoModelForCausalLM.from_pretrained(f"{FIXTURES}/{model_name}-ref", dtype=torch.float32)
    common = dict(COMMON, per_device_train_batch_size=batch, gradient_accumulation_steps=accum)
    args = KTOConfig(output_dir="/tmp/trl-fixtures", loss_type=loss_type, beta=0.1, desirable_weight=desirable_weight,
                     undesirable_weight=undesirable_weight, **common)
    rec = Record()
    trainer = KTOTrainer(model=policy, ref_model=ref, args=args, train_dataset=Dataset.from_list(rows(data)),
                         processing_class=tok, callbacks=[rec])
    trainer.train()
    return settings_of("kto", model_name, data, common, reference_model=model_name + "-ref", loss_type=loss_type,
                       beta=0.1, desirable_weight=desirable_weight, undesirable_weight=undesirable_weight,
                       unpair_preference_dataset="chosen" in rows(data)[0],
                       attention=policy.config._attn_implementation), rec.steps


def orpo(model_name, data=PREFS):
    torch.manual_seed(SEED)
    tok = tokenizer(model_name)
    policy = AutoModelForCausalLM.from_pretrained(f"{FIXTURES}/{model_name}", dtype=torch.float32)
    args = ORPOConfig(output_dir="/tmp/trl-fixtures", beta=0.1, **COMMON)
    rec = Record()
    trainer = in_align4j_order(ORPOTrainer)(model=policy, args=args, train_dataset=Dataset.from_list(rows(data)),
                                            processing_class=tok, callbacks=[rec])
    trainer.train()
    return settings_of("orpo", model_name, data, COMMON, beta=0.1,
                       attention=policy.config._attn_implementation), rec.steps


def cpo(model_name, loss_type="sigmoid", data=PREFS, **options):
    """One CPOTrainer run; options are CPOConfig's cpo_alpha, simpo_gamma, alpha, label_smoothing."""
    torch.manual_seed(SEED)
    tok = tokenizer(model_name)
    policy = AutoModelForCausalLM.from_pretrained(f"{FIXTURES}/{model_name}", dtype=torch.float32)
    args = CPOConfig(output_dir="/tmp/trl-fixtures", loss_type=loss_type, beta=0.1, **options, **COMMON)
    rec = Record()
    trainer = in_align4j_order(CPOTrainer)(model=policy, args=args, train_dataset=Dataset.from_list(rows(data)),
                                           processing_class=tok, callbacks=[rec])
    trainer.train()
    return settings_of("cpo", model_name, data, COMMON, loss_type=loss_type, beta=0.1,
                       attention=policy.config._attn_implementation, **options), rec.steps


# KTO, ORPO and CPO runs: name (after the model's) -> (function, keyword arguments, on all three models)
UNPAIRED = {
    "kto": (kto, {}, True),
    "kto-paired": (kto, {"data": PREFS, "batch": 8, "desirable_weight": 1.0, "undesirable_weight": 1.0}, False),
    "kto-apo_zero_unpaired": (kto, {"loss_type": "apo_zero_unpaired"}, False),
    "kto-conversational": (kto, {"data": "trainer/src/test/resources/trl/kto-conversational.jsonl"}, False),
    "kto-accumulation": (kto, {"batch": 2, "accum": 2}, False),
    "orpo": (orpo, {}, True),
    "orpo-conversational": (orpo, {"data": "trainer/src/test/resources/trl/prefs-conversational.jsonl"}, False),
    "cpo": (cpo, {}, True),
    "cpo-hinge": (cpo, {"loss_type": "hinge"}, False),
    "cpo-ipo": (cpo, {"loss_type": "ipo"}, False),
    "cpo-label_smoothing": (cpo, {"label_smoothing": 0.1}, False),
    "cpo-simpo": (cpo, {"loss_type": "simpo", "cpo_alpha": 0.0, "simpo_gamma": 0.5}, True),
    "cpo-simpo-bc": (cpo, {"loss_type": "simpo", "cpo_alpha": 0.5, "simpo_gamma": 1.0}, False),
    "cpo-alphapo": (cpo, {"loss_type": "alphapo", "alpha": 0.25}, False),
}


# TRL's language-modeling records, made from the same pairs: the prompt and the chosen answer as one text,
# or as a user and an assistant message; SFTTrainer trains on every token (align4j reads the data files
# written here, next to the fixtures)
LM_DATA = {
    "text": lambda p: {"text": p["prompt"] + p["chosen"]},
    "messages": lambda p: {"messages": [{"role": "user", "content": p["prompt"]},
                                        {"role": "assistant", "content": p["chosen"].strip()}]},
}


def sft_lm(model_name, kind):
    torch.manual_seed(SEED)
    tok = tokenizer(model_name)
    kwargs = {"dtype": torch.float32}
    if model_name.startswith("gpt2"):
        kwargs.update(attn_implementation="eager", attn_pdrop=0.0, embd_pdrop=0.0, resid_pdrop=0.0)
    model = AutoModelForCausalLM.from_pretrained(f"{FIXTURES}/{model_name}", **kwargs)
    data = [LM_DATA[kind](p) for p in prefs()]
    data_file = f"sft-{kind}.jsonl"
    os.makedirs(OUT, exist_ok=True)
    with open(f"{OUT}/{data_file}", "w") as f:
        f.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in data)
    args = SFTConfig(output_dir="/tmp/trl-fixtures", **COMMON)
    rec = Record()
    trainer = in_align4j_order(SFTTrainer)(model=model, args=args, train_dataset=Dataset.from_list(data),
                                           processing_class=tok, callbacks=[rec])
    trainer.train()
    settings = {"trainer": "sft", "model": model_name, "dropout": False, "data": data_file,
                "attention": model.config._attn_implementation}
    settings.update({k: v for k, v in COMMON.items() if isinstance(v, (int, float, str))})
    return settings, rec.steps


def main():
    """All fixtures, or only those named on the command line (e.g. gpt2-tiny-dpo-mpo)."""
    only = set(sys.argv[1:])
    torch.set_num_threads(1)
    runs = []
    for m in ["gpt2-tiny", "llama-tiny", "qwen2-tiny"]:
        for loss_type, eps in [("sigmoid", 0.0), ("ipo", 0.0), ("hinge", 0.0), ("robust", 0.1)]:
            runs.append((f"{m}-dpo-{loss_type}", lambda m=m, t=loss_type, e=eps: dpo(m, t, e)))
        runs.append((f"{m}-sft", lambda m=m: sft(m, dropout=False)))
        for name, (loss_type, eps, options) in MORE.items():
            if m == "gpt2-tiny" or name in ON_ALL_MODELS:
                runs.append((f"{m}-dpo-{name}", lambda m=m, t=loss_type, e=eps, o=options: dpo(m, t, e, **o)))
    for m in ["gpt2-tiny", "llama-tiny", "qwen2-tiny"]:
        for name, (fn, kwargs, everywhere) in UNPAIRED.items():
            if m == "gpt2-tiny" or everywhere:
                runs.append((f"{m}-{name}", lambda m=m, fn=fn, kw=kwargs: fn(m, **kw)))
    runs.append(("gpt2-tiny-sft-dropout", lambda: sft("gpt2-tiny", dropout=True)))
    for m in ["gpt2-tiny", "llama-tiny", "qwen2-tiny"]:
        for kind in LM_DATA:
            runs.append((f"{m}-sft-{kind}", lambda m=m, k=kind: sft_lm(m, k)))
    for name, run in runs:
        if not only or name in only:
            write(name, *run())


if __name__ == "__main__":
    main()
