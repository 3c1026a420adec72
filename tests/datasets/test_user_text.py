"""Text from users: the caption length limit and control characters, on every path in."""

import io
import zipfile
from io import StringIO

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from datasets import services
from datasets.models import Dataset
from tests.datasets.zips import zip_bytes
from tests.factories import make_dataset, make_dataset_images, make_image_bytes

LIMIT = 2000  # the default of LORASTUDIO_MAX_CAPTION_CHARS


def texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def captions_of(dataset):
    return list(dataset.images.order_by("pk").values_list("caption", flat=True))


@pytest.fixture
def dataset(student):
    return make_dataset(owner=student, trigger_word="sks dog")


def captions_url(dataset):
    return reverse("datasets:dataset-captions", args=[dataset.pk])


def test_default_caption_limit_is_2000_characters(settings):
    assert settings.LORASTUDIO_MAX_CAPTION_CHARS == LIMIT


# --- The captions page: editor and bulk tools ----------------------------------------------


def test_find_replace_that_would_pass_the_caption_limit_changes_nothing(student_client, dataset):
    # The review's attack, scaled down: "a" in a 1,000-character caption replaced by a long text.
    make_dataset_images(dataset, 2, captions=["a" * 1000, "a dog"])
    data = {"tool": "replace", "find": "a", "replace": "b" * 1500}
    response = student_client.post(captions_url(dataset), data)
    assert response.status_code == 200
    errors = texts(response)
    assert any("over the limit of 2,000 characters" in m and "img0.png" in m for m in errors)
    assert any("Nothing was changed" in m for m in errors)
    assert captions_of(dataset) == ["a" * 1000, "a dog"]


def test_find_replace_with_a_replacement_longer_than_any_caption_is_refused(
    student_client, dataset
):
    make_dataset_images(dataset, 1, captions=["a" * 1000])
    data = {"tool": "replace", "find": "a", "replace": "b" * 100_000}
    response = student_client.post(captions_url(dataset), data)
    assert response.status_code == 200
    assert any("at most 2000 characters" in m for m in texts(response))
    assert captions_of(dataset) == ["a" * 1000]


def test_fill_text_longer_than_the_limit_is_refused(student_client, dataset):
    make_dataset_images(dataset, 1, captions=[""])
    data = {"tool": "fill_empty", "replace": "x" * (LIMIT + 1)}
    response = student_client.post(captions_url(dataset), data)
    assert any("at most 2000 characters" in m for m in texts(response))
    assert captions_of(dataset) == [""]


def test_prepend_trigger_that_would_pass_the_limit_changes_no_caption(
    student_client, dataset, settings
):
    settings.LORASTUDIO_MAX_CAPTION_CHARS = 40
    make_dataset_images(dataset, 2, captions=["x" * 38, "on grass"])
    response = student_client.post(captions_url(dataset), {"tool": "prepend_trigger"})
    assert response.status_code == 200
    assert any("over the limit of 40 characters" in m for m in texts(response))
    assert captions_of(dataset) == ["x" * 38, "on grass"]


def test_caption_editor_refuses_a_caption_over_the_limit_and_saves_none(student_client, dataset):
    first, second = make_dataset_images(dataset, 2, captions=["old one", "old two"])
    data = {f"caption-{first.pk}": "new one", f"caption-{second.pk}": "y" * (LIMIT + 1)}
    response = student_client.post(captions_url(dataset), data)
    assert response.status_code == 200
    errors = texts(response)
    assert (
        "Nothing was saved: 1 caption(s) would be over the limit of 2,000 characters: "
        "img1.png (2,001 characters)." in errors
    )
    assert captions_of(dataset) == ["old one", "old two"]


def test_caption_limit_counts_the_caption_as_stored(student_client, dataset, settings):
    settings.LORASTUDIO_MAX_CAPTION_CHARS = 10
    (image,) = make_dataset_images(dataset, 1)
    response = student_client.post(captions_url(dataset), {f"caption-{image.pk}": " sks   dog \n"})
    assert "Saved 1 changed caption(s)." in texts(response)
    assert captions_of(dataset) == ["sks dog"]


def test_caption_boxes_hold_at_most_the_limit(student_client, dataset):
    make_dataset_images(dataset, 1)
    body = student_client.get(captions_url(dataset)).content.decode()
    assert f'maxlength="{LIMIT}"' in body


def test_caption_editor_strips_nul_and_control_characters(student_client, dataset):
    (image,) = make_dataset_images(dataset, 1)
    raw = "sks\x00 dog\x07,\tsitting\r\nnext\x1b[0m line\x7f\x85end"
    response = student_client.post(captions_url(dataset), {f"caption-{image.pk}": raw})
    assert response.status_code == 302
    assert "Saved 1 changed caption(s)." in texts(response)
    assert captions_of(dataset) == ["sks dog, sitting next[0m line end"]


# --- Zip archives, uploads and the import command ------------------------------------------


def test_zip_caption_with_nul_bytes_is_stored_clean(student_client, dataset):
    archive = zip_bytes(
        [
            ("a.png", make_image_bytes("PNG", seed=1)),
            ("a.txt", "s\x00k\x00s\x00 dog\x00\n"),  # what UTF-16 text read as UTF-8 looks like
            ("b.png", make_image_bytes("PNG", seed=2)),
            ("b.txt", "sks\x00dog \x01on\x02 grass"),
        ]
    )
    url = reverse("datasets:dataset-upload", args=[dataset.pk])
    response = student_client.post(url, {"files": [SimpleUploadedFile("set.zip", archive)]})
    assert response.status_code == 302
    assert "Added 2 image(s)." in texts(response)
    assert captions_of(dataset) == ["sks dog", "sksdog on grass"]


