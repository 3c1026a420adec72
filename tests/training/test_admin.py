"""Staff run the lab from the admin; students never see it."""

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import (
    make_base_model,
    make_gpu,
    make_node,
    make_run,
    make_trainable_dataset,
)
from training import services
from training.admin import actions
from training.lifecycle import transition
from training.models import (
    BaseModel,
    GPUNode,
    LoraArtifact,
    Preset,
    RunEvent,
    RunLog,
    SampleImage,
    TrainingRun,
)


@pytest.fixture
def lab(student):
    """One of everything, reached through the real life cycle."""
    node = make_node(name="node-a")
    make_gpu(node=node, name="RTX 4090")
    run = make_run(owner=student, base_model=make_base_model(name="demo model"))
    transition(run, "queued")
    RunLog.objects.create(run=run, seq=1, text="epoch 1/2\n")
    LoraArtifact.objects.create(run=run, kind="final", file=f"runs/{run.pk}/x.safetensors")
    SampleImage.objects.create(run=run, file=f"runs/{run.pk}/s.png", prompt="a sks dog")
    Preset.objects.create(name="A preset", architecture="demo", values={"network_dim": 4})
    return run


def admin_urls(obj):
    opts = obj._meta
    return (
        reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]),
    )


@pytest.mark.django_db
def test_every_registered_model_has_working_changelist_and_change_page(staff_client, lab):
    checked = 0
    for model in admin.site._registry:
        obj = model.objects.first()
        if obj is None:
            continue
        for url in admin_urls(obj):
            response = staff_client.get(url)
            assert response.status_code == 200, url
        checked += 1
    assert checked >= 10


@pytest.mark.django_db
def test_run_change_page_shows_timeline_and_history(staff_client, lab):
    opts = lab._meta
    page = staff_client.get(reverse("admin:training_trainingrun_change", args=[lab.pk]))
    assert b"draft" in page.content and b"queued" in page.content
    history = staff_client.get(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[lab.pk])
    )
    assert history.status_code == 200
    assert b"draft" in history.content


@pytest.mark.django_db
def test_changelists_do_not_grow_queries_with_rows(
    staff_client, student, django_assert_max_num_queries
):
    for i in range(12):
        run = make_run(owner=student)
        transition(run, "queued")
    with django_assert_max_num_queries(12):
        assert staff_client.get(reverse("admin:training_trainingrun_changelist")).status_code == 200


