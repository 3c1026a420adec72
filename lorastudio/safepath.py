"""Names and paths built from user data: made safe in one place, and never outside their folder.

Run names, usernames, dataset names and trigger words become file and folder names (the
trainer's output name, the LoRA publish folder, the dataset export). `safe_name` keeps the
characters a file name can carry everywhere, never yields "", "." or "..", and never starts
with "-" (the trainer would read it as an option) or "." (a hidden file). `inside` joins
names under a folder and refuses any result that is not inside it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_UNSAFE = re.compile(r"[^\w.@+-]+")
_UNSAFE_WITH_SPACES = re.compile(r"[^\w .@+-]+")


def safe_name(text: str, *, fallback: str, max_length: int = 60, spaces: bool = False) -> str:
    """`text` as one file or folder name; `fallback` when nothing usable is left."""
    pattern = _UNSAFE_WITH_SPACES if spaces else _UNSAFE
    name = pattern.sub("_", text or "")[:max_length].strip(" ._-")
    if not name:
        name = _UNSAFE.sub("_", fallback)[:max_length].strip(" ._-")
    if not name:
        raise ValueError("a file name needs at least one letter or digit")
    return name


def inside(folder: str | os.PathLike, *names: str) -> Path:
    """`folder`/names…, refused (ValueError) unless it stays inside `folder`."""
    root = Path(folder).resolve()
    path = root.joinpath(*names).resolve()
    if path == root or root not in path.parents:
        raise ValueError(f"{'/'.join(names)!r} would leave {root}")
    return path
