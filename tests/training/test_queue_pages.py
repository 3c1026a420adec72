"""Places in the queue on the pages: right after every change to the queue, and read with as
many queries for three times the runs (bench/pages.py times them at 10,000)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_base_model, make_gpu, make_node, make_run, make_user
from tests.queue_helpers import make_image_dataset
from training import scheduler, services
from training.choices import RunStatus
from training.lifecycle import transition
from training.models import Preset, TrainingRun

pytestmark = pytest.mark.django_db


def queued(owner, model, *, priority=0, plan=None):
    """A queued run needing 8 GB, with an estimated duration (as submit stores it)."""
    plan = {"estimate": {"duration_s": 600.0}} if plan is None else plan
    run = make_run(
        owner=owner, base_model=model, vram_estimate_mib=8000, priority=priority, plan=plan
    )
    return transition(run, RunStatus.QUEUED)


def finished(owner, model, gpu, *, hours: float, ago_hours: float = 1):
    """A run that trained `hours` on `gpu` and succeeded `ago_hours` ago."""
    run = make_run(owner=owner, base_model=model, gpu=gpu, node=gpu.node)
    end = timezone.now() - timedelta(hours=ago_hours)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=RunStatus.SUCCEEDED,
        started_at=end - timedelta(hours=hours),
        finished_at=end,
        step=100,
        total_steps=100,
        loss_points=[[50, 0.2], [100, 0.1]],
    )
    return run


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


@pytest.fixture
def sdxl(db):
    preset = Preset.objects.get(name="SDXL, 1024")
    model = make_base_model(name="SDXL base", architecture="sdxl", checkpoint="sdxl.safetensors")
    return preset, model


def add_runs(users, model, gpu, count: int) -> None:
    """`count` queued and `count` finished runs, spread over `users`."""
    for i in range(count):
        owner = users[i % len(users)]
        queued(owner, model, priority=i % 2)
        finished(owner, model, gpu, hours=1 + i % 3, ago_hours=2 + i)


@pytest.mark.parametrize(
    "page", ["dashboard", "run list", "run page", "new-run page", "new-run plan", "admin run list"]
)
def test_pages_make_as_many_queries_for_three_times_the_runs(client, student, staff, sdxl, page):
    preset, model = sdxl
    gpu = make_gpu(node=make_node(enabled=False), total_mib=24576)  # nothing is dispatched
    others = [make_user() for _ in range(3)]
    mine = queued(student, model)
    queued(student, model, plan={})  # submitted before estimates were stored
    dataset = make_image_dataset(student)
    choice = f"?dataset={dataset.pk}&base_model={model.pk}&preset={preset.pk}"
    url, user = {
        "dashboard": (reverse("home"), student),
        "run list": (reverse("training:run-list"), student),
        "run page": (reverse("training:run-detail", args=[mine.pk]), student),
        "new-run page": (reverse("training:run-create") + choice, student),
        "new-run plan": (reverse("training:run-plan") + choice, student),
        "admin run list": (reverse("admin:training_trainingrun_changelist"), staff),
    }[page]
    client.force_login(user)
    add_runs([student, *others], model, gpu, 4)
    client.get(url)  # first request: sessions, content types and the like are read once
    with_n = queries(client, url)
    add_runs([student, *others], model, gpu, 8)
    assert TrainingRun.objects.count() == 3 * 8 + 2
    assert queries(client, url) == with_n


def places_rows(html: str) -> dict[int, str]:
    """Run id → its table row (run list and dashboard)."""
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        if link := re.search(r'href="/runs/(\d+)/"', row):
            rows[int(link[1])] = row
    return rows


def places(html: str) -> dict[int, int]:
    """Run id → the place in the queue its table row shows (run list and dashboard)."""
    found = {}
    for pk, row in places_rows(html).items():
        if place := re.search(r"#(\d+) in queue", row):
            found[pk] = int(place[1])
    return found


def shown(client, run) -> dict[str, int | None]:
    """The place of `run` as its owner's run list, dashboard and run page show it."""
    run_list = places(client.get(reverse("training:run-list")).content.decode())
    dashboard = places(client.get(reverse("home")).content.decode())
    page = client.get(reverse("training:run-detail", args=[run.pk])).content.decode()
    on_page = re.search(r"\(#(\d+) in queue\)", page)
    return {
        "run list": run_list.get(run.pk),
        "dashboard": dashboard.get(run.pk),
        "run page": int(on_page[1]) if on_page else None,
    }


def everywhere(place: int | None) -> dict[str, int | None]:
    return {"run list": place, "dashboard": place, "run page": place}


def test_places_shown_follow_every_change_to_the_queue(client, student, other_student, staff):
    model = make_base_model(architecture="sd15", checkpoint="sd.safetensors")
    client.force_login(student)
    a = queued(student, model)
    b = queued(other_student, model)
    c = queued(student, model)
    assert (shown(client, a), shown(client, c)) == (everywhere(1), everywhere(3))

    services.cancel_run(b, by=other_student)
    assert shown(client, c) == everywhere(2)

    services.reprioritise_run(c, priority=5, by=staff)
    assert (shown(client, c), shown(client, a)) == (everywhere(1), everywhere(2))

    # Fair share: `student` trained 10 hours this week, so a newcomer's run goes before a.
    finished(student, model, make_gpu(node=make_node(enabled=False)), hours=10)
    d = queued(other_student, model)
    assert shown(client, a) == everywhere(3)
    assert scheduler.queue_position(d) == 2

    # A GPU comes online: the first run in the queue takes it and leaves the queue.
    make_gpu(node=make_node(), total_mib=24576)
    assert scheduler.dispatch() == [c.pk]
    assert shown(client, c) == everywhere(None)
    assert shown(client, a) == everywhere(2)
    assert scheduler.queue_positions() == {d.pk: 1, a.pk: 2}
    # Each waits for the runs before it on the one GPU (10 minutes each, as estimated).
    page = client.get(reverse("training:run-detail", args=[a.pk])).content.decode()
    assert "starts in about 20 min" in page
    row = places_rows(client.get(reverse("home")).content.decode())[a.pk]
    assert "#2 in queue" in row and "starts in about 20 min" in row


def test_pages_read_the_queue_in_the_order_dispatch_takes_it(student, other_student, staff):
    model = make_base_model(architecture="sd15", checkpoint="sd.safetensors")
    heavy, light, third = student, other_student, make_user()
    finished(heavy, model, make_gpu(node=make_node(enabled=False)), hours=5)
    finished(third, model, make_gpu(node=make_node(enabled=False)), hours=2, ago_hours=200)
    runs = [queued(owner, model, priority=p) for owner in (heavy, light, third) for p in (0, 3)]
    # Two runs that joined the queue at the same moment: the older id goes first.
    same = timezone.now() - timedelta(minutes=5)
    TrainingRun.objects.filter(pk__in=[runs[0].pk, runs[2].pk]).update(queued_at=same)
    # A run sent back to the queue keeps its first queued_at; one without counts from creation.
    TrainingRun.objects.filter(pk=runs[5].pk).update(queued_at=None)
    dispatch_order = [run.pk for run in scheduler.queue_order()]
    assert [row[0] for row in scheduler.queued_in_order()] == dispatch_order
    assert list(scheduler.queue_positions()) == dispatch_order
    assert dispatch_order[:3] == [runs[3].pk, runs[5].pk, runs[1].pk]  # priority 3, by share
