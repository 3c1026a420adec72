"""When runs will be ready: the lab's history and queue, read for `training.estimates`.

Reads only. `Lab` is the queue and the places (GPUs, and each online node's CPU slot for
demo runs) as they are now, read once per page. `Lab.new_run` estimates the run a new-run
form would make (the plan stores it, so the submit keeps it, and the admin later sets it
against what the run took); `Lab.outlook` brings a stored run's estimate up to date for the
run page and the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from sdscripts.architectures import ARCHITECTURES
from sdscripts.params import PARAMS, default_for
from sdscripts.speed import prior_step_s, speed_savers
from sdscripts.steps import total_steps
from training import estimates
from training.choices import ON_GPU, TERMINAL, RunStatus
from training.estimates import Measured, Place, Shape, StepTime, Waiting
from training.models import GPU, GPUNode, TrainingRun
from training.scheduler import gpu_hours_by_owner, queued_in_order

HISTORY_LIMIT = 200  # finished runs per architecture read for the speed history
CPU = "CPU"  # the "GPU model" of a demo run: it trains on its node's CPU


def shape_of(architecture: str, params: dict, gpu_model: str) -> Shape:
    """A run's speed shape from its final parameters and the GPU model it (would) run on."""
    resolution = params.get("resolution") or default_for(PARAMS["resolution"], architecture)
    return Shape(
        architecture=architecture,
        gpu_model=gpu_model,
        resolution=int(resolution),
        batch=int(params.get("train_batch_size") or 1),
        savers=speed_savers(architecture, params),
    )


def prior(shape: Shape) -> float:
    """The prior's seconds per step for a shape (sdscripts.speed)."""
    return prior_step_s(shape.architecture, shape.resolution, shape.batch, shape.savers)


def history(architecture: str) -> list[Measured]:
    """The architecture's succeeded runs, newest first, with their wall seconds per step.

    Only succeeded runs: a failed or cancelled run stopped early, and its time per step
    includes a start-up that was not spread over all its steps.
    """
    arch = ARCHITECTURES.get(architecture)
    rows = (
        TrainingRun.objects.filter(
            base_model__architecture=architecture,
            status=RunStatus.SUCCEEDED,
            started_at__isnull=False,
            finished_at__isnull=False,
            step__gt=0,
        )
        .order_by("-finished_at", "-pk")
        .values_list("params", "gpu__name", "started_at", "finished_at", "step")[:HISTORY_LIMIT]
    )
    out = []
    for params, gpu_name, started, finished, steps in rows:
        gpu_model = gpu_name or ("" if arch is None or arch.on_gpu else CPU)
        seconds = (finished - started).total_seconds()
        out.append(Measured(shape_of(architecture, params or {}, gpu_model), seconds / steps))
    return out


def run_steps(run: TrainingRun) -> int:
    """A stored run's steps: what its trainer reported, else sd-scripts' count."""
    if run.total_steps:
        return run.total_steps
    params, dataset = run.params or {}, run.dataset
    images = dataset.image_count if dataset is not None else 0
    repeats = params.get("num_repeats") or (dataset.repeats if dataset is not None else 1)
    return total_steps(
        images,
        repeats,
        int(params.get("max_train_epochs") or 1),
        int(params.get("train_batch_size") or 1),
        max_train_steps=params.get("max_train_steps"),
        with_reg=run.regularization_dataset_id is not None,
    )


def estimated_duration_s(run: TrainingRun) -> float:
    """The duration estimated when the run was submitted (the prior for older runs)."""
    stored = (run.plan or {}).get("estimate") or {}
    if stored.get("duration_s"):
        return float(stored["duration_s"])
    gpu_model = CPU if not run.base_model.spec.on_gpu else ""
    return run_steps(run) * prior(
        shape_of(run.base_model.architecture, run.params or {}, gpu_model)
    )


@dataclass(frozen=True)
class Timing:
    """A new run's estimate: steps, time per step, expected start and where."""

    steps: int
    step: StepTime
    start_s: float | None  # None: no online place can take it now
    place: str  # where it is expected to start, "" when unknown
    gpu_model: str
    ahead: int  # queued runs ahead of it
    made_at: datetime = field(default_factory=timezone.now)
    counted: str = ""  # how the steps were counted, in words

    @property
    def duration_s(self) -> float:
        return self.steps * self.step.seconds

    @property
    def ready_s(self) -> float | None:
        return None if self.start_s is None else self.start_s + self.duration_s

    @property
    def ready_at(self) -> datetime | None:
        ready = self.ready_s
        return None if ready is None else self.made_at + timedelta(seconds=ready)

    def record(self) -> dict:
        """The estimate as a run stores it (its plan's "estimate")."""
        return {
            "steps": self.steps,
            "step_s": round(self.step.seconds, 4),
            "basis": self.step.basis,
            "runs": self.step.runs,
            "margin": round(self.step.margin, 3),
            "duration_s": round(self.duration_s, 1),
            "start_s": None if self.start_s is None else round(self.start_s),
            "gpu_model": self.gpu_model,
            "made_at": self.made_at.isoformat(),
        }


