"""API tokens in the admin: staff see every token and revoke them; nobody sees a secret."""

from django.contrib import admin, messages

from api.models import ApiToken
from api.tokens import revoke_token


class ActiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_select_related = ("user",)
    list_filter = (ActiveFilter, "created_at")
    search_fields = ("name", "prefix", "user__username")
    date_hierarchy = "created_at"
    readonly_fields = ("user", "prefix", "created_at", "last_used_at", "revoked_at")
    fields = ("name", *readonly_fields)
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # a token is shown once to whoever creates it: the page or api_token

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        active = list(queryset.filter(revoked_at__isnull=True))
        for token in active:
            revoke_token(token, by=request.user)
        self.message_user(request, f"Revoked {len(active)} token(s).", messages.SUCCESS)
        if skipped := queryset.count() - len(active):
            self.message_user(request, f"{skipped} were revoked already.", messages.WARNING)
