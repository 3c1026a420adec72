"""A student's whole path in a real browser against a real stack.

Debian's chromium, driven by Playwright, talks to daphne serving lorastudio.asgi, while
`manage.py qcluster` and `manage.py node_agent` (fake GPU backend) train on the same fresh
database: log in, create a dataset by uploading images, submit a demo run from the "Demo
(CPU)" preset, watch the live log, progress bar, loss chart and samples, see it succeed,
download the LoRA (its metadata names the run), find the run on the dashboard's lab board,
run it exactly again (the trainer writes the same file), compare the two runs, write the
run's purpose on its report and fetch the report's PDF.

The stack gets its own data folder and its own database, never pytest-django's: a fresh
SQLite file, or, when DATABASE_URL points at PostgreSQL, a fresh database on that server
(dropped afterwards). Every process runs in its own session; teardown kills each group.
"""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import pytest
from safetensors import safe_open

from sdscripts.lora_file import read_metadata
from tests.factories import make_image_bytes
from tests.queue_helpers import logs_text
from tests.system.browser_stack import DEMO_MODEL, NODE, STUDENT

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
# No prompt typed and no caption written: the run samples its trigger word.
PROMPTS = ["sks"]
# Where the new-run page's screenshots go (not committed; the note names them).
SCREENSHOTS = Path(os.environ.get("LORASTUDIO_SCREENSHOTS", "/tmp/lorastudio-screenshots"))
# The widths the page must read well at: a laptop and a phone.
WIDTHS = {1280: 800, 390: 844}
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


NOTHING_OVERFLOWS = """() => {
  const wide = document.documentElement.scrollWidth > window.innerWidth + 1;
  const cut = [...document.querySelectorAll(`#run-form label, #run-form legend,
    #run-form summary, #run-form .param, #run-form .field, #plan *`)]
    .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1
      && getComputedStyle(e).overflowX !== "auto")
    .map(e => e.textContent.trim().slice(0, 40));
  return {wide, cut};
}"""


def _screenshots(page, tmp_path: Path) -> None:
    """The new-run page at 1280 px and 390 px: nothing wider than the window, no label cut
    off; a full-page screenshot of each under SCREENSHOTS."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        expect(page.locator("#timing")).to_contain_text("ready at about")
        assert page.evaluate(NOTHING_OVERFLOWS) == {"wide": False, "cut": []}, width
        path = SCREENSHOTS / f"new-run-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"Screenshot at {width} px: {path}")
        # Every other setting's label fits too (looked at, then closed again).
        page.locator("details.advanced > summary").click()
        assert page.evaluate(NOTHING_OVERFLOWS) == {"wide": False, "cut": []}, width
        page.screenshot(path=str(SCREENSHOTS / f"new-run-advanced-{width}.png"), full_page=True)
        page.locator("details.advanced > summary").click()
    page.set_viewport_size({"width": 1280, "height": 800})


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
            run_id = _student_path(page, password, tmp_path)
            _repeat_compare_and_report(page, run_id, tmp_path)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print(f"Screenshot: {tmp_path / 'failure.png'}\n{logs_text(logs)}")
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

    # 3. A demo run as a student makes it alone: only the plain fields (dataset, name); the
    # lab's only base model and its preset are chosen already, the dataset proposes the
    # rest, Advanced stays closed, and the plan says when the LoRA will be ready.
    page.goto("/runs/new/")
    expect(page.locator("#id_base_model option:checked")).to_have_text(DEMO_MODEL)
    expect(page.locator("#id_preset option:checked")).to_have_text("Demo (CPU)")
    page.select_option("#id_dataset", label="Browser shapes")
    page.fill("#id_name", "My shapes")
    timing = page.locator("#timing")
    expect(timing).to_contain_text("ready at about")
    expect(timing).to_have_attribute("data-start-s", re.compile(r"^\d+$"))
    expect(timing).to_have_attribute("data-duration-s", re.compile(r"^\d+$"))
    # The dataset proposed the length: 4 images x 10 repeats x 5 passes at 2 a step.
    expect(page.locator("#id_p_num_repeats")).to_have_value("10")
    expect(page.locator("#id_p_max_train_epochs")).to_have_value("5")
    expect(page.locator("#id_p_class_tokens")).to_have_value("sks")
    expect(page.locator("details.advanced")).not_to_have_attribute("open", re.compile(".*"))
    expect(page.locator("#ready-summary")).to_contain_text("ready at about")
    _screenshots(page, tmp_path)
    expect(page.locator("details.advanced")).not_to_have_attribute("open", re.compile(".*"))
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
    expect(page.locator("#run-ready")).to_contain_text("took ")
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
    # 9. Its metadata names its run and dataset, as the run page's provenance does.
    metadata = read_metadata(path)
    assert metadata["lorastudio_run_id"] == str(run_id)
    expect(page.locator("#provenance")).to_contain_text(metadata["lorastudio_dataset_sha256"])
    assert metadata["lorastudio_base_model_sha256"]
    return run_id


def _repeat_compare_and_report(page, run_id: int, tmp_path: Path) -> None:
    # 10. Run it exactly again: the trainer writes the same LoRA file.
    page.locator("#run-exact").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    repeat_id = int(re.search(r"/runs/(\d+)/$", page.url)[1])
    assert repeat_id != run_id
    expect(page.locator("#run-status")).to_have_class(
        re.compile("status-succeeded"), timeout=FINISH_MS
    )
    expect(page.locator("#run-message")).to_contain_text(
        f"Reproduced run #{run_id}: the trainer wrote the same LoRA file"
    )

    # 11. Compare the two: the same parameters and dataset, two curves, samples side by side.
    page.locator("#run-compare").click()
    expect(page).to_have_url(re.compile(rf"/runs/compare/\?a={run_id}&b={repeat_id}$"))
    expect(page.locator("#compare-params tr.differs")).to_have_count(0)
    expect(page.locator("#compare-dataset")).to_contain_text("The same images and captions.")
    expect(page.locator("svg[data-curves='2'] polyline")).to_have_count(2)
    expect(page.locator("#compare-samples img")).to_have_count(2 * 5 * len(PROMPTS))

    # 12. The report: write the purpose; the contact sheet, loss curve and hashes show.
    page.goto(f"/runs/{run_id}/report/")
    page.fill("#id_purpose", "Does the demo learn four shapes in five epochs?")
    page.get_by_role("button", name="Save purpose").click()
    expect(page.locator("#report-purpose")).to_contain_text("four shapes in five epochs")
    expect(page.locator("#contact-sheet img")).to_have_count(4)
    assert int(page.locator("#report-loss polyline").get_attribute("data-count")) > 3
    expect(page.locator("#report-files")).to_contain_text("as the trainer wrote it")
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

    # 13. Its PDF opens and holds the loss curve.
    from pypdf import PdfReader

    response = page.request.get(f"/runs/{run_id}/report.pdf")
    assert response.ok and response.headers["content-type"] == "application/pdf"
    pdf = PdfReader(io.BytesIO(response.body()))
    text = "".join(p.extract_text() for p in pdf.pages)
    assert "Loss curve" in text and "four shapes in five epochs" in text
    forms = [name for p in pdf.pages for name in (p["/Resources"].get("/XObject") or {})]
    assert any("LossCurve" in name for name in forms)
