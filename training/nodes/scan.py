"""List a folder tree for `training.nodes.detect`: the only detection step that reads disk."""

from __future__ import annotations

import os
from pathlib import Path

from training.nodes.detect import TOKENIZER_FILES, VENV_NAMES

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
HOME_HUB_CACHE = ".cache/huggingface/hub"  # huggingface_hub's default, under the home folder


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


def _holds_tokenizer(repo: str) -> bool:
    """Whether a snapshot of a hub cache repository folder holds a tokenizer file."""
    try:
        snapshots = [e.path for e in os.scandir(os.path.join(repo, "snapshots")) if e.is_dir()]
    except OSError:
        return False
    return any(os.path.exists(os.path.join(s, f)) for s in snapshots for f in TOKENIZER_FILES)


def hub_caches(home: Path, hf_home: str = "") -> dict[str, list[str]]:
    """The Hugging Face hub caches that may serve this machine, $HF_HOME/hub first, then the
    home folder's, each with its repository folders that hold a tokenizer.

    A targeted look, not `list_tree`: .cache is skipped there, as it holds much else.
    """
    caches: dict[str, list[str]] = {}
    for hub in ([Path(hf_home) / "hub"] if hf_home else []) + [Path(home) / HOME_HUB_CACHE]:
        try:
            entries = sorted(os.scandir(hub), key=lambda e: e.name)
        except OSError:
            continue
        caches[str(hub)] = [
            e.name for e in entries if e.name.startswith("models--") and _holds_tokenizer(e.path)
        ]
    return caches
