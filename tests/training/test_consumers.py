"""Websockets: who may watch a run, live messages from another process, resume without gaps."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from tests.factories import make_gpu, make_node, make_run
from tests.ws_helpers import communicator, session_cookie
from training.models import RunLog

pytestmark = pytest.mark.django_db(transaction=True)

SENDER = """
import importlib, json, sys
from asgiref.sync import async_to_sync
config = json.loads(sys.argv[1])
module, _, name = config["BACKEND"].rpartition(".")
layer = getattr(importlib.import_module(module), name)(**config.get("CONFIG", {}))
group = sys.argv[2]
async_to_sync(layer.group_send)(group, {"type": "run.log", "seq": 1, "text": "from the worker\\n"})
async_to_sync(layer.group_send)(group, {"type": "run.progress", "state": {"id": 0, "step": 3}})
"""


@pytest.fixture
def shared_layer(settings, tmp_path):
    """A layer another process can reach; its settings as JSON for that process.

    The configured channels_redis layer in the PostgreSQL + Redis pass (REDIS_URL set),
    otherwise the default SQLite layer on a file this test owns.
    """
    if not settings.REDIS_URL:
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "lorastudio.channel_layer.SQLiteChannelLayer",
                "CONFIG": {"path": str(tmp_path / "channels.sqlite3"), "poll_interval": 0.005},
            }
        }
    return json.dumps(settings.CHANNEL_LAYERS["default"])


def _connect(path, user):
    cookie = session_cookie(user) if user is not None else None

    async def go():
        comm = communicator(path, cookie)
        connected, _ = await comm.connect()
        first = await comm.receive_json_from(timeout=5) if connected else None
        await comm.disconnect()
        return connected, first

    return async_to_sync(go)()


@pytest.mark.slow
def test_owner_and_staff_receive_messages_sent_from_another_process(shared_layer, student, staff):
    run = make_run(owner=student)

    async def go(cookie):
        comm = communicator(f"/ws/runs/{run.pk}/", cookie)
        connected, _ = await comm.connect()
        assert connected
        state = await comm.receive_json_from(timeout=5)
        assert state["type"] == "state" and state["state"]["id"] == run.pk
        proc = await sync_to_async(subprocess.run)(
            [sys.executable, "-c", SENDER, shared_layer, f"run-{run.pk}"], timeout=60
        )
        assert proc.returncode == 0
        log = await comm.receive_json_from(timeout=5)
        progress = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return log, progress

    for user in (student, staff):
        log, progress = async_to_sync(go)(session_cookie(user))
        assert log == {"type": "log", "chunks": [[1, "from the worker\n"]]}
        assert progress["type"] == "progress" and progress["state"]["step"] == 3


@pytest.mark.parametrize("who", ["other_student", "anonymous"])
def test_other_student_and_anonymous_are_refused(who, student, other_student):
    run = make_run(owner=student)
    user = other_student if who == "other_student" else None
    connected, _ = _connect(f"/ws/runs/{run.pk}/", user)
    assert connected is False


def test_socket_from_a_foreign_origin_is_refused(student):
    run = make_run(owner=student)
    cookie = session_cookie(student)

    async def go():
        comm = communicator(f"/ws/runs/{run.pk}/", cookie, origin=b"http://evil.example")
        connected, _ = await comm.connect()
        return connected

    assert async_to_sync(go)() is False


def test_connect_sends_state_then_log_tail(student):
    run = make_run(owner=student)
    for seq in range(1, 4):
        RunLog.objects.create(run=run, seq=seq, text=f"line {seq}\n")
    cookie = session_cookie(student)

    async def go():
        comm = communicator(f"/ws/runs/{run.pk}/", cookie)
        await comm.connect()
        state = await comm.receive_json_from(timeout=5)
        log = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return state, log

    state, log = async_to_sync(go)()
    assert state["state"]["status"] == "draft"
    assert log["chunks"] == [[1, "line 1\n"], [2, "line 2\n"], [3, "line 3\n"]]


def test_resume_after_dropped_connection_gives_every_line_exactly_once(shared_layer, student):
    run = make_run(owner=student)
    layer = get_channel_layer()
    group = f"run-{run.pk}"
    cookie = session_cookie(student)

    def add(seq):
        RunLog.objects.create(run=run, seq=seq, text=f"line {seq}\n")

    async def live(seq):
        await sync_to_async(add)(seq)
        await layer.group_send(group, {"type": "run.log", "seq": seq, "text": f"line {seq}\n"})

    async def drain(comm, seen):
        while not await comm.receive_nothing(timeout=0.3):
            message = await comm.receive_json_from(timeout=5)
            if message["type"] == "log":
                seen.extend(seq for seq, _ in message["chunks"])

    async def go():
        seen: list[int] = []
        comm = communicator(f"/ws/runs/{run.pk}/", cookie)
        await comm.connect()
        for seq in (1, 2, 3):
            await live(seq)
        await drain(comm, seen)
        await comm.disconnect()  # the connection drops
        for seq in (4, 5):  # lines written while the page was away
            await live(seq)
        comm = communicator(f"/ws/runs/{run.pk}/?after={seen[-1]}", cookie)
        await comm.connect()
        await live(6)
        # A repeated message and a gap: the consumer drops the first and fills the second.
        await layer.group_send(group, {"type": "run.log", "seq": 6, "text": "line 6\n"})
        await sync_to_async(add)(7)
        await live(8)
        # A client that asks again for what it has gets only what it lacks.
        await comm.send_json_to({"type": "resume", "after": 8})
        await comm.send_to(text_data="not json")
        await comm.send_json_to({"type": "cancel"})
        await drain(comm, seen)
        await comm.disconnect()
        return seen

    assert async_to_sync(go)() == [1, 2, 3, 4, 5, 6, 7, 8]


def test_lab_board_socket_sends_the_board_and_refuses_anonymous(student):
    node = make_node(name="gpu-box")
    make_gpu(node=node, name="RTX 4090")

    async def go(cookie):
        comm = communicator("/ws/lab/", cookie)
        connected, _ = await comm.connect()
        message = await comm.receive_json_from(timeout=5) if connected else None
        await comm.disconnect()
        return connected, message

    connected, message = async_to_sync(go)(session_cookie(student))
    assert connected and message["type"] == "board"
    assert "gpu-box" in message["board"] and "RTX 4090" in message["board"]
    assert async_to_sync(go)(None)[0] is False
