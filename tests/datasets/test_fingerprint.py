"""A dataset's content hash: the exported folder and the rows agree; order and names do not
matter, a caption or an image does."""

import pytest

from datasets.export import export_dataset
from datasets.fingerprint import (
    Entry,
    caption_as_trained,
    content_sha256,
    dataset_entries,
    difference,
    folder_entries,
)
from datasets.services import save_captions
from tests.factories import make_dataset_images, make_trainable_dataset

pytestmark = pytest.mark.django_db


def test_the_exported_folder_hashes_as_the_rows_do(student, tmp_path):
    dataset = make_trainable_dataset(owner=student, images=3)
    first = dataset.images.order_by("pk").first()
    save_captions(dataset, {first.pk: "sks dog,   on grass"})
    exported = export_dataset(dataset, tmp_path / "train")

    from_files = folder_entries(tmp_path / "train" / exported.image_dir.rsplit("/", 1)[1], ".txt")

    assert content_sha256(from_files) == content_sha256(dataset_entries(dataset))
    assert sorted(e.caption for e in from_files) == ["", "", "sks dog, on grass"]


def test_order_and_names_do_not_count_captions_and_images_do():
    a, b = Entry("a" * 64, "one", "x.png"), Entry("b" * 64, "", "y.png")
    assert content_sha256([a, b]) == content_sha256([b, Entry("a" * 64, "one", "renamed.png")])
    assert content_sha256([a, b]) != content_sha256([a, Entry("b" * 64, "two")])
    assert content_sha256([a, b]) != content_sha256([a])
    # A caption cannot forge another image's line.
    forged = Entry("a" * 64, "one\n" + "b" * 64)
    assert content_sha256([forged]) != content_sha256([a, b])


def test_the_trainer_reads_a_captions_first_line():
    assert caption_as_trained("  first line \nsecond") == "first line"
    assert caption_as_trained(" \n ") == ""


def test_difference_names_added_removed_and_recaptioned_images(student):
    dataset = make_trainable_dataset(owner=student, images=2)
    before = [e.record() for e in dataset_entries(dataset)]
    image = dataset.images.order_by("pk").first()
    save_captions(dataset, {image.pk: "new words"})
    make_dataset_images(dataset, 3)  # img0, img1 are duplicates of the first two: one new
    dataset.images.order_by("pk")[1].delete()
    after = [e.record() for e in dataset_entries(dataset)]

    diff = difference(before, after)

    assert [c["new"] for c in diff.captions] == ["new words"]
    assert [f["original_name"] for f in diff.added] == ["img2.png"]
    assert [f["original_name"] for f in diff.removed] == ["img1.png"]
    assert diff.summary() == (
        "1 image added (img2.png), 1 image removed (img1.png), 1 caption changed (img0.png)"
    )
    assert difference(after, after).summary() == "no difference"
