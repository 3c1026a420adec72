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
)
from tests.training.admin_helpers import CHANGELIST, finished, submitted
from training.lifecycle import transition
from training.models import (
    BaseModel,
    GPUNode,
    LoraArtifact,
    Preset,
    RunLog,
    SampleImage,
    TrainingRun,
)


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
def test_run_changelist_checkboxes_are_djangos_own_markup(staff_client, lab):
    run_admin = admin.site._registry[TrainingRun]
    ours = run_admin.action_checkbox(lab)
    assert ours == admin.ModelAdmin.action_checkbox(run_admin, lab)
    html = staff_client.get(reverse("admin:training_trainingrun_changelist")).content.decode()
    assert ours in html and 'id="action-toggle"' in html


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
            "inference_start_timeout": "300",  # the add page's initial values
            "inference_gpu": "0",
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
def test_training_changelists_and_run_page_do_not_grow_queries_with_rows(
    staff_client, student, settings
):
    settings.LORASTUDIO_MAX_ACTIVE_RUNS_PER_USER = 10  # seven unfinished runs of one student
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


@pytest.mark.django_db
def test_preset_extra_flags_are_checked_against_the_script_and_reach_student_runs(
    staff_client, student
):
    from tests.queue_helpers import make_image_dataset
    from training.planning import RunRequest, plan_run

    model = make_base_model(name="SD15", architecture="sd15", checkpoint="/m/sd15.safetensors")
    url = reverse("admin:training_preset_add")
    data = {
        "name": "SD 1.5 min-SNR", "architecture": "sd15", "values": "{}", "locked": "[]",
        "bounds": "{}", "extra_flags": '["--min_snr_gamma", "5", "--clip_g", "/x"]',
        "enabled": "on", "sort_order": "10",
    }  # fmt: skip
    response = staff_client.post(url, data)
    assert response.status_code == 200 and "train_network.py has no option --clip_g" in (
        response.content.decode()
    )
    assert not Preset.objects.filter(name="SD 1.5 min-SNR").exists()

    data["extra_flags"] = '["--min_snr_gamma", "5"]'
    assert staff_client.post(url, data).status_code == 302
    preset = Preset.objects.get(name="SD 1.5 min-SNR")
    plan = plan_run(
        RunRequest(owner=student, base_model=model, preset=preset,
                   dataset=make_image_dataset(student, images=1))
    )  # fmt: skip
    assert plan.extra_flags == ("--min_snr_gamma", "5")
