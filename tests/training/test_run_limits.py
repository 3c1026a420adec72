"""Limits a lab needs: a student's unfinished runs are capped (the page, `manage.py train` and
the admin's "run again" refuse alike), and a new-run form posted twice makes one run."""

from __future__ import annotations

import json
import re
import threading
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from tests.factories import make_base_model, make_node, make_trainable_dataset
from tests.training.admin_helpers import CHANGELIST, finished, submitted
from training import services
from training.models import Preset, TrainingRun

LIMIT_WORDS = "already has 3 unfinished runs"


@pytest.fixture
def demo_preset(db):
    # A preset of our own: transactional tests empty the tables the migrations filled.
    return Preset.objects.create(name="Limits demo", architecture="demo", values={})


@pytest.fixture
def demo_model(db):
    return make_base_model(name="Demo toy", architecture="demo")


def form_data(preset, model, dataset, token=None):
    return {
        "preset": preset.pk,
        "base_model": model.pk,
        "dataset": dataset.pk,
        "name": "my lora",
        "p_resolution": 32,
        "submit": "1",
        "form_token": str(token or uuid.uuid4()),
    }


def unfinished(owner) -> int:
    return TrainingRun.objects.filter(owner=owner).unfinished().count()


# --- The cap on a student's unfinished runs ------------------------------------------------


