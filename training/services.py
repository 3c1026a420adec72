"""Services that change runs: submit, approve, cancel, run again, reprioritise."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.backends.base.operations import BaseDatabaseOperations
from django.utils import timezone

from training.choices import ON_GPU, RunStatus
from training.lifecycle import record_action, transition
from training.models import BaseModel, Preset, TrainingRun
from training.planning import RunPlan, RunRequest, plan_run
from training.provenance.exact import submit_refusals

logger = logging.getLogger(__name__)

PURPOSE_MAX_CHARS = 2000
# C0 controls but tab and line feed, DEL and C1 controls: nothing a written purpose needs.
_CONTROL = dict.fromkeys([*range(0, 9), *range(11, 32), 127, *range(128, 160)])


def _dispatch_soon() -> None:
    """Run dispatch after commit; a failing dispatch never fails the caller's action."""

    def go() -> None:
        from training.scheduler import dispatch

        try:
            dispatch()
        except Exception:
            logger.exception("Dispatch after a queue change failed")

    transaction.on_commit(go)


class AlreadySubmitted(Exception):
    """The form was submitted before: `run` is the run it created (nothing new is written)."""

    def __init__(self, run: TrainingRun):
        self.run = run
        super().__init__(f"This form was already submitted: it created run #{run.pk}.")


def _lock_owner(owner) -> None:
    """Serialise the owner's submits until commit (their limit and form tokens are checked
    under it, so a double submit cannot pass both). PostgreSQL locks the user's row; SQLite
    transactions here begin IMMEDIATE, which already serialises every writer."""
    list(get_user_model().objects.select_for_update().filter(pk=owner.pk).values_list("pk"))


@transaction.atomic
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
    exact: bool = False,
    form_token: uuid.UUID | None = None,
    budget_mib: int | None = None,
    evaluate_after: bool | None = None,
    resume: dict | None = None,
) -> TrainingRun:
    """Plan a new run and queue it (or send it for approval); returns it.

    0. Lock the owner's submits; a `form_token` that already created a run of this owner
       raises AlreadySubmitted with that run (a form posted twice makes one run).
    1. Plan it (training.planning.plan_run): access, the owner's limit of unfinished runs,
       parameters, memory, dataset check. Its refusals propagate (ValidationError,
       PermissionDenied, ParamError); a plan with blocking reasons is refused with all of
       them. Nothing is written then. With `exact` (run `rerun_of` exactly again), also
       every input that is no longer `rerun_of`'s (training.provenance.exact).
    2. Save the run with the plan's parameters, prompts, memory plan (planned for
       `budget_mib` when given, else the lab's largest GPU) and time estimate; `resume`
       holds the fields of a run that continues another (training.resume).
    3. Move it draft → queued (or pending approval); dispatch on commit.
    """
    _lock_owner(owner)
    if form_token is not None:
        earlier = TrainingRun.objects.filter(owner=owner, form_token=form_token).first()
        if earlier is not None:
            raise AlreadySubmitted(earlier)
    plan = plan_run(
        RunRequest(
            owner=owner,
            base_model=base_model,
            dataset=dataset,
            preset=preset,
            params=dict(params or {}),
            regularization=regularization,
            extra_flags=tuple(extra_flags),
            sample_prompts=sample_prompts,
            name=name,
            use_planner=use_planner,
            budget_mib=budget_mib,
        )
    )
    refusals = list(plan.blocking)
    if exact:
        refusals += _exact_refusals(rerun_of, plan)
    if refusals:
        raise ValidationError(refusals)
    run = TrainingRun(
        owner=owner,
        name=name,
        dataset=dataset,
        regularization_dataset=regularization,
        base_model=base_model,
        preset=preset,
        params=plan.params,
        extra_flags=list(plan.extra_flags),
        priority=priority,
        sample_prompts=plan.sample_prompts,
        rerun_of=rerun_of,
        exact=exact,
        vram_estimate_mib=plan.vram.estimate_mib,
        plan=plan.record(),
        form_token=form_token,
        # Not given: the preset's setting (runs without a preset are evaluated).
        evaluate_after=(
            evaluate_after
            if evaluate_after is not None
            else (preset.evaluate_after if preset is not None else True)
        ),
        **(resume or {}),
    )
    run.full_clean()
    run.save()
    approval = settings.LORASTUDIO_REQUIRE_APPROVAL and not owner.is_staff
    to = RunStatus.PENDING_APPROVAL if approval else RunStatus.QUEUED
    transition(run, to, by=by or owner, note=plan.vram.message)
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


def _exact_refusals(original: TrainingRun | None, plan: RunPlan) -> list[str]:
    """Why a plan would not repeat `original` exactly (its inputs, then its parameters)."""
    if original is None:
        return ["“Run exactly again” needs the run to repeat."]
    reasons = submit_refusals(original)
    changed = sorted(
        key
        for key in set(plan.params) | set(original.params)
        if plan.params.get(key) != original.params.get(key)
    )
    if changed:
        reasons.append(
            f"The parameters would not be those of run #{original.pk} ({', '.join(changed)}): "
            "its preset or the lab's rules changed since."
        )
    if list(plan.extra_flags) != list(original.extra_flags or ()):
        reasons.append(f"The extra flags would not be those of run #{original.pk}.")
    if plan.sample_prompts != original.sample_prompts:
        reasons.append(f"The sample prompts would not be those of run #{original.pk}.")
    return reasons


def rerun(run: TrainingRun, *, by=None, exact: bool = False) -> TrainingRun:
    """Submit a new run with the same dataset, model, preset and parameters.

    With `exact`, "run exactly again": the same dataset *content*, parameters and model
    files as `run` trained with (its provenance), refused with every reason when one of them
    changed since; the runner checks again before the trainer starts.
    """
    if by is not None and not (by.is_staff or by.pk == run.owner_id):
        raise PermissionDenied("You can only run your own runs again.")
    return submit_like(run, by=by, rerun_of=run, exact=exact)


def submit_like(run: TrainingRun, *, by=None, **links) -> TrainingRun:
    """Submit a new run with `run`'s owner, dataset, model, preset, parameters (as they are,
    without the planner), prompts, priority and evaluation choice; `links` say how the two
    are related (`rerun_of`/`exact`, or `resume`). Run again and resume both use it."""
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
        evaluate_after=run.evaluate_after,
        **links,
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


@transaction.atomic
def set_purpose(run: TrainingRun, purpose: str, *, by) -> TrainingRun:
    """The owner (or staff) says why the run was made; its report shows it. Control
    characters are dropped; more than PURPOSE_MAX_CHARS characters is refused unchanged."""
    if not (by.is_staff or by.pk == run.owner_id):
        raise PermissionDenied("Only the run's owner or staff write its purpose.")
    text = purpose.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROL).strip()
    if len(text) > PURPOSE_MAX_CHARS:
        raise ValidationError(
            f"The purpose has {len(text)} characters; at most {PURPOSE_MAX_CHARS} are kept."
        )
    run.purpose = text
    run._change_reason = "purpose"
    run.save(update_fields=["purpose"])
    return run
