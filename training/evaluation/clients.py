"""Rendering one picture on ComfyUI (HTTP API and its websocket) or SwarmUI (its JSON API).

ComfyUI: `POST /prompt` queues an API-format workflow (400 with `node_errors` when a value
is not among those it lists); `/history/<id>` stays `{}` until the prompt has run, then holds
its outputs and `status` (`status_str` "success" or "error"; `messages` are `[event, data]`
pairs upstream and plain strings such as "execution_error: …" in the pip-installable fork);
`/view?filename=…&subfolder=…&type=…` serves a picture; `/ws?clientId=…` pushes `progress`
(sampler steps) and `executing` with `node: null` when a prompt is done. The websocket only
makes waiting shorter: `/history` decides, so a server whose socket we cannot open still works.

SwarmUI: a session from `/API/GetNewSession`, LoRAs listed by `/API/ListModels`
(subtype "LoRA"), and `/API/GenerateText2Image` with `loras`/`loraweights`, answering image
paths to GET (or data URLs). No Django here.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable

from training.evaluation.workflow import listed_options
from training.nodes.comfyui import http

HTTP_TIMEOUT_S = 30.0
POLL_S = 0.25  # /history polls without a websocket
POLL_WITH_SOCKET_S = 2.0  # …and with one (in case a message was missed)


class InferenceError(Exception):
    """The server refused, failed or went away: `reason` (an EvalFailure) and what to do."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def as_json(raw: bytes) -> object:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return None


def _down(name: str, url: str, exc: Exception) -> InferenceError:
    return InferenceError(
        "server_down",
        f"{name} at {url} does not answer ({exc}). Start it, or fix the node's {name} URL "
        "(admin → GPU nodes), then evaluate again from the run page.",
    )