@dataclass(frozen=True)
class Outlook:
    """A stored run's estimate brought up to date."""

    starts_in_s: float | None  # queued: from now; None when not known or already started
    ready_in_s: float | None  # from now; None when finished or not known
    ready_at: datetime | None
    estimated_s: float  # the duration estimated at submit
    actual_s: float | None  # a finished run: what it took from start to end
    margin: float | None


@dataclass(frozen=True)
class Queued:
    """A queued run as the estimates need it: its place in the order and what it waits for."""

    pk: int
    owner_id: int
    priority: int
    waiting: Waiting


def _queued(usage: dict[int, float]) -> list[Queued]:
    """The queue in dispatch order (scheduler.queued_in_order), read as values: the memory
    each run needs and the duration estimated at its submit. Runs submitted before
    estimates were stored (no duration in their plan) are read whole, in one more query."""
    rows = queued_in_order(
        "vram_estimate_mib",
        "base_model__architecture",
        "plan__estimate__duration_s",
        usage=usage,
    )
    older = {row[0] for row in rows if not row[5]}
    durations: dict[int, float] = {}
    if older:
        runs = TrainingRun.objects.filter(pk__in=older).select_related("base_model", "dataset")
        durations = {run.pk: estimated_duration_s(run) for run in runs}
    queue = []
    for pk, owner_id, priority, need, architecture, duration in rows:
        arch = ARCHITECTURES.get(architecture)
        on_gpu = arch is None or arch.on_gpu
        duration = float(duration) if duration else durations.get(pk, 0.0)
        waiting = Waiting((need or 0) if on_gpu else None, duration)
        queue.append(Queued(pk, owner_id, priority, waiting))
    return queue


