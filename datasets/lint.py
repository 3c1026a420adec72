"""Pre-flight lint of a dataset: counts, histograms, bucket preview and findings (pure)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from datasets.captions import contains_trigger, is_over_clip_limit
from datasets.images import hamming_distance

NEAR_DUPLICATE_BITS = 6  # dHash bits that may differ for two pictures to count as near-equal
FEW_IMAGES = 5
# Long-side ranges of the resolution histogram.
HISTOGRAM_EDGES = (512, 768, 1024, 1536, 2048)
# An image with fewer pixels than this share of resolution² is "tiny": upscaled, soft.
TINY_SHARE = 0.5
# The share of images a proposed resolution keeps from being tiny.
SUPPORTED_SHARE = 0.9


@dataclass(frozen=True)
class ImageFacts:
    """What lint needs to know about one image."""

    id: int
    name: str
    width: int
    height: int
    caption: str
    phash: str = ""


@dataclass(frozen=True)
class Finding:
    """One problem (or note) with what to do about it."""

    severity: str  # "error", "warning" or "info"
    code: str
    message: str
    action: str
    image_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Bucket:
    """One aspect-ratio bucket and how many images fall into it."""

    width: int
    height: int
    count: int


@dataclass(frozen=True)
class LintReport:
    """Everything the dataset page and the run form show before training."""

    image_count: int
    captioned_count: int
    resolution: int
    histogram: tuple[tuple[str, int], ...]
    buckets: tuple[Bucket, ...]
    findings: tuple[Finding, ...]

    @property
    def blocking(self) -> bool:
        """Whether an error finding forbids training on this dataset."""
        return any(f.severity == "error" for f in self.findings)

    @property
    def errors(self) -> tuple[Finding, ...]:
        """The error findings only."""
        return tuple(f for f in self.findings if f.severity == "error")


def make_bucket_resolutions(
    resolution: int, *, min_reso: int = 256, max_reso: int = 2048, steps: int = 64
) -> list[tuple[int, int]]:
    """sd-scripts' `make_bucket_resolutions`: every (w, h) of at most resolution² pixels.

    Like sd-scripts, refuses a resolution outside min_reso..max_reso with ValueError: below
    `steps` the square bucket would be 0×0, and sd-scripts itself will not bucket it.
    """
    if steps < 1:
        raise ValueError(f"bucket steps must be at least 1, not {steps}")
    if not min_reso <= resolution <= max_reso:
        raise ValueError(
            f"resolution {resolution} is outside the bucket sizes {min_reso}–{max_reso}"
            " (sd-scripts: min_bucket_reso ≤ resolution ≤ max_bucket_reso)"
        )
    max_area = resolution * resolution
    resos = set()
    side = int(math.sqrt(max_area) // steps) * steps
    resos.add((side, side))
    width = min_reso
    while width <= max_reso:
        height = min(max_reso, int((max_area // width) // steps) * steps)
        if height >= min_reso:
            resos.add((width, height))
            resos.add((height, width))
        width += steps
    return sorted(resos)


def select_bucket(width: int, height: int, buckets: list[tuple[int, int]]) -> tuple[int, int]:
    """sd-scripts' BucketManager.select_bucket (upscaling allowed): closest aspect ratio."""
    aspect = width / height
    return min(buckets, key=lambda b: abs(b[0] / b[1] - aspect))


