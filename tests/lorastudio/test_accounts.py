"""Students log in and land on their own dashboard; nothing has a default password."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from tests.factories import make_dataset


@pytest.mark.django_db
def test_login_lands_on_home_with_own_datasets(client, student, other_student):
    make_dataset(owner=student, name="my cats")
    make_dataset(owner=other_student, name="their dogs")
    response = client.post(
        reverse("login"), {"username": "alice", "password": "pw-alice"}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("home")
    assert b"my cats" in response.content
    assert b"their dogs" not in response.content


@pytest.mark.django_db
def test_wrong_password_stays_on_login(client, student):
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"did not match" in response.content


@pytest.mark.django_db
def test_home_requires_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_logout_is_post_only_and_logs_out(student_client):
    response = student_client.post(reverse("logout"))
    assert response.status_code == 302
    assert student_client.get(reverse("home")).status_code == 302


@pytest.mark.django_db
def test_ensure_superuser_generates_a_password_once(capsys, monkeypatch):
    from io import StringIO

    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    out = StringIO()
    call_command("ensure_superuser", stdout=out)
    text = out.getvalue()
    assert "Its password" in text
    password = text.rsplit(": ", 1)[1].strip()
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    again = StringIO()
    call_command("ensure_superuser", stdout=again)
    assert "already exists" in again.getvalue()
    assert get_user_model().objects.filter(is_superuser=True).count() == 1


@pytest.mark.django_db
def test_ensure_superuser_takes_password_from_environment(monkeypatch):
    from io import StringIO

    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-lab-password")
    out = StringIO()
    call_command("ensure_superuser", "--username", "labadmin", stdout=out)
    assert "a-long-lab-password" not in out.getvalue()
    assert get_user_model().objects.get(username="labadmin").check_password("a-long-lab-password")


@pytest.mark.django_db
def test_ensure_superuser_refuses_to_promote_an_existing_student(student):
    with pytest.raises(CommandError, match="already exists"):
        call_command("ensure_superuser", "--username", "alice")
    student.refresh_from_db()
    assert not student.is_superuser


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("1", "too short"),
        ("password123", "too common"),
        ("83920174629", "entirely numeric"),
        ("labadmin-1", "too similar to the username"),
    ],
)
def test_ensure_superuser_refuses_a_weak_password_from_the_environment(monkeypatch, password, why):
    from io import StringIO

    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", password)
    out = StringIO()
    with pytest.raises(CommandError, match="DJANGO_SUPERUSER_PASSWORD is too weak") as refused:
        call_command("ensure_superuser", "--username", "labadmin", stdout=out)
    assert why in str(refused.value)
    assert password not in str(refused.value)  # the password is never echoed
    assert not get_user_model().objects.exists()


def test_password_validators_are_configured(settings):
    names = {v["NAME"].rsplit(".", 1)[1] for v in settings.AUTH_PASSWORD_VALIDATORS}
    assert names == {
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    }
