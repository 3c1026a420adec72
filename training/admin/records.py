"""Admin for what runs leave behind: events, log chunks, LoRA files and samples."""

from __future__ import annotations

from django.contrib import admin

from training.admin.common import CappedPaginator
from training.models import LoraArtifact, RunEvent, RunLog, SampleImage


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
