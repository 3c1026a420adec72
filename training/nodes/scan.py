"""List a folder tree for `training.nodes.detect`: the only detection step that reads disk."""

from __future__ import annotations

import os
from pathlib import Path

from training.nodes.detect import VENV_NAMES

# Folders never worth descending into when looking for installs and model files.
SKIP = frozenset(
    {
        ".git",
        "__pycache__",
        "node_modules",
        "site-packages",
        ".cache",
        ".local",
        ".npm",
        "dlbackend",
    }
)
MAX_ENTRIES = 200_000


def list_tree(root: Path, max_depth: int = 8) -> list[str]:
    """Relative POSIX paths under `root` (folders end in "/"), for `detect.detect`.

    Hidden folders and caches are skipped; a venv contributes only its bin/python, so
    sd-scripts' interpreter is found without listing the venv. Symlinked folders are followed
    once (model folders often live on another disk).
    """
    root = Path(root)
    listing: list[str] = []
    seen: set[str] = set()

    def walk(folder: Path, rel: str, depth: int) -> None:
        try:
            real = os.path.realpath(folder)
            if real in seen:
                return
            seen.add(real)
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if len(listing) >= MAX_ENTRIES:
                return
            path = f"{rel}{entry.name}"
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            if not is_dir:
                listing.append(path)
                continue
            if entry.name in VENV_NAMES:
                for exe in ("python", "python3"):
                    if os.path.exists(os.path.join(entry.path, "bin", exe)):
                        listing.append(f"{path}/bin/{exe}")
                continue
            if entry.name in SKIP or (entry.name.startswith(".") and entry.name != ".venv"):
                continue
            listing.append(path + "/")
            if depth < max_depth:
                walk(Path(entry.path), path + "/", depth + 1)

    walk(root, "", 1)
    return listing
