"""When a run will be ready: its time per step from the lab's history and its start from the
queue. Pure: plain values in and out, no Django, no I/O (training.timing gathers the values).

Duration = steps x seconds per step. Seconds per step come, in this order, from
1. the latest finished runs of the same shape (architecture, GPU model, resolution, batch and
   memory savers): their median, each run's figure being its whole time from start to end
   divided by its steps (so loading, caching, samples and saving are spread over the steps);
2. runs of the same architecture in other shapes: the median of how far each was from the
   prior, applied to this run's prior (same-GPU runs preferred);
3. the prior (sdscripts.speed): the registry's figure scaled by pixels, batch and savers.
Start = when a place that fits frees up, after the runs ahead of it in the queue have each
taken the place that fits them and frees first. docs/estimates.md explains both and their
limits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import median

WINDOW = 20  # the latest comparable runs that count
MIN_MARGIN = 0.1  # never claim better than ±10 %: a busy node or a slow disk varies that much
ONE_RUN_MARGIN = 0.25
SIMILAR_MARGIN = 0.5
PRIOR_MARGIN = 1.0  # the prior may be off by half or double


@dataclass(frozen=True)
class Shape:
    """What makes two runs comparable in speed."""

    architecture: str
    gpu_model: str  # "" when not known yet: any GPU model matches
    resolution: int
    batch: int
    savers: tuple[str, ...]  # sdscripts.speed.speed_savers


@dataclass(frozen=True)
class Measured:
    """One finished run: its shape and its wall-clock seconds per step."""

    shape: Shape
    step_s: float


@dataclass(frozen=True)
class StepTime:
    """Seconds per step and how sure the figure is."""

    seconds: float
    basis: str  # "same": runs like it; "similar": same architecture; "prior": no runs
    runs: int  # runs it rests on
    spread: float  # half the range of those runs' figures over their median (0 for one)
    margin: float  # how far a duration may be off, as a fraction (0.2 = ±20 %)

    def words(self) -> str:
        """How sure, in plain words."""
        pct = round(100 * self.margin)
        if self.basis == "same":
            runs = f"{self.runs} finished run{'s' if self.runs != 1 else ''} like it"
            if self.margin <= 0.15:
                return f"fairly sure: within about ±{pct} % ({runs})"
            return f"roughly: within about ±{pct} % ({runs})"
        if self.basis == "similar":
            return (
                f"a rough guess (±{pct} %) from {self.runs} run{'s' if self.runs != 1 else ''}"
                " of this model with other settings"
            )
        return "a guess: no run like it has finished yet, so it may take half or twice as long"


def _matches(a: Shape, b: Shape) -> bool:
    gpu_ok = not a.gpu_model or not b.gpu_model or a.gpu_model == b.gpu_model
    return gpu_ok and (a.architecture, a.resolution, a.batch, a.savers) == (
        b.architecture,
        b.resolution,
        b.batch,
        b.savers,
    )


def step_time(
    shape: Shape, history: Sequence[Measured], prior: Callable[[Shape], float]
) -> StepTime:
    """Seconds per step for `shape` from `history` (newest first), else from `prior`."""
    usable = [m for m in history if m.step_s > 0 and math.isfinite(m.step_s)]
    same = [m.step_s for m in usable if _matches(m.shape, shape)][:WINDOW]
    if same:
        middle = median(same)
        spread = (max(same) - min(same)) / 2 / middle if len(same) > 1 else 0.0
        margin = ONE_RUN_MARGIN if len(same) == 1 else max(MIN_MARGIN, spread)
        return StepTime(middle, "same", len(same), spread, min(margin, PRIOR_MARGIN))
    kin = [m for m in usable if m.shape.architecture == shape.architecture]
    if shape.gpu_model and any(m.shape.gpu_model == shape.gpu_model for m in kin):
        kin = [m for m in kin if m.shape.gpu_model == shape.gpu_model]
    ratios = [m.step_s / p for m in kin[:WINDOW] if (p := prior(m.shape)) > 0]
    if ratios:
        middle = median(ratios)
        spread = (max(ratios) - min(ratios)) / 2 / middle if len(ratios) > 1 else 0.0
        return StepTime(prior(shape) * middle, "similar", len(ratios), spread, SIMILAR_MARGIN)
    return StepTime(prior(shape), "prior", 0, 0.0, PRIOR_MARGIN)


# --- the queue -------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """A GPU (or a node's CPU slot for demo runs) and when its current run ends."""

    key: str
    name: str  # the GPU model, "CPU" for a demo slot
    total_mib: int | None  # None: a CPU slot (demo runs only)
    free_in_s: float  # 0 when idle
    label: str = ""  # where it is, e.g. "gpu-a GPU 0"


@dataclass(frozen=True)
class Waiting:
    """A queued run ahead: the memory it needs (None: a demo run) and how long it takes."""

    need_mib: int | None
    duration_s: float


def _fits(place: Place, need_mib: int | None) -> bool:
    if need_mib is None or place.total_mib is None:
        return need_mib is None and place.total_mib is None
    return place.total_mib >= need_mib


def _first_free(places: Sequence[Place], free: dict[str, float], need: int | None):
    options = [p for p in places if _fits(p, need)]
    return min(options, key=lambda p: (free[p.key], p.total_mib or 0, p.key), default=None)


def _take_in_order(
    places: Sequence[Place], runs: Sequence[Waiting], free: dict[str, float]
) -> list[tuple[float, Place] | None]:
    """Each run, in queue order, takes the place that fits it and frees first (the smaller
    place on a tie, as dispatch fits best); a run that fits nowhere blocks nothing, as in
    dispatch. Moves `free` on; returns each run's start and place (None: nowhere)."""
    fitting: dict[int | None, list[Place]] = {}  # a queue holds few distinct needs
    starts: list[tuple[float, Place] | None] = []
    for run in runs:
        options = fitting.get(run.need_mib)
        if options is None:
            options = fitting[run.need_mib] = [p for p in places if _fits(p, run.need_mib)]
        place = min(options, key=lambda p: (free[p.key], p.total_mib or 0, p.key), default=None)
        if place is None:
            starts.append(None)
            continue
        starts.append((free[place.key], place))
        free[place.key] += max(0.0, run.duration_s)
    return starts


def _free_now(places: Sequence[Place]) -> dict[str, float]:
    return {p.key: max(0.0, p.free_in_s) for p in places}


def free_after(places: Sequence[Place], ahead: Sequence[Waiting]) -> dict[str, float]:
    """Seconds until each place is free once the runs ahead have run (`_take_in_order`)."""
    free = _free_now(places)
    _take_in_order(places, ahead, free)
    return free


def starts_in_order(
    places: Sequence[Place], queue: Sequence[Waiting]
) -> list[tuple[float, Place] | None]:
    """`expected_start` of every run of `queue` (in queue order), in one pass: each run's
    runs ahead are those before it, so the places' free times carry from one to the next."""
    return _take_in_order(places, queue, _free_now(places))


def start_after(
    places: Sequence[Place], free: dict[str, float], need_mib: int | None
) -> tuple[float, Place] | None:
    """When a run needing `need_mib` starts, and where, once the places are free at `free`
    (from free_after); None when no place can ever take it."""
    place = _first_free(places, free, need_mib)
    return None if place is None else (free[place.key], place)


def expected_start(
    places: Sequence[Place], ahead: Sequence[Waiting], need_mib: int | None
) -> tuple[float, Place] | None:
    """When a run needing `need_mib` starts, and where (after the runs ahead, `free_after`);
    None when no place can ever take it."""
    return start_after(places, free_after(places, ahead), need_mib)


# --- where a queued run goes (training.scheduler.dispatch) -------------------------------

# Finishes this close (a share of the earlier one) count as the same: estimates are rough.
FINISH_TOLERANCE = 0.1


@dataclass(frozen=True)
class Option:
    """A GPU a queued run could train on: when it could start there (0: free now), how long
    it would take there with the memory savers that GPU needs, and the room it has."""

    key: int
    start_s: float
    duration_s: float
    room_mib: int
    order: tuple = ()  # the last tie-break, e.g. (node name, GPU index)

    @property
    def finish_s(self) -> float:
        return self.start_s + self.duration_s


def choose_option(options: Sequence[Option], tolerance: float = FINISH_TOLERANCE) -> Option | None:
    """The GPU a run takes now, or the busy one it is better off waiting for.

    1. Of the GPUs free now, those that would finish the run within `tolerance` of the
       earliest are as good; of them, the one with the least room that holds it (best fit:
       roomy GPUs stay free for the runs that need them).
    2. A busy GPU is worth waiting for only when the run would finish there sooner than on
       any free GPU by more than `tolerance` (block swapping on a small GPU can cost more
       than waiting for a large one).
    """
    free = [o for o in options if o.start_s <= 0]
    pick = None
    if free:
        soonest = min(o.finish_s for o in free)
        good = [o for o in free if o.finish_s <= soonest * (1 + tolerance)]
        pick = min(good, key=lambda o: (o.room_mib, o.order))
    busy = [o for o in options if o.start_s > 0]
    if busy:
        wait = min(busy, key=lambda o: (o.finish_s, o.room_mib, o.order))
        if pick is None or wait.finish_s < soonest * (1 - tolerance):
            return wait
    return pick


def remaining_s(
    *, step: int, total_steps: int | None, speed: float | None, elapsed_s: float, duration_s: float
) -> float:
    """Seconds a running run still needs: from its own progress and speed when it reports
    them, else its estimated duration less the time it has run."""
    if total_steps and speed and speed > 0:
        return max(0.0, (total_steps - step) / speed)
    return max(0.0, duration_s - elapsed_s)


def about(seconds: float | None) -> str:
    """A duration in round words: "under a minute", "about 7 min", "about 2 h 10 min"."""
    if seconds is None:
        return "unknown"
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    if minutes >= 48 * 60:
        return f"about {round(minutes / 1440)} days"
    minutes = 10 * round(minutes / 10) if minutes >= 180 else minutes
    hours, rest = divmod(minutes, 60)
    return f"about {hours} h" + (f" {rest} min" if rest else "")


@dataclass(frozen=True)
class Accuracy:
    """How estimated durations compared with what the runs took."""

    runs: int
    median_error: float  # median of |estimate - actual| / actual
    within_25: int  # runs whose estimate was within 25 % of what they took
    bias: float  # median of (estimate - actual) / actual: > 0 means estimates run long


def accuracy(pairs: Sequence[tuple[float, float]]) -> Accuracy | None:
    """Accuracy of (estimated, actual) durations in seconds; None without a usable pair."""
    errors = [(est - act) / act for est, act in pairs if est and act and act > 0 and est > 0]
    if not errors:
        return None
    return Accuracy(
        runs=len(errors),
        median_error=median(abs(e) for e in errors),
        within_25=sum(abs(e) <= 0.25 for e in errors),
        bias=median(errors),
    )
