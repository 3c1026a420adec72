"""A student's whole path in a real browser against a real stack.

Debian's chromium, driven by Playwright, talks to daphne serving lorastudio.asgi, while
`manage.py qcluster` and `manage.py node_agent` (fake GPU backend) train on the same fresh
database: log in, create a dataset by uploading images, submit a demo run from the "Demo
(CPU)" preset, watch the live log, progress bar, loss chart and samples, see it succeed,
download the LoRA, and find the run on the dashboard's lab board.

The stack gets its own data folder and its own database, never pytest-django's: a fresh
SQLite file, or, when DATABASE_URL points at PostgreSQL, a fresh database on that server
(dropped afterwards). Every process runs in its own session; teardown kills each group.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from safetensors import safe_open

from lorastudio.envconfig import parse_database_url
from tests.factories import make_image_bytes
from tests.queue_helpers import start_process, stop_process

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NODE = "browser-node"
DEMO_MODEL = "Demo toy model (CPU)"
STUDENT = "dana"
PROMPTS = ["sks red circle", "sks blue square"]
STARTUP_S = 90
LIVE_MS = 120_000  # per live step: the demo run takes ~10-60 s on a small machine
FINISH_MS = 240_000

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - the venv has it
    sync_playwright = None

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.timeout(600),
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed"),
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (Debian's chromium)"
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


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
def stack_setup(tmp_path, stack_database, monkeypatch):
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
    port = _free_port()
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
        while not _port_open(port):
            dead = [name for name, proc in procs.items() if proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else "timed out"
                pytest.fail(f"{why} waiting for daphne\n{_logs(logs)}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", password, logs
    finally:
        for proc in procs.values():
            stop_process(proc, grace=10.0)


def _logs(paths) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in paths)


def _upload_files() -> list[dict]:
    """Three PNGs and a JPEG, as the file chooser would hand them over."""
    pngs = [(f"shape{i}.png", "PNG", i + 1) for i in range(3)]
    return [
        {
            "name": name,
            "mimeType": f"image/{fmt.lower()}",
            "buffer": make_image_bytes(fmt, (64, 64), seed=seed),
        }
        for name, fmt, seed in [*pngs, ("photo.jpg", "JPEG", 9)]
    ]


def _number(page, script: str) -> float:
    return float(page.evaluate(script) or 0)


FIRST_SAMPLE_OBSERVER = """() => {
  const box = document.getElementById("samples");
  new MutationObserver(() => {
    if (box.querySelector("figure") && sessionStorage.getItem("firstSample") === null) {
      sessionStorage.setItem("firstSample", document.getElementById("run").dataset.status);
    }
  }).observe(box, {childList: true});
}"""
LOG_LENGTH = "() => document.getElementById('log').textContent.length"
PROGRESS = "() => Number(document.getElementById('run-bar').getAttribute('aria-valuenow'))"
LOSS_POINTS = "() => Number(document.getElementById('loss-line').getAttribute('data-count'))"


def _grows(page, script: str, what: str) -> None:
    """Wait until `script` gives a positive number, then until it gives a larger one."""
    page.wait_for_function(f"() => ({script})() > 0", timeout=LIVE_MS)
    first = _number(page, script)
    page.wait_for_function(f"n => ({script})() > n", arg=first, timeout=LIVE_MS)
    assert _number(page, script) > first, what


def test_student_trains_a_demo_lora_in_the_browser(stack, tmp_path):
    base, password, logs = stack
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=base, accept_downloads=True)
        context.set_default_timeout(30_000)
        page = context.new_page()
        try:
            _student_path(page, password, tmp_path)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print(f"Screenshot: {tmp_path / 'failure.png'}\n{_logs(logs)}")
            raise
        finally:
            browser.close()
    print(f"browser path took {time.monotonic() - started:.1f} s")


def _student_path(page, password: str, tmp_path: Path) -> None:
    # 1. Log in.
    page.goto("/accounts/login/")
    page.fill("#id_username", STUDENT)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/$"))

    # 2. Create a dataset and upload a few images.
    page.goto("/datasets/new/")
    page.fill("#id_name", "Browser shapes")
    page.fill("#id_trigger_word", "sks")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/datasets/\d+/upload/$"))
    page.set_input_files("input[name=files]", _upload_files())
    page.get_by_role("button", name="Upload").click()
    expect(page).to_have_url(re.compile(r"/datasets/\d+/$"))
    expect(page.get_by_text("Added 4 image(s).")).to_be_visible()

    # 3. A demo run from the "Demo (CPU)" preset, with sample prompts; the plan shows.
    page.goto("/runs/new/")
    demo = page.locator("#id_preset option", has_text="Demo (CPU)").get_attribute("value")
    page.goto(f"/runs/new/?preset={demo}")
    page.select_option("#id_dataset", label="Browser shapes")
    page.select_option("#id_base_model", label=DEMO_MODEL)
    page.fill("#id_sample_prompts", "\n".join(PROMPTS))
    expect(page.locator("#plan")).not_to_contain_text("Pick a dataset")
    page.get_by_role("button", name="Submit run").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    run_id = int(re.search(r"/runs/(\d+)/$", page.url)[1])
    # Note the run's status when the first sample is added to the page (the tab's
    # sessionStorage outlives the reload at the end; the reloaded page has no observer).
    page.evaluate(FIRST_SAMPLE_OBSERVER)

    # 4. It trains: the dashboard's lab board shows it on the node's GPU.
    expect(page.locator("#run-status")).to_have_class(re.compile("status-running"), timeout=LIVE_MS)
    board = page.context.new_page()
    board.goto("/")
    expect(board.locator("#lab-board")).to_contain_text(NODE)
    expect(board.locator("#lab-board")).to_contain_text(f"Run #{run_id}")
    board.close()

    # 5. The live log grows, the progress bar advances, the loss chart gains points.
    _grows(page, LOG_LENGTH, "the live log grows")
    _grows(page, PROGRESS, "the progress bar advances")
    _grows(page, LOSS_POINTS, "the loss chart gains points")

    # 6. A sample image appears while the run is still running (sent live, not reloaded).
    page.wait_for_function("() => sessionStorage.getItem('firstSample') !== null", timeout=LIVE_MS)
    assert page.evaluate("() => sessionStorage.getItem('firstSample')") == "running"

    # 7. It succeeds; the page reloads with its files and every sample once.
    expect(page.locator("#run-status")).to_have_class(
        re.compile("status-succeeded"), timeout=FINISH_MS
    )
    expect(page.locator("#artifacts")).to_be_visible(timeout=LIVE_MS)
    log = page.locator("#log")
    expect(log).to_contain_text("epoch 5/5")
    assert "it/s" not in log.text_content()
    expect(page.locator("#samples figure")).to_have_count(5 * len(PROMPTS))
    page.wait_for_function(
        "() => [...document.querySelectorAll('#samples img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )

    # 8. Download the final LoRA: a safetensors file with sd-scripts' lora_ keys.
    final = page.locator("#artifacts tbody tr", has_text="Final LoRA").locator("a")
    with page.expect_download() as info:
        final.click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.name.endswith(".safetensors")
    with safe_open(str(path), "pt") as fh:
        keys = list(fh.keys())
    assert keys and all(k.startswith("lora_") for k in keys)
