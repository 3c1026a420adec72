"""Resume: a new run that continues a failed or cancelled run from its last saved state.

A run with `save_state` saves sd-scripts' training state at each saved epoch; the runner
keeps the latest as a STATE zip (training.execution.files). Resuming submits a copy of the
run (its dataset, model, preset, parameters and prompts, through the one plan path, so the
same limits and refusals apply) that the runner starts with `--resume <that state>`: it
continues at the next epoch and its step count goes on from the state's.

A run lost with its worker or node (worker_lost, node_offline) is resumed once without
anyone asking (LORASTUDIO_AUTO_RESUME), on whichever node dispatch finds for it.
"""

from __future__ import annotations

import logging
import math

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from training.choices import ArtifactKind, FailureReason, RunStatus
from training.lifecycle import record_action
from training.models import LoraArtifact, TrainingRun

logger = logging.getLogger(__name__)

RESUMABLE = (RunStatus.FAILED, RunStatus.CANCELLED)
LOST = (FailureReason.WORKER_LOST, FailureReason.NODE_OFFLINE)


def last_state(run: TrainingRun) -> LoraArtifact | None:
    """The newest epoch state `run` saved, else the one it continued from itself."""
    own = (
        run.artifacts.filter(kind=ArtifactKind.STATE, epoch__isnull=False)
        .order_by("-epoch", "-pk")
        .first()
    )
    return own or run.resume_state


def steps_before(run: TrainingRun, epoch: int) -> int:
    """Steps done when epoch `epoch` ended: epochs × steps per epoch (from the run's totals;
    a run capped by max_train_steps has full epochs but the last)."""
    if not run.total_steps or not run.total_epochs:
        return 0
    per_epoch = math.ceil(run.total_steps / run.total_epochs)
    return min(run.total_steps, epoch * per_epoch)


def resume_refusal(run: TrainingRun) -> str | None:
    """Why `run` cannot be resumed now, or None."""
    if run.status not in RESUMABLE:
        status = run.get_status_display().lower()
        return f"Run #{run.pk} is {status}: only a failed or cancelled run can be resumed."
    going = run.resumes.exclude(status__in=RESUMABLE).order_by("pk").first()
    if going is not None:
        return f"Run #{run.pk} is already resumed by run #{going.pk}."
    state = last_state(run)
    if state is None:
        return (
            f"Run #{run.pk} saved no training state to resume from: runs save one at each "
            "saved epoch when “save_state” is on. “Run again” starts it over."
        )
    if not state.file or not state.file.storage.exists(state.file.name):
        return f"The saved state of run #{run.pk} ({state}) is gone from the server."
    return None


def resume_run(run: TrainingRun, *, by=None, automatic: bool = False) -> TrainingRun:
    """Submit the run that continues `run` from its last saved state; return it.

    Refused (ValidationError, PermissionDenied, or what the plan refuses) with nothing
    written: by someone who is neither the owner nor staff, for a run that is not failed or
    cancelled, is already being resumed, or saved no state.
    """
    from training.services import submit_like

    if by is not None and not (by.is_staff or by.pk == run.owner_id):
        raise PermissionDenied("Only the run's owner or staff resume it.")
    if refusal := resume_refusal(run):
        raise ValidationError(refusal)
    state = last_state(run)
    return submit_like(
        run,
        by=by,
        resume={
            "resumed_from": run,
            "resume_state": state,
            "resume_epoch": state.epoch,
            "resume_step": steps_before(state.run, state.epoch),
            "auto_resumed": automatic,
        },
    )


def resume_after_loss(run: TrainingRun) -> None:
    """After a failing move has committed: resume a lost run automatically (see module)."""
    if run.failure_reason in LOST and settings.LORASTUDIO_AUTO_RESUME:
        transaction.on_commit(lambda: resume_lost_run(run.pk))


def resume_lost_run(run_id: int) -> TrainingRun | None:
    """Resume run `run_id` once, automatically, if it was lost and can be; else say on its
    timeline why not. Never raises: it runs after the reaper's or runner's own work."""
    try:
        with transaction.atomic():
            run = TrainingRun.objects.select_for_update().get(pk=run_id)
            if run.failure_reason not in LOST or run.resumes.exists():
                return None
            if run.auto_resumed:
                record_action(
                    run, note="Not resumed automatically again: it was itself an automatic resume."
                )
                return None
            try:
                new = resume_run(run, automatic=True)
            except (ValidationError, PermissionDenied, ValueError) as exc:
                reason = " ".join(getattr(exc, "messages", [str(exc)]))
                record_action(run, note=f"Not resumed automatically: {reason}")
                return None
            record_action(
                run, note=f"Resumed automatically as run #{new.pk} from epoch {new.resume_epoch}."
            )
            return new
    except Exception:
        logger.exception("Automatic resume of run %s failed", run_id)
        return None


def progress_at_start(run: TrainingRun) -> dict:
    """A resumed run's progress fields as its trainer starts: where its state left off (the
    step, the epoch and the loss curve up to there), so its page goes on from there."""
    state = run.resume_state
    if state is None:
        return {}
    before = state.run
    step = run.resume_step or 0
    points = [p for p in (before.loss_points or []) if p and p[0] <= step]
    return {
        "step": step,
        "epoch": run.resume_epoch or 0,
        "total_steps": before.total_steps,
        "total_epochs": before.total_epochs,
        "loss_points": points,
        "loss": points[-1][1] if points else None,
    }
