"""A fake ComfyUI: a small real HTTP server that follows its documented API, with the answers
a real ComfyUI 0.12 (the pip-installable fork) gave on these machines (SwarmUI's fake:
tests/fake_swarmui.py).

ComfyUI: `/system_stats`; `/object_info/<class>` listing the model folders (classic nodes as
`[[names], {…}]`, newer ones as `["COMBO", {"options": [names]}]`, an unknown class `{}`);
`POST /prompt` validating every model name (400 `prompt_outputs_failed_validation` with
`node_errors[id].errors[]` of `value_not_in_list`) and unknown nodes (400 `invalid_prompt`);
a worker thread that runs prompts in order, `/history/<id>` `{}` until done; a LoRA whose
file is not a safetensors file fails in execution (`status_str: "error"`, messages as the
fork's strings, or upstream's `[event, data]` pairs with `upstream_messages`); `/view`;
`/ws?clientId=` with `progress` and `executing` (node null when done); `/free`, `/interrupt`.
A LoRA is read once per name and kept until `/free`, as ComfyUI's cache does; a picture at
strength exactly 0 carries the LoRA applied before it, as a real one did (render.BASE_STRENGTH).

Pictures are deterministic: their colour comes from the checkpoint, the LoRA's bytes (unless
the strength is 0: LoraLoader returns the model unchanged then), the strength, seed and prompt.

Run it alone (`python tests/fake_inference.py PORT MODELS LORAS`) for the stop/start tests.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import queue
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from PIL import Image

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# Which folder each loader lists, and whether /object_info shows it the newer way (COMBO).
LISTS = {
    ("CheckpointLoaderSimple", "ckpt_name"): ("checkpoints", False),
    ("LoraLoader", "lora_name"): ("loras", False),
    ("UNETLoader", "unet_name"): ("checkpoints", False),
    ("VAELoader", "vae_name"): ("checkpoints", False),
    ("CLIPLoader", "clip_name"): ("checkpoints", False),
    ("DualCLIPLoader", "clip_name1"): ("checkpoints", False),
    ("DualCLIPLoader", "clip_name2"): ("checkpoints", False),
    ("TripleCLIPLoader", "clip_name1"): ("checkpoints", True),
    ("TripleCLIPLoader", "clip_name2"): ("checkpoints", True),
    ("TripleCLIPLoader", "clip_name3"): ("checkpoints", True),
}
OTHER_NODES = {
    "CLIPTextEncode", "FluxGuidance", "ModelSamplingSD3", "ModelSamplingAuraFlow",
    "EmptyLatentImage", "EmptySD3LatentImage", "KSampler", "VAEDecode", "PreviewImage",
    "SaveImage",
}  # fmt: skip


def listing(folder: Path) -> list[str]:
    """Model names as ComfyUI lists a folder: relative posix paths of model files."""
    if not folder.is_dir():
        return []
    names = [
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in (".safetensors", ".ckpt", ".pt")
    ]
    return sorted(names)


def picture(width: int, height: int, *parts: object) -> bytes:
    digest = hashlib.sha256(repr(parts).encode()).digest()
    image = Image.new("RGB", (width, height), tuple(digest[:3]))
    image.putpixel((0, 0), tuple(digest[3:6]))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class FakeComfyUI:
    def __init__(self, checkpoints: Path, loras: Path, *, delay: float = 0.0):
        self.folders = {"checkpoints": Path(checkpoints), "loras": Path(loras)}
        self.delay = delay  # seconds per picture
        self.hang = False  # accept prompts, never run them (timeouts)
        self.upstream_messages = False  # history status messages as [event, data] pairs
        self.calls: list[tuple[str, str]] = []
        self.prompts: list[dict] = []  # every workflow accepted
        self.history: dict[str, dict] = {}
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.lora_cache: dict[str, bytes] = {}
        # The LoRA the model's weights carry: a real ComfyUI 0.12 rendered strength exactly 0
        # (LoraLoader hands back the checkpoint's model object) with the weights the previous
        # LoRA left; any other strength patches them afresh.
        self.patched: tuple[bytes, float] | None = None
        self.frees = 0
        self.sockets: dict[str, queue.Queue] = {}
        self.jobs: queue.Queue = queue.Queue()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._threads = [
            threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True),
            threading.Thread(target=self._work, daemon=True),
        ]

    def start(self) -> FakeComfyUI:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.jobs.put(None)
        self.server.shutdown()
        self.server.server_close()

    # --- the API ----------------------------------------------------------------------------
    def object_info(self, class_type: str) -> dict:
        known = {c for c, _ in LISTS} | OTHER_NODES
        if class_type not in known:
            return {}
        required = {}
        for (cls, name), (folder, combo) in LISTS.items():
            if cls == class_type:
                names = listing(self.folders[folder])
                required[name] = ["COMBO", {"options": names}] if combo else [names, {}]
        return {class_type: {"input": {"required": required}, "name": class_type}}

    def validate(self, workflow: dict) -> tuple[int, dict]:
        errors = {}
        for node_id, node in workflow.items():
            cls = node.get("class_type")
            if cls not in {c for c, _ in LISTS} | OTHER_NODES:
                message = f"Cannot execute because node {cls} does not exist."
                error = {"type": "invalid_prompt", "message": message, "details": ""}
                return 400, {"error": error, "node_errors": {}}
            for name, value in node.get("inputs", {}).items():
                if (cls, name) not in LISTS:
                    continue
                names = listing(self.folders[LISTS[(cls, name)][0]])
                if value not in names:
                    detail = f"{name}: '{value}' not in {names}"
                    errors[node_id] = {
                        "errors": [
                            {"type": "value_not_in_list", "message": "Value not in list",
                             "details": detail, "extra_info": {"input_name": name}}
                        ],
                        "dependent_outputs": [],
                        "class_type": cls,
                    }  # fmt: skip
        if errors:
            error = {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs "
                     "failed validation", "details": ""}  # fmt: skip
            return 400, {"error": error, "node_errors": errors}
        prompt_id = str(uuid.uuid4())
        return 200, {"prompt_id": prompt_id, "number": len(self.prompts), "node_errors": {}}

    def _send(self, client_id: str, message: dict) -> None:
        if client_id in self.sockets:
            self.sockets[client_id].put(message)

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            if self.hang:
                continue
            prompt_id, workflow, client_id = job
            self.history[prompt_id] = self._run(prompt_id, workflow, client_id)
            done = {"node": None, "prompt_id": prompt_id}
            self._send(client_id, {"type": "executing", "data": done})

    def _run(self, prompt_id: str, workflow: dict, client_id: str) -> dict:
        nodes = {n["class_type"]: n["inputs"] for n in workflow.values()}
        lora = nodes.get("LoraLoader", {})
        strength = lora.get("strength_model", 0)
        lora_bytes = b""
        if strength == 0 and self.patched is not None:
            lora_bytes, strength = self.patched  # the weights as the last LoRA left them
        elif abs(strength) < 1e-6:  # patched so little that the weights are the base's
            strength, self.patched = 0, None
        elif strength:
            name = lora["lora_name"]
            if name not in self.lora_cache:  # read once per name, until /free
                self.lora_cache[name] = (self.folders["loras"] / name).read_bytes()
            lora_bytes = self.lora_cache[name]
            if not lora_bytes[8:9] == b"{":  # not a safetensors header
                error = "Error while deserializing header: invalid JSON in header"
                messages = (
                    [["execution_start", {}], ["execution_error", {"node_type": "LoraLoader",
                                                                    "exception_message": error}]]
                    if self.upstream_messages
                    else ["execution_start", f"execution_error: {error}\n"]
                )  # fmt: skip
                status = {"status_str": "error", "completed": False, "messages": messages}
                return {"prompt": [0, prompt_id, workflow], "outputs": {}, "status": status}
            self.patched = (lora_bytes, strength)
        sampler = nodes["KSampler"]
        for step in range(1, int(sampler["steps"]) + 1):
            time.sleep(self.delay / max(1, int(sampler["steps"])))
            progress = {"value": step, "max": int(sampler["steps"]), "prompt_id": prompt_id}
            self._send(client_id, {"type": "progress", "data": progress})
        latent = nodes.get("EmptyLatentImage") or nodes.get("EmptySD3LatentImage")
        checkpoint = nodes.get("CheckpointLoaderSimple") or nodes.get("UNETLoader")
        texts = [
            n["inputs"]["text"] for n in workflow.values() if n["class_type"] == "CLIPTextEncode"
        ]
        png = picture(
            latent["width"], latent["height"], list(checkpoint.values()),
            hashlib.sha256(lora_bytes).hexdigest(), strength, sampler["seed"], texts,
        )  # fmt: skip
        name = f"ComfyUI_temp_{len(self.files) + 1:05d}_.png"
        self.files[("temp", "", name)] = png
        output = {"images": [{"filename": name, "subfolder": "", "type": "temp"}]}
        out_id = next(i for i, n in workflow.items() if n["class_type"] in ("PreviewImage",
                                                                          "SaveImage"))  # fmt: skip
        status = {"status_str": "success", "completed": True,
                  "messages": ["execution_start", "execution_success"]}  # fmt: skip
        return {"prompt": [0, prompt_id, workflow], "outputs": {out_id: output}, "status": status}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, body, status: int = 200, content_type="application/json"):
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                url = urlparse(self.path)
                fake.calls.append(("GET", url.path))
                if url.path == "/ws":
                    return self._websocket(parse_qs(url.query).get("clientId", [""])[0])
                if url.path == "/system_stats":
                    return self._answer({"system": {"comfyui_version": "fake"}, "devices": []})
                if url.path.startswith("/object_info/"):
                    return self._answer(fake.object_info(unquote(url.path.split("/", 2)[2])))
                if url.path.startswith("/history/"):
                    prompt_id = unquote(url.path.split("/", 2)[2])
                    entry = fake.history.get(prompt_id)
                    return self._answer({prompt_id: entry} if entry else {})
                if url.path == "/view":
                    q = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
                    key = (q.get("type", "output"), q.get("subfolder", ""), q.get("filename", ""))
                    if key in fake.files:
                        return self._answer(fake.files[key], content_type="image/png")
                    return self._answer({"error": "not found"}, 404)
                self._answer({}, 404)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.calls.append(("POST", self.path))
                if self.path == "/prompt":
                    status, answer = fake.validate(body.get("prompt") or {})
                    if status == 200:
                        fake.prompts.append(body["prompt"])
                        job = (answer["prompt_id"], body["prompt"], body.get("client_id", ""))
                        fake.jobs.put(job)
                    return self._answer(answer, status)
                if self.path == "/free":
                    fake.frees += 1
                    fake.lora_cache.clear()
                    fake.patched = None
                    return self._answer({})
                if self.path == "/interrupt":
                    return self._answer({})
                self._answer({}, 404)

            def _websocket(self, client_id: str):
                key = self.headers.get("Sec-WebSocket-Key", "")
                accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest())
                self.send_response(101, "Switching Protocols")
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", accept.decode())
                self.end_headers()
                self.wfile.flush()
                inbox = fake.sockets.setdefault(client_id, queue.Queue())
                self._frame({"type": "status", "data": {"sid": client_id}})
                self.connection.settimeout(0.05)
                while True:
                    try:
                        head = self.connection.recv(1)
                        if not head:
                            return
                        opcode = self._skip_frame(head[0])
                        if opcode == 0x8:  # the client closes
                            self._close()
                            return
                    except TimeoutError:
                        pass
                    except OSError:
                        return
                    try:
                        while True:
                            self._frame(inbox.get_nowait())
                    except queue.Empty:
                        pass
                    except OSError:
                        return

            def _skip_frame(self, first: int) -> int:
                """Read the rest of a client frame (masked); answer a ping; its opcode."""
                self.connection.settimeout(2.0)
                try:
                    second = self._exactly(1)[0]
                    length = second & 0x7F
                    if length == 126:
                        length = struct.unpack("!H", self._exactly(2))[0]
                    elif length == 127:
                        length = struct.unpack("!Q", self._exactly(8))[0]
                    mask = self._exactly(4) if second & 0x80 else b"\0\0\0\0"
                    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._exactly(length)))
                finally:
                    self.connection.settimeout(0.05)
                opcode = first & 0x0F
                if opcode == 0x9:
                    self.connection.sendall(struct.pack("!BB", 0x8A, len(payload)) + payload)
                return opcode

            def _exactly(self, n: int) -> bytes:
                data = b""
                while len(data) < n:
                    chunk = self.connection.recv(n - len(data))
                    if not chunk:
                        raise OSError("closed")
                    data += chunk
                return data

            def _frame(self, message: dict, opcode: int = 0x1):
                data = json.dumps(message).encode()
                if len(data) < 126:
                    head = struct.pack("!BB", 0x80 | opcode, len(data))
                else:
                    head = struct.pack("!BBH", 0x80 | opcode, 126, len(data))
                self.connection.sendall(head + data)

            def _close(self):
                try:
                    self.connection.sendall(struct.pack("!BBH", 0x88, 2, 1000))
                except OSError:
                    pass

        return Handler


def main() -> None:
    """Serve a fake ComfyUI on a fixed port until killed (a service the tests stop/start)."""
    port, models, loras = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    fake = FakeComfyUI(models, loras)
    fake.server.server_close()
    fake.server = ThreadingHTTPServer(("127.0.0.1", port), fake._handler())
    fake.server.daemon_threads = True
    fake._threads[0] = threading.Thread(target=fake.server.serve_forever, args=(0.05,), daemon=True)
    fake.start()
    print(f"serving on {port} (pid {os.getpid()})", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
