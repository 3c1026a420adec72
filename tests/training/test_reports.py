"""The compare page, the run report (HTML and PDF), the purpose and the run page's repeat
buttons; students reach only their own runs."""

from __future__ import annotations

import hashlib
import io
import re

import pytest
from django.core.files.base import ContentFile

from datasets.fingerprint import content_sha256, dataset_entries
from datasets.services import save_captions
from tests.factories import make_dataset_images
from tests.queue_helpers import make_image_dataset, png_bytes, submit_demo
from training.lifecycle import transition
from training.models import LoraArtifact, RunProvenance, SampleImage, TrainingRun

pytestmark = pytest.mark.django_db
NOTHING = hashlib.sha256(b"").hexdigest()


def record_provenance(run) -> RunProvenance:
    """The record the runner writes at start, made from the run's dataset as it is now."""
    entries = dataset_entries(run.dataset)
    sha = content_sha256(entries)
    return RunProvenance.objects.create(
        run=run,
        argv=["python", "-m", "demo_trainer", "--seed", "42"],
        dataset_config="[general]\n",
        params=dict(run.params),
        dataset_sha256=sha,
        subsets=[
            {
                "role": "train",
                "dataset_id": run.dataset.pk,
                "dataset_name": run.dataset.name,
                "repeats": run.dataset.repeats,
                "class_tokens": run.dataset.trigger_word,
                "sha256": sha,
                "image_count": len(entries),
                "files": [e.record() for e in entries],
            }
        ],
        base_model_sha256=NOTHING,
        base_model={"name": run.base_model.name, "configured": {}, "files": []},
        node_name="node-a",
        gpu_name="none (CPU, linux)",
        sdscripts_version="demo_trainer (LoRA Studio 0.16.0)",
        packages={"python": "3.11.9", "torch": "2.5.1"},
        lorastudio_version="0.16.0 (abc)",
    )


def finished(owner, *, dataset=None, name="", params=None, losses=(), samples=2):
    """A succeeded demo run with its provenance, losses, samples and final LoRA."""
    run = submit_demo(owner, dataset=dataset, name=name, params=params)
    for to in ("assigned", "preparing", "running", "succeeded"):
        transition(run, to)
    TrainingRun.objects.filter(pk=run.pk).update(
        loss_points=[[i + 1, loss] for i, loss in enumerate(losses)],
        gpu_seconds=90,
        energy_wh=7.5,
    )
    run.refresh_from_db()
    record_provenance(run)
    for index in range(samples):
        sample = SampleImage(run=run, epoch=2, index=index, prompt=f"sks prompt {index}")
        sample.file.save(f"s{run.pk}_{index}.png", ContentFile(png_bytes(index, 32)), save=True)
    LoraArtifact.objects.create(
        run=run, kind="final", file=f"runs/{run.pk}/x.safetensors", sha256="a" * 64,
        trainer_sha256="b" * 64,
    )  # fmt: skip
    return run


@pytest.fixture
def pair(student):
    """Run a, and run b: another network_dim, a changed caption and an added image."""
    dataset = make_image_dataset(student)
    a = finished(student, dataset=dataset, name="first", losses=[0.9, 0.7, 0.5, 0.4])
    first_image = dataset.images.order_by("pk").first()
    save_captions(dataset, {first_image.pk: "sks shape, recaptioned"})
    make_dataset_images(dataset, 1, size=(40, 40))
    b = finished(
        student, dataset=dataset, name="second", params={"max_train_epochs": 2,
        "resolution": 32, "network_dim": 8}, losses=[0.8, 0.6, 0.55],
    )  # fmt: skip
    return a, b


def test_compare_shows_parameters_dataset_losses_and_samples_side_by_side(student_client, pair):
    a, b = pair
    page = student_client.get(f"/runs/compare/?a={a.pk}&b={b.pk}").content.decode()

    params = page[page.index('id="compare-params"') : page.index('id="compare-facts"')]
    assert re.search(r'<tr class="differs"><th>network_dim</th><td>4</td><td>8</td>', params)
    assert re.search(r"<tr><th>resolution</th><td>32</td><td>32</td>", params)
    dataset = page[page.index('id="compare-dataset"') :]
    assert "Captions changed" in dataset and "sks shape, recaptioned" in dataset
    assert "sks shape number 0" in dataset
    assert re.search(r'class="added">img0.png', dataset)  # the new 40×40 picture
    assert 'data-curves="2"' in page
    assert page.count('class="curve curve-') == 2 and 'data-count="4"' in page
    assert page.count(f"/runs/{a.pk}/samples/") == 2 and page.count(f"/runs/{b.pk}/samples/") == 2
    assert "No evaluation grid yet" in page


def test_compare_refuses_another_students_run_and_bad_input(
    student_client, other_student, pair, staff
):
    from django.test import Client

    a, _ = pair
    theirs = finished(other_student)
    assert student_client.get(f"/runs/compare/?a={a.pk}&b={theirs.pk}").status_code == 404
    assert student_client.get(f"/runs/compare/?a={theirs.pk}&b={a.pk}").status_code == 404
    bad = student_client.get(f"/runs/compare/?a={a.pk}&b=../etc")
    assert bad.status_code == 400 and "Give two run numbers" in bad.content.decode()
    assert student_client.get("/runs/compare/").status_code == 200
    staff_client = Client()
    staff_client.force_login(staff)
    assert staff_client.get(f"/runs/compare/?a={a.pk}&b={theirs.pk}").status_code == 200


