"""Datasets through the API: the same rules as the pages (owner, lab sharing, upload checks)."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from datasets.models import Dataset
from tests.api.conftest import ApiClient
from tests.factories import make_dataset, make_image_bytes

pytestmark = pytest.mark.django_db


def test_list_shows_mine_and_the_labs_not_anothers_private(student_api, student, other_student):
    mine = make_dataset(owner=student, name="mine")
    shared = make_dataset(owner=other_student, name="shared", visibility="lab")
    make_dataset(owner=other_student, name="private")
    response = student_api.get("/api/v1/datasets/")
    assert response.status_code == 200
    assert {d["id"] for d in response.json()} == {mine.pk, shared.pk}


def test_create_a_dataset(student_api, student):
    response = student_api.post_json(
        "/api/v1/datasets/", {"name": " cats ", "trigger_word": "sks cat", "repeats": 5}
    )
    assert response.status_code == 201
    body = response.json()
    dataset = Dataset.objects.get(pk=body["id"])
    assert (dataset.owner, dataset.name, dataset.trigger_word, dataset.repeats) == (
        student, "cats", "sks cat", 5,
    )  # fmt: skip
    assert body["owner"] == "alice" and body["image_count"] == 0


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"name": "x", "repeats": 0}, "repeats"),
        ({"name": "x", "visibility": "public"}, "visibility"),
        ({"name": "x", "trigger": "sks"}, "trigger"),  # a misspelt field is named, not ignored
        ({"description": "no name"}, "name"),
        ({"name": "x", "trigger_word": "a/b"}, "trigger_word"),
    ],
)
def test_bad_dataset_input_is_a_400_naming_the_field_and_creates_nothing(
    student_api, payload, field
):
    response = student_api.post_json("/api/v1/datasets/", payload)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not Dataset.objects.exists()


def test_a_duplicate_name_is_refused_with_the_reason(student_api, student):
    make_dataset(owner=student, name="cats")
    response = student_api.post_json("/api/v1/datasets/", {"name": "cats"})
    assert response.status_code == 400
    assert "already exists" in response.json()["detail"]
    assert Dataset.objects.count() == 1


def test_upload_images_and_a_zip_reports_each_file(student_api, student):
    dataset = make_dataset(owner=student)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("z1.png", make_image_bytes("PNG", seed=11))
        zf.writestr("z1.txt", "sks dog from zip")
    files = [
        SimpleUploadedFile("a.png", make_image_bytes("PNG", seed=1)),
        SimpleUploadedFile("fake.jpg", b"text pretending"),
        SimpleUploadedFile("set.zip", archive.getvalue()),
    ]
    response = student_api.post(f"/api/v1/datasets/{dataset.pk}/images/", {"files": files})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["added"] == 2 and body["image_count"] == 2
    assert [r["name"] for r in body["rejected"]] == ["fake.jpg"]
    assert "Added 2 image(s)." in body["messages"]
    assert dataset.images.get(original_name="z1.png").caption == "sks dog from zip"
    again = student_api.post(
        f"/api/v1/datasets/{dataset.pk}/images/",
        {"files": [SimpleUploadedFile("a-again.png", make_image_bytes("PNG", seed=1))]},
    )
    assert again.json()["duplicates"] == ["a-again.png"] and again.json()["added"] == 0


def test_an_unsafe_zip_is_refused_whole(student_api, student):
    dataset = make_dataset(owner=student)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.png", make_image_bytes("PNG", seed=1))
        zf.writestr("../../evil.png", make_image_bytes("PNG", seed=2))
    files = [SimpleUploadedFile("x.zip", archive.getvalue())]
    body = student_api.post(f"/api/v1/datasets/{dataset.pk}/images/", {"files": files}).json()
    assert body["added"] == 0 and body["refused_archives"][0]["name"] == "x.zip"
    assert not dataset.images.exists()


def test_an_upload_without_files_is_a_400(student_api, student):
    dataset = make_dataset(owner=student)
    response = student_api.post(f"/api/v1/datasets/{dataset.pk}/images/", {})
    assert response.status_code == 400 and "files" in response.json()["errors"]


def test_another_users_dataset_answers_404_even_when_shared(
    client, student, other_student, token_for
):
    private = make_dataset(owner=student, name="private")
    shared = make_dataset(owner=student, name="shared", visibility="lab")
    bob = ApiClient(client, token_for(other_student))
    image = {"files": [SimpleUploadedFile("a.png", make_image_bytes("PNG", seed=1))]}
    assert bob.get(f"/api/v1/datasets/{private.pk}/").status_code == 404
    assert bob.post(f"/api/v1/datasets/{private.pk}/images/", image).status_code == 404
    assert bob.get(f"/api/v1/datasets/{shared.pk}/").status_code == 200
    # Shared means usable, not editable (as on the upload page).
    assert bob.post(f"/api/v1/datasets/{shared.pk}/images/", image).status_code == 404
    assert not shared.images.exists() and not private.images.exists()


def test_staff_see_and_fill_every_dataset(client, student, staff, token_for):
    dataset = make_dataset(owner=student)
    charlie = ApiClient(client, token_for(staff))
    assert charlie.get(f"/api/v1/datasets/{dataset.pk}/").status_code == 200
    image = {"files": [SimpleUploadedFile("a.png", make_image_bytes("PNG", seed=1))]}
    assert charlie.post(f"/api/v1/datasets/{dataset.pk}/images/", image).json()["added"] == 1
