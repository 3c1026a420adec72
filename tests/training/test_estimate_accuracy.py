"""On a lab with history, a new demo run is estimated from its comparable runs.

Real demo runs (the demo trainer trains on the CPU, each step slowed by
DEMO_TRAINER_STEP_DELAY) are submitted through the new-run page and executed by the runner;
their measured times are the history. A new run submitted the same way is then estimated
and run, and the estimate it stored at submit is compared with its real duration (start to
end, the same span the history measures). How close the estimate comes is a timing
figure, so it is printed, not asserted: bench/estimate_accuracy.py runs this test and prints
the estimate against the real duration (the issue's goal: within 25 %).
"""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_base_model, make_node
from tests.queue_helpers import make_image_dataset
from training.choices import RunStatus
from training.execution import runner
from training.models import GPUNode, Preset, TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

HISTORY_RUNS = 3
# 4 images x 10 repeats x 3 passes, one image a step: 120 steps of at least 0.05 s.
CHOICES = {
    "resolution": 32,
    "train_batch_size": 1,
    "max_train_epochs": 3,
    "num_repeats": 10,
    "network_dim": 4,
}


@pytest.fixture(autouse=True)
def _slow_demo_steps(monkeypatch, settings):
    settings.LORASTUDIO_GPU_BACKEND = "fake"
    settings.LORASTUDIO_FAKE_GPUS = ""
    monkeypatch.setenv("DEMO_TRAINER_STEP_DELAY", "0.05")


def _submit_and_run(client, preset, model, dataset) -> TrainingRun:
    # The node's agent beats while the lab works; each run here takes seconds, and four of
    # them on a busy machine can outlast the heartbeat timeout.
    GPUNode.objects.update(last_heartbeat=timezone.now())
    data = {"preset": preset.pk, "base_model": model.pk, "dataset": dataset.pk, "name": "est"}
    data.update({f"p_{k}": v for k, v in CHOICES.items()})
    data.update(submit="1", form_token=str(uuid.uuid4()))
    response = client.post(reverse("training:run-create"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    run = TrainingRun.objects.order_by("-pk").first()
    assert run.status == RunStatus.ASSIGNED, run.status_message  # the node's CPU slot
    assert runner.execute(run.pk) == RunStatus.SUCCEEDED
    run.refresh_from_db()
    return run


def test_a_new_demo_run_is_estimated_from_the_lab_s_comparable_runs(student_client, student):
    make_node()
    model = make_base_model(name="Demo toy", architecture="demo")
    preset = Preset.objects.create(
        name="Demo for estimates",
        architecture="demo",
        values={"sample_every_n_epochs": 1, "save_every_n_epochs": 1},
    )
    dataset = make_image_dataset(student, images=4)

    history = [_submit_and_run(student_client, preset, model, dataset) for _ in range(HISTORY_RUNS)]
    taken = [(r.finished_at - r.started_at).total_seconds() for r in history]

    run = _submit_and_run(student_client, preset, model, dataset)
    estimate = run.plan["estimate"]
    actual = (run.finished_at - run.started_at).total_seconds()
    error = (estimate["duration_s"] - actual) / actual
    print(
        f"\nhistory runs took {', '.join(f'{t:.1f}' for t in taken)} s for {history[0].step} "
        f"steps each; the new run was estimated at {estimate['duration_s']} s "
        f"({estimate['steps']} steps x {estimate['step_s']} s, basis {estimate['basis']}, "
        f"{estimate['runs']} runs) and took {actual:.1f} s: {error:+.1%}"
    )
    assert estimate["basis"] == "same" and estimate["runs"] == HISTORY_RUNS
    assert estimate["steps"] == run.step == 120
    assert min(taken) / run.step <= estimate["step_s"] <= max(taken) / run.step