def test_the_report_shows_every_section(student_client, pair, settings):
    settings.LORASTUDIO_COST_PER_KWH = 0.4
    a, _ = pair
    page = student_client.get(f"/runs/{a.pk}/report/").content.decode()
    for section in ("purpose", "dataset", "params", "provenance", "loss", "samples", "energy",
                    "files"):  # fmt: skip
        assert f'id="report-{section}"' in page
    assert page.count('src="data:image/jpeg;base64,') == 4  # the contact sheet
    assert a.provenance.dataset_sha256 in page and "b" * 64 in page
    assert 'data-count="4"' in page  # the loss curve's points
    assert "1 min 30 s" in page and "7.50 Wh (0.00 EUR)" in page
    assert "No evaluation grid yet" in page
    assert 'name="purpose"' in page


def test_the_pdf_opens_and_holds_the_loss_curve(student_client, pair):
    from pypdf import PdfReader

    a, _ = pair
    response = student_client.get(f"/runs/{a.pk}/report.pdf")
    assert response["Content-Type"] == "application/pdf"
    pdf = PdfReader(io.BytesIO(response.content))
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert f"LoRA Studio run report: Run #{a.pk} first" in text
    assert "Loss curve" in text and "Loss by step: loss 0.4000" in text
    assert a.provenance.dataset_sha256 in text.replace("\n", "")
    curves = [
        xobject.get_object()
        for page in pdf.pages
        for name, xobject in (page["/Resources"].get("/XObject") or {}).items()
        if "LossCurve" in name
    ]
    assert len(curves) == 1
    # Four points: a move and three line segments ("x y l").
    assert len(re.findall(rb"[-\d.]+ [-\d.]+ l\b", curves[0].get_data())) == 3


def test_another_students_report_pdf_and_purpose_are_404(student_client, other_student):
    theirs = finished(other_student)
    for url in (f"/runs/{theirs.pk}/report/", f"/runs/{theirs.pk}/report.pdf"):
        assert student_client.get(url).status_code == 404
    assert student_client.post(f"/runs/{theirs.pk}/purpose/", {"purpose": "x"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.purpose == ""


def test_the_owner_writes_the_purpose_and_a_too_long_one_changes_nothing(student_client, student):
    run = finished(student)
    response = student_client.post(
        f"/runs/{run.pk}/purpose/", {"purpose": "  Does dim 8 beat\x00 dim 4?\r\nYes. "}
    )
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.purpose == "Does dim 8 beat dim 4?\nYes."
    page = student_client.post(
        f"/runs/{run.pk}/purpose/", {"purpose": "x" * 2001}, follow=True
    ).content.decode()
    assert "at most 2000 are kept" in page
    run.refresh_from_db()
    assert run.purpose == "Does dim 8 beat dim 4?\nYes."


def test_run_exactly_again_from_the_page(student_client, student):
    run = finished(student)
    page = student_client.get(f"/runs/{run.pk}/").content.decode()
    assert "Run exactly again" in page and "Run again with changes" in page
    assert run.provenance.dataset_sha256 in page

    response = student_client.post(f"/runs/{run.pk}/rerun/", {"exact": "1"})
    repeat = TrainingRun.objects.get(rerun_of=run)
    assert response["Location"] == f"/runs/{repeat.pk}/" and repeat.exact


def test_run_exactly_again_after_a_caption_changed_is_refused_with_the_reason(
    student_client, student
):
    run = finished(student)
    image = run.dataset.images.order_by("pk")[1]
    save_captions(run.dataset, {image.pk: "a new caption"})
    page = student_client.post(
        f"/runs/{run.pk}/rerun/", {"exact": "1"}, follow=True
    ).content.decode()
    assert "Cannot run exactly again" in page and "1 caption changed (img1.png)" in page
    assert not TrainingRun.objects.filter(rerun_of=run).exists()


def test_run_again_with_changes_fills_in_the_new_run_form(student_client, student, other_student):
    run = finished(student, name="dim test", params={"max_train_epochs": 3, "resolution": 32,
                                                     "network_dim": 6})  # fmt: skip
    page = student_client.get(f"/runs/new/?from={run.pk}").content.decode()
    assert 'value="dim test"' in page
    assert re.search(r'name="p_network_dim"[^>]*value="6"|value="6"[^>]*name="p_network_dim"', page)
    theirs = finished(other_student)
    assert student_client.get(f"/runs/new/?from={theirs.pk}").status_code == 404


def test_another_students_run_cannot_be_run_exactly_again(student_client, other_student):
    theirs = finished(other_student)
    assert student_client.post(f"/runs/{theirs.pk}/rerun/", {"exact": "1"}).status_code == 404
    assert not TrainingRun.objects.filter(rerun_of=theirs).exists()


def test_the_rerun_command_says_why_it_cannot(student):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="There is no run #999999"):
        call_command("rerun", "999999", "--exact")
    never_started = submit_demo(student)
    with pytest.raises(CommandError, match="has no provenance record"):
        call_command("rerun", str(never_started.pk), "--exact")
    assert not TrainingRun.objects.filter(rerun_of=never_started).exists()
