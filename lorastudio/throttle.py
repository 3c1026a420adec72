"""Login throttling: too many failed logins for one username, or from one address, within a
window refuse further attempts (the right password included) until the window has passed.

Failures are rows in the database (LoginFailure), not cache entries: the web server, the admin
and any other process see the same counts on SQLite and PostgreSQL without a shared cache,
and a restart does not reset them. Every login door goes through `authenticate()`, whose
`user_login_failed` signal records the failure; the login forms (lorastudio/forms.py) ask
`login_refusal` before they authenticate, so a throttled attempt checks no password and
records nothing more. A successful login forgets its username's failures (not its address's,
or one valid account could reset the address count while guessing others).
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.utils import timezone

from lorastudio.models import LoginFailure


def _key(username: str) -> str:
    # Usernames differ by case for Django, not for someone guessing passwords.
    return (username or "").strip().lower()[:150]


def client_address(request) -> str:
    """The browser's address as the web server saw it (behind a proxy, daphne's
    --proxy-headers puts X-Forwarded-For there)."""
    if request is None:
        return ""
    return (request.META.get("REMOTE_ADDR") or "")[:64]


def _wait_text(failures, limit: int, window: timedelta, now) -> str:
    """How long until the oldest failure that keeps the limit reached leaves the window."""
    oldest_counted = failures.order_by("-at").values_list("at", flat=True)[limit - 1]
    minutes = max(1, math.ceil((oldest_counted + window - now).total_seconds() / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def login_refusal(username: str, address: str) -> str | None:
    """Why a login for `username` from `address` is refused now, or None when it may go on."""
    window = timedelta(seconds=settings.LORASTUDIO_LOGIN_FAILURE_WINDOW_SECONDS)
    now = timezone.now()
    recent = LoginFailure.objects.filter(at__gt=now - window)
    checks = [
        (
            recent.filter(username=_key(username)),
            settings.LORASTUDIO_LOGIN_FAILURES_PER_USERNAME,
            "for this username",
        )
    ]
    if address:
        checks.append(
            (
                recent.filter(address=address),
                settings.LORASTUDIO_LOGIN_FAILURES_PER_ADDRESS,
                "from your address",
            )
        )
    for failures, limit, where in checks:
        if failures.count() >= limit:
            wait = _wait_text(failures, limit, window, now)
            return (
                f"Too many failed logins {where}. Try again in {wait}, or ask lab staff to "
                "reset your password."
            )
    return None


def record_login_failure(username: str, address: str) -> None:
    """Note one failed login (not while already refused: the count stops growing there)."""
    if login_refusal(username, address) is not None:
        return
    window = timedelta(seconds=settings.LORASTUDIO_LOGIN_FAILURE_WINDOW_SECONDS)
    LoginFailure.objects.filter(at__lte=timezone.now() - window).delete()
    LoginFailure.objects.create(username=_key(username), address=address)


def forget_login_failures(username: str) -> None:
    """A successful login: its username starts again from zero."""
    LoginFailure.objects.filter(username=_key(username)).delete()


@receiver(user_login_failed, dispatch_uid="lorastudio.throttle.failed")
def _on_login_failed(sender, credentials, request=None, **kwargs):
    record_login_failure(credentials.get("username", ""), client_address(request))


@receiver(user_logged_in, dispatch_uid="lorastudio.throttle.logged_in")
def _on_logged_in(sender, request, user, **kwargs):
    forget_login_failures(user.get_username())
