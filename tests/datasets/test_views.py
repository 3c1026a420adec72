"""Dataset pages: owners, lab sharing, other students (404), uploads and captions."""

import io
import zipfile

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from datasets.models import Dataset, DatasetImage
from tests.factories import make_dataset, make_dataset_images, make_image_bytes


def texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def dataset(student):
    return make_dataset(owner=student, trigger_word="sks dog")


@pytest.fixture
def image(dataset):
    return make_dataset_images(dataset, 1, captions=["sks dog on grass"])[0]


def dataset_urls(dataset, image):
    pk = dataset.pk
    return [
        ("get", reverse("datasets:dataset-detail", args=[pk])),
        ("get", reverse("datasets:dataset-edit", args=[pk])),
        ("get", reverse("datasets:dataset-upload", args=[pk])),
        ("get", reverse("datasets:dataset-captions", args=[pk])),
        ("get", reverse("datasets:dataset-delete", args=[pk])),
        ("post", reverse("datasets:dataset-delete", args=[pk])),
        ("post", reverse("datasets:dataset-captions", args=[pk])),
        ("post", reverse("datasets:dataset-upload", args=[pk])),
        ("post", reverse("datasets:image-delete", args=[pk, image.pk])),
        ("get", reverse("datasets:image-file", args=[pk, image.pk])),
        ("get", reverse("datasets:image-thumb", args=[pk, image.pk])),
    ]


def test_other_student_gets_404_on_every_page_and_image(client, other_student, dataset, image):
    client.force_login(other_student)
    for method, url in dataset_urls(dataset, image):
        response = getattr(client, method)(url)
        assert response.status_code == 404, (method, url)
    assert Dataset.objects.filter(pk=dataset.pk).exists()
    assert DatasetImage.objects.filter(pk=image.pk).exists()
    list_page = client.get(reverse("datasets:dataset-list"))
    assert dataset.name not in list_page.content.decode()


def test_image_of_another_dataset_is_404_through_my_dataset(client, student, other_student, image):
    mine = make_dataset(owner=other_student)
    client.force_login(other_student)
    url = reverse("datasets:image-file", args=[mine.pk, image.pk])
    assert client.get(url).status_code == 404


def test_lab_dataset_is_visible_but_not_editable_by_others(client, other_student, dataset, image):
    dataset.visibility = "lab"
    dataset.save()
    client.force_login(other_student)
    pk = dataset.pk
    assert client.get(reverse("datasets:dataset-detail", args=[pk])).status_code == 200
    assert client.get(reverse("datasets:image-thumb", args=[pk, image.pk])).status_code == 200
    assert client.get(reverse("datasets:dataset-captions", args=[pk])).status_code == 404
    assert client.post(reverse("datasets:image-delete", args=[pk, image.pk])).status_code == 404
    assert dataset.name in client.get(reverse("datasets:dataset-list")).content.decode()


