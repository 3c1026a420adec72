"""Failed logins are throttled per username and per client address, on the site's login page
and on the admin's, with a clear message; a throttled attempt checks no password."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from lorastudio.models import LoginFailure
from tests.factories import make_user

pytestmark = pytest.mark.django_db

THROTTLED = "Too many failed logins"


def login(client, username, password, *, address="10.0.0.1", url="login"):
    return client.post(
        reverse(url), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def logged_in(client) -> bool:
    return client.get(reverse("home")).status_code == 200


def test_thirty_wrong_passwords_are_throttled_after_five(client, student):
    pages = [login(client, "alice", f"guess-{i}").content.decode() for i in range(30)]
    assert all("did not match" in page for page in pages[:5])
    assert all(THROTTLED + " for this username" in page for page in pages[5:])
    assert "Try again in 15 minutes" in pages[5]
    # The count stops growing while refused: an attacker cannot extend it without bound.
    assert LoginFailure.objects.filter(username="alice").count() == 5


def test_while_throttled_even_the_right_password_is_refused(client, student):
    for i in range(5):
        login(client, "alice", f"guess-{i}")
    response = login(client, "alice", "pw-alice")
    assert response.status_code == 200
    assert THROTTLED in response.content.decode()
    assert not logged_in(client)


def test_the_username_throttle_ignores_case_and_other_addresses(client, student):
    for i in range(5):
        login(client, "ALICE", f"guess-{i}", address=f"10.0.1.{i}")
    response = login(client, "alice", "pw-alice", address="10.9.9.9")
    assert THROTTLED + " for this username" in response.content.decode()


def test_one_address_guessing_many_usernames_is_throttled(client, student):
    for i in range(20):
        login(client, f"user{i}", "guess", address="10.0.0.66")
    response = login(client, "alice", "pw-alice", address="10.0.0.66")
    assert THROTTLED + " from your address" in response.content.decode()
    assert not logged_in(client)
    # Another address is not affected.
    assert login(client, "alice", "pw-alice", address="10.0.0.2").status_code == 302


def test_limits_come_from_the_settings(settings, client, student):
    settings.LORASTUDIO_LOGIN_FAILURES_PER_USERNAME = 2
    settings.LORASTUDIO_LOGIN_FAILURE_WINDOW_SECONDS = 60
    login(client, "alice", "a")
    login(client, "alice", "b")
    page = login(client, "alice", "pw-alice").content.decode()
    assert THROTTLED in page and "Try again in 1 minute," in page


def test_the_throttle_ends_when_the_failures_leave_the_window(client, student):
    for i in range(5):
        login(client, "alice", f"guess-{i}")
    LoginFailure.objects.update(at=timezone.now() - timedelta(seconds=901))
    assert login(client, "alice", "pw-alice").status_code == 302
    assert logged_in(client)


def test_a_successful_login_forgets_its_usernames_failures(client, student):
    for i in range(4):
        login(client, "alice", f"typo-{i}")
    assert login(client, "alice", "pw-alice").status_code == 302
    client.post(reverse("logout"))
    for i in range(4):
        login(client, "alice", f"typo-again-{i}")
    assert login(client, "alice", "pw-alice").status_code == 302


def test_the_admin_login_is_throttled_too(client, staff):
    for i in range(5):
        login(client, "charlie", f"guess-{i}", url="admin:login")
    response = login(client, "charlie", "pw-charlie", url="admin:login")
    assert response.status_code == 200
    assert THROTTLED in response.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302  # still not logged in


def test_failures_on_one_door_count_on_the_other(client, staff):
    for i in range(5):
        login(client, "charlie", f"guess-{i}", url="admin:login")
    assert THROTTLED in login(client, "charlie", "pw-charlie").content.decode()


def test_staff_see_failed_logins_and_can_lift_a_throttle(client, staff_client, student):
    for i in range(5):
        login(client, "alice", f"guess-{i}")
    changelist = reverse("admin:lorastudio_loginfailure_changelist")
    assert "alice" in staff_client.get(changelist).content.decode()
    ids = list(LoginFailure.objects.values_list("pk", flat=True))
    staff_client.post(
        changelist, {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    )
    assert not LoginFailure.objects.exists()
    assert login(client, "alice", "pw-alice").status_code == 302


def test_an_inactive_account_with_the_right_password_counts_as_a_failure(client):
    make_user(username="gone", is_active=False)
    login(client, "gone", "pw-gone")
    assert LoginFailure.objects.filter(username="gone").count() == 1
