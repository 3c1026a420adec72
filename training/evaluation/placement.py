"""Evaluations in the queue: where one may render, and how it shares a GPU with training.

An evaluation renders on its node's inference GPU (`GPUNode.inference_gpu`), one at a time per
node, and needs its architecture's memory figure there. The rules, both ways, live here:

- beside a training run on that GPU, an evaluation fits only in what the run's estimate and
  other programs leave (`eval_room_mib`); a training run placed beside an evaluation counts
  the evaluation's figure as taken (`training_room_mib`), and its runner does not ask
  ComfyUI to free memory while an evaluation renders;
- a node whose inference server is stopped for training (mode "stop") renders nothing while
  a run trains there or until its server answers again (`GPUNode.inference_stopped`), and
  takes no training run while an evaluation renders.

`dispatch_evaluations` runs first in every dispatch (evaluations are short); `reap_evaluations`
frees evaluations whose worker went silent, as the reaper does for runs.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from training.choices import ComfyUnloadMode, EvalStatus
from training.evaluation.lifecycle import EvalTransitionError, move
from training.models import GPU, Evaluation, GPUNode, TrainingRun

logger = logging.getLogger(__name__)


def _others_mib(gpu: GPU) -> int:
    """Memory of programs that are neither our trainer nor ComfyUI's reclaimable models."""
    return max(0, gpu.used_by_others_mib - gpu.reclaimable_mib)


def eval_room_mib(gpu: GPU, training: TrainingRun | None) -> int:
    """What an evaluation may use on `gpu`: its free memory and ComfyUI's own models (the
    evaluation is ComfyUI's work), less what a training run there planned to take."""
    room = gpu.free_mib + gpu.reclaimable_mib
    if training is not None:
        planned = gpu.total_mib - _others_mib(gpu) - (training.vram_estimate_mib or 0)
        room = min(room, planned)
    return max(0, room)


def training_room_mib(gpu: GPU, evaluation_mib: int) -> int:
    """What a training run may count on while an evaluation renders on `gpu`: ComfyUI's
    memory is not given back then, and the evaluation's figure is taken."""
    return max(0, min(gpu.available_mib, gpu.total_mib - _others_mib(gpu)) - evaluation_mib)


def evaluations_by_gpu() -> dict[int, Evaluation]:
    """Evaluations holding a GPU now, by GPU id."""
    return {e.gpu_id: e for e in Evaluation.objects.on_server().exclude(gpu=None)}


def evaluation_on_node(node: GPUNode) -> Evaluation | None:
    """The evaluation rendering on a node's inference server now, if any."""
    return Evaluation.objects.on_server().filter(node=node).first()


def _has_files(node: GPUNode, evaluation: Evaluation) -> bool:
    base = evaluation.run.base_model
    if node.name != settings.LORASTUDIO_NODE:
        return node.has_model_files(base.pk) is not False
    return all(os.path.exists(p) for p in base.model_files(node.models_root).values())


def place(evaluation: Evaluation, nodes: list[GPUNode], busy: set[int]) -> tuple[GPU | None, str]:
    """The GPU `evaluation` may render on now (its run's node first), or why it waits."""
    reasons = []
    trainings = {r.gpu_id: r for r in TrainingRun.objects.on_gpu().exclude(gpu=None)}
    training_nodes = set(TrainingRun.objects.on_gpu().values_list("node_id", flat=True))
    ordered = sorted(nodes, key=lambda n: (n.pk != evaluation.run.node_id, n.name))
    for node in ordered:
        if not node.has_inference_server or not node.evaluation_lora_dir:
            continue
        if node.pk in busy:
            reasons.append(f"{node.name} is rendering another evaluation")
            continue
        if node.comfyui_unload == ComfyUnloadMode.STOP and (
            node.pk in training_nodes or node.inference_stopped
        ):
            reasons.append(f"{node.name}'s inference server is stopped for training")
            continue
        if not _has_files(node, evaluation):
            reasons.append(f"{node.name} lacks the files of {evaluation.run.base_model.name}")
            continue
        gpu = GPU.objects.filter(node=node, index=node.inference_gpu).first()
        if gpu is None:
            reasons.append(f"{node.name} reports no GPU {node.inference_gpu}")
            continue
        room = eval_room_mib(gpu, trainings.get(gpu.pk))
        if room < evaluation.vram_mib:
            reasons.append(
                f"{node.name} GPU {gpu.index} has {room / 1024:.1f} GB for it, it needs "
                f"{evaluation.vram_mib / 1024:.1f} GB"
            )
            continue
        return gpu, ""
    if not reasons:
        return None, "no online node has ComfyUI or SwarmUI and a LoRA folder"
    return None, "; ".join(reasons)


