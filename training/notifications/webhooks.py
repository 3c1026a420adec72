"""Users' webhooks: the URL check (no requests into the lab's own network), the HMAC
signature, one POST per attempt and the retries with backoff.

A webhook goes only to http(s) addresses that resolve to public IP addresses (unless
LORASTUDIO_WEBHOOK_ALLOW_PRIVATE): the host is resolved when the URL is saved and again at
every attempt, and the request connects to the address that was checked, so a name that
resolves elsewhere a moment later (DNS rebinding) gains nothing. Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from training.choices import DeliveryStatus
from training.models import WebhookDelivery

SIGNATURE_HEADER = "X-LoraStudio-Signature"
TIMEOUT_SECONDS = 10
# The waits before the 2nd, 3rd, 4th and 5th attempt; after the 5th it is given up.
BACKOFF_SECONDS = (30, 120, 600, 3600)
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1


class WebhookRefused(ValueError):
    """A webhook URL we will not call, and why."""


def check_url(url: str, *, allow_private: bool | None = None) -> list[str]:
    """The IP addresses a webhook to `url` may connect to; WebhookRefused says why none."""
    allow = settings.LORASTUDIO_WEBHOOK_ALLOW_PRIVATE if allow_private is None else allow_private
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise WebhookRefused("A webhook URL starts with http:// or https://.")
    if not parts.hostname:
        raise WebhookRefused("The webhook URL has no host name.")
    if parts.username or parts.password:
        raise WebhookRefused(
            "Put no user name or password in the webhook URL: check the signature instead."
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookRefused("The webhook URL has a bad port.") from None
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise WebhookRefused(f"The host {parts.hostname} cannot be found.") from None
    addresses: list[str] = []
    for *_, sockaddr in found:
        ip = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not allow and (not ip.is_global or ip.is_multicast):
            raise WebhookRefused(
                f"{parts.hostname} is a loopback, private or reserved address ({ip}): webhooks "
                "go to public addresses only (the lab's staff can allow private ones)."
            )
        if str(ip) not in addresses:
            addresses.append(str(ip))
    return addresses


def body_of(payload: dict) -> bytes:
    """The exact bytes POSTed (and signed)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: "sha256=" and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address, whatever the host name resolves to now."""

    def __init__(self, host, port, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to the checked address; the certificate is checked against the host name."""

    def __init__(self, host, port, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], *, address: str) -> int:
    """POST `body` to `url` through `address`; return the HTTP status."""
    parts = urlsplit(url.strip())
    kind = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = kind(parts.hostname, parts.port, address=address, timeout=TIMEOUT_SECONDS)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read(64 * 1024)
        return response.status
    finally:
        connection.close()


def attempt(delivery_id: int) -> str:
    """Try one delivery once: delivered on a 2xx answer; otherwise tried again later (a
    django-q2 schedule, BACKOFF_SECONDS) until MAX_ATTEMPTS, then given up. A URL that is
    refused now is given up at once."""
    from training.notifications.services import settings_for

    delivery = WebhookDelivery.objects.select_related("user").get(pk=delivery_id)
    if delivery.status != DeliveryStatus.PENDING:
        return f"webhook #{delivery.pk} is {delivery.status} already"
    body = body_of(delivery.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "LoRA-Studio-webhook",
        "X-LoraStudio-Event": delivery.event,
        "X-LoraStudio-Delivery": str(delivery.pk),
        SIGNATURE_HEADER: signature(settings_for(delivery.user).webhook_secret, body),
    }
    delivery.attempts += 1
    try:
        addresses = check_url(delivery.url)
    except WebhookRefused as exc:
        return _end(delivery, DeliveryStatus.FAILED, error=str(exc))
    try:
        status = post(delivery.url, body, headers, address=addresses[0])
    except (OSError, http.client.HTTPException) as exc:
        error, status = f"{type(exc).__name__}: {exc}", None
    else:
        if 200 <= status < 300:
            return _end(delivery, DeliveryStatus.DELIVERED, status=status)
        error = f"answered HTTP {status}"
    if delivery.attempts >= MAX_ATTEMPTS:
        return _end(delivery, DeliveryStatus.FAILED, status=status, error=error)
    return _retry(delivery, status=status, error=error)


def _end(delivery: WebhookDelivery, to: str, *, status=None, error: str = "") -> str:
    delivery.status, delivery.response_status, delivery.last_error = to, status, error
    delivery.next_attempt_at = None
    if to == DeliveryStatus.DELIVERED:
        delivery.delivered_at = timezone.now()
    delivery.save()
    return f"webhook #{delivery.pk} {to} after {delivery.attempts} attempt(s)" + (
        f": {error}" if error else ""
    )


@transaction.atomic
def _retry(delivery: WebhookDelivery, *, status, error: str) -> str:
    from django_q.models import Schedule
    from django_q.tasks import schedule

    wait = BACKOFF_SECONDS[delivery.attempts - 1]
    delivery.response_status, delivery.last_error = status, error
    delivery.next_attempt_at = timezone.now() + timedelta(seconds=wait)
    delivery.save()
    # A schedule (not a sleeping worker): it survives restarts and holds no worker meanwhile.
    schedule(
        "training.tasks.deliver_webhook",
        delivery.pk,
        name=f"webhook-{delivery.pk}-attempt-{delivery.attempts + 1}",
        schedule_type=Schedule.ONCE,
        next_run=delivery.next_attempt_at,
        cluster=settings.LORASTUDIO_NOTIFY_CLUSTER or settings.LORASTUDIO_NODE,
    )
    return f"webhook #{delivery.pk}: {error}; trying again in {wait} s"
