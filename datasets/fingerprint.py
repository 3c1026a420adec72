"""A dataset's content hash: its images and captions as the trainer reads them, in any order.

One rule for both sides: the runner hashes the folder it exported for the trainer (what was
trained), the "run exactly again" check hashes the dataset's rows now (what would be
trained), and the two agree because export writes `caption_as_trained` beside each image
whose bytes are the stored file's. File names are not content (they are our storage names),
so renaming or reordering changes nothing; an image's bytes or a caption do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from datasets.images import ACCEPTED_FORMATS

HASH_CHUNK_BYTES = 1 << 20
IMAGE_SUFFIXES = frozenset("." + ext for ext in ACCEPTED_FORMATS.values())


@dataclass(frozen=True)
class Entry:
    """One image as trained: its bytes' hash and its caption (empty: the class tokens)."""

    sha256: str
    caption: str
    name: str = ""  # the stored (exported) file name; not part of the hash
    original_name: str = ""

    def record(self) -> dict:
        return {
            "name": self.name,
            "original_name": self.original_name,
            "sha256": self.sha256,
            "caption": self.caption,
        }


def caption_as_trained(caption: str) -> str:
    """The caption text the trainer reads: sd-scripts takes a caption file's first line.
    Export writes this; empty means no caption file (the trainer uses the class tokens)."""
    lines = caption.strip().splitlines()
    return lines[0].strip() if lines else ""


def file_sha256(path: Path) -> str:
    """A file's SHA-256, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(HASH_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def content_sha256(entries: Iterable[Entry]) -> str:
    """The order-independent hash of a set of images with their captions.

    Each image is one line "<image sha256> <caption sha256>"; the lines are sorted and the
    text hashed, so neither order nor names matter and no caption can forge a line break.
    """
    lines = sorted(
        f"{e.sha256} {hashlib.sha256(e.caption.encode('utf-8')).hexdigest()}\n" for e in entries
    )
    return hashlib.sha256("".join(lines).encode("ascii")).hexdigest()


def dataset_entries(dataset) -> list[Entry]:
    """The dataset's images as they would be trained now (from its rows)."""
    rows = dataset.images.order_by("pk").values_list("file", "original_name", "sha256", "caption")
    return [
        Entry(sha256, caption_as_trained(caption), Path(name).name, original)
        for name, original, sha256, caption in rows
    ]


def folder_entries(folder: Path, caption_extension: str) -> list[Entry]:
    """The images of an exported folder as the trainer reads them, hashed from the files."""
    entries = []
    for path in sorted(Path(folder).iterdir()):
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        caption_file = path.with_suffix(caption_extension)
        caption = ""
        if caption_file.is_file():
            caption = caption_as_trained(caption_file.read_text(encoding="utf-8"))
        entries.append(Entry(file_sha256(path), caption, path.name))
    return entries


@dataclass(frozen=True)
class Difference:
    """How one set of images differs from another (matched by image content)."""

    added: list[dict]  # in the new set only
    removed: list[dict]  # in the old set only
    captions: list[dict]  # the same image, another caption: {name, old, new}

    @property
    def same(self) -> bool:
        return not (self.added or self.removed or self.captions)

    def summary(self) -> str:
        """E.g. "2 images added, 1 caption changed (cat.png)", or "no difference"."""
        parts = []
        for items, what in ((self.added, "added"), (self.removed, "removed")):
            if items:
                parts.append(f"{_count(len(items), 'image')} {what} ({_names(items)})")
        if self.captions:
            parts.append(
                f"{_count(len(self.captions), 'caption')} changed ({_names(self.captions)})"
            )
        return ", ".join(parts) or "no difference"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _names(items: list[dict], shown: int = 3) -> str:
    names = [i.get("original_name") or i.get("name") or i["sha256"][:12] for i in items[:shown]]
    return ", ".join(names) + (f" and {len(items) - shown} more" if len(items) > shown else "")


def difference(old: Iterable[dict], new: Iterable[dict]) -> Difference:
    """Compare two file lists (Entry.record() dicts) by image content."""
    before = {f["sha256"]: f for f in old}
    after = {f["sha256"]: f for f in new}
    changed = [
        {**after[h], "old": before[h]["caption"], "new": after[h]["caption"]}
        for h in after
        if h in before and before[h]["caption"] != after[h]["caption"]
    ]
    return Difference(
        added=[f for h, f in after.items() if h not in before],
        removed=[f for h, f in before.items() if h not in after],
        captions=changed,
    )