def _claim(evaluation: Evaluation, gpu: GPU) -> bool:
    node = gpu.node
    try:
        with transaction.atomic():
            # Lock the node row first, as the run claim does.
            GPUNode.objects.filter(pk=node.pk).update(status_message=F("status_message"))
            move(
                evaluation,
                EvalStatus.ASSIGNED,
                expect=EvalStatus.QUEUED,
                note=f"Rendering on {node.name} GPU {gpu.index}.",
                changes={"node": node, "gpu": gpu, "heartbeat_at": timezone.now()},
            )
            transaction.on_commit(lambda: enqueue_evaluation(evaluation.pk, node.name))
    except (EvalTransitionError, IntegrityError) as exc:
        logger.info("Evaluation %s was not claimed: %s", evaluation.pk, exc)
        return False
    return True


def enqueue_evaluation(evaluation_id: int, node_name: str) -> str:
    """Send the evaluation to its node's django-q2 cluster; return the task id."""
    from django_q.tasks import async_task

    task_id = async_task(
        "training.tasks.execute_evaluation",
        evaluation_id,
        cluster=node_name,
        task_name=f"evaluation-{evaluation_id}",
        timeout=settings.LORASTUDIO_MAX_RUN_SECONDS,
    )
    Evaluation.objects.filter(pk=evaluation_id).update(task_id=str(task_id or ""))
    return task_id


def dispatch_evaluations() -> list[int]:
    """Place every queued evaluation that may render now, oldest first; their ids."""
    nodes = list(GPUNode.objects.online())
    busy = set(Evaluation.objects.on_server().values_list("node_id", flat=True))
    placed = []
    queued = Evaluation.objects.filter(status=EvalStatus.QUEUED).select_related(
        "run__base_model", "run__node"
    )
    for evaluation in queued.order_by("created_at", "pk"):
        gpu, reason = place(evaluation, nodes, busy)
        if gpu is not None and _claim(evaluation, gpu):
            busy.add(gpu.node_id)
            placed.append(evaluation.pk)
            continue
        message = f"Waiting: {reason or 'another dispatcher was quicker'}."
        if evaluation.status_message != message:
            Evaluation.objects.filter(pk=evaluation.pk, status=EvalStatus.QUEUED).update(
                status_message=message
            )
    return placed


def reap_evaluations(now=None) -> list[int]:
    """Evaluations whose worker went silent: an assigned one goes back to the queue, a
    rendering one fails (worker_lost). Their run is never touched."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.LORASTUDIO_STALE_AFTER_SECONDS)
    stale = Evaluation.objects.on_server().filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    )
    reaped = []
    for evaluation in stale.select_related("node"):
        where = evaluation.node.name if evaluation.node_id else "?"
        try:
            if evaluation.status == EvalStatus.ASSIGNED:
                move(
                    evaluation,
                    EvalStatus.QUEUED,
                    expect=EvalStatus.ASSIGNED,
                    note=f"Back in the queue: {where} did not start it in time.",
                    changes={"node": None, "gpu": None, "heartbeat_at": None},
                )
            else:
                move(
                    evaluation,
                    EvalStatus.FAILED,
                    expect=EvalStatus.RUNNING,
                    reason="worker_lost",
                    note=f"The worker on {where} stopped reporting. Evaluate again from the "
                    "run page.",
                )
        except EvalTransitionError:
            continue
        reaped.append(evaluation.pk)
    return reaped
