"""Dispatch: place queued runs on free GPUs (or demo slots) of online nodes, fairly."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from training.choices import Architecture, ComfyUnloadMode, RunStatus
from training.estimates import Option, about, choose_option
from training.evaluation.placement import (
    dispatch_evaluations,
    evaluations_by_gpu,
    training_room_mib,
)
from training.lifecycle import TransitionError, transition
from training.models import GPU, GPUNode, TrainingRun
from training.selectors import hours_held, node_can_import, nowhere_has_files

logger = logging.getLogger(__name__)

FAIR_SHARE_WINDOW = timedelta(days=7)


@dataclass
class _Place:
    """Where a run could go, or why it cannot go anywhere yet."""

    node: GPUNode | None = None
    gpu: GPU | None = None
    reason: str = ""
    changes: dict = field(default_factory=dict)  # the run's plan for this GPU, when replanned
    note: str = ""  # what the assignment's event adds (the savers chosen for this GPU)
    duration_s: float = 0.0  # its expected time there


def _gb(mib: int) -> str:
    return f"{mib / 1024:.1f} GB"


def gpu_hours_by_owner(now=None) -> dict[int, float]:
    """GPU-hours each owner used in the last 7 days (runs still on a GPU count up to now).

    Reads only the runs of the window, through an index (run_usage_window): pages read
    this on every request, and the runs of a week are bounded by the lab's GPUs, not by
    how many runs the table holds.
    """
    now = now or timezone.now()
    return hours_held(TrainingRun.objects.filter(gpu__isnull=False), now - FAIR_SHARE_WINDOW, now)


def queue_key(run: TrainingRun, usage: dict[int, float]) -> tuple:
    """A run's place in dispatch order: priority, then fair share (`usage`, from
    gpu_hours_by_owner), then age. A run not saved yet sorts after every saved run of its
    priority, share and age (the new-run page's estimate places the run it would make)."""
    waited_since = run.queued_at or run.created_at or timezone.now()
    return (-run.priority, usage.get(run.owner_id, 0.0), waited_since, run.pk or float("inf"))


def queue_order() -> list[TrainingRun]:
    """Queued runs in dispatch order: priority, then fair share, then age."""
    usage = gpu_hours_by_owner()
    runs = list(TrainingRun.objects.queued().select_related("base_model", "owner"))
    runs.sort(key=lambda r: queue_key(r, usage))
    return runs


def queued_in_order(*fields: str, usage: dict[int, float] | None = None) -> list[tuple]:
    """Queued runs in dispatch order as value tuples `(pk, owner_id, priority, *fields)`,
    for pages that need places in the queue, not 1,000 model instances.

    The database sorts by priority, then age (queued_at, else created_at), then id; a
    stable sort by priority and the owner's fair share (`usage`, from gpu_hours_by_owner)
    keeps that order within one share, which is exactly `queue_key`'s order.
    """
    usage = gpu_hours_by_owner() if usage is None else usage
    rows = list(
        TrainingRun.objects.queued()
        .order_by("-priority", Coalesce("queued_at", "created_at"), "pk")
        .values_list("pk", "owner_id", "priority", *fields)
    )
    rows.sort(key=lambda row: (-row[2], usage.get(row[1], 0.0)))
    return rows


def queue_positions() -> dict[int, int]:
    """Each queued run's 1-based place in the queue, by run id."""
    return {row[0]: i for i, row in enumerate(queued_in_order(), start=1)}


def queue_position(run: TrainingRun) -> int | None:
    """A queued run's place in the queue (1 = next), or None when it is not queued."""
    if run.status != RunStatus.QUEUED:
        return None  # no need to read the queue
    return queue_positions().get(run.pk)


def _has_files(node: GPUNode, run: TrainingRun) -> bool:
    """Whether the node has the base model's files: looked at directly on this machine, as
    the node's agent last reported elsewhere (not reported yet: its runner checks them)."""
    if not run.base_model.spec.on_gpu:
        return True
    if node.name != settings.LORASTUDIO_NODE:
        return node.has_model_files(run.base_model_id) is not False
    return all(os.path.exists(p) for p in run.base_model.model_files(node.models_root).values())


class _Board:
    """What dispatch knows about nodes, GPUs and occupancy while it places runs."""

    def __init__(self) -> None:
        # Imported here: training.placement reads training.timing, which imports this module.
        from training.placement import Fitter

        self.fit = Fitter(timezone.now())
        self.nodes = list(GPUNode.objects.online())
        self.any_nodes = GPUNode.objects.filter(enabled=True).exists()
        self.gpus = list(
            GPU.objects.filter(node__in=self.nodes, enabled=True).select_related("node")
        )
        on_gpu = TrainingRun.objects.on_gpu()
        self.busy_gpus = set(on_gpu.exclude(gpu=None).values_list("gpu_id", flat=True))
        self.demo_busy = set(on_gpu.filter(gpu=None).values_list("node_id", flat=True))
        # Evaluations rendering now (training.evaluation.placement holds the sharing rules).
        self.evaluations = evaluations_by_gpu()
        self.rendering_nodes = {e.node_id: e for e in self.evaluations.values()}

    def room(self, gpu: GPU) -> int:
        """What a training run may count on on `gpu` now."""
        evaluation = self.evaluations.get(gpu.pk)
        if evaluation is None:
            return gpu.available_mib
        return training_room_mib(gpu, evaluation.vram_mib)

    def place(self, run: TrainingRun) -> _Place:
        """The best free place for `run`, or the reason it waits."""
        if not self.nodes:
            return _Place(
                reason="no GPU node is online" + ("" if self.any_nodes else " (none registered)")
            )
        if run.base_model.architecture == Architecture.DEMO:
            for node in self.nodes:
                if node.pk not in self.demo_busy:
                    return _Place(node=node)
            return _Place(reason="every online node is already running a demo run")
        nodes = {n.pk for n in self.nodes if _has_files(n, run)}
        if not nodes:
            return _Place(reason=f"no online node has the files of {run.base_model.name}")
        optimizer = (run.params or {}).get("optimizer_type")
        nodes = {
            n.pk
            for n in self.nodes
            if n.pk in nodes and node_can_import(n.engine_modules, optimizer)
        }
        if not nodes:
            return _Place(reason=f"no online node's sd-scripts can import {optimizer}")
        gpus = [g for g in self.gpus if g.node_id in nodes]
        if not gpus:
            return _Place(reason="no online node has a usable GPU")
        plans = {g.pk: self.fit.plan(run, g) for g in gpus}
        big_enough = [g for g in gpus if plans[g.pk].fits]
        if not big_enough:
            largest = max(gpus, key=lambda g: g.total_mib)
            return _Place(
                reason=f"no GPU has {_gb(plans[largest.pk].estimate_mib)}; the largest is "
                f"{largest.node.name} GPU {largest.index} with {_gb(largest.total_mib)}"
            )
        free = [g for g in big_enough if g.pk not in self.busy_gpus]
        if not free:
            need = min(plans[g.pk].estimate_mib for g in big_enough)
            return _Place(reason=f"every GPU with {_gb(need)} is running another run")
        # A node that stops its inference server for training waits for its evaluation.
        stopping = {
            g.pk: self.rendering_nodes[g.node_id]
            for g in free
            if g.node.comfyui_unload == ComfyUnloadMode.STOP and g.node_id in self.rendering_nodes
        }
        if stopping and len(stopping) == len(free):
            evaluation = next(iter(stopping.values()))
            return _Place(reason=f"{evaluation} is rendering on {evaluation.node.name}")
        free = [g for g in free if g.pk not in stopping]
        fits = [g for g in free if self.room(g) >= plans[g.pk].estimate_mib]
        if not fits:
            best = max(free, key=self.room)
            return _Place(
                reason=f"no GPU with {_gb(plans[best.pk].estimate_mib)} free; best is "
                f"{best.node.name} GPU {best.index} with {_gb(self.room(best))}"
            )
        return self._choose(run, fits, big_enough, plans)

    def _choose(self, run: TrainingRun, fits: list[GPU], holding: list[GPU], plans) -> _Place:
        """The free GPU that finishes `run` soonest (the smallest of those about as soon), or
        the busy one worth waiting for (training.estimates.choose_option)."""
        by_id = {g.pk: g for g in holding}
        durations = {g.pk: self.fit.duration_s(run, g, plans[g.pk]) for g in holding}
        options = [
            Option(g.pk, 0.0, durations[g.pk], self.room(g), (g.node.name, g.index)) for g in fits
        ]
        for g in holding:
            if g.pk in self.busy_gpus and (start := self.fit.free_in_s(g)) is not None:
                options.append(
                    Option(g.pk, start, durations[g.pk], g.total_mib, (g.node.name, g.index))
                )
        choice = choose_option(options)
        gpu, plan = by_id[choice.key], plans[choice.key]
        if choice.start_s > 0:
            self.fit.take(gpu, choice.duration_s)
            soonest = min(o.finish_s for o in options if o.start_s <= 0)
            return _Place(
                reason=f"{gpu.node.name} GPU {gpu.index} should be free in {about(choice.start_s)}"
                f" and have it ready in {about(choice.finish_s)}, sooner than a GPU free now "
                f"({about(soonest)})"
            )
        place = _Place(node=gpu.node, gpu=gpu, duration_s=choice.duration_s)
        if self.fit.replans(run):
            place.changes = {
                "params": dict(plan.params),
                "vram_estimate_mib": plan.estimate_mib,
                "plan": self.fit.record(run, plan, gpu),
            }
            if plan.savers:
                savers = ", ".join(f"{s.name} ({s.cost})" for s in plan.savers)
                place.note = f" Memory savers for its {_gb(gpu.total_mib)}: {savers}."
        return place

    def take(self, place: _Place) -> None:
        if place.gpu is not None:
            self.busy_gpus.add(place.gpu.pk)
            self.fit.take(place.gpu, place.duration_s)
        elif place.node is not None:
            self.demo_busy.add(place.node.pk)


def _claim(run: TrainingRun, place: _Place) -> bool:
    """Atomically give `place` to `run`; False when another dispatcher was quicker."""
    node, gpu = place.node, place.gpu
    try:
        with transaction.atomic():
            # Writing the node row first locks it (PostgreSQL row lock, SQLite write lock),
            # so the occupancy check below and the claim cannot interleave with a rival.
            GPUNode.objects.filter(pk=node.pk).update(status_message=F("status_message"))
            on_gpu = TrainingRun.objects.on_gpu()
            taken = (
                on_gpu.filter(gpu=gpu).exists()
                if gpu is not None
                else on_gpu.filter(node=node, gpu=None).exists()
            )
            if taken:
                return False
            where = f"{node.name} GPU {gpu.index}" if gpu is not None else f"{node.name} (demo)"
            transition(
                run,
                RunStatus.ASSIGNED,
                expect=RunStatus.QUEUED,
                note=f"Assigned to {where}.{place.note}",
                changes={"node": node, "gpu": gpu, "heartbeat_at": timezone.now(), **place.changes},
            )
            transaction.on_commit(lambda: enqueue_run(run.pk, node.name))
    except (TransitionError, IntegrityError) as exc:
        logger.info("Run %s was not claimed: %s", run.pk, exc)
        return False
    return True


def enqueue_run(run_id: int, node_name: str) -> str:
    """Send the run to its node's django-q2 cluster; return the task id."""
    from django_q.tasks import async_task

    task_id = async_task(
        "training.tasks.execute_run",
        run_id,
        cluster=node_name,
        task_name=f"run-{run_id}",
        timeout=settings.LORASTUDIO_MAX_RUN_SECONDS,
    )
    TrainingRun.objects.filter(pk=run_id).update(task_id=str(task_id or ""))
    return task_id


def _fail_if_no_node_has_files(run: TrainingRun, nodes: list[GPUNode]) -> bool:
    """Fail a queued run no node can ever start (every enabled node lacks its model files)."""
    why = nowhere_has_files(run.base_model, nodes)
    if not why:
        return False
    try:
        note = f"No node can run it: {why}."
        transition(
            run, RunStatus.FAILED, expect=RunStatus.QUEUED, reason="missing_files", note=note
        )
    except TransitionError:
        return False
    return True


def dispatch() -> list[int]:
    """Place every queued run that fits somewhere now; return the ids of the runs placed.

    0. Place queued evaluations first (training.evaluation.placement).
    1. Read the online nodes, their enabled GPUs and which GPUs / demo slots are taken.
    2. Walk the queue in order (priority, fair share, age). For each run, on every GPU of
       a node with its files (training.placement):
       - memory: a run submitted with the planner is planned again for the GPU's size,
         with the memory savers that size needs; any run holds a GPU only when its
         estimate is within 95 % of the GPU's memory (the planner's margin), and a free
         GPU only when that much of it is free now;
       - time: its expected finish there: when the GPU frees (now; or its run's remaining
         time plus the runs that chose to wait for it) plus the run's time there, savers'
         costs included (block swapping, fp8, checkpointing: sdscripts.vram.SAVERS).
    3. Choose (training.estimates.choose_option): of the free GPUs, those that would finish
       it within 10 % of the soonest are as good, and it takes the smallest of them (best
       fit: roomy GPUs stay free for the runs that need them). A busy GPU that would
       finish it more than 10 % sooner than any free one is waited for instead: the run
       keeps its place, and that GPU counts as taken for the runs behind it.
    4. Backfill: a run that waits (by choice, or because nothing holds it now) never blocks
       the runs behind it; they take only GPUs free now that it did not choose, so they do
       not delay it while the estimates hold. A GPU idles while work waits only when no
       waiting run fits it, or when the runs that fit finish sooner on a busy one.
    5. Claim each place atomically, writing the savers, estimate and expected time the run
       got for that GPU (and the savers into its assignment's note); a lost race just
       moves on.
    6. Write each waiting run's reason into its status message (without a history row).
    """
    try:
        dispatch_evaluations()  # short GPU work first; its rules with training: placement.py
    except Exception:
        logger.exception("Dispatching evaluations failed")
    board = _Board()
    placed: list[int] = []
    enabled = list(GPUNode.objects.filter(enabled=True))
    for run in queue_order():
        if _fail_if_no_node_has_files(run, enabled):
            continue
        place = board.place(run)
        if place.node is not None:
            if _claim(run, place):
                board.take(place)
                placed.append(run.pk)
                continue
            # Someone else changed the board: refresh it and leave this run for next time.
            board = _Board()
            place = _Place(reason="waiting for a free place (another dispatcher was quicker)")
        reason = f"Waiting: {place.reason}."
        if run.status_message != reason:
            TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
                status_message=reason
            )
    return placed
