"""Plain test factories with keyword defaults (djangoproject's Factory style, no factory_boy)."""

from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model

_counter = itertools.count(1)


def make_user(**kw):
    """A user whose password is "pw-" + username."""
    n = next(_counter)
    kw.setdefault("username", f"user{n}")
    kw.setdefault("email", f"{kw['username']}@lab.example")
    password = kw.pop("password", "pw-" + kw["username"])
    user = get_user_model().objects.create_user(**kw)
    user.set_password(password)
    user.save()
    return user


def make_dataset(*, owner, **kw):
    """A dataset without images."""
    from datasets.models import Dataset

    n = next(_counter)
    kw.setdefault("name", f"dataset {n}")
    kw.setdefault("trigger_word", "sks")
    return Dataset.objects.create(owner=owner, **kw)


def make_trainable_dataset(*, owner, images=1, **kw):
    """A dataset with `images` small images, so a run may be submitted on it."""
    dataset = make_dataset(owner=owner, **kw)
    make_dataset_images(dataset, images)
    return dataset


def make_base_model(**kw):
    """A base model; the demo architecture needs no files."""
    from training.models import BaseModel

    n = next(_counter)
    kw.setdefault("name", f"model {n}")
    kw.setdefault("architecture", "demo")
    return BaseModel.objects.create(**kw)


def make_node(**kw):
    """An enabled node with a fresh heartbeat."""
    from django.utils import timezone

    from training.models import GPUNode

    n = next(_counter)
    kw.setdefault("name", f"node-{n}")
    kw.setdefault("last_heartbeat", timezone.now())
    return GPUNode.objects.create(**kw)


def make_gpu(*, node, **kw):
    """A GPU with all of its memory free."""
    from django.utils import timezone

    from training.models import GPU

    kw.setdefault("index", node.gpus.count())
    kw.setdefault("name", "Fake GPU")
    kw.setdefault("total_mib", 24576)
    kw.setdefault("free_mib", kw["total_mib"])
    kw.setdefault("updated_at", timezone.now())
    return GPU.objects.create(node=node, **kw)


def make_run(*, owner, **kw):
    """A draft run (reach other states through services or lifecycle.transition)."""
    from training.models import TrainingRun

    if "base_model" not in kw:
        kw["base_model"] = make_base_model()
    if "dataset" not in kw:
        kw["dataset"] = make_dataset(owner=owner)
    kw.setdefault("params", {})
    return TrainingRun.objects.create(owner=owner, **kw)


def make_image_bytes(fmt="PNG", size=(64, 48), *, seed=0, orientation=None):
    """Encoded image bytes with a distinct gradient per seed (optionally an EXIF rotation)."""
    import io

    from PIL import Image

    width, height = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image = image.rotate(seed * 37 % 360) if seed else image
    image.putpixel((seed % width, 0), (seed * 7 % 256, 255, 0))
    out = io.BytesIO()
    kwargs = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def make_dataset_images(dataset, count=2, *, fmt="PNG", size=(64, 48), captions=None):
    """Add `count` distinct images to a dataset through the service; returns its images."""
    from datasets.services import add_images

    files = [
        (f"img{i}.{fmt.lower()}", make_image_bytes(fmt, size, seed=i + 1)) for i in range(count)
    ]
    report = add_images(dataset, files)
    images = list(dataset.images.filter(pk__in=report.added))
    for image, caption in zip(images, captions or []):
        image.caption = caption
        image.save(update_fields=["caption"])
    return images
