"""Zip archives: check the whole archive, then stream its images (and captions) one by one.

No archive name is ever used as a path: entries are streamed into the ingest's spool under
names of its own. A whole archive is refused (ArchiveRefused) only before anything is taken
from it; an entry that cannot be read is refused alone, and the rest are imported.
"""

from __future__ import annotations

import lzma
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import PurePosixPath

from datasets.ingest import CAPTION_SUFFIXES, MAX_CAPTION_BYTES, Offered
from datasets.spool import Spool, Spooled, read_limited

MAX_ZIP_ENTRIES = 20_000
MAX_COMPRESSION_RATIO = 200  # real images barely compress; more than this is a zip bomb
_ENCRYPTED = 0x1  # general purpose flag bit 0
_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}

# What zipfile raises for a damaged or hostile archive: BadZipFile (bad CRC, a local header
# that disagrees with the central directory, overlapping entries, bad magic), RuntimeError
# (encrypted) and its NotImplementedError (unknown compression method), zlib.error,
# lzma.LZMAError and OSError (corrupt deflate, LZMA or bzip2 data), EOFError (truncated),
# ValueError (e.g. UnicodeDecodeError: a name flagged UTF-8 that is not).
ZIP_ERRORS = (
    zipfile.BadZipFile,
    RuntimeError,
    zlib.error,
    lzma.LZMAError,
    OSError,
    EOFError,
    ValueError,
)


class ArchiveRefused(Exception):
    """The whole archive is refused; nothing was imported."""


def open_zip(source) -> zipfile.ZipFile:
    """The archive at a path or in a file object; ArchiveRefused when it cannot be read."""
    try:
        return zipfile.ZipFile(source)
    except ZIP_ERRORS as exc:
        raise ArchiveRefused(f"not a readable zip archive ({exc})") from None


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a zip entry makes the archive unsafe, or None."""
    name = info.filename
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return f"entry {name!r} has an absolute path"
    parts = re.split(r"[\\/]", name)
    if ".." in parts:
        return f"entry {name!r} points outside the archive (..)"
    # Unix file type bits; archives made elsewhere (or by writestr) leave them at 0.
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if file_type and file_type not in (stat.S_IFREG, stat.S_IFDIR):
        return f"entry {name!r} is a link or a device file"
    if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO:
        return f"entry {name!r} expands {info.file_size // info.compress_size}× (a zip bomb)"
    return None


def _unreadable(info: zipfile.ZipInfo, exc: BaseException | None = None) -> str:
    """Why an entry could not be read, for the student."""
    if info.flag_bits & _ENCRYPTED:
        detail = "it is encrypted"
    elif info.compress_type not in _METHODS:
        detail = f"compression method {info.compress_type} is not supported"
    else:
        detail = str(exc) or type(exc).__name__
    return f"could not be read from the archive ({detail})"


def _read_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, spool: Spool, limit: int
) -> tuple[Spooled | None, str]:
    """Stream one entry into the spool: (Spooled, or None when over `limit`; problem)."""
    if info.flag_bits & _ENCRYPTED or info.compress_type not in _METHODS:
        return None, _unreadable(info)
    try:
        # The CRC is checked as the last piece is read: a bad one raises here.
        with archive.open(info) as stream:
            return spool.write(stream, limit=limit), ""
    except ZIP_ERRORS as exc:
        return None, _unreadable(info, exc)


def _caption(
    archive: zipfile.ZipFile, files: dict[str, zipfile.ZipInfo], image: PurePosixPath
) -> tuple[str | None, str]:
    """The caption entry beside an image (same stem, .txt or .caption): (text, problem)."""
    for suffix in CAPTION_SUFFIXES:
        info = files.get(str(image.with_suffix(suffix)))
        if info is None:
            continue
        limit_kb = MAX_CAPTION_BYTES // 1024
        if info.file_size > MAX_CAPTION_BYTES:
            return None, f"has a caption file over the {limit_kb} KB limit"
        if info.flag_bits & _ENCRYPTED or info.compress_type not in _METHODS:
            return None, f"has a caption file that {_unreadable(info)}"
        try:
            with archive.open(info) as stream:
                data = read_limited(stream, MAX_CAPTION_BYTES)
        except ZIP_ERRORS as exc:
            return None, f"has a caption file that {_unreadable(info, exc)}"
        if data is None:
            return None, f"has a caption file over the {limit_kb} KB limit"
        return data.decode("utf-8", errors="replace"), ""
    return None, ""


def read_zip(
    source, spool: Spool, *, max_total_bytes: int, max_entry_bytes: int
) -> Iterator[Offered]:
    """Check a whole archive first, then stream its images (with captions) one by one.

    Raises ArchiveRefused before yielding anything if the archive is unreadable, any entry
    is unsafe or a cap is hit, so that a refused archive changes nothing; never after.
    An entry that cannot be read (bad CRC, encrypted, unknown method, corrupt data, headers
    that disagree) is yielded as refused with the reason.
    """
    archive = open_zip(source)
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ZIP_ENTRIES:
            raise ArchiveRefused(f"{len(infos)} entries, over the limit of {MAX_ZIP_ENTRIES}")
        problems = [p for p in map(_entry_problem, infos) if p]
        if problems:
            raise ArchiveRefused("; ".join(problems[:5]))
        total = sum(info.file_size for info in infos)
        if total > max_total_bytes:
            raise ArchiveRefused(
                f"it unpacks to {total / 1e6:.0f} MB, over the {max_total_bytes // 10**6} MB limit"
            )
        files = {info.filename: info for info in infos if not info.is_dir()}
        limit_mb = max_entry_bytes // 10**6
        for name, info in files.items():
            path = PurePosixPath(name)
            if path.suffix.lower() in CAPTION_SUFFIXES or path.name.startswith("."):
                continue
            if "__MACOSX" in path.parts:
                continue
            if info.file_size > max_entry_bytes:
                refused = f"is {info.file_size / 1e6:.1f} MB, over the {limit_mb} MB limit"
                yield Offered(name, refused=refused)
                continue
            caption, problem = _caption(archive, files, path)
            if problem:
                yield Offered(name, refused=problem)
                continue
            spooled, problem = _read_entry(archive, info, spool, max_entry_bytes)
            if problem:
                yield Offered(name, refused=problem)
            elif spooled is None:  # more data than its header said
                yield Offered(name, refused=f"is over the {limit_mb} MB limit")
            else:
                yield Offered.spooled(name, spooled, caption=caption)
