"""A student evaluates a finished run in a real browser: the grid fills in live from the node's
(fake) ComfyUI, a picture enlarges, "keep this epoch" republishes that file, the grid
downloads as one picture. The stack is test_browser.py's (daphne, qcluster, node agent); the
fake ComfyUI is a small real HTTP server in this process.
"""

from __future__ import annotations

import io
import re

from PIL import Image

from tests.fake_inference import FakeComfyUI
from tests.system import test_browser as browser

pytestmark = browser.pytestmark
LORA_1 = b"\x0e\x00\x00\x00\x00\x00\x00\x00" + b'{"e":"1"}     '
LORA_2 = b"\x0e\x00\x00\x00\x00\x00\x00\x00" + b'{"e":"2"}     '

# A succeeded SD 1.5 run of the student: two LoRA files as sd-scripts names them, collected
# and published by LoRA Studio's own collector, moved through the life cycle.
FINISHED_RUN = """
import os
from pathlib import Path
from django.contrib.auth import get_user_model
from django.db import transaction
from training.execution.files import LoraCollector
from training.lifecycle import transition
from training.models import BaseModel, GPUNode, TrainingRun
from training.nodes import agent
out = Path(os.environ["RUN_OUTPUT"])
node = agent.beat(os.environ["LORASTUDIO_NODE"])
run = TrainingRun.objects.create(
    owner=get_user_model().objects.get(username=os.environ["STUDENT"]), name="dogs",
    base_model=BaseModel.objects.get(architecture="sd15"),
    params={"resolution": 64, "sample_steps": 3}, sample_prompts="a sks dog",
)
with transaction.atomic():  # the stack's dispatch must not place it in between
    transition(run, "queued")
    transition(run, "assigned", changes={"node": node, "gpu": node.gpus.get(index=0)})
transition(run, "preparing")
transition(run, "running", changes={"total_epochs": 2})
loras = LoraCollector(run, out, "dogs")
loras.collect_all()
loras.publish(node.lora_dir)
transition(run, "succeeded")
"""


def test_student_evaluates_a_run_and_keeps_an_epoch(stack_setup, stack, tmp_path):
    env, password, setup = stack_setup
    base, _, logs = stack
    models, loras, out = (tmp_path / "comfy" / n for n in ("checkpoints", "loras", "out"))
    for folder in (models, loras, out):
        folder.mkdir(parents=True)
    (models / "sd15.safetensors").write_bytes(LORA_2)
    (out / "dogs-000001.safetensors").write_bytes(LORA_1)
    (out / "dogs.safetensors").write_bytes(LORA_2)
    comfy = FakeComfyUI(models, loras, delay=1.5).start()  # slow enough to watch it fill
    try:
        setup("register_node", "--name", browser.NODE, "--comfyui-url", comfy.url,
              "--lora-dir", str(loras), "--models-root", str(models), "--no-probe")  # fmt: skip
        setup("register_base_model", "--name", "SD 1.5", "--architecture", "sd15",
              "--checkpoint", "sd15.safetensors")  # fmt: skip
        setup("shell", "-c", FINISHED_RUN, RUN_OUTPUT=str(out), STUDENT=browser.STUDENT)
        with browser.sync_playwright() as p:
            chromium = p.chromium.launch(
                executable_path=browser.CHROMIUM, args=browser.CHROMIUM_ARGS
            )
            context = chromium.new_context(base_url=base, accept_downloads=True)
            context.set_default_timeout(30_000)
            page = context.new_page()
            try:
                _evaluate(page, password, loras, tmp_path)
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                print(f"Screenshot: {tmp_path / 'failure.png'}\n{browser.logs_text(logs)}")
                raise
            finally:
                chromium.close()
    finally:
        comfy.stop()


def _evaluate(page, password: str, loras, tmp_path) -> None:
    expect = browser.expect
    page.goto("/accounts/login/")
    page.fill("#id_username", browser.STUDENT)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()
    page.goto("/runs/")
    page.get_by_role("link", name=re.compile("dogs")).first.click()
    run_url = page.url

    # Evaluate both epochs at strengths 0 (the base) and 1, seeds 1 and 2.
    form = page.locator("#evaluation form", has=page.get_by_role("button", name="Evaluate"))
    form.locator("[name=strengths]").fill("0,1")
    form.locator("[name=seeds]").fill("1,2")
    form.get_by_role("button", name="Evaluate").click()
    expect(page.get_by_text(re.compile(r"Evaluation #\d+ queued"))).to_be_visible()
    cells = page.locator(".eval-grid td[data-cell]")
    expect(cells).to_have_count(2 * 3)  # per seed: the base, epoch 1, epoch 2

    # Pictures arrive while the page stays (no reload): a marker on this page survives.
    page.evaluate("() => { window.stillThisPage = true; }")
    page.wait_for_function(
        "() => window.stillThisPage && document.querySelectorAll('.eval-grid img').length >= 2",
        timeout=browser.LIVE_MS,
    )
    expect(page.locator(".eval [data-eval-status]")).to_have_class(
        re.compile("status-succeeded"), timeout=browser.LIVE_MS
    )
    page.wait_for_function("() => !window.stillThisPage")  # reloaded once, when it ended
    expect(page.locator(".eval-grid img")).to_have_count(6)

    # A picture enlarges in a dialog.
    page.locator(".eval-grid img").nth(1).click()
    expect(page.locator("#eval-lightbox")).to_be_visible()
    page.locator("#eval-lightbox").get_by_role("button", name="Close").click()

    # The grid downloads as one picture.
    with page.expect_download() as info:
        page.get_by_role("link", name="download the grid").click()
    grid = tmp_path / info.value.suggested_filename
    info.value.save_as(grid)
    assert Image.open(io.BytesIO(grid.read_bytes())).format == "PNG"

    # Keep epoch 1: the node's worker copies it over the published LoRA.
    page.locator("#eval-checkpoints tr", has_text="dogs-000001").get_by_role(
        "button", name="Keep this epoch"
    ).click()
    expect(page.get_by_text("will be published in place of the current LoRA")).to_be_visible()
    published = loras / browser.STUDENT / "dogs.safetensors"
    for _ in range(60):
        page.goto(run_url)
        row = page.locator("#eval-checkpoints tr", has_text="dogs-000001")
        if row.locator(".badge", has_text="published").count():
            break
        page.wait_for_timeout(500)
    expect(row.locator(".badge", has_text="published")).to_be_visible()
    assert published.read_bytes() == LORA_1
