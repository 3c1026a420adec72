"""An evaluation from request to grid: the service queues it, dispatch places it, the runner
renders it on the node's (fake) ComfyUI or SwarmUI. Failures end the evaluation with a reason
and advice; the run stays succeeded."""

import io
import threading

import pytest
from django.db import connection
from PIL import Image

from tests.factories import make_gpu, make_node
from tests.training.evaluation.conftest import LORA_FINAL, NOT_A_LORA, succeeded_run
from training import scheduler
from training.evaluation import runner
from training.evaluation.services import cancel_evaluation, request_evaluation
from training.models import Evaluation, RunEvent

# The runner closes stale database connections on entry, as a django-q2 task does.
pytestmark = pytest.mark.django_db(transaction=True)


def evaluate(run, **kw) -> Evaluation:
    evaluation = request_evaluation(run, by=run.owner, **kw)
    scheduler.dispatch()
    evaluation.refresh_from_db()
    assert evaluation.status == "assigned", evaluation.status_message
    runner.execute(evaluation.pk)
    evaluation.refresh_from_db()
    return evaluation


def pixels(image) -> bytes:
    with image.file.open("rb") as fh:
        return Image.open(io.BytesIO(fh.read())).tobytes()


def test_renders_every_cell_once_and_the_base_model_once_per_seed_and_prompt(
    finished_run, comfy, folders
):
    evaluation = evaluate(finished_run)
    assert evaluation.status == "succeeded", evaluation.status_message
    images = list(evaluation.images.all())
    # 2 prompts × 2 seeds × (the base + 2 epochs × strengths 0.5, 0.8, 1).
    assert evaluation.total_images == evaluation.done_images == len(images) == 28
    base = [i for i in images if i.strength == 0]
    assert len(base) == 4 and {i.epoch for i in base} == {0} and not any(i.artifact for i in base)
    assert {(i.epoch, i.strength) for i in images if i.strength} == {
        (e, s) for e in (1, 2) for s in (0.5, 0.8, 1.0)
    }
    assert {i.prompt for i in images} == {"a sks dog", "a sks cat"}
    assert all(i.artifact_id for i in images if i.epoch)
    cell = {(i.epoch, i.strength, i.seed, i.prompt_index): i for i in images}
    assert pixels(cell[(0, 0.0, 1, 0)]) != pixels(cell[(2, 1.0, 1, 0)])
    assert pixels(cell[(1, 1.0, 1, 0)]) != pixels(cell[(2, 1.0, 1, 0)])  # epochs differ
    # ComfyUI got names it lists, never paths; the staged copies are gone afterwards.
    lora_names = {w["2"]["inputs"]["lora_name"] for w in comfy.prompts}
    assert all(n.startswith("lorastudio-eval/run") for n in lora_names) and len(lora_names) == 2
    assert {w["1"]["inputs"]["ckpt_name"] for w in comfy.prompts} == {
        "sd15/sd15_random.safetensors"
    }
    assert not list((folders[1] / "lorastudio-eval").glob("*"))
    finished_run.refresh_from_db()
    assert finished_run.status == "succeeded"
    notes = list(
        RunEvent.objects.filter(run=finished_run, kind="evaluation").values_list("note", flat=True)
    )
    assert notes[0].startswith(
        f"Evaluation #{evaluation.pk} requested by alice: epochs 1, 2 (final)"
    )
    assert "running → succeeded" in notes[-1] and "28 images" in notes[-1]


def test_the_base_column_is_the_base_model_after_a_lora_was_applied(finished_run, comfy):
    first = evaluate(finished_run, epochs="last", strengths="0,1", seeds="1", prompts=["a"])
    # The server's weights now carry epoch 2 at strength 1 (its last picture).
    second = evaluate(finished_run, epochs="last", strengths="0,1", seeds="1", prompts=["a"])
    cell = {
        (i.evaluation_id, i.strength): pixels(i)
        for i in (*first.images.all(), *second.images.all())
    }
    assert cell[(second.pk, 0.0)] == cell[(first.pk, 0.0)] != cell[(second.pk, 1.0)]
    assert [w["2"]["inputs"]["strength_model"] for w in comfy.prompts] == [1e-12, 1.0] * 2


