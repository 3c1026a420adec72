"""The real queue: `manage.py qcluster` processes run the demo trainer and fake sd-scripts."""

import os
import signal
import sys
import time

import pytest
from safetensors import safe_open

from tests.factories import make_base_model
from tests.queue_helpers import (
    cluster_env,
    fake_sdscripts,
    make_image_dataset,
    start_qcluster,
    stop_process,
    submit_demo,
)
from training import reaper, services
from training.choices import RunStatus
from training.execution import process
from training.models import GPUNode, TrainingRun
from training.nodes import agent

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True), pytest.mark.slow]

DEADLINE_S = 150


@pytest.fixture
def clusters(tmp_path):
    """Start qcluster processes on demand; stop every one of them afterwards."""
    started = []

    def start(node: str, fake_gpus: str = "", **extra):
        proc = start_qcluster(
            cluster_env(node, fake_gpus=fake_gpus, **extra), tmp_path / f"qcluster-{node}.log"
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_process(proc)


def beat_nodes(settings, nodes: dict[str, str]) -> None:
    """Stand in for each node's agent: refresh its heartbeat and fake GPUs."""
    for name, gpus in nodes.items():
        settings.LORASTUDIO_FAKE_GPUS = gpus
        agent.beat(name)


def wait_for(predicate, what: str, settings, nodes: dict[str, str], log_paths=()):
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in log_paths)
            pytest.fail(f"timed out waiting for {what}\n{logs}")
        beat_nodes(settings, nodes)
        time.sleep(0.25)


def test_demo_run_goes_through_a_real_qcluster(student, clusters, settings, tmp_path):
    nodes = {"it-demo": ""}
    beat_nodes(settings, nodes)
    clusters("it-demo")
    run = submit_demo(student, node=GPUNode.objects.get(name="it-demo"))

    wait_for(
        lambda: TrainingRun.objects.get(pk=run.pk).is_terminal,
        "the run to finish",
        settings,
        nodes,
        [tmp_path / "qcluster-it-demo.log"],
    )

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.status_message
    events = list(run.events.order_by("created_at", "id").values_list("to_status", flat=True))
    assert events == ["queued", "assigned", "preparing", "running", "succeeded"]
    final = run.artifacts.get(kind="final")
    with safe_open(final.file.path, "pt") as fh:
        keys = set(fh.keys())
    stems = {k.rsplit(".", 2)[0] for k in keys if k.startswith("lora_unet_")}
    assert stems and all(
        {f"{s}.lora_down.weight", f"{s}.lora_up.weight", f"{s}.alpha"} <= keys for s in stems
    )
    log = "".join(run.log_chunks.order_by("seq").values_list("text", flat=True))
    assert "running training / 学習開始" in log and "epoch 2/2" in log
    assert "%|" not in log  # no tqdm bar; "sample_steps: 8" is a real line
    assert not any(line.startswith("steps:") for line in log.splitlines())
    losses = [loss for _, loss in run.loss_points]
    assert losses[-1] < losses[0]


def test_worker_killed_mid_run_becomes_worker_lost(student, clusters, settings, tmp_path):
    settings.LORASTUDIO_STALE_AFTER_SECONDS = 3
    nodes = {"it-kill": ""}
    beat_nodes(settings, nodes)
    clusters("it-kill", DEMO_TRAINER_STEP_DELAY="0.5")
    run = submit_demo(student, node=GPUNode.objects.get(name="it-kill"))
    pgid = wait_for(
        lambda: (
            TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING)
            .exclude(pgid=None)
            .values_list("pgid", flat=True)
            .first()
        ),
        "the trainer to start",
        settings,
        nodes,
        [tmp_path / "qcluster-it-kill.log"],
    )
    with open(f"/proc/{pgid}/stat") as fh:
        worker_pid = int(fh.read().rsplit(")", 1)[1].split()[1])  # the trainer's parent
    os.kill(worker_pid, signal.SIGKILL)

    settings.LORASTUDIO_NODE = "it-kill"  # the reaper runs "on" that node
    wait_for(
        lambda: reaper.reap() or TrainingRun.objects.get(pk=run.pk).is_terminal,
        "the reaper to free the run",
        settings,
        nodes,
    )
    run.refresh_from_db()
    assert (run.status, run.failure_reason) == (RunStatus.FAILED, "worker_lost")
    wait_for(lambda: not process.group_pids(pgid), "the trainer to be gone", settings, nodes)


def test_two_nodes_each_get_the_runs_that_fit_them(
    student, other_student, clusters, settings, tmp_path
):
    nodes = {"it-small": "8192:Small 8G", "it-big": "49152:Big 48G"}
    scripts = fake_sdscripts(tmp_path / "sd-scripts", "flood")
    checkpoint = tmp_path / "sd15.safetensors"
    checkpoint.write_bytes(b"x")
    base = make_base_model(architecture="sd15", checkpoint=str(checkpoint))
    beat_nodes(settings, nodes)
    GPUNode.objects.update(
        sdscripts_dir=str(scripts), sdscripts_python=sys.executable, last_heartbeat=None
    )  # offline until both runs exist, so that dispatch sees them together
    runs = {}
    for owner, need in ((student, 30000), (other_student, 6000)):
        run = services.submit_run(
            owner, dataset=make_image_dataset(owner), base_model=base, params={}
        )
        # A fixed need: dispatch would plan a planner-made run again for each GPU.
        TrainingRun.objects.filter(pk=run.pk).update(
            vram_estimate_mib=need, plan={**run.plan, "planner": False}
        )
        runs[need] = run
    for name in nodes:
        # The flood trainer's knob reaches it only as an operator's addition.
        clusters(
            name,
            fake_gpus=nodes[name],
            FAKE_TRAINER_LINES="200",
            LORASTUDIO_TRAINER_ENV="FAKE_TRAINER_*",
        )

    beat_nodes(settings, nodes)
    from training.scheduler import dispatch

    dispatch()
    logs = [tmp_path / f"qcluster-{n}.log" for n in nodes]
    wait_for(
        lambda: all(TrainingRun.objects.get(pk=r.pk).is_terminal for r in runs.values()),
        "both runs to finish",
        settings,
        nodes,
        logs,
    )
    big, small = (TrainingRun.objects.get(pk=runs[n].pk) for n in (30000, 6000))
    assert big.node.name == "it-big" and big.status == RunStatus.SUCCEEDED, big.status_message
    assert small.node.name == "it-small" and small.status == RunStatus.SUCCEEDED
    assert "flood line 200 of 200" in "".join(big.log_chunks.values_list("text", flat=True))
