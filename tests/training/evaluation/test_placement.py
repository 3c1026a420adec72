"""Evaluations in the queue with training: where one renders, and never beyond memory."""

from datetime import timedelta

from django.utils import timezone

from tests.factories import make_base_model, make_run
from tests.training.evaluation.conftest import succeeded_run
from training import reaper, scheduler
from training.evaluation.services import request_evaluation
from training.execution.memory import ask_uis_to_free
from training.lifecycle import transition
from training.models import Evaluation, GPUNode
from training.nodes import agent


def training(owner, node=None, *, estimate: int, status="queued"):
    """A run needing `estimate` MiB, queued (or on `node`'s GPU 0 when assigned)."""
    run = make_run(
        owner=owner,
        base_model=make_base_model(architecture="sd15", checkpoint="/m/x.safetensors"),
        vram_estimate_mib=estimate,
    )
    transition(run, "queued")
    if status == "assigned":
        transition(run, "assigned", changes={"node": node, "gpu": node.gpus.get(index=0)})
    return run


def queued_evaluation(run) -> Evaluation:
    evaluation = request_evaluation(run, by=run.owner)
    scheduler.dispatch()
    evaluation.refresh_from_db()
    return evaluation


def test_placed_on_its_nodes_inference_gpu(finished_run, inference_node):
    evaluation = queued_evaluation(finished_run)
    assert evaluation.status == "assigned"
    assert (evaluation.node, evaluation.gpu.index) == (inference_node, 0)
    assert "Rendering on gpu-a GPU 0" in finished_run.events.last().note


def test_beside_training_it_fits_in_what_the_runs_estimate_leaves(
    finished_run, inference_node, other_student
):
    run = training(other_student, inference_node, estimate=22000, status="assigned")
    evaluation = queued_evaluation(finished_run)
    assert evaluation.status == "queued"
    assert evaluation.status_message == ("Waiting: gpu-a GPU 0 has 2.5 GB for it, it needs 3.5 GB.")
    transition(run, "cancelled")
    scheduler.dispatch()
    evaluation.refresh_from_db()
    assert evaluation.status == "assigned"


def test_training_beside_an_evaluation_counts_its_memory(
    finished_run, inference_node, other_student
):
    assert queued_evaluation(finished_run).status == "assigned"
    big = training(other_student, estimate=22000)
    scheduler.dispatch()
    big.refresh_from_db()
    assert big.status == "queued"
    assert (
        big.status_message == "Waiting: no GPU with 21.5 GB free; best is gpu-a GPU 0 with 20.5 GB."
    )
    small = training(other_student, estimate=20000)
    scheduler.dispatch()
    small.refresh_from_db()
    assert small.status == "assigned"


def test_one_evaluation_at_a_time_per_node(finished_run, inference_node, other_student):
    assert queued_evaluation(finished_run).status == "assigned"
    second = queued_evaluation(succeeded_run(other_student, node=inference_node))
    assert second.status_message == "Waiting: gpu-a is rendering another evaluation."


def stop_mode(node):
    node.comfyui_unload = "stop"
    node.inference_stop_command = ["true"]
    node.inference_start_command = ["true"]
    node.full_clean()
    node.save()


def test_stop_mode_renders_nothing_while_a_run_trains_there(
    finished_run, inference_node, other_student
):
    stop_mode(inference_node)
    training(other_student, inference_node, estimate=1000, status="assigned")
    evaluation = queued_evaluation(finished_run)
    assert evaluation.status_message == "Waiting: gpu-a's inference server is stopped for training."


def test_stop_mode_trains_nothing_while_an_evaluation_renders(
    finished_run, inference_node, other_student
):
    stop_mode(inference_node)
    evaluation = queued_evaluation(finished_run)
    run = training(other_student, estimate=1000)
    scheduler.dispatch()
    run.refresh_from_db()
    assert run.status == "queued"
    assert run.status_message == f"Waiting: {evaluation} is rendering on gpu-a."


def test_no_free_request_to_comfyui_while_an_evaluation_renders(
    finished_run, inference_node, comfy
):
    said = []
    assert queued_evaluation(finished_run).status == "assigned"
    assert ask_uis_to_free(inference_node, said.append) is False
    assert ("POST", "/free") not in comfy.calls
    assert "renders on this node: ComfyUI/SwarmUI keep their memory" in said[0]


def test_reaper_frees_silent_evaluations_and_leaves_the_run_alone(finished_run, settings):
    evaluation = queued_evaluation(finished_run)
    stale = timezone.now() - timedelta(seconds=settings.LORASTUDIO_STALE_AFTER_SECONDS + 5)
    Evaluation.objects.filter(pk=evaluation.pk).update(heartbeat_at=stale)
    reaper.reap()
    evaluation.refresh_from_db()
    assert evaluation.status == "queued" and evaluation.node is None
    scheduler.dispatch()
    Evaluation.objects.filter(pk=evaluation.pk).update(status="running", heartbeat_at=stale)
    reaper.reap()
    evaluation.refresh_from_db()
    assert (evaluation.status, evaluation.failure_reason) == ("failed", "worker_lost")
    finished_run.refresh_from_db()
    assert finished_run.status == "succeeded"


def test_stop_mode_waits_until_the_server_answers_again(
    finished_run, inference_node, comfy, settings
):
    settings.LORASTUDIO_FAKE_GPUS = "24576:Fake"  # what the node agent reads
    stop_mode(inference_node)
    GPUNode.objects.filter(pk=inference_node.pk).update(inference_stopped=True)
    evaluation = queued_evaluation(finished_run)
    assert evaluation.status_message == "Waiting: gpu-a's inference server is stopped for training."
    agent.beat("gpu-a")  # the server answers, no run trains there: the mark goes
    scheduler.dispatch()
    evaluation.refresh_from_db()
    assert evaluation.status == "assigned"
