// Runs the chat-template corpus (data/src/test/resources/chat, made by transformers 5.17) through
// Hugging Face's own JavaScript Jinja engine, @huggingface/jinja, to compare it with the Jinjava-based
// engine align4j uses (ChatTemplateParityTest: 242 of 242). On 2026-11-30, @huggingface/jinja 0.5.11
// under Node 20.20 passed 240 of 242 (Mistral NeMo's "roles must alternate" check does not raise).
// The engine comes from `npm pack @huggingface/jinja@0.5.11` (package/dist/index.js). Usage:
//   python3 benchmarks/chat-engines/corpus_json.py > /tmp/corpus.json
//   node benchmarks/chat-engines/hf_jinja_corpus.mjs /tmp/corpus.json PATH/TO/@huggingface/jinja/dist/index.js
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [corpusPath, enginePath] = process.argv.slice(2);
const { Template } = await import(pathToFileURL(enginePath).href);
const corpus = JSON.parse(readFileSync(corpusPath, "utf8"));
// raise_exception and strftime_now are built into the engine; its clock is frozen at the fixture's
// "now" (transformers' was, when the expected texts were made) by replacing Date.
const RealDate = Date;
let frozen = 0;
globalThis.Date = class extends RealDate {
  constructor(...a) { super(...(a.length ? a : [frozen])); }
  static now() { return frozen; }
};

let pass = 0, fail = 0;
const failures = [];
for (const fx of corpus) {
  frozen = new RealDate(fx.now + "Z").getTime();
  let template;
  try {
    template = new Template(fx.template);
  } catch (e) {
    fail += fx.cases.length;
    failures.push(`${fx.fixture}: template does not parse: ${String(e.message).slice(0, 120)}`);
    continue;
  }
  for (const c of fx.cases) {
    const agp = c.add_generation_prompt === true || c.add_generation_prompt === "True";
    const ctx = {
      ...fx.special, ...(c.kwargs || {}), messages: c.messages, add_generation_prompt: agp,
    };
    let text, err;
    try { text = template.render(ctx); } catch (e) { err = String(e.message); }
    const ok = c.error ? (err !== undefined && err.includes(c.error)) : (err === undefined && text === c.text);
    if (ok) pass++;
    else {
      fail++;
      failures.push(`${fx.fixture}/${c.name} (agp ${agp}): ${err !== undefined ? "error: " + err.slice(0, 100) : "text differs"}`);
    }
  }
}
console.log(JSON.stringify({ engine: "@huggingface/jinja", pass, fail, total: pass + fail }));
for (const f of failures) console.log("  " + f);
