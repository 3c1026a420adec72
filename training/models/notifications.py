"""What each user is told about (mail, webhook) and the webhook deliveries made."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from training.choices import STAFF_EVENTS, DeliveryStatus, NotifyEvent


def default_email_events() -> list[str]:
    """Mail about everything until a user says otherwise (staff-only events reach staff only)."""
    return list(NotifyEvent.values)


def new_webhook_secret() -> str:
    return secrets.token_hex(32)


class NotificationSettings(models.Model):
    """One user's choices: which events by mail, which by webhook, and the webhook itself."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_settings"
    )
    email_events = models.JSONField(default=default_email_events, blank=True)
    webhook_url = models.CharField(max_length=500, blank=True)
    webhook_events = models.JSONField(default=list, blank=True)
    webhook_secret = models.CharField(max_length=64, default=new_webhook_secret)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "notification settings"
        verbose_name_plural = "notification settings"

    def __str__(self) -> str:
        return f"Notifications of {self.user}"

    def wants_email(self, event: str) -> bool:
        return event in (self.email_events or ()) and self._may_receive(event)

    def wants_webhook(self, event: str) -> bool:
        return (
            bool(self.webhook_url)
            and event in (self.webhook_events or ())
            and (self._may_receive(event))
        )

    def _may_receive(self, event: str) -> bool:
        return event not in STAFF_EVENTS or self.user.is_staff


class WebhookDelivery(models.Model):
    """One event POSTed to a user's webhook, with its attempts (training.notifications)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    event = models.CharField(max_length=30, choices=NotifyEvent.choices)
    url = models.CharField(max_length=500)
    payload = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "created_at"], name="webhook_status_time")]

    def __str__(self) -> str:
        return f"Webhook #{self.pk} {self.event} to {self.user}"
