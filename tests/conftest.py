"""Shared fixtures: personas (healthchecks' alice/bob/charlie) and isolated file storage."""

import pytest

from tests.factories import make_user


@pytest.fixture(autouse=True)
def _isolated_files(settings, tmp_path):
    """Each test writes media and work files into its own temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LORASTUDIO_WORK_DIR = tmp_path / "work"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if settings.REDIS_URL:
        # The PostgreSQL + Redis pass exercises the configured channels_redis layer.
        _flush_redis_layer(settings.CHANNEL_LAYERS["default"])
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def _flush_redis_layer(config: dict) -> None:
    """Forget every message and group an earlier test left on the Redis layer.

    One flush per test rather than one layer (prefix) per test: each layer instance keeps
    its own connections on every event loop that used it, so new layers would pile them up.
    """
    import redis

    options = config.get("CONFIG", {})
    prefix = options.get("prefix", "asgi")
    for host in options["hosts"]:
        client = redis.Redis.from_url(host) if isinstance(host, str) else redis.Redis(**host)
        with client:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)


@pytest.fixture
def student(db):
    return make_user(username="alice")


@pytest.fixture
def other_student(db):
    return make_user(username="bob")


@pytest.fixture
def staff(db):
    return make_user(username="charlie", is_staff=True, is_superuser=True)


@pytest.fixture
def student_client(client, student):
    client.force_login(student)
    return client


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client
