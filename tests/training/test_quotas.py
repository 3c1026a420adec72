"""Quotas: GPU-hours per week, runs at once, the largest image size, epochs and steps, from
the lab's defaults and per-group and per-user overrides; the page, `manage.py train` and
"run again" refuse alike, with the limit and when it frees up."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from tests.factories import (
    make_base_model,
    make_dataset,
    make_dataset_images,
    make_trainable_dataset,
)
from tests.training.admin_helpers import submitted
from tests.training.lab_helpers import (
    NEXT_WEEK_TEXT,
    WEDNESDAY_NOON,
    WEEK_START,
    new_run_form,
    run_that_trained,
)
from training.models import Preset, Quota, TrainingRun


@pytest.fixture(autouse=True)
def wednesday(monkeypatch):
    """The clock stands at Wednesday noon, so "this week" is the same on every day."""
    monkeypatch.setattr(timezone, "now", lambda: WEDNESDAY_NOON)


@pytest.fixture
def demo_preset(db):
    return Preset.objects.create(name="Quota demo", architecture="demo", values={})


@pytest.fixture
def demo_model(db):
    return make_base_model(name="Demo toy", architecture="demo")


def post_run(client, preset, model, owner, **params):
    dataset = make_trainable_dataset(owner=owner)
    params.setdefault("resolution", 32)
    return client.post(
        reverse("training:run-create"), new_run_form(preset, model, dataset, **params)
    )


def runs_of(owner) -> int:
    return TrainingRun.objects.filter(owner=owner).count()


# --- GPU-hours per week ---------------------------------------------------------------------


def test_a_student_past_the_weekly_hours_is_refused_with_the_limit_and_when_they_return(
    settings, student_client, student, demo_preset, demo_model
):
    settings.LORASTUDIO_WEEKLY_GPU_HOURS = 2
    monday_nine = WEEK_START + timedelta(hours=9)
    run_that_trained(student, monday_nine, monday_nine + timedelta(hours=2, minutes=30))
    response = post_run(student_client, demo_preset, demo_model, student)
    assert response.status_code == 200
    html = response.content.decode()
    assert (
        "alice has used 2.5 of 2 GPU-hours this week (the lab&#x27;s default); they come back "
        f"when the new week starts, {NEXT_WEEK_TEXT}."
    ) in html
    assert runs_of(student) == 1


def test_only_the_part_of_a_run_inside_this_week_counts(
    settings, student_client, student, demo_preset, demo_model
):
    settings.LORASTUDIO_WEEKLY_GPU_HOURS = 2
    # Sunday 22:00 to Monday 01:00: one of its three hours is this week's.
    run_that_trained(student, WEEK_START - timedelta(hours=2), WEEK_START + timedelta(hours=1))
    page = student_client.get(reverse("training:run-create")).content.decode()
    assert "1 h of 2 h left" in page and "used 1 h;" in page
    assert post_run(student_client, demo_preset, demo_model, student).status_code == 302


def test_a_run_still_training_counts_up_to_now(
    settings, student_client, student, demo_preset, demo_model
):
    settings.LORASTUDIO_WEEKLY_GPU_HOURS = 2
    run_that_trained(student, WEDNESDAY_NOON - timedelta(hours=2), None)
    html = post_run(student_client, demo_preset, demo_model, student).content.decode()
    assert "alice has used 2 of 2 GPU-hours this week" in html
    assert runs_of(student) == 1


def test_by_default_the_hours_are_not_limited(student_client, student, demo_preset, demo_model):
    run_that_trained(student, WEEK_START, WEDNESDAY_NOON)  # 60 hours
    page = student_client.get(reverse("training:run-create")).content.decode()
    assert "GPU-hours this week: no limit (used 60 h)" in page
    assert post_run(student_client, demo_preset, demo_model, student).status_code == 302


# --- Overrides: groups and users ----------------------------------------------------------


def test_a_group_quota_beats_the_default_and_a_users_own_beats_the_group(
    settings, student_client, student, demo_preset, demo_model
):
    settings.LORASTUDIO_WEEKLY_GPU_HOURS = 2
    thesis = Group.objects.create(name="thesis")
    student.groups.add(thesis)
    Quota.objects.create(group=thesis, weekly_gpu_hours=10)
    run_that_trained(student, WEEK_START, WEEK_START + timedelta(hours=3))
    page = student_client.get(reverse("training:run-create")).content.decode()
    assert "7 h of 10 h left" in page
    assert post_run(student_client, demo_preset, demo_model, student).status_code == 302

    Quota.objects.create(user=student, weekly_gpu_hours=1.5)
    html = post_run(student_client, demo_preset, demo_model, student).content.decode()
    assert "alice has used 3 of 1.5 GPU-hours this week (set for alice by staff)" in html
    assert runs_of(student) == 2


def test_the_most_generous_group_wins_and_0_means_no_limit(
    settings, student_client, student, demo_preset, demo_model
):
    settings.LORASTUDIO_WEEKLY_GPU_HOURS = 1
    for name, hours in (("course", 2), ("lab members", 0)):
        group = Group.objects.create(name=name)
        student.groups.add(group)
        Quota.objects.create(group=group, weekly_gpu_hours=hours)
    run_that_trained(student, WEEK_START, WEEK_START + timedelta(hours=5))
    assert post_run(student_client, demo_preset, demo_model, student).status_code == 302


def test_a_users_runs_at_once_override_names_its_source_and_when_it_frees(
    student_client, student, demo_preset, demo_model
):
    Quota.objects.create(user=student, max_active_runs=1)
    submitted(student)
    page = student_client.get(reverse("training:run-create")).content.decode()
    assert "Runs at once: <strong>0 of 1 left</strong>" in page
    html = post_run(student_client, demo_preset, demo_model, student).content.decode()
    assert (
        "alice already has 1 unfinished runs (queued, waiting or training); alice&#x27;s limit "
        "is 1 (set for alice by staff). A place frees up when one of them finishes"
    ) in html
    assert runs_of(student) == 1


def test_staff_have_no_limits(settings, staff_client, staff, demo_preset, demo_model):
    settings.LORASTUDIO_WEEKLY_GPU_HOURS = 1
    Quota.objects.create(user=staff, weekly_gpu_hours=0.5, max_resolution=64)
    run_that_trained(staff, WEEK_START, WEEK_START + timedelta(hours=5))
    page = staff_client.get(reverse("training:run-create")).content.decode()
    assert "No limits apply to you (staff)." in page
    response = post_run(staff_client, demo_preset, demo_model, staff, resolution=128)
    assert response.status_code == 302


# --- Size caps: image size, epochs, steps -----------------------------------------------------


def test_a_resolution_above_the_cap_is_refused_and_the_form_says_the_limit(
    student_client, student, demo_preset, demo_model
):
    Quota.objects.create(user=student, max_resolution=64)
    page = student_client.get(
        reverse("training:run-create"), {"preset": demo_preset.pk, "base_model": demo_model.pk}
    ).content.decode()
    assert 'max="64"' in page and "Your limit: 64." in page
    html = post_run(student_client, demo_preset, demo_model, student, resolution=128).content
    assert (
        "Image size 128 px is above alice&#x27;s limit of 64 px (set for alice by staff): "
        "choose 64 px or less."
    ) in html.decode()
    assert runs_of(student) == 0
    assert (
        post_run(student_client, demo_preset, demo_model, student, resolution=64).status_code == 302
    )


def test_the_dataset_proposes_no_size_above_the_cap(student_client, student):
    Quota.objects.create(user=student, max_resolution=256)
    model = make_base_model(architecture="sd15", checkpoint="/m/sd15.safetensors")
    preset = Preset.objects.create(name="SD 1.5", architecture="sd15", values={"resolution": 512})
    dataset = make_dataset(owner=student)
    make_dataset_images(dataset, 2, size=(512, 512))
    page = student_client.get(
        reverse("training:run-create"),
        {"dataset": dataset.pk, "preset": preset.pk, "base_model": model.pk},
    ).content.decode()
    field = re.search(r'<input[^>]*name="p_resolution"[^>]*>', page).group(0)
    assert 'value="256"' in field and 'max="256"' in field


def test_epochs_and_steps_caps_from_a_group(student_client, student, demo_preset, demo_model):
    course = Group.objects.create(name="course")
    student.groups.add(course)
    Quota.objects.create(group=course, max_epochs=4, max_steps=30)
    html = post_run(
        student_client, demo_preset, demo_model, student, max_train_epochs=6, num_repeats=10
    ).content.decode()
    assert "6 epochs is above alice&#x27;s limit of 4 epochs (from group course)" in html
    # 1 image × 10 repeats × 6 epochs = 60 steps.
    assert "This run would train 60 steps, above alice&#x27;s limit of 30 steps" in html
    assert runs_of(student) == 0


def test_train_command_obeys_the_caps_and_its_dry_run_says_why(student):
    Quota.objects.create(user=student, max_resolution=64)
    make_trainable_dataset(owner=student, name="dogs")
    make_base_model(name="demo", architecture="demo")
    args = ["--dataset", "dogs", "--base-model", "demo", "--set", "resolution=128"]
    out = StringIO()
    call_command("train", *args, "--dry-run", "--json", stdout=out)
    verdict = json.loads(out.getvalue())
    assert verdict["verdict"] == "refused"
    assert any("limit of 64 px" in reason for reason in verdict["blocking"])
    with pytest.raises(CommandError, match="Image size 128 px is above alice's limit of 64 px"):
        call_command("train", *args, stdout=StringIO())
    assert runs_of(student) == 0


def test_run_again_is_refused_once_the_hours_are_used(settings, student_client, student):
    settings.LORASTUDIO_WEEKLY_GPU_HOURS = 1
    run = run_that_trained(student, WEEK_START, WEEK_START + timedelta(hours=2))
    response = student_client.post(reverse("training:run-rerun", args=[run.pk]), follow=True)
    assert "alice has used 2 of 1 GPU-hours this week" in response.content.decode()
    assert runs_of(student) == 1


def test_the_settings_page_shows_the_limits_too(settings, student_client, student):
    settings.LORASTUDIO_WEEKLY_GPU_HOURS = 4
    submitted(student)
    page = student_client.get(reverse("account-settings")).content.decode()
    assert "GPU-hours this week: <strong>4 h of 4 h left</strong>" in page
    assert f"new hours {NEXT_WEEK_TEXT}" in page
    assert "Runs at once: <strong>2 of 3 left</strong>" in page


def test_a_short_run_takes_a_visible_minute_off_the_hours_left(settings, student_client, student):
    settings.LORASTUDIO_WEEKLY_GPU_HOURS = 1
    run_that_trained(
        student, WEDNESDAY_NOON - timedelta(seconds=30), WEDNESDAY_NOON - timedelta(seconds=20)
    )
    page = student_client.get(reverse("account-settings")).content.decode()
    assert "<strong>59 min of 1 h left</strong> (used 1 min;" in page
