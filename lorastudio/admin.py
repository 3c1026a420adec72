"""Failed logins in the admin: staff see who is throttled and can lift it by deleting rows."""

from django.contrib import admin

from lorastudio.models import LoginFailure


@admin.register(LoginFailure)
class LoginFailureAdmin(admin.ModelAdmin):
    list_display = ("username", "address", "at")
    list_filter = ("at",)
    search_fields = ("username", "address")
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
