"""Trade-offs the new-run page offers beside the memory plan: a smaller resolution that needs
no saver that slows the run, or planning for another GPU size that is ready sooner (or needs
no such saver but frees up later). Reads only; `training.planning.plan_run` calls it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sdscripts import vram
from sdscripts.speed import slowdown, speed_savers
from training.estimates import about
from training.timing import Lab, Timing, shape_of

RESOLUTION_STEP = 64
SMALLEST_OFFERED = 256  # below this sd-scripts models learn little; never offered
BETTER_BY = 0.1  # another GPU size is offered when it is ready this much sooner


@dataclass(frozen=True)
class Tradeoff:
    """One alternative, in plain words, with the form value that takes it."""

    text: str
    field: str  # the form field the "use it" button sets ("p_resolution", "gpu_mib")
    value: int


def _planner_slowdown(architecture: str, requested: dict, planned: dict) -> float:
    """How much slower the savers the planner added make a step."""
    before = slowdown(architecture, speed_savers(architecture, requested))
    return slowdown(architecture, speed_savers(architecture, planned)) / before


def _saver_words(planned: vram.Plan) -> str:
    """The savers of a plan that slow a run, in plain words with their cost."""
    slow = [s for s in planned.savers if vram.SAVERS[s.name].slowdown > 1]
    if not slow:
        return "it needs no saver that slows it"
    return "it " + " and ".join(f"{s.plain} ({s.cost})" for s in slow)


def smaller_resolution(
    lab: Lab,
    architecture: str,
    requested: dict,
    chosen: vram.Plan,
    timing: Timing,
    *,
    correction: float,
    lowest: float | None,
) -> Tradeoff | None:
    """The largest resolution below the requested one at which the run needs no saver that
    slows it, when the chosen plan needs one; None otherwise."""
    if _planner_slowdown(architecture, requested, chosen.params) <= 1.0:
        return None
    current = int(requested.get("resolution") or 0)
    floor = max(SMALLEST_OFFERED, int(lowest or 0))
    size = (current - 1) // RESOLUTION_STEP * RESOLUTION_STEP
    while size >= floor:
        trial = {**requested, "resolution": size}
        alt = vram.plan(architecture, trial, chosen.budget_mib, correction=correction)
        if alt.fits and _planner_slowdown(architecture, requested, alt.params) <= 1.0:
            shape = shape_of(architecture, alt.params, timing.gpu_model)
            duration = timing.steps * lab.step_time(shape).seconds
            return Tradeoff(
                f"At {size} px instead of {current} px it needs no saver that slows it and "
                f"takes {about(duration)} instead of {about(timing.duration_s)}, "
                "at a little less detail.",
                "p_resolution",
                size,
            )
        size -= RESOLUTION_STEP
    return None


def other_gpu_size(
    lab: Lab,
    architecture: str,
    requested: dict,
    chosen: vram.Plan,
    timing: Timing,
    *,
    owner,
    correction: float,
) -> Tradeoff | None:
    """Planning for another GPU size of the lab: the one ready soonest when it beats this
    plan by BETTER_BY, else (when this plan slows the run) one that needs no slowing saver,
    however long it waits."""
    if timing.ready_s is None:
        return None
    sizes = sorted({p.total_mib for p in lab.places if p.total_mib}, reverse=True)
    options = []
    for size in sizes:
        if size == chosen.budget_mib:
            continue
        alt = vram.plan(architecture, requested, size, correction=correction)
        start = lab.new_start(owner, alt.estimate_mib) if alt.fits else None
        if start is None:
            continue
        step = lab.step_time(shape_of(architecture, alt.params, start[1].name))
        ready = start[0] + timing.steps * step.seconds
        options.append((ready, size, alt, start))
    if not options:
        return None
    slow_now = _planner_slowdown(architecture, requested, chosen.params) > 1.0
    best = min(options)
    if best[0] > timing.ready_s * (1 - BETTER_BY):
        calm = [o for o in options if _planner_slowdown(architecture, requested, o[2].params) <= 1]
        if not (slow_now and calm):
            return None
        best = min(calm)
    ready, size, alt, (start_s, place) = best
    when = "is free now" if start_s < 60 else f"is free in {about(start_s)}"
    return Tradeoff(
        f"Planned for a {size / 1024:.0f} GB GPU, {_saver_words(alt)}"
        f"; {place.label} ({place.name}) {when}: ready in {about(ready)} instead of "
        f"{about(timing.ready_s)}.",
        "gpu_mib",
        size,
    )
