"""Ways in: uploaded files and folders (zip archives: archives.py), checked in worker processes.

Every file is streamed into the ingest's spool first (spool.py): what is held in memory is
one chunk of a file, never a file, and the image workers get paths, not pickled bytes.
"""

from __future__ import annotations

import io
import itertools
import multiprocessing
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from datasets.images import ImageInfo, ImageRejected, inspect_or_reason
from datasets.spool import Spool, Spooled, read_limited

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
CAPTION_SUFFIXES = (".txt", ".caption")
# The most of a caption file that is read; a bigger one refuses its image.
MAX_CAPTION_BYTES = 64 * 1024
# Files in flight at once: enough to keep every worker busy, few enough to bound the spool's
# disk use.
BATCH_FILES = 16
# Below these, starting worker processes costs more than it saves.
POOL_MIN_FILES = 4
POOL_MIN_BYTES = 4 * 1024 * 1024

_SUBSET_DIR_RE = re.compile(r"^(\d+)_(.+)$")


@dataclass
class IngestReport:
    """What happened to each file offered to a dataset."""

    added: list[int] = field(default_factory=list)  # DatasetImage ids
    duplicates: list[str] = field(default_factory=list)  # names skipped as exact duplicates
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    refused_archives: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    notes: list[str] = field(default_factory=list)

    def merge(self, other: IngestReport) -> None:
        """Add another report's results to this one."""
        self.added += other.added
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.refused_archives += other.refused_archives
        self.notes += other.notes

    def messages(self) -> list[str]:
        """One human sentence per outcome, for pages and commands."""
        lines = [f"Added {len(self.added)} image(s)."]
        if self.duplicates:
            lines.append(
                f"Skipped {len(self.duplicates)} exact duplicate(s): {', '.join(self.duplicates)}."
            )
        lines += [f"Refused {name}: it {reason}." for name, reason in self.rejected]
        lines += [
            f"Refused {name}: {reason}. Nothing was imported from it."
            for name, reason in self.refused_archives
        ]
        lines += self.notes
        return lines


@dataclass(frozen=True)
class Offered:
    """One file offered for ingest: a display name, its spooled copy and an optional caption."""

    name: str
    path: Path | None = None  # the copy in the ingest's spool; None when refused unread
    size: int = 0
    caption: str | None = None
    refused: str = ""  # set when the file was refused before it was checked (e.g. too big)
    sha256: str = ""  # of the spooled copy, taken as it was written

    @classmethod
    def spooled(cls, name: str, spooled: Spooled, *, caption: str | None = None) -> Offered:
        """A file the spool holds."""
        return cls(name, spooled.path, spooled.size, caption, sha256=spooled.sha256)


class Inspector:
    """Inspects the files of an ingest in order, in `workers` processes once it is big enough,
    while the caller goes on spooling the next files and storing the checked ones.

    One process pool serves the whole ingest; use it as a context manager.
    """

    def __init__(self, *, max_pixels: int, max_bytes: int, workers: int | None = None) -> None:
        self._check = partial(inspect_or_reason, max_pixels=max_pixels, max_bytes=max_bytes)
        # Each worker decodes one image at a time: the workers bound an ingest's memory.
        self._workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Inspector:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def stream(
        self, items: Iterable[Offered], *, window: int = BATCH_FILES
    ) -> Iterator[tuple[Offered, ImageInfo | ImageRejected]]:
        """Each item with its ImageInfo, or ImageRejected with the reason, in order.

        1. Items are taken `window` at a time until a group is worth a process pool
           (POOL_MIN_FILES files and POOL_MIN_BYTES bytes); smaller groups are checked
           here, one after the other.
        2. Once the pool runs, each item goes to it as soon as it is taken (taking the next
           item spools it), and a result is handed back as soon as it is known, while the
           workers check the items after it. At most `window` items wait at once, which
           bounds the spool's disk use.
        """
        source = iter(items)
        pending: deque[tuple[Offered, Future | None]] = deque()
        while self._pool is None:
            group = list(itertools.islice(source, window))
            if not group:
                return
            if not self._worth_a_pool(group):
                for item in group:
                    yield item, self._check_here(item)
                continue
            # forkserver: never fork a web server's threads or its database connections.
            context = multiprocessing.get_context("forkserver")
            # Workers fork from a server that has Pillow imported already.
            context.set_forkserver_preload(["datasets.images"])
            self._pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=context)
            pending.extend(self._submit(item) for item in group)
        for item in source:
            while len(pending) >= window:
                yield self._result(*pending.popleft())
            pending.append(self._submit(item))
        while pending:
            yield self._result(*pending.popleft())

    def _worth_a_pool(self, group: list[Offered]) -> bool:
        todo = [item for item in group if not item.refused]
        return (
            self._workers >= 2
            and len(todo) >= POOL_MIN_FILES
            and sum(item.size for item in todo) >= POOL_MIN_BYTES
        )

    def _check_here(self, item: Offered) -> ImageInfo | ImageRejected:
        return ImageRejected(item.refused) if item.refused else self._check(item.path, item.sha256)

    def _submit(self, item: Offered) -> tuple[Offered, Future | None]:
        # Paths, not bytes: a worker reads the file itself, so nothing big is pickled.
        future = None if item.refused else self._pool.submit(self._check, item.path, item.sha256)
        return item, future

    @staticmethod
    def _result(item: Offered, future: Future | None) -> tuple[Offered, ImageInfo | ImageRejected]:
        return item, ImageRejected(item.refused) if future is None else future.result()


