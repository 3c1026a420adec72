"""The reaper: stale runs are freed, their trainers killed when they ran here."""

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.factories import make_gpu, make_node, make_run
from training import reaper
from training.choices import RunStatus
from training.execution import process
from training.lifecycle import transition
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


def run_in(status, *, owner, node, heartbeat_age_s, **changes):
    run = make_run(owner=owner)
    path = [RunStatus.QUEUED, RunStatus.ASSIGNED, RunStatus.PREPARING, RunStatus.RUNNING]
    for to in path[: path.index(status) + 1]:
        transition(run, to)
    TrainingRun.objects.filter(pk=run.pk).update(
        node=node,
        heartbeat_at=timezone.now() - timedelta(seconds=heartbeat_age_s),
        **changes,
    )
    return run


@pytest.mark.slow
def test_stale_running_run_is_worker_lost_and_its_group_killed(student, settings):
    node = make_node(name=settings.LORASTUDIO_NODE)
    gpu = make_gpu(node=node)
    trainer = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    try:
        run = run_in(
            RunStatus.RUNNING, owner=student, node=node, gpu=gpu, heartbeat_age_s=60,
            pgid=trainer.pid,
        )  # fmt: skip
        assert reaper.reap() == [run.pk]
        trainer.wait(timeout=5)
        assert trainer.returncode == -9
        assert not process.group_pids(trainer.pid)
    finally:
        if trainer.poll() is None:
            trainer.kill()
            trainer.wait()
    run.refresh_from_db()
    assert (run.status, run.failure_reason) == (RunStatus.FAILED, "worker_lost")
    assert "trainer was killed" in run.status_message and run.pgid is None
    assert not TrainingRun.objects.on_gpu().filter(gpu=gpu).exists()


def test_fresh_run_is_left_alone(student):
    node = make_node()
    run = run_in(RunStatus.RUNNING, owner=student, node=node, heartbeat_age_s=5)
    assert reaper.reap() == []
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING


def test_assigned_run_never_started_goes_back_to_the_queue(student):
    node = make_node()
    run = run_in(RunStatus.ASSIGNED, owner=student, node=node, heartbeat_age_s=60)
    assert reaper.reap() == [run.pk]
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.node_id is None
    assert "did not start it" in run.status_message


@pytest.mark.slow
def test_other_nodes_process_groups_are_not_touched(student):
    node = make_node(name="elsewhere")
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    try:
        run_in(RunStatus.RUNNING, owner=student, node=node, heartbeat_age_s=60, pgid=bystander.pid)
        assert len(reaper.reap()) == 1
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_reap_runs_command_reports(student):
    node = make_node()
    run = run_in(RunStatus.PREPARING, owner=student, node=node, heartbeat_age_s=600)
    out = StringIO()
    call_command("reap_runs", stdout=out)
    assert f"Reaped 1 run(s) [{run.pk}]" in out.getvalue()


# --- A worker that died on this node: lost at once, not after the stale timeout -------------


def dead_pid() -> int:
    """The id of a process that has ended (and been waited for)."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


@pytest.mark.slow
def test_a_dead_worker_on_this_node_loses_its_run_at_once_and_its_trainer_is_killed(
    student, settings
):
    node = make_node(name=settings.LORASTUDIO_NODE)
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    try:
        run = run_in(
            RunStatus.RUNNING, owner=student, node=node, heartbeat_age_s=1, pgid=orphan.pid,
            worker_pid=dead_pid(),
        )  # fmt: skip
        assert reaper.reap_vanished(node.name) == [run.pk]  # the heartbeat is still fresh
        orphan.wait(timeout=5)
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()
    run.refresh_from_db()
    assert (run.status, run.failure_reason) == (RunStatus.FAILED, "worker_lost")
    assert "is gone" in run.status_message and "trainer was killed" in run.status_message
    assert run.pgid is None and run.worker_pid is None


def test_a_live_worker_whose_trainer_just_ended_is_left_alone(student, settings):
    node = make_node(name=settings.LORASTUDIO_NODE)
    # This process is the worker: its trainer's group is gone (it is collecting files).
    run = run_in(
        RunStatus.RUNNING, owner=student, node=node, heartbeat_age_s=20, pgid=dead_pid(),
        worker_pid=os.getpid(),
    )  # fmt: skip
    assert reaper.reap_vanished(node.name) == []
    assert reaper.reap() == []
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING


def test_a_preparing_run_whose_worker_died_is_lost_too(student, settings):
    node = make_node(name=settings.LORASTUDIO_NODE)
    run = run_in(
        RunStatus.PREPARING, owner=student, node=node, heartbeat_age_s=1, worker_pid=dead_pid()
    )
    assert reaper.reap() == [run.pk]
    run.refresh_from_db()
    assert run.failure_reason == "worker_lost"


def test_runs_of_other_nodes_wait_for_their_heartbeat(student):
    node = make_node(name="elsewhere")
    run = run_in(
        RunStatus.RUNNING, owner=student, node=node, heartbeat_age_s=1, worker_pid=dead_pid()
    )
    # Another machine's process ids mean nothing here: only its own agent looks at them.
    assert reaper.reap() == []
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
