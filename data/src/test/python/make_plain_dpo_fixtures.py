"""Expected ids of PLAIN-text preference pairs, made by TRL 1.13's own DPOTrainer._prepare_dataset.

TRL 1.13 appends eos's text to each completion when missing, then tokenizes prompt alone and prompt +
completion together, with the tokenizer's special tokens (a bos for Llama-family tokenizers), and splits
at the prompt's length. Each case also records whether TRL's joint ids start with the prompt's and the
completion tokenized apart + eos, which align4j uses where a token straddles the boundary (its documented
difference). align4j's PlainPairParityTest compares its PreferenceEncoder with the JSON this
script writes (data/src/test/resources/chat/fixtures/plain_dpo.json); the project never runs Python.
Rerun from the repository root, with transformers 5.17 and trl 1.13:

    python data/src/test/python/make_plain_dpo_fixtures.py
"""
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from make_chat_fixtures import load_tokenizer, model_dir, trl_dpo  # noqa: E402

OUT = Path("data/src/test/resources/chat/fixtures/plain_dpo.json")
NAMES = ["llama3_1", "qwen2_5", "gemma3", "deepseek_v3"]
RECORDS = [
    {"name": "hh-style", "prompt": "\n\nHuman: What is 2+2?\n\nAssistant:", "chosen": " It is 4.",
     "rejected": " I don't know."},
    {"name": "boundary-merge", "prompt": "The answer is", "chosen": "n't here", "rejected": "."},
    {"name": "trailing-space", "prompt": "Say hi ", "chosen": "hi", "rejected": " hello"},
    {"name": "unicode", "prompt": "Café 日本語?", "chosen": " はい 🙂", "rejected": "no"},
]


def annotate(tok, case):
    """Whether TRL's joint ids start with the prompt's, and the completion tokenized apart + eos (align4j's rule
    where a token straddles the boundary)."""
    record = case["record"]
    for side in ("chosen", "rejected"):
        text = record[side] if record[side].endswith(tok.eos_token) else record[side] + tok.eos_token
        joint = tok(text=record["prompt"] + text)["input_ids"]
        case[f"joint_{side}_starts_with_prompt"] = joint[: len(case["prompt_ids"])] == case["prompt_ids"]
        apart = tok(text=record[side], add_special_tokens=False)["input_ids"]
        if not apart or apart[-1] != tok.eos_token_id:
            apart = apart + [tok.eos_token_id]
        case[f"{side}_apart_ids"] = apart
    return case


def main():
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in NAMES:
            d = model_dir(name, Path(tmp))
            tok, how = load_tokenizer(d)
            eos = tok.eos_token
            cases = []
            for r in RECORDS:
                record = {k: r[k] for k in ("prompt", "chosen", "rejected")}
                cases.append(annotate(tok, {"name": r["name"], "record": record, **trl_dpo(tok, record)}))
                # a completion that already ends with eos's text gets no second one
                ended = {"prompt": r["prompt"], "chosen": r["chosen"] + eos, "rejected": r["rejected"]}
                cases.append(annotate(tok, {"name": r["name"] + "-eos", "record": ended, **trl_dpo(tok, ended)}))
            out[name] = {"tokenizer": how, "cases": cases}
            print(f"{name}: {len(cases)} cases ({how})", file=sys.stderr)
    out["_made_by"] = {"trl": __import__("trl").__version__, "transformers": __import__("transformers").__version__}
    OUT.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
