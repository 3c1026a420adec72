"""The one place that changes an evaluation's status (docs/evaluation.md).

```
queued → assigned → running → succeeded | failed (reason) | cancelled
   ↑________|__________|  (back to the queue: its node's server was taken for training,
                          or the node never started it)
```

Every move is in `training.choices.EVAL_TRANSITIONS`. A move is recorded on the run's
timeline (an "evaluation" event) and sent to the run's page after commit; a succeeded one
queues the "evaluation ready" mail and webhook (training.notifications). The run itself is
never touched: a failed evaluation leaves a succeeded run succeeded.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from training import live
from training.choices import (
    EVAL_TERMINAL,
    EVAL_TRANSITIONS,
    EvalFailure,
    EvalStatus,
    EventKind,
    NotifyEvent,
)
from training.lifecycle import record_action
from training.models import Evaluation
from training.notifications.events import notify_after_commit


class EvalTransitionError(ValueError):
    """A status change the evaluation life cycle does not allow."""


@transaction.atomic
def move(
    evaluation: Evaluation,
    to: str,
    *,
    by=None,
    reason: str = "",
    note: str = "",
    expect: str | tuple[str, ...] | None = None,
    changes: dict[str, Any] | None = None,
) -> Evaluation:
    """Move `evaluation` to `to`, record it on the run's timeline, push it after commit.

    Locks the row; refuses (EvalTransitionError, nothing written) a move the life cycle does
    not allow, one from a status other than `expect`, a failure without a reason or a reason
    without a failure.
    """
    to = EvalStatus(to)
    locked = Evaluation.objects.select_for_update().get(pk=evaluation.pk)
    current = locked.status
    if expect is not None:
        expected = (expect,) if isinstance(expect, str) else tuple(expect)
        if current not in expected:
            raise EvalTransitionError(
                f"Evaluation #{locked.pk} is {current}, not {' or '.join(expected)}."
            )
    if to not in EVAL_TRANSITIONS[current]:
        raise EvalTransitionError(f"Evaluation #{locked.pk} cannot go from {current} to {to}.")
    if (to == EvalStatus.FAILED) != bool(reason) or (reason and reason not in EvalFailure.values):
        raise EvalTransitionError(
            f"A failed evaluation needs one reason of {', '.join(EvalFailure.values)}; "
            "no other move takes one."
        )
    now = timezone.now()
    fields = {"status", "failure_reason", "status_message"}
    locked.status, locked.failure_reason, locked.status_message = to, reason, note
    if to == EvalStatus.RUNNING and locked.started_at is None:
        locked.started_at = now
        fields.add("started_at")
    if to in EVAL_TERMINAL:
        locked.finished_at = now
        fields.add("finished_at")
    for name, value in (changes or {}).items():
        setattr(locked, name, value)
        fields.add(name)
    locked.save(update_fields=sorted(fields))
    text = f"Evaluation #{locked.pk}: {current} → {to}" + (f" ({reason})" if reason else "")
    record_action(
        locked.run, by=by, kind=EventKind.EVALUATION, note=text + (f". {note}" if note else ".")
    )
    state = live.evaluation_state(locked)
    transaction.on_commit(lambda: live.send_evaluation(locked.run_id, state))
    if to == EvalStatus.SUCCEEDED:
        notify_after_commit(NotifyEvent.EVALUATION_READY, locked.run_id, locked.pk)
    for name in fields:
        setattr(evaluation, name, getattr(locked, name))
    return evaluation
