"""`make run`: migrate, make sure an admin exists, start web server + worker, start a demo run.

Every child runs in its own session so that Ctrl-C reaches only this script, which then stops
the children in order (SIGTERM to each main process — never to django-q2's whole group, see
docs/design.md — and SIGKILL after a grace period).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "8000"))


def env_file_path() -> Path:
    """The .env file the settings read (LORASTUDIO_ENV_FILE, else the project's .env)."""
    return Path(os.environ.get("LORASTUDIO_ENV_FILE") or ROOT / ".env")


def make_private(path: Path) -> None:
    """Make a settings file readable by its owner only (it holds SECRET_KEY, and perhaps
    DATABASE_URL with its password): 0600, whoever wrote it and however."""
    if not path.is_file() or path.stat().st_mode & 0o777 == 0o600:
        return
    try:
        path.chmod(0o600)
    except PermissionError:
        print(f"Warning: {path} is readable by others and not ours to change: chmod 600 it.")
    else:
        print(f"Made {path} readable by its owner only (mode 600).")


def ensure_env_file() -> None:
    """Write a .env with a generated SECRET_KEY on first run (never a default secret), and
    keep the file private."""
    env_file = env_file_path()
    make_private(env_file)
    if "SECRET_KEY" in os.environ:
        return
    text = env_file.read_text() if env_file.exists() else ""
    if not any(line.startswith("SECRET_KEY=") for line in text.splitlines()):
        # Created private: the key is never readable by others, not even for a moment.
        fd = os.open(env_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(f"SECRET_KEY={secrets.token_urlsafe(50)}\n")
        make_private(env_file)
        print(f"Wrote a new SECRET_KEY to {env_file}")


def manage(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=check)


def start(name: str, argv: list[str]) -> subprocess.Popen:
    print(f"Starting {name}: {' '.join(argv)}")
    return subprocess.Popen(argv, cwd=ROOT, start_new_session=True)


def wait_for_port(host: str, port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.2)
    return False


def stop(children: list[tuple[str, subprocess.Popen]]) -> None:
    for name, proc in children:
        if proc.poll() is None:
            print(f"Stopping {name} …")
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for name, proc in children:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop in time; killing it")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> int:
    os.chdir(ROOT)
    ensure_env_file()
    manage("migrate", "--noinput")
    manage("collectstatic", "--noinput", "--verbosity", "0")
    manage("ensure_superuser")
    children = [
        (
            "web server",
            start(
                "web server",
                [PY, "-m", "daphne", "-b", HOST, "-p", str(PORT), "lorastudio.asgi:application"],
            ),
        ),
        ("worker", start("worker", [PY, "manage.py", "qcluster"])),
    ]
    if (ROOT / "training/management/commands/node_agent.py").exists():
        children.append(("node agent", start("node agent", [PY, "manage.py", "node_agent"])))

    stopping = False
    demo: subprocess.Popen | None = None

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if not wait_for_port(HOST, PORT, time.monotonic() + 60):
            print("The web server did not start; see the messages above.")
            return 1
        url = f"http://{HOST}:{PORT}/"
        print(
            f"\nLoRA Studio is running at {url}\n"
            f"  Staff admin: {url}admin/  (log in with the superuser printed above)\n"
            "  Press Ctrl-C to stop the web server and the worker.\n"
        )
        if not stopping:
            # Follows the demo run in this terminal (log lines, progress) until it ends; it
            # shares our process group, so Ctrl-C stops it too. Its exit stops nothing.
            demo = subprocess.Popen([PY, "manage.py", "demo", "--wait"], cwd=ROOT)
        while not stopping:
            for name, proc in children:
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; stopping the rest.")
                    stopping = True
            time.sleep(0.5)
    finally:
        if demo is not None and demo.poll() is None:
            demo.terminate()
            demo.wait()
        stop(children)
    print("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
