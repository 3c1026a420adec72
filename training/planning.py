"""The one plan path: what a run would be, for the submit service, the new-run page's live
plan, `manage.py train --dry-run` and the runner.

`plan_run` validates a request against the owner's limits, plans its memory against the lab's
GPU budget and says whether it may be queued; `RunPlan.job` and `job_for_run` build the exact
trainer job (argv, dataset TOML, sample prompts, image folders) through the same `build_job`
(training.trainer_job), so what a dry run shows is what the runner writes. Reads only;
services write.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError

from datasets.services import lint_dataset
from sdscripts import vram
from sdscripts.command import TrainJob, validate_extra_flags
from sdscripts.params import PARAMS, bounds, validate_params
from sdscripts.rules import samples_during_training
from sdscripts.steps import counted, total_steps
from training import advice
from training.licences import licence_refusal
from training.quotas import submit_refusals as quota_refusals
from training.selectors import (
    candidate_gpus,
    largest_gpu_mib,
    nowhere_has_files,
    unavailable_optimizers,
    vram_correction,
)
from training.timing import Lab, Timing
from training.trainer_job import build_job, datasets_of

# Planning budget when the lab has no GPU registered yet (a 24 GB card).
DEFAULT_BUDGET_MIB = 24576
# The placeholder for the run's number in a plan made before the run exists.
RUN_KEY_PLACEHOLDER = "{run}"


@dataclass(frozen=True)
class RunRequest:
    """What someone asks for: the raw inputs of a run, before any checking."""

    owner: Any
    base_model: Any
    dataset: Any = None
    preset: Any = None
    params: dict = field(default_factory=dict)  # overrides of the preset's values
    regularization: Any = None
    extra_flags: tuple[str, ...] = ()  # staff only: more sd-scripts options for this run
    sample_prompts: str = ""
    name: str = ""
    use_planner: bool = True  # let the planner add memory savers
    budget_mib: int | None = None  # plan for this GPU size, not the lab's largest


@dataclass(frozen=True)
class RunPlan:
    """The checked run: final parameters, memory plan, GPUs, dataset check and verdict."""

    request: RunRequest
    params: dict
    extra_flags: tuple[str, ...]
    sample_prompts: str
    vram: vram.Plan
    gpus: list[dict]
    lint: Any  # datasets.lint.LintReport, or None without a dataset
    blocking: tuple[str, ...]  # why it may not be queued; empty when it may
    correction: vram.Correction = vram.Correction()  # learned from the lab's measured peaks
    timing: Timing | None = None  # when it would be ready (None without a dataset)
    tradeoffs: tuple[advice.Tradeoff, ...] = ()  # alternatives the new-run page offers

    @property
    def architecture(self) -> str:
        return self.request.base_model.architecture

    def record(self) -> dict:
        """The plan as the run stores it (shown on its page and in the admin)."""
        return {
            "fits": self.vram.fits,
            "estimate_mib": self.vram.estimate_mib,
            "budget_mib": self.vram.budget_mib,
            "savers": saver_records(self.vram.savers),
            "message": self.vram.message,
            "correction": self.correction.factor,
            "correction_runs": self.correction.runs,
            "estimate": self.timing.record() if self.timing is not None else None,
            # Dispatch may plan the memory again for the GPU the run gets (training.placement).
            "planner": self.request.use_planner,
        }

    def job(self, node, *, run_key: str = RUN_KEY_PLACEHOLDER) -> TrainJob:
        """The trainer job this plan becomes on `node` (None: no node is online)."""
        r = self.request
        return build_job(
            owner=r.owner,
            base_model=r.base_model,
            datasets=datasets_of(r.dataset, r.regularization),
            params=self.params,
            sample_prompts=self.sample_prompts,
            extra_flags=self.extra_flags,
            name=r.name,
            run_key=run_key,
            node=node,
        )


def saver_records(savers) -> list[dict]:
    """Memory savers (sdscripts.vram.Saver) as a run's plan stores them."""
    return [
        {
            "name": s.name,
            "reason": s.reason,
            "saved_mib": s.saved_mib,
            "plain": s.plain,
            "cost": s.cost,
        }
        for s in savers
    ]


