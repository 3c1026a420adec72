"""`make run` (scripts/run_local.py) keeps the settings file private whenever it touches it."""

import importlib.util
import os

import pytest

from tests.paths import REPO


@pytest.fixture
def run_local():
    spec = importlib.util.spec_from_file_location("run_local", REPO / "scripts" / "run_local.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mode(path) -> int:
    return path.stat().st_mode & 0o777


def test_an_existing_world_readable_env_file_is_made_private(run_local, tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=kept-as-it-is-0123456789-abcdefghijklmnopqrstuvwxyz-ABCD\n")
    env_file.chmod(0o644)
    monkeypatch.setenv("LORASTUDIO_ENV_FILE", str(env_file))
    monkeypatch.delenv("SECRET_KEY")

    run_local.ensure_env_file()

    assert mode(env_file) == 0o600
    assert env_file.read_text().count("SECRET_KEY=") == 1


def test_it_is_made_private_even_when_the_key_comes_from_the_environment(
    run_local, tmp_path, monkeypatch
):
    env_file = tmp_path / ".env"
    env_file.write_text("DATABASE_URL=postgres://lab:db-password@db/lorastudio\n")
    env_file.chmod(0o664)
    monkeypatch.setenv("LORASTUDIO_ENV_FILE", str(env_file))
    monkeypatch.setenv("SECRET_KEY", "from-the-environment-0123456789-abcdefghijklmnopqrstuvwxyz")

    run_local.ensure_env_file()

    assert mode(env_file) == 0o600
    assert "SECRET_KEY" not in env_file.read_text()


def test_a_new_env_file_is_private_from_the_start(run_local, tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    monkeypatch.setenv("LORASTUDIO_ENV_FILE", str(env_file))
    monkeypatch.delenv("SECRET_KEY")
    old_umask = os.umask(0o022)
    try:
        run_local.ensure_env_file()
    finally:
        os.umask(old_umask)
    assert mode(env_file) == 0o600
    key = env_file.read_text().strip().removeprefix("SECRET_KEY=")
    assert len(key) >= 50
