"""Uploads into one dataset at the same time: duplicates and the image cap still hold.

Real threads, each with its own client and database connection, through the upload page.
SQLite runs one writer at a time (the others wait on its lock); PostgreSQL runs them at once.
"""

import threading

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.test import Client
from django.urls import reverse

from tests.factories import make_dataset, make_dataset_images, make_image_bytes

pytestmark = pytest.mark.django_db(transaction=True)

UPLOADS = 6


def texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def upload_at_once(user, dataset, file_sets):
    """POST each list of (name, bytes) from its own thread, all released together."""
    url = reverse("datasets:dataset-upload", args=[dataset.pk])
    clients = []
    for _ in file_sets:
        client = Client()
        client.force_login(user)
        clients.append(client)
    start = threading.Barrier(len(file_sets))
    results: list = [None] * len(file_sets)

    def upload(index, files):
        try:
            uploads = [SimpleUploadedFile(name, data) for name, data in files]
            start.wait()
            results[index] = clients[index].post(url, {"files": uploads})
        except Exception as exc:  # a 500 raises out of the test client: keep it to report it
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=upload, args=item) for item in enumerate(file_sets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failures = [r for r in results if isinstance(r, Exception) or r.status_code != 302]
    assert not failures, failures
    return results


def test_parallel_uploads_of_one_image_store_it_once_and_report_the_others(student):
    dataset = make_dataset(owner=student)
    same = make_image_bytes("PNG", seed=100)
    file_sets = [
        [("same.png", same), (f"own{i}.png", make_image_bytes("PNG", seed=i + 1))]
        for i in range(UPLOADS)
    ]
    results = upload_at_once(student, dataset, file_sets)
    names = sorted(dataset.images.values_list("original_name", flat=True))
    assert names == sorted(["same.png"] + [f"own{i}.png" for i in range(UPLOADS)])
    duplicate = "Skipped 1 exact duplicate(s): same.png."
    assert sum(duplicate in texts(r) for r in results) == UPLOADS - 1
    dataset.refresh_from_db()
    assert dataset.image_count == UPLOADS + 1


def test_parallel_uploads_never_pass_the_image_limit(student, settings):
    settings.LORASTUDIO_MAX_IMAGES_PER_DATASET = 6
    dataset = make_dataset(owner=student)
    make_dataset_images(dataset, 4)  # the limit minus two
    file_sets = [
        [(f"u{i}-{j}.png", make_image_bytes("PNG", seed=100 + 2 * i + j)) for j in range(2)]
        for i in range(UPLOADS)
    ]
    results = upload_at_once(student, dataset, file_sets)
    assert dataset.images.count() == 6
    dataset.refresh_from_db()
    assert dataset.image_count == 6
    refusals = [m for r in results for m in texts(r) if "limit of 6 images per dataset" in m]
    assert len(refusals) == 2 * UPLOADS - 2
