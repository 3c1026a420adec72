"""A LoRA file's metadata: the `__metadata__` of its safetensors header, read and rewritten.

A safetensors file is an 8-byte little-endian header length, a JSON header (tensor names,
dtypes, shapes and offsets relative to the data, plus `__metadata__`: text keys and text
values) and the tensor data. sd-scripts writes its `ss_*` and `modelspec.*` keys there.

The safetensors library writes the metadata in hash-map order, which changes from process
to process, so two identical trainings give different bytes. `write_metadata` writes a
canonical header instead (metadata keys sorted, compact JSON, padded with spaces to a
multiple of 8 as the format allows): the same tensors and metadata always give the same
file. The demo trainer uses it for its own files and the runner to add LoRA Studio's keys.
Pure: no Django, no torch.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors library's own limit
METADATA_KEY = "__metadata__"


class NotSafetensors(ValueError):
    """The file is not a readable safetensors file."""


def read_header(path: str | os.PathLike) -> tuple[dict, int]:
    """The parsed header and the offset where the tensor data starts."""
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise NotSafetensors(f"{path}: too short for a safetensors file")
        (length,) = struct.unpack("<Q", raw)
        if length > MAX_HEADER_BYTES:
            raise NotSafetensors(f"{path}: header of {length} bytes is too large")
        text = fh.read(length)
    if len(text) != length:
        raise NotSafetensors(f"{path}: truncated header")
    try:
        header = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotSafetensors(f"{path}: header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise NotSafetensors(f"{path}: header is not a JSON object")
    return header, 8 + length


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The file's `__metadata__` (empty when it has none)."""
    header, _ = read_header(path)
    metadata = header.get(METADATA_KEY) or {}
    return {str(k): str(v) for k, v in metadata.items()}


def canonical_header(header: dict, metadata: dict[str, str]) -> bytes:
    """The header bytes with `metadata` (sorted) first, then the tensors in their order."""
    tensors = {k: v for k, v in header.items() if k != METADATA_KEY}
    ordered = {METADATA_KEY: dict(sorted(metadata.items())), **tensors} if metadata else tensors
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return text + b" " * (-len(text) % 8)


def write_metadata(path: str | os.PathLike, metadata: dict[str, str]) -> None:
    """Replace the file's metadata with `metadata` (text keys and values), atomically.

    The tensor data is copied unchanged; the file is rewritten beside itself and moved over
    the old one, so a reader never sees half a file (and a hard link to the old one keeps
    the old bytes).
    """
    bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise ValueError(f"metadata keys and values must be text: {', '.join(map(str, bad))}")
    path = Path(path)
    header, data_start = read_header(path)
    new_header = canonical_header(header, metadata)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(path, "rb") as src, open(tmp, "wb") as out:
            out.write(struct.pack("<Q", len(new_header)))
            out.write(new_header)
            src.seek(data_start)
            shutil.copyfileobj(src, out, 1 << 20)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def add_metadata(path: str | os.PathLike, extra: dict[str, str]) -> dict[str, str]:
    """Add (or overwrite) keys in the file's metadata; return the metadata now written."""
    metadata = {**read_metadata(path), **extra}
    write_metadata(path, metadata)
    return metadata
