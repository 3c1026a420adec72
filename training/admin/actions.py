"""Staff actions on selected runs: each calls a service per run and reports done and skipped.

The services decide what applies (a finished run cannot be cancelled, only a run awaiting
approval can be approved); the actions only collect their refusals and say which runs were
skipped and why, as a WARNING message.
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError

from sdscripts.params import ParamError
from training.choices import RunStatus
from training.lifecycle import TransitionError
from training.models import TrainingRun
from training.resume import resume_run
from training.services import approve_run, cancel_run, reprioritise_run, rerun

# What the run services raise when an action does not apply to a run.
REFUSALS = (ValidationError, PermissionDenied, TransitionError, ParamError)


class RunActionForm(helpers.ActionForm):
    """The changelist's action bar, plus the value "Set priority" uses."""

    priority = forms.CharField(
        required=False,
        max_length=8,
        label="Priority",
        widget=forms.TextInput(attrs={"size": 5}),
        help_text="Used by “Set priority”; higher runs first.",
    )


def refusal_text(exc: Exception) -> str:
    """A service's refusal as one sentence."""
    text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    return text if text.endswith(".") else text + "."


def runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def apply_to_each(queryset, service: Callable[[TrainingRun], object]) -> tuple[list, list[str]]:
    """Call `service(run)` on each selected run in id order; return results and refusals."""
    done, skipped = [], []
    for run in queryset.order_by("pk"):
        try:
            done.append(service(run))
        except REFUSALS as exc:
            reason = refusal_text(exc)
            skipped.append(reason if f"#{run.pk}" in reason else f"Run #{run.pk}: {reason}")
    return done, skipped


def report(modeladmin, request, done: list[str], skipped: list[str]) -> None:
    """What was done as a success message, what was skipped (and why) as a warning."""
    if done:
        modeladmin.message_user(request, " ".join(done), messages.SUCCESS)
    if skipped:
        text = f"Skipped {len(skipped)}: " + " ".join(skipped)
        modeladmin.message_user(request, text, messages.WARNING)


@admin.action(description="Cancel selected runs", permissions=["change"])
def cancel_runs(modeladmin, request, queryset):
    def cancel(run: TrainingRun) -> str:
        already_asked = run.cancel_requested_at is not None
        cancel_run(run, by=request.user)
        if run.status == RunStatus.CANCELLED:
            return "cancelled"
        if already_asked:
            raise ValidationError(f"Run #{run.pk} was already asked to stop.")
        return "asked"

    outcomes, skipped = apply_to_each(queryset, cancel)
    done = []
    if n := outcomes.count("cancelled"):
        done.append(f"Cancelled {runs(n)}.")
    if n := outcomes.count("asked"):
        done.append(f"Asked {runs(n)} on a GPU to stop (the runner checks about once a second).")
    report(modeladmin, request, done, skipped)


@admin.action(description="Approve selected runs", permissions=["change"])
def approve_runs(modeladmin, request, queryset):
    approved, skipped = apply_to_each(queryset, lambda run: approve_run(run, by=request.user))
    done = [f"Approved {runs(len(approved))} into the queue."] if approved else []
    report(modeladmin, request, done, skipped)


@admin.action(description="Run again (same parameters)", permissions=["change"])
def rerun_runs(modeladmin, request, queryset):
    queryset = queryset.select_related(
        "owner", "dataset", "regularization_dataset", "base_model", "preset"
    )
    new_runs, skipped = apply_to_each(queryset, lambda run: rerun(run, by=request.user))
    done = []
    if new_runs:
        which = ", ".join(f"#{new.pk} (again #{new.rerun_of_id})" for new in new_runs)
        done.append(f"Submitted {runs(len(new_runs))} with the same parameters: {which}.")
    report(modeladmin, request, done, skipped)


@admin.action(description="Resume from the last saved state", permissions=["change"])
def resume_runs(modeladmin, request, queryset):
    queryset = queryset.select_related(
        "owner", "dataset", "regularization_dataset", "base_model", "preset"
    )
    new_runs, skipped = apply_to_each(queryset, lambda run: resume_run(run, by=request.user))
    done = []
    if new_runs:
        which = ", ".join(
            f"#{new.pk} (#{new.resumed_from_id} after epoch {new.resume_epoch})" for new in new_runs
        )
        done.append(f"Resumed {runs(len(new_runs))}: {which}.")
    report(modeladmin, request, done, skipped)


def _reprioritise(modeladmin, request, queryset, new_priority: Callable[[int], int]) -> None:
    def change(run: TrainingRun) -> str:
        old, priority = run.priority, new_priority(run.priority)
        reprioritise_run(run, priority=priority, by=request.user)
        return f"#{run.pk} {old} → {priority}"

    changed, skipped = apply_to_each(queryset, change)
    done = []
    if changed:
        which = ", ".join(changed)
        done.append(f"Changed the priority of {runs(len(changed))}: {which}.")
    report(modeladmin, request, done, skipped)


@admin.action(description="Raise priority of selected runs (+1)", permissions=["change"])
def raise_priority(modeladmin, request, queryset):
    _reprioritise(modeladmin, request, queryset, lambda old: old + 1)


@admin.action(description="Lower priority of selected runs (−1)", permissions=["change"])
def lower_priority(modeladmin, request, queryset):
    _reprioritise(modeladmin, request, queryset, lambda old: old - 1)


@admin.action(
    description="Set priority of selected runs (to the value in the Priority box)",
    permissions=["change"],
)
def set_priority(modeladmin, request, queryset):
    raw = request.POST.get("priority", "").strip()
    try:
        priority = int(raw)
    except ValueError:
        text = (
            f"Set priority: “{raw}” is not a whole number; no run was changed."
            if raw
            else ("Set priority: enter the new priority in the Priority box; no run was changed.")
        )
        modeladmin.message_user(request, text, messages.ERROR)
        return
    _reprioritise(modeladmin, request, queryset, lambda old: priority)


RUN_ACTIONS = [
    cancel_runs,
    approve_runs,
    rerun_runs,
    resume_runs,
    raise_priority,
    lower_priority,
    set_priority,
]
