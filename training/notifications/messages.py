"""What a notification says: the mail's subject and text, and the webhook's JSON payload."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from training.choices import NotifyEvent, RunStatus


@dataclass(frozen=True)
class Mail:
    subject: str
    body: str


def site_url(path: str) -> str:
    """An absolute address on this site (LORASTUDIO_SITE_URL)."""
    return f"{settings.LORASTUDIO_SITE_URL}{path}"


def run_url(run) -> str:
    return site_url(reverse("training:run-detail", args=[run.pk]))


def _title(run) -> str:
    return f"Run #{run.pk}" + (f" “{run.name}”" if run.name else "")


def _duration(run) -> str:
    if run.started_at is None or run.finished_at is None:
        return ""
    seconds = (run.finished_at - run.started_at).total_seconds()
    if seconds < 60:
        return f" after {max(1, round(seconds))} s"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f" after {hours} h {minutes} min" if hours else f" after {minutes} min"


def _what(run) -> str:
    dataset = run.dataset.name if run.dataset is not None else "a deleted dataset"
    return f"{run.base_model.name}, dataset {dataset}"


def mail_for(event: str, run, evaluation, user) -> Mail:
    """The mail telling `user` about `event` of `run` (and `evaluation`)."""
    title, link = _title(run), run_url(run)
    note = f"\n{run.status_message}\n" if run.status_message else ""
    if event == NotifyEvent.RUN_SUCCEEDED:
        subject = f"{title} succeeded"
        text = (
            f"Your run {title} ({_what(run)}) succeeded{_duration(run)}.\n\n"
            f"Its LoRA files, samples and log: {link}\n"
        )
    elif event == NotifyEvent.RUN_FAILED:
        reason = run.get_failure_reason_display() or "unknown reason"
        subject = f"{title} failed: {reason}"
        text = (
            f"Your run {title} ({_what(run)}) failed{_duration(run)}: {reason}.\n{note}\n"
            f"Its log and any files it wrote stay on its page: {link}\n"
        )
    elif event == NotifyEvent.RUN_CANCELLED:
        subject = f"{title} was cancelled"
        text = f"Your run {title} ({_what(run)}) was cancelled.\n{note}\nIts page: {link}\n"
    elif event == NotifyEvent.APPROVAL_NEEDED:
        subject = f"{title} by {run.owner} waits for approval"
        waiting = reverse("admin:training_trainingrun_changelist")
        text = (
            f"{run.owner} submitted {title} ({_what(run)}); it waits for a member of staff "
            f"to approve it.\n\nThe run: {link}\n"
            f"Runs waiting for approval: {site_url(waiting)}?status__exact="
            f"{RunStatus.PENDING_APPROVAL}\n"
        )
    elif event == NotifyEvent.EVALUATION_READY:
        subject = f"The evaluation of {title} is ready"
        epochs = ", ".join(str(e) for e in evaluation.epochs) if evaluation else ""
        images = evaluation.done_images if evaluation else 0
        text = (
            f"The evaluation of your run {title} ({_what(run)}) is ready: {images} pictures"
            + (f" of epochs {epochs}" if epochs else "")
            + f".\n\nCompare them and keep the best epoch: {link}#evaluation\n"
        )
    else:
        raise ValueError(f"No mail for the event {event!r}.")
    footer = (
        f"\n--\nLoRA Studio. You receive this as {user.get_username()}; choose what you are "
        f"told about on {site_url(reverse('account-settings'))}\n"
    )
    return Mail(subject=subject, body=f"Hello {user.get_username()},\n\n{text}{footer}")


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None


def payload_for(event: str, run, evaluation) -> dict:
    """The webhook's JSON body (its fields are documented in the README)."""
    payload = {
        "event": event,
        "sent_at": timezone.now().isoformat(),
        "run": {
            "id": run.pk,
            "name": run.name,
            "owner": run.owner.get_username(),
            "status": run.status,
            "failure_reason": run.failure_reason,
            "message": run.status_message,
            "base_model": run.base_model.name,
            "dataset": run.dataset.name if run.dataset is not None else None,
            "url": run_url(run),
            "created_at": _iso(run.created_at),
            "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at),
        },
        "evaluation": None,
    }
    if evaluation is not None:
        payload["evaluation"] = {
            "id": evaluation.pk,
            "status": evaluation.status,
            "epochs": evaluation.epochs,
            "images": evaluation.done_images,
            "url": run_url(run) + "#evaluation",
        }
    return payload
