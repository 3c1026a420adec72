"""Export a dataset to the sd-scripts folder layout for one training run."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from datasets.fingerprint import caption_as_trained
from datasets.models import Dataset
from lorastudio.safepath import safe_name

CAPTION_EXTENSION = ".txt"


@dataclass(frozen=True)
class ExportedSubset:
    """The values of one `[[datasets.subsets]]` table for the exported folder."""

    image_dir: str  # absolute
    num_repeats: int
    class_tokens: str
    caption_extension: str
    image_count: int
    is_reg: bool = False


def subset_folder_name(repeats: int, trigger: str, fallback: str) -> str:
    """`<repeats>_<trigger>` (sd-scripts' folder convention), the trigger made a safe name."""
    fallback_name = safe_name(fallback, fallback="dataset")
    return f"{repeats}_{safe_name(trigger, fallback=fallback_name, spaces=True)}"


def export_folder(dataset: Dataset, dest_dir: Path) -> Path:
    """The image folder `export_dataset` writes for `dataset` under `dest_dir` (pure path)."""
    name = subset_folder_name(dataset.repeats, dataset.trigger_word, dataset.name)
    return Path(dest_dir).resolve() / name


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed: copy instead
        shutil.copyfile(source, target)


def export_dataset(dataset: Dataset, dest_dir: Path, *, is_reg: bool = False) -> ExportedSubset:
    """Write `dest_dir/<repeats>_<trigger>/` with each image and its `.txt` caption.

    Images are hard-linked from storage where possible (copied otherwise) under our own
    generated names. An empty caption gets no file, so sd-scripts falls back to the class
    tokens, which are the trigger word. The folder must belong to one run alone: sd-scripts
    writes latent caches beside the images.
    """
    folder = export_folder(dataset, dest_dir)
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    # dataset_id too: the related manager reads it on every row (one query per image if
    # deferred). A plain list, not iterator(): PostgreSQL's server-side cursor costs more
    # than three short columns of even the largest allowed dataset.
    for image in dataset.images.only("pk", "dataset_id", "file", "caption"):
        source = Path(image.file.path)
        target = folder / source.name
        if target.exists():
            target.unlink()
        _link_or_copy(source, target)
        caption_path = target.with_suffix(CAPTION_EXTENSION)
        caption = caption_as_trained(image.caption)
        if caption:
            caption_path.write_text(caption + "\n", encoding="utf-8")
        elif caption_path.exists():
            caption_path.unlink()
        count += 1
    return ExportedSubset(
        image_dir=str(folder),
        num_repeats=dataset.repeats,
        class_tokens=dataset.trigger_word,
        caption_extension=CAPTION_EXTENSION,
        image_count=count,
        is_reg=is_reg,
    )
