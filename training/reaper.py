"""The reaper: runs whose worker stopped beating are freed (and their trainers killed here)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from training.choices import FailureReason, RunStatus
from training.execution.process import kill_group
from training.lifecycle import TransitionError, transition
from training.models import TrainingRun

logger = logging.getLogger(__name__)


def reap(now=None) -> list[int]:
    """Free every run whose worker heartbeat is stale; return their ids.

    1. A run still `assigned` (its node never started it) goes back to the queue.
    2. A `preparing`/`running` run becomes failed/worker_lost; when it ran on this node its
       trainer's process group is killed, so nothing keeps holding the GPU.
    3. Evaluations alike (training.evaluation.placement.reap_evaluations).
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.LORASTUDIO_STALE_AFTER_SECONDS)
    stale = TrainingRun.objects.on_gpu().filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    )
    reaped = []
    for run in stale.select_related("node"):
        node_name = run.node.name if run.node_id else "?"
        try:
            if run.status == RunStatus.ASSIGNED:
                transition(
                    run,
                    RunStatus.QUEUED,
                    expect=RunStatus.ASSIGNED,
                    note=f"Back in the queue: {node_name} did not start it in time.",
                    changes={"node": None, "gpu": None, "heartbeat_at": None},
                )
            else:
                killed = False
                if run.node_id and node_name == settings.LORASTUDIO_NODE:
                    killed = kill_group(run.pgid)
                note = f"The worker on {node_name} stopped reporting"
                note += " (its trainer was killed)." if killed else "."
                transition(
                    run,
                    RunStatus.FAILED,
                    expect=(RunStatus.PREPARING, RunStatus.RUNNING),
                    reason=FailureReason.WORKER_LOST,
                    note=note,
                    changes={"pgid": None},
                )
        except TransitionError:
            continue  # it moved on by itself meanwhile
        logger.warning("Reaped run %s (%s)", run.pk, node_name)
        reaped.append(run.pk)
    # Evaluations have heartbeats too (their run is never touched).
    from training.evaluation.placement import reap_evaluations

    for evaluation_id in reap_evaluations(now):
        logger.warning("Reaped evaluation %s", evaluation_id)
    return reaped
