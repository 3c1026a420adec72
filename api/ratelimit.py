"""Requests per token and minute, counted in Django's cache (shared through Redis when
REDIS_URL is set; per web-server process otherwise)."""

from __future__ import annotations

import math
import time

from django.core.cache import cache

WINDOW_S = 60


def wait_seconds(key: str, *, limit: int, window: int = WINDOW_S, now: float | None = None):
    """Count one request for `key`; None when it may go on, else the whole seconds until the
    current window ends (the answer's Retry-After)."""
    now = time.time() if now is None else now
    slot = int(now // window)
    name = f"api-rate:{key}:{slot}"
    cache.add(name, 0, timeout=window + 1)
    try:
        count = cache.incr(name)
    except ValueError:  # it expired between add and incr
        cache.set(name, 1, timeout=window + 1)
        count = 1
    if count <= limit:
        return None
    return max(1, math.ceil((slot + 1) * window - now))
