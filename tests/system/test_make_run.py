"""`make run`'s launcher: a newcomer gets a working site, a finished demo run and a clean stop."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.paths import REPO as ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


DEADLINE_S = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_text(path: Path, text: str, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        out = path.read_text(errors="replace")
        if text in out:
            return out
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise AssertionError(f"{text!r} never appeared; output:\n{path.read_text()[-4000:]}")


def test_make_run_serves_the_site_finishes_a_demo_run_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env_file = tmp_path / "lab.env"  # an existing settings file, world-readable
    env_file.write_text("# settings of this workstation\n")
    env_file.chmod(0o644)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LORASTUDIO_", "DATABASE_URL", "REDIS_URL", "DJANGO_"))
    }
    env.update(
        SECRET_KEY="make-run-test-secret-key-" + "x" * 40,
        LORASTUDIO_ENV_FILE=str(env_file),
        LORASTUDIO_DATA_DIR=str(tmp_path / "data"),
        LORASTUDIO_NODE="newcomer",
        DJANGO_SUPERUSER_PASSWORD="a-newcomer-password-7",
        PORT=str(port),
        PYTHONUNBUFFERED="1",
    )
    log = tmp_path / "make-run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "scripts/run_local.py"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_text(log, f"running at http://127.0.0.1:{port}/", proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/") as page:
            assert page.status == 200
            assert b"csrfmiddlewaretoken" in page.read()
        output = wait_for_text(log, "succeeded: its page /runs/", proc)
        assert "Created superuser 'admin'" in output
        assert env_file.stat().st_mode & 0o777 == 0o600  # made private
        assert "a-newcomer-password-7" not in output  # a given password is never echoed
        assert "epoch" in output  # the trainer's own lines are followed in the terminal

        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground group
        assert proc.wait(timeout=60) == 0
        assert "Stopped." in log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the web server is still listening"
