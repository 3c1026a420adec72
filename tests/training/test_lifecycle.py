"""The run life cycle: one function moves a run, records who did it, and tells its page."""

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from tests.factories import make_gpu, make_node, make_run
from training import live
from training.choices import RunStatus
from training.lifecycle import TransitionError, transition
from training.models import RunEvent

HAPPY_PATH = ["queued", "assigned", "preparing", "running", "succeeded"]


@pytest.mark.django_db
def test_happy_path_records_one_event_per_move(student, staff):
    run = make_run(owner=student)
    for status in HAPPY_PATH:
        transition(run, status, by=staff if status == "queued" else None)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    events = list(run.events.values_list("from_status", "to_status"))
    assert events == list(zip(["draft", *HAPPY_PATH[:-1]], HAPPY_PATH, strict=True))
    first = run.events.first()
    assert first.actor == staff
    assert run.queued_at and run.started_at and run.finished_at


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([], "running"),
        (["queued"], "succeeded"),
        (["queued", "assigned", "preparing", "running", "succeeded"], "queued"),
        (["cancelled"], "queued"),
        (["queued", "assigned", "preparing", "running"], "assigned"),
    ],
)
def test_refused_move_changes_nothing(student, path, refused):
    run = make_run(owner=student)
    for status in path:
        transition(run, status)
    events_before = RunEvent.objects.count()
    history_before = run.history.count()
    with pytest.raises(TransitionError, match=f"to {refused}"):
        transition(run, refused)
    run.refresh_from_db()
    assert run.status == (path[-1] if path else "draft")
    assert RunEvent.objects.count() == events_before
    assert run.history.count() == history_before


@pytest.mark.django_db
def test_failure_needs_a_known_reason(student):
    run = make_run(owner=student)
    for status in ["queued", "assigned", "preparing", "running"]:
        transition(run, status)
    with pytest.raises(TransitionError, match="needs a reason"):
        transition(run, "failed")
    with pytest.raises(TransitionError, match="needs a reason"):
        transition(run, "failed", reason="bad luck")
    transition(run, "failed", reason="oom", note="CUDA out of memory")
    run.refresh_from_db()
    assert (run.status, run.failure_reason) == ("failed", "oom")
    assert run.status_message == "CUDA out of memory"
    assert run.events.last().reason == "oom"


@pytest.mark.django_db
def test_expect_guards_against_a_stale_claim(student):
    run = make_run(owner=student)
    transition(run, "queued")
    transition(run, "cancelled")
    with pytest.raises(TransitionError, match="is cancelled, not queued"):
        transition(run, "assigned", expect="queued")


@pytest.mark.django_db
def test_claim_writes_placement_with_the_status(student):
    node = make_node()
    gpu = make_gpu(node=node)
    run = make_run(owner=student)
    transition(run, "queued")
    transition(run, "assigned", expect="queued", changes={"node": node, "gpu": gpu})
    run.refresh_from_db()
    assert (run.status, run.node, run.gpu) == ("assigned", node, gpu)


@pytest.mark.django_db(transaction=True)
def test_one_gpu_is_never_held_by_two_runs(student):
    node = make_node()
    gpu = make_gpu(node=node)
    first, second = make_run(owner=student), make_run(owner=student)
    for run in (first, second):
        transition(run, "queued")
    transition(first, "assigned", changes={"node": node, "gpu": gpu})
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        transition(second, "assigned", changes={"node": node, "gpu": gpu})
    second.refresh_from_db()
    assert second.status == "queued"
    assert second.events.count() == 1


@pytest.mark.django_db(transaction=True)
def test_transition_notifies_the_run_group_after_commit(student):
    layer = get_channel_layer()
    run = make_run(owner=student)
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(live.run_group(run.pk), channel)
    transition(run, "queued")
    message = async_to_sync(layer.receive)(channel)
    assert message["type"] == "run.state"
    assert message["state"]["id"] == run.pk
    assert message["state"]["status"] == "queued"


@pytest.mark.django_db
def test_status_changes_are_kept_in_history_but_progress_is_not(student):
    run = make_run(owner=student)
    transition(run, "queued")
    before = run.history.count()
    type(run).objects.filter(pk=run.pk).update(step=5, loss=0.3)
    assert run.history.count() == before
    assert run.history.first().status == "queued"
