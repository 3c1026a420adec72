"""The demo trainer's data: sd-scripts' dataset TOML, images, captions and sample prompts.

Reads the same dataset config and folder layout sd-scripts reads (docs/sd-scripts.md). No
Django, no torch.
"""

from __future__ import annotations

import os
import tomllib
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
VOCAB_SIZE = 4096


@dataclass(frozen=True)
class Item:
    """One training image with its caption."""

    path: Path
    caption: str
    repeats: int
    is_reg: bool
    folder: str


@dataclass(frozen=True)
class DatasetSpec:
    """One [[datasets]] table: its images, resolution (w, h) and batch size."""

    items: tuple[Item, ...]
    width: int
    height: int
    batch_size: int


def _size(value: Any, fallback: tuple[int, int]) -> tuple[int, int]:
    """Read a TOML resolution (int or [w, h])."""
    if value is None:
        return fallback
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return value[0], value[1]
    raise ValueError(f"resolution must be an int or [width, height], got {value!r}")


def _caption_for(image: Path, extension: str, class_tokens: str) -> str:
    """First line of the caption file beside the image, else the class tokens."""
    caption_file = image.with_suffix(extension)
    if caption_file.is_file():
        lines = caption_file.read_text(encoding="utf-8").splitlines()
        first = lines[0].strip() if lines else ""
        if first:
            return first
    return class_tokens


def load_dataset_config(path: str, resolution: int, batch_size: int) -> list[DatasetSpec]:
    """Read an sd-scripts dataset TOML; flags are defaults that the file overrides."""
    with open(path, "rb") as fh:
        config = tomllib.load(fh)
    general = config.get("general", {})
    default_size = _size(general.get("resolution"), (resolution, resolution))
    default_batch = int(general.get("batch_size", batch_size))
    specs: list[DatasetSpec] = []
    for dataset in config.get("datasets", []):
        width, height = _size(dataset.get("resolution"), default_size)
        batch = int(dataset.get("batch_size", default_batch))
        items: list[Item] = []
        for subset in dataset.get("subsets", []):
            image_dir = Path(subset["image_dir"])
            extension = subset.get("caption_extension", general.get("caption_extension"))
            extension = extension or ".caption"
            class_tokens = subset.get("class_tokens", general.get("class_tokens", "")) or ""
            repeats = int(subset.get("num_repeats", 1))
            is_reg = bool(subset.get("is_reg", False))
            if not image_dir.is_dir():
                continue
            for image in sorted(image_dir.iterdir()):
                if image.is_file() and image.suffix.lower() in IMAGE_EXTENSIONS:
                    caption = _caption_for(image, extension, class_tokens)
                    items.append(Item(image, caption, repeats, is_reg, image_dir.name))
        if items:
            specs.append(DatasetSpec(tuple(items), width, height, batch))
    return specs


def tokens(caption: str) -> list[int]:
    """Hash a caption's words into vocabulary ids (stable across runs and machines)."""
    words = caption.lower().replace(",", " ").split()
    return [zlib.crc32(word.encode("utf-8")) % VOCAB_SIZE for word in words] or [0]


def tag_frequency(items: list[Item]) -> dict[str, dict[str, int]]:
    """Count comma-separated caption tags per image folder, as sd-scripts' ss_tag_frequency."""
    result: dict[str, Counter[str]] = {}
    for item in items:
        key = f"{item.repeats}_{item.folder}"
        counter = result.setdefault(key, Counter())
        for tag in item.caption.split(","):
            tag = tag.strip()
            if tag:
                counter[tag] += 1
    return {key: dict(counter) for key, counter in result.items()}


def read_prompts(path: str | None) -> list[tuple[str, int | None, int | None]]:
    """Read a sample prompt .txt: one prompt a line, "--d SEED" and "--s STEPS" honoured."""
    if not path or not os.path.isfile(path):
        return []
    prompts: list[tuple[str, int | None, int | None]] = []
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            text, *options = line.split(" --")
            seed = steps = None
            for option in options:
                name, _, value = option.partition(" ")
                if name == "d" and value.strip().lstrip("-").isdigit():
                    seed = int(value.strip())
                if name == "s" and value.strip().isdigit():
                    steps = max(1, int(value.strip()))
            prompts.append((text.strip(), seed, steps))
    return prompts
