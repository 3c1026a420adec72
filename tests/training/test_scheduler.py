"""Dispatch: who gets which GPU, in which order, why others wait, and no GPU given twice."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tests.factories import make_base_model, make_dataset, make_gpu, make_node, make_run, make_user
from training import scheduler
from training.choices import RunStatus
from training.lifecycle import transition
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


def queued_run(owner, *, need_mib=8000, arch="sd15", priority=0, **kw):
    """A queued run needing `need_mib` (built directly: the planner is tested elsewhere)."""
    base = make_base_model(architecture=arch, checkpoint="sd.safetensors")
    run = make_run(owner=owner, base_model=base, vram_estimate_mib=need_mib, priority=priority)
    transition(run, RunStatus.QUEUED)
    return run


def status(run):
    run.refresh_from_db()
    return run.status


def test_run_goes_to_the_smallest_free_gpu_that_holds_it(student):
    node = make_node()
    big = make_gpu(node=node, total_mib=49152)
    small = make_gpu(node=node, total_mib=12288)
    run = queued_run(student, need_mib=10000)

    assert scheduler.dispatch() == [run.pk]

    run.refresh_from_db()
    assert (run.status, run.node_id, run.gpu_id) == (RunStatus.ASSIGNED, node.pk, small.pk)
    assert big.runs.count() == 0


def test_memory_comfyui_would_give_back_counts_as_free(student):
    node = make_node()
    make_gpu(node=node, total_mib=24576, free_mib=4000, reclaimable_mib=18000)
    run = queued_run(student, need_mib=20000)
    assert scheduler.dispatch() == [run.pk]


def test_waiting_run_says_why_and_best_gpu(student):
    node = make_node(name="node-a")
    make_gpu(node=node, index=1, total_mib=24576, free_mib=20582)
    run = queued_run(student, need_mib=22000)

    assert scheduler.dispatch() == []

    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    assert run.status_message == (
        "Waiting: no GPU with 21.5 GB free; best is node-a GPU 1 with 20.1 GB."
    )
    assert scheduler.queue_position(run) == 1


@pytest.mark.parametrize(
    "node_kw, words",
    [
        ({"last_heartbeat": None}, "no GPU node is online"),
        ({"enabled": False}, "no GPU node is online"),
    ],
)
def test_offline_or_disabled_node_gets_nothing(student, node_kw, words):
    node = make_node(**node_kw)
    make_gpu(node=node)
    run = queued_run(student)
    assert scheduler.dispatch() == []
    run.refresh_from_db()
    assert words in run.status_message


def test_stale_heartbeat_node_gets_nothing(student, settings):
    node = make_node(last_heartbeat=timezone.now() - timedelta(seconds=120))
    make_gpu(node=node)
    queued_run(student)
    assert scheduler.dispatch() == []


def test_too_big_run_does_not_block_a_smaller_one_behind_it(student, other_student):
    node = make_node()
    make_gpu(node=node, total_mib=24576)
    huge = queued_run(student, need_mib=40000, priority=5)
    small = queued_run(other_student, need_mib=8000)

    assert scheduler.dispatch() == [small.pk]
    huge.refresh_from_db()
    assert "no GPU has 39.1 GB" in huge.status_message


def test_busy_gpu_is_never_given_twice(student, other_student):
    node = make_node()
    make_gpu(node=node)
    first = queued_run(student)
    second = queued_run(other_student)

    assert scheduler.dispatch() == [first.pk]
    assert scheduler.dispatch() == []
    assert status(second) == RunStatus.QUEUED
    second.refresh_from_db()
    assert "running another run" in second.status_message


def test_priority_then_fair_share_then_age(student, other_student):
    node = make_node()
    make_gpu(node=node)
    heavy_user, light_user = student, other_student
    # heavy_user trained for 10 hours this week.
    past = make_run(owner=heavy_user, gpu=make_gpu(node=make_node(enabled=False)))
    TrainingRun.objects.filter(pk=past.pk).update(
        status=RunStatus.SUCCEEDED,
        started_at=timezone.now() - timedelta(hours=12),
        finished_at=timezone.now() - timedelta(hours=2),
    )
    heavy_old = queued_run(heavy_user)
    light_new = queued_run(light_user)
    urgent = queued_run(heavy_user, priority=10)

    order = [r.pk for r in scheduler.queue_order()]
    assert order == [urgent.pk, light_new.pk, heavy_old.pk]
    assert scheduler.gpu_hours_by_owner()[heavy_user.pk] == pytest.approx(10, abs=0.01)
    assert scheduler.dispatch() == [urgent.pk]


def test_demo_runs_need_no_gpu_one_at_a_time_per_node(student, other_student):
    node = make_node()  # no GPUs at all
    first = queued_run(student, arch="demo", need_mib=0)
    second = queued_run(other_student, arch="demo", need_mib=0)

    assert scheduler.dispatch() == [first.pk]
    first.refresh_from_db()
    assert first.node_id == node.pk and first.gpu_id is None
    second.refresh_from_db()
    assert "already running a demo run" in second.status_message

    other = make_node()
    assert scheduler.dispatch() == [second.pk]
    second.refresh_from_db()
    assert second.node_id == other.pk


def test_run_needing_missing_local_model_files_waits(student, settings):
    node = make_node(name=settings.LORASTUDIO_NODE, models_root="/nonexistent")
    make_gpu(node=node)
    run = queued_run(student)
    assert scheduler.dispatch() == []
    run.refresh_from_db()
    assert "files of" in run.status_message


@pytest.mark.django_db(transaction=True)
def test_racing_dispatchers_never_double_assign():
    nodes = [make_node() for _ in range(2)]
    gpus = [make_gpu(node=n) for n in nodes for _ in range(3)]
    owners = [make_user() for _ in range(4)]
    runs = []
    for i in range(24):
        owner = owners[i % 4]
        base = make_base_model(architecture="demo" if i % 4 == 0 else "sd15", checkpoint="x")
        run = make_run(owner=owner, base_model=base, dataset=make_dataset(owner=owner))
        TrainingRun.objects.filter(pk=run.pk).update(vram_estimate_mib=0 if i % 4 == 0 else 9000)
        transition(run, RunStatus.QUEUED)
        runs.append(run)

    errors = []
    start = threading.Barrier(6)

    def racer():
        try:
            start.wait()
            for _ in range(3):
                scheduler.dispatch()
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=racer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert not errors
    on_gpu = TrainingRun.objects.on_gpu()
    gpu_ids = list(on_gpu.exclude(gpu=None).values_list("gpu_id", flat=True))
    demo_nodes = list(on_gpu.filter(gpu=None).values_list("node_id", flat=True))
    assert len(gpu_ids) == len(set(gpu_ids)) == len(gpus)  # every GPU used, none twice
    assert sorted(demo_nodes) == sorted(n.pk for n in nodes)  # one demo run per node
    for run in on_gpu:
        assert run.events.filter(to_status="assigned").count() == 1
