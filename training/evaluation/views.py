"""The run page's evaluation part: request, cancel, the pictures, the grid as one picture,
"keep this epoch". Every view reaches a run through `get_run_for_user` (404 for others)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from training.choices import RunStatus
from training.evaluation import grid, services
from training.evaluation.forms import EvaluateForm
from training.evaluation.options import OptionError
from training.evaluation.planning import checkpoints_of
from training.models import Evaluation, EvaluationImage, LoraArtifact, TrainingRun
from training.views import _file_response, get_run_for_user

GRIDS_SHOWN = 5  # the newest evaluations of a run on its page


def _refusal(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc)


def _back(run: TrainingRun):
    return redirect(reverse("training:run-detail", args=[run.pk]) + "#evaluation")


def evaluation_grids(run: TrainingRun) -> list[dict]:
    """The run's latest evaluations laid out as grids (each: evaluation, columns, blocks)."""
    evaluations = Evaluation.objects.filter(run=run).prefetch_related("images")[:GRIDS_SHOWN]
    return [
        {"evaluation": e, "columns": grid.columns(e), "blocks": grid.layout(e)} for e in evaluations
    ]


def evaluation_context(run: TrainingRun) -> dict:
    """What templates/training/includes/evaluation_grid.html shows for a run."""
    grids = evaluation_grids(run)
    evaluations = [g["evaluation"] for g in grids]
    checkpoints = checkpoints_of(run) if run.status == RunStatus.SUCCEEDED else []
    return {
        "evaluation_grids": grids,
        "evaluation_checkpoints": checkpoints,
        "evaluation_form": EvaluateForm(),
        "evaluation_active": any(not e.is_terminal for e in evaluations),
    }


@login_required
@require_POST
def evaluate(request, pk: int):
    """Queue an evaluation of the run with the form's epochs, strengths, seeds and prompts."""
    run = get_run_for_user(request, pk)
    form = EvaluateForm(request.POST)
    if not form.is_valid():
        problems = [f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()]
        messages.error(request, "Not evaluated: " + "; ".join(problems))
        return _back(run)
    data = form.cleaned_data
    try:
        evaluation = services.request_evaluation(
            run,
            by=request.user,
            epochs=data["epochs"],
            strengths=data["strengths"],
            seeds=data["seeds"],
            prompts=data["prompts"],
        )
    except (ValidationError, PermissionDenied, OptionError) as exc:
        messages.error(request, f"Not evaluated: {_refusal(exc)}")
    else:
        messages.success(request, f"Evaluation #{evaluation.pk} queued.")
    return _back(run)


@login_required
@require_POST
def evaluation_cancel(request, pk: int, evaluation_id: int):
    run = get_run_for_user(request, pk)
    evaluation = get_object_or_404(Evaluation, pk=evaluation_id, run=run)
    try:
        services.cancel_evaluation(evaluation, by=request.user)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _refusal(exc))
    return _back(run)


@login_required
def eval_image(request, pk: int, image_id: int):
    """One evaluation picture of a run the user may see."""
    run = get_run_for_user(request, pk)
    image = get_object_or_404(EvaluationImage, pk=image_id, run=run)
    response = _file_response(image.file, as_attachment=False)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
def evaluation_grid(request, pk: int, evaluation_id: int):
    """The evaluation's grid as one PNG, to download."""
    run = get_run_for_user(request, pk)
    evaluation = get_object_or_404(
        Evaluation.objects.prefetch_related("images"), pk=evaluation_id, run=run
    )
    response = HttpResponse(grid.compose_png(evaluation), content_type="image/png")
    name = f"run-{run.pk}-evaluation-{evaluation.pk}.png"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
@require_POST
def keep_epoch(request, pk: int, artifact_id: int):
    """Make this epoch's LoRA file the run's published LoRA (the others stay downloadable)."""
    run = get_run_for_user(request, pk)
    artifact = get_object_or_404(LoraArtifact, pk=artifact_id, run=run)
    try:
        services.keep_epoch(run, artifact, by=request.user)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _refusal(exc))
    else:
        messages.success(request, f"{artifact} will be published in place of the current LoRA.")
    return _back(run)
