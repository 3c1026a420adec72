"""Students' training pages: runs, the new-run form with its live plan, downloads, lab board."""

from __future__ import annotations

import mimetypes

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from datasets.models import Dataset
from sdscripts.command import command_text
from sdscripts.params import ParamError
from training import reports, resume, scheduler, services
from training.choices import ON_GPU, RunStatus
from training.forms import RunForm
from training.licences import needs_acceptance
from training.models import GPU, GPUNode, LoraArtifact, RunLog, SampleImage, TrainingRun
from training.provenance.exact import provenance_of
from training.timing import Lab

RUNS_PER_PAGE = 50
LIST_DEFERRED = (
    "params",
    "extra_flags",
    "plan",
    "loss_points",
    "argv",
    "dataset_config",
    "sample_prompts",
    "purpose",
    "status_message",
)


def get_run_for_user(request, pk: int) -> TrainingRun:
    """The run if the user may see it; 404 otherwise (never 403: no hint that it exists)."""
    runs = TrainingRun.objects.visible_to(request.user).select_related(
        "owner", "dataset", "base_model", "preset", "node", "gpu"
    )
    return get_object_or_404(runs, pk=pk)


def _gpu_row(gpu: GPU, run: TrainingRun | None, user) -> dict:
    total = gpu.total_mib or 1
    others = min(gpu.used_by_others_mib, total)
    training = max(0, min(gpu.used_mib - gpu.used_by_others_mib, total - others))
    free = max(0, min(gpu.free_mib, total - others - training))
    return {
        "gpu": gpu,
        "run": run,
        "run_visible": run is not None and run.is_visible_to(user),
        "training_pct": round(100 * training / total, 1),
        "others_pct": round(100 * others / total, 1),
        "free_pct": round(100 * free / total, 1),
        "training_mib": training,
        "others_mib": others,
        "free_mib": free,
    }


def dashboard_context(user) -> dict:
    """Everything the dashboard and the lab board socket render for a user."""
    runs = list(
        TrainingRun.objects.filter(owner=user).select_related(
            "base_model", "dataset", "node", "gpu"
        )[:20]
    )
    lab = Lab()  # one reading of the queue: places and start times agree
    for run in runs:
        run.queue_position = lab.position(run)
        run.outlook = lab.outlook(run)
    on_gpu = {
        r.gpu_id: r
        for r in TrainingRun.objects.on_gpu().filter(gpu__isnull=False).select_related("owner")
    }
    # Demo runs train on the CPU: they hold a node's demo slot, not a GPU.
    cpu_runs: dict[int, list] = {}
    for r in TrainingRun.objects.on_gpu().filter(gpu__isnull=True).select_related("owner"):
        r.visible = r.is_visible_to(user)
        cpu_runs.setdefault(r.node_id, []).append(r)
    nodes = []
    for node in GPUNode.objects.prefetch_related("gpus"):
        rows = [_gpu_row(gpu, on_gpu.get(gpu.pk), user) for gpu in node.gpus.all()]
        nodes.append({"node": node, "gpus": rows, "cpu_runs": cpu_runs.get(node.pk, [])})
    return {
        "runs": runs,
        "datasets": Dataset.objects.filter(owner=user).order_by("-created_at")[:20],
        "nodes": nodes,
        "queue_length": len(lab.queue),
        "running_count": TrainingRun.objects.filter(status__in=ON_GPU).count(),
        "user": user,
    }


@login_required
def lab_board(request):
    """The lab board as an HTML fragment (what the dashboard socket pushes)."""
    return render(request, "training/includes/lab_board.html", dashboard_context(request.user))


@login_required
def run_list(request):
    """The user's runs (staff: every run), newest first, a page at a time."""
    # A row shows names, status and progress: the big JSON and text columns (a finished
    # run's loss curve holds a point per step) are not read for 50 rows a page.
    runs = (
        TrainingRun.objects.visible_to(request.user)
        .select_related("owner", "base_model", "dataset")
        .defer(*LIST_DEFERRED)
    )
    status = request.GET.get("status", "")
    if status in RunStatus.values:
        runs = runs.filter(status=status)
    else:
        status = ""
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    # The queue is read only for a page that shows a queued run.
    queued = any(run.status == RunStatus.QUEUED for run in page)
    positions = scheduler.queue_positions() if queued else {}
    for run in page:
        run.queue_position = positions.get(run.pk)
    context = {"runs": page, "page": page, "statuses": RunStatus.choices, "status": status}
    return render(request, "training/run_list.html", context)


