"""Token authentication for the API: `Authorization: Token <token>`, and its rate limit.

The API authenticates by token only, never by the session cookie, so a page of another site
cannot make a logged-in browser call it (no CSRF exposure); a request without a valid,
unrevoked token of an active user is answered 401.
"""

from __future__ import annotations

from django.conf import settings
from ninja.security import APIKeyHeader

from api.ratelimit import wait_seconds
from api.tokens import token_for


class RateLimited(Exception):
    """The token used up its requests of this minute; retry after `wait` seconds."""

    def __init__(self, wait: int):
        self.wait = wait
        super().__init__(
            f"Too many requests: at most {settings.LORASTUDIO_API_REQUESTS_PER_MINUTE} "
            f"a minute per token. Retry in {wait} s."
        )


class TokenAuth(APIKeyHeader):
    """`Authorization: Token <token>`; the request then acts as the token's user."""

    param_name = "Authorization"

    def authenticate(self, request, key: str | None):
        scheme, _, text = (key or "").strip().partition(" ")
        if scheme.lower() != "token":
            return None
        token = token_for(text)
        if token is None:
            return None
        wait = wait_seconds(token.digest, limit=settings.LORASTUDIO_API_REQUESTS_PER_MINUTE)
        if wait is not None:
            raise RateLimited(wait)
        request.user = token.user  # what services, history and permissions read
        request.api_token = token
        return token.user
