"""Live updates: the channel-layer groups, the messages sent to them, and how they are sent.

Groups: `run-<id>` (a run's page) and `lab` (the dashboard's lab board). Messages, one
sender each (the consumers in training/consumers.py have one handler per type):

| type          | group      | sent by                         | carries                      |
|---------------|------------|---------------------------------|------------------------------|
| `run.state`   | `run-<id>` | lifecycle.transition, on commit | the run's state (run_state)  |
| `run.progress`| `run-<id>` | the runner, at most every 0.5 s | the run's state              |
| `run.log`     | `run-<id>` | the run log, per chunk          | its RunLog seq and text      |
| `run.sample`  | `run-<id>` | the sample collector            | the sample's id, URL, prompt |
| `run.evaluation` | `run-<id>` | evaluation lifecycle (on commit), runner | its state, progress |
| `run.eval_image` | `run-<id>` | the evaluation runner        | a grid cell's image, its URL |
| `lab.changed` | `lab`      | lifecycle.transition, on commit | the run id                   |

Sending never raises: a broken layer must not break a transition or a training run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)

LAB_GROUP = "lab"
SEND_TIMEOUT_S = 5.0


def run_group(run_id: int) -> str:
    """The group of a run's live page."""
    return f"run-{run_id}"


def run_state(run) -> dict[str, Any]:
    """The part of a run that live pages show, as plain JSON-able values."""
    return {
        "id": run.pk,
        "status": run.status,
        "status_display": run.get_status_display(),
        "failure_reason": run.failure_reason,
        "status_message": run.status_message,
        "node": run.node.name if run.node_id else None,
        "gpu": run.gpu.index if run.gpu_id else None,
        "step": run.step,
        "total_steps": run.total_steps,
        "epoch": run.epoch,
        "total_epochs": run.total_epochs,
        "loss": run.loss,
        "speed": run.speed,
        "eta_seconds": run.eta_seconds,
        "progress_pct": round(run.progress_pct, 1),
        "vram_estimate_mib": run.vram_estimate_mib,
        "vram_peak_mib": run.vram_peak_mib,
        "exit_code": run.exit_code,
        "is_terminal": run.is_terminal,
    }


def send_state(state: dict[str, Any]) -> None:
    """A run changed status: its page and the lab board re-render."""
    _send(run_group(state["id"]), {"type": "run.state", "state": state})
    _send(LAB_GROUP, {"type": "lab.changed", "run": state["id"]})


def send_progress(run) -> None:
    """A running run's progress fields changed."""
    _send(run_group(run.pk), {"type": "run.progress", "state": run_state(run)})


def send_log(run_id: int, seq: int, text: str) -> None:
    """A new RunLog chunk (the consumer orders chunks by seq and fills gaps)."""
    _send(run_group(run_id), {"type": "run.log", "seq": seq, "text": text})


def sample_message(sample) -> dict[str, Any]:
    """The `run.sample` message for a stored SampleImage."""
    from django.urls import reverse

    return {
        "type": "run.sample",
        "id": sample.pk,
        "url": reverse("training:sample-file", args=[sample.run_id, sample.pk]),
        "name": str(sample),
        "epoch": sample.epoch,
        "step": sample.step,
        "index": sample.index,
        "prompt": sample.prompt,
    }


def send_sample(sample) -> None:
    """A sample image of a run was stored."""
    _send(run_group(sample.run_id), sample_message(sample))


def evaluation_state(evaluation) -> dict[str, Any]:
    """The `run.evaluation` message: the part of an evaluation its run page shows live."""
    return {
        "type": "run.evaluation",
        "id": evaluation.pk,
        "status": evaluation.status,
        "status_display": evaluation.get_status_display(),
        "failure_reason": evaluation.failure_reason,
        "status_message": evaluation.status_message,
        "done": evaluation.done_images,
        "total": evaluation.total_images,
        "is_terminal": evaluation.is_terminal,
    }


def send_evaluation(run_id: int, state: dict[str, Any]) -> None:
    """An evaluation changed status or progress (state: `evaluation_state`)."""
    _send(run_group(run_id), state)


def eval_image_message(image) -> dict[str, Any]:
    """The `run.eval_image` message for a stored EvaluationImage."""
    from django.urls import reverse

    return {
        "type": "run.eval_image",
        "id": image.pk,
        "evaluation": image.evaluation_id,
        "cell": image.cell,
        "url": reverse("training:eval-image", args=[image.run_id, image.pk]),
        "epoch": image.epoch,
        "strength": image.strength,
        "seed": image.seed,
        "prompt_index": image.prompt_index,
        "prompt": image.prompt,
    }


def send_eval_image(image) -> None:
    """An evaluation image was stored: its grid cell fills in."""
    _send(run_group(image.run_id), eval_image_message(image))


_sender: tuple[int, asyncio.AbstractEventLoop] | None = None
_sender_lock = threading.Lock()


def _sender_loop() -> asyncio.AbstractEventLoop:
    """This process's sending loop: one daemon thread that keeps the layer's connections.

    `async_to_sync` makes a new thread and event loop per call, so channels_redis opened a
    new Redis connection for every message (about 4 ms; 0.5 ms on a kept loop). The pid
    check starts a fresh loop in a forked child (django-q2 forks its workers).
    """
    global _sender
    with _sender_lock:
        if _sender is None or _sender[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, daemon=True, name="live-send").start()
            _sender = (os.getpid(), loop)
        return _sender[1]


def _send(group: str, message: dict[str, Any]) -> None:
    """Send `message` to a group from synchronous code; log, never raise, on failure."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        if isinstance(layer, InMemoryChannelLayer):
            # Its queues belong to the caller's loop (tests only): send from there.
            async_to_sync(layer.group_send)(group, message)
        else:
            sending = layer.group_send(group, message)
            asyncio.run_coroutine_threadsafe(sending, _sender_loop()).result(SEND_TIMEOUT_S)
    except Exception:
        logger.exception("Could not send %s to channel group %s", message.get("type"), group)
