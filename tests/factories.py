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