class Lab:
    """The queue and the places that train, as they are now."""

    def __init__(self, now: datetime | None = None):
        self.now = now or timezone.now()
        self._history: dict[str, list[Measured]] = {}
        nodes = list(GPUNode.objects.online())
        on_place = TrainingRun.objects.filter(status__in=ON_GPU).select_related(
            "base_model", "dataset"
        )
        busy_gpu, busy_cpu = {}, {}
        for run in on_place:
            (busy_gpu if run.gpu_id else busy_cpu)[run.gpu_id or run.node_id] = run
        gpus = GPU.objects.filter(node__in=nodes, enabled=True).select_related("node")
        self.places = [
            Place(
                f"gpu:{g.pk}",
                g.name,
                g.total_mib,
                self._left_s(busy_gpu.get(g.pk)),
                f"{g.node.name} GPU {g.index}",
            )
            for g in gpus
        ] + [
            Place(f"cpu:{n.pk}", CPU, None, self._left_s(busy_cpu.get(n.pk)), n.name) for n in nodes
        ]
        self.usage = gpu_hours_by_owner(self.now)
        self.queue = _queued(self.usage)
        self._index = {entry.pk: i for i, entry in enumerate(self.queue)}
        self._starts: list[tuple[float, Place] | None] | None = None
        self._ahead_new: dict[int, list[Waiting]] = {}  # by owner id
        self._free_new: dict[int, dict[str, float]] = {}

    def history(self, architecture: str) -> list[Measured]:
        if architecture not in self._history:
            self._history[architecture] = history(architecture)
        return self._history[architecture]

    def step_time(self, shape: Shape) -> StepTime:
        return estimates.step_time(shape, self.history(shape.architecture), prior)

    def _left_s(self, run: TrainingRun | None) -> float:
        if run is None:
            return 0.0
        elapsed = (self.now - run.started_at).total_seconds() if run.started_at else 0.0
        return estimates.remaining_s(
            step=run.step,
            total_steps=run.total_steps,
            speed=run.speed,
            elapsed_s=elapsed,
            duration_s=estimated_duration_s(run),
        )

    @staticmethod
    def _waiting(run: TrainingRun) -> Waiting:
        need = (run.vram_estimate_mib or 0) if run.base_model.spec.on_gpu else None
        return Waiting(need, estimated_duration_s(run))

    def ahead_of(self, run: TrainingRun) -> list[Queued]:
        """The queued runs dispatch takes before `run` (which need not be saved yet): those
        before it in the queue; for a run not in it, every run of a higher priority or of
        the same priority and a smaller or equal fair share (they waited longer)."""
        index = self._index.get(run.pk)
        if index is not None:
            return self.queue[:index]
        key = (-run.priority, self.usage.get(run.owner_id, 0.0))
        return [e for e in self.queue if (-e.priority, self.usage.get(e.owner_id, 0.0)) <= key]

    def ahead_of_new(self, owner) -> list[Waiting]:
        """The queued runs dispatch would take before a run `owner` submits now."""
        if owner.pk not in self._ahead_new:
            ahead = self.ahead_of(TrainingRun(owner=owner, priority=0))
            self._ahead_new[owner.pk] = [e.waiting for e in ahead]
        return self._ahead_new[owner.pk]

    def new_start(self, owner, need_mib: int | None) -> tuple[float, Place] | None:
        """When and where a run `owner` submits now, needing `need_mib`, is expected to
        start: after the runs ahead of it, walked once per owner whatever the need (the
        page weighs several GPU sizes)."""
        if owner.pk not in self._free_new:
            self._free_new[owner.pk] = estimates.free_after(self.places, self.ahead_of_new(owner))
        return estimates.start_after(self.places, self._free_new[owner.pk], need_mib)

    def position(self, run: TrainingRun) -> int | None:
        """A queued run's place in the queue (1 = next), or None when it is not queued:
        scheduler.queue_position read from this Lab's queue, so a page's places and start
        times come from one reading."""
        index = self._index.get(run.pk)
        return None if index is None else index + 1

    def start(self, run: TrainingRun) -> tuple[float, Place] | None:
        """When and where a queued run is expected to start (None: no place can take it).

        Every queued run's start comes from one pass over the queue
        (estimates.starts_in_order), made once per Lab: a page of queued runs costs no
        more than one of them.
        """
        index = self._index.get(run.pk)
        if index is None:  # left the queue since it was read: place it as a new run would be
            ahead = [e.waiting for e in self.ahead_of(run)]
            return estimates.expected_start(self.places, ahead, self._waiting(run).need_mib)
        if self._starts is None:
            self._starts = estimates.starts_in_order(self.places, [e.waiting for e in self.queue])
        return self._starts[index]

    def new_run(
        self, owner, architecture: str, params: dict, *, steps: int, need_mib: int | None
    ) -> Timing:
        """The estimate of a run `owner` would submit now with these final parameters."""
        ahead = self.ahead_of_new(owner)
        start = self.new_start(owner, need_mib)
        gpu_model = start[1].name if start else ("" if need_mib is not None else CPU)
        step = self.step_time(shape_of(architecture, params, gpu_model))
        return Timing(
            steps=steps,
            step=step,
            start_s=None if start is None else start[0],
            place=start[1].label if start else "",
            gpu_model=gpu_model,
            ahead=len(ahead),
            made_at=self.now,
        )

    def outlook(self, run: TrainingRun) -> Outlook:
        """A stored run's estimate as of now."""
        estimated = estimated_duration_s(run)
        stored = (run.plan or {}).get("estimate") or {}
        margin = stored.get("margin")
        if run.status in TERMINAL:
            actual = None
            if run.status == RunStatus.SUCCEEDED and run.started_at and run.finished_at:
                actual = (run.finished_at - run.started_at).total_seconds()
            return Outlook(None, None, None, estimated, actual, margin)
        starts_in = None
        if run.status in ON_GPU:
            ready_in = self._left_s(run)
        elif run.status == RunStatus.QUEUED:
            start = self.start(run)
            starts_in = None if start is None else start[0]
            ready_in = None if starts_in is None else starts_in + estimated
        else:  # draft or waiting for approval: no start to speak of
            ready_in = None
        ready_at = None if ready_in is None else self.now + timedelta(seconds=ready_in)
        return Outlook(starts_in, ready_in, ready_at, estimated, None, margin)


def estimated_and_actual(run: TrainingRun) -> tuple[float | None, float | None]:
    """A run's duration as estimated at submit and as it was (start to end of a succeeded
    run); None for what is not known."""
    stored = ((run.plan or {}).get("estimate") or {}).get("duration_s")
    actual = None
    if run.status == RunStatus.SUCCEEDED and run.started_at and run.finished_at:
        actual = (run.finished_at - run.started_at).total_seconds()
    return (float(stored) if stored else None), actual


ACCURACY_WINDOW = 100  # the latest succeeded runs the admin's summary looks at


def estimate_accuracy() -> estimates.Accuracy | None:
    """How the latest succeeded runs' estimated durations compared with what they took."""
    runs = (
        TrainingRun.objects.filter(status=RunStatus.SUCCEEDED, started_at__isnull=False)
        .exclude(finished_at=None)
        .order_by("-finished_at")
        .only("plan", "status", "started_at", "finished_at")[:ACCURACY_WINDOW]
    )
    pairs = [estimated_and_actual(run) for run in runs]
    return estimates.accuracy([(e, a) for e, a in pairs if e and a])
