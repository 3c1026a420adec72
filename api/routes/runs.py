"""Runs: list, submit (the new-run page's plan path), read, cancel and resume."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status
from pydantic import Field

from api.errors import Conflict
from api.schemas import Error, RunIn, RunList, RunOut
from datasets.models import Dataset
from training import resume, services
from training.choices import RunStatus
from training.models import BaseModel, Preset, TrainingRun

router = Router(tags=["runs"])


def runs_for(user):
    """The one ownership rule of the pages (TrainingRun.objects.visible_to)."""
    return TrainingRun.objects.visible_to(user).select_related(
        "owner", "base_model", "preset", "node"
    )


def get_run(request, run_id: int) -> TrainingRun:
    """The run if the token's user may see it; 404 otherwise (no hint that it exists)."""
    return get_object_or_404(runs_for(request.auth), pk=run_id)


def run_out(run: TrainingRun) -> dict:
    artifacts = [
        {
            "id": a.pk,
            "kind": a.kind,
            "epoch": a.epoch,
            "step": a.step,
            "size_bytes": a.size_bytes,
            "sha256": a.sha256,
            "published": bool(a.published_path),
        }
        for a in run.artifacts.all()
    ]
    return {
        "id": run.pk,
        "name": run.name,
        "owner": run.owner.get_username(),
        "status": run.status,
        "reason": run.failure_reason or None,
        "message": run.status_message,
        "dataset": run.dataset_id,
        "base_model": run.base_model.name,
        "preset": run.preset.name if run.preset_id else None,
        "params": run.params,
        "progress": {
            "step": run.step,
            "total_steps": run.total_steps,
            "epoch": run.epoch,
            "total_epochs": run.total_epochs,
            "percent": round(run.progress_pct, 1),
            "loss": run.loss,
            "speed": run.speed,
            "eta_seconds": run.eta_seconds,
        },
        "loss": run.loss,
        "node": run.node.name if run.node_id else None,
        "cancel_requested": run.cancel_requested_at is not None,
        "resumed_from": run.resumed_from_id,
        "resume_epoch": run.resume_epoch,
        "resumed_by": [r.pk for r in run.resumes.all()],
        "artifacts": artifacts,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


class RunFilter(Schema):
    status: RunStatus | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0)


@router.get("/", response=RunList, summary="Your runs")
def list_runs(request, filters: Query[RunFilter]):
    """Your runs (staff: every run), newest first; `?status=running`, `limit`, `offset`."""
    runs = runs_for(request.auth).prefetch_related("artifacts", "resumes")
    if filters.status:
        runs = runs.filter(status=filters.status)
    page = runs[filters.offset : filters.offset + filters.limit]
    return {"count": runs.count(), "results": [run_out(r) for r in page]}


def _by_id_or_name(queryset, value, field: str, what: str):
    """A row named by id (a number) or by name (case-insensitive); ValidationError naming
    the request's field when there is none."""
    if isinstance(value, int) or str(value).strip().isdigit():
        row = queryset.filter(pk=int(value)).first()
    else:
        row = queryset.filter(name__iexact=str(value).strip()).first()
    if row is None:
        raise ValidationError({field: f"There is no {what} {value!r} that you may use."})
    return row


@router.post("/", response={201: RunOut, 400: Error, 403: Error}, summary="Submit a run")
def submit_run(request, payload: RunIn):
    """Check, plan and queue a run exactly as the new-run page does (the same plan path,
    limits and refusals); 400 names what is wrong and nothing is created."""
    user = request.auth
    dataset = Dataset.objects.visible_to(user).filter(pk=payload.dataset).first()
    if dataset is None:
        raise ValidationError(
            {"dataset": f"There is no dataset {payload.dataset} that you may use."}
        )
    base_model = _by_id_or_name(
        BaseModel.objects.filter(enabled=True), payload.base_model, "base_model", "base model"
    )
    preset = None
    if payload.preset not in (None, ""):
        preset = _by_id_or_name(
            Preset.objects.filter(enabled=True), payload.preset, "preset", "preset"
        )
    prompts = payload.sample_prompts
    if isinstance(prompts, list):
        prompts = "\n".join(str(p) for p in prompts)
    run = services.submit_run(
        user,
        dataset=dataset,
        base_model=base_model,
        preset=preset,
        params=payload.params,
        name=payload.name,
        sample_prompts=prompts,
        by=user,
        evaluate_after=payload.evaluate_after,
    )
    return Status(201, run_out(get_run(request, run.pk)))


@router.get("/{int:run_id}/", response={200: RunOut, 404: Error}, summary="A run")
def get_run_state(request, run_id: int):
    """Status, failure reason, progress, loss and files."""
    return run_out(get_run(request, run_id))


@router.post(
    "/{int:run_id}/cancel/", response={200: RunOut, 404: Error, 409: Error}, summary="Cancel"
)
def cancel_run(request, run_id: int):
    """Cancel at once when it has not started, else ask its runner to stop it (the answer
    has `cancel_requested`); 409 when it has already finished."""
    run = get_run(request, run_id)
    try:
        services.cancel_run(run, by=request.auth)
    except ValidationError as exc:
        raise Conflict(" ".join(exc.messages)) from None
    return run_out(get_run(request, run_id))


@router.post(
    "/{int:run_id}/resume/",
    response={201: RunOut, 400: Error, 404: Error, 409: Error},
    summary="Resume from the last saved state",
)
def resume_run(request, run_id: int):
    """A new run that continues a failed or cancelled run from its last saved training
    state (runs save one per saved epoch with `"save_state": true`)."""
    run = get_run(request, run_id)
    if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
        raise Conflict(
            f"Run #{run.pk} is {run.get_status_display().lower()}: only a failed "
            "or cancelled run can be resumed."
        )
    new = resume.resume_run(run, by=request.auth)
    return Status(201, run_out(get_run(request, new.pk)))
