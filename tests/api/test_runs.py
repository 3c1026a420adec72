"""Runs through the API: the new-run page's plan path, the pages' permissions, log and files."""

import pytest
from django.core.files.base import ContentFile

from tests.api.conftest import ApiClient
from tests.factories import make_base_model, make_node, make_run, make_trainable_dataset
from tests.training.test_resume import lost_run
from training import services
from training.choices import RunStatus
from training.lifecycle import transition
from training.models import LoraArtifact, Preset, RunLog, TrainingRun

pytestmark = pytest.mark.django_db

DEMO = {"max_train_epochs": 2, "resolution": 32, "network_dim": 4}


@pytest.fixture
def demo_model(db):
    make_node()
    return make_base_model(name="Demo toy", architecture="demo")


@pytest.fixture
def dataset(student):
    return make_trainable_dataset(owner=student, images=2, name="cats")


def submit(api, on, **fields):
    body = {"dataset": on.pk, "base_model": "demo toy", "params": DEMO, **fields}
    return api.post_json("/api/v1/runs/", body)


def test_submit_queues_a_run_with_the_plans_parameters(student_api, student, dataset, demo_model):
    response = submit(
        student_api, dataset, name="api run", sample_prompts=["a sks cat", "a sks cat, night"]
    )
    assert response.status_code == 201, response.content
    body = response.json()
    run = TrainingRun.objects.get(pk=body["id"])
    assert (run.owner, run.base_model, run.dataset, run.name) == (
        student, demo_model, dataset, "api run",
    )  # fmt: skip
    assert run.status == RunStatus.QUEUED and body["status"] == "queued"
    assert run.params["network_dim"] == 4 and run.params["resolution"] == 32
    assert run.sample_prompts.splitlines()[1].startswith("a sks cat, night")
    assert body["progress"]["step"] == 0 and body["reason"] is None
    # The same plan path as the page: the plan and estimate are stored as a page submit's.
    assert run.plan["estimate_mib"] == run.vram_estimate_mib and "fits" in run.plan
    assert list(run.events.values_list("to_status", flat=True)) == ["queued"]


