"""Users' webhooks: a signed JSON POST per chosen event, retried with backoff, and URLs into
the lab's own network refused unless staff allow them."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Schedule

from tests.queue_helpers import free_port
from tests.training.admin_helpers import finished, submitted
from tests.training.lab_helpers import WebhookReceiver
from training import tasks
from training.models import NotificationSettings, WebhookDelivery
from training.notifications.webhooks import MAX_ATTEMPTS


@pytest.fixture
def queue_inline(monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def local_hooks(settings):
    """The tests' receiver listens on loopback, which the lab must allow for it."""
    settings.LORASTUDIO_WEBHOOK_ALLOW_PRIVATE = True


def save_webhook(client, url: str, events=("run.succeeded", "run.failed")):
    return client.post(
        reverse("account-settings"),
        {"email_events": [], "webhook_url": url, "webhook_events": list(events)},
    )


def expected_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_finished_run_posts_signed_json_to_the_owners_webhook(
    student_client, student, local_hooks, queue_inline, django_capture_on_commit_callbacks
):
    with WebhookReceiver() as receiver:
        assert save_webhook(student_client, receiver.url).status_code == 302
        page = student_client.get(reverse("account-settings")).content.decode()
        secret = NotificationSettings.objects.get(user=student).webhook_secret
        assert f'<code id="webhook-secret-value">{secret}</code>' in page
        run = submitted(student, name="dogs")
        with django_capture_on_commit_callbacks(execute=True):
            finished(run)
    [request] = receiver.requests
    assert request["path"] == "/hooks/lora?x=1"
    headers = request["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-LoraStudio-Event"] == "run.succeeded"
    assert headers["X-LoraStudio-Signature"] == expected_signature(secret, request["body"])
    payload = receiver.json()
    assert payload["event"] == "run.succeeded"
    assert payload["run"]["id"] == run.pk and payload["run"]["status"] == "succeeded"
    assert payload["run"]["owner"] == "alice" and payload["run"]["name"] == "dogs"
    assert payload["run"]["url"].endswith(f"/runs/{run.pk}/")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 1, 200)


def test_an_event_not_chosen_posts_nothing(
    student_client, student, local_hooks, queue_inline, django_capture_on_commit_callbacks
):
    with WebhookReceiver() as receiver:
        save_webhook(student_client, receiver.url, events=["run.failed"])
        with django_capture_on_commit_callbacks(execute=True):
            finished(submitted(student))
    assert receiver.requests == [] and not WebhookDelivery.objects.exists()


def test_a_failed_call_is_tried_again_later_by_a_schedule(
    student_client, student, local_hooks, queue_inline, django_capture_on_commit_callbacks
):
    with WebhookReceiver(statuses=[503]) as receiver:
        save_webhook(student_client, receiver.url)
        with django_capture_on_commit_callbacks(execute=True):
            finished(submitted(student))
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        assert delivery.last_error == "answered HTTP 503"
        wait = delivery.next_attempt_at - timezone.now()
        assert timedelta(seconds=25) < wait <= timedelta(seconds=30)
        retry = Schedule.objects.get(func="training.tasks.deliver_webhook")
        assert retry.args == f"({delivery.pk},)" and retry.schedule_type == Schedule.ONCE
        assert retry.next_run == delivery.next_attempt_at
        tasks.deliver_webhook(delivery.pk)  # what the schedule runs when it is due
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert len(receiver.requests) == 2
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]


def test_it_gives_up_after_the_last_attempt(student, local_hooks):
    port = free_port()  # nothing listens there
    NotificationSettings.objects.create(
        user=student, webhook_url=f"http://127.0.0.1:{port}/", webhook_events=["run.succeeded"]
    )
    run = finished(submitted(student))
    tasks.send_notifications("run.succeeded", run.pk)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and "ConnectionRefusedError" in delivery.last_error
    for _ in range(MAX_ATTEMPTS - 1):
        tasks.deliver_webhook(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", MAX_ATTEMPTS)
    assert delivery.next_attempt_at is None
    assert Schedule.objects.filter(func="training.tasks.deliver_webhook").count() == 4
    # A late schedule changes nothing.
    assert tasks.deliver_webhook(delivery.pk).endswith("is failed already")
    delivery.refresh_from_db()
    assert delivery.attempts == MAX_ATTEMPTS


def test_a_url_that_became_private_is_given_up_without_a_request(settings, student, local_hooks):
    with WebhookReceiver() as receiver:
        NotificationSettings.objects.create(
            user=student, webhook_url=receiver.url, webhook_events=["run.succeeded"]
        )
        settings.LORASTUDIO_WEBHOOK_ALLOW_PRIVATE = False
        tasks.send_notifications("run.succeeded", finished(submitted(student)).pk)
    assert receiver.requests == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and "loopback, private or reserved" in delivery.last_error


def test_a_new_secret_replaces_the_old_one(student_client, student):
    student_client.post(reverse("account-settings"), {"action": "renew-secret"})
    first = NotificationSettings.objects.get(user=student).webhook_secret
    response = student_client.post(
        reverse("account-settings"), {"action": "renew-secret"}, follow=True
    )
    second = NotificationSettings.objects.get(user=student).webhook_secret
    assert first != second and len(second) == 64
    assert "Your webhook has a new secret" in response.content.decode()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.org/hook", "A webhook URL starts with http:// or https://."),
        ("http://127.0.0.1:8000/admin/", "loopback, private or reserved address (127.0.0.1)"),
        ("http://localhost/", "loopback, private or reserved address"),
        ("https://10.1.2.3/hook", "loopback, private or reserved address (10.1.2.3)"),
        ("http://169.254.169.254/latest/meta-data/", "(169.254.169.254)"),
        ("http://[::1]:9/", "(::1)"),
        ("http://[::ffff:192.168.1.1]/", "(192.168.1.1)"),
        ("http://user:pw@93.184.216.34/", "no user name or password"),
        ("http://93.184.216.34:99999/", "bad port"),
        ("https://no-such-host.invalid/", "cannot be found"),
    ],
)
def test_bad_webhook_urls_are_refused_and_change_nothing(student_client, student, url, message):
    NotificationSettings.objects.create(user=student, webhook_url="https://93.184.216.34/old")
    response = save_webhook(student_client, url)
    assert response.status_code == 200
    assert message in response.content.decode().replace("&#x27;", "'")
    assert NotificationSettings.objects.get(user=student).webhook_url == "https://93.184.216.34/old"


def test_a_public_address_is_accepted(student_client, student):
    assert save_webhook(student_client, "https://93.184.216.34/hooks").status_code == 302
    assert NotificationSettings.objects.get(user=student).webhook_url == (
        "https://93.184.216.34/hooks"
    )


def test_events_without_a_url_are_refused(student_client, student):
    response = save_webhook(student_client, "")
    assert "Give the URL the webhook should call." in response.content.decode()
    assert not NotificationSettings.objects.exists()


def test_staff_see_deliveries_but_not_secrets_in_the_admin(staff_client, student, local_hooks):
    prefs = NotificationSettings.objects.create(
        user=student, webhook_url="http://127.0.0.1:9/", webhook_events=["run.succeeded"]
    )
    tasks.send_notifications("run.succeeded", finished(submitted(student)).pk)
    listing = staff_client.get(reverse("admin:training_webhookdelivery_changelist"))
    assert listing.status_code == 200 and "run.succeeded" in listing.content.decode()
    page = staff_client.get(
        reverse("admin:training_notificationsettings_change", args=[prefs.pk])
    ).content.decode()
    assert prefs.webhook_secret not in page
