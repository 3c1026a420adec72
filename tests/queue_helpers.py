"""Helpers shared by the queue tests: a small captioned dataset and a demo run on a node."""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

from PIL import Image

from datasets.services import add_images, create_dataset, save_captions
from tests.factories import make_base_model, make_gpu, make_node
from training import services


def png_bytes(seed: int, size: int = 64) -> bytes:
    """A small deterministic PNG (a coloured gradient)."""
    image = Image.new("RGB", (size, size))
    image.putdata(
        [
            ((x * 4 + seed * 40) % 256, (y * 4) % 256, (seed * 70) % 256)
            for y in range(size)
            for x in range(size)
        ]
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def make_image_dataset(owner, *, images: int = 4, name: str | None = None):
    """A dataset with a few generated, captioned images."""
    dataset = create_dataset(owner, name=name or f"shapes {owner.pk}", trigger_word="sks")
    add_images(dataset, [(f"img{i}.png", png_bytes(i)) for i in range(images)])
    captions = {img.pk: f"sks shape number {i}" for i, img in enumerate(dataset.images.all())}
    save_captions(dataset, captions)
    return dataset


DEMO_PARAMS = {"max_train_epochs": 2, "resolution": 32, "network_dim": 4}


def submit_demo(owner, *, node=None, dataset=None, params=None, **kw):
    """Submit a demo run (a node with a fresh heartbeat is created unless given)."""
    if node is None:
        node = make_node()
    base = kw.pop("base_model", None) or make_base_model(architecture="demo")
    return services.submit_run(
        owner,
        dataset=dataset or make_image_dataset(owner),
        base_model=base,
        params=dict(DEMO_PARAMS if params is None else params),
        **kw,
    )


FAKE_TRAINERS = Path(__file__).resolve().parent / "fake_trainers"


def fake_sdscripts(folder: Path, trainer: str) -> Path:
    """A fake sd-scripts folder whose train_network.py is one of tests/fake_trainers."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(FAKE_TRAINERS / "_common.py", folder / "_common.py")
    shutil.copy(FAKE_TRAINERS / f"{trainer}.py", folder / "train_network.py")
    return folder


def submit_fake_sd15(owner, tmp_path: Path, trainer: str, **node_kw):
    """An SD 1.5 run on a node with one fake 24 GB GPU whose sd-scripts is a fake trainer."""
    checkpoint = tmp_path / "models" / "sd15.safetensors"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.write_bytes(b"not really a model")
    node = make_node(
        sdscripts_dir=str(fake_sdscripts(tmp_path / f"sd-scripts-{trainer}", trainer)),
        sdscripts_python=sys.executable,
        **node_kw,
    )
    make_gpu(node=node, total_mib=24576)
    base = make_base_model(architecture="sd15", checkpoint=str(checkpoint))
    return services.submit_run(
        owner,
        dataset=make_image_dataset(owner),
        base_model=base,
        params={"max_train_epochs": 1},
    )
