"""Admin for GPU nodes and the GPUs their agents report."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count
from simple_history.admin import SimpleHistoryAdmin

from training.admin.common import ReadOnlyInline, mib
from training.models import GPU, GPUNode


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

    def get_queryset(self, request):
        # Each row is titled with str(gpu), which names its node.
        return super().get_queryset(request).select_related("node")

    @admin.display(description="Free / total")
    def memory(self, gpu):
        return f"{mib(gpu.free_mib)} / {mib(gpu.total_mib)}"

    @admin.display(description="Used by others")
    def used_by_others(self, gpu):
        return mib(gpu.used_by_others_mib)


@admin.register(GPUNode)
class GPUNodeAdmin(SimpleHistoryAdmin):
    list_display = ("name", "enabled", "online", "gpu_count", "last_heartbeat", "status_message")
    list_filter = ("enabled",)
    search_fields = ("name", "sdscripts_dir", "comfyui_url", "swarmui_url")
    readonly_fields = (
        "last_heartbeat",
        "status_message",
        "sdscripts_version",
        "engine_modules",
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
                    "engine_modules",
                    "work_dir",
                    "lora_dir",
                )
            },
        ),
        (
            "Trainer (offline nodes)",
            {"fields": ("tokenizer_cache_dir", "trainer_env")},
        ),
        (
            "ComfyUI / SwarmUI (evaluations, and room for training)",
            {
                "fields": (
                    "comfyui_url",
                    "swarmui_url",
                    "inference_lora_dir",
                    "inference_gpu",
                    "comfyui_unload",
                    "inference_stop_command",
                    "inference_start_command",
                    "inference_start_timeout",
                )
            },
        ),
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
    readonly_fields = tuple(f for f in fields if f != "enabled")  # NVML writes the rest

    def has_add_permission(self, request):
        # GPUs are reported by each node's agent from NVML.
        return False

    @admin.display(description="Free", ordering="free_mib")
    def free(self, gpu):
        return mib(gpu.free_mib)

    @admin.display(description="Total", ordering="total_mib")
    def total(self, gpu):
        return mib(gpu.total_mib)

    @admin.display(description="Used by others", ordering="used_by_others_mib")
    def used_by_others(self, gpu):
        return mib(gpu.used_by_others_mib)
