"""The chat-template corpus as one JSON list (template, special tokens, cases) for hf_jinja_corpus.mjs."""
import glob
import json
import lzma
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../data/src/test/resources/chat")


def read(p):
    if os.path.exists(p):
        return open(p, encoding="utf-8").read()
    if os.path.exists(p + ".xz"):
        return lzma.open(p + ".xz", "rt", encoding="utf-8").read()
    return None


out = []
for f in sorted(glob.glob(ROOT + "/fixtures/*.json")):
    name = os.path.basename(f)[:-5]
    raw = read(f"{ROOT}/models/{name}/tokenizer_config.json")
    if raw is None:  # not a template fixture
        continue
    d = json.load(open(f, encoding="utf-8"))
    tc = json.loads(raw)
    tpl = read(f"{ROOT}/models/{name}/chat_template.jinja") or tc.get("chat_template")
    if isinstance(tpl, list):
        tpl = [t["template"] for t in tpl if t.get("name") == "default"][0]
    special = {}
    for k, v in tc.items():
        if k.endswith("_token") and v is not None:
            special[k] = v if isinstance(v, str) else v.get("content") if isinstance(v, dict) else None
    out.append({"fixture": name, "template": tpl, "special": {k: v for k, v in special.items() if v is not None},
                "now": d["frozen_now"], "cases": d["cases"]})
json.dump(out, sys.stdout)