def _check_access(request: RunRequest) -> None:
    """Refusals that no parameter can fix (ValidationError or PermissionDenied)."""
    owner, base_model, preset = request.owner, request.base_model, request.preset
    if not base_model.enabled:
        raise ValidationError(f"Base model {base_model.name} is disabled.")
    if preset is not None and preset.architecture != base_model.architecture:
        raise ValidationError(f"Preset {preset.name} is for another architecture.")
    for dataset in (request.dataset, request.regularization):
        if dataset is not None and not dataset.is_visible_to(owner):
            raise ValidationError(f"Dataset {dataset.name} is not available to {owner}.")
    if request.extra_flags and not owner.is_staff:
        raise PermissionDenied("Only staff may pass extra sd-scripts flags.")


def default_sample_prompts(dataset, count: int = 2, *, trigger_word: str | None = None) -> str:
    """Prompts for a run that samples but was given none: the dataset's first captions.

    Captions are what the LoRA learns, so they make the samples show its progress; a dataset
    without captions falls back to the run's trigger word (`trigger_word`, else the
    dataset's).
    """
    trigger = (trigger_word or dataset.trigger_word).strip()
    prompts: list[str] = []
    captions = dataset.images.exclude(caption="").order_by("pk").values_list("caption", flat=True)
    for caption in captions[:50]:
        line = " ".join(caption.split())
        if line and line not in prompts:
            prompts.append(line)
        if len(prompts) == count:
            break
    if not prompts and trigger:
        prompts = [trigger]
    return "\n".join(prompts)


def plan_run(request: RunRequest) -> RunPlan:
    """Check and plan a run; raise for what no change of parameters can fix.

    1. Access: the base model is enabled, the preset matches it, the datasets are the
       owner's (or the lab's), extra flags only from staff (ValidationError, PermissionDenied).
    2. Parameters: the preset's values under the defaults, the request's overrides on top,
       and for students the preset's locks and bounds (ParamError names each bad field).
    3. Memory: plan against the given budget, else the lab's largest GPU, else 24 GB, with
       the correction the architecture's measured peaks call for (`vram_correction`); add
       memory savers when the request allows it.
    4. Verdict: every reason it may not be queued (a base model licence the owner has not
       accepted, the owner's quotas (training.quotas: runs at once, GPU-hours this week,
       image size, epochs, steps), no dataset, a dataset check error, no GPU of the lab
       holds it); empty means the submit service may queue it.
    5. Time (with a dataset): steps, seconds per step from the lab's history or the prior,
       the expected start after the queue ahead (training.timing), and the trade-offs worth
       offering (training.advice); docs/estimates.md.
    """
    _check_access(request)
    owner, preset, arch = request.owner, request.preset, request.base_model.architecture
    student = not owner.is_staff
    values = validate_params(
        arch,
        dict(request.params or {}),
        rules=preset.student_rules if (preset is not None and student) else None,
        base=dict(preset.values) if preset is not None else None,
        student=student,
    )
    # The preset's extra flags (staff curate them) come first; a request's only from staff.
    preset_flags = list(preset.extra_flags or ()) if preset is not None else []
    flags = validate_extra_flags(arch, [*preset_flags, *request.extra_flags])

    largest = largest_gpu_mib()
    budget = request.budget_mib or largest or DEFAULT_BUDGET_MIB
    correction = vram_correction(arch)
    memory = vram.plan(
        arch, values, budget, correction=correction.factor, allow_savers=request.use_planner
    )
    # Each GPU is planned from the requested values: its own savers, for its own size.
    gpus = candidate_gpus(arch, values, correction=correction.factor)
    requested = values  # before the planner's savers (the trade-offs start from these)
    if request.use_planner:
        values = dict(memory.params)

    blocking: list[str] = []
    if refusal := licence_refusal(owner, request.base_model):
        blocking.append(refusal)
    blocking += quota_refusals(owner, values, steps=_steps(request, values))
    if request.dataset is None:
        blocking.append("A run needs a dataset.")
    if not memory.fits and (largest is not None or request.budget_mib):
        blocking.append(f"No GPU of the lab can hold this run: {memory.message}")
    if no_files := nowhere_has_files(request.base_model):
        blocking.append(f"Base model: {no_files}.")
    optimizer = values.get("optimizer_type")
    if optimizer in (missing := unavailable_optimizers()):
        blocking.append(f"Optimizer {optimizer}: {missing[optimizer]}.")
    lint = timing = None
    tradeoffs: tuple[advice.Tradeoff, ...] = ()
    if request.dataset is not None:
        lint = lint_dataset(
            request.dataset,
            resolution=int(values.get("resolution") or 1024),
            trigger_word=values.get("class_tokens"),
        )
        blocking += [f"Dataset: {f.message} {f.action}" for f in lint.errors]
        timing, tradeoffs = _timing(request, requested, memory, correction.factor, values)

    prompts = request.sample_prompts
    if not prompts.strip() and samples_during_training(values) and request.dataset:
        prompts = default_sample_prompts(request.dataset, trigger_word=values.get("class_tokens"))
    return RunPlan(
        request=request,
        params=values,
        extra_flags=tuple(flags),
        sample_prompts=prompts,
        vram=memory,
        gpus=gpus,
        lint=lint,
        blocking=tuple(blocking),
        correction=correction,
        timing=timing,
        tradeoffs=tradeoffs,
    )


