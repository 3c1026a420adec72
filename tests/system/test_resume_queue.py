"""A worker killed mid-run on a real `qcluster`: its run is lost at once (not after the
heartbeat timeout) and resumed automatically from its saved epoch on the queue."""

import os
import signal
import time

import pytest

from tests.queue_helpers import submit_demo
from tests.system.test_queue import beat_nodes, clusters, wait_for  # noqa: F401 - a fixture
from training import reaper
from training.choices import RunStatus
from training.models import GPUNode, TrainingRun

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True), pytest.mark.slow]

PARAMS = {
    "max_train_epochs": 3,
    "resolution": 32,
    "network_dim": 4,
    "num_repeats": 1,
    "save_state": True,
    "sample_every_n_epochs": 0,
}


def test_a_killed_worker_is_lost_at_once_and_its_run_resumed_from_the_saved_epoch(
    student,
    clusters,  # noqa: F811 - the fixture imported above
    settings,
    tmp_path,
):
    nodes = {"it-resume": ""}
    logs = [tmp_path / "qcluster-it-resume.log"]
    beat_nodes(settings, nodes)
    clusters("it-resume", DEMO_TRAINER_STEP_DELAY="0.3")
    run = submit_demo(student, node=GPUNode.objects.get(name="it-resume"), params=PARAMS)
    wait_for(
        lambda: run.artifacts.filter(kind="state", epoch=1).exists(),
        "the state of epoch 1",
        settings,
        nodes,
        logs,
    )
    pgid = TrainingRun.objects.get(pk=run.pk).pgid
    with open(f"/proc/{pgid}/stat") as fh:
        worker_pid = int(fh.read().rsplit(")", 1)[1].split()[1])  # the trainer's parent
    os.kill(worker_pid, signal.SIGKILL)
    killed = time.monotonic()

    # What the node's agent does every second.
    wait_for(lambda: reaper.reap_vanished("it-resume"), "the run to be lost", settings, nodes, logs)
    assert time.monotonic() - killed < settings.LORASTUDIO_STALE_AFTER_SECONDS
    run.refresh_from_db()
    assert (run.status, run.failure_reason) == (RunStatus.FAILED, "worker_lost")
    assert "is gone" in run.status_message

    new = TrainingRun.objects.get(resumed_from=run)
    assert new.auto_resumed and new.resume_epoch >= 1
    wait_for(
        lambda: TrainingRun.objects.get(pk=new.pk).is_terminal,
        "the resumed run to finish",
        settings,
        nodes,
        logs,
    )
    new.refresh_from_db()
    assert new.status == RunStatus.SUCCEEDED, new.status_message
    done_before = 4 * new.resume_epoch
    assert (new.step, new.total_steps) == (12, 12)
    assert [s for s, _ in new.loss_points if s > done_before] == list(range(done_before + 1, 13))
    log = "".join(new.log_chunks.order_by("seq").values_list("text", flat=True))
    assert f"epoch {new.resume_epoch + 1}/3" in log and "epoch 1/3" not in log