def test_a_preset_by_name_and_the_base_model_by_id(student_api, dataset, demo_model):
    preset = Preset.objects.create(name="Tiny", architecture="demo", values={"network_dim": 2})
    body = {"dataset": dataset.pk, "base_model": demo_model.pk, "preset": "tiny"}
    response = student_api.post_json("/api/v1/runs/", body)
    assert response.status_code == 201, response.content
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.preset == preset and run.params["network_dim"] == 2


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"params": {"network_dim": 100000}}, "params.network_dim"),
        ({"params": {"no_such_option": 1}}, "params.no_such_option"),
        ({"params": {"mixed_precision": "fp16"}}, "params.mixed_precision"),  # staff only
        ({"base_model": "no such model"}, "base_model"),
        ({"preset": "no such preset"}, "preset"),
        ({"dataset": "cats"}, "dataset"),
        ({"name": "x" * 101}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_run_input_is_a_400_naming_the_field_and_creates_nothing(
    student_api, dataset, demo_model, fields, field
):
    response = submit(student_api, dataset, **fields)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert not TrainingRun.objects.exists()


def test_another_users_dataset_cannot_be_trained_on(
    client, student, other_student, dataset, demo_model, token_for
):
    response = submit(ApiClient(client, token_for(other_student)), dataset)
    assert response.status_code == 400 and "dataset" in response.json()["errors"]
    assert not TrainingRun.objects.exists()


def test_the_plans_refusals_apply_the_unfinished_run_limit(
    student_api, dataset, demo_model, settings
):
    settings.LORASTUDIO_MAX_ACTIVE_RUNS_PER_USER = 1
    assert submit(student_api, dataset).status_code == 201
    refused = submit(student_api, dataset)
    assert refused.status_code == 400
    assert "already has 1 unfinished runs" in refused.json()["detail"]
    assert TrainingRun.objects.count() == 1


def test_another_users_run_answers_404_on_every_endpoint(client, student, other_student, token_for):
    run = make_run(owner=student)
    bob = ApiClient(client, token_for(other_student))
    for path in ("", "log/", "lora/"):
        assert bob.get(f"/api/v1/runs/{run.pk}/{path}").status_code == 404, path
    for path in ("cancel/", "resume/"):
        assert bob.post_json(f"/api/v1/runs/{run.pk}/{path}").status_code == 404, path
    assert bob.get("/api/v1/runs/").json()["count"] == 0
    run.refresh_from_db()
    assert run.status == RunStatus.DRAFT


def test_staff_see_every_run(client, student, staff, token_for):
    run = make_run(owner=student)
    charlie = ApiClient(client, token_for(staff))
    assert charlie.get(f"/api/v1/runs/{run.pk}/").json()["owner"] == "alice"
    assert charlie.get("/api/v1/runs/").json()["count"] == 1


def test_a_run_reads_status_reason_progress_and_loss(student_api, student):
    run = make_run(owner=student)
    transition(run, RunStatus.QUEUED)
    transition(run, RunStatus.FAILED, reason="oom", note="Out of memory at step 3.")
    TrainingRun.objects.filter(pk=run.pk).update(
        step=3, total_steps=12, epoch=1, total_epochs=4, loss=0.25
    )
    body = student_api.get(f"/api/v1/runs/{run.pk}/").json()
    assert (body["status"], body["reason"], body["loss"]) == ("failed", "oom", 0.25)
    assert body["message"] == "Out of memory at step 3."
    assert body["progress"] == {
        "step": 3, "total_steps": 12, "epoch": 1, "total_epochs": 4, "percent": 25.0,
        "loss": 0.25, "speed": None, "eta_seconds": None,
    }  # fmt: skip
    listed = student_api.get("/api/v1/runs/?status=failed").json()
    assert [r["id"] for r in listed["results"]] == [run.pk]
    assert student_api.get("/api/v1/runs/?status=running").json()["count"] == 0
    assert student_api.get("/api/v1/runs/?status=bogus").status_code == 400


def test_the_log_comes_in_pages_after_a_sequence_number(student_api, student):
    run = make_run(owner=student)
    RunLog.objects.bulk_create(RunLog(run=run, seq=n, text=f"line {n}\n") for n in range(1, 6))
    first = student_api.get(f"/api/v1/runs/{run.pk}/log/?limit=2").json()
    assert [c["seq"] for c in first["chunks"]] == [1, 2]
    assert first["more"] and first["next_after"] == 2 and not first["finished"]
    rest = student_api.get(f"/api/v1/runs/{run.pk}/log/?after=2&limit=10").json()
    assert [c["text"] for c in rest["chunks"]] == ["line 3\n", "line 4\n", "line 5\n"]
    assert not rest["more"] and rest["next_after"] == 5
    empty = student_api.get(f"/api/v1/runs/{run.pk}/log/?after=5").json()
    assert empty["chunks"] == [] and empty["next_after"] == 5
    bad = student_api.get(f"/api/v1/runs/{run.pk}/log/?after=-1")
    assert bad.status_code == 400 and "after" in bad.json()["errors"]


def test_cancel_a_queued_run_then_409_once_it_has_finished(student_api, dataset, demo_model):
    run_id = submit(student_api, dataset).json()["id"]
    response = student_api.post_json(f"/api/v1/runs/{run_id}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = student_api.post_json(f"/api/v1/runs/{run_id}/cancel/")
    assert again.status_code == 409 and "already finished" in again.json()["detail"]


def test_cancel_of_a_running_run_asks_its_runner(student_api, student):
    run = make_run(owner=student)
    for to in ("queued", "assigned", "preparing", "running"):
        transition(run, to)
    body = student_api.post_json(f"/api/v1/runs/{run.pk}/cancel/").json()
    assert body["status"] == "running" and body["cancel_requested"] is True


def test_lora_download_gives_the_final_file_or_an_epochs(student_api, student):
    run = make_run(owner=student)
    assert student_api.get(f"/api/v1/runs/{run.pk}/lora/").status_code == 404
    for kind, epoch, content in (("epoch", 1, b"epoch one"), ("final", None, b"final lora")):
        artifact = LoraArtifact(run=run, kind=kind, epoch=epoch)
        artifact.file.save(f"r{run.pk}-{kind}.safetensors", ContentFile(content), save=True)
    response = student_api.get(f"/api/v1/runs/{run.pk}/lora/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"final lora"
    assert f'filename="r{run.pk}-final.safetensors"' in response["Content-Disposition"]
    epoch = student_api.get(f"/api/v1/runs/{run.pk}/lora/?epoch=1")
    assert b"".join(epoch.streaming_content) == b"epoch one"
    assert student_api.get(f"/api/v1/runs/{run.pk}/lora/?epoch=2").status_code == 404


def test_resume_without_a_saved_state_is_refused_with_the_reason(student_api, student):
    run = make_run(owner=student)
    transition(run, "queued")
    services.cancel_run(run, by=student)
    response = student_api.post_json(f"/api/v1/runs/{run.pk}/resume/")
    assert response.status_code == 400
    assert "saved no training state" in response.json()["detail"]
    queued = make_run(owner=student)
    transition(queued, "queued")
    assert student_api.post_json(f"/api/v1/runs/{queued.pk}/resume/").status_code == 409
    assert TrainingRun.objects.count() == 2


def test_resume_a_run_from_its_saved_state(student_api, student):
    run = lost_run(student)
    response = student_api.post_json(f"/api/v1/runs/{run.pk}/resume/")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["resumed_from"] == run.pk and body["resume_epoch"] == 1
    listed = student_api.get(f"/api/v1/runs/{run.pk}/")
    assert listed.json()["resumed_by"] == [body["id"]]
