"""Base model files' hashes: read once per file and kept while its size and mtime stay."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from django.utils import timezone

from datasets.fingerprint import file_sha256
from training.models import FileHash


@dataclass(frozen=True)
class HashedFile:
    """One model file of a run: its role (checkpoint, clip_l, …), path, size and hash."""

    role: str
    path: str
    size_bytes: int
    sha256: str

    def record(self) -> dict:
        return {
            "role": self.role,
            "path": self.path,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
        }


def cached_sha256(node, path: str) -> tuple[str, int]:
    """The file's SHA-256 and size, from the node's cache while its size and mtime are those
    it was hashed with; else read (minutes for a 20 GB checkpoint) and cached.
    OSError when it cannot be read."""
    stat = os.stat(path)
    cached = FileHash.objects.filter(
        node=node, path=path, size_bytes=stat.st_size, mtime_ns=stat.st_mtime_ns
    ).first()
    if cached is not None:
        return cached.sha256, stat.st_size
    digest = file_sha256(path)
    FileHash.objects.update_or_create(
        node=node,
        path=path,
        defaults={
            "size_bytes": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": digest,
            "hashed_at": timezone.now(),
        },
    )
    return digest, stat.st_size


def model_files_sha256(files: list[HashedFile]) -> str:
    """One hash for a base model's files: each "<role> <sha256>" line, sorted by role.

    The demo's base model is built into the demo trainer and has no files: its hash is that
    of no lines (the SHA-256 of nothing).
    """
    lines = sorted(f"{f.role} {f.sha256}\n" for f in files)
    return hashlib.sha256("".join(lines).encode("ascii")).hexdigest()


def hash_model_files(node, files: dict[str, str]) -> list[HashedFile]:
    """Every model file of a run on `node` (role → path), hashed through the cache."""
    hashed = []
    for role, path in sorted(files.items()):
        digest, size = cached_sha256(node, path)
        hashed.append(HashedFile(role, path, size, digest))
    return hashed
