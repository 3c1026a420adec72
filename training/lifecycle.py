"""The one place that changes a run's status (DESIGN.md, "Run life cycle")."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction
from django.utils import timezone

from training.choices import ALLOWED_TRANSITIONS, TERMINAL, EventKind, FailureReason, RunStatus
from training.models import RunEvent, TrainingRun

logger = logging.getLogger(__name__)

LAB_GROUP = "lab"
NOTIFY_TIMEOUT_S = 5.0


class TransitionError(ValueError):
    """A status change the life cycle does not allow."""


def run_state(run: TrainingRun) -> dict[str, Any]:
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
            threading.Thread(target=loop.run_forever, daemon=True, name="notify").start()
            _sender = (os.getpid(), loop)
        return _sender[1]


def notify(group: str, message: dict[str, Any]) -> None:
    """Send `message` to a channel-layer group; a broken layer never breaks a transition."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        if isinstance(layer, InMemoryChannelLayer):
            # Its queues belong to the caller's loop (tests only): send from there.
            async_to_sync(layer.group_send)(group, message)
        else:
            sending = layer.group_send(group, message)
            asyncio.run_coroutine_threadsafe(sending, _sender_loop()).result(NOTIFY_TIMEOUT_S)
    except Exception:
        logger.exception("Could not notify channel group %s", group)


@transaction.atomic
def transition(
    run: TrainingRun,
    to: str,
    *,
    by=None,
    reason: str = "",
    note: str = "",
    expect: str | tuple[str, ...] | None = None,
    changes: dict[str, Any] | None = None,
) -> TrainingRun:
    """Move `run` to status `to`, record a RunEvent and notify its group after commit.

    1. Lock the row and read its current status from the database.
    2. Refuse a move the life cycle does not allow, or one from an unexpected status
       (`expect`), with TransitionError; nothing is written then.
    3. Write status, reason, message, timestamps and any `changes` in one save.
    4. Record the RunEvent (who, when, from, to, reason, note).
    5. On commit, push the new state to the run's group and the lab board.
    """
    to = RunStatus(to)
    locked = (
        TrainingRun.objects.select_for_update(of=("self",))
        .select_related("node", "gpu")
        .get(pk=run.pk)
    )
    current = locked.status
    if expect is not None:
        expected = (expect,) if isinstance(expect, str) else tuple(expect)
        if current not in expected:
            raise TransitionError(
                f"Run #{run.pk} is {current}, not {' or '.join(expected)}; nothing was changed."
            )
    if to not in ALLOWED_TRANSITIONS[current]:
        raise TransitionError(f"Run #{run.pk} cannot go from {current} to {to}.")
    if to == RunStatus.FAILED:
        if reason not in FailureReason.values:
            raise TransitionError(
                f"A failed run needs a reason ({', '.join(FailureReason.values)}), not {reason!r}."
            )
    elif reason:
        raise TransitionError("Only a move to failed takes a failure reason.")

    now = timezone.now()
    locked.status = to
    locked.failure_reason = reason
    locked.status_message = note
    fields = {"status", "failure_reason", "status_message"}
    if to == RunStatus.QUEUED and locked.queued_at is None:
        locked.queued_at = now
        fields.add("queued_at")
    if to == RunStatus.RUNNING and locked.started_at is None:
        locked.started_at = now
        fields.add("started_at")
    if to in TERMINAL:
        locked.finished_at = now
        fields.add("finished_at")
    for name, value in (changes or {}).items():
        setattr(locked, name, value)
        fields.add(name)
    locked._change_reason = f"{current} → {to}"
    locked.save(update_fields=sorted(fields))

    RunEvent.objects.create(
        run=locked,
        actor=by if getattr(by, "is_authenticated", False) else None,
        kind=EventKind.STATUS,
        from_status=current,
        to_status=to,
        reason=reason,
        note=note,
    )

    state = run_state(locked)
    transaction.on_commit(lambda: _broadcast(state))

    # Keep the caller's object in step with the database.
    for name in fields:
        setattr(run, name, getattr(locked, name))
    return run


def _broadcast(state: dict[str, Any]) -> None:
    notify(f"run-{state['id']}", {"type": "run.state", "state": state})
    notify(LAB_GROUP, {"type": "lab.changed", "run": state["id"]})


@transaction.atomic
def record_action(run: TrainingRun, *, by=None, note: str) -> RunEvent:
    """Record a staff action on the run's timeline (no status change)."""
    return RunEvent.objects.create(
        run=run,
        actor=by if getattr(by, "is_authenticated", False) else None,
        kind=EventKind.ACTION,
        note=note,
    )
