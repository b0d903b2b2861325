"""What transformers 5.17's apply_chat_template does with hostile inputs to real chat templates.

Writes src/test/resources/chat/hostile/templates_hostile.json: for each case the model (a folder of
src/test/resources/chat/models), the messages, the add_generation_prompt flag, the extra template
variables and either the rendered text or the name and message of the exception transformers raises.
HostileTemplateTest replays them in Java.

    python3 data/src/test/python/make_hostile_template_fixtures.py   (a venv with transformers 5.17 from the package mirror)
"""
import json
import pathlib
import sys
import tempfile

from transformers import PreTrainedTokenizerFast

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_chat_fixtures import model_dir  # noqa: E402  the model folder as the Java tests build it

HERE = pathlib.Path(__file__).resolve().parent
RES = HERE.parent / "resources" / "chat"

USER = {"role": "user", "content": "hi"}
PARTS = {"role": "user", "content": [{"type": "text", "text": "hi"}]}
TOOL = {"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}}
CALLS = lambda calls: [USER, {"role": "assistant", "content": "", "tool_calls": calls}]  # noqa: E731
cases = {
    # issue 27's instances: Qwen3 given malformed tool calls, enable_thinking as a string, typed parts
    "qwen3/tool_calls_a_string": ("qwen3", CALLS("oops"), False, {}),
    "qwen3/tool_call_empty": ("qwen3", CALLS([{"id": "x"}]), False, {}),
    "qwen3/tool_call_function_a_string": ("qwen3", CALLS([{"function": "oops"}]), False, {}),
    "qwen3/tool_call_without_function": ("qwen3", CALLS([{"name": "f", "arguments": {}}]), False, {}),
    "qwen3/enable_thinking_the_string_no": ("qwen3", [USER], True, {"enable_thinking": "no"}),
    "qwen3/enable_thinking_false": ("qwen3", [USER], True, {"enable_thinking": False}),
    "qwen3/typed_parts": ("qwen3", [PARTS], True, {}),
    # found here: a function without arguments, a JSON-string arguments, tools and documents that are
    # not lists of objects (transformers' own checks), 'text' + list and 'text' + None in the templates
    # that concatenate, typed parts through | trim
    "qwen3/tool_call_function_without_arguments": ("qwen3", CALLS([{"function": {"name": "f"}}]), False, {}),
    "qwen3/tool_call_arguments_a_json_string": (
        "qwen3", CALLS([{"type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}}]), False, {}),
    "qwen3/tools_a_string": ("qwen3", [USER], True, {"tools": "oops"}),
    "qwen3/tools_with_a_string": ("qwen3", [USER], True, {"tools": [TOOL, "oops"]}),
    "qwen3/documents_with_a_string": ("qwen3", [USER], True, {"documents": ["oops"]}),
    "smollm2/typed_parts": ("smollm2", [PARTS], True, {}),
    "mistral_v0_1/typed_parts": ("mistral_v0_1", [PARTS], True, {}),
    "smollm2/tool_calls_content_none": (
        "smollm2", [USER, {"role": "assistant", "content": None,
                           "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {}}}]}], False, {}),
    "llama3_1/typed_parts": ("llama3_1", [PARTS], True, {}),
}
out = {}
tokenizers = {}
tmp = pathlib.Path(tempfile.mkdtemp())
for name, (model, conv, gen, kw) in cases.items():
    if model not in tokenizers:  # apply_chat_template is the same for every tokenizer class
        tokenizers[model] = PreTrainedTokenizerFast.from_pretrained(str(model_dir(model, tmp)))
    tok = tokenizers[model]
    entry = {"model": model, "messages": conv, "add_generation_prompt": gen, "kwargs": kw}
    try:
        entry["text"] = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen, **kw)
    except Exception as e:  # the exception is the expected outcome
        entry["raises"] = type(e).__name__
        entry["message"] = str(e).splitlines()[0] if str(e) else ""
    out[name] = entry
(RES / "hostile").mkdir(exist_ok=True)
(RES / "hostile" / "templates_hostile.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
