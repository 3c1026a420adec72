"""Broken zip archives: every archive error is a refusal the user reads, never a 500."""

import io
import zipfile
from io import StringIO

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from datasets import services
from datasets.models import Dataset
from tests.datasets.zips import BREAKAGES, break_entry, undecodable_name, zip_bytes
from tests.factories import make_dataset, make_image_bytes


def texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def archive_with_broken(entry: str, how: str) -> bytes:
    """good.png (captioned) and broken.png (captioned), with `entry` broken in way `how`."""
    data = zip_bytes(
        [
            ("good.png", make_image_bytes("PNG", seed=1)),
            ("good.txt", "sks dog, good"),
            ("broken.png", make_image_bytes("PNG", seed=2)),
            ("broken.txt", "sks dog, broken"),
        ]
    )
    return break_entry(data, entry, how)


@pytest.mark.parametrize("how", BREAKAGES)
def test_broken_zip_entry_is_refused_and_the_good_entries_are_imported(student, how):
    dataset = make_dataset(owner=student)
    report = services.import_zip(dataset, io.BytesIO(archive_with_broken("broken.png", how)))
    assert [name for name, _ in report.rejected] == ["broken.png"]
    assert "could not be read from the archive" in report.rejected[0][1]
    assert dict(dataset.images.values_list("original_name", "caption")) == {
        "good.png": "sks dog, good"
    }
    dataset.refresh_from_db()
    assert dataset.image_count == 1


@pytest.mark.parametrize("how", BREAKAGES)
def test_broken_caption_entry_refuses_its_image(student, how):
    dataset = make_dataset(owner=student)
    report = services.import_zip(dataset, io.BytesIO(archive_with_broken("broken.txt", how)))
    assert [name for name, _ in report.rejected] == ["broken.png"]
    assert "caption" in report.rejected[0][1] and "could not be read" in report.rejected[0][1]
    assert list(dataset.images.values_list("original_name", flat=True)) == ["good.png"]


def test_zip_whose_entry_name_is_not_the_utf8_it_claims_is_refused_whole(student):
    dataset = make_dataset(owner=student)
    data = undecodable_name(archive_with_broken("broken.png", "bad_crc"), "good.png")
    with pytest.raises(services.ArchiveRefused, match="not a readable zip"):
        services.import_zip(dataset, io.BytesIO(data))
    assert not dataset.images.exists()


def test_upload_of_an_image_a_good_zip_and_a_broken_zip_reports_each_file(student_client, student):
    dataset = make_dataset(owner=student)
    good_zip = zip_bytes([("z.png", make_image_bytes("PNG", seed=5)), ("z.txt", "sks from zip")])
    broken_zip = archive_with_broken("broken.png", "bad_crc")
    unreadable = undecodable_name(zip_bytes([("u.png", make_image_bytes("PNG", seed=6))]), "u.png")
    files = [
        SimpleUploadedFile("photo.png", make_image_bytes("PNG", seed=4)),
        SimpleUploadedFile("good.zip", good_zip),
        SimpleUploadedFile("bad.zip", broken_zip),
        SimpleUploadedFile("unreadable.zip", unreadable),
    ]
    url = reverse("datasets:dataset-upload", args=[dataset.pk])
    response = student_client.post(url, {"files": files})
    assert response.status_code == 302
    assert response["Location"] == reverse("datasets:dataset-detail", args=[dataset.pk])
    messages = texts(response)
    assert "Added 3 image(s)." in messages
    assert any(m.startswith("Refused broken.png: it could not be read") for m in messages)
    assert any("Refused unreadable.zip" in m and "Nothing was imported" in m for m in messages)
    names = set(dataset.images.values_list("original_name", flat=True))
    assert names == {"photo.png", "z.png", "good.png"}
    dataset.refresh_from_db()
    assert dataset.image_count == 3


def test_import_command_reports_a_broken_entry_and_imports_the_rest(student, tmp_path):
    path = tmp_path / "set.zip"
    path.write_bytes(archive_with_broken("broken.png", "corrupt_deflate"))
    out = StringIO()
    call_command("import_dataset", str(path), "--name", "Set", "--owner", "alice", stdout=out)
    dataset = Dataset.objects.get(name="Set")
    assert dataset.image_count == 1
    assert "Refused broken.png: it could not be read from the archive" in out.getvalue()


def test_stored_entry_with_a_bad_crc_is_refused(student):
    dataset = make_dataset(owner=student)
    data = zip_bytes(
        [("a.png", make_image_bytes("PNG", seed=1)), ("b.png", make_image_bytes("PNG", seed=2))],
        compression=zipfile.ZIP_STORED,
    )
    report = services.import_zip(dataset, io.BytesIO(break_entry(data, "b.png", "bad_crc")))
    assert [name for name, _ in report.rejected] == ["b.png"]
    assert list(dataset.images.values_list("original_name", flat=True)) == ["a.png"]
