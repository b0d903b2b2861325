"""Writes a Qwen2-0.5B-shaped model with seeded random weights (transformers' own initialisation) and the
Qwen tokenizer as an HF folder, for benchmarks/ppo-memory.sh: hidden 896, 14 heads / 2 KV heads,
intermediate 4864, vocabulary 151936, tied embeddings (Qwen/Qwen2-0.5B's config.json), LAYERS layers (24 in
Qwen2-0.5B); and the same decoder with a new one-label score head as a reward model
(Qwen2ForSequenceClassification, as a reward model trained from the policy would be laid out).

    python make_qwen2_model.py OUT REWARD_OUT TOKENIZER_DIR LAYERS
"""
import shutil
import sys

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2ForSequenceClassification

out, reward_out, tokenizer_dir, layers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.manual_seed(0)
config = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=layers,
                     num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                     rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, bos_token_id=151643,
                     eos_token_id=151643, pad_token_id=151643, sliding_window=None, use_sliding_window=False)
model = Qwen2ForCausalLM(config)
model.save_pretrained(out, safe_serialization=True)
config.num_labels = 1
config.architectures = ["Qwen2ForSequenceClassification"]
reward = Qwen2ForSequenceClassification(config)
reward.model.load_state_dict(model.model.state_dict())
reward.save_pretrained(reward_out, safe_serialization=True)
for d in (out, reward_out):
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{tokenizer_dir}/{f}", f"{d}/{f}")
n = sum(p.numel() for p in model.parameters())
print(f"{out}: {layers} layers, {n / 1e6:.1f}M parameters ({n * 4 / 2**30:.2f} GiB in float32)")
