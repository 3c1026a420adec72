"""Settings come from the environment, and bad values stop the start with a clear message."""

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from lorastudio.envconfig import env_bool, env_int, load_dotenv, parse_database_url
from tests.paths import REPO as ROOT

# A key as `make run` writes one (secrets.token_urlsafe(50)).
GOOD_KEY = "k8Jf2-p0Qm7rT1vX9zL4wB6nE3yH5aC0dG8sU2iO7lK1jM4qR6tY9"
SETUP = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'lorastudio.settings'); django.setup(); from django.conf import settings\n"  # noqa: E501


def start_django(tmp_path, code="print(settings.DATABASES['default']['ENGINE'])", **env):
    """Start Django in a fresh process with exactly `env` on top of a clean environment, and
    run `code` there."""
    base = {"PATH": os.environ["PATH"], "LORASTUDIO_ENV_FILE": str(tmp_path / "none.env")}
    base["LORASTUDIO_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [sys.executable, "-c", SETUP + code],
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
    result = start_django(tmp_path, SECRET_KEY=GOOD_KEY)
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
        "SECRET_KEY": GOOD_KEY,
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


def example_secret_key() -> str:
    """The SECRET_KEY line of deploy/lorastudio.env.example, as an operator copies it."""
    text = (ROOT / "deploy" / "lorastudio.env.example").read_text()
    return next(line for line in text.splitlines() if line.startswith("SECRET_KEY="))[11:]


@pytest.mark.parametrize(
    ("key", "why"),
    [
        (example_secret_key(), "is a placeholder"),
        ("django-insecure-" + GOOD_KEY, "is a placeholder"),
        ("CHANGEME" + GOOD_KEY, "is a placeholder"),
        ("a-secret-of-49-characters-" + "0123456789abcdefghijklm", "is too short (49 characters"),
        ("x" * 60, "too few different characters"),
        ("abab" * 20, "too few different characters"),
    ],
)
@pytest.mark.slow
def test_placeholder_or_weak_secret_key_stops_the_start_naming_it(tmp_path, key, why):
    result = start_django(tmp_path, DEBUG="False", SECRET_KEY=key)
    assert result.returncode != 0
    last = result.stderr.splitlines()[-1]
    assert "SECRET_KEY" in last and why in last
    assert "secrets.token_urlsafe(50)" in last  # and how to make a good one


@pytest.mark.slow
def test_a_placeholder_key_is_tolerated_with_debug_on(tmp_path):
    result = start_django(tmp_path, DEBUG="True", SECRET_KEY=example_secret_key())
    assert result.returncode == 0, result.stderr


HSTS = (
    "from django.test import Client; "
    "r = Client().get('/accounts/login/', secure=True, HTTP_HOST='lab.example.org'); "
    "print(r.status_code, r.headers.get('Strict-Transport-Security'))"
)


@pytest.mark.slow
def test_https_sends_hsts_for_a_year_without_preload(tmp_path):
    env = {"SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "lab.example.org"}
    result = start_django(tmp_path, HSTS, LORASTUDIO_HTTPS="True", **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "max-age=31536000"]
    shorter = start_django(
        tmp_path, HSTS, LORASTUDIO_HTTPS="True", LORASTUDIO_HSTS_SECONDS="600", **env
    )
    assert shorter.stdout.split() == ["200", "max-age=600"]