def test_zip_entry_names_keep_printable_characters_only(student, dataset):
    archive = zip_bytes([("set/do\x1bg\x7f\x01.png", make_image_bytes("PNG", seed=1))])
    report = services.import_zip(dataset, io.BytesIO(archive))
    assert len(report.added) == 1
    assert list(dataset.images.values_list("original_name", flat=True)) == ["dog.png"]


def test_zip_caption_over_the_limit_refuses_its_image(student, dataset):
    archive = zip_bytes(
        [
            ("long.png", make_image_bytes("PNG", seed=1)),
            ("long.txt", "word " * 500),  # 2,499 characters once trimmed
            ("ok.png", make_image_bytes("PNG", seed=2)),
            ("ok.txt", "sks dog"),
        ]
    )
    report = services.import_zip(dataset, io.BytesIO(archive))
    assert report.rejected == [
        ("long.png", "has a caption of 2,499 characters, over the limit of 2,000")
    ]
    assert list(dataset.images.values_list("original_name", "caption")) == [("ok.png", "sks dog")]


def test_zip_caption_file_too_big_to_read_refuses_its_image(student, dataset):
    archive = zip_bytes(
        [("big.png", make_image_bytes("PNG", seed=1)), ("big.txt", " " * 70_000 + "sks dog")],
        compression=zipfile.ZIP_STORED,  # deflated, 70 kB of spaces would be a zip bomb
    )
    report = services.import_zip(dataset, io.BytesIO(archive))
    assert report.rejected[0][0] == "big.png" and "caption file" in report.rejected[0][1]
    assert not dataset.images.exists()


def test_import_command_refuses_an_image_with_a_long_caption_and_cleans_the_others(
    student, tmp_path
):
    (tmp_path / "long.png").write_bytes(make_image_bytes("PNG", seed=1))
    (tmp_path / "long.txt").write_text("z" * (LIMIT + 5), encoding="utf-8")
    (tmp_path / "ok.png").write_bytes(make_image_bytes("PNG", seed=2))
    (tmp_path / "ok.caption").write_bytes(b"sks\x00 dog\x07")
    out = StringIO()
    call_command("import_dataset", str(tmp_path), "--name", "D", "--owner", "alice", stdout=out)
    assert "Refused long.png: it has a caption of 2,005 characters" in out.getvalue()
    dataset = Dataset.objects.get(name="D")
    assert list(dataset.images.values_list("original_name", "caption")) == [("ok.png", "sks dog")]


# --- Staff in the admin ----------------------------------------------------------------------


def admin_post(client, image, caption):
    url = reverse("admin:datasets_datasetimage_change", args=[image.pk])
    return client.post(url, {"dataset": image.dataset_id, "caption": caption, "_save": "Save"})


def test_admin_refuses_a_caption_over_the_limit(staff_client, dataset):
    (image,) = make_dataset_images(dataset, 1, captions=["before"])
    response = admin_post(staff_client, image, "q" * (LIMIT + 1))
    assert response.status_code == 200
    assert "over the limit of 2,000" in response.content.decode()
    assert captions_of(dataset) == ["before"]


def test_admin_stores_a_caption_cleaned_like_every_other_path(staff_client, dataset):
    (image,) = make_dataset_images(dataset, 1, captions=["before"])
    response = admin_post(staff_client, image, "sks\x07 dog\r\non grass")
    assert response.status_code == 302
    assert captions_of(dataset) == ["sks dog on grass"]


# --- Dataset name, description and trigger word ----------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Dogs\x00"),
        ("name", "Do\x1bgs"),
        ("description", "nice\x00set"),
        ("trigger_word", "sks\x00"),
        ("trigger_word", "sks\x01dog"),
        ("trigger_word", "sks\x7f"),
    ],
)
def test_dataset_services_refuse_nul_and_control_characters(student, field, value):
    values = {"name": "Dogs", "description": "", "trigger_word": "sks", field: value}
    with pytest.raises(ValidationError) as caught:
        services.create_dataset(student, **values)
    assert field in caught.value.error_dict
    assert not Dataset.objects.exists()
    dataset = services.create_dataset(student, name="Cats", trigger_word="ohwx")
    with pytest.raises(ValidationError):
        services.update_dataset(dataset, **values, repeats=10, visibility="private")
    dataset = Dataset.objects.get(pk=dataset.pk)
    assert (dataset.name, dataset.description, dataset.trigger_word) == ("Cats", "", "ohwx")


def test_import_command_refuses_a_trigger_with_control_characters(student, tmp_path):
    (tmp_path / "a.png").write_bytes(make_image_bytes("PNG", seed=1))
    with pytest.raises(CommandError, match="Nothing imported: The trigger word"):
        call_command(
            "import_dataset",
            str(tmp_path),
            *("--name", "D", "--owner", "alice", "--trigger", "sks\x01dog"),
            stdout=StringIO(),
        )
    assert not Dataset.objects.exists()


def test_dataset_pages_refuse_nul_in_name_and_description(student_client):
    data = {"name": "Dogs\x00", "description": "a\x00b", "repeats": 8, "visibility": "private"}
    response = student_client.post(reverse("datasets:dataset-create"), data)
    assert response.status_code == 200 and "Null characters are not allowed" in (
        response.content.decode()
    )
    assert not Dataset.objects.exists()
