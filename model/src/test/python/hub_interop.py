"""One Hugging Face cache, two writers: huggingface_hub and align4j read each other's cache.

Run from the repository root (needs the venv with huggingface_hub and transformers, and the model
module's test classes built: ./mvnw -q -o test-compile -pl model -am):

    python3 model/src/test/python/hub_interop.py   (a venv with huggingface_hub and transformers from the package mirror)

It starts a small Hub on 127.0.0.1 (the API and resolve endpoints as the Hub answers them, large files
redirected to a second host, 127.0.0.2) serving the tiny GPT-2 fixture as tiny/gpt2 and its preference
records as the dataset team/prefs, then
  1. huggingface_hub.snapshot_download writes a cache, which is kept in model/src/test/hub-interop/
     hf-written/ for HubInteropTest (align4j reads it offline, on every build, without Python);
  2. align4j (a JVM running org.align4j.model.hub.HubDownloadMain) writes another cache from the same
     server, which huggingface_hub reads with local_files_only=True (snapshot_download,
     try_to_load_from_cache) and transformers loads with from_pretrained(local_files_only=True);
  3. huggingface_hub's create_repo + upload_folder (its HTTP path, HF_HUB_DISABLE_XET=1) and align4j's
     HubUpload (org.align4j.model.hub.HubUploadMain) upload the same folder to a server that records
     every request, and the two request sequences are compared by shape (method, path, content type,
     JSON keys, NDJSON line kinds);
and writes what it found to model/src/test/hub-interop/results.json.
"""

import hashlib
import http.server
import json
import re
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
FIXTURE = ROOT / "model/src/test/resources/hf-tiny/gpt2-tiny"
OUT = ROOT / "model/src/test/hub-interop"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
DATA_COMMIT = "89abcdef0123456789abcdef0123456789abcdef"
MODEL_FILES = ["config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json",
               "tokenizer.json", "tokenizer_config.json"]


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


REPOS = {
    ("models", "tiny/gpt2"): (COMMIT, {f: (FIXTURE / f).read_bytes() for f in MODEL_FILES}),
    ("datasets", "team/prefs"): (DATA_COMMIT, {
        "data/train-00000-of-00001.jsonl": (ROOT / "model/src/test/resources/hf-tiny/prefs.jsonl").read_bytes()}),
}
BLOBS = {}


def lfs(name):
    return name.endswith(".safetensors") or name.endswith(".parquet")


