"""Helpers shared by the queue tests: a small captioned dataset and a demo run on a node."""

from __future__ import annotations

import io

from PIL import Image

from datasets.services import add_images, create_dataset, save_captions
from tests.factories import make_base_model, make_node
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
