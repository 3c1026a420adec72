"""Pages about finished work: compare two runs, a run's report (HTML and PDF), its purpose,
and GPU usage per user and week. Students reach only their own runs (404 otherwise)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from training import energy, reports, services
from training.evaluation.views import evaluation_grids
from training.models import TrainingRun
from training.report_pdf import report_pdf
from training.views import get_run_for_user

USAGE_WEEKS = 8
USAGE_MAX_WEEKS = 104


def _run_number(raw: str) -> int | None:
    raw = raw.strip().lstrip("#")
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


@login_required
def run_compare(request):
    """Two runs side by side: `?a=<id>&b=<id>`."""
    raw_a, raw_b = request.GET.get("a", ""), request.GET.get("b", "")
    context = {"raw_a": raw_a, "raw_b": raw_b, "comparison": None}
    if not (raw_a or raw_b):
        return render(request, "training/run_compare.html", context)
    a, b = _run_number(raw_a), _run_number(raw_b)
    if a is None or b is None:
        context["error"] = "Give two run numbers to compare, e.g. a=12 and b=13."
        return render(request, "training/run_compare.html", context, status=400)
    run_a, run_b = get_run_for_user(request, a), get_run_for_user(request, b)
    context["comparison"] = reports.compare(run_a, run_b)
    context["grids_a"], context["grids_b"] = evaluation_grids(run_a), evaluation_grids(run_b)
    return render(request, "training/run_compare.html", context)


def _may_edit(user, run) -> bool:
    return user.is_staff or run.owner_id == user.pk


@login_required
def run_report(request, pk: int):
    """The printable report of a run a student hands in."""
    run = get_run_for_user(request, pk)
    context = {**reports.report(run), "may_edit": _may_edit(request.user, run)}
    context["evaluation_grids_of_run"] = evaluation_grids(run)
    return render(request, "training/run_report.html", context)


@login_required
def run_report_pdf(request, pk: int):
    """The report as a PDF (reportlab, from the same data as the page)."""
    run = get_run_for_user(request, pk)
    response = HttpResponse(report_pdf(reports.report(run)), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="run-{run.pk}-report.pdf"'
    return response


@login_required
@require_POST
def run_purpose(request, pk: int):
    """Save the run's purpose (its report shows it)."""
    run = get_run_for_user(request, pk)
    try:
        services.set_purpose(run, request.POST.get("purpose", ""), by=request.user)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        messages.success(request, "Purpose saved.")
    return redirect("training:run-report", pk=run.pk)


@login_required
def usage(request):
    """GPU time, energy and cost per user and week (staff: every user; a student: self)."""
    raw = request.GET.get("weeks", "")
    weeks = int(raw) if raw.isdigit() else USAGE_WEEKS
    if raw and not (raw.isdigit() and 1 <= weeks <= USAGE_MAX_WEEKS):
        messages.error(request, f"weeks is a whole number from 1 to {USAGE_MAX_WEEKS}.")
        weeks = USAGE_WEEKS
    rows = energy.weekly_usage(TrainingRun.objects.visible_to(request.user), weeks)
    per_user: dict[str, list] = {}
    for row in rows:
        per_user.setdefault(row.username, []).append(row)
    context = {
        "rows": rows,
        "weeks": weeks,
        "users": [(name, energy.totals(r)) for name, r in sorted(per_user.items())],
        "total": energy.totals(rows),
        "currency": settings.LORASTUDIO_COST_CURRENCY,
        "priced": settings.LORASTUDIO_COST_PER_KWH > 0,
    }
    return render(request, "training/usage.html", context)
