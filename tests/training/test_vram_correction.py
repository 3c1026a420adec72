"""Runs record their measured peak; new plans of the architecture learn from them."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from sdscripts.params import validate_params
from sdscripts.vram import estimate_vram
from tests.factories import (
    make_base_model,
    make_dataset,
    make_gpu,
    make_node,
    make_run,
    make_trainable_dataset,
)
from tests.queue_helpers import make_image_dataset
from tests.training.admin_helpers import finished
from training import services
from training.lifecycle import transition
from training.models import Preset
from training.selectors import vram_correction

pytestmark = pytest.mark.django_db

SDXL = {"resolution": 1024, "network_dim": 16, "gradient_checkpointing": True}


@pytest.fixture
def sdxl(db):
    return make_base_model(name="SDXL base", architecture="sdxl", checkpoint="/m/sdxl.safetensors")


def measured(owner, base_model, ratio, *, status="succeeded", params=SDXL):
    """A run that ran with `params` and measured a peak `ratio` x the uncorrected estimate."""
    arch = base_model.architecture
    values = validate_params(arch, params)
    estimate = estimate_vram(arch, values).total_mib
    run = make_run(
        owner=owner,
        base_model=base_model,
        params=values,
        vram_estimate_mib=estimate,
        vram_peak_mib=round(estimate * ratio),
    )
    transition(run, "queued")
    return finished(run, status)


def dry_run(*args):
    out = StringIO()
    call_command("train", *args, "--dry-run", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_measured_peaks_change_the_plan_a_dry_run_and_a_submit_get(student, sdxl):
    make_dataset(owner=student, name="dogs")
    make_gpu(node=make_node(name="gpu-a"), total_mib=24576)
    args = ["--dataset", "dogs", "--base-model", "SDXL base"]
    args += ["--set", "network_dim=16", "--set", "gradient_checkpointing=true"]
    dry = dry_run(*args)
    before = dry["vram"]
    assert (before["correction"], before["correction_runs"]) == (1.0, 0)
    assert dry["gpus"][0]["estimate_mib"] == before["estimate_mib"]

    for ratio in (1.2, 1.25, 1.3):
        measured(student, sdxl, ratio)
    dry = dry_run(*args)
    after = dry["vram"]
    assert (after["correction"], after["correction_runs"]) == (1.275, 3)
    assert dry["gpus"][0]["estimate_mib"] == after["estimate_mib"]  # each GPU's plan too
    assert after["estimate_mib"] == pytest.approx(before["estimate_mib"] * 1.275, abs=8)
    assert after["savers"] == before["savers"] == []

    run = services.submit_run(
        student,
        base_model=sdxl,
        dataset=make_trainable_dataset(owner=student),
        params={"network_dim": 16, "gradient_checkpointing": True},
    )
    assert run.vram_estimate_mib == after["estimate_mib"]
    assert run.plan["correction"] == 1.275 and run.plan["correction_runs"] == 3


def test_a_correction_above_one_makes_the_planner_add_savers(student, sdxl):
    make_dataset(owner=student, name="dogs")
    args = ["--dataset", "dogs", "--base-model", "SDXL base", "--set", "network_dim=16"]
    args += ["--set", "gradient_checkpointing=true", "--set", "optimizer_type=AdamW"]
    first = dry_run(*args, "--gpu-mib", "12288")["vram"]
    assert first["fits"] and first["savers"] == []
    for _ in range(3):
        measured(student, sdxl, 1.5)
    second = dry_run(*args, "--gpu-mib", "12288")["vram"]
    assert second["correction"] == 1.5
    assert second["savers"], "the corrected estimate no longer fits without a saver"


def test_only_succeeded_runs_of_the_architecture_with_a_peak_count(student, sdxl):
    flux = make_base_model(name="FLUX", architecture="flux1_dev", checkpoint="/m/f.safetensors")
    measured(student, sdxl, 1.3)
    measured(student, sdxl, 1.3)
    measured(student, sdxl, 0.5, status="failed")  # stopped before its peak (or ran out)
    measured(student, sdxl, 0.5, status="cancelled")
    measured(student, flux, 0.5, params={})  # another architecture
    no_peak = make_run(owner=student, base_model=sdxl, params=SDXL, vram_estimate_mib=9000)
    transition(no_peak, "queued")
    finished(no_peak)  # no NVML: nothing measured
    assert vram_correction("sdxl").runs == 2 and vram_correction("sdxl").factor == 1.0

    other = make_base_model(name="SDXL other", architecture="sdxl", checkpoint="/m/o.safetensors")
    measured(student, other, 1.3)  # every base model of the architecture counts
    assert (vram_correction("sdxl").factor, vram_correction("sdxl").runs) == (1.3, 3)
    assert vram_correction("demo").runs == 0


def test_peaks_are_set_against_the_current_uncorrected_estimate(student, sdxl):
    """A stored estimate already carried the correction of its day; dividing by it would
    compound corrections, so the selector re-estimates the run's parameters."""
    for _ in range(3):
        run = measured(student, sdxl, 1.2)
        run.vram_estimate_mib = round(run.vram_estimate_mib * 1.2)  # planned with x 1.2
        run.save(update_fields=["vram_estimate_mib"])
    assert vram_correction("sdxl").factor == 1.2


def test_the_base_model_admin_shows_the_correction(staff_client, student, sdxl):
    page = reverse("admin:training_basemodel_change", args=[sdxl.pk])
    listing = reverse("admin:training_basemodel_changelist")
    text = staff_client.get(page).content.decode()
    assert "VRAM correction" in text and "× 1.00 (the default): 0 succeeded SDXL runs" in text

    for ratio in (1.1, 1.1, 1.2, 1.2):
        measured(student, sdxl, ratio)
    text = staff_client.get(page).content.decode()
    assert "× 1.20, learned from the measured peaks of its last 4 succeeded SDXL runs" in text
    listed = staff_client.get(listing).content.decode()
    assert "× 1.20 (4 runs)" in listed


def test_the_plan_preview_says_the_estimate_is_corrected(student_client, student, sdxl):
    preset = Preset.objects.create(name="SDXL", architecture="sdxl", values={"resolution": 1024})
    data = {"preset": preset.pk, "base_model": sdxl.pk, "dataset": make_image_dataset(student).pk}
    url = reverse("training:run-plan")
    assert "learned from the peaks" not in student_client.get(url, data).content.decode()
    for _ in range(3):
        measured(student, sdxl, 1.25)
    html = student_client.get(url, data).content.decode()
    assert "(× 1.25, learned from the peaks 3 runs measured)" in html
