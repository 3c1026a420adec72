"""Requesting an evaluation (the one plan path), cancelling it, and "keep this epoch"."""

from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from tests.factories import make_base_model, make_run
from tests.training.evaluation.conftest import LORA_EPOCH_1, LORA_FINAL, succeeded_run
from training.evaluation.options import OptionError
from training.evaluation.planning import checkpoints_of, plan_evaluation
from training.evaluation.services import (
    cancel_evaluation,
    keep_epoch,
    publish_artifact,
    request_after_training,
    request_evaluation,
)
from training.lifecycle import transition
from training.models import Evaluation, RunEvent


def refusal(run, **kw) -> str:
    before = Evaluation.objects.filter(run=run).count()
    with pytest.raises(ValidationError) as info:
        request_evaluation(run, by=run.owner, **kw)
    assert Evaluation.objects.filter(run=run).count() == before  # nothing written
    return " ".join(info.value.messages)


def test_checkpoints_are_the_saved_epochs_then_the_final_lora(finished_run):
    assert [(c.epoch, c.final) for c in checkpoints_of(finished_run)] == [(1, False), (2, True)]
    plan = plan_evaluation(finished_run)
    assert plan.total_images == 28 and not plan.blocking
    assert plan.settings["width"] == 64 and plan.settings["steps"] == 3
    assert plan.vram_mib == finished_run.base_model.spec.inference.vram_mib


def test_only_a_succeeded_run_is_evaluated(student, inference_node):
    run = make_run(owner=student, base_model=make_base_model(architecture="sd15"))
    transition(run, "queued")
    assert "is queued: only a succeeded run's LoRA files are evaluated" in refusal(run)


def test_demo_loras_cannot_be_rendered(student, inference_node):
    run = make_run(owner=student)
    for to in ("queued", "assigned", "preparing", "running", "succeeded"):
        transition(run, to)
    assert "Demo (CPU, built-in toy model) LoRAs cannot be rendered" in refusal(run)


def test_refusals_name_what_is_wrong_and_change_nothing(finished_run, inference_node, settings):
    assert "no LoRA file of epoch 7 (it has 1, 2 (final))" in str(
        pytest.raises(OptionError, request_evaluation, finished_run, epochs="1,7").value
    )
    settings.LORASTUDIO_MAX_EVAL_IMAGES = 10
    assert "28 images is more than 10" in refusal(finished_run)
    settings.LORASTUDIO_MAX_EVAL_IMAGES = 200
    inference_node.comfyui_url = ""
    inference_node.save()
    assert "no node has ComfyUI or SwarmUI" in refusal(finished_run)
    assert not RunEvent.objects.filter(run=finished_run, kind="evaluation").exists()


def test_one_unfinished_evaluation_per_run(finished_run):
    first = request_evaluation(finished_run, by=finished_run.owner)
    assert f"evaluation #{first.pk} of this run is queued" in refusal(finished_run)
    cancel_evaluation(first, by=finished_run.owner)
    assert Evaluation.objects.get(pk=first.pk).status == "cancelled"
    assert request_evaluation(finished_run, by=finished_run.owner).pk != first.pk


def test_students_evaluate_their_own_runs_only(finished_run, other_student, staff):
    with pytest.raises(PermissionDenied):
        request_evaluation(finished_run, by=other_student)
    evaluation = request_evaluation(finished_run, by=staff)
    with pytest.raises(PermissionDenied):
        cancel_evaluation(evaluation, by=other_student)


def test_after_training_follows_the_run_setting_and_its_node(finished_run, inference_node):
    finished_run.evaluate_after = False
    assert request_after_training(finished_run) is None
    finished_run.evaluate_after = True
    evaluation = request_after_training(finished_run)
    assert evaluation.after_training and evaluation.requested_by is None
    # A refusal (here: one is already queued) is written on the timeline, not raised.
    assert request_after_training(finished_run) is None
    assert RunEvent.objects.filter(run=finished_run, note__startswith="Not evaluated").exists()


def test_after_training_renders_at_most_four_epochs(student, inference_node):
    files = [LORA_EPOCH_1[:-1] + bytes([48 + i]) for i in range(6)] + [LORA_FINAL]
    run = succeeded_run(student, node=inference_node, lora_files=files)
    evaluation = request_after_training(run)
    epochs = [c["epoch"] for c in evaluation.checkpoints]
    assert len(epochs) == 4 and epochs[0] == 1 and epochs[-1] == 7


def test_keep_this_epoch_republishes_its_file_and_asks_comfyui_to_reload(finished_run, comfy):
    epoch_1 = finished_run.artifacts.get(kind="epoch")
    final = finished_run.artifacts.get(kind="final")
    published = Path(final.published_path)
    assert published.read_bytes() == LORA_FINAL
    keep_epoch(finished_run, epoch_1, by=finished_run.owner)
    publish_artifact(epoch_1.pk)  # the task its node's worker runs
    assert published.read_bytes() == LORA_EPOCH_1
    epoch_1.refresh_from_db()
    final.refresh_from_db()
    assert epoch_1.published_path == str(published) and final.published_path == ""
    assert comfy.frees == 1  # ComfyUI serves a file replaced in place from its cache until then
    notes = list(RunEvent.objects.filter(run=finished_run).values_list("note", flat=True))
    assert any(
        n.startswith("Keep epoch 1 (walk-000001.safetensors) requested by alice") for n in notes
    )
    assert any(n.startswith(f"Published walk-000001.safetensors as {published}.") for n in notes)
    # Back to the final one.
    keep_epoch(finished_run, final, by=finished_run.owner)
    publish_artifact(final.pk)
    assert published.read_bytes() == LORA_FINAL


def test_keep_this_epoch_refusals(finished_run, other_student, inference_node):
    with pytest.raises(PermissionDenied):
        keep_epoch(finished_run, finished_run.artifacts.first(), by=other_student)
    inference_node.lora_dir = ""
    inference_node.save()
    finished_run.artifacts.update(published_path="")
    finished_run.refresh_from_db()
    with pytest.raises(ValidationError, match="no LoRA publish folder"):
        keep_epoch(finished_run, finished_run.artifacts.first(), by=finished_run.owner)
