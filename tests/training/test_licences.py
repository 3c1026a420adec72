"""Licence gates: a base model that requires acceptance refuses runs (page, `manage.py train`,
"run again") until the owner accepts its licence once on its page; staff edit the text."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from tests.factories import make_base_model, make_trainable_dataset
from tests.training.lab_helpers import new_run_form
from training.licences import licence_sha256
from training.models import LicenceAcceptance, Preset, TrainingRun

LICENCE = "FLUX.1 [dev] Non-Commercial License\n\nResearch and teaching only."


@pytest.fixture
def gated(db):
    return make_base_model(
        name="FLUX dev (demo)",
        architecture="demo",
        licence_text=LICENCE,
        licence_requires_acceptance=True,
    )


@pytest.fixture
def demo_preset(db):
    return Preset.objects.create(name="Licence demo", architecture="demo", values={})


SITE = "https://lab.example.org"


@pytest.fixture(autouse=True)
def _site(settings):
    settings.LORASTUDIO_SITE_URL = SITE


def licence_url(model) -> str:
    return reverse("training:licence", args=[model.pk])


def submit(client, preset, model, owner):
    dataset = make_trainable_dataset(owner=owner)
    return client.post(
        reverse("training:run-create"), new_run_form(preset, model, dataset, resolution=32)
    )


def test_a_run_on_a_gated_model_is_refused_with_the_page_that_lifts_it(
    student_client, student, gated, demo_preset
):
    response = submit(student_client, demo_preset, gated, student)
    assert response.status_code == 200
    html = response.content.decode()
    assert (
        "FLUX dev (demo) may only be trained on after accepting its licence: alice has not "
        f"accepted it yet. Read and accept it at {SITE}{licence_url(gated)}"
    ) in html
    assert not TrainingRun.objects.exists()


def test_the_new_run_page_shows_the_gate_with_a_link(student_client, gated, demo_preset):
    page = student_client.get(
        reverse("training:run-create"), {"base_model": gated.pk, "preset": demo_preset.pk}
    ).content.decode()
    assert 'id="licence-gate"' in page
    assert f'href="{licence_url(gated)}?next=' in page


def test_accepting_once_records_who_and_when_and_lets_the_run_through(
    student_client, student, gated, demo_preset
):
    page = student_client.get(licence_url(gated)).content.decode()
    assert "Research and teaching only." in page and "I accept this licence" in page
    response = student_client.post(licence_url(gated), {"accept": "1"})
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('training:run-create')}?base_model={gated.pk}"
    acceptance = LicenceAcceptance.objects.get()
    assert (acceptance.user, acceptance.base_model) == (student, gated)
    assert acceptance.licence_sha256 == licence_sha256(gated)
    assert "You accepted this licence on" in student_client.get(licence_url(gated)).content.decode()
    assert submit(student_client, demo_preset, gated, student).status_code == 302
    assert TrainingRun.objects.filter(owner=student).count() == 1


def test_accepting_again_keeps_the_first_acceptance(student_client, student, gated):
    student_client.post(licence_url(gated), {"accept": "1"})
    first = LicenceAcceptance.objects.get()
    student_client.post(licence_url(gated), {"accept": "1"})
    assert list(LicenceAcceptance.objects.all()) == [first]
    assert LicenceAcceptance.objects.get().accepted_at == first.accepted_at


def test_a_post_without_the_tick_is_refused_and_records_nothing(student_client, gated):
    response = student_client.post(licence_url(gated), {})
    assert response.status_code == 400
    assert "Tick “I accept this licence” to accept it." in response.content.decode()
    assert not LicenceAcceptance.objects.exists()


def test_the_next_address_must_be_this_sites(student_client, gated):
    response = student_client.post(
        licence_url(gated), {"accept": "1", "next": "https://evil.example/x"}
    )
    assert response["Location"].startswith(reverse("training:run-create"))
    response = student_client.post(licence_url(gated), {"accept": "1", "next": "/runs/"})
    assert response["Location"] == "/runs/"


def test_one_students_acceptance_is_not_anothers(client, student, other_student, gated):
    LicenceAcceptance.objects.create(user=student, base_model=gated, licence_sha256="x")
    client.force_login(other_student)
    page = client.get(licence_url(gated)).content.decode()
    assert "Accept the licence" in page and "You accepted" not in page


def test_strangers_must_log_in(client, gated):
    assert client.get(licence_url(gated))["Location"].startswith(reverse("login"))
    assert Client().post(licence_url(gated), {"accept": "1"}).status_code == 302
    assert not LicenceAcceptance.objects.exists()


def test_disabled_model_answers_404(student_client, gated):
    gated.enabled = False
    gated.save()
    assert student_client.get(licence_url(gated)).status_code == 404


def test_accepting_needs_the_csrf_token(student, gated):
    client = Client(enforce_csrf_checks=True)
    client.force_login(student)
    assert client.post(licence_url(gated), {"accept": "1"}).status_code == 403
    assert not LicenceAcceptance.objects.exists()


def test_train_command_is_refused_until_accepted(student, gated):
    make_trainable_dataset(owner=student, name="dogs")
    args = ["train", "--dataset", "dogs", "--base-model", gated.name, "--set", "resolution=32"]
    with pytest.raises(
        CommandError, match="may only be trained on after accepting its licence"
    ) as refused:
        call_command(*args, stdout=StringIO())
    # The whole address: a terminal has no page to be relative to.
    assert f"Read and accept it at {SITE}{licence_url(gated)}" in str(refused.value)
    LicenceAcceptance.objects.create(user=student, base_model=gated, licence_sha256="x")
    call_command(*args, stdout=StringIO())
    assert TrainingRun.objects.filter(owner=student, base_model=gated).count() == 1


def test_staff_accept_too(staff_client, staff, gated, demo_preset):
    html = submit(staff_client, demo_preset, gated, staff).content.decode()
    assert "charlie has not accepted it yet" in html


def test_staff_write_the_licence_in_the_admin_and_see_acceptances(staff_client, student, gated):
    url = reverse("admin:training_basemodel_change", args=[gated.pk])
    page = staff_client.get(url).content.decode()
    assert "Licence must be accepted" in page and "Research and teaching only." in page
    data = {
        "name": gated.name,
        "architecture": "demo",
        "enabled": "on",
        "licence_text": "New terms.",
        "licence_requires_acceptance": "on",
    }
    assert staff_client.post(url, data).status_code == 302
    gated.refresh_from_db()
    assert gated.licence_text == "New terms."
    # Requiring acceptance of no text is refused, and changes nothing.
    response = staff_client.post(url, {**data, "licence_text": " "})
    assert "Write the licence users must accept." in response.content.decode()
    gated.refresh_from_db()
    assert gated.licence_text == "New terms."

    LicenceAcceptance.objects.create(user=student, base_model=gated, licence_sha256="x")
    listing = staff_client.get(reverse("admin:training_licenceacceptance_changelist"))
    assert listing.status_code == 200 and "alice" in listing.content.decode()


def test_students_never_see_the_acceptances_admin(student_client):
    response = student_client.get(reverse("admin:training_licenceacceptance_changelist"))
    assert response.status_code in (302, 404)
