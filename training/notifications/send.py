"""The queued task's work: mail each recipient who asked for the event, and start a webhook
delivery for each who set one (training.tasks.send_notifications)."""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.core.mail import send_mail

from training.choices import STAFF_EVENTS
from training.models import Evaluation, TrainingRun, WebhookDelivery
from training.notifications import webhooks
from training.notifications.messages import mail_for, payload_for
from training.notifications.services import settings_for

logger = logging.getLogger(__name__)


def recipients(event: str, run: TrainingRun) -> list:
    """Who may hear of `event`: every active staff member for staff events, else the run's
    owner (while their account is active)."""
    if event in STAFF_EVENTS:
        return list(get_user_model().objects.filter(is_staff=True, is_active=True).order_by("pk"))
    return [run.owner] if run.owner.is_active else []


def send_notifications(event: str, run_id: int, evaluation_id: int | None = None) -> str:
    """Tell the recipients of `event` about run `run_id` (and evaluation `evaluation_id`).

    Every recipient is tried; a mail that fails is logged and, once all were tried, raised,
    so the queue records the task as failed. A webhook's first attempt is made here; its
    retries are scheduled (training.notifications.webhooks).
    """
    run = (
        TrainingRun.objects.select_related("owner", "base_model", "dataset")
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        return f"run #{run_id} is gone"
    evaluation = Evaluation.objects.filter(pk=evaluation_id).first() if evaluation_id else None
    mails, hooks, problems = 0, [], []
    for user in recipients(event, run):
        prefs = settings_for(user)
        if prefs.wants_email(event) and user.email:
            mail = mail_for(event, run, evaluation, user)
            try:
                send_mail(mail.subject, mail.body, None, [user.email])
                mails += 1
            except Exception as exc:
                logger.exception("Mail about run %s to %s failed", run.pk, user)
                problems.append(f"mail to {user}: {type(exc).__name__}: {exc}")
        if prefs.wants_webhook(event):
            delivery = WebhookDelivery.objects.create(
                user=user,
                event=event,
                url=prefs.webhook_url,
                payload=payload_for(event, run, evaluation),
            )
            hooks.append(webhooks.attempt(delivery.pk))
    summary = f"{event} of run #{run.pk}: {mails} mail(s)" + "".join(f"; {h}" for h in hooks)
    if problems:
        raise RuntimeError(summary + "; failed: " + "; ".join(problems))
    return summary