@login_required
def run_create(request):
    """Pick dataset, model and preset, set the open knobs, see the plan, submit."""
    if request.method == "POST" and request.POST.get("submit") == "1":
        form = RunForm(request.POST, user=request.user, submit=True)
        if form.is_valid():
            # The service refuses what the plan blocks, after checking whether this form
            # was already submitted (then its run is shown, not the limit it now reaches).
            try:
                run = services.submit_run(
                    request.user,
                    dataset=form.cleaned_data["dataset"],
                    base_model=form.cleaned_data["base_model"],
                    preset=form.cleaned_data["preset"],
                    params=form.raw_params(),
                    name=form.cleaned_data["name"],
                    sample_prompts=form.cleaned_data["sample_prompts"],
                    by=request.user,
                    form_token=form.cleaned_data["form_token"],
                    budget_mib=form.cleaned_data.get("gpu_mib"),
                    evaluate_after=form.cleaned_data["evaluate_after"],
                )
            except services.AlreadySubmitted as exc:
                messages.info(request, str(exc))
                return redirect("training:run-detail", pk=exc.run.pk)
            except ParamError as exc:
                for name, message in exc.errors.items():
                    form.add_error(None, f"{name}: {message}")
            except (ValidationError, PermissionDenied) as exc:
                for message in getattr(exc, "messages", [str(exc)]):
                    form.add_error(None, message)
            else:
                messages.success(request, f"Run #{run.pk} submitted.")
                return redirect("training:run-detail", pk=run.pk)
    else:
        keys = ("dataset", "base_model", "preset", "name")
        initial = {k: request.GET[k] for k in keys if request.GET.get(k)}
        if request.GET.get("from", "").isdigit():  # "run again with changes"
            initial = _initial_from(get_run_for_user(request, int(request.GET["from"])))
        data = request.POST if request.method == "POST" else None
        form = RunForm(data, user=request.user, initial=initial)
        if form.is_bound:
            form.is_valid()
    return render(request, "training/run_form.html", _form_context(form))


def _initial_from(run: TrainingRun) -> dict:
    """The new-run form filled in with a run's choices and parameter values."""
    initial = {
        "dataset": run.dataset_id,
        "preset": run.preset_id,
        "base_model": run.base_model_id,
        "name": run.name,
        "sample_prompts": run.sample_prompts,
    }
    initial.update({f"p_{name}": value for name, value in (run.params or {}).items()})
    return {k: v for k, v in initial.items() if v is not None}


def _form_context(form: RunForm) -> dict:
    """The form and its plan (with the form's own field errors for the plan panel), the
    owner's quota and the chosen model's licence gate."""
    errors = {k: v for k, v in form.errors.items() if k != "__all__"} if form.is_bound else {}
    model = form.chosen_model
    gate = model if model is not None and needs_acceptance(form.user, model) else None
    return {
        "form": form,
        "check": form.plan,
        "param_errors": errors,
        "quota": form.quota,
        "licence_gate": gate,
    }


@login_required
def run_plan(request):
    """The live plan preview (HTML fragment) for the form's current values."""
    form = RunForm(request.GET, user=request.user)
    form.is_valid()
    return render(request, "training/includes/plan.html", _form_context(form))


@login_required
def run_detail(request, pk: int):
    """Status, timeline, progress, loss chart, live log, samples, files and the exact command."""
    run = get_run_for_user(request, pk)
    lab = Lab()  # one reading of the queue: the place and the start time agree
    context = {
        "run": run,
        "events": run.events.select_related("actor"),
        "artifacts": run.artifacts.all(),
        "samples": run.samples.all(),
        "queue_position": lab.position(run),
        "argv_text": command_text(run.argv or []),
        "log_chunks": RunLog.objects.filter(run=run).count(),
        "outlook": lab.outlook(run),
        "provenance": provenance_of(run),
        "gpu_time": reports.gpu_time_text(run),
        "energy": reports.energy_text(run),
        "resumes": run.resumes.all(),
        "resume_state": None if resume.resume_refusal(run) else resume.last_state(run),
    }
    context.update(evaluation_context(run))  # includes/evaluation_grid.html
    return render(request, "training/run_detail.html", context)


