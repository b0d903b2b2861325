"""Writes a small Llama-architecture model with random weights (seeded) and the Llama-3 tokenizer as
an HF folder, for benchmarks/compare-trl.sh: both TRL and align4j load this same folder.

    make_model.py OUT TOKENIZER_DIR [SHAPE]

SHAPE: compare-trl (the default: 8 layers of width 256, 39.2M parameters of which the tied 128k-token
embedding is 32.8M, so its LM head dominates a step) or smollm-135m (SmolLM-135M's layers: 30 of width 576,
9 query and 3 key/value heads; 180M parameters with the Llama-3 vocabulary, 106M of them in the layers)."""
import json
import shutil
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

out, tokenizer_dir = sys.argv[1], sys.argv[2]
shape = sys.argv[3] if len(sys.argv) > 3 else "compare-trl"
shapes = {
    "compare-trl": dict(hidden_size=256, intermediate_size=688, num_hidden_layers=8, num_attention_heads=4,
                        num_key_value_heads=4),
    "smollm-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                        num_key_value_heads=3),
}
if shape not in shapes:
    sys.exit(f"make_model.py: unknown shape {shape!r}; known: {', '.join(shapes)}")
torch.manual_seed(0)
tok = json.load(open(f"{tokenizer_dir}/tokenizer.json"))
vocab = max([v for v in tok["model"]["vocab"].values()] + [t["id"] for t in tok["added_tokens"]]) + 1
eos = next(t["id"] for t in tok["added_tokens"] if t["content"] == "<|end_of_text|>")
config = LlamaConfig(vocab_size=vocab, **shapes[shape], max_position_embeddings=2048, tie_word_embeddings=True, bos_token_id=eos - 1,
                     eos_token_id=eos, pad_token_id=eos, rope_theta=500000.0)
model = LlamaForCausalLM(config)
model.save_pretrained(out, safe_serialization=True)
for f in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(f"{tokenizer_dir}/{f}", f"{out}/{f}")
n = sum(p.numel() for p in model.parameters())
emb = model.model.embed_tokens.weight.numel()
print(f"{out}: {n / 1e6:.1f}M parameters ({(n - emb) / 1e6:.1f}M without the tied embedding), vocabulary {vocab}")
