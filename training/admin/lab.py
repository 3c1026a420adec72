"""Admin for running the lab: quotas (and GPU-hours per user and week), licence acceptances,
notification settings and webhook deliveries."""

from __future__ import annotations

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import path

from training.charts import bars
from training.models import LicenceAcceptance, NotificationSettings, Quota, WebhookDelivery
from training.quotas import usage_by_week

USAGE_WEEKS, USAGE_MAX_WEEKS = 8, 52


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    list_display = ("target", "weekly_gpu_hours", "max_active_runs", "max_resolution",
                    "max_epochs", "max_steps", "note", "updated_at")  # fmt: skip
    list_select_related = ("group", "user")
    autocomplete_fields = ("group", "user")
    search_fields = ("group__name", "user__username", "note")
    change_list_template = "admin/training/quota/change_list.html"

    @admin.display(description="For", ordering="group__name")
    def target(self, quota):
        return f"group {quota.group}" if quota.group_id else f"user {quota.user}"

    def get_urls(self):
        usage = self.admin_site.admin_view(self.usage_view)
        return [path("usage/", usage, name="training_quota_usage"), *super().get_urls()]

    def usage_view(self, request):
        """GPU-hours per user and week, as the quotas count them: a table and a chart."""
        raw = request.GET.get("weeks", "")
        weeks = int(raw) if raw.isdigit() else USAGE_WEEKS
        if raw and not 1 <= weeks <= USAGE_MAX_WEEKS:
            self.message_user(
                request, f"weeks is a whole number from 1 to {USAGE_MAX_WEEKS}.", messages.ERROR
            )
            weeks = USAGE_WEEKS
        starts, rows = usage_by_week(weeks)
        totals = [sum(r.hours[i] for r in rows) for i in range(len(starts))]
        largest = max((h for r in rows for h in r.hours), default=0.0) or 1.0
        table = [(row, [(h, round(100 * h / largest, 1)) for h in row.hours]) for row in rows]
        chart = bars([(f"{s:%d %b}", t) for s, t in reversed(list(zip(starts, totals)))])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "GPU-hours per user and week",
            "weeks": weeks,
            "starts": starts,
            "table": table,
            "totals": totals,
            "chart": chart,
        }
        return TemplateResponse(request, "admin/training/quota/usage.html", context)


@admin.register(LicenceAcceptance)
class LicenceAcceptanceAdmin(admin.ModelAdmin):
    """Who accepted which licence, when. Deleting one makes its user accept again."""

    list_display = ("user", "base_model", "accepted_at", "licence_sha256")
    list_filter = ("base_model",)
    list_select_related = ("user", "base_model")
    search_fields = ("user__username", "base_model__name")
    date_hierarchy = "accepted_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(admin.ModelAdmin):
    list_display = ("user", "email_events", "webhook_url", "updated_at")
    list_select_related = ("user",)
    search_fields = ("user__username", "webhook_url")
    autocomplete_fields = ("user",)
    exclude = ("webhook_secret",)  # the user's own; shown on their settings page only


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("pk", "user", "event", "status", "attempts", "response_status",
                    "last_error", "created_at", "delivered_at")  # fmt: skip
    list_filter = ("status", "event")
    list_select_related = ("user",)
    search_fields = ("user__username", "url")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
