"""Shared fixtures: personas (healthchecks' alice/bob/charlie) and isolated file storage."""

import pytest

from tests.factories import make_user


@pytest.fixture(autouse=True)
def _isolated_files(settings, tmp_path):
    """Each test writes media and work files into its own temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LORASTUDIO_WORK_DIR = tmp_path / "work"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


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
