"""Writes a small Llama-architecture model with random weights (seeded) and the Llama-3 tokenizer as
an HF folder, for benchmarks/compare-trl.sh: both TRL and align4j load this same folder."""
import json
import shutil
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

out, tokenizer_dir = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
tok = json.load(open(f"{tokenizer_dir}/tokenizer.json"))
vocab = max([v for v in tok["model"]["vocab"].values()] + [t["id"] for t in tok["added_tokens"]]) + 1
eos = next(t["id"] for t in tok["added_tokens"] if t["content"] == "<|end_of_text|>")
config = LlamaConfig(vocab_size=vocab, hidden_size=256, intermediate_size=688, num_hidden_layers=8, num_attention_heads=4,
                     num_key_value_heads=4, max_position_embeddings=2048, tie_word_embeddings=True, bos_token_id=eos - 1,
                     eos_token_id=eos, pad_token_id=eos, rope_theta=500000.0)
model = LlamaForCausalLM(config)
model.save_pretrained(out, safe_serialization=True)
for f in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(f"{tokenizer_dir}/{f}", f"{out}/{f}")
n = sum(p.numel() for p in model.parameters())
emb = model.model.embed_tokens.weight.numel()
print(f"{out}: {n / 1e6:.1f}M parameters ({(n - emb) / 1e6:.1f}M without the tied embedding), vocabulary {vocab}")
