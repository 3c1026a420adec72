"""GPU time and energy from the node agent's power readings (the fake NVML backend's
`@WATTS`), and usage per user and week on the usage page and the dashboard."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import make_run
from training.lifecycle import transition
from training.models import GPU, TrainingRun
from training.nodes import agent

pytestmark = pytest.mark.django_db
NODE = "power-node"
T0 = timezone.now().replace(microsecond=0)


def _at(seconds: float):
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def gpus(settings):
    """Two fake GPUs drawing 250 W and 400 W, registered by the agent's first beat."""
    settings.LORASTUDIO_GPU_BACKEND = "fake"
    settings.LORASTUDIO_FAKE_GPUS = "24576@250:RTX 4090, 49152@400:RTX 6000"
    node = agent.beat(NODE, now=_at(0))
    return node, list(GPU.objects.filter(node=node).order_by("index"))


def _holding(owner, node, gpu):
    """A running run on `gpu` (None: the CPU demo slot), moved there through the life cycle."""
    run = make_run(owner=owner, node=node, gpu=gpu)
    for to in ("queued", "assigned", "preparing", "running"):
        transition(run, to)
    return run


def _beats(*seconds):
    for s in seconds:
        agent.beat(NODE, now=_at(s))


def test_power_readings_become_gpu_seconds_and_watt_hours(gpus, student):
    node, (first, second) = gpus
    run = _holding(student, node, first)
    other = _holding(student, node, second)

    _beats(10, 20, 25)

    run.refresh_from_db()
    other.refresh_from_db()
    # The first reading starts the count; then 10 s and 5 s at 250 W (and 400 W).
    assert run.gpu_seconds == pytest.approx(15)
    assert run.energy_wh == pytest.approx(250 * 15 / 3600)  # 1.0417 Wh
    assert other.energy_wh == pytest.approx(400 * 15 / 3600)  # 1.6667 Wh
    assert run.power_sampled_at == _at(25)


def test_the_same_instant_is_never_counted_twice_and_a_long_gap_is_not_guessed(
    gpus, student, settings
):
    settings.LORASTUDIO_STALE_AFTER_SECONDS = 30
    node, (gpu, _) = gpus
    run = _holding(student, node, gpu)
    _beats(10, 20, 20, 19)  # a repeat and a clock step back add nothing
    _beats(200)  # the agent was away for 3 minutes: not counted, the count starts again
    _beats(204)
    run.refresh_from_db()
    assert run.gpu_seconds == pytest.approx(10 + 4)
    assert run.energy_wh == pytest.approx(250 * 14 / 3600)


def test_a_finished_run_and_an_idle_gpu_count_nothing(gpus, student):
    node, (gpu, idle) = gpus
    run = _holding(student, node, gpu)
    _beats(10, 20)
    transition(run, "succeeded")
    _beats(30, 40)
    run.refresh_from_db()
    assert run.gpu_seconds == pytest.approx(10)
    assert not TrainingRun.objects.filter(gpu=idle).exists()


def test_a_cpu_demo_run_holds_no_gpu_and_counts_nothing(gpus, student):
    node, _ = gpus
    run = _holding(student, node, None)
    _beats(10, 20)
    run.refresh_from_db()
    assert (run.gpu_seconds, run.energy_wh) == (0, 0)


@pytest.fixture
def used(gpus, student, other_student, settings):
    """alice's run held the 250 W GPU for 12 minutes this week, bob's the 400 W one for 6."""
    settings.LORASTUDIO_STALE_AFTER_SECONDS = 600
    settings.LORASTUDIO_COST_PER_KWH = 2.0
    settings.LORASTUDIO_COST_CURRENCY = "EUR"
    node, (first, second) = gpus
    mine = _holding(student, node, first)
    theirs = _holding(other_student, node, second)
    _beats(1, 361)
    transition(theirs, "succeeded")
    _beats(721)
    return mine, theirs


def _cells(page: str, table: str, user: str) -> list[str]:
    import re

    body = page[page.index(f'id="{table}"') :]
    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", body, re.S) if f">{user}<" in r)
    return re.findall(r"<t[dh]>(.*?)</t[dh]>", row)


def test_staff_see_every_users_usage_with_its_cost(used, staff_client):
    page = staff_client.get("/usage/").content.decode()
    # user, runs, GPU hours, kWh, cost: 720 s × 250 W = 50 Wh; 360 s × 400 W = 40 Wh.
    assert _cells(page, "usage-users", "alice") == ["alice", "1", "0.20", "0.050", "0.10"]
    assert _cells(page, "usage-users", "bob") == ["bob", "1", "0.10", "0.040", "0.08"]
    assert "<th>0.30</th><th>0.090</th><th>0.18</th>" in page.replace("\n", "")
    assert "Cost (EUR)" in page


def test_a_student_sees_only_their_own_usage(used, student_client):
    page = student_client.get("/usage/").content.decode()
    assert _cells(page, "usage-weeks", "alice")[2:] == ["1", "0.20", "0.050", "0.10"]
    assert ">bob<" not in page


def test_the_dashboard_shows_the_students_gpu_use_per_week(used, student_client):
    page = student_client.get("/").content.decode()
    section = page[page.index('id="my-usage"') :]
    assert "<td>0.20</td><td>0.050</td><td>0.10</td>" in section


def test_a_bad_number_of_weeks_is_said_and_the_default_shown(used, student_client):
    response = student_client.get("/usage/?weeks=10000")
    assert response.status_code == 200
    assert "weeks is a whole number from 1 to 104" in response.content.decode()


def test_usage_counts_a_run_in_the_week_it_started(gpus, student):
    from training.energy import weekly_usage

    node, (gpu, _) = gpus
    run = _holding(student, node, gpu)
    TrainingRun.objects.filter(pk=run.pk).update(
        started_at=timezone.now() - timedelta(weeks=3), gpu_seconds=3600, energy_wh=300
    )
    rows = weekly_usage(TrainingRun.objects.all(), weeks=4)
    assert [(r.username, r.runs, r.gpu_hours, r.energy_kwh) for r in rows] == [
        ("alice", 1, 1.0, 0.3)
    ]
    assert weekly_usage(TrainingRun.objects.all(), weeks=2) == []
