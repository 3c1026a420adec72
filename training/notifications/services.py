"""Users' notification settings: read them, save them, give the webhook a new secret."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from training.choices import STAFF_EVENTS, NotifyEvent
from training.models import NotificationSettings
from training.models.notifications import new_webhook_secret
from training.notifications.webhooks import WebhookRefused, check_url


def events_for(user) -> list[tuple[str, str]]:
    """The events `user` may choose (staff-only ones for staff)."""
    return [
        (v, label) for v, label in NotifyEvent.choices if user.is_staff or v not in STAFF_EVENTS
    ]


def settings_for(user) -> NotificationSettings:
    """The user's settings, or the defaults (unsaved) when they never chose."""
    found = NotificationSettings.objects.filter(user=user).first()
    return found if found is not None else NotificationSettings(user=user)


def _checked_events(user, events, field: str) -> list[str]:
    allowed = {v for v, _ in events_for(user)}
    unknown = [e for e in events if e not in allowed]
    if unknown:
        raise ValidationError({field: f"Not an event you can choose: {', '.join(unknown)}."})
    return [v for v, _ in NotifyEvent.choices if v in set(events)]  # in the page's order


@transaction.atomic
def save_notification_settings(
    user, *, email_events: list[str], webhook_url: str, webhook_events: list[str]
) -> NotificationSettings:
    """Save what `user` is told about by mail and by webhook. A webhook URL must pass
    `webhooks.check_url`; anything refused changes nothing."""
    prefs = settings_for(user)
    prefs.email_events = _checked_events(user, email_events, "email_events")
    prefs.webhook_events = _checked_events(user, webhook_events, "webhook_events")
    url = webhook_url.strip()
    if url:
        try:
            check_url(url)
        except WebhookRefused as exc:
            raise ValidationError({"webhook_url": str(exc)}) from None
    prefs.webhook_url = url
    prefs.full_clean()
    prefs.save()
    return prefs


@transaction.atomic
def renew_webhook_secret(user) -> NotificationSettings:
    """Give the user's webhook a new signing secret (the old one stops working at once)."""
    prefs = settings_for(user)
    prefs.webhook_secret = new_webhook_secret()
    prefs.full_clean()
    prefs.save()
    return prefs
