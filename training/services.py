"""Services that change runs: submit, approve, cancel, run again, reprioritise."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.backends.base.operations import BaseDatabaseOperations
from django.utils import timezone

from training import params as params_mod
from training import vram
from training.choices import ON_GPU, RunStatus
from training.lifecycle import record_action, transition
from training.models import GPU, BaseModel, Preset, TrainingRun

logger = logging.getLogger(__name__)

# Planning budget when the lab has no GPU registered yet (a 24 GB card).
DEFAULT_BUDGET_MIB = 24576


def _dispatch_soon() -> None:
    """Run dispatch after commit; a failing dispatch never fails the caller's action."""

    def go() -> None:
        from training.scheduler import dispatch

        try:
            dispatch()
        except Exception:
            logger.exception("Dispatch after a queue change failed")

    transaction.on_commit(go)


def largest_gpu_mib() -> int | None:
    """Total memory of the largest enabled GPU on an enabled node, or None when none exists."""
    sizes = GPU.objects.filter(enabled=True, node__enabled=True).values_list("total_mib", flat=True)
    return max(sizes, default=None)


@transaction.atomic
def default_sample_prompts(dataset, count: int = 2) -> str:
    """Prompts for a run that samples but was given none: the dataset's first captions.

    Captions are what the LoRA learns, so they make the samples show its progress; a dataset
    without captions falls back to its trigger word.
    """
    prompts: list[str] = []
    for caption in (
        dataset.images.exclude(caption="").order_by("pk").values_list("caption", flat=True)[:50]
    ):
        line = " ".join(caption.split())
        if line and line not in prompts:
            prompts.append(line)
        if len(prompts) == count:
            break
    if not prompts and dataset.trigger_word.strip():
        prompts = [dataset.trigger_word.strip()]
    return "\n".join(prompts)


def submit_run(
    owner,
    *,
    dataset,
    base_model: BaseModel,
    preset: Preset | None = None,
    params: dict,
    regularization=None,
    extra_flags=(),
    use_planner: bool = True,
    by=None,
    name: str = "",
    sample_prompts: str = "",
    priority: int = 0,
    rerun_of: TrainingRun | None = None,
) -> TrainingRun:
    """Validate, plan and queue a new run (or send it for approval); returns it.

    1. Check the base model, preset and datasets; students get the preset's rules.
    2. Validate the parameters (ParamError on bad values; nothing is written then).
    3. Plan the VRAM against the lab's largest GPU (or a 24 GB default), choosing memory
       savers when `use_planner`; a run no GPU of the lab can hold is refused.
    4. Save the run and move it draft → queued (or pending approval); dispatch on commit.
    """
    arch = base_model.architecture
    student = not owner.is_staff
    if not base_model.enabled:
        raise ValidationError(f"Base model {base_model.name} is disabled.")
    if preset is not None and preset.architecture != arch:
        raise ValidationError(f"Preset {preset.name} is for another architecture.")
    for ds in (dataset, regularization):
        if ds is not None and not ds.is_visible_to(owner):
            raise ValidationError(f"Dataset {ds.name} is not available to {owner}.")
    if dataset is None:
        raise ValidationError("A run needs a dataset.")
    if extra_flags and student:
        raise PermissionDenied("Only staff may pass extra sd-scripts flags.")
    values = params_mod.validate_params(
        arch,
        dict(params or {}),
        rules=preset.student_rules if (preset is not None and student) else None,
        base=dict(preset.values) if preset is not None else None,
        student=student,
    )
    flags = params_mod.validate_extra_flags(arch, list(extra_flags)) if extra_flags else ()

    largest = largest_gpu_mib()
    plan = vram.plan(arch, values, largest or DEFAULT_BUDGET_MIB, allow_savers=use_planner)
    if not plan.fits and largest is not None:
        raise ValidationError(f"No GPU of the lab can hold this run: {plan.message}")
    if use_planner:
        values = dict(plan.params)

    if not sample_prompts.strip() and values.get("sample_every_n_epochs"):
        sample_prompts = default_sample_prompts(dataset)
    run = TrainingRun(
        owner=owner,
        name=name,
        dataset=dataset,
        regularization_dataset=regularization,
        base_model=base_model,
        preset=preset,
        params=values,
        extra_flags=list(flags),
        priority=priority,
        sample_prompts=sample_prompts,
        rerun_of=rerun_of,
        vram_estimate_mib=plan.estimate_mib,
        plan={
            "fits": plan.fits,
            "estimate_mib": plan.estimate_mib,
            "budget_mib": plan.budget_mib,
            "savers": [
                {"name": s.name, "reason": s.reason, "saved_mib": s.saved_mib} for s in plan.savers
            ],
            "message": plan.message,
        },
    )
    run.full_clean()
    run.save()
    approval = settings.LORASTUDIO_REQUIRE_APPROVAL and student
    to = RunStatus.PENDING_APPROVAL if approval else RunStatus.QUEUED
    transition(run, to, by=by or owner, note=plan.message)
    if to == RunStatus.QUEUED:
        _dispatch_soon()
    return run


