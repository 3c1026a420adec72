"""Dataset admin: pages render for staff without N+1 queries."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import make_dataset, make_dataset_images, make_user


def test_changelist_and_change_page(staff_client, student):
    dataset = make_dataset(owner=student)
    images = make_dataset_images(dataset, 2)
    assert staff_client.get(reverse("admin:datasets_dataset_changelist")).status_code == 200
    change = staff_client.get(reverse("admin:datasets_dataset_change", args=[dataset.pk]))
    assert change.status_code == 200
    thumb_url = reverse("datasets:image-thumb", args=[dataset.pk, images[0].pk])
    assert thumb_url in change.content.decode()
    assert staff_client.get(reverse("admin:datasets_datasetimage_changelist")).status_code == 200
    image_url = reverse("admin:datasets_datasetimage_change", args=[images[0].pk])
    assert staff_client.get(image_url).status_code == 200
    history = reverse("admin:datasets_dataset_history", args=[dataset.pk])
    assert staff_client.get(history).status_code == 200


def test_changelist_queries_do_not_grow_with_rows(
    staff_client, student, django_assert_max_num_queries
):
    for _ in range(3):
        make_dataset_images(make_dataset(owner=student), 1)
    url = reverse("admin:datasets_datasetimage_changelist")
    staff_client.get(url)
    with django_assert_max_num_queries(12):
        staff_client.get(url)
    for _ in range(10):
        make_dataset_images(make_dataset(owner=student), 1)
    with django_assert_max_num_queries(12):
        assert staff_client.get(url).status_code == 200
    with django_assert_max_num_queries(12):
        assert staff_client.get(reverse("admin:datasets_dataset_changelist")).status_code == 200


def query_count(client, url):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200, url
    return len(queries)


def test_dataset_page_and_lists_do_not_grow_queries_with_images_or_datasets(staff_client, student):
    dataset = make_dataset(owner=student)
    make_dataset_images(dataset, 1)
    urls = [
        reverse("admin:datasets_dataset_changelist"),
        reverse("admin:datasets_datasetimage_changelist"),
        reverse("admin:datasets_dataset_change", args=[dataset.pk]),
    ]
    few = [query_count(staff_client, url) for url in urls]
    make_dataset_images(dataset, 4)
    for _ in range(4):
        make_dataset_images(make_dataset(owner=make_user()), 1)
    assert [query_count(staff_client, url) for url in urls] == few
