"""The settings page: what a user is told about, by mail and by webhook."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render

from training.notifications import services
from training.notifications.forms import NotificationSettingsForm
from training.notifications.webhooks import SIGNATURE_HEADER
from training.quotas import quota_status


@login_required
def account_settings(request):
    """Show and save the user's notification settings; renew the webhook's secret."""
    prefs = services.settings_for(request.user)
    if request.method == "POST" and request.POST.get("action") == "renew-secret":
        services.renew_webhook_secret(request.user)
        messages.success(request, "Your webhook has a new secret: the old one no longer signs.")
        return redirect("account-settings")
    if request.method == "POST":
        form = NotificationSettingsForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                services.save_notification_settings(request.user, **form.cleaned_data)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            else:
                messages.success(request, "Notification settings saved.")
                return redirect("account-settings")
    else:
        initial = {
            "email_events": prefs.email_events,
            "webhook_url": prefs.webhook_url,
            "webhook_events": prefs.webhook_events,
        }
        form = NotificationSettingsForm(initial=initial, user=request.user)
    context = {
        "form": form,
        "prefs": prefs,
        "secret_saved": prefs.pk is not None,
        "signature_header": SIGNATURE_HEADER,
        "quota": quota_status(request.user),
    }
    return render(request, "account/settings.html", context)
