"""Dataset services: ingest, zip and folder import, captions, lint, delete and export."""

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from datasets import services
from datasets.export import export_dataset
from datasets.models import Dataset, DatasetImage
from tests.factories import make_dataset, make_dataset_images, make_image_bytes


def zip_bytes(entries):
    """A zip archive from (name or ZipInfo, bytes) pairs."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return out.getvalue()


def symlink_entry(name, target):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def test_create_dataset_validates_and_refuses_duplicate_names(student):
    dataset = services.create_dataset(student, name=" Dogs ", trigger_word="sks dog", repeats=5)
    assert (dataset.name, dataset.repeats, dataset.visibility) == ("Dogs", 5, "private")
    with pytest.raises(ValidationError):
        services.create_dataset(student, name="Dogs")
    with pytest.raises(ValidationError):
        services.create_dataset(student, name="Other", repeats=0)
    assert Dataset.objects.filter(owner=student).count() == 1


def test_add_images_stores_files_under_our_names_and_skips_duplicates(student):
    dataset = make_dataset(owner=student)
    png = make_image_bytes("PNG", (120, 80), seed=1)
    report = services.add_images(
        dataset,
        [
            ("../../etc/passwd.png", png),
            ("again.png", png),
            ("photo.jpg", make_image_bytes("JPEG", (90, 60), seed=2)),
            ("notes.jpg", b"just some text"),
        ],
    )
    assert len(report.added) == 2
    assert report.duplicates == ["again.png"]
    assert report.rejected[0][0] == "notes.jpg" and "not an image" in report.rejected[0][1]
    dataset.refresh_from_db()
    assert dataset.image_count == 2
    first = DatasetImage.objects.get(pk=report.added[0])
    assert first.original_name == "passwd.png"
    assert "passwd" not in first.file.name and first.file.name.endswith(".png")
    assert Path(first.file.path).read_bytes() == png
    assert Path(first.thumbnail.path).is_file()
    assert (first.width, first.height, first.format) == (120, 80, "PNG")
    again = services.add_images(dataset, [("later.png", png)])
    assert again.added == [] and again.duplicates == ["later.png"]


def test_image_limit_per_dataset(student, settings):
    settings.LORASTUDIO_MAX_IMAGES_PER_DATASET = 2
    dataset = make_dataset(owner=student)
    files = [(f"{i}.png", make_image_bytes("PNG", seed=i + 1)) for i in range(3)]
    report = services.add_images(dataset, files)
    assert len(report.added) == 2 and "limit of 2 images" in report.rejected[0][1]


def test_upload_over_size_limit_is_refused_unread(student, settings):
    settings.LORASTUDIO_MAX_UPLOAD_MB = 1
    dataset = make_dataset(owner=student)
    report = services.add_images(dataset, [("big.bmp", make_image_bytes("BMP", (700, 700)))])
    assert report.added == [] and "MB limit" in report.rejected[0][1]


def test_zip_import_reads_captions_and_reports_bad_entries(student):
    dataset = make_dataset(owner=student)
    data = zip_bytes(
        [
            ("set/a.png", make_image_bytes("PNG", seed=1)),
            ("set/a.txt", "sks dog, sitting\n"),
            ("set/b.webp", make_image_bytes("WEBP", seed=2)),
            ("set/b.caption", "sks dog running"),
            ("set/broken.jpg", b"\xff\xd8\xff\xe0 broken"),
            ("readme.md", "hello"),
        ]
    )
    report = services.import_zip(dataset, io.BytesIO(data))
    assert len(report.added) == 2
    names = sorted(name for name, _ in report.rejected)
    assert names == ["broken.jpg", "readme.md"]
    captions = dict(dataset.images.values_list("original_name", "caption"))
    assert captions == {"a.png": "sks dog, sitting", "b.webp": "sks dog running"}


@pytest.mark.parametrize(
    ("bad_entry", "reason"),
    [
        (("../evil.png", make_image_bytes("PNG", seed=9)), r"outside the archive"),
        (("/tmp/evil.png", make_image_bytes("PNG", seed=9)), r"absolute path"),
        (symlink_entry("link.png", "/etc/passwd"), r"link or a device"),
        (("bomb.png", b"\0" * 5_000_000), r"zip bomb"),
    ],
    ids=["dotdot", "absolute", "symlink", "ratio"],
)
def test_unsafe_zip_is_refused_and_changes_nothing(student, bad_entry, reason):
    dataset = make_dataset(owner=student)
    good = ("good.png", make_image_bytes("PNG", seed=1))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(*good)
        archive.writestr(*bad_entry)
    with pytest.raises(services.ArchiveRefused, match=reason):
        services.import_zip(dataset, io.BytesIO(out.getvalue()))
    dataset.refresh_from_db()
    assert dataset.image_count == 0 and not dataset.images.exists()


def test_not_a_zip_is_refused(student):
    dataset = make_dataset(owner=student)
    with pytest.raises(services.ArchiveRefused, match="not a readable zip"):
        services.import_zip(dataset, io.BytesIO(b"PK nope"))


def write_sd_scripts_folder(root: Path) -> Path:
    subset = root / "10_sks dog"
    subset.mkdir(parents=True)
    (subset / "one.png").write_bytes(make_image_bytes("PNG", seed=1))
    (subset / "one.txt").write_text("sks dog on a sofa", encoding="utf-8")
    (subset / "two.jpg").write_bytes(make_image_bytes("JPEG", seed=2))
    (root / "notes").mkdir()
    (root / "notes" / "three.png").write_bytes(make_image_bytes("PNG", seed=3))
    return root


def test_import_folder_in_sd_scripts_layout(student, tmp_path):
    root = write_sd_scripts_folder(tmp_path / "dogs")
    dataset, report = services.import_folder(root, name="Dogs", owner=student)
    assert (dataset.repeats, dataset.trigger_word, dataset.image_count) == (10, "sks dog", 2)
    assert any("notes" in note and "Skipped" in note for note in report.notes)
    captions = dict(dataset.images.values_list("original_name", "caption"))
    assert captions == {"one.png": "sks dog on a sofa", "two.jpg": ""}


def test_import_flat_folder_with_explicit_repeats_and_trigger(student, tmp_path):
    (tmp_path / "a.bmp").write_bytes(make_image_bytes("BMP", seed=1))
    (tmp_path / "a.caption").write_text("ohwx cat", encoding="utf-8")
    (tmp_path / "b.png").write_bytes(b"not really")
    dataset, report = services.import_folder(
        tmp_path, name="Cats", owner=student, repeats=3, trigger="ohwx cat"
    )
    assert (dataset.repeats, dataset.trigger_word, dataset.image_count) == (3, "ohwx cat", 1)
    assert report.rejected[0][0] == "b.png"


def test_import_zip_path_in_sd_scripts_layout(student, tmp_path):
    root = write_sd_scripts_folder(tmp_path / "dogs")
    archive = tmp_path / "dogs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(tmp_path).as_posix())
    dataset, report = services.import_folder(archive, name="Zipped", owner=student)
    assert (dataset.repeats, dataset.trigger_word, dataset.image_count) == (10, "sks dog", 2)
    assert any("notes" in note for note in report.notes)


def test_import_of_refused_zip_creates_no_dataset(student, tmp_path):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(zip_bytes([("../x.png", make_image_bytes("PNG"))]))
    with pytest.raises(services.ArchiveRefused):
        services.import_folder(archive, name="Evil", owner=student)
    assert not Dataset.objects.filter(name="Evil").exists()


def test_import_missing_path_is_refused(student, tmp_path):
    with pytest.raises(services.IngestError, match="neither a folder"):
        services.import_folder(tmp_path / "nope", name="X", owner=student)
    assert not Dataset.objects.exists()


def test_save_captions_only_touches_this_dataset(student, other_student):
    dataset = make_dataset(owner=student)
    other = make_dataset(owner=other_student)
    mine = make_dataset_images(dataset, 2)
    theirs = make_dataset_images(other, 1)
    changed = services.save_captions(
        dataset, {mine[0].pk: " sks dog\nsitting ", mine[1].pk: "", theirs[0].pk: "hacked"}
    )
    assert changed == 1
    mine[0].refresh_from_db()
    theirs[0].refresh_from_db()
    assert mine[0].caption == "sks dog sitting" and theirs[0].caption == ""


def test_caption_tool_prepends_the_datasets_trigger(student):
    dataset = make_dataset(owner=student, trigger_word="sks dog")
    images = make_dataset_images(dataset, 2, captions=["on grass", "sks dog asleep"])
    assert services.apply_caption_tool(dataset, "prepend_trigger") == 1
    images[0].refresh_from_db()
    assert images[0].caption == "sks dog, on grass"


def test_lint_dataset_reports_from_the_database(student):
    dataset = make_dataset(owner=student, trigger_word="sks")
    assert services.lint_dataset(dataset).blocking
    make_dataset_images(dataset, 2, size=(64, 48), captions=["sks dog", ""])
    report = services.lint_dataset(dataset, resolution=512)
    assert not report.blocking and report.image_count == 2
    assert {"few_images", "empty_captions", "tiny_images"} <= {f.code for f in report.findings}


def test_delete_image_and_dataset_remove_files(student, django_capture_on_commit_callbacks):
    dataset = make_dataset(owner=student)
    first, second = make_dataset_images(dataset, 2)
    path = Path(first.file.path)
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_image(first)
    dataset.refresh_from_db()
    assert dataset.image_count == 1 and not path.exists()
    folder = Path(second.file.path).parent.parent
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_dataset(dataset)
    assert not Dataset.objects.filter(pk=dataset.pk).exists() and not folder.exists()


def test_export_round_trip(student, tmp_path):
    dataset = make_dataset(owner=student, trigger_word="sks dog", repeats=7)
    images = make_dataset_images(dataset, 3, captions=["sks dog sitting", "", "sks dog"])
    subset = export_dataset(dataset, tmp_path / "run1")
    folder = Path(subset.image_dir)
    assert folder == (tmp_path / "run1" / "7_sks dog").resolve()
    assert (subset.num_repeats, subset.class_tokens, subset.caption_extension) == (
        7,
        "sks dog",
        ".txt",
    )
    assert subset.image_count == 3
    first = folder / Path(images[0].file.name).name
    assert os.path.samefile(first, images[0].file.path)  # a hard link, not a copy
    assert first.with_suffix(".txt").read_text(encoding="utf-8") == "sks dog sitting\n"
    assert not (folder / Path(images[1].file.name).name).with_suffix(".txt").exists()
    # Importing the export gives the same dataset back.
    again, _ = services.import_folder(tmp_path / "run1", name="Again", owner=student)
    assert (again.repeats, again.trigger_word, again.image_count) == (7, "sks dog", 3)
    assert sorted(again.images.values_list("sha256", "caption")) == sorted(
        dataset.images.values_list("sha256", "caption")
    )


def test_export_with_unsafe_trigger_uses_a_safe_folder_name(student, tmp_path):
    dataset = make_dataset(owner=student, trigger_word="", name="My/Set", repeats=2)
    subset = export_dataset(dataset, tmp_path)
    assert Path(subset.image_dir).parent == tmp_path.resolve()
    assert Path(subset.image_dir).name == "2_My_Set"


@pytest.mark.slow
def test_large_batches_are_inspected_in_worker_processes_in_order(student, monkeypatch):
    from datasets import ingest

    monkeypatch.setattr(ingest, "POOL_MIN_BYTES", 0)
    dataset = make_dataset(owner=student)
    files = [(f"{i}.jpg", make_image_bytes("JPEG", (300, 200), seed=i + 1)) for i in range(5)]
    files.insert(2, ("bad.png", b"not an image"))
    report = services.add_images(dataset, files)
    assert [name for name, _ in report.rejected] == ["bad.png"]
    stored = list(dataset.images.order_by("pk").values_list("original_name", "width"))
    assert stored == [(f"{i}.jpg", 300) for i in range(5)]


@pytest.mark.slow
def test_files_are_checked_while_the_next_are_spooled_and_the_spool_stays_bounded(
    tmp_path, monkeypatch
):
    from datasets import ingest
    from datasets.ingest import Inspector, Offered
    from datasets.spool import Spool

    monkeypatch.setattr(ingest, "POOL_MIN_BYTES", 0)
    images = [make_image_bytes("JPEG", (300, 200), seed=i + 1) for i in range(9)]
    images[4] = b"not an image"
    seen = []
    limits = {"max_pixels": 10**6, "max_bytes": 10**6, "workers": 2}
    with Spool(tmp_path) as spool, Inspector(**limits) as inspector:

        def offered():
            for i, data in enumerate(images):
                seen.append(len(list(spool.root.iterdir())))  # files waiting in the spool
                yield Offered.spooled(f"{i}.jpg", spool.write(io.BytesIO(data), limit=10**6))

        results = []
        for item, result in inspector.stream(offered(), window=4):
            results.append((item.name, getattr(result, "width", None)))
            Spool.discard(item.path)
    assert results == [(f"{i}.jpg", None if i == 4 else 300) for i in range(9)]
    assert inspector._pool is not None  # the workers checked them
    assert max(seen) <= 4


def test_a_stored_images_hash_is_its_files_own(student, tmp_path):
    import hashlib

    dataset = make_dataset(owner=student)
    services.add_images(dataset, [("a.png", make_image_bytes("PNG", seed=1))])
    archive = tmp_path / "b.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("b.jpg", make_image_bytes("JPEG", seed=2))
    services.import_zip(dataset, archive)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "c.webp").write_bytes(make_image_bytes("WEBP", seed=3))
    other, _ = services.import_folder(folder, name="c", owner=student)
    stored = [*dataset.images.all(), *other.images.all()]
    assert len(stored) == 3
    for image in stored:
        with image.file.open("rb") as f:
            assert image.sha256 == hashlib.sha256(f.read()).hexdigest()


def test_deleting_an_image_someone_deleted_a_moment_ago_changes_nothing(student):
    dataset = make_dataset(owner=student)
    first, second = make_dataset_images(dataset, 2)
    again = DatasetImage.objects.get(pk=first.pk)  # what a second request loaded meanwhile
    services.delete_image(first)
    services.delete_image(again)
    dataset.refresh_from_db()
    assert dataset.image_count == 1
    assert list(dataset.images.all()) == [second]