class Hub(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cdn_port = None

    def log_message(self, *args):
        pass

    def reply(self, status, headers=(), body=b""):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)) if self.command != "HEAD" or not body else str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path.split("?")[0]
        parts = path.strip("/").split("/")
        if parts[0] == "api":  # /api/{models|datasets}/{owner}/{name}[/revision/{rev}]
            repo = REPOS.get((parts[1], parts[2] + "/" + parts[3]))
            if repo is None:
                return self.reply(404, [("X-Error-Code", "RepoNotFound")])
            if len(parts) > 4 and parts[4] == "tree":  # /api/.../tree/{rev}[/{path}]?recursive=...
                entries = []
                for f, data in repo[1].items():
                    e = {"type": "file", "path": f, "size": len(data), "oid": git_blob_sha1(data)}
                    if lfs(f):
                        e["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
                    entries.append(e)
                return self.reply(200, [("Content-Type", "application/json")], json.dumps(entries).encode())
            body = json.dumps({"id": parts[2] + "/" + parts[3], "sha": repo[0],
                               "siblings": [{"rfilename": f} for f in repo[1]]}).encode()
            return self.reply(200, [("Content-Type", "application/json")], body)
        kind = "models"
        if parts[0] == "datasets":
            kind, parts = "datasets", parts[1:]
        repo = REPOS.get((kind, parts[0] + "/" + parts[1]))
        name = "/".join(parts[4:])
        if repo is None or parts[2] != "resolve" or name not in repo[1]:
            return self.reply(404, [("X-Error-Code", "EntryNotFound")])
        data = repo[1][name]
        if lfs(name):
            oid = hashlib.sha256(data).hexdigest()
            BLOBS[oid] = data
            return self.reply(302, [("X-Repo-Commit", repo[0]), ("X-Linked-Etag", '"%s"' % oid),
                                    ("X-Linked-Size", str(len(data))), ("ETag", '"%s"' % git_blob_sha1(data)),
                                    ("Location", "http://127.0.0.2:%d/blob/%s" % (Hub.cdn_port, oid))])
        headers = [("X-Repo-Commit", repo[0]), ("ETag", '"%s"' % git_blob_sha1(data))]
        if self.command == "HEAD":
            self.send_response(200)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return
        return self.reply(200, headers, data)


class Cdn(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        data = BLOBS[self.path.rsplit("/", 1)[1]]
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def serve(host, handler):
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers the upload side of the Hub as a real one would, and records each request's shape."""
    protocol_version = "HTTP/1.1"
    log = []
    port = None

    def log_message(self, *args):
        pass

    def answer(self, status, obj=None, ctype="application/json"):
        body = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def shape(self, body):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0]
        path = self.path.split("?")[0]
        for oid in re.findall(r"[0-9a-f]{64}", path):
            path = path.replace(oid, "<oid>")
        entry = {"method": self.command, "path": path, "content_type": ctype}
        if ctype == "application/x-ndjson":
            lines = [json.loads(l) for l in body.decode().splitlines() if l.strip()]
            entry["lines"] = sorted({l["key"] + ":" + ",".join(sorted(l["value"])) for l in lines})
        elif ctype.endswith("json") and body:
            doc = json.loads(body)
            entry["keys"] = sorted(doc)
            for k in ("files", "objects"):
                if k in doc:
                    entry[k + "_keys"] = sorted({key for item in doc[k] for key in item})
        Recorder.log.append(entry)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        self.shape(body)
        path = self.path.split("?")[0]
        if path == "/api/repos/create":
            return self.answer(200, {"url": "http://127.0.0.1:%d/me/m" % Recorder.port})
        if "/preupload/" in path:
            return self.answer(200, {"files": [{"path": f["path"], "shouldIgnore": False,
                                                "uploadMode": "lfs" if lfs(f["path"]) else "regular"}
                                               for f in json.loads(body)["files"]]})
        if path.endswith("/info/lfs/objects/batch"):
            objects = [{"oid": o["oid"], "size": o["size"], "actions": {"upload": {
                "href": "http://127.0.0.2:%d/upload/%s" % (Recorder.cdn_port, o["oid"])}}}
                for o in json.loads(body)["objects"]]
            return self.answer(200, {"transfer": "basic", "objects": objects}, "application/vnd.git-lfs+json")
        if "/commit/" in path:
            return self.answer(200, {"commitOid": "c" * 40, "commitUrl": "http://127.0.0.1:%d/me/m/commit/%s"
                                     % (Recorder.port, "c" * 40)})
        return self.answer(404, {"error": "not served"})

    def do_PUT(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        self.shape(b"")
        self.answer(200, {})

    do_GET = do_POST


def java_classpath():
    cp_file = ROOT / "model/target/hub-interop.classpath"
    subprocess.run([str(ROOT / "mvnw"), "-q", "-o", "dependency:build-classpath", "-pl", "model",
                    "-Dmdep.outputFile=" + str(cp_file)], cwd=ROOT, check=True)
    return ":".join([str(ROOT / "model/target/classes"), str(ROOT / "model/target/test-classes"),
                     cp_file.read_text().strip()])


def listing(cache):
    out = {}
    for p in sorted(Path(cache).rglob("*")):
        rel = str(p.relative_to(cache))
        if rel.startswith(".locks"):
            continue
        out[rel] = ("-> " + os.readlink(p)) if p.is_symlink() else ("dir" if p.is_dir() else "file")
    return out


def main():
    cdn = serve("127.0.0.2", Cdn)
    Hub.cdn_port = cdn.server_address[1]
    hub = serve("127.0.0.1", Hub)
    endpoint = "http://127.0.0.1:%d" % hub.server_address[1]
    results = {"python": sys.version.split()[0]}
    work = Path(tempfile.mkdtemp(prefix="hub-interop-", dir=ROOT / "model/target"))
    # huggingface_hub's own files (xet logs, token lookups) stay under target/ too
    os.environ["HF_HOME"] = str(work / "hf-home")

    # 1. huggingface_hub writes a cache; align4j's HubInteropTest reads the kept copy offline
    hf_cache = OUT / "hf-written"
    shutil.rmtree(hf_cache, ignore_errors=True)
    env = dict(os.environ, HF_ENDPOINT=endpoint, HF_HUB_CACHE=str(hf_cache), HF_HUB_DISABLE_TELEMETRY="1")
    env.pop("HF_HUB_OFFLINE", None)
    code = ("import huggingface_hub, json, sys;"
            "p = huggingface_hub.snapshot_download('tiny/gpt2');"
            "d = huggingface_hub.snapshot_download('team/prefs', repo_type='dataset');"
            "print(json.dumps({'huggingface_hub': huggingface_hub.__version__, 'model': p, 'dataset': d}))")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(r.stderr)
    written = json.loads(r.stdout.strip().splitlines()[-1])
    shutil.rmtree(hf_cache / ".locks", ignore_errors=True)
    results["huggingface_hub"] = written["huggingface_hub"]
    results["hf_written_cache"] = listing(hf_cache)

    # 2. align4j writes a cache; huggingface_hub and transformers read it offline
    java_cache = work / "java-written"
    env_java = dict(os.environ, HF_ENDPOINT=endpoint, HF_HUB_CACHE=str(java_cache))
    env_java.pop("HF_HUB_OFFLINE", None)
    cp = java_classpath()
    java = shutil.which("java")
    for repo in ["tiny/gpt2"]:
        subprocess.run([java, "-cp", cp, "org.align4j.model.hub.HubDownloadMain", repo], env=env_java,
                       check=True, capture_output=True, text=True)
    subprocess.run([java, "-cp", cp, "org.align4j.model.hub.HubDownloadMain", "--dataset", "team/prefs:train"],
                   env=env_java, check=True, capture_output=True, text=True)
    results["java_written_cache"] = listing(java_cache)
    read = ("import huggingface_hub, transformers, torch, json, hashlib, os;"
            "from huggingface_hub import snapshot_download, try_to_load_from_cache;"
            "p = snapshot_download('tiny/gpt2', local_files_only=True);"
            "files = sorted(os.listdir(p));"
            "w = try_to_load_from_cache('tiny/gpt2', 'model.safetensors');"
            "d = snapshot_download('team/prefs', repo_type='dataset', local_files_only=True);"
            "tok = transformers.AutoTokenizer.from_pretrained('tiny/gpt2', local_files_only=True);"
            "m = transformers.AutoModelForCausalLM.from_pretrained('tiny/gpt2', local_files_only=True);"
            "ids = tok('Hello there', return_tensors='pt').input_ids;"
            "logits = m(ids).logits[0, -1, :5].tolist();"
            "print(json.dumps({'snapshot_download': os.path.relpath(p, os.environ['HF_HUB_CACHE']),"
            " 'files': files,"
            " 'try_to_load_from_cache': os.path.relpath(w, os.environ['HF_HUB_CACHE']),"
            " 'weights_sha256': hashlib.sha256(open(w, 'rb').read()).hexdigest(),"
            " 'dataset_snapshot': os.path.relpath(d, os.environ['HF_HUB_CACHE']),"
            " 'dataset_files': sorted(str(q.relative_to(d)) for q in __import__('pathlib').Path(d).rglob('*.jsonl')),"
            " 'transformers': transformers.__version__, 'model_class': type(m).__name__,"
            " 'first_logits': [round(x, 5) for x in logits]}))")
    env_read = dict(os.environ, HF_HUB_CACHE=str(java_cache), HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")
    r = subprocess.run([sys.executable, "-c", read], env=env_read, capture_output=True, text=True)
    if r.returncode != 0:
        results["python_reads_java_cache"] = {"error": r.stderr.strip().splitlines()[-1]}
    else:
        results["python_reads_java_cache"] = json.loads(r.stdout.strip().splitlines()[-1])
    # 3. uploads: huggingface_hub and align4j against the same recording server
    upload_dir = work / "final"
    upload_dir.mkdir()
    for f in ["config.json", "model.safetensors", "tokenizer.json"]:
        shutil.copy(FIXTURE / f, upload_dir / f)
    recorder = serve("127.0.0.1", Recorder)
    recorder_cdn = serve("127.0.0.2", Recorder)
    Recorder.port, Recorder.cdn_port = recorder.server_address[1], recorder_cdn.server_address[1]
    rec_endpoint = "http://127.0.0.1:%d" % Recorder.port
    up = ("import sys; from huggingface_hub import HfApi;"
          "api = HfApi(endpoint=sys.argv[1], token='hf_x');"
          "api.create_repo('me/m', exist_ok=True);"
          "api.upload_folder(folder_path=sys.argv[2], repo_id='me/m', commit_message='Upload folder')")
    env_up = dict(os.environ, HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    r = subprocess.run([sys.executable, "-c", up, rec_endpoint, str(upload_dir)], env=env_up, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(r.stderr)
    python_requests, Recorder.log = Recorder.log, []
    env_java_up = dict(os.environ, HF_ENDPOINT=rec_endpoint, HF_TOKEN="hf_x", HF_HUB_CACHE=str(work / "unused"))
    subprocess.run([java, "-cp", cp, "org.align4j.model.hub.HubUploadMain", str(upload_dir), "me/m"],
                   env=env_java_up, check=True, capture_output=True, text=True)
    java_requests = Recorder.log
    results["upload"] = {"huggingface_hub": python_requests, "align4j": java_requests}
    recorder.shutdown()
    recorder_cdn.shutdown()

    results["fixture_weights_sha256"] = hashlib.sha256((FIXTURE / "model.safetensors").read_bytes()).hexdigest()
    (OUT / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(json.dumps(results["python_reads_java_cache"], indent=2))
    hub.shutdown()
    cdn.shutdown()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
