"""Queue commands: node_agent, runs, gpus, cancel, demo, train --wait."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.factories import make_gpu, make_node
from tests.queue_helpers import submit_demo
from training import scheduler
from training.choices import RunStatus
from training.models import GPUNode, TrainingRun

pytestmark = pytest.mark.django_db


def run_cmd(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_node_agent_once_registers_the_node_and_its_fake_gpus(settings):
    settings.LORASTUDIO_FAKE_GPUS = "24576:RTX 4090,8192/4096"
    output = run_cmd("node_agent", "--once", "--node", "gpu-a")
    node = GPUNode.objects.get(name="gpu-a")
    assert node.is_online and "2 fake GPU(s)" in output
    gpus = list(node.gpus.values_list("index", "name", "total_mib", "free_mib"))
    assert gpus == [(0, "RTX 4090", 24576, 24576), (1, "Fake GPU", 8192, 4096)]
    from django_q.models import Schedule

    assert set(Schedule.objects.filter(cluster="gpu-a").values_list("func", flat=True)) == {
        "training.tasks.node_heartbeat",
        "training.tasks.reap_and_dispatch",
    }
    run_cmd("node_agent", "--once", "--node", "gpu-a")  # idempotent
    assert Schedule.objects.filter(cluster="gpu-a").count() == 2


def test_node_agent_on_a_machine_without_driver_reports_it(settings):
    settings.LORASTUDIO_GPU_BACKEND = "nvml"
    output = run_cmd("node_agent", "--once", "--node", "cpu-box")
    assert "no NVIDIA GPU found" in output
    assert GPUNode.objects.get(name="cpu-box").gpus.count() == 0


def test_gpus_shows_nodes_memory_bars_and_runs(student):
    node = make_node(name="gpu-a", status_message="1 GPU(s)")
    make_gpu(node=node, name="RTX 4090", total_mib=24576, free_mib=12288)
    output = run_cmd("gpus")
    assert "gpu-a (online)" in output
    assert "RTX 4090" in output and "[############------------]" in output
    assert "12.0/24.0 GB" in output


def test_runs_table_shows_queue_position_and_reason(student):
    run = submit_demo(student, node=make_node(last_heartbeat=None))
    scheduler.dispatch()
    output = run_cmd("runs")
    assert f"{run.pk:>5}  alice" in output
    assert "#1 in queue" in output and "no GPU node is online" in output


def test_runs_all_shows_the_whole_reason_a_run_failed(student):
    from training.lifecycle import transition

    run = submit_demo(student)
    advice = "A model file is damaged or not what its architecture needs (/m/x.safetensors): " * 2
    for status in ("assigned", "preparing", "running"):
        transition(run, status)
    transition(run, "failed", reason="model_file", note=advice)
    assert f"model_file: {advice}" in run_cmd("runs", "--all")


def test_cancel_command(student):
    run = submit_demo(student)
    assert "is cancelled" in run_cmd("cancel", str(run.pk))
    assert TrainingRun.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    with pytest.raises(CommandError, match="already finished"):
        run_cmd("cancel", str(run.pk))
    with pytest.raises(CommandError, match="no run #999999"):
        run_cmd("cancel", "999999")


def test_demo_command_is_idempotent_and_prints_the_page(staff):
    first = run_cmd("demo")
    run = TrainingRun.objects.get()
    assert f"Demo run #{run.pk}: /runs/{run.pk}/" in first
    assert run.base_model.architecture == "demo" and run.dataset.images.count() == 6
    assert run.dataset.images.filter(caption="sks red circle").exists()
    second = run_cmd("demo")
    assert "already" in second and TrainingRun.objects.count() == 1
    assert GPUNode.objects.filter(name__isnull=False).exists()


def test_demo_command_with_unknown_owner_fails():
    with pytest.raises(CommandError, match="no user"):
        run_cmd("demo", "--owner", "nobody")


@pytest.mark.parametrize(
    "step, total, expected",
    [(0, None, "step 0"), (5, 10, "[###---]  5/10"), (10, 10, "[######] 10/10")],
)
def test_progress_bar(step, total, expected):
    from training.follow import progress_bar

    assert progress_bar(step, total, width=6) == expected


def test_follow_prints_the_log_and_the_end(student):
    from training.follow import follow_run
    from training.lifecycle import transition
    from training.models import RunLog

    run = submit_demo(student)
    RunLog.objects.create(run=run, seq=1, text="epoch 1/1\nmodel saved.\n")
    transition(run, RunStatus.CANCELLED, note="Cancelled by alice.")
    lines = []
    ended = follow_run(run.pk, write=lines.append, poll=0.01)
    assert ended.status == RunStatus.CANCELLED
    assert lines == [
        "  | epoch 1/1",
        "  | model saved.",
        f"Run #{run.pk} cancelled",
        "Cancelled by alice.",
    ]


def test_a_base_model_whose_files_no_node_has_is_refused_or_failed_not_left_waiting(
    student, tmp_path, settings
):
    from tests.factories import make_base_model, make_trainable_dataset

    settings.LORASTUDIO_FAKE_GPUS = "24576:RTX 4090"
    model = make_base_model(name="SD15", architecture="sd15", checkpoint="sd15.safetensors")
    make_trainable_dataset(owner=student, name="dogs")
    args = ["train", "--dataset", "dogs", "--base-model", "SD15"]
    # Nobody has looked yet: the run is queued (the node's runner will check the files).
    early = TrainingRun.objects.get(pk=json.loads(run_cmd(*args, "--json"))["run"])
    assert early.status == RunStatus.QUEUED

    # The node's agent looks and reports the file missing: the waiting run fails with the
    # reason, a new submit is refused, and nothing waits for a node that can never run it.
    run_cmd("node_agent", "--once", "--node", "gpu-a")
    node = GPUNode.objects.get(name="gpu-a")
    assert node.has_model_files(model.pk) is False
    scheduler.dispatch()
    early.refresh_from_db()
    assert (early.status, early.failure_reason) == (RunStatus.FAILED, "missing_files")
    assert "no node has the files of SD15" in early.status_message
    with pytest.raises(CommandError, match="no node has the files of SD15"):
        run_cmd(*args)

    # Once the file is there, the agent says so and runs are accepted again.
    GPUNode.objects.filter(pk=node.pk).update(models_root=str(tmp_path))
    (tmp_path / "sd15.safetensors").write_bytes(b"weights")
    run_cmd("node_agent", "--once", "--node", "gpu-a")
    assert GPUNode.objects.get(pk=node.pk).has_model_files(model.pk) is True
    assert TrainingRun.objects.get(pk=json.loads(run_cmd(*args, "--json"))["run"]).status == (
        RunStatus.QUEUED
    )