def test_student_at_the_limit_is_refused_on_the_page_with_a_clear_message(
    student_client, student, demo_preset, demo_model
):
    for _ in range(3):
        submitted(student)
    dataset = make_trainable_dataset(owner=student)
    response = student_client.post(
        reverse("training:run-create"), form_data(demo_preset, demo_model, dataset)
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "alice already has 3 unfinished runs (queued, waiting or training)" in html
    assert "the lab allows 3 per student" in html
    assert unfinished(student) == 3


def test_finished_and_cancelled_runs_do_not_count(student_client, student, demo_preset, demo_model):
    finished(submitted(student))
    finished(submitted(student), status="failed")
    services.cancel_run(submitted(student), by=student)
    submitted(student)
    submitted(student)
    dataset = make_trainable_dataset(owner=student)
    response = student_client.post(
        reverse("training:run-create"), form_data(demo_preset, demo_model, dataset)
    )
    assert response.status_code == 302
    assert unfinished(student) == 3


def test_the_limit_comes_from_the_setting(
    settings, student_client, student, demo_preset, demo_model
):
    settings.LORASTUDIO_MAX_ACTIVE_RUNS_PER_USER = 1
    submitted(student)
    dataset = make_trainable_dataset(owner=student)
    response = student_client.post(
        reverse("training:run-create"), form_data(demo_preset, demo_model, dataset)
    )
    assert "the lab allows 1 per student" in response.content.decode()
    assert unfinished(student) == 1


def test_staff_have_no_limit(staff_client, staff, demo_preset, demo_model):
    for _ in range(3):
        submitted(staff)
    dataset = make_trainable_dataset(owner=staff)
    response = staff_client.post(
        reverse("training:run-create"), form_data(demo_preset, demo_model, dataset)
    )
    assert response.status_code == 302
    assert unfinished(staff) == 4


def test_plan_preview_already_shows_the_limit(student_client, student, demo_preset, demo_model):
    for _ in range(3):
        submitted(student)
    data = form_data(demo_preset, demo_model, make_trainable_dataset(owner=student))
    del data["submit"]
    html = student_client.get(reverse("training:run-plan"), data).content.decode()
    assert "cannot be submitted yet" in html and LIMIT_WORDS in html


def test_train_command_refuses_and_its_dry_run_shows_the_verdict(student):
    for _ in range(3):
        submitted(student)
    make_trainable_dataset(owner=student, name="dogs")
    make_base_model(name="demo", architecture="demo")
    out = StringIO()
    call_command(
        "train", "--dataset", "dogs", "--base-model", "demo", "--dry-run", "--json", stdout=out
    )
    verdict = json.loads(out.getvalue())
    assert verdict["verdict"] == "refused"
    assert any(LIMIT_WORDS in reason for reason in verdict["blocking"])
    with pytest.raises(CommandError, match=LIMIT_WORDS):
        call_command("train", "--dataset", "dogs", "--base-model", "demo", stdout=StringIO())
    assert unfinished(student) == 3


def test_admin_run_again_is_refused_for_a_student_at_the_limit(staff_client, student):
    first = finished(submitted(student))
    for _ in range(3):
        submitted(student)
    response = staff_client.post(
        reverse(CHANGELIST),
        {"action": "rerun_runs", "_selected_action": [first.pk]},
        follow=True,
    )
    texts = [str(m) for m in response.context["messages"]]
    assert any("Skipped 1" in t and LIMIT_WORDS in t for t in texts), texts
    assert unfinished(student) == 3 and not TrainingRun.objects.filter(rerun_of=first).exists()


# --- One run per submitted form ------------------------------------------------------------


def test_posting_the_same_form_twice_creates_one_run_and_shows_it(
    student_client, student, demo_preset, demo_model
):
    make_node()
    data = form_data(demo_preset, demo_model, make_trainable_dataset(owner=student))
    first = student_client.post(reverse("training:run-create"), data)
    run = TrainingRun.objects.get()
    second = student_client.post(reverse("training:run-create"), data, follow=True)
    assert first["Location"] == reverse("training:run-detail", args=[run.pk])
    assert second.redirect_chain == [(reverse("training:run-detail", args=[run.pk]), 302)]
    assert f"This form was already submitted: it created run #{run.pk}." in (
        second.content.decode()
    )
    assert TrainingRun.objects.count() == 1


def test_the_same_form_again_at_the_limit_still_leads_to_its_run(
    student_client, student, demo_preset, demo_model
):
    submitted(student)
    submitted(student)
    data = form_data(demo_preset, demo_model, make_trainable_dataset(owner=student))
    student_client.post(reverse("training:run-create"), data)
    third = TrainingRun.objects.filter(owner=student).latest("pk")
    again = student_client.post(reverse("training:run-create"), data)
    assert again.status_code == 302
    assert again["Location"] == reverse("training:run-detail", args=[third.pk])
    assert unfinished(student) == 3


def test_each_new_run_page_carries_a_fresh_token(student_client, demo_preset):
    pattern = r'name="form_token" value="([0-9a-f-]{36})"'
    first = re.search(pattern, student_client.get(reverse("training:run-create")).content.decode())
    again = re.search(pattern, student_client.get(reverse("training:run-create")).content.decode())
    assert first and again and first.group(1) != again.group(1)


@pytest.mark.parametrize("token", ["", "not-a-uuid"])
def test_a_submit_without_the_forms_token_is_refused(
    student_client, student, demo_preset, demo_model, token
):
    data = form_data(demo_preset, demo_model, make_trainable_dataset(owner=student))
    data["form_token"] = token
    response = student_client.post(reverse("training:run-create"), data)
    assert response.status_code == 200
    assert "This form is out of date: reload the page" in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_two_forms_of_one_student_are_two_runs(student_client, student, demo_preset, demo_model):
    dataset = make_trainable_dataset(owner=student)
    for _ in range(2):
        student_client.post(
            reverse("training:run-create"), form_data(demo_preset, demo_model, dataset)
        )
    assert TrainingRun.objects.filter(owner=student).count() == 2


# --- Double submits that race -----------------------------------------------------------


def _post_together(student, payloads: list[dict]) -> list[int]:
    """POST each payload from its own thread and database connection, all at once."""
    barrier = threading.Barrier(len(payloads))
    statuses: list[int] = []

    def post(data):
        client = Client()
        client.force_login(student)
        try:
            barrier.wait(timeout=30)
            statuses.append(client.post(reverse("training:run-create"), data).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(data,)) for data in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


@pytest.mark.django_db(transaction=True)
def test_a_double_submit_race_makes_one_run(student, demo_preset, demo_model):
    data = form_data(demo_preset, demo_model, make_trainable_dataset(owner=student))
    statuses = _post_together(student, [data, data, data])
    assert statuses == [302, 302, 302]
    assert TrainingRun.objects.filter(owner=student).count() == 1


@pytest.mark.django_db(transaction=True)
def test_racing_submits_never_pass_the_limit(student, demo_preset, demo_model):
    submitted(student)
    submitted(student)
    dataset = make_trainable_dataset(owner=student)
    forms = [form_data(demo_preset, demo_model, dataset) for _ in range(3)]
    statuses = _post_together(student, forms)
    assert sorted(statuses) == [200, 200, 302]
    assert unfinished(student) == 3
