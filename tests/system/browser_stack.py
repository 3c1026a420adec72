"""The real stack the browser test drives: daphne, qcluster and node_agent on a fresh
database and data folder of their own (see tests/system/test_browser.py)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

from lorastudio.envconfig import parse_database_url
from tests.queue_helpers import free_port, logs_text, port_open, start_process, stop_process

NODE = "browser-node"
DEMO_MODEL = "Demo toy model (CPU)"
STUDENT = "dana"
STARTUP_S = 90


def _pg_connect(db: dict, name: str):
    import psycopg

    return psycopg.connect(
        dbname=name,
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        autocommit=True,
    )


@pytest.fixture
def stack_database(tmp_path):
    """A DATABASE_URL for a database of the stack's own, created fresh for this test."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        yield f"sqlite:///{tmp_path / 'browser.sqlite3'}"
        return
    from psycopg import sql

    db = parse_database_url("DATABASE_URL", url)
    name = f"lorastudio_browser_{secrets.token_hex(4)}"
    with _pg_connect(db, db["NAME"]) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    finally:
        with _pg_connect(db, db["NAME"]) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def stack_env() -> dict[str, str]:
    """More environment for the stack's processes; a test module overrides this fixture to
    configure them (mail, quotas)."""
    return {}


@pytest.fixture
def stack_setup(tmp_path, stack_database, stack_env, monkeypatch):
    """The stack's environment on a fresh data folder and database, migrated, with the student
    and the demo base model. Returns (environment, student password, `setup`: runs a
    `manage.py` command in it and fails the test when it fails). The student is made with a
    password generated here; the app has no default password.
    """
    monkeypatch.setenv("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    data = tmp_path / "data"
    password = secrets.token_urlsafe(16)
    env = dict(os.environ)
    env.update(
        DATABASE_URL=stack_database,
        LORASTUDIO_DATA_DIR=str(data),
        LORASTUDIO_MEDIA_DIR=str(data / "media"),
        LORASTUDIO_WORK_DIR=str(data / "work"),
        LORASTUDIO_ENV_FILE=os.devnull,
        LORASTUDIO_NODE=NODE,
        LORASTUDIO_GPU_BACKEND="fake",
        LORASTUDIO_FAKE_GPUS="24576:Browser 24G",
        LORASTUDIO_HEARTBEAT_SECONDS="1",
        LORASTUDIO_Q_POLL="0.05",
        LORASTUDIO_Q_SYNC="False",
        DEBUG="False",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Slow steps keep the run live long enough to watch it grow on any machine.
        DEMO_TRAINER_STEP_DELAY="0.15",
        PYTHONUNBUFFERED="1",
    )
    env.update(stack_env)
    manage = [sys.executable, "manage.py"]

    def setup(*args: str, **extra: str) -> None:
        done = subprocess.run(
            [*manage, *args],
            cwd=settings.BASE_DIR,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}"

    setup("migrate", "--noinput")
    setup(
        "shell",
        "-c",
        "import os\n"
        "from django.contrib.auth import get_user_model\n"
        f"get_user_model().objects.create_user({STUDENT!r}, "
        "password=os.environ['BROWSER_TEST_PASSWORD'])\n",
        BROWSER_TEST_PASSWORD=password,
    )
    setup("register_base_model", "--name", DEMO_MODEL, "--architecture", "demo")
    return env, password, setup


@pytest.fixture
def stack(tmp_path, stack_setup):
    """daphne + qcluster + node_agent on the stack's data folder and database.

    Yields (base URL, student password, log paths).
    """
    env, password, _ = stack_setup
    manage = [sys.executable, "manage.py"]
    port = free_port()
    procs, logs = {}, []

    def start(name: str, argv: list[str], **extra: str) -> None:
        logs.append(tmp_path / f"{name}.log")
        procs[name] = start_process(argv, {**env, **extra}, logs[-1])

    try:
        start("qcluster", [*manage, "qcluster"], LORASTUDIO_DB_PERSISTENT="True")
        start("node_agent", [*manage, "node_agent"], LORASTUDIO_DB_PERSISTENT="True")
        start(
            "daphne",
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            + ["lorastudio.asgi:application"],
        )
        deadline = time.monotonic() + STARTUP_S
        while not port_open(port):
            dead = [name for name, proc in procs.items() if proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else "timed out"
                pytest.fail(f"{why} waiting for daphne\n{logs_text(logs)}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", password, logs
    finally:
        for proc in procs.values():
            stop_process(proc, grace=10.0)