def _too_big(size: int, max_bytes: int) -> str:
    return f"is {size / 1e6:.1f} MB, over the {max_bytes // 10**6} MB limit"


def offered_from_files(
    files: Iterable[tuple[str, object]], spool: Spool, *, max_bytes: int
) -> Iterator[Offered]:
    """Uploaded files (name, bytes or a file object) streamed into the spool."""
    for name, content in files:
        size = getattr(content, "size", None)
        if size is not None and size > max_bytes:
            yield Offered(name, refused=_too_big(size, max_bytes))
            continue
        stream = io.BytesIO(content) if isinstance(content, bytes | bytearray) else content
        spooled = spool.write(stream, limit=max_bytes)
        if spooled is None:
            yield Offered(name, refused=f"is over the {max_bytes // 10**6} MB limit")
        else:
            yield Offered.spooled(name, spooled)


def offered_from_paths(paths: Iterable[Path], spool: Spool, *, max_bytes: int) -> Iterator[Offered]:
    """A folder's images (with their caption files) streamed into the spool.

    Copied, not read in place: what is checked is then exactly what is stored, even if
    the folder changes meanwhile.
    """
    for path in paths:
        size = path.stat().st_size
        if size > max_bytes:
            yield Offered(path.name, refused=_too_big(size, max_bytes))
            continue
        caption, problem = read_caption_file(path)
        if problem:
            yield Offered(path.name, refused=problem)
            continue
        with path.open("rb") as stream:
            spooled = spool.write(stream, limit=max_bytes)
        if spooled is None:
            yield Offered(path.name, refused=f"is over the {max_bytes // 10**6} MB limit")
        else:
            yield Offered.spooled(path.name, spooled, caption=caption)


def subset_folder_match(name: str) -> tuple[int, str] | None:
    """(repeats, class tokens) from an sd-scripts folder name like `10_sks dog`, else None."""
    match = _SUBSET_DIR_RE.match(name)
    if not match or not match.group(2).strip():
        return None
    return int(match.group(1)), match.group(2).strip()


def read_caption_file(image_path: Path) -> tuple[str | None, str]:
    """The caption beside an image (same stem, .txt or .caption): (text or None, problem)."""
    for suffix in CAPTION_SUFFIXES:
        candidate = image_path.with_suffix(suffix)
        if candidate.is_file() and not candidate.is_symlink():
            with candidate.open("rb") as stream:
                data = read_limited(stream, MAX_CAPTION_BYTES)
            if data is None:
                return None, f"has a caption file over the {MAX_CAPTION_BYTES // 1024} KB limit"
            return data.decode("utf-8", errors="replace"), ""
    return None, ""


@dataclass(frozen=True)
class FolderPlan:
    """How a folder maps onto a dataset: image files, and repeats/trigger if it had them."""

    files: tuple[Path, ...]
    repeats: int | None
    trigger: str | None
    notes: tuple[str, ...]


def plan_folder(root: Path) -> FolderPlan:
    """Read the sd-scripts layout (`10_sks dog/`) or a flat folder of images.

    With subfolders named `<repeats>_<class tokens>`, repeats and trigger come from the first
    one (in name order); subfolders without the number are skipped with a note. Links are
    never followed.
    """
    notes: list[str] = []
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    subsets = [(d, subset_folder_match(d.name)) for d in subdirs]
    repeats = trigger = None
    folders: list[Path] = []
    if any(m for _, m in subsets):
        for folder, match in subsets:
            if not match:
                notes.append(f"Skipped folder {folder.name!r}: it is not named <repeats>_<name>.")
                continue
            if repeats is None:
                repeats, trigger = match
            elif match != (repeats, trigger):
                notes.append(
                    f"Folder {folder.name!r} has other repeats or class tokens; its images join "
                    f"this dataset with {repeats} repeats and trigger “{trigger}”."
                )
            folders.append(folder)
    else:
        folders = [root]
        notes += [f"Skipped folder {d.name!r}: subfolders are not searched." for d in subdirs]
    files = []
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.is_symlink():
                notes.append(f"Skipped {path.name!r}: links are not followed.")
            elif path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                files.append(path)
    return FolderPlan(tuple(files), repeats, trigger, tuple(notes))
