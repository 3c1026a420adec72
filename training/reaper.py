"""The reaper: runs whose worker is gone are freed (and their trainers killed here).

Two rules. On the node itself (its agent, every second): a preparing or running run whose
worker process has died fails at once; its trainer's group, which dies with the worker
(parent-death signal), is killed if anything of it is left. Everywhere (agents and the
schedule): a run whose heartbeat is stale fails, which also covers nodes that went silent.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from training.choices import FailureReason, RunStatus
from training.execution.process import kill_group, process_alive
from training.lifecycle import TransitionError, transition
from training.models import TrainingRun
from training.resume import resume_after_loss

logger = logging.getLogger(__name__)


def reap(now=None) -> list[int]:
    """Free every run whose worker is gone; return their ids.

    0. On this node: runs whose worker process died fail now (`reap_vanished`).
    1. A run still `assigned` (its node never started it) goes back to the queue.
    2. A `preparing`/`running` run with a stale heartbeat becomes failed/worker_lost; when
       it ran on this node its trainer's process group is killed, so nothing keeps holding
       the GPU. A lost run is resumed once when it can be (training.resume).
    3. Evaluations alike (training.evaluation.placement.reap_evaluations).
    """
    reaped = reap_vanished(settings.LORASTUDIO_NODE)
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.LORASTUDIO_STALE_AFTER_SECONDS)
    stale = TrainingRun.objects.on_gpu().filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    )
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
                _lost(run, note)
        except TransitionError:
            continue  # it moved on by itself meanwhile
        logger.warning("Reaped run %s (%s)", run.pk, node_name)
        reaped.append(run.pk)
    # Evaluations have heartbeats too (their run is never touched).
    from training.evaluation.placement import reap_evaluations

    for evaluation_id in reap_evaluations(now):
        logger.warning("Reaped evaluation %s", evaluation_id)
    return reaped


def _lost(run: TrainingRun, note: str) -> None:
    transition(
        run,
        RunStatus.FAILED,
        expect=(RunStatus.PREPARING, RunStatus.RUNNING),
        reason=FailureReason.WORKER_LOST,
        note=note,
        changes={"pgid": None, "worker_pid": None},
    )
    resume_after_loss(run)


def reap_vanished(node_name: str) -> list[int]:
    """Fail now the runs of node `node_name` (this machine) whose worker process is gone.

    Only the node's own agent can see its processes, so this runs there, every second. The
    trainer's group dies with its worker; anything left of it is killed. A runner that is
    alive (its trainer may have just exited: it is collecting files) is never touched.
    """
    reaped = []
    runs = TrainingRun.objects.filter(
        node__name=node_name,
        status__in=(RunStatus.PREPARING, RunStatus.RUNNING),
        worker_pid__isnull=False,
    ).only("pk", "status", "pgid", "worker_pid")
    for run in runs:
        if process_alive(run.worker_pid):
            continue
        killed = kill_group(run.pgid)
        note = f"The worker on {node_name} is gone (process {run.worker_pid})"
        note += "; its trainer was killed." if killed else "; its trainer ended with it."
        try:
            _lost(run, note)
        except TransitionError:
            continue
        logger.warning("Run %s lost its worker on %s", run.pk, node_name)
        reaped.append(run.pk)
    return reaped
