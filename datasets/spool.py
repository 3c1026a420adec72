"""A private temporary folder that ingest streams files into, in bounded chunks (no Django).

An upload, an archive entry or a folder's image is copied here piece by piece before it is
checked, so the web server never holds a whole file (or a whole decompressed zip entry) in
memory, and the image workers receive a path instead of pickled bytes. Each piece is hashed
as it is written: the file's SHA-256 comes without reading it again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, NamedTuple

# The most bytes of one file held in memory while it is copied.
CHUNK_BYTES = 1024 * 1024


class Spooled(NamedTuple):
    """A file copied into the spool: where, how many bytes, and their SHA-256."""

    path: Path
    size: int
    sha256: str


class Spool:
    """One ingest's temporary folder; removed with everything in it on exit."""

    def __init__(self, parent: str | os.PathLike | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="lorastudio-ingest-", dir=parent))

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def write(self, stream: BinaryIO, *, limit: int) -> Spooled | None:
        """Copy `stream` into a new file here (Spooled), or None when it is over `limit`.

        Reads at most `limit` + 1 bytes, CHUNK_BYTES at a time. Whatever the stream raises
        (a damaged archive entry, say) comes through, and the partial file is removed.
        """
        fd, name = tempfile.mkstemp(dir=self.root)
        path = Path(name)
        size = 0
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                while size <= limit:
                    chunk = stream.read(min(CHUNK_BYTES, limit + 1 - size))
                    if not chunk:
                        break
                    size += len(chunk)
                    out.write(chunk)
                    digest.update(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if size > limit:
            path.unlink(missing_ok=True)
            return None
        return Spooled(path, size, digest.hexdigest())

    @staticmethod
    def discard(path: Path | None) -> None:
        """Remove a spooled file now (storing may already have moved it away)."""
        if path is not None:
            path.unlink(missing_ok=True)


def read_limited(stream: BinaryIO, limit: int) -> bytes | None:
    """All of a small stream, or None when it holds more than `limit` bytes."""
    data = stream.read(limit + 1)
    return None if len(data) > limit else data
