"""Admin for evaluations: each grid's state and pictures, cancel, and evaluating runs."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from training.admin.actions import refusal_text, report, runs
from training.admin.common import ReadOnlyInline
from training.evaluation.options import OptionError
from training.evaluation.services import cancel_evaluation, request_evaluation
from training.models import Evaluation, EvaluationImage


class EvaluationImageInline(ReadOnlyInline):
    model = EvaluationImage
    fields = ("preview", "epoch", "strength", "seed", "prompt_index", "seconds")
    readonly_fields = fields

    @admin.display(description="Image")
    def preview(self, image):
        try:
            url = reverse("training:eval-image", args=[image.run_id, image.pk])
        except NoReverseMatch:
            return "—"
        return format_html('<img src="{}" alt="" style="max-height:96px">', url)


class EvaluationInline(ReadOnlyInline):
    """A run's evaluations on its admin page."""

    model = Evaluation
    fields = ("link", "status", "failure_reason", "progress", "node", "created_at")
    readonly_fields = fields

    @admin.display(description="Evaluation")
    def link(self, evaluation):
        url = reverse("admin:training_evaluation_change", args=[evaluation.pk])
        return format_html('<a href="{}">#{}</a>', url, evaluation.pk)

    @admin.display(description="Images")
    def progress(self, evaluation):
        return f"{evaluation.done_images}/{evaluation.total_images}"


@admin.action(description="Cancel selected evaluations", permissions=["change"])
def cancel_evaluations(modeladmin, request, queryset):
    done, skipped = 0, []
    for evaluation in queryset.order_by("pk"):
        try:
            cancel_evaluation(evaluation, by=request.user)
            done += 1
        except (ValidationError, PermissionDenied) as exc:
            skipped.append(refusal_text(exc))
    text = [f"Cancelled (or asked to stop) {done} evaluation{'s' if done != 1 else ''}."]
    report(modeladmin, request, text if done else [], skipped)


@admin.action(
    description="Evaluate selected runs (all epochs, strengths 0/0.5/0.8/1, seeds 1/2)",
    permissions=["change"],
)
def evaluate_runs(modeladmin, request, queryset):
    queued, skipped = [], []
    for run in queryset.select_related("base_model").order_by("pk"):
        try:
            evaluation = request_evaluation(run, by=request.user)
            queued.append(f"#{evaluation.pk} of run #{run.pk}")
        except (ValidationError, PermissionDenied, OptionError) as exc:
            skipped.append(f"Run #{run.pk}: {refusal_text(exc)}")
    done = [f"Queued evaluations for {runs(len(queued))}: {', '.join(queued)}."] if queued else []
    report(modeladmin, request, done, skipped)


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "status",
        "failure_reason",
        "images",
        "backend",
        "node",
        "after_training",
        "created_at",
    )
    list_filter = ("status", "failure_reason", "backend", "node", "after_training")
    list_select_related = ("run", "node")
    search_fields = ("id", "run__id", "run__owner__username", "status_message")
    date_hierarchy = "created_at"
    readonly_fields = (
        "run",
        "requested_by",
        "after_training",
        "status",
        "failure_reason",
        "status_message",
        "checkpoints",
        "strengths",
        "seeds",
        "prompts",
        "settings",
        "vram_mib",
        "total_images",
        "done_images",
        "backend",
        "node",
        "gpu",
        "task_id",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
        "cancel_requested_at",
    )
    inlines = [EvaluationImageInline]
    actions = [cancel_evaluations]

    def has_add_permission(self, request):
        # Evaluations are requested through the service (run page, run admin, `evaluate`).
        return False

    @admin.display(description="Images")
    def images(self, evaluation):
        return f"{evaluation.done_images}/{evaluation.total_images}"