def supported_resolution(
    sizes: list[tuple[int, int]], *, preferred: int, lowest: float | None = None, step: int = 64
) -> int:
    """The largest resolution up to `preferred` (a multiple of `step`, at least `lowest`) at
    which at least SUPPORTED_SHARE of the images are not tiny (the lint's rule)."""
    floor = int(lowest or step)
    if not sizes:
        return preferred
    pixels = sorted(width * height for width, height in sizes)
    smallest_kept = pixels[math.floor(len(pixels) * (1 - SUPPORTED_SHARE))]
    largest = int(math.sqrt(smallest_kept / TINY_SHARE) // step * step)
    return max(floor, min(preferred, largest))


def resolution_histogram(sizes: list[tuple[int, int]]) -> tuple[tuple[str, int], ...]:
    """Count images by their long side in the ranges of HISTOGRAM_EDGES."""
    labels = [f"< {HISTOGRAM_EDGES[0]}"]
    labels += [f"{lo}–{hi - 1}" for lo, hi in zip(HISTOGRAM_EDGES, HISTOGRAM_EDGES[1:])]
    labels.append(f"≥ {HISTOGRAM_EDGES[-1]}")
    counts = [0] * len(labels)
    for width, height in sizes:
        counts[sum(max(width, height) >= edge for edge in HISTOGRAM_EDGES)] += 1
    return tuple(zip(labels, counts))


def near_duplicate_groups(images: list[ImageFacts]) -> list[tuple[int, ...]]:
    """Groups of image ids whose perceptual hashes differ in at most NEAR_DUPLICATE_BITS."""
    hashed = [img for img in images if img.phash]
    parent = {img.id: img.id for img in hashed}

    def root(key: int) -> int:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for i, a in enumerate(hashed):
        for b in hashed[i + 1 :]:
            if hamming_distance(a.phash, b.phash) <= NEAR_DUPLICATE_BITS:
                parent[root(b.id)] = root(a.id)
    groups: dict[int, list[int]] = {}
    for img in hashed:
        groups.setdefault(root(img.id), []).append(img.id)
    return [tuple(ids) for ids in groups.values() if len(ids) > 1]


def lint_images(
    images: list[ImageFacts],
    *,
    trigger_word: str,
    resolution: int = 1024,
    min_reso: int = 256,
    max_reso: int = 2048,
    steps: int = 64,
) -> LintReport:
    """Check a dataset before training and say, for each problem, what to do."""
    if resolution < 1:
        raise ValueError(f"resolution must be a positive number of pixels, not {resolution}")
    findings: list[Finding] = []
    count = len(images)
    if count == 0:
        findings.append(
            Finding("error", "no_images", "The dataset has no images.", "Upload some images.")
        )
    elif count < FEW_IMAGES:
        findings.append(
            Finding(
                "warning",
                "few_images",
                f"Only {count} image(s): the LoRA will barely learn the concept.",
                "Add more varied images (15–50 is a good start for a character or style).",
            )
        )

    empty = tuple(img.id for img in images if not img.caption.strip())
    if empty:
        fallback = (
            f"sd-scripts will use the trigger word “{trigger_word}” as their caption"
            if trigger_word
            else "sd-scripts will train them with no caption at all"
        )
        findings.append(
            Finding(
                "warning",
                "empty_captions",
                f"{len(empty)} image(s) have no caption; {fallback}.",
                "Write captions in the caption editor, or use “Fill empty captions”.",
                empty,
            )
        )
    if trigger_word:
        missing = tuple(
            img.id
            for img in images
            if img.caption.strip() and not contains_trigger(img.caption, trigger_word)
        )
        if missing:
            findings.append(
                Finding(
                    "warning",
                    "trigger_missing",
                    f"The trigger word “{trigger_word}” is missing from {len(missing)} caption(s).",
                    "Use “Prepend trigger word” in the caption editor.",
                    missing,
                )
            )
    else:
        findings.append(
            Finding(
                "info",
                "no_trigger",
                "The dataset has no trigger word.",
                "Set one (e.g. “sks dog”) so that prompts can call up what the LoRA learnt.",
            )
        )
    too_long = tuple(img.id for img in images if is_over_clip_limit(img.caption))
    if too_long:
        findings.append(
            Finding(
                "warning",
                "long_captions",
                f"{len(too_long)} caption(s) probably exceed CLIP's 75 tokens (approximate count);"
                " the rest is cut off.",
                "Shorten them, keeping the important words first.",
                too_long,
            )
        )
    tiny = tuple(
        img.id for img in images if img.width * img.height < resolution * resolution * TINY_SHARE
    )
    if tiny:
        findings.append(
            Finding(
                "warning",
                "tiny_images",
                f"{len(tiny)} image(s) have under half the pixels of {resolution}×{resolution};"
                " they will be upscaled and look soft.",
                "Replace them with larger images or train at a lower resolution.",
                tiny,
            )
        )
    for group in near_duplicate_groups(images):
        findings.append(
            Finding(
                "warning",
                "near_duplicates",
                f"{len(group)} images look nearly identical.",
                "Keep the best one and delete the others, or the LoRA overfits on them.",
                group,
            )
        )

    if min_reso <= resolution <= max_reso:
        resos = make_bucket_resolutions(
            resolution, min_reso=min_reso, max_reso=max_reso, steps=steps
        )
    else:
        # sd-scripts buckets only between the smallest and largest bucket side; outside them
        # (the demo trains at 32–256 px) every image is resized to one square.
        resos = [(resolution, resolution)]
        findings.append(
            Finding(
                "info",
                "no_buckets",
                f"At {resolution} px, outside the bucket sizes ({min_reso}–{max_reso} px),"
                f" images are not sorted into aspect-ratio buckets: each one is resized to"
                f" {resolution}×{resolution}.",
                "Nothing to do for the demo trainer; for a real model train at"
                f" {min_reso}–{max_reso} px, where sd-scripts keeps aspect ratios.",
            )
        )
    per_bucket = Counter(select_bucket(img.width, img.height, resos) for img in images)
    buckets = tuple(Bucket(w, h, n) for (w, h), n in sorted(per_bucket.items()))
    if count and len(buckets) > 1 and min(b.count for b in buckets) == 1:
        lonely = sum(1 for b in buckets if b.count == 1)
        findings.append(
            Finding(
                "info",
                "lonely_buckets",
                f"{lonely} bucket(s) hold a single image; with batch size > 1 they train alone.",
                "Crop those images to a common aspect ratio, or ignore this with batch size 1.",
            )
        )
    return LintReport(
        image_count=count,
        captioned_count=count - len(empty),
        resolution=resolution,
        histogram=resolution_histogram([(img.width, img.height) for img in images]),
        buckets=buckets,
        findings=tuple(findings),
    )
