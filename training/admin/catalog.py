"""Admin for the catalogue staff curate: base models and presets."""

from __future__ import annotations

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from training.models import BaseModel, Preset


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
