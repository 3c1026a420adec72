"""What the run commands (train, rerun, resume) share: a refusal as one line of text, and
following a new run until it ends."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from training.follow import follow_run
from training.models import TrainingRun


def refusal_text(exc: Exception) -> str:
    """A refusal (ParamError, ValidationError, PermissionDenied) as one line: a validation
    error's messages joined; the others' own text (a ParamError's is "field: how to fix; …")."""
    return " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


def follow_until_succeeded(run_id: int, *, write) -> TrainingRun:
    """Follow the run (its log and progress, through `write`) until it ends; CommandError
    unless it succeeded."""
    run = follow_run(run_id, write=write)
    if run.status != "succeeded":
        raise CommandError(f"Run #{run.pk} ended {run.status}: {run.status_message}")
    return run
