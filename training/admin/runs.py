"""Admin for training runs: the changelist staff steer the lab from, and each run's page."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from simple_history.admin import SimpleHistoryAdmin

from sdscripts.command import command_text
from training.admin.actions import REFUSALS, RUN_ACTIONS, RunActionForm, refusal_text
from training.admin.common import ReadOnlyInline, mib
from training.admin.evaluations import EvaluationInline, evaluate_runs
from training.choices import ACTIVE, TERMINAL
from training.estimates import about
from training.models import LoraArtifact, RunEvent, RunProvenance, SampleImage, TrainingRun
from training.services import reprioritise_run
from training.timing import estimate_accuracy, estimated_and_actual


class ActiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("active", "Active"), ("finished", "Finished"))

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(status__in=ACTIVE)
        if self.value() == "finished":
            return queryset.filter(status__in=TERMINAL)
        return queryset


class RunEventInline(ReadOnlyInline):
    model = RunEvent
    fields = ("created_at", "kind", "from_status", "to_status", "reason", "actor", "note")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class LoraArtifactInline(ReadOnlyInline):
    model = LoraArtifact
    fields = ("kind", "epoch", "step", "file", "size", "sha256", "trainer_sha256", "published_path")
    readonly_fields = fields

    @admin.display(description="Size")
    def size(self, artifact):
        return f"{artifact.size_bytes / 1_048_576:.1f} MB"


class RunProvenanceInline(admin.StackedInline):
    """What made the run, captured when its trainer started: shown, never changed."""

    model = RunProvenance
    can_delete = False
    fields = (
        "captured_at",
        "dataset_sha256",
        "base_model_sha256",
        "node_name",
        "gpu_name",
        "driver",
        "sdscripts_version",
        "packages",
        "lorastudio_version",
        "base_model",
        "subsets",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class SampleImageInline(ReadOnlyInline):
    model = SampleImage
    fields = ("preview", "epoch", "index", "prompt")
    readonly_fields = fields

    @admin.display(description="Sample")
    def preview(self, sample):
        url = _sample_url(sample)
        if not url:
            return "—"
        return format_html('<img src="{}" alt="" style="max-height:96px">', url)


def _sample_url(sample) -> str:
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse("training:sample-file", args=[sample.run_id, sample.pk])
    except NoReverseMatch:
        return ""


# Written by the queue and the runner: shown read-only in their own fieldset.
PROCESS_FIELDS = (
    "created_at",
    "queued_at",
    "started_at",
    "finished_at",
    "cancel_requested_at",
    "heartbeat_at",
    "pgid",
    "worker_pid",
    "exit_code",
    "task_id",
)
RESUME_FIELDS = ("resumed_from", "resume_epoch", "resume_step", "auto_resumed")


@admin.register(TrainingRun)
class TrainingRunAdmin(SimpleHistoryAdmin):
    list_display = (
        "__str__",
        "owner",
        "status_badge",
        "failure_reason",
        "priority",
        "base_model",
        "dataset",
        "node_gpu",
        "progress",
        "vram",
        "duration",
        "created_at",
    )
    list_filter = (
        ActiveFilter,
        "status",
        "failure_reason",
        "base_model__architecture",
        "node",
        "owner",
        # Not date_hierarchy: on SQLite its drill-down truncates every run's date in Python,
        # 44 ms of each page at 10,000 runs and growing with the table; this filter's
        # choices (today, past 7 days, this month, this year) cost no query.
        ("created_at", admin.DateFieldListFilter),
    )
    list_select_related = ("owner", "base_model", "dataset", "node", "gpu")
    # Each row renders a dozen columns and a checkbox: 50 keep a page quick to draw.
    list_per_page = 50
    search_fields = ("id", "name", "owner__username", "dataset__name", "base_model__name")
    raw_id_fields = ("owner", "dataset", "regularization_dataset", "rerun_of")
    readonly_fields = (
        "status",
        "failure_reason",
        "status_message",
        "node",
        "gpu",
        "vram_estimate_mib",
        "vram_peak_mib",
        "plan",
        "step",
        "total_steps",
        "epoch",
        "total_epochs",
        "loss",
        "speed",
        "eta_seconds",
        "duration",
        "argv_text",
        "dataset_config",
        "work_dir",
        "exact",
        "gpu_seconds",
        "energy_wh",
        *RESUME_FIELDS,
        *PROCESS_FIELDS,
    )
    fieldsets = (
        (
            None,
            {"fields": ("owner", "name", "status", "failure_reason", "status_message", "priority")},
        ),
        (
            "What to train",
            {
                "fields": (
                    "dataset",
                    "regularization_dataset",
                    "base_model",
                    "preset",
                    "params",
                    "extra_flags",
                    "sample_prompts",
                    "evaluate_after",
                    "rerun_of",
                )
            },
        ),
        (
            "Placement and memory",
            {"fields": ("node", "gpu", "vram_estimate_mib", "vram_peak_mib", "plan")},
        ),
        (
            "Progress",
            {
                "fields": (
                    "step",
                    "total_steps",
                    "epoch",
                    "total_epochs",
                    "loss",
                    "speed",
                    "eta_seconds",
                    "duration",
                )
            },
        ),
        ("Resume", {"fields": RESUME_FIELDS}),
        (
            "Purpose, repeat, GPU time and energy",
            {"fields": ("purpose", "exact", "gpu_seconds", "energy_wh")},
        ),
        (
            "Exact command (for reproducibility)",
            {"fields": ("argv_text", "dataset_config", "work_dir")},
        ),
        (
            "Process",
            {"fields": PROCESS_FIELDS},
        ),
    )
    inlines = [
        RunEventInline,
        RunProvenanceInline,
        LoraArtifactInline,
        SampleImageInline,
        EvaluationInline,
    ]
    actions = [*RUN_ACTIONS, evaluate_runs]
    action_form = RunActionForm

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # What a run trains is fixed once it exists: "run again" makes a new run.
            fields += [
                "owner",
                "dataset",
                "regularization_dataset",
                "base_model",
                "preset",
                "params",
                "extra_flags",
                "sample_prompts",
                "rerun_of",
            ]
        return fields

    def save_model(self, request, obj, form, change):
        """Save only what staff changed; a new priority goes through `reprioritise_run`.

        Writing only the changed columns leaves alone what the runner writes meanwhile
        (progress, heartbeat, status), and the service puts the priority change, with who
        made it, on the run's timeline.
        """
        if not change:
            return super().save_model(request, obj, form, change)
        fields = [name for name in form.changed_data if name != "priority"]
        if fields:
            obj.save(update_fields=fields)
        if "priority" in form.changed_data:
            try:
                reprioritise_run(obj, priority=form.cleaned_data["priority"], by=request.user)
            except REFUSALS as exc:
                self.message_user(
                    request, f"Priority not changed: {refusal_text(exc)}", messages.WARNING
                )

    def has_delete_permission(self, request, obj=None):
        # A run that is waiting or training is cancelled, never deleted under its runner;
        # Django's bulk delete asks this per run and refuses the whole selection.
        if obj is not None and obj.status in ACTIVE:
            return False
        return super().has_delete_permission(request, obj)

    def has_add_permission(self, request):
        # Runs are submitted through the submit service (pages or `manage.py train`), which
        # validates the parameters and plans the memory.
        return False

    @admin.display(description=mark_safe('<input type="checkbox" id="action-toggle">'))
    def action_checkbox(self, run):
        # Django's own renders a form widget (three templates) per row, a fifth of the
        # page's time at 50 rows; this is the same markup.
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" '
            'aria-label="Select this object for an action - {}">',
            helpers.ACTION_CHECKBOX_NAME,
            run.pk,
            str(run),
        )

    @admin.display(description="Status", ordering="status")
    def status_badge(self, run):
        return format_html(
            '<span class="badge status-{}">{}</span>', run.status, run.get_status_display()
        )

    @admin.display(description="Node / GPU", ordering="node__name")
    def node_gpu(self, run):
        if not run.node_id:
            return "—"
        return f"{run.node.name} / {run.gpu.index}" if run.gpu_id else run.node.name

    @admin.display(description="Progress")
    def progress(self, run):
        if not run.total_steps:
            return "—"
        return f"{run.step}/{run.total_steps} ({run.progress_pct:.0f}%)"

    @admin.display(description="VRAM est. / peak")
    def vram(self, run):
        return f"{mib(run.vram_estimate_mib)} / {mib(run.vram_peak_mib)}"

    @admin.display(description="Duration est. / actual")
    def duration(self, run):
        estimated, actual = estimated_and_actual(run)
        if estimated is None and actual is None:
            return "—"
        text = f"{about(estimated)} / {about(actual) if actual is not None else '—'}"
        if estimated and actual:
            text += f" ({(estimated - actual) / actual:+.0%})"
        return text

    def changelist_view(self, request, extra_context=None):
        # How estimates compared with reality, above the list (training.timing).
        extra_context = {**(extra_context or {}), "estimate_accuracy": estimate_accuracy()}
        return super().changelist_view(request, extra_context=extra_context)

    @admin.display(description="Command")
    def argv_text(self, run):
        return format_html("<pre>{}</pre>", command_text(run.argv or []))
