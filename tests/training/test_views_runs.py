"""Students' run pages: new run with its plan, run page, cancel, run again, downloads."""

from __future__ import annotations

import uuid

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from tests.factories import make_base_model, make_gpu, make_node, make_run
from tests.queue_helpers import make_image_dataset, submit_demo
from training.choices import ArtifactKind, RunStatus
from training.lifecycle import transition
from training.models import LoraArtifact, Preset, RunLog, SampleImage, TrainingRun


@pytest.fixture
def demo_preset(db):
    return Preset.objects.get(name="Demo (CPU)")


@pytest.fixture
def demo_model(db):
    return make_base_model(name="Demo toy", architecture="demo")


@pytest.fixture
def sdxl_setup(db):
    preset = Preset.objects.create(
        name="SDXL test", architecture="sdxl", values={"resolution": 1024}
    )
    model = make_base_model(name="SDXL base", architecture="sdxl", checkpoint="sdxl.safetensors")
    return preset, model


def form_data(preset, model, dataset, **params):
    data = {"preset": preset.pk, "base_model": model.pk, "dataset": dataset.pk, "name": "my lora"}
    data.update({f"p_{k}": v for k, v in params.items()})
    data["submit"] = "1"
    data["form_token"] = str(uuid.uuid4())  # a fresh form each time
    return data


def test_new_run_page_shows_open_knobs_with_bounds(student_client, demo_preset, demo_model):
    response = student_client.get(reverse("training:run-create"), {"preset": demo_preset.pk})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="p_network_dim"' in html
    assert 'max="32"' in html  # the demo's rank bound
    assert demo_model.name in html


def test_locked_knob_is_not_offered(student_client, demo_model):
    preset = Preset.objects.create(
        name="Locked demo", architecture="demo", values={"network_dim": 4}, locked=["network_dim"]
    )
    response = student_client.get(reverse("training:run-create"), {"preset": preset.pk})
    assert 'name="p_network_dim"' not in response.content.decode()
    assert 'name="p_learning_rate"' in response.content.decode()


def test_submit_demo_run_queues_it_and_redirects(student_client, student, demo_preset, demo_model):
    make_node()
    dataset = make_image_dataset(student)
    response = student_client.post(
        reverse("training:run-create"),
        form_data(demo_preset, demo_model, dataset, network_dim=8, resolution=32),
    )
    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("training:run-detail", args=[run.pk])
    assert run.owner == student and run.params["network_dim"] == 8
    assert run.status in (RunStatus.QUEUED, RunStatus.ASSIGNED)


def test_evaluate_after_training_comes_from_the_preset_and_the_form(
    student_client, student, demo_preset, demo_model
):
    url = reverse("training:run-create")
    page = student_client.get(url, {"preset": demo_preset.pk}).content.decode()
    assert 'id="id_evaluate_after" checked>' in page
    demo_preset.evaluate_after = False
    demo_preset.save()
    page = student_client.get(url, {"preset": demo_preset.pk}).content.decode()
    assert 'id="id_evaluate_after">' in page
    dataset = make_image_dataset(student)
    checked = {**form_data(demo_preset, demo_model, dataset), "evaluate_after": "on"}
    student_client.post(url, checked)
    student_client.post(url, form_data(demo_preset, demo_model, dataset))
    assert list(TrainingRun.objects.order_by("pk").values_list("evaluate_after", flat=True)) == [
        True,
        False,
    ]


def test_out_of_bounds_knob_is_refused_and_nothing_is_saved(
    student_client, student, demo_preset, demo_model
):
    dataset = make_image_dataset(student)
    response = student_client.post(
        reverse("training:run-create"), form_data(demo_preset, demo_model, dataset, network_dim=500)
    )
    assert response.status_code == 200
    assert "must be at most 32" in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_dataset_with_blocking_lint_is_refused_with_the_reason(
    student_client, student, demo_preset, demo_model
):
    from tests.factories import make_dataset

    empty = make_dataset(owner=student)
    response = student_client.post(
        reverse("training:run-create"), form_data(demo_preset, demo_model, empty)
    )
    assert response.status_code == 200
    assert (
        "cannot be submitted" in response.content.decode()
        or "Dataset:" in response.content.decode()
    )
    assert not TrainingRun.objects.exists()


