"""Admin run actions and the run change page: every change goes through a service."""

import pytest
from django.urls import reverse

from tests.factories import (
    make_base_model,
)
from tests.training.admin_helpers import CHANGELIST, finished, submitted
from training.admin import actions
from training.lifecycle import transition
from training.models import (
    BaseModel,
    RunEvent,
    TrainingRun,
)

# Run actions: the changelist POST Django's admin sends; every change goes through a service.


def run_action(client, action, runs, **extra):
    """POST an action on the run changelist; returns the messages as (level tag, text)."""
    response = client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [run.pk for run in runs], **extra},
        follow=True,
    )
    assert response.redirect_chain == [(reverse(CHANGELIST), 302)]
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def statuses(*runs):
    return [TrainingRun.objects.get(pk=run.pk).status for run in runs]


def event_counts(*runs):
    return [RunEvent.objects.filter(run=run).count() for run in runs]


@pytest.mark.django_db
def test_cancel_action_cancels_waiting_runs_and_skips_finished_ones(staff_client, staff, student):
    first, second = submitted(student), submitted(student)
    done = finished(submitted(student))
    before = event_counts(done)
    msgs = run_action(staff_client, "cancel_runs", [first, second, done])
    assert statuses(first, second, done) == ["cancelled", "cancelled", "succeeded"]
    for run in (first, second):
        event = RunEvent.objects.filter(run=run).last()
        assert (event.to_status, event.actor) == ("cancelled", staff)
    assert event_counts(done) == before
    assert msgs == [
        ("success", "Cancelled 2 runs."),
        ("warning", f"Skipped 1: Run #{done.pk} has already finished (Succeeded)."),
    ]


@pytest.mark.django_db
def test_cancel_action_asks_a_running_run_to_stop_once(staff_client, staff, student):
    run = submitted(student)
    for step in ("assigned", "preparing", "running"):
        transition(run, step)
    msgs = run_action(staff_client, "cancel_runs", [run])
    run.refresh_from_db()
    assert run.status == "running" and run.cancel_requested_at is not None
    event = RunEvent.objects.filter(run=run).last()
    assert (event.kind, event.actor) == ("action", staff)
    assert msgs == [
        ("success", "Asked 1 run on a GPU to stop (the runner checks about once a second).")
    ]
    before = event_counts(run)
    msgs = run_action(staff_client, "cancel_runs", [run])
    assert msgs == [("warning", f"Skipped 1: Run #{run.pk} was already asked to stop.")]
    assert event_counts(run) == before


@pytest.mark.django_db
def test_approve_action_queues_runs_awaiting_approval(staff_client, staff, student, settings):
    settings.LORASTUDIO_REQUIRE_APPROVAL = True
    waiting = submitted(student)
    queued = submitted(staff)  # staff runs skip approval
    assert statuses(waiting, queued) == ["pending_approval", "queued"]
    before = event_counts(queued)
    msgs = run_action(staff_client, "approve_runs", [waiting, queued])
    assert statuses(waiting, queued) == ["queued", "queued"]
    event = RunEvent.objects.filter(run=waiting).last()
    assert (event.from_status, event.to_status, event.actor) == (
        "pending_approval",
        "queued",
        staff,
    )
    assert event_counts(queued) == before
    assert msgs[0] == ("success", "Approved 1 run into the queue.")
    assert msgs[1][0] == "warning"
    assert msgs[1][1].startswith(f"Skipped 1: Run #{queued.pk} is queued, not pending_approval")


