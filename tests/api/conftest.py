"""The API's tests: real tokens through the real door (the test client, /api/v1/)."""

import pytest

from api.tokens import create_token


def bearer(token: str) -> dict:
    """The header a script sends."""
    return {"Authorization": f"Token {token}"}


@pytest.fixture
def token_for(db):
    """A new API token (its text) for a user."""

    def make(user, name: str = "test script") -> str:
        return create_token(user, name)[1]

    return make


@pytest.fixture
def student_api(client, student, token_for):
    """The test client acting as the student's script: `get`, `post` with their token."""
    return ApiClient(client, token_for(student))


class ApiClient:
    def __init__(self, client, token: str):
        self.client, self.token = client, token

    def get(self, path: str, **kw):
        return self.client.get(path, headers=bearer(self.token), **kw)

    def post(self, path: str, data=None, **kw):
        if "content_type" not in kw and not isinstance(data, dict | type(None)):
            kw["content_type"] = "application/json"
        return self.client.post(path, data, headers=bearer(self.token), **kw)

    def post_json(self, path: str, data=None):
        return self.client.post(
            path, data or {}, content_type="application/json", headers=bearer(self.token)
        )
