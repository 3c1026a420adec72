"""Site-wide records: failed logins (for throttling, lorastudio/throttle.py)."""

from django.db import models
from django.utils import timezone


class LoginFailure(models.Model):
    """One failed login: the username it tried and the address it came from."""

    username = models.CharField(max_length=150)
    address = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at"]
        indexes = [
            models.Index(fields=["username", "at"], name="login_failure_username"),
            models.Index(fields=["address", "at"], name="login_failure_address"),
            models.Index(fields=["at"], name="login_failure_at"),
        ]

    def __str__(self) -> str:
        return f"{self.username or '—'} from {self.address or '?'} at {self.at:%Y-%m-%d %H:%M:%S}"
