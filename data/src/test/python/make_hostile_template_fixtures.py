"""What transformers 5.17's apply_chat_template does with hostile inputs to Qwen3's template.

Writes src/test/resources/chat/hostile/qwen3_hostile.json: for each case the messages, the
add_generation_prompt flag, the extra template variables and either the rendered text or the
name of the exception transformers raises. HostileTemplateTest replays them in Java.

    python3 data/src/test/python/make_hostile_template_fixtures.py   (a venv with transformers 5.17 from the package mirror)
"""
import json
import pathlib

from transformers import AutoTokenizer

HERE = pathlib.Path(__file__).resolve().parent
RES = HERE.parent / "resources" / "chat"
tok = AutoTokenizer.from_pretrained(RES / "models" / "qwen3")

USER = {"role": "user", "content": "hi"}
cases = {
    "tool_calls_a_string": ([USER, {"role": "assistant", "content": "", "tool_calls": "oops"}], False, {}),
    "tool_call_empty": ([USER, {"role": "assistant", "content": "", "tool_calls": [{"id": "x"}]}], False, {}),
    "tool_call_function_a_string": (
        [USER, {"role": "assistant", "content": "", "tool_calls": [{"function": "oops"}]}], False, {}),
    "tool_call_without_function": (
        [USER, {"role": "assistant", "content": "", "tool_calls": [{"name": "f", "arguments": {}}]}], False, {}),
    "enable_thinking_the_string_no": ([USER], True, {"enable_thinking": "no"}),
    "enable_thinking_false": ([USER], True, {"enable_thinking": False}),
    "typed_parts": ([{"role": "user", "content": [{"type": "text", "text": "hi"}]}], True, {}),
}
out = {}
for name, (conv, gen, kw) in cases.items():
    entry = {"messages": conv, "add_generation_prompt": gen, "kwargs": kw}
    try:
        entry["text"] = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen, **kw)
    except Exception as e:  # the exception's type is the expected outcome
        entry["raises"] = type(e).__name__
    out[name] = entry
(RES / "hostile").mkdir(exist_ok=True)
(RES / "hostile" / "qwen3_hostile.json").write_text(json.dumps(out, indent=1, ensure_ascii=False))
