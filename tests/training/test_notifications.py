"""Mail when a run succeeds, fails, is cancelled, waits for approval (staff) or its evaluation
is ready; sent by a queued task, never inside the request or the runner; each user chooses on
the settings page."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django_q.conf import Conf
from django_q.models import OrmQ

from tests.factories import make_run
from tests.queue_helpers import free_port
from tests.training.admin_helpers import finished, submitted
from training import services, tasks
from training.choices import NotifyEvent
from training.evaluation.lifecycle import move
from training.lifecycle import transition
from training.models import Evaluation, NotificationSettings


@pytest.fixture
def queue_inline(monkeypatch):
    """The node's cluster, inline: django-q2 runs a task where it is sent (sync)."""
    monkeypatch.setattr(Conf, "SYNC", True)


def subjects() -> list[str]:
    return [m.subject for m in mail.outbox]


# --- Through the queue ----------------------------------------------------------------------


def test_the_request_only_queues_the_mail_and_the_cluster_sends_it(
    student_client, student, django_capture_on_commit_callbacks
):
    run = submitted(student)
    with django_capture_on_commit_callbacks(execute=True):
        response = student_client.post(reverse("training:run-cancel", args=[run.pk]))
    assert response.status_code == 302
    assert mail.outbox == []  # nothing was sent while the request ran
    queued = [q.task for q in OrmQ.objects.all()]
    sends = [t for t in queued if t["func"] == "training.tasks.send_notifications"]
    assert [t["args"] for t in sends] == [(NotifyEvent.RUN_CANCELLED.value, run.pk, None)]
    tasks.send_notifications(*sends[0]["args"])  # what the cluster runs
    assert subjects() == [f"Run #{run.pk} was cancelled"]
    assert mail.outbox[0].to == ["alice@lab.example"]


@pytest.mark.parametrize(
    ("status", "subject", "words"),
    [
        ("succeeded", "Run #{pk} “dogs” succeeded", "Its LoRA files, samples and log:"),
        ("failed", "Run #{pk} “dogs” failed: Trainer error", "Its log and any files it wrote"),
    ],
)
def test_a_finished_run_is_mailed_to_its_owner(
    student, queue_inline, django_capture_on_commit_callbacks, status, subject, words
):
    run = submitted(student, name="dogs")
    with django_capture_on_commit_callbacks(execute=True):
        finished(run, status=status)
    assert subjects() == [subject.format(pk=run.pk)]
    message = mail.outbox[0]
    assert message.to == ["alice@lab.example"]
    assert words in message.body
    assert f"http://127.0.0.1:8000/runs/{run.pk}/" in message.body
    assert "http://127.0.0.1:8000/settings/" in message.body


def test_the_site_address_comes_from_the_setting(
    settings, student, queue_inline, django_capture_on_commit_callbacks
):
    settings.LORASTUDIO_SITE_URL = "https://lora.lab.example"
    run = submitted(student)
    with django_capture_on_commit_callbacks(execute=True):
        services.cancel_run(run, by=student)
    assert f"https://lora.lab.example/runs/{run.pk}/" in mail.outbox[0].body


def test_a_run_waiting_for_approval_is_mailed_to_staff_only(
    settings, student, staff, queue_inline, django_capture_on_commit_callbacks
):
    settings.LORASTUDIO_REQUIRE_APPROVAL = True
    with django_capture_on_commit_callbacks(execute=True):
        run = submitted(student)
    assert subjects() == [f"Run #{run.pk} by alice waits for approval"]
    assert mail.outbox[0].to == ["charlie@lab.example"]
    assert "status__exact=pending_approval" in mail.outbox[0].body


def test_an_evaluation_ready_is_mailed_to_the_runs_owner(
    student, queue_inline, django_capture_on_commit_callbacks
):
    run = finished(submitted(student))
    evaluation = Evaluation.objects.create(
        run=run, checkpoints=[{"epoch": 2, "artifact": None, "final": True}], done_images=4
    )
    with django_capture_on_commit_callbacks(execute=True):
        for step in ("assigned", "running", "succeeded"):
            move(evaluation, step)
    assert subjects() == [f"The evaluation of Run #{run.pk} is ready"]
    assert "4 pictures of epochs 2" in mail.outbox[0].body
    assert f"/runs/{run.pk}/#evaluation" in mail.outbox[0].body


def test_nothing_is_sent_to_who_opted_out_or_has_no_address(
    student, other_student, queue_inline, django_capture_on_commit_callbacks
):
    NotificationSettings.objects.create(user=student, email_events=[])
    other_student.email = ""
    other_student.save()
    with django_capture_on_commit_callbacks(execute=True):
        finished(submitted(student))
        finished(submitted(other_student))
    assert mail.outbox == []


def test_a_mail_server_that_is_down_fails_the_task_not_the_run(
    settings, student, queue_inline, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    run = submitted(student)
    with django_capture_on_commit_callbacks(execute=True):
        finished(run)
    run.refresh_from_db()
    assert run.status == "succeeded"
    with pytest.raises(RuntimeError, match="failed: mail to alice: ConnectionRefusedError"):
        tasks.send_notifications(NotifyEvent.RUN_SUCCEEDED, run.pk)


def test_a_draft_run_moving_to_the_queue_mails_nobody(
    student, queue_inline, django_capture_on_commit_callbacks
):
    run = make_run(owner=student)
    with django_capture_on_commit_callbacks(execute=True):
        transition(run, "queued")
    assert mail.outbox == []


# --- The settings page ----------------------------------------------------------------------


def test_the_settings_page_is_in_the_nav_and_shows_the_defaults(student_client):
    page = student_client.get(reverse("home")).content.decode()
    assert f'href="{reverse("account-settings")}"' in page
    page = student_client.get(reverse("account-settings")).content.decode()
    assert 'value="run.succeeded" checked' in page.replace('id="id_email_events_0" ', "")
    assert "run.pending_approval" not in page  # a staff event
    assert "Save your settings once to get your secret." in page


def test_saving_the_settings_changes_what_is_mailed(
    student_client, student, queue_inline, django_capture_on_commit_callbacks
):
    response = student_client.post(
        reverse("account-settings"), {"email_events": ["run.failed"], "webhook_url": ""}
    )
    assert response.status_code == 302
    assert NotificationSettings.objects.get(user=student).email_events == ["run.failed"]
    with django_capture_on_commit_callbacks(execute=True):
        finished(submitted(student))
        failed = finished(submitted(student), status="failed")
    assert subjects() == [f"Run #{failed.pk} failed: Trainer error"]


def test_staff_may_choose_the_approval_mail_and_students_may_not(student_client, student, staff):
    response = student_client.post(
        reverse("account-settings"), {"email_events": ["run.pending_approval"]}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not NotificationSettings.objects.filter(user=student).exists()
    staff_client = Client()
    staff_client.force_login(staff)
    response = staff_client.post(
        reverse("account-settings"), {"email_events": ["run.pending_approval"]}
    )
    assert response.status_code == 302
    assert NotificationSettings.objects.get(user=staff).email_events == ["run.pending_approval"]


def test_settings_need_a_login_and_the_csrf_token(student):
    assert Client().get(reverse("account-settings"))["Location"].startswith(reverse("login"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(student)
    assert client.post(reverse("account-settings"), {"email_events": []}).status_code == 403
    assert not NotificationSettings.objects.exists()