class ComfyUI:
    """A ComfyUI server's HTTP API, as one evaluation uses it."""

    name = "ComfyUI"

    def __init__(self, base_url: str, *, timeout: float = HTTP_TIMEOUT_S):
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.client_id = str(uuid.uuid4())
        self._object_info: dict[str, dict] = {}

    def _get(self, path: str) -> tuple[int, bytes]:
        try:
            return http(self.base + path, timeout=self.timeout)
        except ConnectionError as exc:
            raise _down(self.name, self.base, exc) from None

    def _post(self, path: str, body: dict) -> tuple[int, bytes]:
        try:
            return http(self.base + path, body, timeout=self.timeout)
        except ConnectionError as exc:
            raise _down(self.name, self.base, exc) from None

    def check(self) -> None:
        """Whether it answers (`/system_stats`)."""
        status, _ = self._get("/system_stats")
        if status != 200:
            raise _down(self.name, self.base, RuntimeError(f"/system_stats answered {status}"))

    def options(self, class_type: str, input_name: str) -> list[str]:
        """The names ComfyUI lists for a node input, asked again each time (files copied in
        since are seen at once)."""
        status, raw = self._get("/object_info/" + urllib.parse.quote(class_type))
        info = as_json(raw) if status == 200 else None
        if not isinstance(info, dict) or class_type not in info:
            raise InferenceError(
                "workflow_error",
                f"ComfyUI does not know the node {class_type} (core nodes only are used): "
                "update ComfyUI, or start it without --disable-… options that hide it.",
            )
        return listed_options(info, class_type, input_name)

    def queue(self, workflow: dict) -> str:
        """Queue a workflow; its prompt id. A refused workflow is a workflow_error naming the
        nodes and inputs ComfyUI complained about."""
        status, raw = self._post("/prompt", {"prompt": workflow, "client_id": self.client_id})
        answer = as_json(raw)
        if status == 200 and isinstance(answer, dict) and answer.get("prompt_id"):
            return str(answer["prompt_id"])
        raise InferenceError("workflow_error", "ComfyUI refused the workflow: " + refusal(answer))

    def history(self, prompt_id: str) -> dict | None:
        """The prompt's history entry once it has run, else None."""
        status, raw = self._get("/history/" + urllib.parse.quote(prompt_id))
        answer = as_json(raw)
        if status == 200 and isinstance(answer, dict) and isinstance(answer.get(prompt_id), dict):
            return answer[prompt_id]
        return None

    def interrupt(self) -> None:
        with contextlib.suppress(InferenceError):
            self._post("/interrupt", {})

    def free(self) -> None:
        """Unload models and drop cached results (a LoRA file replaced under the same name is
        otherwise served from ComfyUI's cache)."""
        self._post("/free", {"unload_models": True, "free_memory": True})

    @contextlib.contextmanager
    def progress_socket(self):
        """The websocket that reports progress, or None when it cannot be opened."""
        scheme = "wss" if self.base.startswith("https") else "ws"
        url = f"{scheme}://{self.base.split('://', 1)[1]}/ws?clientId={self.client_id}"
        try:
            from websockets.sync.client import connect

            connection = connect(url, open_timeout=5, close_timeout=1, max_size=2**24)
        except Exception:  # no websocket: /history polling alone still finishes the job
            yield None
            return
        with connection as socket:
            yield socket

    def wait(
        self,
        prompt_id: str,
        *,
        timeout: float,
        socket=None,
        on_step: Callable[[int, int], None] | None = None,
        idle: Callable[[], None] | None = None,
    ) -> dict:
        """Wait for the prompt to finish; its history entry. `idle` is called about every
        quarter second (heartbeat, cancel check); TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        next_poll = 0.0
        while True:
            now = time.monotonic()
            if now >= next_poll:
                entry = self.history(prompt_id)
                if entry is not None:
                    return entry
                next_poll = now + (POLL_WITH_SOCKET_S if socket is not None else POLL_S)
            if now > deadline:
                raise TimeoutError(prompt_id)
            if idle is not None:
                idle()
            if socket is None:
                time.sleep(POLL_S)
                continue
            message = _receive(socket, POLL_S)
            data = message.get("data") if isinstance(message, dict) else None
            if not isinstance(data, dict) or data.get("prompt_id") != prompt_id:
                continue
            kind = message.get("type")
            if kind == "progress" and on_step is not None:
                on_step(int(data.get("value") or 0), int(data.get("max") or 0))
            elif kind in ("execution_success", "execution_error", "execution_interrupted") or (
                kind == "executing" and data.get("node") is None
            ):
                next_poll = 0.0  # done: read the history now

    def picture(self, entry: dict) -> bytes:
        """The first picture of a finished prompt (a workflow_error when it failed)."""
        status = entry.get("status") or {}
        if status.get("status_str") == "error" or not entry.get("outputs"):
            raise InferenceError(
                "workflow_error", "ComfyUI failed running the workflow: " + execution_error(status)
            )
        for output in entry["outputs"].values():
            for image in (output or {}).get("images") or []:
                query = urllib.parse.urlencode(
                    {
                        "filename": image.get("filename", ""),
                        "subfolder": image.get("subfolder", ""),
                        "type": image.get("type", "output"),
                    }
                )
                code, raw = self._get("/view?" + query)
                if code == 200:
                    return raw
                raise InferenceError(
                    "workflow_error", f"ComfyUI's /view answered {code} for {image}"
                )
        raise InferenceError("workflow_error", "the workflow ran but gave no picture")


def _receive(socket, timeout: float) -> dict | None:
    try:
        raw = socket.recv(timeout=timeout)
    except TimeoutError:
        return None
    except Exception:  # closed: the caller keeps polling /history
        time.sleep(timeout)
        return None
    if isinstance(raw, bytes):  # preview images: not needed
        return None
    message = as_json(raw.encode())
    return message if isinstance(message, dict) else None


def refusal(answer: object) -> str:
    """ComfyUI's 400 answer to /prompt as one sentence: each node, input and complaint."""
    if not isinstance(answer, dict):
        return "no readable answer"
    parts = []
    for node_id, node in (answer.get("node_errors") or {}).items():
        for error in (node or {}).get("errors") or []:
            detail = error.get("details") or error.get("message") or error.get("type")
            parts.append(f"node {node_id} ({node.get('class_type', '?')}): {detail}")
    error = answer.get("error")
    if not parts and isinstance(error, dict):
        parts.append(str(error.get("message") or error.get("type")))
    return "; ".join(parts) or json.dumps(answer)[:300]


