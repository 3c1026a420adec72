"""Decode, verify and describe one image: size, format, hashes and a thumbnail.

No Django here, so a process pool can run `inspect_image` without setting Django up.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# A truncated file must fail, never load half an image.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Pillow format name -> the extension we store the file with.
ACCEPTED_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "BMP": "bmp"}
THUMB_SIZE = 256
# A file is hashed in pieces of this size, never read whole.
HASH_CHUNK_BYTES = 1024 * 1024
# EXIF orientations 5-8 turn the picture by 90 degrees: width and height swap.
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}


class ImageRejected(Exception):
    """The file is not an image we accept; the message says why, for the student."""


@dataclass(frozen=True)
class ImageInfo:
    """What we record about an accepted image."""

    width: int
    height: int
    format: str
    extension: str
    size_bytes: int
    sha256: str
    phash: str
    thumbnail: bytes


def difference_hash(image: Image.Image) -> str:
    """A 64-bit difference hash (dHash) as 16 hex digits; similar pictures differ in few bits."""
    small = image.convert("L").resize((9, 8), Image.Resampling.BILINEAR)
    pixels = small.tobytes()
    bits = 0
    for row in range(8):
        for col in range(8):
            left = pixels[row * 9 + col]
            right = pixels[row * 9 + col + 1]
            bits = (bits << 1) | (left > right)
    return f"{bits:016x}"


def hamming_distance(hash_a: str, hash_b: str) -> int:
    """Number of differing bits between two hex hashes."""
    return (int(hash_a, 16) ^ int(hash_b, 16)).bit_count()


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:  # A broken EXIF block is not a broken image: ignore orientation.
        return 1


def _sha256(source: bytes | Path) -> str:
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    digest = hashlib.sha256()
    with open(source, "rb") as stream:
        while chunk := stream.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def inspect_image(
    source: bytes | Path, *, max_pixels: int, max_bytes: int, sha256: str = ""
) -> ImageInfo:
    """Decode an image (its bytes, or a file) completely and describe it.

    Raises ImageRejected with a reason. A file is read in chunks and never held whole.
    JPEGs are decoded in draft mode (DCT scaling): every byte of the compressed stream is
    still decoded, so truncated or corrupt files fail, but at 1/8 scale for big photos.
    `sha256` is the file's hash when the caller took it already (the spool hashes what it
    writes): then the file is read once, by the decoder.
    """
    if isinstance(source, bytes | bytearray):
        source = bytes(source)
        size = len(source)
    else:
        source = Path(source)
        size = source.stat().st_size
    if size > max_bytes:
        raise ImageRejected(f"is {size / 1e6:.1f} MB, over the {max_bytes // 10**6} MB limit")
    if not size:
        raise ImageRejected("is empty")
    with io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb") as stream:
        image, fmt, (width, height) = _decode(stream, max_pixels=max_pixels)
        orientation = _orientation(image)
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    try:
        # In place: a copy of a big picture is as big again, in every worker at once.
        ImageOps.exif_transpose(image, in_place=True)
    except Exception:  # Broken EXIF: keep the pixels as stored.
        pass
    if image.mode not in ("RGB", "L"):
        # Straight to RGB: one full-size copy (via RGBA it was two; 100 million RGBA pixels
        # took 1.2 GB). Dropping alpha either way, the pixels are the same.
        try:
            image = image.convert("RGB")
        except ValueError:  # a mode Pillow cannot turn into RGB directly
            image = image.convert("RGBA").convert("RGB")
    image.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=82)
    return ImageInfo(
        width=width,
        height=height,
        format=fmt,
        extension=ACCEPTED_FORMATS[fmt],
        size_bytes=size,
        sha256=sha256 or _sha256(source),
        phash=difference_hash(image),
        thumbnail=out.getvalue(),
    )


def _decode(stream: BinaryIO, *, max_pixels: int) -> tuple[Image.Image, str, tuple[int, int]]:
    """Decode an accepted format within the pixel limit: (image, format, stored size).

    Raises ImageRejected. The stored size is the file's, not the draft-decoded image's.
    """
    try:
        with warnings.catch_warnings():
            # Our own pixel limit (from settings) is checked below, before any decoding.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(stream)
            fmt = image.format
            if fmt not in ACCEPTED_FORMATS:
                raise ImageRejected(
                    f"is {fmt or 'an unknown format'}; accepted: PNG, JPEG, WebP, BMP"
                )
            width, height = image.size
            if width * height > max_pixels:
                raise ImageRejected(
                    f"has {width}×{height} pixels, over the limit of {max_pixels:,} "
                    "(a decompression bomb or an oversized image)"
                )
            if fmt == "JPEG":
                image.draft("RGB", (THUMB_SIZE, THUMB_SIZE))
            image.load()
            return image, fmt, (width, height)
    except ImageRejected:
        raise
    except Image.DecompressionBombError:
        raise ImageRejected("is a decompression bomb (too many pixels)") from None
    except UnidentifiedImageError:
        raise ImageRejected("is not an image (its content is not PNG, JPEG, WebP or BMP)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"is damaged or truncated ({exc})") from None


def inspect_or_reason(
    source: bytes | Path, sha256: str = "", *, max_pixels: int, max_bytes: int
) -> ImageInfo | ImageRejected:
    """`inspect_image` for a process pool: a refusal comes back as a value, not a raise."""
    try:
        return inspect_image(source, max_pixels=max_pixels, max_bytes=max_bytes, sha256=sha256)
    except ImageRejected as exc:
        return exc
