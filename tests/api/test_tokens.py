"""Personal API tokens: the page and `manage.py api_token` create them (shown once, stored
hashed), the page and the admin revoke them."""

import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from api.models import ApiToken
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db


def test_the_page_creates_a_token_shown_once_and_stored_as_a_hash(student_client, student):
    response = student_client.post("/api-tokens/", {"name": "sweep script"})
    assert response.status_code == 200
    text = response.context["created"]["text"]
    assert text.startswith("lst_") and text in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    token = ApiToken.objects.get(user=student)
    assert (
        token.name == "sweep script" and token.digest == hashlib.sha256(text.encode()).hexdigest()
    )
    assert text not in str(ApiToken.objects.values_list().get())  # nowhere in the row
    assert student_client.get("/api/v1/runs/", headers=bearer(text)).status_code == 200
    page = student_client.get("/api-tokens/").content.decode()
    assert "sweep script" in page and token.prefix in page and text not in page


def test_a_token_needs_a_name_and_nothing_is_created_without(student_client):
    response = student_client.post("/api-tokens/", {"name": "  "})
    assert response.status_code == 200 and response.context["created"] is None
    assert not ApiToken.objects.exists()


def test_revoke_on_the_page_closes_the_api_to_that_token(student_client, student, token_for):
    text = token_for(student)
    token = ApiToken.objects.get(user=student)
    response = student_client.post(f"/api-tokens/{token.pk}/revoke/")
    assert response.status_code == 302 and response["Location"] == "/api-tokens/"
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert student_client.get("/api/v1/runs/", headers=bearer(text)).status_code == 401


def test_another_users_token_cannot_be_revoked_or_seen(client, student, other_student, token_for):
    text = token_for(student)
    token = ApiToken.objects.get(user=student)
    client.force_login(other_student)
    assert token.prefix not in client.get("/api-tokens/").content.decode()
    assert client.post(f"/api-tokens/{token.pk}/revoke/").status_code == 404
    assert client.get(f"/api-tokens/{token.pk}/revoke/").status_code == 405
    token.refresh_from_db()
    assert token.revoked_at is None
    assert client.get("/api/v1/runs/", headers=bearer(text)).status_code == 200


def test_the_page_needs_a_login_and_is_linked_from_the_nav(student_client):
    assert Client().get("/api-tokens/").status_code == 302
    assert 'href="/api-tokens/"' in student_client.get("/api-tokens/").content.decode()


def test_api_token_command_prints_a_working_token_once(client, student):
    out, err = StringIO(), StringIO()
    call_command("api_token", "alice", "--name", "cron job", stdout=out, stderr=err)
    text = out.getvalue().strip()
    assert text.startswith("lst_") and "shown only now" in err.getvalue()
    assert ApiToken.objects.get(user=student).name == "cron job"
    assert client.get("/api/v1/datasets/", headers=bearer(text)).status_code == 200


def test_api_token_command_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("api_token", "nobody", stdout=StringIO(), stderr=StringIO())
    assert not ApiToken.objects.exists()


def test_staff_revoke_tokens_in_the_admin(staff_client, student, token_for):
    text = token_for(student)
    token = ApiToken.objects.get(user=student)
    changelist = "/admin/api/apitoken/"
    assert staff_client.get(changelist).status_code == 200
    assert staff_client.get(f"{changelist}{token.pk}/change/").status_code == 200
    response = staff_client.post(
        changelist, {"action": "revoke", "_selected_action": [token.pk]}, follow=True
    )
    assert "Revoked 1 token(s)." in response.content.decode()
    assert staff_client.get("/api/v1/runs/", headers=bearer(text)).status_code == 401
