"""The one place that changes a run's status (docs/run-lifecycle.md)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from training import live
from training.choices import (
    ALLOWED_TRANSITIONS,
    NOTIFY_ON_STATUS,
    TERMINAL,
    EventKind,
    FailureReason,
    RunStatus,
)
from training.models import RunEvent, TrainingRun
from training.notifications.events import notify_after_commit


class TransitionError(ValueError):
    """A status change the life cycle does not allow."""


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
    5. On commit, push the new state to the run's group and the lab board, and queue the
       mails and webhooks of an end or a wait for approval (training.notifications).
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

    state = live.run_state(locked)
    transaction.on_commit(lambda: live.send_state(state))
    if to in NOTIFY_ON_STATUS:
        notify_after_commit(NOTIFY_ON_STATUS[to], locked.pk)

    # Keep the caller's object in step with the database.
    for name in fields:
        setattr(run, name, getattr(locked, name))
    return run


@transaction.atomic
def record_action(
    run: TrainingRun, *, by=None, note: str, kind: str = EventKind.ACTION
) -> RunEvent:
    """Record something that changes no status on the run's timeline: a staff action, an
    evaluation's move, the inference server stopped or started."""
    return RunEvent.objects.create(
        run=run,
        actor=by if getattr(by, "is_authenticated", False) else None,
        kind=kind,
        note=note,
    )
