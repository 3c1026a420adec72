"""The notification settings form (validation only; training.notifications.services saves)."""

from __future__ import annotations

from django import forms

from training.notifications.services import events_for
from training.notifications.webhooks import WebhookRefused, check_url


class NotificationSettingsForm(forms.Form):
    """Which events a user hears of by mail and by webhook, and the webhook's URL."""

    email_events = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Mail me when",
    )
    webhook_url = forms.CharField(
        required=False,
        max_length=500,
        label="Webhook URL",
        help_text="We POST a signed JSON message here (http or https, a public address).",
        widget=forms.URLInput(attrs={"placeholder": "https://example.org/hooks/lorastudio"}),
    )
    webhook_events = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Call the webhook when",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        choices = events_for(user)
        self.fields["email_events"].choices = choices
        self.fields["webhook_events"].choices = choices

    def clean_webhook_url(self) -> str:
        url = self.cleaned_data["webhook_url"].strip()
        if url:
            try:
                check_url(url)
            except WebhookRefused as exc:
                raise forms.ValidationError(str(exc)) from None
        return url

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("webhook_events") and not cleaned.get("webhook_url"):
            self.add_error("webhook_url", "Give the URL the webhook should call.")
        return cleaned