def test_plan_that_fits_no_gpu_is_refused(student_client, student, sdxl_setup):
    preset, model = sdxl_setup
    make_gpu(node=make_node(), total_mib=2048, name="Tiny")
    dataset = make_image_dataset(student)
    response = student_client.post(
        reverse("training:run-create"), form_data(preset, model, dataset, train_batch_size=16)
    )
    assert response.status_code == 200
    assert "No GPU of the lab can hold this run" in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_plan_preview_lists_gpus_savers_and_lint(student_client, student, sdxl_setup):
    preset, model = sdxl_setup
    make_gpu(node=make_node(name="gpu-a"), total_mib=12288, name="RTX 3060")
    make_gpu(node=make_node(name="gpu-b"), total_mib=4096, name="Small")
    dataset = make_image_dataset(student)
    data = form_data(preset, model, dataset, resolution=1024)  # its images propose less
    del data["submit"]
    response = student_client.get(reverse("training:run-plan"), data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "gpu-a GPU 0" in html and "gpu-b GPU 0" in html
    assert "Memory savers it will use" in html
    assert "Dataset check" in html


def test_other_students_dataset_is_not_offered(
    student_client, other_student, demo_preset, demo_model
):
    theirs = make_image_dataset(other_student, name="bob private")
    response = student_client.get(reverse("training:run-create"))
    assert "bob private" not in response.content.decode()
    response = student_client.post(
        reverse("training:run-create"), form_data(demo_preset, demo_model, theirs)
    )
    assert response.status_code == 200
    assert not TrainingRun.objects.exists()


def test_run_page_shows_command_config_timeline_and_files(student_client, student):
    run = submit_demo(student)
    TrainingRun.objects.filter(pk=run.pk).update(
        argv=["python", "-m", "demo_trainer", "--network_dim", "4", "--out", "/w/10_sks dog"],
        dataset_config="[[datasets]]\nresolution = 32\n",
    )
    artifact = LoraArtifact.objects.create(
        run=run, kind=ArtifactKind.FINAL, file=ContentFile(b"lora-bytes", name="final.safetensors")
    )
    response = student_client.get(reverse("training:run-detail", args=[run.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    # One line a user can paste into a shell: the path with a space is quoted.
    assert "python -m demo_trainer --network_dim 4 --out &#x27;/w/10_sks dog&#x27;" in html
    assert "resolution = 32" in html
    assert "draft → queued" in html
    assert reverse("training:artifact-download", args=[run.pk, artifact.pk]) in html
    assert "/admin/" not in html.split("<main")[1]  # no admin link for students


def test_staff_sees_admin_link(staff_client, student):
    run = submit_demo(student)
    html = staff_client.get(reverse("training:run-detail", args=[run.pk])).content.decode()
    assert reverse("admin:training_trainingrun_change", args=[run.pk]) in html


def test_cancel_queued_run(student_client, student):
    run = submit_demo(student, node=make_node(enabled=False))
    response = student_client.post(reverse("training:run-cancel", args=[run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert run.events.last().actor == student


def test_cancel_finished_run_says_so_and_changes_nothing(student_client, student):
    run = submit_demo(student, node=make_node(enabled=False))
    transition(run, RunStatus.CANCELLED)
    response = student_client.post(reverse("training:run-cancel", args=[run.pk]), follow=True)
    assert "already finished" in response.content.decode()
    assert run.events.count() == 2


def test_cancel_needs_post(student_client, student):
    run = submit_demo(student)
    assert student_client.get(reverse("training:run-cancel", args=[run.pk])).status_code == 405


def test_run_again_makes_a_new_run_with_same_parameters(student_client, student):
    run = submit_demo(student, node=make_node(enabled=False))
    response = student_client.post(reverse("training:run-rerun", args=[run.pk]))
    new = TrainingRun.objects.exclude(pk=run.pk).get()
    assert response["Location"] == reverse("training:run-detail", args=[new.pk])
    assert new.params == run.params and new.rerun_of == run and new.dataset == run.dataset


def test_downloads_serve_the_files(student_client, student):
    run = submit_demo(student)
    artifact = LoraArtifact.objects.create(
        run=run, kind=ArtifactKind.FINAL, file=ContentFile(b"lora-bytes", name="final.safetensors")
    )
    sample = SampleImage.objects.create(run=run, file=ContentFile(b"\x89PNG..", name="s.png"))
    RunLog.objects.create(run=run, seq=1, text="line one\n")
    RunLog.objects.create(run=run, seq=2, text="line two\n")
    response = student_client.get(reverse("training:artifact-download", args=[run.pk, artifact.pk]))
    assert b"".join(response.streaming_content) == b"lora-bytes"
    assert "attachment" in response["Content-Disposition"]
    response = student_client.get(reverse("training:sample-file", args=[run.pk, sample.pk]))
    assert response["Content-Type"] == "image/png"
    response = student_client.get(reverse("training:run-log", args=[run.pk]))
    assert response.content == b"line one\nline two\n"


def test_artifact_of_another_run_is_404(student_client, student):
    run = submit_demo(student)
    other_run = make_run(owner=student)
    artifact = LoraArtifact.objects.create(
        run=other_run, kind=ArtifactKind.FINAL, file=ContentFile(b"x", name="a.safetensors")
    )
    url = reverse("training:artifact-download", args=[run.pk, artifact.pk])
    assert student_client.get(url).status_code == 404


def test_run_list_shows_only_my_runs_and_staff_sees_all(
    student_client, client, student, other_student, staff
):
    mine = submit_demo(student, name="alice run")
    theirs = submit_demo(other_student, name="bob run")
    html = student_client.get(reverse("training:run-list")).content.decode()
    assert "alice run" in html and "bob run" not in html
    client.force_login(staff)
    html = client.get(reverse("training:run-list")).content.decode()
    assert "alice run" in html and "bob run" in html
    assert mine.pk != theirs.pk


def test_run_list_shows_every_run_a_page_at_a_time_keeping_the_filter(student_client, student):
    model = make_base_model()
    runs = [make_run(owner=student, base_model=model, name=f"run {i}") for i in range(56)]
    for run in runs[:3]:
        transition(run, RunStatus.QUEUED)
    url = reverse("training:run-list")
    first = student_client.get(url).content.decode()
    assert first.count("<tr>") == 1 + 50  # the header and a page of runs, newest first
    assert "run 55</a>" in first and "run 5</a>" not in first
    assert "Page 1 of 2" in first and 'href="?page=2"' in first
    second = student_client.get(url, {"page": 2}).content.decode()
    assert second.count("<tr>") == 1 + 6 and "run 5</a>" in second and "← Newer" in second
    assert "#1 in queue" in second  # the oldest runs are the queued ones
    drafts = student_client.get(url, {"status": "draft"}).content.decode()
    assert drafts.count("<tr>") == 1 + 50 and 'href="?page=2&amp;status=draft"' in drafts
    beyond = student_client.get(url, {"page": 99}).content.decode()
    assert "Page 2 of 2" in beyond  # a page past the end shows the last one


def test_sample_prompts_from_the_form_reach_the_run(
    student_client, student, demo_preset, demo_model
):
    make_node()
    dataset = make_image_dataset(student)
    data = form_data(demo_preset, demo_model, dataset, resolution=32)
    data["sample_prompts"] = "  sks red circle \n\nsks blue square\n"
    response = student_client.post(reverse("training:run-create"), data)
    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert run.sample_prompts == "sks red circle\nsks blue square"


def test_sample_prompt_with_options_is_refused_and_nothing_is_saved(
    student_client, student, demo_preset, demo_model
):
    dataset = make_image_dataset(student)
    data = form_data(demo_preset, demo_model, dataset)
    data["sample_prompts"] = "sks circle --w 4096 --h 4096"
    response = student_client.post(reverse("training:run-create"), data)
    assert response.status_code == 200
    assert "Prompt options such as --w or --n are not allowed." in response.content.decode()
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize(
    "caption, trigger",
    [
        ("a dog --w 4096 --h 4096 --s 1000 --d 1 --n ugly", "sks"),
        ("", "sks --w 4096 --h 4096"),  # no caption: the trigger word is the prompt
    ],
)
def test_prompt_options_in_captions_or_trigger_word_never_reach_the_trainer(
    student_client, student, demo_preset, demo_model, caption, trigger, tmp_path
):
    from datasets.models import DatasetImage
    from training.execution import workdir

    node = make_node(work_dir=str(tmp_path / "work"))
    dataset = make_image_dataset(student, images=1)
    DatasetImage.objects.filter(dataset=dataset).update(caption=caption)
    type(dataset).objects.filter(pk=dataset.pk).update(trigger_word=trigger)
    data = form_data(demo_preset, demo_model, dataset, resolution=32)  # empty prompt box
    assert student_client.post(reverse("training:run-create"), data).status_code == 302

    job, _ = workdir.prepare(TrainingRun.objects.get(), node)
    prompts = (
        tmp_path / "work" / job.work_dir.rsplit("/", 1)[1] / "sample_prompts.txt"
    ).read_text()
    assert prompts.count(" --") == 4 and "4096" in prompts  # the words stay, as text
    assert prompts.endswith("--w 32 --h 32 --s 8 --d 42\n")
    assert " --w 4096" not in prompts and " --n" not in prompts


@pytest.mark.parametrize("name, output", [("--seed", "seed-run"), ("-", "lora-run")])
def test_a_run_name_never_becomes_an_option_of_the_trainer(
    student_client, student, demo_preset, demo_model, name, output, tmp_path
):
    from training.execution import workdir

    node = make_node(work_dir=str(tmp_path / "work"))
    data = form_data(demo_preset, demo_model, make_image_dataset(student, images=1))
    data["name"] = name
    assert student_client.post(reverse("training:run-create"), data).status_code == 302
    run = TrainingRun.objects.get()
    assert run.name == name  # shown as typed

    _, built = workdir.prepare(run, node)
    value = built.argv[built.argv.index("--output_name") + 1]
    assert value == f"{output}{run.pk}"
