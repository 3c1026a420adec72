"""The dashboard: my runs with their queue place and wait reason, my datasets, the lab board."""

from __future__ import annotations

from django.urls import reverse

from tests.factories import make_dataset, make_gpu, make_node
from tests.queue_helpers import submit_demo
from training.choices import RunStatus
from training.lifecycle import transition
from training.models import TrainingRun


def test_dashboard_shows_my_runs_queue_place_and_reason(student_client, student, other_student):
    offline = make_node(name="off", enabled=False)
    mine = submit_demo(student, node=offline, name="alice lora")
    submit_demo(other_student, node=offline, name="bob lora")
    make_dataset(owner=student, name="my cats")
    html = student_client.get(reverse("home")).content.decode()
    mine.refresh_from_db()
    assert "alice lora" in html and "bob lora" not in html
    assert "in queue" in html
    assert mine.status_message and mine.status_message in html
    assert "my cats" in html


def test_lab_board_shows_gpu_memory_split_and_the_run_on_it(student_client, student, other_student):
    node = make_node(name="gpu-box")
    gpu = make_gpu(
        node=node,
        name="RTX 4090",
        total_mib=24000,
        free_mib=12000,
        used_mib=12000,
        used_by_others_mib=4000,
        utilization_pct=87,
        temperature_c=66,
    )
    run = submit_demo(other_student, node=node)
    TrainingRun.objects.filter(pk=run.pk).update(gpu=gpu, node=node, status="running")
    html = student_client.get(reverse("training:lab-board")).content.decode()
    assert "gpu-box" in html and "RTX 4090" in html
    assert "training 8000" in html and "others 4000" in html and "free 12000" in html
    assert "87 %" in html and "66 °C" in html
    assert f"Run #{run.pk}" in html
    # Another student's run is shown, but not linked.
    assert reverse("training:run-detail", args=[run.pk]) not in html


def test_lab_board_shows_a_demo_run_on_its_node(student_client, student):
    node = make_node(name="cpu-box")
    run = submit_demo(student, node=node)
    transition(run, RunStatus.ASSIGNED, changes={"node": node})
    html = student_client.get(reverse("home")).content.decode()
    assert "cpu-box" in html
    assert "CPU demo" in html and reverse("training:run-detail", args=[run.pk]) in html
