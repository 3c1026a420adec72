"""Image services: add images (uploads, zip archives, folders) and delete them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from datasets.archives import ArchiveRefused, open_zip, read_zip
from datasets.captions import CaptionTooLong, clean_caption
from datasets.images import ImageInfo, ImageRejected
from datasets.ingest import (
    IngestReport,
    Inspector,
    Offered,
    offered_from_files,
    offered_from_paths,
    plan_folder,
    subset_folder_match,
)
from datasets.models import Dataset, DatasetImage
from datasets.services.datasets import create_dataset
from datasets.spool import Spool


class IngestError(Exception):
    """A whole import is refused (bad path, refused archive); nothing was changed."""


def _max_bytes() -> int:
    return settings.LORASTUDIO_MAX_UPLOAD_MB * 10**6


def _limits() -> dict[str, int]:
    return {
        "max_pixels": settings.LORASTUDIO_MAX_IMAGE_PIXELS,
        "max_bytes": _max_bytes(),
        "workers": settings.LORASTUDIO_INGEST_WORKERS,
    }


def _display_name(name: str) -> str:
    """The last component of an offered name, for display only (never used as a path).

    Printable characters only, as Django keeps of an upload's name: an archive's entry
    names are the archive maker's text, and PostgreSQL refuses NUL.
    """
    last = PurePosixPath(name.replace("\\", "/")).name
    return "".join(char for char in last if char.isprintable())[:255] or "unnamed"


class _SpooledFile(File):
    """A spooled file that storage may move into place instead of copying it."""

    def temporary_file_path(self) -> str:
        return self.name


def _spool() -> Spool:
    # Beside Django's own temporary upload files.
    return Spool(settings.FILE_UPLOAD_TEMP_DIR)


def _store(
    dataset: Dataset, name: str, item: Offered, info: ImageInfo, caption: str, written: list[str]
) -> DatasetImage:
    """Move a checked file (and its thumbnail) into storage and insert its row."""
    stem = uuid.uuid4().hex
    image = DatasetImage(
        dataset=dataset,
        original_name=name,
        width=info.width,
        height=info.height,
        format=info.format,
        size_bytes=info.size_bytes,
        sha256=info.sha256,
        phash=info.phash,
        caption=caption,
    )
    with item.path.open("rb") as stream:
        image.file.save(f"{stem}.{info.extension}", _SpooledFile(stream), False)
    written.append(image.file.name)
    image.thumbnail.save(f"{stem}.jpg", ContentFile(info.thumbnail), False)
    written.append(image.thumbnail.name)
    image.save()
    return image


def _ingest(
    dataset: Dataset, offered: Iterable[Offered], report: IngestReport | None = None
) -> IngestReport:
    """Inspect, de-duplicate, cap and store files in one transaction; on error store nothing.

    The dataset's row is locked before its images are counted and their hashes read, so
    uploads into one dataset at once take turns here: each one sees what the others added
    (the duplicate check and the image limit hold), on PostgreSQL as on SQLite.
    """
    report = report if report is not None else IngestReport()
    max_images = settings.LORASTUDIO_MAX_IMAGES_PER_DATASET
    max_chars = settings.LORASTUDIO_MAX_CAPTION_CHARS
    written: list[str] = []
    try:
        with transaction.atomic(), Inspector(**_limits()) as inspector:
            Dataset.objects.select_for_update().only("pk").get(pk=dataset.pk)
            images = DatasetImage.objects.filter(dataset_id=dataset.pk)
            known = set(images.values_list("sha256", flat=True))
            count = len(known)
            # Files are checked while the next ones are spooled and the checked ones stored.
            for item, result in inspector.stream(offered):
                try:
                    name = _display_name(item.name)
                    if isinstance(result, ImageRejected):
                        report.rejected.append((name, str(result)))
                        continue
                    try:
                        caption = clean_caption(item.caption or "", max_chars=max_chars)
                    except CaptionTooLong as exc:
                        report.rejected.append((name, f"has a caption of {exc}"))
                        continue
                    if result.sha256 in known:
                        report.duplicates.append(name)
                    elif count >= max_images:
                        limit = f"would pass the limit of {max_images} images per dataset"
                        report.rejected.append((name, limit))
                    else:
                        image = _store(dataset, name, item, result, caption, written)
                        known.add(result.sha256)
                        report.added.append(image.pk)
                        count += 1
                finally:
                    # A file leaves the spool once handled: the spool's disk use stays bounded.
                    Spool.discard(item.path)
            Dataset.objects.filter(pk=dataset.pk).update(
                image_count=count, updated_at=timezone.now()
            )
    except BaseException:
        storage = DatasetImage.file.field.storage
        for stored in written:
            storage.delete(stored)
        raise
    dataset.image_count = count
    return report


def add_images(dataset: Dataset, files: list[tuple[str, object]]) -> IngestReport:
    """Add uploaded files (name, bytes or file object); bad files are reported, not stored."""
    with _spool() as spool:
        return _ingest(dataset, offered_from_files(files, spool, max_bytes=_max_bytes()))


def _zip_entries(source, spool: Spool) -> Iterator[Offered]:
    """read_zip with the settings' limits, after refusing an archive too big to unpack."""
    max_zip = settings.LORASTUDIO_MAX_ZIP_MB * 10**6
    size = getattr(source, "size", None)
    if size is None and isinstance(source, str | Path):
        size = Path(source).stat().st_size
    if size is not None and size > max_zip:
        raise ArchiveRefused(f"the archive is over the {max_zip // 10**6} MB limit")
    yield from read_zip(source, spool, max_total_bytes=max_zip, max_entry_bytes=_max_bytes())


