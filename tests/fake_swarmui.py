"""A fake SwarmUI: a small real HTTP server that follows its API docs (docs/API.md,
APIRoutes/T2IAPI.md and ModelsAPI.md of mcmonkeyprojects/SwarmUI): a session, ListModels,
TriggerRefresh, GenerateText2Image with `loras`/`loraweights`, and the pictures it names.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

from tests.fake_inference import listing, picture


class FakeSwarmUI:
    """SwarmUI's API as its docs describe it (docs/API.md, APIRoutes/T2IAPI.md, ModelsAPI.md)."""

    def __init__(self, models: Path, loras: Path):
        self.folders = {"Stable-Diffusion": Path(models), "LoRA": Path(loras)}
        self.calls: list[tuple[str, dict]] = []
        self.files: dict[str, bytes] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeSwarmUI:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def generate(self, body: dict) -> dict:
        if body.get("model") not in listing(self.folders["Stable-Diffusion"]):
            return {"error": f"Invalid model: {body.get('model')}"}
        lora_bytes = b""
        if body.get("loras"):
            if body["loras"] not in listing(self.folders["LoRA"]):
                return {"error": f"Invalid LoRA: {body['loras']}"}
            lora_bytes = (self.folders["LoRA"] / body["loras"]).read_bytes()
        png = picture(
            int(body["width"]), int(body["height"]), body["model"],
            hashlib.sha256(lora_bytes).hexdigest(), body.get("loraweights"), body["seed"],
            body["prompt"],
        )  # fmt: skip
        path = f"View/local/raw/2026-01-01/{len(self.files) + 1}-{body['seed']}.png"
        self.files[path] = png
        return {"images": [path]}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, body, status=200, content_type="application/json"):
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                path = unquote(urlparse(self.path).path).lstrip("/")
                if path in fake.files:
                    return self._answer(fake.files[path], content_type="image/png")
                self._answer(b"<html>SwarmUI</html>", content_type="text/html")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                route = self.path.removeprefix("/API/")
                fake.calls.append((route, body))
                if route == "GetNewSession":
                    return self._answer({"session_id": "S1", "user_id": "local"})
                if body.get("session_id") != "S1":
                    return self._answer({"error_id": "invalid_session_id"})
                if route == "ListModels":
                    names = listing(fake.folders[body.get("subtype") or "Stable-Diffusion"])
                    return self._answer({"folders": [], "files": [{"name": n} for n in names]})
                if route == "TriggerRefresh":
                    return self._answer({"list": [], "models": {}})
                if route == "GenerateText2Image":
                    return self._answer(fake.generate(body))
                if route == "FreeBackendMemory":
                    return self._answer({"result": True, "count": 1})
                self._answer({"error": "unknown route"}, 404)

        return Handler
