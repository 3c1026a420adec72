"""Who gets in: a valid token of an active user, never a session cookie; per-token limits."""

import pytest
from django.test import Client

from api.models import ApiToken
from api.tokens import revoke_token
from datasets.models import Dataset
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db


def test_missing_malformed_and_unknown_tokens_answer_401(client, student, token_for):
    token = token_for(student)
    for headers in (
        {},
        {"Authorization": "Token lst_not-a-real-token"},
        {"Authorization": f"Bearer {token}"},
        {"Authorization": token},
        {"Authorization": "Token " + token + "x"},
    ):
        response = client.get("/api/v1/runs/", headers=headers)
        assert response.status_code == 401, headers
        assert "Authorization: Token" in response.json()["detail"]
        assert response["WWW-Authenticate"] == "Token"
    assert client.get("/api/v1/runs/", headers=bearer(token)).status_code == 200


def test_a_revoked_token_answers_401_at_once(client, student, token_for):
    token = token_for(student)
    assert client.get("/api/v1/datasets/", headers=bearer(token)).status_code == 200
    revoke_token(ApiToken.objects.get(user=student), by=student)
    assert client.get("/api/v1/datasets/", headers=bearer(token)).status_code == 401


def test_the_token_of_a_deactivated_user_answers_401(client, student, token_for):
    token = token_for(student)
    student.is_active = False
    student.save()
    assert client.get("/api/v1/datasets/", headers=bearer(token)).status_code == 401


def test_a_logged_in_browser_session_does_not_open_the_api(student_client):
    assert student_client.get("/api/v1/runs/").status_code == 401
    response = student_client.post(
        "/api/v1/datasets/", {"name": "via cookie"}, content_type="application/json"
    )
    assert response.status_code == 401
    assert not Dataset.objects.exists()


def test_token_requests_need_no_csrf_token(student, token_for):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/api/v1/datasets/",
        {"name": "from a script"},
        content_type="application/json",
        headers=bearer(token_for(student)),
    )
    assert response.status_code == 201, response.content
    assert Dataset.objects.get(owner=student).name == "from a script"


def test_each_token_has_its_rate_limit_then_429_with_retry_after(
    client, student, token_for, settings
):
    settings.LORASTUDIO_API_REQUESTS_PER_MINUTE = 3
    token, other = token_for(student), token_for(student, "second script")
    for _ in range(3):
        assert client.get("/api/v1/runs/", headers=bearer(token)).status_code == 200
    refused = client.get("/api/v1/runs/", headers=bearer(token))
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "at most 3 a minute" in refused.json()["detail"]
    assert client.get("/api/v1/runs/", headers=bearer(other)).status_code == 200


def test_the_openapi_description_lists_every_endpoint(client):
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    schema = response.json()
    paths = set(schema["paths"])
    assert {
        "/api/v1/datasets/",
        "/api/v1/datasets/{dataset_id}/images/",
        "/api/v1/runs/",
        "/api/v1/runs/{run_id}/",
        "/api/v1/runs/{run_id}/log/",
        "/api/v1/runs/{run_id}/cancel/",
        "/api/v1/runs/{run_id}/resume/",
        "/api/v1/runs/{run_id}/lora/",
    } <= paths
    schemes = schema["components"]["securitySchemes"]
    assert {"type": "apiKey", "in": "header", "name": "Authorization"}.items() <= next(
        iter(schemes.values())
    ).items()
    assert set(schema["paths"]["/api/v1/runs/"]) == {"get", "post"}
    docs = client.get("/api/v1/docs/")  # served from the app's own static files
    assert docs.status_code == 200 and b"/static/ninja/swagger-ui" in docs.content