@login_required
def run_ready(request, pk: int):
    """When the run will be ready, as of now (the run page asks while the run waits)."""
    run = get_run_for_user(request, pk)
    context = {"run": run, "outlook": Lab().outlook(run)}
    return render(request, "training/includes/ready.html", context)


@login_required
@require_POST
def run_cancel(request, pk: int):
    """Cancel a run (or ask its runner to stop it)."""
    run = get_run_for_user(request, pk)
    try:
        services.cancel_run(run, by=request.user)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        messages.success(request, f"Run #{run.pk}: cancel requested.")
    return redirect("training:run-detail", pk=run.pk)


@login_required
@require_POST
def run_rerun(request, pk: int):
    """Submit a new run with the same dataset, model, preset and parameters; with
    `exact=1`, its very inputs (refused with the reasons when they changed since)."""
    run = get_run_for_user(request, pk)
    exact = request.POST.get("exact") == "1"
    how = "exactly again" if exact else "again"
    try:
        new = services.rerun(run, by=request.user, exact=exact)
    except ParamError as exc:
        messages.error(request, f"Cannot run {how}: {exc}")
    except (ValidationError, PermissionDenied) as exc:
        messages.error(
            request, f"Cannot run {how}: " + " ".join(getattr(exc, "messages", [str(exc)]))
        )
    else:
        what = "the very inputs of" if exact else "the same parameters as"
        messages.success(request, f"Run #{new.pk} submitted with {what} run #{run.pk}.")
        return redirect("training:run-detail", pk=new.pk)
    return redirect("training:run-detail", pk=run.pk)


@login_required
@require_POST
def run_resume(request, pk: int):
    """Start a run that continues this failed or cancelled run from its last saved state."""
    run = get_run_for_user(request, pk)
    try:
        new = resume.resume_run(run, by=request.user)
    except ParamError as exc:
        messages.error(request, f"Cannot resume: {exc}")
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, "Cannot resume: " + " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        messages.success(
            request, f"Run #{new.pk} resumes run #{run.pk} after epoch {new.resume_epoch}."
        )
        return redirect("training:run-detail", pk=new.pk)
    return redirect("training:run-detail", pk=run.pk)


def evaluation_context(run: TrainingRun) -> dict:
    from training.evaluation.views import evaluation_context as context_of

    return context_of(run)


def _file_response(field, *, as_attachment: bool) -> FileResponse:
    try:
        handle = field.open("rb")
    except (FileNotFoundError, ValueError):
        raise Http404("The file is gone from the server.") from None
    name = field.name.rsplit("/", 1)[-1]
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(
        handle, as_attachment=as_attachment, filename=name, content_type=content_type
    )


@login_required
def artifact_download(request, pk: int, artifact_id: int):
    """Download a LoRA file of a run the user may see."""
    run = get_run_for_user(request, pk)
    artifact = get_object_or_404(LoraArtifact, pk=artifact_id, run=run)
    return _file_response(artifact.file, as_attachment=True)


@login_required
def sample_file(request, pk: int, sample_id: int):
    """A sample image of a run the user may see."""
    run = get_run_for_user(request, pk)
    sample = get_object_or_404(SampleImage, pk=sample_id, run=run)
    response = _file_response(sample.file, as_attachment=False)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
def run_log(request, pk: int):
    """The run's full log as plain text."""
    run = get_run_for_user(request, pk)
    # The runner caps a run's log, so one response holds it (a sync iterator would be
    # buffered by the ASGI handler anyway).
    chunks = RunLog.objects.filter(run=run).order_by("seq").values_list("text", flat=True)
    response = HttpResponse("".join(chunks), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}.log"'
    return response