def test_chosen_epochs_strengths_seeds_and_typed_prompts(finished_run, comfy):
    evaluation = evaluate(
        finished_run, epochs="last", strengths="1", seeds="7", prompts=["a red sks", " "]
    )
    assert evaluation.status == "succeeded"
    (image,) = evaluation.images.all()
    assert (image.epoch, image.strength, image.seed, image.prompt) == (2, 1.0, 7, "a red sks")
    assert comfy.prompts[0]["6"]["inputs"]["seed"] == 7
    assert comfy.prompts[0]["5"]["inputs"]["width"] == 64  # the run's resolution


def failed(evaluation, reason: str) -> str:
    assert evaluation.status == "failed"
    assert evaluation.failure_reason == reason, evaluation.status_message
    evaluation.run.refresh_from_db()
    assert evaluation.run.status == "succeeded"  # the run itself stays succeeded
    return evaluation.status_message


def test_server_down(finished_run, inference_node):
    inference_node.comfyui_url = "http://127.0.0.1:9"
    inference_node.save()
    message = failed(evaluate(finished_run), "server_down")
    assert "does not answer" in message and "evaluate again from the run page" in message


def test_lora_folder_the_server_does_not_list(finished_run, inference_node, tmp_path, settings):
    settings.LORASTUDIO_EVAL_IMAGE_TIMEOUT_SECONDS = 0.5
    inference_node.inference_lora_dir = str(tmp_path / "elsewhere")
    inference_node.save()
    message = failed(evaluate(finished_run), "lora_not_visible")
    assert "not one ComfyUI reads LoRAs from" in message and "extra_model_paths.yaml" in message


def test_base_model_the_server_does_not_list(finished_run):
    base = finished_run.base_model
    base.checkpoint = "/srv/models/other.safetensors"
    base.save()
    message = failed(evaluate(finished_run), "model_not_visible")
    assert "other.safetensors is not among the 1 files" in message


def test_corrupt_lora_is_a_workflow_error(student, inference_node, comfy):
    run = succeeded_run(student, node=inference_node, lora_files=(NOT_A_LORA, LORA_FINAL))
    message = failed(evaluate(run), "workflow_error")
    assert "deserializing header" in message
    assert Evaluation.objects.get(run=run).images.filter(strength=0).count() == 4  # base ok


def test_timeout(finished_run, comfy, settings):
    settings.LORASTUDIO_EVAL_IMAGE_TIMEOUT_SECONDS = 0.5
    comfy.hang = True
    message = failed(evaluate(finished_run), "timeout")
    assert message.startswith("ComfyUI did not finish an image within 0.5 s")
    assert "LORASTUDIO_EVAL_IMAGE_TIMEOUT_SECONDS" in message


def test_lora_file_gone_from_media(finished_run):
    artifact = finished_run.artifacts.get(kind="epoch")
    evaluation = request_evaluation(finished_run, by=finished_run.owner)
    artifact.file.delete(save=False)
    scheduler.dispatch()
    runner.execute(evaluation.pk)
    evaluation.refresh_from_db()
    assert "is gone" in failed(evaluation, "missing_files")


def test_swarmui_renders_with_its_lora_parameters(student, folders, swarm):
    models, loras = folders
    node = make_node(swarmui_url=swarm.url, lora_dir=str(loras), models_root=str(models))
    make_gpu(node=node)
    run = succeeded_run(student, node=node)
    evaluation = evaluate(run, strengths="0,1", seeds="1", prompts=["a sks dog"])
    assert evaluation.status == "succeeded", evaluation.status_message
    assert evaluation.backend == "swarmui" and evaluation.images.count() == 3
    generated = [body for route, body in swarm.calls if route == "GenerateText2Image"]
    assert [b.get("loraweights") for b in generated] == [None, "1", "1"]
    assert generated[1]["loras"].startswith("lorastudio-eval/run")


@pytest.mark.slow
def test_cancel_while_rendering_stops_between_pictures(student, inference_node, comfy):
    comfy.delay = 0.3
    run = succeeded_run(student, node=inference_node)
    evaluation = request_evaluation(run, by=student)
    scheduler.dispatch()

    def work():
        try:
            runner.execute(evaluation.pk)
        finally:
            connection.close()  # this thread's own (as django-q2 closes a task's)

    worker = threading.Thread(target=work)
    worker.start()
    try:
        while not Evaluation.objects.filter(pk=evaluation.pk, done_images__gte=1).exists():
            worker.join(0.05)
        cancel_evaluation(Evaluation.objects.get(pk=evaluation.pk), by=student)
    finally:
        worker.join(60)
    evaluation.refresh_from_db()
    assert evaluation.status == "cancelled"
    assert 1 <= evaluation.done_images < evaluation.total_images
