"""Times DPO steps in TRL's DPOTrainer on the CPU, for benchmarks/compare-trl.sh.

One epoch over the given pairs in the file's order (train_sampling_strategy "sequential", as align4j's
`bench --no-shuffle`, so that both time the same batches): fp32, frozen reference copy (TRL's default:
ref_model=None copies the model), loss sigmoid, beta 0.1, AdamW, the given batch size, no gradient
accumulation, SDPA attention, no padding_free (disabled for DPO in TRL 1.13). Prints one JSON line: real
(attention-mask) tokens/s over the timed steps (every step after the first), the median step time and the
peak resident set size.
"""
import json
import resource
import statistics
import sys
import time

import torch
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import DPOConfig, DPOTrainer

model_dir, data, batch, out_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
torch.manual_seed(0)
tokenizer = AutoTokenizer.from_pretrained(model_dir)
if tokenizer.pad_token is None:
    tokenizer.pad_token = tokenizer.eos_token
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
dataset = load_dataset("json", data_files=data, split="train")

tokens = []
times = []


class Timer(TrainerCallback):
    def on_step_begin(self, args, state, control, **kw):
        self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        times.append(time.perf_counter() - self.t0)


class CountingDPOTrainer(DPOTrainer):
    def training_step(self, model, inputs, *args, **kwargs):
        tokens.append(int(inputs["attention_mask"].sum()))
        return super().training_step(model, inputs, *args, **kwargs)


config = DPOConfig(output_dir=out_dir, per_device_train_batch_size=batch, gradient_accumulation_steps=1, num_train_epochs=1,
                   learning_rate=1e-6, beta=0.1, loss_type="sigmoid", max_length=None, bf16=False, use_cpu=True, logging_steps=1,
                   save_strategy="no", report_to="none", dataloader_num_workers=0, seed=42, disable_tqdm=True,
                   train_sampling_strategy="sequential")
trainer = CountingDPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer, callbacks=[Timer()])
trainer.train()
timed = times[1:]
real = sum(tokens[1:len(times)])
print(json.dumps({"framework": "trl", "trl": __import__("trl").__version__, "torch": torch.__version__, "threads": torch.get_num_threads(),
                  "steps": len(timed), "real_tokens": real, "tokens_per_s": real / sum(timed),
                  "step_ms_median": 1000 * statistics.median(timed),
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
