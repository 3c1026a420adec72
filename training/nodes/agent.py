"""The node agent: keep this machine's GPUNode and GPU rows up to date from NVML."""

from __future__ import annotations

import logging
import os
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from training.energy import record_power
from training.execution.process import group_pids
from training.models import GPU, BaseModel, GPUNode, TrainingRun
from training.nodes import comfyui, nvml

logger = logging.getLogger(__name__)


def _own_pids(node: GPUNode) -> frozenset[int]:
    """Processes of the trainers running on this node (their memory is ours, not others')."""
    pids: set[int] = set()
    for pgid in (
        TrainingRun.objects.on_gpu()
        .filter(node=node, pgid__isnull=False)
        .values_list("pgid", flat=True)
    ):
        pids |= group_pids(pgid)
    return frozenset(pids)


def _reclaimable(node: GPUNode) -> dict[int, int]:
    """Per GPU index, memory ComfyUI would give back (0 when it is absent or not asked)."""
    if not node.comfyui_url or node.comfyui_unload == "none":
        return {}
    try:
        held = comfyui.comfyui_reclaimable_mib(node.comfyui_url, timeout=1.0)
    except comfyui.UIError as exc:
        logger.info("ComfyUI on %s did not answer: %s", node.name, exc)
        return {}
    if node.inference_stopped and not TrainingRun.objects.on_gpu().filter(node=node).exists():
        # It answers again with no run training here (started by hand after a failed start
        # command, say): evaluations may be placed on it again. Not while a run trains: it
        # may answer for a moment before its stop command has finished.
        GPUNode.objects.filter(pk=node.pk).update(inference_stopped=False)
    return held


def model_files_present(node: GPUNode) -> dict[str, bool]:
    """Per enabled base model (that needs a GPU): whether this machine has all its files."""
    present = {}
    for model in BaseModel.objects.filter(enabled=True):
        if model.spec.on_gpu:
            files = model.model_files(node.models_root).values()
            present[str(model.pk)] = bool(files) and all(os.path.isfile(p) for p in files)
    return present


@transaction.atomic
def beat(node_name: str | None = None, *, now: datetime | None = None) -> GPUNode:
    """Register or refresh this machine's node and its GPUs; return the node.

    1. Create the GPUNode row the first time (enabled, default work dir).
    2. Read the GPUs (NVML or the fake backend); a machine without a driver gets a clear
       "no NVIDIA GPU found" status message instead of an error.
    3. Stamp the node's heartbeat (this locks the node row first, as dispatch does).
    4. Update or create one GPU row per device; rows of GPUs that vanished get 0 MiB free.
    5. Count each GPU's power reading into the run holding it (training.energy).
    `now` is the reading's time (tests give it; the agent's loop leaves it to the clock).
    """
    name = node_name or settings.LORASTUDIO_NODE
    node, created = GPUNode.objects.get_or_create(
        name=name, defaults={"work_dir": str(settings.LORASTUDIO_WORK_DIR)}
    )
    if created:
        logger.info("Registered node %s", name)
    report = nvml.read_gpus(
        settings.LORASTUDIO_GPU_BACKEND, settings.LORASTUDIO_FAKE_GPUS, own_pids=_own_pids(node)
    )
    reclaimable = _reclaimable(node) if report.gpus else {}
    now = now or timezone.now()
    # Stamp (and so lock) the node row before the GPU rows: dispatch's claim locks the node
    # first too, and the opposite order deadlocks on PostgreSQL (claim's run row refers to
    # a GPU row that update_or_create holds FOR UPDATE).
    present = model_files_present(node)
    GPUNode.objects.filter(pk=node.pk).update(
        last_heartbeat=now, status_message=report.message, model_files_present=present
    )
    seen = []
    for reading in report.gpus:
        GPU.objects.update_or_create(
            node=node,
            index=reading.index,
            defaults={
                "uuid": reading.uuid,
                "name": reading.name,
                "total_mib": reading.total_mib,
                "free_mib": reading.free_mib,
                "used_mib": reading.used_mib,
                "used_by_others_mib": reading.used_by_others_mib,
                "reclaimable_mib": min(reclaimable.get(reading.index, 0), reading.used_mib),
                "utilization_pct": reading.utilization_pct,
                "temperature_c": reading.temperature_c,
                "power_w": reading.power_w,
                "updated_at": now,
            },
        )
        seen.append(reading.index)
    node.gpus.exclude(index__in=seen).update(free_mib=0, reclaimable_mib=0, updated_at=now)
    record_power(node, report.gpus, now)
    node.last_heartbeat = now
    node.status_message = report.message
    return node
