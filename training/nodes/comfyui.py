"""Ask ComfyUI and SwarmUI how much GPU memory they hold and to give it back (stdlib HTTP)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

TIMEOUT_S = 3.0
MIB = 1024 * 1024


class UIError(RuntimeError):
    """ComfyUI or SwarmUI did not answer as expected."""


def http(url: str, body: dict | None = None, *, timeout: float = TIMEOUT_S) -> tuple[int, bytes]:
    """GET (body None) or POST JSON; (status, body) for any HTTP answer. ConnectionError when
    nothing answers. (The evaluation clients use it too.)"""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ConnectionError(f"{url}: {getattr(exc, 'reason', exc)}") from exc


def _request(url: str, body: dict | None = None, *, timeout: float = TIMEOUT_S) -> bytes:
    """GET (body None) or POST JSON to url; the response body of a success, else UIError."""
    try:
        status, raw = http(url, body, timeout=timeout)
    except ConnectionError as exc:
        raise UIError(str(exc)) from exc
    if status >= 400:
        raise UIError(f"{url}: HTTP Error {status}")
    return raw


def _json(raw: bytes, url: str) -> dict:
    try:
        value = json.loads(raw or b"{}")
    except ValueError as exc:
        raise UIError(f"{url}: answer is not JSON") from exc
    if not isinstance(value, dict):
        raise UIError(f"{url}: answer is not a JSON object")
    return value


def comfyui_devices(base_url: str, *, timeout: float = TIMEOUT_S) -> list[dict]:
    """ComfyUI's `/system_stats` devices (vram_total, vram_free, torch_vram_total, ...)."""
    url = base_url.rstrip("/") + "/system_stats"
    devices = _json(_request(url, timeout=timeout), url).get("devices", [])
    return [d for d in devices if isinstance(d, dict)]


def comfyui_reclaimable_mib(base_url: str, *, timeout: float = TIMEOUT_S) -> dict[int, int]:
    """Memory (MiB) ComfyUI's torch holds per CUDA device index: what `/free` would return."""
    held: dict[int, int] = {}
    for position, device in enumerate(comfyui_devices(base_url, timeout=timeout)):
        if str(device.get("type", "cuda")) != "cuda":
            continue
        index = device.get("index")
        index = index if isinstance(index, int) else position
        held[index] = int(device.get("torch_vram_total") or 0) // MIB
    return held


def comfyui_free(base_url: str, *, timeout: float = TIMEOUT_S) -> None:
    """Ask ComfyUI to unload its models and free memory (it acts after its current prompt)."""
    _request(
        base_url.rstrip("/") + "/free",
        {"unload_models": True, "free_memory": True},
        timeout=timeout,
    )


def swarmui_free(base_url: str, *, timeout: float = TIMEOUT_S) -> None:
    """Ask SwarmUI to free its backends' GPU memory (a new session, then FreeBackendMemory)."""
    base = base_url.rstrip("/")
    url = base + "/API/GetNewSession"
    session = _json(_request(url, {}, timeout=timeout), url).get("session_id")
    if not session:
        raise UIError(f"{url}: no session_id in the answer")
    url = base + "/API/FreeBackendMemory"
    answer = _json(
        _request(
            url, {"session_id": session, "system_ram": False, "backend": "all"}, timeout=timeout
        ),
        url,
    )
    if answer.get("error"):
        raise UIError(f"{url}: {answer['error']}")
