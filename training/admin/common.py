"""Shared by the admin modules: memory formatting, read-only inlines, a capped paginator."""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property


def mib(value: int | None) -> str:
    """A MiB figure as GB for display ("—" when unknown)."""
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


class CappedPaginator(Paginator):
    """A paginator that never counts a huge table (healthchecks' PingsAdmin)."""

    @cached_property
    def count(self):
        return 10_000
