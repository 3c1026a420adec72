"""Ingest streams what it reads: one upload never holds a whole image in the process's memory.

tracemalloc counts the bytes Python objects hold (file and archive contents are Python
bytes); it does not count Pillow's pixel buffers, which the pixel limit bounds.
"""

import io
import os
import tracemalloc
import zipfile

import pytest
from PIL import Image

from datasets import services
from tests.factories import make_dataset

ENTRIES = 3  # under the process pool's threshold: everything runs in this process
SIDE = 2000  # 2000 × 2000 RGB: a 12 MB BMP


def noise_bmp() -> bytes:
    """A BMP of random pixels: each one different, and incompressible (no zip bomb)."""
    out = io.BytesIO()
    Image.frombytes("RGB", (SIDE, SIDE), os.urandom(SIDE * SIDE * 3)).save(out, "BMP")
    return out.getvalue()


def peak_python_bytes(call):
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def images_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for seed in range(ENTRIES):
        (folder / f"noise{seed}.bmp").write_bytes(noise_bmp())
    return folder


def test_zip_import_never_holds_a_whole_entry_in_memory(student, images_folder, tmp_path):
    archive = tmp_path / "noise.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in sorted(images_folder.iterdir()):
            zf.write(path, path.name)
    entry_bytes = (images_folder / "noise0.bmp").stat().st_size
    dataset = make_dataset(owner=student)
    report, peak = peak_python_bytes(lambda: services.import_zip(dataset, archive))
    assert len(report.added) == ENTRIES, report.messages()
    assert peak < entry_bytes // 2


def test_folder_import_never_holds_a_whole_image_in_memory(student, images_folder):
    entry_bytes = (images_folder / "noise0.bmp").stat().st_size
    (dataset, report), peak = peak_python_bytes(
        lambda: services.import_folder(images_folder, name="Noise", owner=student)
    )
    assert dataset.image_count == ENTRIES, report.messages()
    assert peak < entry_bytes // 2
