"""A student scripts a run in a real browser and over the API: makes a personal token on the
API tokens page, creates a dataset, uploads a zip and submits a demo run with it, follows the
run through the API until it succeeds, gets the mail that says so (the stack's mail goes to
files), and sees their weekly GPU-hours go down on the settings page.

The stack is test_browser.py's (daphne, qcluster, node agent) with a weekly GPU-hour limit
and the file mail backend; the script's requests are Playwright's, sent to the same daphne.
"""

from __future__ import annotations

import email
import email.policy
import io
import re
import time
import zipfile

import pytest

from tests.factories import make_image_bytes
from tests.system import test_browser as browser
from tests.system.browser_stack import DEMO_MODEL, STUDENT

pytestmark = browser.pytestmark
EMAIL = "dana@example.org"


@pytest.fixture
def stack_env(tmp_path) -> dict[str, str]:
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(tmp_path / "mail"),
        "LORASTUDIO_WEEKLY_GPU_HOURS": "2",
    }


def _zip_of_images() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for i in range(4):
            zf.writestr(f"shape{i}.png", make_image_bytes("PNG", (64, 64), seed=i + 1))
            zf.writestr(f"shape{i}.txt", "sks, a shape")
    return buffer.getvalue()


def _mails(folder) -> list[tuple[str, str, str]]:
    """(to, subject, body) of every mail the file backend wrote."""
    if not folder.exists():
        return []
    found = []
    for path in sorted(folder.glob("*.log")):
        for text in path.read_text().split("\n" + "-" * 79 + "\n"):
            if text.strip():
                mail = email.message_from_string(text, policy=email.policy.default)
                found.append((mail["To"], str(mail["Subject"]), mail.get_content()))
    return found


def test_student_scripts_a_run_with_a_token_gets_mail_and_sees_the_quota_fall(
    stack_setup, stack, tmp_path
):
    env, password, setup = stack_setup
    base, _, logs = stack
    setup(
        "shell", "-c",
        "import os\nfrom django.contrib.auth import get_user_model\n"
        "get_user_model().objects.filter(username=os.environ['STUDENT']).update(email=os.environ['EMAIL'])",
        STUDENT=STUDENT, EMAIL=EMAIL,
    )  # fmt: skip
    with browser.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=browser.CHROMIUM, args=browser.CHROMIUM_ARGS)
        context = chromium.new_context(base_url=base)
        context.set_default_timeout(30_000)
        page = context.new_page()
        try:
            _script_a_run(p, page, base, password, tmp_path / "mail")
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print(f"Screenshot: {tmp_path / 'failure.png'}\n{browser.logs_text(logs)}")
            raise
        finally:
            chromium.close()


def _script_a_run(p, page, base: str, password: str, mail_dir) -> None:
    expect = browser.expect
    # 1. Log in; the settings page shows the whole week's hours and three runs left.
    page.goto("/accounts/login/")
    page.fill("#id_username", STUDENT)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/$"))
    page.get_by_role("link", name="Settings").click()
    expect(page.locator("#quota-hours")).to_contain_text("2 h of 2 h left")
    expect(page.locator("#quota-runs")).to_contain_text("3 of 3 left")

    # 2. Make a token on the API tokens page (from the settings page's link); it shows once.
    page.get_by_role("link", name="create or revoke your API tokens").click()
    page.fill("input[name=name]", "my sweep")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token-text").text_content().strip()
    assert token
    page.goto("/api-tokens/")
    expect(page.locator("#new-token-text")).to_have_count(0)
    expect(page.locator("table")).to_contain_text("my sweep")

    # 3. The script: a dataset, a zip of four captioned images, a demo run.
    api = p.request.new_context(
        base_url=base, extra_http_headers={"Authorization": f"Token {token}"}
    )
    try:
        assert p.request.new_context(base_url=base).get("/api/v1/runs/").status == 401
        made = api.post(
            "/api/v1/datasets/", data={"name": "Scripted shapes", "trigger_word": "sks"}
        )
        assert made.status in (200, 201), made.text()
        dataset = made.json()["id"]
        upload = api.post(
            f"/api/v1/datasets/{dataset}/images/",
            multipart={
                "files": {
                    "name": "shapes.zip",
                    "mimeType": "application/zip",
                    "buffer": _zip_of_images(),
                }
            },
        )
        assert upload.status in (200, 201), upload.text()
        assert upload.json()["added"] == 4, upload.text()
        submitted = api.post(
            "/api/v1/runs/",
            data={
                "dataset": dataset,
                "base_model": DEMO_MODEL,
                "preset": "Demo (CPU)",
                "name": "scripted",
                "params": {"max_train_epochs": 2},
            },
        )
        assert submitted.status in (200, 201), submitted.text()
        run = submitted.json()["id"]

        # While it waits or trains, the student has one run fewer at once.
        page.goto("/settings/")
        expect(page.locator("#quota-runs")).to_contain_text("2 of 3 left")

        # 4. Follow it through the API until it ends.
        deadline = time.monotonic() + browser.FINISH_MS / 1000
        while True:
            state = api.get(f"/api/v1/runs/{run}/").json()
            if state["status"] in ("succeeded", "failed", "cancelled"):
                break
            assert time.monotonic() < deadline, state
            time.sleep(0.5)
        assert state["status"] == "succeeded", state
        lora = api.get(f"/api/v1/runs/{run}/lora/")
        assert lora.status == 200 and lora.body()[:8] != b""
    finally:
        api.dispose()

    # 5. The mail says so (sent from the queue, so it may come a moment later).
    deadline = time.monotonic() + 60
    while not _mails(mail_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    [(to, subject, body)] = _mails(mail_dir)
    assert to == EMAIL
    assert subject == f"Run #{run} “scripted” succeeded", subject
    assert f"/runs/{run}/" in body and re.search(r"succeeded after \d+ s\.", body), body

    # 6. The week's hours went down by the run's time; all three runs are free again.
    page.goto("/settings/")
    expect(page.locator("#quota-runs")).to_contain_text("3 of 3 left")
    hours = page.locator("#quota-hours")
    expect(hours).to_contain_text(re.compile(r"1 h 5\d min of 2 h left"))
    expect(hours).to_contain_text(re.compile(r"used \d min"))
