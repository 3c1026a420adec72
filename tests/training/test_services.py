"""Run services: submit, approve, cancel, run again, reprioritise."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from sdscripts.params import ParamError
from tests.factories import make_base_model, make_gpu, make_node, make_run
from tests.queue_helpers import make_image_dataset, submit_demo
from training import services
from training.choices import RunStatus
from training.lifecycle import transition
from training.models import Preset, TrainingRun

pytestmark = pytest.mark.django_db


def test_submit_validates_plans_and_queues(student):
    run = submit_demo(student, params={"network_dim": 8, "max_train_epochs": 2})
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    assert run.params["network_dim"] == 8 and run.params["resolution"] == 64
    assert run.vram_estimate_mib is not None and run.plan["fits"] is True
    assert list(run.events.values_list("to_status", flat=True)) == ["queued"]


def test_bad_parameters_change_nothing(student):
    with pytest.raises(ParamError) as info:
        submit_demo(student, params={"network_dim": 100000})
    assert "network_dim" in info.value.errors
    assert TrainingRun.objects.count() == 0


def test_students_get_the_presets_locks(student, staff):
    preset = Preset.objects.create(
        name="locked demo", architecture="demo", values={"network_dim": 4}, locked=["network_dim"]
    )
    with pytest.raises(ParamError):
        submit_demo(student, preset=preset, params={"network_dim": 16})
    run = submit_demo(staff, preset=preset, params={"network_dim": 16})
    assert run.params["network_dim"] == 16


def test_students_cannot_pass_extra_flags(student):
    with pytest.raises(PermissionDenied):
        submit_demo(student, extra_flags=("--seed", "1"))


def test_run_no_gpu_of_the_lab_can_hold_is_refused(student):
    node = make_node()
    make_gpu(node=node, total_mib=2048)
    base = make_base_model(architecture="flux1_dev", checkpoint="f", clip_l="c", t5xxl="t", ae="a")
    with pytest.raises(ValidationError, match="No GPU of the lab"):
        services.submit_run(
            student,
            dataset=make_image_dataset(student),
            base_model=base,
            params={},
            use_planner=False,
        )
    assert TrainingRun.objects.count() == 0


def test_approval_when_required(student, staff, settings):
    settings.LORASTUDIO_REQUIRE_APPROVAL = True
    run = submit_demo(student)
    assert run.status == RunStatus.PENDING_APPROVAL
    with pytest.raises(PermissionDenied):
        services.approve_run(run, by=student)
    services.approve_run(run, by=staff)
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    assert submit_demo(staff).status == RunStatus.QUEUED  # staff runs skip approval


def test_cancel_a_queued_run_at_once(student):
    run = submit_demo(student)
    services.cancel_run(run, by=student)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    with pytest.raises(ValidationError, match="already finished"):
        services.cancel_run(run, by=student)


def test_cancel_a_running_run_asks_its_runner(student, staff):
    run = make_run(owner=student)
    for to in (RunStatus.QUEUED, RunStatus.ASSIGNED, RunStatus.PREPARING, RunStatus.RUNNING):
        transition(run, to)
    services.cancel_run(run, by=staff)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.cancel_requested_at is not None
    assert run.events.filter(kind="action", actor=staff, note__contains="Cancel").exists()


def test_rerun_copies_the_parameters(student):
    first = submit_demo(student, params={"network_dim": 8, "max_train_epochs": 1})
    second = services.rerun(first, by=student)
    assert second.pk != first.pk and second.rerun_of_id == first.pk
    assert second.params == first.params and second.dataset_id == first.dataset_id
    assert second.status == RunStatus.QUEUED


def test_other_student_cannot_rerun(student, other_student):
    run = submit_demo(student)
    with pytest.raises(PermissionDenied):
        services.rerun(run, by=other_student)


def test_only_staff_reprioritise(student, staff):
    run = submit_demo(student)
    with pytest.raises(PermissionDenied):
        services.reprioritise_run(run, priority=5, by=student)
    services.reprioritise_run(run, priority=5, by=staff)
    run.refresh_from_db()
    assert run.priority == 5
    assert run.events.filter(kind="action", note__contains="Priority 0 → 5").exists()


def test_priority_outside_the_column_range_is_refused_and_changes_nothing(student, staff):
    run = submit_demo(student)
    with pytest.raises(ValidationError):
        services.reprioritise_run(run, priority=40000, by=staff)
    run.refresh_from_db()
    assert run.priority == 0
    assert not run.events.filter(kind="action").exists()


def test_submit_dispatches_on_commit(student, django_capture_on_commit_callbacks):
    node = make_node()
    with django_capture_on_commit_callbacks(execute=True):
        run = submit_demo(student, node=node)
    run.refresh_from_db()
    assert run.status == RunStatus.ASSIGNED and run.node_id == node.pk
    assert run.heartbeat_at <= timezone.now()


def test_a_sampling_run_without_prompts_samples_the_dataset_captions(student):
    dataset = make_image_dataset(student)
    captions = list(dataset.images.order_by("pk").values_list("caption", flat=True))
    run = submit_demo(student, dataset=dataset, params={"sample_every_n_epochs": 1})
    assert run.sample_prompts.splitlines() == list(dict.fromkeys(captions))[:2]
    given = submit_demo(student, dataset=dataset, sample_prompts="sks a red circle")
    assert given.sample_prompts == "sks a red circle"
    quiet = submit_demo(student, dataset=dataset, params={"sample_every_n_epochs": 0})
    assert quiet.sample_prompts == ""
