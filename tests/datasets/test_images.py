"""Image inspection: accepted formats, refusals, EXIF rotation, hashes (no database)."""

import io

import pytest
from PIL import Image

from datasets.images import ImageRejected, hamming_distance, inspect_image
from tests.factories import make_image_bytes

LIMITS = {"max_pixels": 10_000_000, "max_bytes": 5_000_000}


@pytest.mark.parametrize(
    ("fmt", "stored_format", "extension"),
    [
        ("PNG", "PNG", "png"),
        ("JPEG", "JPEG", "jpg"),
        ("WEBP", "WEBP", "webp"),
        ("BMP", "BMP", "bmp"),
    ],
)
def test_accepted_formats_are_described(fmt, stored_format, extension):
    info = inspect_image(make_image_bytes(fmt, (120, 80)), **LIMITS)
    assert (info.width, info.height) == (120, 80)
    assert (info.format, info.extension) == (stored_format, extension)
    assert len(info.sha256) == 64 and len(info.phash) == 16
    thumb = Image.open(io.BytesIO(info.thumbnail))
    assert thumb.format == "JPEG" and max(thumb.size) <= 256


def test_big_jpeg_is_measured_at_full_size_though_decoded_in_draft_mode():
    info = inspect_image(make_image_bytes("JPEG", (2400, 1600)), **LIMITS)
    assert (info.width, info.height) == (2400, 1600)
    assert Image.open(io.BytesIO(info.thumbnail)).size == (256, 171)


@pytest.mark.parametrize("orientation", [6, 8, 5, 7])
def test_exif_rotation_swaps_stored_size_and_turns_the_thumbnail(orientation):
    info = inspect_image(make_image_bytes("JPEG", (400, 200), orientation=orientation), **LIMITS)
    assert (info.width, info.height) == (200, 400)
    assert Image.open(io.BytesIO(info.thumbnail)).size == (128, 256)


def test_exif_rotation_180_keeps_size():
    info = inspect_image(make_image_bytes("JPEG", (400, 200), orientation=3), **LIMITS)
    assert (info.width, info.height) == (400, 200)


def _bomb_png() -> bytes:
    # 1-bit 20000×20000 PNG: a few kB on disk, 400 million pixels once decoded.
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, "PNG")
    return out.getvalue()


def _truncated_jpeg() -> bytes:
    data = make_image_bytes("JPEG", (800, 600), seed=3)
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"hello, I am text named photo.jpg\n", "not an image"),
        (b"", "empty"),
        (_bomb_png(), "decompression bomb"),
        (_truncated_jpeg(), "damaged or truncated"),
        (make_image_bytes("PNG")[:60], "damaged or truncated"),
        (make_image_bytes("GIF"), "accepted: PNG, JPEG, WebP, BMP"),
        (make_image_bytes("TIFF"), "accepted: PNG, JPEG, WebP, BMP"),
    ],
    ids=["text", "empty", "bomb", "truncated-jpeg", "truncated-png", "gif", "tiff"],
)
def test_refusals_say_why(data, reason):
    with pytest.raises(ImageRejected, match=reason):
        inspect_image(data, **LIMITS)


def test_pixel_limit_from_settings_refuses_large_images():
    with pytest.raises(ImageRejected, match="over the limit"):
        inspect_image(make_image_bytes("PNG", (200, 100)), max_pixels=10_000, max_bytes=10**6)


def test_size_limit_refuses_big_files():
    with pytest.raises(ImageRejected, match="MB limit"):
        inspect_image(make_image_bytes("BMP", (400, 400)), max_pixels=10**7, max_bytes=100_000)


def test_same_picture_in_two_encodings_has_near_equal_hash_other_picture_not():
    a = inspect_image(make_image_bytes("PNG", (300, 200), seed=2), **LIMITS)
    b = inspect_image(make_image_bytes("JPEG", (300, 200), seed=2), **LIMITS)
    c = inspect_image(make_image_bytes("PNG", (300, 200), seed=5), **LIMITS)
    assert a.sha256 != b.sha256
    assert hamming_distance(a.phash, b.phash) <= 6
    assert hamming_distance(a.phash, c.phash) > 6


def _thumbnail_of_colour_pixels(data: bytes) -> bytes:
    """The thumbnail as inspection made it before converting straight to RGB (via RGBA)."""
    image = Image.open(io.BytesIO(data)).convert("RGBA").convert("RGB")
    image.thumbnail((256, 256), Image.Resampling.BILINEAR, reducing_gap=2.0)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=82)
    return out.getvalue()


@pytest.mark.parametrize("mode", ["RGBA", "P", "LA"])
def test_images_with_alpha_or_a_palette_get_the_thumbnail_of_their_colour_pixels(mode):
    picture = Image.open(io.BytesIO(make_image_bytes("PNG", (300, 200), seed=3)))
    if mode == "P":
        picture = picture.convert("P")
        picture.info["transparency"] = 0
    else:
        picture = picture.convert(mode)
        picture.putalpha(Image.linear_gradient("L").resize((300, 200)))
    out = io.BytesIO()
    picture.save(out, "PNG")
    info = inspect_image(out.getvalue(), **LIMITS)
    assert info.thumbnail == _thumbnail_of_colour_pixels(out.getvalue())
