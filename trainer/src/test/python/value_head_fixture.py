"""Per-position values of a sequence classifier, as TRL 0.x's PPO value model reads them
(`value_model.score(backbone(...).last_hidden_state)` at every position; trl PolicyAndValueWrapper), on the
tiny reward model of trl-rl/ (GPT2ForSequenceClassification): the expected values of CausalLm.values.

    python value_head_fixture.py    (torch 2.13 CPU, transformers 5.17)
"""
import json
import os

import torch
from transformers import AutoModelForSequenceClassification

HERE = os.path.dirname(os.path.abspath(__file__)) + "/../resources/trl-rl"
rm = AutoModelForSequenceClassification.from_pretrained(HERE + "/reward-gpt2-tiny").eval()
ids = torch.tensor([[40, 41, 42, 43, 44, 45, 2], [50, 51, 52, 2, 3, 3, 3]])
mask = (ids != 3).long()
with torch.no_grad():
    hidden = rm.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
    values = rm.score(hidden).squeeze(-1)
json.dump({"input_ids": ids.tolist(), "attention_mask": mask.tolist(), "values": values.tolist()},
          open(HERE + "/value-head-gpt2-tiny.json", "w"), indent=1)
print(values)
