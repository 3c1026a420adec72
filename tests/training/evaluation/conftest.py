"""Fixtures for evaluations: a fake ComfyUI/SwarmUI over HTTP and a succeeded SD 1.5 run whose
LoRA files lie in media storage, on a node whose inference server is that fake."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from tests.factories import make_base_model, make_gpu, make_node, make_run
from tests.fake_inference import FakeComfyUI
from tests.fake_swarmui import FakeSwarmUI
from training.lifecycle import transition
from training.models import LoraArtifact

# The smallest safetensors files: an 8-byte header length, then the JSON header.
LORA_EPOCH_1 = b"\x0e\x00\x00\x00\x00\x00\x00\x00" + b'{"e":"1"}     '
LORA_FINAL = b"\x0e\x00\x00\x00\x00\x00\x00\x00" + b'{"e":"2"}     '
NOT_A_LORA = b"this is not a safetensors file at all"


@pytest.fixture
def folders(tmp_path):
    """The inference server's model and LoRA folders (a node's models root and publish
    folder point at them)."""
    models, loras = tmp_path / "comfy" / "checkpoints", tmp_path / "comfy" / "loras"
    models.mkdir(parents=True)
    loras.mkdir(parents=True)
    (models / "sd15").mkdir()
    (models / "sd15" / "sd15_random.safetensors").write_bytes(LORA_FINAL)
    return models, loras


@pytest.fixture
def comfy(folders):
    fake = FakeComfyUI(*folders).start()
    yield fake
    fake.stop()


@pytest.fixture
def swarm(folders):
    fake = FakeSwarmUI(*folders).start()
    yield fake
    fake.stop()


def succeeded_run(owner, *, node, lora_files=(LORA_EPOCH_1, LORA_FINAL), **run_kw):
    """A succeeded SD 1.5 run (moved through the life cycle) with an epoch file and a final
    LoRA in media storage, the final one published to the node's LoRA folder."""
    base = make_base_model(
        architecture="sd15", checkpoint=f"{node.models_root}/sd15/sd15_random.safetensors"
    )
    run_kw.setdefault("params", {"resolution": 64, "sample_steps": 3, "max_train_epochs": 2})
    run_kw.setdefault("sample_prompts", "a sks dog\na sks cat")
    run = make_run(owner=owner, base_model=base, **run_kw)
    gpu = node.gpus.first()
    transition(run, "queued")
    transition(run, "assigned", changes={"node": node, "gpu": gpu})
    transition(run, "preparing")
    transition(run, "running", changes={"total_epochs": 2})
    for i, data in enumerate(lora_files):
        final = i == len(lora_files) - 1
        name = f"walk{'' if final else f'-{i + 1:06d}'}.safetensors"
        artifact = LoraArtifact(
            run=run,
            kind="final" if final else "epoch",
            epoch=None if final else i + 1,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        artifact.file.save(name, ContentFile(data), save=False)
        if final and node.lora_dir:
            published = Path(node.lora_dir) / owner.username / name
            published.parent.mkdir(parents=True, exist_ok=True)
            published.write_bytes(data)
            artifact.published_path = str(published)
        artifact.save()
    transition(run, "succeeded", note="Trained.")
    run.refresh_from_db()
    return run


@pytest.fixture
def inference_node(db, folders, comfy):
    """An online node whose ComfyUI is the fake, publishing LoRAs into its LoRA folder."""
    models, loras = folders
    node = make_node(
        name="gpu-a", comfyui_url=comfy.url, lora_dir=str(loras), models_root=str(models)
    )
    make_gpu(node=node, total_mib=24576)
    return node


@pytest.fixture
def finished_run(student, inference_node):
    return succeeded_run(student, node=inference_node)
