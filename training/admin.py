"""The lab's Django admin for staff: nodes, models, presets, runs and their history."""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Count
from django.utils.functional import cached_property
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from training.choices import ACTIVE, TERMINAL
from training.models import (
    GPU,
    BaseModel,
    GPUNode,
    LoraArtifact,
    Preset,
    RunEvent,
    RunLog,
    SampleImage,
    TrainingRun,
)


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / 1024:.1f} GB"


class ReadOnlyInline(admin.TabularInline):
    """An inline of machine-written rows: shown, never added, edited or deleted here."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class GPUInline(ReadOnlyInline):
    model = GPU
    fields = (
        "index",
        "name",
        "memory",
        "used_by_others",
        "utilization_pct",
        "temperature_c",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="Free / total")
    def memory(self, gpu):
        return f"{_mib(gpu.free_mib)} / {_mib(gpu.total_mib)}"

    @admin.display(description="Used by others")
    def used_by_others(self, gpu):
        return _mib(gpu.used_by_others_mib)


@admin.register(GPUNode)
class GPUNodeAdmin(SimpleHistoryAdmin):
    list_display = ("name", "enabled", "online", "gpu_count", "last_heartbeat", "status_message")
    list_filter = ("enabled",)
    search_fields = ("name", "sdscripts_dir", "comfyui_url", "swarmui_url")
    readonly_fields = (
        "last_heartbeat",
        "status_message",
        "sdscripts_version",
        "created_at",
        "updated_at",
    )
    inlines = [GPUInline]
    fieldsets = (
        (None, {"fields": ("name", "enabled", "status_message", "last_heartbeat")}),
        (
            "Paths on this machine",
            {
                "fields": (
                    "models_root",
                    "sdscripts_dir",
                    "sdscripts_python",
                    "sdscripts_version",
                    "work_dir",
                    "lora_dir",
                )
            },
        ),
        ("ComfyUI / SwarmUI", {"fields": ("comfyui_url", "comfyui_unload", "swarmui_url")}),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_gpu_count=Count("gpus"))

    @admin.display(description="GPUs", ordering="_gpu_count")
    def gpu_count(self, node):
        return node._gpu_count

    @admin.display(description="Online", boolean=True)
    def online(self, node):
        return node.is_online


@admin.register(GPU)
class GPUAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "node",
        "index",
        "name",
        "enabled",
        "free",
        "total",
        "used_by_others",
        "utilization_pct",
        "temperature_c",
        "updated_at",
    )
    list_filter = ("enabled", "node")
    list_select_related = ("node",)
    search_fields = ("name", "uuid", "node__name")
    fields = (
        "node",
        "index",
        "name",
        "uuid",
        "enabled",
        "total_mib",
        "free_mib",
        "used_mib",
        "used_by_others_mib",
        "reclaimable_mib",
        "utilization_pct",
        "temperature_c",
        "power_w",
        "updated_at",
    )
    readonly_fields = (
        "node",
        "index",
        "name",
        "uuid",
        "total_mib",
        "free_mib",
        "used_mib",
        "used_by_others_mib",
        "reclaimable_mib",
        "utilization_pct",
        "temperature_c",
        "power_w",
        "updated_at",
    )

    def has_add_permission(self, request):
        # GPUs are reported by each node's agent from NVML.
        return False

    @admin.display(description="Free", ordering="free_mib")
    def free(self, gpu):
        return _mib(gpu.free_mib)

    @admin.display(description="Total", ordering="total_mib")
    def total(self, gpu):
        return _mib(gpu.total_mib)

    @admin.display(description="Used by others", ordering="used_by_others_mib")
    def used_by_others(self, gpu):
        return _mib(gpu.used_by_others_mib)


@admin.register(BaseModel)
class BaseModelAdmin(SimpleHistoryAdmin):
    list_display = ("name", "architecture", "enabled", "checkpoint", "updated_at")
    list_filter = ("architecture", "enabled")
    search_fields = ("name", "checkpoint", "notes")
    date_hierarchy = "created_at"


@admin.register(Preset)
class PresetAdmin(SimpleHistoryAdmin):
    list_display = ("name", "architecture", "enabled", "sort_order", "locked_fields", "updated_at")
    list_filter = ("architecture", "enabled")
    list_editable = ("sort_order",)
    search_fields = ("name", "description")

    @admin.display(description="Locked for students")
    def locked_fields(self, preset):
        return ", ".join(preset.locked or []) or "—"


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


class LoraArtifactInline(ReadOnlyInline):
    model = LoraArtifact
    fields = ("kind", "epoch", "step", "file", "size", "sha256", "published_path")
    readonly_fields = fields

    @admin.display(description="Size")
    def size(self, artifact):
        return f"{artifact.size_bytes / 1_048_576:.1f} MB"


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
        "created_at",
    )
    list_filter = (
        ActiveFilter,
        "status",
        "failure_reason",
        "base_model__architecture",
        "node",
        "owner",
    )
    list_select_related = ("owner", "base_model", "dataset", "node", "gpu")
    search_fields = ("id", "name", "owner__username", "dataset__name", "base_model__name")
    date_hierarchy = "created_at"
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
        "argv_text",
        "dataset_config",
        "work_dir",
        "created_at",
        "queued_at",
        "started_at",
        "finished_at",
        "cancel_requested_at",
        "heartbeat_at",
        "pgid",
        "exit_code",
        "task_id",
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
                )
            },
        ),
        (
            "Exact command (for reproducibility)",
            {"fields": ("argv_text", "dataset_config", "work_dir")},
        ),
        (
            "Process",
            {
                "fields": (
                    "created_at",
                    "queued_at",
                    "started_at",
                    "finished_at",
                    "cancel_requested_at",
                    "heartbeat_at",
                    "pgid",
                    "exit_code",
                    "task_id",
                )
            },
        ),
    )
    inlines = [RunEventInline, LoraArtifactInline, SampleImageInline]

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

    def has_add_permission(self, request):
        # Runs are submitted through the submit service (pages or `manage.py train`), which
        # validates the parameters and plans the memory.
        return False

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
        return f"{_mib(run.vram_estimate_mib)} / {_mib(run.vram_peak_mib)}"

    @admin.display(description="argv")
    def argv_text(self, run):
        return format_html("<pre>{}</pre>", " ".join(run.argv or []))


@admin.register(RunEvent)
class RunEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "run", "kind", "from_status", "to_status", "reason", "actor")
    list_filter = ("kind", "to_status", "reason")
    list_select_related = ("run", "actor")
    search_fields = ("run__id", "note", "actor__username")
    date_hierarchy = "created_at"
    readonly_fields = (
        "run",
        "created_at",
        "kind",
        "from_status",
        "to_status",
        "reason",
        "actor",
        "note",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CappedPaginator(Paginator):
    """A paginator that never counts a huge table (healthchecks' PingsAdmin)."""

    @cached_property
    def count(self):
        return 10_000


@admin.register(RunLog)
class RunLogAdmin(admin.ModelAdmin):
    list_display = ("run", "seq", "created_at", "excerpt")
    list_select_related = ("run",)
    raw_id_fields = ("run",)
    search_fields = ("=run__id",)
    paginator = CappedPaginator
    show_full_result_count = False
    readonly_fields = ("run", "seq", "text", "created_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Text")
    def excerpt(self, chunk):
        return chunk.text[:120]


@admin.register(LoraArtifact)
class LoraArtifactAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "run",
        "kind",
        "epoch",
        "step",
        "size_bytes",
        "published_path",
        "created_at",
    )
    list_filter = ("kind",)
    list_select_related = ("run",)
    search_fields = ("run__id", "file", "sha256")
    date_hierarchy = "created_at"
    readonly_fields = (
        "run",
        "kind",
        "epoch",
        "step",
        "file",
        "size_bytes",
        "sha256",
        "published_path",
        "created_at",
    )

    def has_add_permission(self, request):
        return False


@admin.register(SampleImage)
class SampleImageAdmin(admin.ModelAdmin):
    list_display = ("__str__", "run", "epoch", "index", "created_at")
    list_select_related = ("run",)
    search_fields = ("run__id", "prompt")
    readonly_fields = ("run", "file", "epoch", "step", "index", "prompt", "created_at")

    def has_add_permission(self, request):
        return False
