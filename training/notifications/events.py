"""Queue notifications after commit (called by the run and evaluation life cycles)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 600  # a few mails (30 s timeout each) and webhooks (10 s each)


def notify_after_commit(event: str, run_id: int, evaluation_id: int | None = None) -> None:
    """Once the caller's transaction commits, queue the task that tells people about `event`.

    A failing enqueue is logged and never fails the caller: a run's end must not depend on
    the queue accepting a mail.
    """

    def enqueue() -> None:
        from django_q.tasks import async_task

        options = {}
        if settings.LORASTUDIO_NOTIFY_CLUSTER:
            options["cluster"] = settings.LORASTUDIO_NOTIFY_CLUSTER
        try:
            async_task(
                "training.tasks.send_notifications",
                event,
                run_id,
                evaluation_id,
                task_name=f"notify-{event}-run-{run_id}",
                timeout=SEND_TIMEOUT_SECONDS,
                **options,
            )
        except Exception:
            logger.exception("Could not queue the %s notification of run %s", event, run_id)

    transaction.on_commit(enqueue, robust=True)
