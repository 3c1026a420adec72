"""Read settings from the environment: typed helpers and a small .env reader."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.core.exceptions import ImproperlyConfigured


def load_dotenv(path: Path) -> None:
    """Load KEY=VALUE lines from `path` into os.environ, never overriding real variables."""
    if not path.is_file():
        return
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ImproperlyConfigured(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        os.environ.setdefault(key, value)


# Django's own rule for a usable key (its security.W009 check), and words of placeholders such
# as deploy/lorastudio.env.example's "change-me-to-a-long-random-string".
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5
SECRET_KEY_PLACEHOLDERS = (
    "change-me",
    "changeme",
    "change_me",
    "replace-me",
    "replace_me",
    "django-insecure",
    "placeholder",
    "your-secret",
    "your_secret",
    "dry-run-only",
)


def secret_key_problem(name: str, key: str) -> str | None:
    """Why `key` is no real secret (a placeholder, too short, too few different characters),
    naming the variable `name`; None for a usable key."""
    how = "generate one: python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
    lowered = key.lower()
    if any(word in lowered for word in SECRET_KEY_PLACEHOLDERS):
        return f"{name} is a placeholder, not a secret: {how}"
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return (
            f"{name} is too short ({len(key)} characters, at least {SECRET_KEY_MIN_LENGTH}): {how}"
        )
    if len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return f"{name} has too few different characters to be a secret: {how}"
    return None


def env_str(name: str, default: str = "") -> str:
    """Return the variable as a string, or `default` when unset."""
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    """Return True/False from exactly "True" or "False" (also lowercase); anything else fails."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value in ("True", "true", "1"):
        return True
    if value in ("False", "false", "0"):
        return False
    raise ImproperlyConfigured(f"{name} must be True or False, not {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    """Return an integer variable, failing with a message that names the variable."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    """Return a float variable, failing with a message that names the variable."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise ImproperlyConfigured(f"{name} must be a finite number, not {value!r}")
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum:g}, not {number:g}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    """Return a comma-separated list variable."""
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_names(name: str) -> list[str]:
    """A comma-separated list of environment variable names, each NAME or PREFIX*."""
    names = env_list(name, [])
    for item in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\*?", item):
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not a variable name (NAME, or PREFIX* for a prefix)"
            )
    return names


def env_path(name: str, default: Path) -> Path:
    """Return an absolute path variable (relative values are refused)."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    path = Path(value).expanduser()
    if not path.is_absolute():
        raise ImproperlyConfigured(f"{name} must be an absolute path, not {value!r}")
    return path


def parse_database_url(name: str, url: str) -> dict:
    """Turn sqlite:///PATH or postgres://USER:PASS@HOST:PORT/NAME into a DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # sqlite:///relative/file or sqlite:////absolute/file
        path = unquote(url[len("sqlite:///") :])
        if not path:
            raise ImproperlyConfigured(f"{name} has no SQLite file path: {url!r}")
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        }
    if parsed.scheme in ("postgres", "postgresql", "pgsql"):
        if not parsed.path.strip("/"):
            raise ImproperlyConfigured(f"{name} has no database name: {url!r}")
        try:
            port = parsed.port
        except ValueError:
            raise ImproperlyConfigured(f"{name} has a bad port: {url!r}") from None
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": unquote(parsed.hostname or ""),
            "PORT": str(port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    raise ImproperlyConfigured(
        f"{name} must start with sqlite:/// or postgres://, not {parsed.scheme or url!r}"
    )
