"""A queued run on each GPU: its memory plan there and how long it would take (read by
training.scheduler.dispatch, which picks with training.estimates.choose_option).

- Memory. A run submitted with the planner on (`plan["planner"]`) carries the savers the
  planner chose for the lab's largest GPU; on each GPU it is planned again for that GPU's
  size with the architecture's learned correction as it is now, adding the savers that GPU
  needs (sdscripts.vram.plan). A run submitted without it (staff turned it off, run again,
  run exactly again) keeps its parameters and stored estimate everywhere. Either way it fits
  a GPU only within the planner's safety margin (5 % of the GPU's memory).
- Time. Its steps times the time per step on that GPU model with those savers
  (training.timing: the lab's history, else the prior, each saver's cost included).
- Busy GPUs. One frees when its run's remaining time is up (its progress, else its
  estimate), plus the runs that chose to wait for it in this dispatch; a run past its
  estimate frees at an unknown time and is not waited for.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from functools import lru_cache

from sdscripts import vram
from training import estimates
from training.models import GPU, TrainingRun
from training.planning import saver_records
from training.selectors import vram_correction
from training.timing import estimated_duration_s, history, prior, run_steps, shape_of


@lru_cache(maxsize=4096)
def _plan(architecture: str, params_json: str, budget_mib: int, correction: float) -> vram.Plan:
    """sdscripts.vram.plan, remembered: dispatch plans every queued run for every GPU, every
    few seconds, and a run's parameters change only when it is placed. (Callers copy the
    plan's parameters before changing them.)"""
    return vram.plan(architecture, json.loads(params_json), budget_mib, correction=correction)


class Fitter:
    """Plans and times of queued runs on the lab's GPUs, for one dispatch."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._history: dict[str, list[estimates.Measured]] = {}
        self._corrections: dict[str, vram.Correction] = {}
        self._left: dict[int, float | None] | None = None  # GPU id -> its run's remaining s
        self._waiting: dict[int, float] = defaultdict(float)  # GPU id -> seconds waited for

    @staticmethod
    def replans(run: TrainingRun) -> bool:
        """Whether dispatch may choose the run's memory savers for the GPU it gets."""
        return bool((run.plan or {}).get("planner")) and not run.exact

    def correction(self, architecture: str) -> vram.Correction:
        if architecture not in self._corrections:
            self._corrections[architecture] = vram_correction(architecture)
        return self._corrections[architecture]

    def plan(self, run: TrainingRun, gpu: GPU) -> vram.Plan:
        """The run's memory plan on `gpu` (fits: within the planner's safety margin)."""
        arch = run.base_model.architecture
        if self.replans(run):
            params = json.dumps(run.params or {}, sort_keys=True)
            return _plan(arch, params, gpu.total_mib, self.correction(arch).factor)
        need = run.vram_estimate_mib or 0
        return vram.Plan(need <= vram.usable(gpu.total_mib), need, gpu.total_mib, run.params)

    def step_s(self, run: TrainingRun, gpu: GPU, plan: vram.Plan) -> float:
        arch = run.base_model.architecture
        if arch not in self._history:
            self._history[arch] = history(arch)
        shape = shape_of(arch, plan.params, gpu.name)
        return estimates.step_time(shape, self._history[arch], prior).seconds

    def duration_s(self, run: TrainingRun, gpu: GPU, plan: vram.Plan) -> float:
        """The run's expected time on `gpu` with `plan`'s parameters (0 without steps)."""
        steps = ((run.plan or {}).get("estimate") or {}).get("steps") or run_steps(run)
        return steps * self.step_s(run, gpu, plan) if steps else 0.0

    def free_in_s(self, gpu: GPU) -> float | None:
        """Seconds until `gpu` is free for a run placed now: its run's remaining time and the
        runs that wait for it; None when its run is past its estimate (its end is unknown)."""
        if self._left is None:
            self._left = {}
            runs = TrainingRun.objects.on_gpu().exclude(gpu=None).select_related("base_model")
            for run in runs:
                elapsed = (self.now - run.started_at).total_seconds() if run.started_at else 0.0
                left = estimates.remaining_s(
                    step=run.step,
                    total_steps=run.total_steps,
                    speed=run.speed,
                    elapsed_s=elapsed,
                    duration_s=estimated_duration_s(run),
                )
                self._left[run.gpu_id] = left if left > 0 else None
        if gpu.pk in self._left and self._left[gpu.pk] is None:
            return None
        return self._left.get(gpu.pk, 0.0) + self._waiting[gpu.pk]

    def take(self, gpu: GPU, duration_s: float) -> None:
        """A run takes `gpu` now or waits for it: the runs after it count it."""
        self._waiting[gpu.pk] += duration_s

    def record(self, run: TrainingRun, plan: vram.Plan, gpu: GPU) -> dict:
        """The run's stored plan once planned again for `gpu`: its estimate, the savers added
        there (after those chosen at submit) and its expected time there."""
        record = dict(run.plan or {})
        correction = self.correction(run.base_model.architecture)
        record.update(
            fits=plan.fits,
            estimate_mib=plan.estimate_mib,
            budget_mib=plan.budget_mib,
            message=plan.message,
            correction=correction.factor,
            correction_runs=correction.runs,
            savers=[*record.get("savers", []), *saver_records(plan.savers)],
        )
        if record.get("estimate"):
            step_s = self.step_s(run, gpu, plan)
            steps = record["estimate"].get("steps") or 0
            record["estimate"] = {
                **record["estimate"],
                "step_s": round(step_s, 4),
                "duration_s": round(steps * step_s, 1),
                "gpu_model": gpu.name,
            }
        return record
