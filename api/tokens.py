"""Personal API tokens: create (shown once), revoke, and find the token a request carries.

A token is "lst_" and 43 random URL-safe characters (256 bits). Only its SHA-256 is stored,
with its first 12 characters so that its owner can tell tokens apart; a lost token cannot be
shown again, only revoked and replaced.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from api.models import ApiToken

TOKEN_PREFIX = "lst_"
PREFIX_CHARS = 12
MAX_TOKEN_CHARS = 100
MAX_ACTIVE_TOKENS = 20
# last_used_at is written at most this often per token, not on every request.
TOUCH_EVERY = timedelta(minutes=1)


def digest_of(token: str) -> str:
    """The stored form of a token: its SHA-256 in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _clean_name(name: str) -> str:
    text = " ".join((name or "").split())
    if not text:
        raise ValidationError({"name": "Give the token a name (what is it for?)."})
    if len(text) > 100:
        raise ValidationError({"name": "At most 100 characters."})
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
        raise ValidationError({"name": "The name cannot hold control characters."})
    return text


@transaction.atomic
def create_token(user, name: str) -> tuple[ApiToken, str]:
    """Create a token for `user`; return it and the token text (shown once, never stored)."""
    if not user.is_active:
        raise ValidationError(f"{user} is not an active user.")
    label = _clean_name(name)
    if ApiToken.objects.active().filter(user=user).count() >= MAX_ACTIVE_TOKENS:
        raise ValidationError(
            f"{user} already has {MAX_ACTIVE_TOKENS} tokens; revoke one you no longer use."
        )
    text = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=label, prefix=text[:PREFIX_CHARS], digest=digest_of(text)
    )
    return token, text


@transaction.atomic
def revoke_token(token: ApiToken, *, by) -> ApiToken:
    """Revoke a token at once (its owner or staff); revoking twice changes nothing."""
    if not (by.is_staff or by.pk == token.user_id):
        raise PermissionDenied("Only the token's owner or staff revoke it.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def token_for(text: str | None) -> ApiToken | None:
    """The active token of an active user that `text` is, or None (then the API answers 401)."""
    text = (text or "").strip()
    if not text.startswith(TOKEN_PREFIX) or len(text) > MAX_TOKEN_CHARS:
        return None
    token = (
        ApiToken.objects.active()
        .select_related("user")
        .filter(digest=digest_of(text), user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
