"""Settings come from the environment, and bad values stop the start with a clear message."""

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from lorastudio.envconfig import env_bool, env_int, load_dotenv, parse_database_url
from tests.paths import REPO as ROOT


def start_django(tmp_path, **env):
    """Start Django in a fresh process with exactly `env` on top of a clean environment."""
    base = {"PATH": os.environ["PATH"], "LORASTUDIO_ENV_FILE": str(tmp_path / "none.env")}
    base["LORASTUDIO_DATA_DIR"] = str(tmp_path / "data")
    code = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'lorastudio.settings'); django.setup(); from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"  # noqa: E501
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DEBUG": "yes"}, "DEBUG"),
        ({"DEBUG": "False"}, "SECRET_KEY"),
        ({"DEBUG": "True", "DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"DEBUG": "True", "LORASTUDIO_MAX_UPLOAD_MB": "lots"}, "LORASTUDIO_MAX_UPLOAD_MB"),
        ({"DEBUG": "True", "LORASTUDIO_GPU_BACKEND": "cuda"}, "LORASTUDIO_GPU_BACKEND"),
        ({"DEBUG": "True", "LORASTUDIO_DATA_DIR": "relative/dir"}, "LORASTUDIO_DATA_DIR"),
        ({"DEBUG": "True", "LORASTUDIO_MAX_CAPTION_CHARS": "0"}, "LORASTUDIO_MAX_CAPTION_CHARS"),
        ({"DEBUG": "True", "LORASTUDIO_INGEST_WORKERS": "all"}, "LORASTUDIO_INGEST_WORKERS"),
    ],
)
@pytest.mark.slow
def test_bad_environment_stops_start_naming_the_variable(tmp_path, env, named):
    result = start_django(tmp_path, **env)
    assert result.returncode != 0
    assert named in result.stderr.splitlines()[-1]


@pytest.mark.slow
def test_default_is_sqlite_and_starts_with_a_secret_key(tmp_path):
    result = start_django(tmp_path, SECRET_KEY="x" * 60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.sqlite3"
    assert (tmp_path / "data").is_dir()


def test_dotenv_file_never_overrides_the_real_environment(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nLS_TEST_A=from-file\nexport LS_TEST_B='quoted'\n")
    monkeypatch.setenv("LS_TEST_A", "real")
    monkeypatch.delenv("LS_TEST_B", raising=False)
    load_dotenv(env_file)
    assert os.environ["LS_TEST_A"] == "real"
    assert os.environ["LS_TEST_B"] == "quoted"
    monkeypatch.delenv("LS_TEST_B")


def test_dotenv_with_a_broken_line_is_refused(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("JUSTAWORD\n")
    with pytest.raises(ImproperlyConfigured, match=r"\.env:1"):
        load_dotenv(env_file)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////var/lib/ls/db.sqlite3", {"NAME": "/var/lib/ls/db.sqlite3"}),
        ("sqlite:///data/db.sqlite3", {"NAME": "data/db.sqlite3"}),
        (
            "postgres://lab:s%40cret@db.lab:5433/lorastudio",
            {"USER": "lab", "PASSWORD": "s@cret", "HOST": "db.lab", "PORT": "5433"},
        ),
        ("postgresql://lab@localhost/ls", {"NAME": "ls", "PORT": ""}),
    ],
)
def test_database_url_is_parsed(url, expected):
    config = parse_database_url("DATABASE_URL", url)
    for key, value in expected.items():
        assert config[key] == value


@pytest.mark.parametrize(
    "url", ["postgres://host/", "redis://x", "sqlite://", "postgres://h:bad/x"]
)
def test_bad_database_url_is_refused(url):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        parse_database_url("DATABASE_URL", url)


def test_env_helpers_name_the_variable(monkeypatch):
    monkeypatch.setenv("LS_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="LS_FLAG"):
        env_bool("LS_FLAG", False)
    monkeypatch.setenv("LS_NUM", "0")
    with pytest.raises(ImproperlyConfigured, match="LS_NUM must be at least 1"):
        env_int("LS_NUM", 5, minimum=1)


@pytest.mark.slow
def test_check_deploy_reports_only_https_warnings(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "LORASTUDIO_ENV_FILE": str(tmp_path / "none.env"),
        "LORASTUDIO_DATA_DIR": str(tmp_path / "data"),
        "DEBUG": "False",
        "SECRET_KEY": "k8Jf2-p0Qm7rT1vX9zL4wB6nE3yH5aC0dG8sU2iO7lK1jM4qR6tY9",
        "ALLOWED_HOSTS": "lab.example.org",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    ids = {line.split(")")[0].split("(")[1] for line in result.stderr.splitlines() if ": (" in line}
    https_only = {"security.W004", "security.W008", "security.W012", "security.W016"}
    assert ids <= https_only, ids