def import_zip(dataset: Dataset, path_or_file, *, only_subsets: bool = False) -> IngestReport:
    """Add the images (and .txt/.caption captions) of a zip archive.

    Raises ArchiveRefused, changing nothing, when the archive is unsafe or too large; a
    partly bad archive imports its good images and reports each bad one.
    """
    report = IngestReport()
    with _spool() as spool:
        entries = _zip_entries(path_or_file, spool)
        if only_subsets:
            entries = _only_subset_entries(entries, report)
        return _ingest(dataset, entries, report)


def upload_files(dataset: Dataset, uploads: list[tuple[str, object]]) -> IngestReport:
    """Add one request's files, images and .zip archives alike, in one transaction.

    Every file and archive entry ends in the report: added, duplicate or refused with the
    reason; a refused archive (unsafe, unreadable, too big) is reported whole and imports
    nothing. Anything unexpected stores nothing at all, so a request never commits half.
    """
    report = IngestReport()
    with _spool() as spool:
        return _ingest(dataset, _offered_from_uploads(uploads, spool, report), report)


def _offered_from_uploads(
    uploads: list[tuple[str, object]], spool: Spool, report: IngestReport
) -> Iterator[Offered]:
    for name, content in uploads:
        if not name.lower().endswith(".zip"):
            yield from offered_from_files([(name, content)], spool, max_bytes=_max_bytes())
            continue
        try:
            # read_zip refuses an archive before its first entry or never: what it yielded
            # before a refusal is nothing.
            yield from _zip_entries(content, spool)
        except ArchiveRefused as exc:
            report.refused_archives.append((_display_name(name), str(exc)))


def _only_subset_entries(entries: Iterable[Offered], report: IngestReport) -> Iterator[Offered]:
    skipped: set[str] = set()
    for entry in entries:
        parent = PurePosixPath(entry.name).parent.name
        if subset_folder_match(parent):
            yield entry
        elif parent not in skipped:
            skipped.add(parent)
            report.notes.append(
                f"Skipped folder {parent or '(top level)'!r}: it is not named <repeats>_<name>."
            )


def _zip_layout(path: Path) -> tuple[int | None, str | None]:
    """Repeats and class tokens from the first `<repeats>_<tokens>/` folder in an archive."""
    with open_zip(path) as archive:
        names = sorted(archive.namelist())
    for name in names:
        for part in PurePosixPath(name).parent.parts:
            match = subset_folder_match(part)
            if match:
                return match
    return None, None


@transaction.atomic
def import_folder(
    path: Path | str,
    *,
    name: str,
    owner,
    repeats: int | None = None,
    trigger: str | None = None,
) -> tuple[Dataset, IngestReport]:
    """Create a dataset from a folder or a .zip in flat or sd-scripts (`10_sks dog/`) layout.

    Explicit `repeats`/`trigger` win over those in folder names. Raises IngestError (or
    ArchiveRefused, or ValidationError for bad dataset values) and creates nothing.
    """
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        found_repeats, found_trigger = _zip_layout(path)
        dataset = create_dataset(
            owner,
            name=name,
            repeats=repeats or found_repeats or 10,
            trigger_word=trigger if trigger is not None else (found_trigger or ""),
        )
        report = import_zip(dataset, path, only_subsets=found_repeats is not None)
        return dataset, report
    if not path.is_dir():
        raise IngestError(f"{path} is neither a folder nor a .zip archive")
    plan = plan_folder(path)
    dataset = create_dataset(
        owner,
        name=name,
        repeats=repeats or plan.repeats or 10,
        trigger_word=trigger if trigger is not None else (plan.trigger or ""),
    )
    report = IngestReport(notes=list(plan.notes))
    with _spool() as spool:
        _ingest(dataset, offered_from_paths(plan.files, spool, max_bytes=_max_bytes()), report)
    return dataset, report


@transaction.atomic
def delete_image(image: DatasetImage) -> None:
    """Delete one image, its files and its caption."""
    dataset_id = image.dataset_id
    names = [image.file.name, image.thumbnail.name]
    # Takes its turn with uploads into the dataset (see _ingest), so image_count stays true.
    Dataset.objects.select_for_update().only("pk").get(pk=dataset_id)
    deleted, _ = DatasetImage.objects.filter(pk=image.pk).delete()
    if not deleted:
        return  # someone else deleted it a moment ago
    Dataset.objects.filter(pk=dataset_id).update(
        image_count=F("image_count") - 1, updated_at=timezone.now()
    )
    storage = DatasetImage.file.field.storage

    def remove_files() -> None:
        for name in names:
            if name:
                storage.delete(name)

    transaction.on_commit(remove_files)
