"""Admin for the catalogue staff curate: base models and presets."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from simple_history.admin import SimpleHistoryAdmin

from sdscripts.architectures import ARCHITECTURES
from sdscripts.vram import CORRECTION_MIN_RUNS, CORRECTION_WINDOW, Correction
from training.models import BaseModel, Preset
from training.selectors import vram_correction


class _CorrectionChangeList(ChangeList):
    """Learns each architecture's correction once per page, not once per row."""

    def get_results(self, request):
        super().get_results(request)
        learned = {
            arch: vram_correction(arch) for arch in {m.architecture for m in self.result_list}
        }
        for base_model in self.result_list:
            base_model.vram_correction = learned[base_model.architecture]


def _correction(base_model: BaseModel) -> Correction:
    cached = getattr(base_model, "vram_correction", None)
    return cached if cached is not None else vram_correction(base_model.architecture)


@admin.register(BaseModel)
class BaseModelAdmin(SimpleHistoryAdmin):
    list_display = ("name", "architecture", "enabled", "licence_requires_acceptance",
                    "checkpoint", "correction", "updated_at")  # fmt: skip
    list_filter = ("architecture", "enabled", "licence_requires_acceptance")
    search_fields = ("name", "checkpoint", "notes")
    date_hierarchy = "created_at"
    readonly_fields = ("correction_detail",)

    def get_changelist(self, request, **kwargs):
        return _CorrectionChangeList

    @admin.display(description="VRAM correction")
    def correction(self, base_model):
        arch = ARCHITECTURES.get(base_model.architecture)
        if arch is None or not arch.on_gpu:
            return "—"
        c = _correction(base_model)
        return f"× {c.factor:.2f} ({c.runs} run{'s' if c.runs != 1 else ''})"

    @admin.display(description="VRAM correction (learned)")
    def correction_detail(self, base_model):
        """Why plans of this architecture are scaled as they are (docs/vram.md)."""
        arch = ARCHITECTURES.get(base_model.architecture)
        if arch is None:
            return "—"
        if not arch.on_gpu:
            return "None: it trains on the CPU."
        c = _correction(base_model)
        runs = f"{c.runs} succeeded {arch.label} run{'s' if c.runs != 1 else ''}"
        if c.learned:
            return (
                f"× {c.factor:.2f}, learned from the measured peaks of its last {runs} "
                f"(at most {CORRECTION_WINDOW} count; every {arch.label} base model shares it)."
            )
        return (
            f"× {c.factor:.2f} (the default): {runs} measured a peak so far; "
            f"learning starts at {CORRECTION_MIN_RUNS}."
        )


@admin.register(Preset)
class PresetAdmin(SimpleHistoryAdmin):
    list_display = ("name", "architecture", "enabled", "sort_order", "locked_fields", "updated_at")
    list_filter = ("architecture", "enabled")
    list_editable = ("sort_order",)
    search_fields = ("name", "description")

    @admin.display(description="Locked for students")
    def locked_fields(self, preset):
        return ", ".join(preset.locked or []) or "—"
