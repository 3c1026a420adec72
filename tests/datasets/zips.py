"""Zip archives for tests: good ones from zipfile, broken ones by patching their bytes."""

from __future__ import annotations

import io
import zipfile


def zip_bytes(entries, *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive from (name or ZipInfo, bytes or str) pairs."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return out.getvalue()