def _count(request: RunRequest, values: dict) -> tuple[tuple[int, int, int, int], dict]:
    """What the steps of a run with a dataset are counted from (sdscripts.steps)."""
    dataset = request.dataset
    count = (
        dataset.image_count,
        values.get("num_repeats") or dataset.repeats,
        int(values.get("max_train_epochs") or 1),
        int(values.get("train_batch_size") or 1),
    )
    how = {
        "max_train_steps": values.get("max_train_steps"),
        "with_reg": bool(request.regularization),
    }
    return count, how


def _steps(request: RunRequest, values: dict) -> int | None:
    """The steps the run would train (None without a dataset)."""
    if request.dataset is None:
        return None
    count, how = _count(request, values)
    return total_steps(*count, **how)


def _timing(
    request: RunRequest, requested: dict, memory: vram.Plan, correction: float, values: dict
) -> tuple[Timing, tuple[advice.Tradeoff, ...]]:
    """When the run would be ready (training.timing), and the trade-offs worth offering."""
    arch = request.base_model.architecture
    count, how = _count(request, values)
    steps = total_steps(*count, **how)
    lab = Lab()
    need = memory.estimate_mib if request.base_model.spec.on_gpu else None
    timing = lab.new_run(request.owner, arch, values, steps=steps, need_mib=need)
    timing = replace(timing, counted=counted(*count, **how))
    if not (request.use_planner and memory.fits and steps):
        return timing, ()
    preset, student = request.preset, not request.owner.is_staff
    rule = (preset.bounds or {}).get("resolution") if preset is not None and student else None
    lowest = bounds(PARAMS["resolution"], arch, rule)[0]
    options = []
    if preset is None or "resolution" not in (preset.locked or ()):
        options.append(
            advice.smaller_resolution(
                lab, arch, requested, memory, timing, correction=correction, lowest=lowest
            )
        )
    options.append(
        advice.other_gpu_size(
            lab, arch, requested, memory, timing, owner=request.owner, correction=correction
        )
    )
    return timing, tuple(o for o in options if o is not None)
