"""A lab on one machine: two GPU nodes and a web server sharing PostgreSQL and Redis.

Each node is what a GPU machine runs (docs/design.md, "How a run flows"): `manage.py qcluster`
(its cluster name is the node name) and `manage.py node_agent`, with fake GPUs of different
sizes. The web server is daphne serving lorastudio.asgi. Runs are placed by fit, and a
websocket client connected through daphne gets the live log of a run on each node, sent by
that node's worker through channels_redis.

Runs only in the PostgreSQL + Redis pass of scripts/test.sh (the other passes ignore this
file): several processes need one database and one Redis.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import pytest
import websockets
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings as django_settings

from tests.factories import make_base_model
from tests.queue_helpers import (
    cluster_env,
    fake_sdscripts,
    free_port,
    logs_text,
    make_image_dataset,
    port_open,
    start_process,
    stop_process,
    submit_demo,
)
from tests.ws_helpers import session_cookie
from training import services
from training.choices import RunStatus
from training.models import GPUNode, TrainingRun

_ON_POSTGRES = django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not (_ON_POSTGRES and django_settings.REDIS_URL),
        reason="needs DATABASE_URL on PostgreSQL and REDIS_URL (the PostgreSQL + Redis pass "
        "of scripts/test.sh: scripts/with_postgres.sh scripts/with_redis.sh)",
    ),
]

DEADLINE_S = 150
NODES = {"mn-small": "8192:Small 8G", "mn-big": "49152:Big 48G"}
BIG_NEED_MIB, SMALL_NEED_MIB = 30000, 6000
FLOOD_LINES = 200


def _wait(predicate, what: str, procs: dict, log_paths) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        dead = [name for name, proc in procs.items() if proc.poll() is not None]
        if dead or time.monotonic() > deadline:
            why = f"{', '.join(dead)} exited" if dead else "timed out"
            pytest.fail(f"{why} waiting for {what}\n{logs_text(log_paths, 3000)}")
        time.sleep(0.2)


@pytest.fixture
def lab(tmp_path, transactional_db):
    """Both nodes (qcluster + node_agent each) and daphne, all on this test's database.

    Yields (daphne port, processes by name, log paths); every process group is killed after.
    """
    procs: dict = {}
    logs = []

    def start(name: str, argv: list[str], env: dict) -> None:
        logs.append(tmp_path / f"{name}.log")
        procs[name] = start_process(argv, env, logs[-1])

    port = free_port()
    try:
        for node, gpus in NODES.items():
            env = cluster_env(
                node,
                fake_gpus=gpus,
                LORASTUDIO_HEARTBEAT_SECONDS="1",
                FAKE_TRAINER_LINES=str(FLOOD_LINES),
                LORASTUDIO_TRAINER_ENV="FAKE_TRAINER_*",  # beyond the trainer's allow-list
            )
            start(f"qcluster-{node}", [sys.executable, "manage.py", "qcluster"], env)
            start(f"agent-{node}", [sys.executable, "manage.py", "node_agent"], env)
        web = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        start(
            "daphne",
            [*web, "lorastudio.asgi:application"],
            cluster_env("mn-web", LORASTUDIO_DB_PERSISTENT="False"),
        )
        _wait(lambda: port_open(port), "daphne to listen", procs, logs)
        _wait(
            lambda: (
                GPUNode.objects.online()
                .filter(name__in=NODES, gpus__isnull=False)
                .distinct()
                .count()
                == len(NODES)
            ),
            "both node agents to register their GPUs",
            procs,
            logs,
        )
        yield port, procs, logs
    finally:
        for proc in procs.values():
            stop_process(proc)


async def _follow(port: int, run_id: int, cookie: str, approved: asyncio.Event) -> list[dict]:
    """Watch ws/runs/<id>/ through daphne until the run ends; return every message."""
    url = f"ws://127.0.0.1:{port}/ws/runs/{run_id}/"
    messages: list[dict] = []
    async with websockets.connect(
        # The page's origin as a browser sends it: scheme, host and the port it reached.
        url,
        origin=f"http://127.0.0.1:{port}",
        additional_headers={"Cookie": cookie},
    ) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE_S))
        messages.append(first)
        approved.set()  # tell the test this client is in the run's group
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE_S))
            messages.append(message)
            if message["type"] == "state" and message["state"]["is_terminal"]:
                return messages


def _log_text(messages: list[dict]) -> str:
    return "".join(text for m in messages if m["type"] == "log" for _, text in m["chunks"])


def test_runs_land_on_nodes_that_fit_and_stream_their_logs_through_daphne(
    lab, student, staff, settings, tmp_path
):
    port, procs, logs = lab
    settings.LORASTUDIO_REQUIRE_APPROVAL = True  # runs wait until every client listens
    settings.LORASTUDIO_MAX_ACTIVE_RUNS_PER_USER = 4  # the student's four runs wait together
    scripts = fake_sdscripts(tmp_path / "sd-scripts", "flood")
    GPUNode.objects.filter(name__in=NODES).update(
        sdscripts_dir=str(scripts), sdscripts_python=sys.executable
    )
    checkpoint = tmp_path / "sd15.safetensors"
    checkpoint.write_bytes(b"x")
    base = make_base_model(architecture="sd15", checkpoint=str(checkpoint))
    dataset = make_image_dataset(student)
    runs = {}
    for label, need in (("big", BIG_NEED_MIB), ("small", SMALL_NEED_MIB)):
        run = services.submit_run(student, dataset=dataset, base_model=base, params={})
        # A fixed need: dispatch would plan a planner-made run again for each GPU.
        TrainingRun.objects.filter(pk=run.pk).update(
            vram_estimate_mib=need, plan={**run.plan, "planner": False}
        )
        runs[label] = run
    # Demo runs take no GPU: one demo slot per node, so the two go to different nodes.
    demo_base = make_base_model(architecture="demo", name="demo base")
    for label in ("demo-1", "demo-2"):
        runs[label] = submit_demo(
            student, node=GPUNode.objects.first(), dataset=dataset, base_model=demo_base
        )
    assert {r.status for r in runs.values()} == {RunStatus.PENDING_APPROVAL}
    cookie = session_cookie(student)

    async def scenario():
        listening = {label: asyncio.Event() for label in runs}
        followers = {
            label: asyncio.create_task(_follow(port, run.pk, cookie, listening[label]))
            for label, run in runs.items()
        }
        await asyncio.wait_for(
            asyncio.gather(*(event.wait() for event in listening.values())), DEADLINE_S
        )
        # The big run first: only the 48 GB GPU holds it. The small run then fits either
        # GPU and best fit keeps the big one free, so it goes to the 8 GB GPU.
        for label in ("big", "small", "demo-1", "demo-2"):
            await sync_to_async(services.approve_run)(runs[label], by=staff)
        done = await asyncio.gather(*followers.values(), return_exceptions=True)
        return dict(zip(followers, done, strict=True))

    seen = async_to_sync(scenario)()
    failures = {
        label: repr(result) for label, result in seen.items() if isinstance(result, Exception)
    }
    assert not failures, f"{failures}\n{logs_text(logs, 3000)}"

    ended = {
        label: TrainingRun.objects.select_related("node", "gpu").get(pk=r.pk)
        for label, r in runs.items()
    }
    for label, run in ended.items():
        assert run.status == RunStatus.SUCCEEDED, (
            f"{label}: {run.status_message}\n{logs_text(logs, 3000)}"
        )
    placed = {label: (run.node.name, run.gpu and run.gpu.total_mib) for label, run in ended.items()}
    assert placed["big"] == ("mn-big", 49152), placed  # the only GPU that holds it
    assert placed["small"] == ("mn-small", 8192), placed  # best fit
    assert {placed["demo-1"][0], placed["demo-2"][0]} == set(NODES), placed

    for label, run in ended.items():
        messages = seen[label]
        text = _log_text(messages)
        # Everything after the first state message came live: the run was still waiting
        # for approval when the client connected, so it had no log yet.
        assert (
            messages[0]["type"] == "state" and messages[0]["state"]["status"] == "pending_approval"
        )
        statuses = [m["state"]["status"] for m in messages if m["type"] == "state"]
        assert "running" in statuses and statuses[-1] == "succeeded", (label, statuses)
        assert f"run-{run.pk}" in text, (label, text[-2000:])
        if label.startswith("demo"):
            assert "running training / 学習開始" in text and "epoch 2/2" in text
        else:
            assert f"flood line {FLOOD_LINES} of {FLOOD_LINES}" in text
        # The database holds the same log the client saw, each chunk once.
        stored = "".join(run.log_chunks.order_by("seq").values_list("text", flat=True))
        assert text == stored, label
