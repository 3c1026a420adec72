"""Staff admin for datasets and their images."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from datasets.models import Dataset, DatasetImage

MACHINE_FIELDS = ("width", "height", "format", "size_bytes", "sha256", "phash", "original_name")


def _thumb(image: DatasetImage):
    if not image.pk or not image.thumbnail:
        return "—"
    url = reverse("datasets:image-thumb", args=[image.dataset_id, image.pk])
    return format_html(
        '<img src="{}" alt="{}" width="96" loading="lazy">', url, image.original_name
    )


class DatasetImageInline(admin.TabularInline):
    model = DatasetImage
    extra = 0
    can_delete = True
    fields = ("preview", "original_name", "width", "height", "format", "size_bytes", "caption")
    readonly_fields = ("preview", *MACHINE_FIELDS)
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # images come in through upload or import, which decode and check them

    @admin.display(description="Image")
    def preview(self, image):
        return _thumb(image)


@admin.register(Dataset)
class DatasetAdmin(SimpleHistoryAdmin):
    list_display = (
        "name",
        "owner",
        "trigger_word",
        "repeats",
        "image_count",
        "visibility",
        "updated_at",
    )
    list_filter = ("visibility", "created_at")
    search_fields = ("name", "trigger_word", "owner__username", "description")
    date_hierarchy = "created_at"
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    readonly_fields = ("image_count", "created_at", "updated_at")
    inlines = [DatasetImageInline]


@admin.register(DatasetImage)
class DatasetImageAdmin(admin.ModelAdmin):
    list_display = (
        "preview",
        "original_name",
        "dataset",
        "width",
        "height",
        "format",
        "created_at",
    )
    list_filter = ("format",)
    search_fields = ("original_name", "sha256", "dataset__name", "caption")
    date_hierarchy = "created_at"
    list_select_related = ("dataset",)
    raw_id_fields = ("dataset",)
    readonly_fields = ("preview", "file", "thumbnail", "created_at", *MACHINE_FIELDS)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="Image")
    def preview(self, image):
        return _thumb(image)
