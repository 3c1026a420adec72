"""Websocket guards: which pages may open a socket, the login behind an open socket, and what
a client may send.

**Origin.** A browser sends the page's origin with every websocket handshake and lets any page
open a socket to any address, cookies included; so another web app on the lab machine
(ComfyUI on :8188, SwarmUI on :7801) could read a logged-in student's run logs unless the
origin is checked. Channels' AllowedHostsOriginValidator compares host names only
(`http://localhost:1` passed). `SameOriginValidator` applies the rule Django's CSRF check
applies to a form POST: scheme, host and port must all match

- the site as the browser reached it: `https` when the socket is `wss` (or, behind a proxy,
  when `SECURE_PROXY_SSL_HEADER` — `X-Forwarded-Proto: https`, trusted only with
  `LORASTUDIO_HTTPS=True` — says so), else `http`; host and port from the `Host` header, which
  must be one of `ALLOWED_HOSTS`; a missing port is the scheme's default (80 or 443);
- or one of `CSRF_TRUSTED_ORIGINS` (`https://*.lab.example` allows its subdomains).

Behind a proxy that rewrites `Host` (e.g. nginx's default `proxy_set_header Host
$proxy_host`), the browser's origin matches neither: pass `Host $host` (and
`X-Forwarded-Proto`), or list the public origin in `CSRF_TRUSTED_ORIGINS`. Sockets without
an Origin header (not a browser) are refused too.

**Session.** A socket authenticates once, at its handshake; `SessionGuard` re-checks the
login behind it before every push and every `LORASTUDIO_WS_SESSION_CHECK_SECONDS`, and closes
the socket (code 4401) once the session has ended (logout, expiry, password change,
deactivated account).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from importlib import import_module
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth import get_user
from django.http import HttpRequest
from django.http.request import is_same_domain, split_domain_port, validate_host

logger = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "https": 443}
# Clients of our pages send a few dozen bytes; anything longer is not one of them.
MAX_CLIENT_MESSAGE_CHARS = 1024
# The largest log sequence number a client may name (RunLog.seq is a 32-bit integer).
MAX_SEQ = 2**31 - 1
# The close code that tells our pages "logged out: do not reconnect".
SESSION_ENDED = 4401


# --- Origin ---------------------------------------------------------------------------------


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _origin_parts(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin URL, the port defaulted by scheme; None if invalid."""
    try:
        parts = urlsplit(url.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def _is_secure(scope) -> bool:
    """Whether the browser reached us over TLS: a `wss` scope, or the trusted proxy header."""
    if scope.get("scheme") in ("wss", "https"):
        return True
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if not proxy:
        return False
    meta_name, expected = proxy
    name = meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1")
    value = _header(scope, name)
    return value is not None and value.split(",", 1)[0].strip() == expected


def _allowed_hosts() -> list[str]:
    """ALLOWED_HOSTS as Django's HttpRequest.get_host reads it."""
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return allowed


def site_origin(scope) -> tuple[str, str, int] | None:
    """(scheme, host, port) of this site as the socket's browser reached it; None when the
    Host header is missing or not one of ALLOWED_HOSTS."""
    host = _header(scope, b"host")
    if not host:
        return None
    domain, port = split_domain_port(host)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return None
    scheme = "https" if _is_secure(scope) else "http"
    return _origin_parts(f"{scheme}://{domain}" + (f":{port}" if port else ""))


def _trusted(origin: tuple[str, str, int]) -> bool:
    scheme, host, port = origin
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        wildcard = "://*." in entry
        trusted = _origin_parts(entry.replace("://*.", "://", 1) if wildcard else entry)
        if trusted is None or trusted[0] != scheme or trusted[2] != port:
            continue
        if host == trusted[1] or (wildcard and is_same_domain(host, "." + trusted[1])):
            return True
    return False


def origin_allowed(scope) -> bool:
    """Whether the socket's Origin is this site (scheme, host and port) or a trusted origin."""
    raw = _header(scope, b"origin")
    origin = _origin_parts(raw) if raw else None
    if origin is None:
        return False
    return origin == site_origin(scope) or _trusted(origin)


class SameOriginValidator:
    """ASGI middleware: refuse (HTTP 403) a websocket whose page is not one of this site's."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            logger.info(
                "Refused a websocket from origin %r (Host %r)",
                _header(scope, b"origin"),
                _header(scope, b"host"),
            )
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)


# --- What a client sends --------------------------------------------------------------------


def client_message(text: str | None) -> dict | None:
    """A client's text frame as a JSON object, or None for anything else (binary frames,
    oversized or malformed text, deeply nested JSON, arrays, numbers): never an exception."""
    if text is None or len(text) > MAX_CLIENT_MESSAGE_CHARS:
        return None
    try:
        content = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return content if isinstance(content, dict) else None


def seq_number(value) -> int | None:
    """A log sequence number a client sent (int, integral float or digits), clamped to
    0..MAX_SEQ; None when it is not one (1e400, NaN, true, "abc", a list)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        value = int(value)
    elif isinstance(value, str):
        if not value.isascii() or not value.isdigit() or len(value) > 12:
            return None
        value = int(value)
    elif not isinstance(value, int):
        return None
    return min(max(0, value), MAX_SEQ)


# --- The login behind a socket --------------------------------------------------------------


def session_user_id(session_key: str | None) -> int | None:
    """The id of the user that session `session_key` is still logged in as, else None.

    Django's own check, as for an HTTP request: the session exists and has not expired, its
    backend is configured, the user exists and is active, and the password did not change.
    """
    if not session_key:
        return None
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user(request)
    return user.pk if user.is_authenticated else None


class SessionGuard:
    """Mixin for websocket consumers: close the socket once its login session has ended.

    Call `start_session_guard()` after accepting, `await self.session_alive()` before every
    push (it closes the socket and returns False when the session is gone), and
    `stop_session_guard()` on disconnect.
    """

    _guard: asyncio.Task | None = None
    _ended = False

    def start_session_guard(self) -> None:
        self._session_key = self.scope["session"].session_key
        self._user_id = self.scope["user"].pk
        self._guard = asyncio.ensure_future(self._watch_session())

    def stop_session_guard(self) -> None:
        if self._guard is not None:
            self._guard.cancel()

    async def session_alive(self) -> bool:
        """Whether the socket's login still holds; closes the socket (once) when not."""
        if self._ended:
            return False
        code = SESSION_ENDED
        try:
            user_id = await database_sync_to_async(session_user_id)(self._session_key)
            alive = user_id is not None and user_id == self._user_id
        except Exception:
            # Cannot tell (e.g. the database is away): close as a server error, so that the
            # page reconnects and its handshake checks the login again.
            logger.exception("Could not re-check the session of a websocket")
            alive, code = False, 1011
        if not alive:
            self._ended = True
            await self.close(code=code)
        return alive

    async def _watch_session(self) -> None:
        # The handshake has just checked the login: the first re-check comes one period later.
        interval = settings.LORASTUDIO_WS_SESSION_CHECK_SECONDS
        while True:
            await asyncio.sleep(interval)
            if not await self.session_alive():
                return