def test_anonymous_is_sent_to_login(client, dataset):
    response = client.get(reverse("datasets:dataset-detail", args=[dataset.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_owner_pages_render(student_client, dataset, image):
    for method, url in dataset_urls(dataset, image):
        if method == "get":
            assert student_client.get(url).status_code == 200, url
    detail = student_client.get(reverse("datasets:dataset-detail", args=[dataset.pk]))
    body = detail.content.decode()
    assert "Pre-flight check" in body and image.original_name in body
    assert reverse("datasets:image-thumb", args=[dataset.pk, image.pk]) in body


def test_image_file_and_thumb_are_served(student_client, dataset, image):
    file_response = student_client.get(reverse("datasets:image-file", args=[dataset.pk, image.pk]))
    assert file_response["Content-Type"] == "image/png"
    assert b"".join(file_response.streaming_content) == image.file.open("rb").read()
    thumb = student_client.get(reverse("datasets:image-thumb", args=[dataset.pk, image.pk]))
    assert thumb["Content-Type"] == "image/jpeg"


def test_create_dataset(student_client, student):
    response = student_client.post(
        reverse("datasets:dataset-create"),
        {"name": "Dogs", "trigger_word": " sks  dog ", "repeats": 8, "visibility": "private"},
    )
    dataset = Dataset.objects.get(owner=student, name="Dogs")
    assert response.status_code == 302
    assert response["Location"] == reverse("datasets:dataset-upload", args=[dataset.pk])
    assert (dataset.trigger_word, dataset.repeats) == ("sks dog", 8)
    assert any("Created dataset" in m for m in texts(response))


@pytest.mark.parametrize(
    "data",
    [
        {"name": "", "repeats": 8, "visibility": "private"},
        {"name": "X", "repeats": 0, "visibility": "private"},
        {"name": "X", "repeats": 8, "visibility": "public"},
        {"name": "X", "trigger_word": "a/b", "repeats": 8, "visibility": "private"},
    ],
)
def test_create_with_bad_input_changes_nothing(student_client, data):
    response = student_client.post(reverse("datasets:dataset-create"), data)
    assert response.status_code == 200 and not Dataset.objects.exists()


def test_create_with_duplicate_name_shows_error(student_client, dataset):
    data = {"name": dataset.name, "repeats": 8, "visibility": "private"}
    response = student_client.post(reverse("datasets:dataset-create"), data)
    assert response.status_code == 200 and Dataset.objects.count() == 1
    assert "already exists" in response.content.decode()


def test_edit_dataset(student_client, dataset):
    data = {"name": "Renamed", "trigger_word": "ohwx", "repeats": 3, "visibility": "lab"}
    response = student_client.post(reverse("datasets:dataset-edit", args=[dataset.pk]), data)
    assert response["Location"] == reverse("datasets:dataset-detail", args=[dataset.pk])
    dataset.refresh_from_db()
    assert (dataset.name, dataset.trigger_word, dataset.repeats, dataset.visibility) == (
        "Renamed",
        "ohwx",
        3,
        "lab",
    )


def test_upload_several_files_and_a_zip(student_client, dataset):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("z1.png", make_image_bytes("PNG", seed=11))
        zf.writestr("z1.txt", "sks dog from zip")
    files = [
        SimpleUploadedFile("a.png", make_image_bytes("PNG", seed=1)),
        SimpleUploadedFile("b.jpg", make_image_bytes("JPEG", seed=2)),
        SimpleUploadedFile("fake.jpg", b"text pretending"),
        SimpleUploadedFile("set.zip", archive.getvalue()),
    ]
    url = reverse("datasets:dataset-upload", args=[dataset.pk])
    response = student_client.post(url, {"files": files})
    assert response["Location"] == reverse("datasets:dataset-detail", args=[dataset.pk])
    dataset.refresh_from_db()
    assert dataset.image_count == 3
    assert dataset.images.get(original_name="z1.png").caption == "sks dog from zip"
    messages = texts(response)
    assert "Added 3 image(s)." in messages
    assert any("Refused fake.jpg" in m for m in messages)


def test_upload_of_unsafe_zip_changes_nothing(student_client, dataset):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.png", make_image_bytes("PNG", seed=1))
        zf.writestr("../../evil.png", make_image_bytes("PNG", seed=2))
    url = reverse("datasets:dataset-upload", args=[dataset.pk])
    response = student_client.post(
        url, {"files": [SimpleUploadedFile("x.zip", archive.getvalue())]}
    )
    assert response.status_code == 302
    assert any("Refused x.zip" in m and "Nothing was imported" in m for m in texts(response))
    dataset.refresh_from_db()
    assert dataset.image_count == 0


def test_upload_without_files_is_an_error(student_client, dataset):
    response = student_client.post(reverse("datasets:dataset-upload", args=[dataset.pk]), {})
    assert response.status_code == 200 and not dataset.images.exists()


def test_save_all_captions(student_client, dataset):
    first, second = make_dataset_images(dataset, 2)
    url = reverse("datasets:dataset-captions", args=[dataset.pk])
    response = student_client.post(
        url, {f"caption-{first.pk}": "sks dog  sitting", f"caption-{second.pk}": "sks dog"}
    )
    assert response["Location"] == url
    assert "Saved 2 changed caption(s)." in texts(response)
    first.refresh_from_db()
    assert first.caption == "sks dog sitting"


def test_caption_bulk_tool(student_client, dataset):
    (image,) = make_dataset_images(dataset, 1, captions=["on grass"])
    url = reverse("datasets:dataset-captions", args=[dataset.pk])
    response = student_client.post(url, {"tool": "prepend_trigger"})
    assert "Changed 1 caption(s)." in texts(response)
    image.refresh_from_db()
    assert image.caption == "sks dog, on grass"


def test_replace_without_find_text_changes_nothing(student_client, dataset, image):
    url = reverse("datasets:dataset-captions", args=[dataset.pk])
    response = student_client.post(url, {"tool": "replace", "find": "", "replace": "x"})
    assert response.status_code == 200 and "Enter the text to find." in texts(response)
    image.refresh_from_db()
    assert image.caption == "sks dog on grass"


def test_caption_page_says_counts_are_approximate(student_client, dataset):
    make_dataset_images(dataset, 1, captions=["sks " + "word " * 80])
    body = student_client.get(reverse("datasets:dataset-captions", args=[dataset.pk])).content
    assert b"approximate" in body and b"over the CLIP limit of 75" in body


def test_delete_image(student_client, dataset, image):
    response = student_client.post(reverse("datasets:image-delete", args=[dataset.pk, image.pk]))
    assert response["Location"] == reverse("datasets:dataset-detail", args=[dataset.pk])
    assert not DatasetImage.objects.filter(pk=image.pk).exists()
    dataset.refresh_from_db()
    assert dataset.image_count == 0


def test_delete_image_needs_post(student_client, dataset, image):
    url = reverse("datasets:image-delete", args=[dataset.pk, image.pk])
    assert student_client.get(url).status_code == 405
    assert DatasetImage.objects.filter(pk=image.pk).exists()


def test_delete_dataset_asks_then_deletes(student_client, dataset, image):
    url = reverse("datasets:dataset-delete", args=[dataset.pk])
    assert b"cannot be undone" in student_client.get(url).content
    assert Dataset.objects.filter(pk=dataset.pk).exists()
    response = student_client.post(url)
    assert response["Location"] == reverse("datasets:dataset-list")
    assert not Dataset.objects.filter(pk=dataset.pk).exists()


def test_staff_see_every_dataset(staff_client, dataset, image):
    assert (
        staff_client.get(reverse("datasets:dataset-detail", args=[dataset.pk])).status_code == 200
    )