@transaction.atomic
def approve_run(run: TrainingRun, *, by) -> TrainingRun:
    """Staff approve a run waiting for approval: it joins the queue."""
    if not getattr(by, "is_staff", False):
        raise PermissionDenied("Only staff approve runs.")
    transition(
        run, RunStatus.QUEUED, by=by, expect=RunStatus.PENDING_APPROVAL, note=f"Approved by {by}."
    )
    _dispatch_soon()
    return run


@transaction.atomic
def cancel_run(run: TrainingRun, *, by=None) -> TrainingRun:
    """Cancel a run: at once when it has not started, else ask its runner to stop it."""
    run.refresh_from_db()
    who = f" by {by}" if by is not None else ""
    if run.is_terminal:
        raise ValidationError(f"Run #{run.pk} has already finished ({run.get_status_display()}).")
    if run.status in (RunStatus.PREPARING, RunStatus.RUNNING):
        # The runner polls this flag about once a second and stops the process group.
        if run.cancel_requested_at is None:
            now = timezone.now()
            TrainingRun.objects.filter(pk=run.pk).update(cancel_requested_at=now)
            run.cancel_requested_at = now
            record_action(run, by=by, note=f"Cancel requested{who}.")
        return run
    # Draft, pending, queued, or assigned but not yet picked up by its node's worker (the
    # runner re-checks the status on entry and does nothing then).
    transition(run, RunStatus.CANCELLED, by=by, expect=run.status, note=f"Cancelled{who}.")
    if run.status in ON_GPU or run.gpu_id or run.node_id:
        _dispatch_soon()
    return run


def rerun(run: TrainingRun, *, by=None) -> TrainingRun:
    """Submit a new run with the same dataset, model, preset and parameters."""
    if by is not None and not (by.is_staff or by.pk == run.owner_id):
        raise PermissionDenied("You can only run your own runs again.")
    return submit_run(
        run.owner,
        dataset=run.dataset,
        base_model=run.base_model,
        preset=run.preset,
        params=dict(run.params),
        regularization=run.regularization_dataset,
        extra_flags=tuple(run.extra_flags or ()),
        use_planner=False,
        by=by,
        name=run.name,
        sample_prompts=run.sample_prompts,
        priority=run.priority,
        rerun_of=run,
    )


@transaction.atomic
def reprioritise_run(run: TrainingRun, *, priority: int, by) -> TrainingRun:
    """Staff change a waiting run's priority (higher runs first)."""
    if not getattr(by, "is_staff", False):
        raise PermissionDenied("Only staff change priorities.")
    low, high = BaseDatabaseOperations.integer_field_ranges["SmallIntegerField"]
    if not low <= priority <= high:  # SQLite would store it; PostgreSQL would fail later
        raise ValidationError(f"A priority is a whole number from {low} to {high}.")
    run.refresh_from_db()
    if run.is_terminal:
        raise ValidationError(f"Run #{run.pk} has already finished.")
    old = run.priority
    run.priority = priority
    run._change_reason = f"priority {old} → {priority}"
    run.save(update_fields=["priority"])
    record_action(run, by=by, note=f"Priority {old} → {priority} by {by}.")
    _dispatch_soon()
    return run
