"""A whole run on a node that stops its inference server for training: the stop command before
the trainer, the start command after (waiting until the server answers), both on the run's
timeline; then the run's own evaluation renders on the restarted server."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.queue_helpers import submit_replay
from training import scheduler
from training.evaluation import runner as evaluation_runner
from training.evaluation.clients import ComfyUI, InferenceError
from training.execution import runner
from training.models import Evaluation

SERVICE = Path(__file__).resolve().parents[2] / "fake_services" / "inference_service.py"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def up(url: str) -> bool:
    try:
        ComfyUI(url, timeout=1).check()
    except InferenceError:
        return False
    return True


@pytest.fixture
def service(tmp_path):
    """The lab's ComfyUI as a service, running, and the commands that stop and start it."""
    models, loras = tmp_path / "models", tmp_path / "loras"
    models.mkdir()
    loras.mkdir()
    port = free_port()
    args = [str(tmp_path / "service"), str(port), str(models), str(loras)]
    command = {
        action: [sys.executable, str(SERVICE), action, *args] for action in ("start", "stop")
    }
    subprocess.run(command["start"], check=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not up(url) and time.monotonic() < deadline:
        time.sleep(0.1)
    yield {"url": url, "command": command, "loras": loras, "calls": tmp_path / "service/calls"}
    subprocess.run(command["stop"], check=False)


def test_stop_before_training_start_after_then_evaluate(student, tmp_path, settings, service):
    settings.LORASTUDIO_FAKE_GPUS = "24576:Fake"
    run = submit_replay(
        student,
        tmp_path,
        "sd15_train_sample_save",
        sample_prompts="a sks dog",
        comfyui_url=service["url"],
        lora_dir=str(service["loras"]),
        models_root=str(tmp_path / "models"),
        comfyui_unload="stop",
        inference_stop_command=service["command"]["stop"],
        inference_start_command=service["command"]["start"],
        inference_start_timeout=30,
    )
    run.refresh_from_db()
    assert run.status == "assigned"

    runner.execute(run.pk)

    run.refresh_from_db()
    assert run.status == "succeeded", run.status_message
    assert service["calls"].read_text().split() == ["start", "stop", "start"]
    timeline = [(e.kind, e.to_status, e.note) for e in run.events.all()]
    kinds = [k if k != "status" else f"→{to}" for k, to, _ in timeline]
    stopped = kinds.index("server")
    assert kinds.index("→preparing") < stopped < kinds.index("→running")
    assert timeline[stopped][2].startswith("Stopped the inference server for training: ")
    started = [n for k, _, n in timeline if k == "server"][-1]
    assert started.startswith("Started the inference server: ") and "it answered after" in started
    assert kinds.index("→succeeded") < len(kinds) - 1 - kinds[::-1].index("server")
    log = "".join(run.log_chunks.values_list("text", flat=True))
    assert log.index("Stopped the inference server") < log.index("Starting:")

    # The run's own evaluation, queued when it succeeded and placed once the server was back.
    evaluation = Evaluation.objects.get(run=run)
    assert evaluation.after_training and evaluation.status == "assigned"
    notes = [n for _, _, n in timeline]
    placed = notes.index(f"Evaluation #{evaluation.pk}: queued → assigned. Rendering on "
                         f"{run.node.name} GPU 0.")  # fmt: skip
    assert notes.index(started) < placed
    run.node.refresh_from_db()
    assert not run.node.inference_stopped
    evaluation_runner.execute(evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == "succeeded", evaluation.status_message
    assert evaluation.images.count() == evaluation.total_images > 0
    scheduler.dispatch()  # nothing left to place
