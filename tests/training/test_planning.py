"""One plan path: `train --dry-run` shows what a real submit queues and the runner writes."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.factories import make_base_model, make_gpu, make_node
from tests.queue_helpers import make_image_dataset
from training.execution import workdir
from training.models import Preset, TrainingRun
from training.planning import RUN_KEY_PLACEHOLDER

pytestmark = pytest.mark.django_db


@pytest.fixture
def lab(tmp_path, settings):
    """One online SD 1.5 node with a 24 GB GPU, the model's file and an sd-scripts folder."""
    settings.LORASTUDIO_GPU_BACKEND = "fake"
    models = tmp_path / "models"
    models.mkdir()
    (models / "sd15.safetensors").write_bytes(b"weights")
    sdscripts = tmp_path / "sd-scripts"
    sdscripts.mkdir()
    node = make_node(
        name="gpu-a",
        models_root=str(models),
        sdscripts_dir=str(sdscripts),
        sdscripts_python="/opt/venv/bin/python",
        work_dir=str(tmp_path / "work"),
    )
    make_gpu(node=node, total_mib=24576)
    model = make_base_model(name="SD15", architecture="sd15", checkpoint="sd15.safetensors")
    preset = Preset.objects.get(name="SD 1.5, 512")
    return node, model, preset


def train(*args) -> str:
    out = StringIO()
    call_command("train", *args, stdout=out)
    return out.getvalue()


def args_for(dataset, user, *extra) -> list[str]:
    return [
        "--dataset", str(dataset.pk), "--base-model", "SD15", "--preset", "SD 1.5, 512",
        "--owner", user.username, "--name", "dogs", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("persona", ["student", "staff"])
def test_dry_run_and_submit_give_the_same_verdict_command_toml_and_prompts(
    request, persona, lab, student
):
    node, _, _ = lab
    user = request.getfixturevalue(persona)
    dataset = make_image_dataset(student, images=3)  # the student's; staff see all datasets
    args = args_for(dataset, user, "--set", "network_dim=8", "--set", "max_train_epochs=2")

    dry = json.loads(train(*args, "--dry-run", "--json"))
    assert dry["verdict"] == "ok" and dry["blocking"] == []
    assert dry["node"] == node.name

    answer = json.loads(train(*args, "--json"))
    run = TrainingRun.objects.get(pk=answer["run"])
    assert run.owner == user and run.status == "queued"
    assert run.params == dry["params"]
    # The same plan, estimate included (made a moment later: only its clock differs).
    stored = {**run.plan, "estimate": {**run.plan["estimate"], "made_at": None}}
    assert stored == {k: v for k, v in dry["vram"].items() if k != "savers"} | {
        "savers": [{k: v for k, v in s.items() if k != "changes"} for s in dry["vram"]["savers"]],
        "estimate": {**dry["vram"]["estimate"], "made_at": None},
    }

    job, built = workdir.prepare(run, node)  # what the runner writes on that node
    key = str(run.pk)
    assert built.argv == [a.replace(RUN_KEY_PLACEHOLDER, key) for a in dry["argv"]]
    assert built.dataset_config == dry["dataset_config"].replace(RUN_KEY_PLACEHOLDER, key)
    assert built.sample_prompts == dry["sample_prompts"] != ""
    # The image folder the plan showed is the folder the runner exported the images to.
    image_dir = next(line for line in built.dataset_config.splitlines() if "image_dir" in line)
    folder = image_dir.split("=", 1)[1].strip().strip('"')
    assert sorted(p.suffix for p in Path(folder).iterdir()).count(".png") == 3


@pytest.mark.parametrize(
    "persona, extra, refused",
    [
        ("student", ["--set", "mixed_precision=no"], "mixed_precision: locked by the preset"),
        ("student", ["--set", "train_batch_size=16"], "train_batch_size: must be at most 4"),
        ("staff", ["--set", "mixed_precision=no"], None),
        ("staff", ["--set", "train_batch_size=16"], None),
    ],
)
def test_dry_run_refuses_exactly_what_submit_refuses(
    request, persona, extra, refused, lab, student
):
    user = request.getfixturevalue(persona)
    args = args_for(make_image_dataset(student, images=2), user, *extra)
    if refused:
        with pytest.raises(CommandError, match=refused):
            train(*args, "--dry-run", "--json")
        with pytest.raises(CommandError, match=refused):
            train(*args)
        assert TrainingRun.objects.count() == 0
    else:
        dry = json.loads(train(*args, "--dry-run", "--json"))
        run = TrainingRun.objects.get(pk=json.loads(train(*args, "--json"))["run"])
        assert dry["verdict"] == "ok" and run.params == dry["params"]


def test_a_dataset_without_images_is_refused_by_both_with_the_page_s_reason(lab, student):
    from tests.factories import make_dataset

    args = args_for(make_dataset(owner=student), student)
    dry = json.loads(train(*args, "--dry-run", "--json"))
    assert dry["verdict"] == "refused"
    assert dry["blocking"] == ["Dataset: The dataset has no images. Upload some images."]
    with pytest.raises(CommandError, match="The dataset has no images"):
        train(*args)
    assert TrainingRun.objects.count() == 0


def test_an_offline_node_s_tokenizer_cache_and_environment_reach_the_command(
    lab, student, tmp_path
):
    node, _, _ = lab
    node.tokenizer_cache_dir = str(tmp_path / "tokenizers")
    node.trainer_env = {"HF_HUB_OFFLINE": "1"}
    node.save()
    args = args_for(make_image_dataset(student, images=1), student)
    dry = json.loads(train(*args, "--dry-run", "--json"))
    argv = dry["argv"]
    assert argv[argv.index("--tokenizer_cache_dir") + 1] == str(tmp_path / "tokenizers")
    run = TrainingRun.objects.get(pk=json.loads(train(*args, "--json"))["run"])
    _, built = workdir.prepare(run, node)
    assert built.env["HF_HUB_OFFLINE"] == "1"


def test_an_optimizer_no_node_can_import_is_refused_and_not_offered(lab, student, client):
    from django.urls import reverse

    from training.scheduler import dispatch

    node, model, preset = lab
    node.engine_modules = {"bitsandbytes": True, "dadaptation": False, "prodigyopt": True}
    node.save()
    args = [*args_for(make_image_dataset(student, images=1), student)]
    args += ["--set", "optimizer_type=DAdaptAdam", "--set", "learning_rate=1.0"]
    dry = json.loads(train(*args, "--dry-run", "--json"))
    assert dry["verdict"] == "refused"
    assert "pip install dadaptation" in dry["blocking"][0]
    client.force_login(student)
    page = client.get(reverse("training:run-create"), {"preset": preset.pk}).content.decode()
    assert 'value="Prodigy"' in page and 'value="DAdaptAdam"' not in page

    other = make_node(name="gpu-b", engine_modules={"dadaptation": True})
    make_gpu(node=other, total_mib=24576)
    assert json.loads(train(*args, "--dry-run", "--json"))["verdict"] == "ok"
    run = TrainingRun.objects.get(pk=json.loads(train(*args, "--json"))["run"])
    dispatch()
    run.refresh_from_db()
    assert (run.status, run.node_id) == ("assigned", other.pk)  # only gpu-b can import it
