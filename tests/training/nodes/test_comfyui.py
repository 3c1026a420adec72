"""ComfyUI/SwarmUI calls against a local fake HTTP server: paths and bodies."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from training.nodes import comfyui

GIB = 1024**3


class FakeUI(BaseHTTPRequestHandler):
    calls: list = []

    def log_message(self, *args):
        pass

    def _answer(self, body: dict, status: int = 200):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        self.calls.append(("GET", self.path, None))
        if self.path == "/system_stats":
            self._answer(
                {
                    "devices": [
                        {
                            "name": "cuda:0 RTX",
                            "type": "cuda",
                            "index": 0,
                            "vram_total": 24 * GIB,
                            "vram_free": 10 * GIB,
                            "torch_vram_total": 12 * GIB,
                            "torch_vram_free": 1 * GIB,
                        }
                    ]
                }
            )
        else:
            self._answer({}, 404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        self.calls.append(("POST", self.path, body))
        if self.path == "/free":
            self._answer({})
        elif self.path == "/API/GetNewSession":
            self._answer({"session_id": "S123", "user_id": "local"})
        elif self.path == "/API/FreeBackendMemory":
            self._answer({"result": True, "count": 1})
        else:
            self._answer({"error": "no"}, 404)


@pytest.fixture
def fake_ui():
    FakeUI.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeUI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", FakeUI.calls
    finally:
        server.shutdown()
        server.server_close()


def test_comfyui_free_posts_unload_and_free_memory(fake_ui):
    url, calls = fake_ui
    comfyui.comfyui_free(url + "/")
    assert calls == [("POST", "/free", {"unload_models": True, "free_memory": True})]


def test_swarmui_free_opens_a_session_then_frees_every_backend(fake_ui):
    url, calls = fake_ui
    comfyui.swarmui_free(url)
    assert calls == [
        ("POST", "/API/GetNewSession", {}),
        (
            "POST",
            "/API/FreeBackendMemory",
            {"session_id": "S123", "system_ram": False, "backend": "all"},
        ),
    ]


def test_comfyui_memory_held_by_torch_counts_as_reclaimable(fake_ui):
    url, calls = fake_ui
    assert comfyui.comfyui_reclaimable_mib(url) == {0: 12 * 1024}
    assert calls == [("GET", "/system_stats", None)]


def test_unreachable_ui_raises_a_clear_error():
    with pytest.raises(comfyui.UIError, match="127.0.0.1:9"):
        comfyui.comfyui_free("http://127.0.0.1:9", timeout=0.5)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_runner_asks_comfyui_and_swarmui_before_starting_the_trainer(
    fake_ui, student, tmp_path, settings
):
    from tests.queue_helpers import submit_fake_sd15
    from training.execution import runner

    url, calls = fake_ui
    settings.LORASTUDIO_FAKE_GPUS = "24576:Fake"
    run = submit_fake_sd15(student, tmp_path, "no_data", comfyui_url=url, swarmui_url=url)
    run.refresh_from_db()
    assert run.status == "assigned"

    runner.execute(run.pk)

    posts = [(path, body) for method, path, body in calls if method == "POST"]
    assert posts[0] == ("/free", {"unload_models": True, "free_memory": True})
    assert [p for p, _ in posts[1:]] == ["/API/GetNewSession", "/API/FreeBackendMemory"]
    log = "".join(run.log_chunks.values_list("text", flat=True))
    assert log.index("Asked ComfyUI") < log.index("Starting:")