def execution_error(status: dict) -> str:
    """The error of a failed prompt from its history `status.messages`: upstream gives
    `["execution_error", {"exception_message": …, "node_type": …}]`, the fork a string."""
    for message in status.get("messages") or []:
        if isinstance(message, str) and message.startswith("execution_error"):
            return message.partition(":")[2].strip() or message
        if isinstance(message, list) and message and message[0] == "execution_error":
            data = message[1] if len(message) > 1 and isinstance(message[1], dict) else {}
            node = data.get("node_type") or data.get("node_id") or "?"
            return f"{node}: {data.get('exception_message', '').strip()}"
    return "no error message (status " + str(status.get("status_str")) + ")"


class SwarmUI:
    """A SwarmUI server's API, as one evaluation uses it."""

    name = "SwarmUI"

    def __init__(self, base_url: str, *, timeout: float = HTTP_TIMEOUT_S):
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.session = ""

    def _call(self, route: str, body: dict, *, timeout: float | None = None) -> dict:
        for _ in range(2):  # an expired session is renewed once
            try:
                status, raw = http(
                    f"{self.base}/API/{route}",
                    {**body, "session_id": self.session},
                    timeout=timeout or self.timeout,
                )
            except ConnectionError as exc:
                raise _down(self.name, self.base, exc) from None
            answer = as_json(raw)
            if not isinstance(answer, dict):
                raise InferenceError("workflow_error", f"SwarmUI's {route} answered {status}")
            if answer.get("error_id") == "invalid_session_id":
                self.check()
                continue
            return answer
        raise InferenceError("workflow_error", f"SwarmUI keeps refusing its session ({route})")

    def check(self) -> None:
        try:
            status, raw = http(self.base + "/API/GetNewSession", {}, timeout=self.timeout)
        except ConnectionError as exc:
            raise _down(self.name, self.base, exc) from None
        answer = as_json(raw)
        if status != 200 or not isinstance(answer, dict) or not answer.get("session_id"):
            raise _down(self.name, self.base, RuntimeError(f"GetNewSession answered {status}"))
        self.session = str(answer["session_id"])

    def refresh(self) -> None:
        """Make SwarmUI rescan its model folders (new files are listed after it)."""
        self._call("TriggerRefresh", {"strong": True})

    def models(self, subtype: str) -> list[str]:
        """Names SwarmUI lists for a model type ("Stable-Diffusion", "LoRA")."""
        answer = self._call("ListModels", {"path": "", "depth": 8, "subtype": subtype})
        return [str(f.get("name")) for f in answer.get("files") or [] if isinstance(f, dict)]

    def generate(self, params: dict, *, timeout: float) -> bytes:
        """Render one picture; its bytes."""
        answer = self._call("GenerateText2Image", {"images": 1, **params}, timeout=timeout)
        if answer.get("error"):
            raise InferenceError("workflow_error", f"SwarmUI refused: {answer['error']}")
        images = answer.get("images") or []
        first = images[0] if images else None
        if isinstance(first, dict):
            first = first.get("image")
        if not isinstance(first, str):
            raise InferenceError("workflow_error", "SwarmUI rendered no picture")
        if first.startswith("data:"):
            return base64.b64decode(first.partition(",")[2])
        try:
            status, raw = http(
                self.base + "/" + urllib.parse.quote(first.lstrip("/")), timeout=HTTP_TIMEOUT_S
            )
        except ConnectionError as exc:
            raise _down(self.name, self.base, exc) from None
        if status != 200:
            raise InferenceError("workflow_error", f"SwarmUI's {first} answered {status}")
        return raw
