"""Helpers for websocket tests: a logged-in communicator against the real ASGI application."""

from __future__ import annotations

from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

ORIGIN = b"http://localhost"


def session_cookie(user) -> str:
    """A real session for `user`, as AuthMiddlewareStack reads it from the cookie."""
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return f"{settings.SESSION_COOKIE_NAME}={store.session_key}"


def client_cookie(client) -> str:
    """The session cookie of a logged-in Django test client (its logout ends that session)."""
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}"


def communicator(
    path: str,
    cookie: str | None = None,
    *,
    origin: bytes | None = ORIGIN,
    host: bytes = b"localhost",
    headers: tuple[tuple[bytes, bytes], ...] = (),
):
    """A communicator for `path` with a session cookie (anonymous when None), as a browser
    on page `origin` (none when None) that reached the server as `host` would open it."""
    from lorastudio.asgi import application

    headers = [(b"host", host), *headers]
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path, headers=headers)
