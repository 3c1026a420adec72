"""Personal API tokens: a script's key to the API, stored only as a hash."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiTokenQuerySet(models.QuerySet):
    def active(self) -> ApiTokenQuerySet:
        """Tokens that still open the API (not revoked)."""
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A personal API token: its owner, a label, the first characters and the secret's hash."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. “sweep script”.")
    # The token's first characters (not secret): how a user tells their tokens apart.
    prefix = models.CharField(max_length=16, editable=False)
    # SHA-256 of the whole token; the token itself is shown once and never stored.
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