@pytest.mark.django_db
def test_staff_can_create_and_edit_base_models_nodes_and_presets(staff_client):
    response = staff_client.post(
        reverse("admin:training_basemodel_add"),
        {
            "name": "SD3.5 M",
            "architecture": "sd35_medium",
            "checkpoint": "sd3.5m.safetensors",
            "clip_l": "clip_l.safetensors",
            "clip_g": "clip_g.safetensors",
            "t5xxl": "t5xxl_fp16.safetensors",
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    model = BaseModel.objects.get(name="SD3.5 M")
    response = staff_client.post(
        reverse("admin:training_gpunode_add"),
        {
            "name": "node-b",
            "enabled": "on",
            "comfyui_unload": "free",
            "gpus-TOTAL_FORMS": "0",
            "gpus-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert GPUNode.objects.filter(name="node-b").exists()
    staff_client.post(
        reverse("admin:training_basemodel_change", args=[model.pk]),
        {
            "name": "SD3.5 Medium",
            "architecture": "sd35_medium",
            "checkpoint": "sd3.5m.safetensors",
            "clip_l": "clip_l.safetensors",
            "clip_g": "clip_g.safetensors",
            "t5xxl": "t5xxl_fp16.safetensors",
            "enabled": "on",
        },
    )
    model.refresh_from_db()
    assert model.name == "SD3.5 Medium"
    assert model.history.count() == 2


@pytest.mark.django_db
def test_base_model_missing_an_encoder_is_refused(staff_client):
    response = staff_client.post(
        reverse("admin:training_basemodel_add"),
        {
            "name": "FLUX",
            "architecture": "flux1_dev",
            "checkpoint": "flux1-dev.safetensors",
            "enabled": "on",
        },
    )
    assert response.status_code == 200
    assert b"This architecture needs this file." in response.content
    assert not BaseModel.objects.filter(name="FLUX").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/admin/", "/admin/training/trainingrun/"])
def test_student_is_redirected_away_from_admin(student_client, url):
    response = student_client.get(url, follow=True)
    assert response.redirect_chain[0] == (reverse("home"), 302)
    assert b"The admin is for lab staff." in response.content


@pytest.mark.django_db
def test_anonymous_admin_visit_asks_for_admin_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_preset_with_a_bad_value_is_refused_naming_the_field(staff_client):
    preset = Preset.objects.get(name="SD 3.5 Medium, 768")
    response = staff_client.post(
        reverse("admin:training_preset_change", args=[preset.pk]),
        {
            "name": preset.name,
            "architecture": "sd35_medium",
            "values": '{"network_dim": 32, "blocks_to_swap": 99}',
            "locked": "[]",
            "bounds": "{}",
            "enabled": "on",
            "sort_order": "10",
        },
    )
    assert response.status_code == 200
    assert b"blocks_to_swap" in response.content
    preset.refresh_from_db()
    assert "blocks_to_swap" not in preset.values


# Run actions: the changelist POST Django's admin sends; every change goes through a service.

CHANGELIST = "admin:training_trainingrun_changelist"


def submitted(owner, **kw):
    """A run submitted through the service (queued, or pending approval when required)."""
    kw.setdefault("base_model", make_base_model())
    kw.setdefault("dataset", make_trainable_dataset(owner=owner))
    return services.submit_run(owner, params={}, **kw)


def finished(run, status="succeeded"):
    for step in ("assigned", "preparing", "running"):
        transition(run, step)
    transition(run, status, reason="trainer_error" if status == "failed" else "")
    return run


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


# Query counts stay flat however many rows the lab has (no N+1 in lists or inlines).


def populate(student, count):
    """`count` more of every kind of row the training admin lists."""
    for i in range(count):
        node = make_node()
        gpu = make_gpu(node=node)
        run = submitted(student, base_model=make_base_model(), preset=None)
        transition(run, "assigned", changes={"node": node, "gpu": gpu})
        run.refresh_from_db()
        transition(run, "preparing", by=student)
        RunLog.objects.create(run=run, seq=1, text=f"line {i}\n")
        LoraArtifact.objects.create(run=run, kind="final", file=f"runs/{run.pk}/x.safetensors")
        SampleImage.objects.create(run=run, file=f"runs/{run.pk}/s.png", prompt="a sks dog")
        Preset.objects.create(name=f"preset {node.pk}", architecture="demo", values={})


def query_counts(client, urls):
    counts = {}
    for url in urls:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200, url
        counts[url] = len(queries)
    return counts


@pytest.mark.django_db
def test_training_changelists_and_run_page_do_not_grow_queries_with_rows(staff_client, student):
    populate(student, 1)
    run = TrainingRun.objects.get()
    urls = [
        reverse(f"admin:training_{model._meta.model_name}_changelist")
        for model in admin.site._registry
        if model._meta.app_label == "training"
    ]
    urls += [
        reverse("admin:training_trainingrun_change", args=[run.pk]),
        reverse("admin:training_gpunode_change", args=[run.node_id]),
    ]
    few = query_counts(staff_client, urls)
    populate(student, 6)
    for i in range(6):
        transition(run, "queued" if i % 2 == 0 else "assigned", by=student)
        make_gpu(node=run.node)
    assert query_counts(staff_client, urls) == few


@pytest.mark.django_db
def test_bulk_delete_refuses_a_selection_with_an_active_run(staff_client, student):
    waiting, done = submitted(student), finished(submitted(student))
    data = {"action": "delete_selected", "_selected_action": [waiting.pk, done.pk]}
    response = staff_client.post(reverse(CHANGELIST), data)
    assert b"permission to delete" in response.content  # the confirmation page refuses
    assert staff_client.post(reverse(CHANGELIST), {**data, "post": "yes"}).status_code == 403
    assert TrainingRun.objects.filter(pk__in=[waiting.pk, done.pk]).count() == 2

    data["post"] = "yes"

    data["_selected_action"] = [done.pk]
    staff_client.post(reverse(CHANGELIST), data)
    assert not TrainingRun.objects.filter(pk=done.pk).exists()
    change = reverse("admin:training_trainingrun_delete", args=[waiting.pk])
    assert staff_client.get(change).status_code == 403