@pytest.mark.django_db
def test_run_again_action_submits_copies_and_skips_what_the_service_refuses(
    staff_client, staff, student
):
    done = finished(submitted(student, name="dogs", priority=3), "failed")
    disabled = make_base_model(name="retired")
    old = finished(submitted(student, base_model=disabled))
    BaseModel.objects.filter(pk=disabled.pk).update(enabled=False)
    count = TrainingRun.objects.count()
    msgs = run_action(staff_client, "rerun_runs", [done, old])
    assert TrainingRun.objects.count() == count + 1
    again = TrainingRun.objects.get(rerun_of=done)
    assert (again.status, again.owner, again.name, again.priority) == ("queued", student, "dogs", 3)
    assert (again.params, again.dataset_id, again.base_model_id) == (
        done.params,
        done.dataset_id,
        done.base_model_id,
    )
    assert RunEvent.objects.filter(run=again).last().actor == staff
    assert not TrainingRun.objects.filter(rerun_of=old).exists()
    assert msgs == [
        ("success", f"Submitted 1 run with the same parameters: #{again.pk} (again #{done.pk})."),
        ("warning", f"Skipped 1: Run #{old.pk}: Base model retired is disabled."),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "extra", "expected"),
    [
        ("raise_priority", {}, [3, -1]),
        ("lower_priority", {}, [1, -3]),
        ("set_priority", {"priority": " 7 "}, [7, 7]),
    ],
)
def test_priority_actions_go_through_the_service(
    staff_client, staff, student, action, extra, expected
):
    high, low = submitted(student, priority=2), submitted(student, priority=-2)
    done = finished(submitted(student))
    msgs = run_action(staff_client, action, [high, low, done], **extra)
    high.refresh_from_db(), low.refresh_from_db()
    assert [high.priority, low.priority] == expected
    note = RunEvent.objects.filter(run=high).last().note
    assert note == f"Priority 2 → {expected[0]} by {staff}."
    assert TrainingRun.objects.get(pk=done.pk).priority == 0
    assert msgs == [
        (
            "success",
            f"Changed the priority of 2 runs: #{high.pk} 2 → {expected[0]}, "
            f"#{low.pk} -2 → {expected[1]}.",
        ),
        ("warning", f"Skipped 1: Run #{done.pk} has already finished."),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Set priority: enter the new priority in the Priority box; no run was changed."),
        ("high", "Set priority: “high” is not a whole number; no run was changed."),
    ],
)
def test_set_priority_without_a_number_changes_nothing(staff_client, student, value, message):
    run = submitted(student, priority=2)
    before = event_counts(run)
    msgs = run_action(staff_client, "set_priority", [run], priority=value)
    assert msgs == [("error", message)]
    run.refresh_from_db()
    assert run.priority == 2 and event_counts(run) == before


@pytest.mark.django_db
def test_changelist_offers_the_run_actions_and_the_priority_box(staff_client, lab):
    page = staff_client.get(reverse(CHANGELIST)).content.decode()
    for action in actions.RUN_ACTIONS:
        assert f'value="{action.__name__}"' in page
    assert 'name="priority"' in page


def change_form_data(client, run, **changes):
    """What the run's change page posts back: its editable fields and the inlines' counts."""
    page = client.get(reverse("admin:training_trainingrun_change", args=[run.pk]))
    data = {"name": run.name, "priority": run.priority}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name, value in management.initial.items():
            data[f"{management.prefix}-{name}"] = value
    return {**data, **changes}


@pytest.mark.django_db
def test_priority_edited_on_the_change_page_goes_on_the_timeline(staff_client, staff, student):
    run = submitted(student)
    url = reverse("admin:training_trainingrun_change", args=[run.pk])
    response = staff_client.post(url, change_form_data(staff_client, run, name="cats", priority=5))
    assert response.status_code == 302, response.content[:3000]
    run.refresh_from_db()
    assert (run.name, run.priority, run.status) == ("cats", 5, "queued")
    assert RunEvent.objects.filter(run=run).last().note == f"Priority 0 → 5 by {staff}."


@pytest.mark.django_db
def test_priority_of_a_finished_run_is_not_changed_on_its_page(staff_client, student):
    run = finished(submitted(student))
    before = event_counts(run)
    url = reverse("admin:training_trainingrun_change", args=[run.pk])
    response = staff_client.post(url, change_form_data(staff_client, run, priority=5), follow=True)
    run.refresh_from_db()
    assert run.priority == 0 and event_counts(run) == before
    assert f"Priority not changed: Run #{run.pk} has already finished." in response.content.decode()
