"""Fixtures shared by the training app's tests."""

import pytest

from tests.factories import make_base_model, make_gpu, make_node, make_run
from training.lifecycle import transition
from training.models import LoraArtifact, Preset, RunLog, SampleImage


@pytest.fixture
def lab(student):
    """One of everything, reached through the real life cycle."""
    node = make_node(name="node-a")
    make_gpu(node=node, name="RTX 4090")
    run = make_run(owner=student, base_model=make_base_model(name="demo model"))
    transition(run, "queued")
    RunLog.objects.create(run=run, seq=1, text="epoch 1/2\n")
    LoraArtifact.objects.create(run=run, kind="final", file=f"runs/{run.pk}/x.safetensors")
    SampleImage.objects.create(run=run, file=f"runs/{run.pk}/s.png", prompt="a sks dog")
    Preset.objects.create(name="A preset", architecture="demo", values={"network_dim": 4})
    return run
