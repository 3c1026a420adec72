"""Dataset services: create, change, delete and check a dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction

from datasets.lint import ImageFacts, LintReport, lint_images
from datasets.models import Dataset


@transaction.atomic
def create_dataset(
    owner,
    *,
    name: str,
    description: str = "",
    trigger_word: str = "",
    repeats: int = 10,
    caption_extension: str = ".txt",
    visibility: str = "private",
) -> Dataset:
    """Create an empty dataset; raises ValidationError on bad values or a duplicate name."""
    dataset = Dataset(
        owner=owner,
        name=name.strip(),
        description=description,
        trigger_word=trigger_word.strip(),
        repeats=repeats,
        caption_extension=caption_extension,
        visibility=visibility,
    )
    dataset.full_clean()
    dataset.save()
    return dataset


@transaction.atomic
def update_dataset(
    dataset: Dataset,
    *,
    name: str,
    description: str,
    trigger_word: str,
    repeats: int,
    visibility: str,
) -> Dataset:
    """Change a dataset's settings; raises ValidationError and changes nothing on bad values."""
    dataset.name = name.strip()
    dataset.description = description
    dataset.trigger_word = trigger_word.strip()
    dataset.repeats = repeats
    dataset.visibility = visibility
    dataset.full_clean()
    dataset.save()
    return dataset


@transaction.atomic
def delete_dataset(dataset: Dataset) -> None:
    """Delete a dataset with all of its images and files."""
    folder = Path(settings.MEDIA_ROOT) / "datasets" / str(dataset.pk)
    dataset.delete()
    transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))


def lint_dataset(
    dataset: Dataset, *, resolution: int = 1024, trigger_word: str | None = None
) -> LintReport:
    """Pre-flight report of a dataset for a training resolution (plain data); a run that
    trains with its own `trigger_word` is checked against that one."""
    rows = dataset.images.values_list("pk", "original_name", "width", "height", "caption", "phash")
    facts = [ImageFacts(*row) for row in rows]
    trigger = dataset.trigger_word if trigger_word is None else trigger_word
    return lint_images(facts, trigger_word=trigger, resolution=resolution)
