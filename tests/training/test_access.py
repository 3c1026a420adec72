"""Every URL of the training pages, downloads and websockets, as each persona."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.core.files.base import ContentFile
from django.urls import reverse

from tests.factories import make_run
from tests.ws_helpers import communicator, session_cookie
from training.choices import ArtifactKind
from training.models import LoraArtifact, RunLog, SampleImage

PERSONAS = ["anonymous", "owner", "other_student", "staff"]


@pytest.fixture
def run(student):
    run = make_run(owner=student)
    RunLog.objects.create(run=run, seq=1, text="hello\n")
    return run


@pytest.fixture
def files(run):
    artifact = LoraArtifact.objects.create(
        run=run, kind=ArtifactKind.FINAL, file=ContentFile(b"lora", name="final.safetensors")
    )
    sample = SampleImage.objects.create(run=run, file=ContentFile(b"png", name="s.png"))
    return artifact, sample


def _user(who, request):
    return {
        "anonymous": None,
        "owner": request.getfixturevalue("student"),
        "other_student": request.getfixturevalue("other_student"),
        "staff": request.getfixturevalue("staff"),
    }[who]


# (url name, needs the run, method): answers for anonymous / owner / other student / staff.
RUN_PAGES = [
    ("training:run-detail", "get", 200),
    ("training:run-log", "get", 200),
    ("training:run-cancel", "post", 302),
    ("training:run-rerun", "post", 302),
]
OPEN_PAGES = ["training:run-list", "training:run-create", "training:lab-board", "home"]


@pytest.mark.parametrize("who", PERSONAS)
@pytest.mark.parametrize("name,method,ok", RUN_PAGES)
def test_run_pages(who, name, method, ok, run, client, request):
    user = _user(who, request)
    if user is not None:
        client.force_login(user)
    response = getattr(client, method)(reverse(name, args=[run.pk]))
    if who == "anonymous":
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    elif who == "other_student":
        assert response.status_code == 404
    else:
        assert response.status_code == ok


@pytest.mark.parametrize("who", PERSONAS)
def test_downloads(who, run, files, client, request):
    artifact, sample = files
    user = _user(who, request)
    if user is not None:
        client.force_login(user)
    urls = [
        reverse("training:artifact-download", args=[run.pk, artifact.pk]),
        reverse("training:sample-file", args=[run.pk, sample.pk]),
    ]
    for url in urls:
        response = client.get(url)
        if who == "anonymous":
            assert response.status_code == 302
        elif who == "other_student":
            assert response.status_code == 404
        else:
            assert response.status_code == 200


@pytest.mark.parametrize("who", PERSONAS)
@pytest.mark.parametrize("name", OPEN_PAGES)
def test_pages_without_a_run(who, name, client, request, student):
    user = _user(who, request)
    if user is not None:
        client.force_login(user)
    response = client.get(reverse(name))
    if who == "anonymous":
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    else:
        assert response.status_code == 200


def test_run_plan_endpoint_needs_login(client):
    response = client.get(reverse("training:run-plan"))
    assert response.status_code == 302


def test_media_files_have_no_public_url(client, student, run, files):
    artifact, _ = files
    client.force_login(student)
    assert client.get("/media/" + artifact.file.name).status_code == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who", PERSONAS)
@pytest.mark.parametrize("path", ["run", "lab"])
def test_websockets(who, path, request):
    student = request.getfixturevalue("student")
    run = make_run(owner=student)
    user = _user(who, request)
    cookie = session_cookie(user) if user is not None else None
    url = f"/ws/runs/{run.pk}/" if path == "run" else "/ws/lab/"

    async def go():
        comm = communicator(url, cookie)
        connected, _ = await comm.connect()
        await comm.disconnect()
        return connected

    allowed = who != "anonymous" and (path == "lab" or who != "other_student")
    assert async_to_sync(go)() is allowed
