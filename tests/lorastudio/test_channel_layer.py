"""The default channel layer: one SQLite file that carries messages between processes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull

from lorastudio.channel_layer import SQLiteChannelLayer

SENDER = """
import sys
from asgiref.sync import async_to_sync
from lorastudio.channel_layer import SQLiteChannelLayer
layer = SQLiteChannelLayer(path=sys.argv[1])
for i in range(int(sys.argv[2])):
    async_to_sync(layer.group_send)("run-7", {"type": "run.log", "seq": i + 1, "text": f"line {i}"})
"""


@pytest.fixture
def layer(tmp_path):
    return SQLiteChannelLayer(path=tmp_path / "channels.sqlite3", poll_interval=0.005)


def test_send_and_receive_in_order(layer):
    async def go():
        channel = await layer.new_channel()
        for i in range(3):
            await layer.send(channel, {"type": "x", "n": i, "blob": b"\x00\x01"})
        return [await layer.receive(channel) for _ in range(3)]

    got = async_to_sync(go)()
    assert [m["n"] for m in got] == [0, 1, 2]
    assert got[0]["blob"] == b"\x00\x01"


def test_group_send_reaches_members_only_until_discarded(layer):
    async def go():
        a, b = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("lab", a)
        await layer.group_send("lab", {"type": "first"})
        await layer.group_add("lab", b)
        await layer.group_discard("lab", a)
        await layer.group_send("lab", {"type": "second"})
        return (await layer.receive(a))["type"], (await layer.receive(b))["type"]

    assert async_to_sync(go)() == ("first", "second")


def test_full_channel_raises(tmp_path):
    small = SQLiteChannelLayer(path=tmp_path / "c.sqlite3", capacity=2)

    async def go():
        channel = await small.new_channel()
        await small.send(channel, {"type": "a"})
        await small.send(channel, {"type": "b"})
        with pytest.raises(ChannelFull):
            await small.send(channel, {"type": "c"})

    async_to_sync(go)()


def test_flush_forgets_everything(layer):
    async def go():
        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        await layer.send(channel, {"type": "a"})
        await layer.flush()
        await layer.group_send("g", {"type": "b"})
        await layer.send(channel, {"type": "c"})
        return await layer.receive(channel)

    assert async_to_sync(go)()["type"] == "c"


@pytest.mark.slow
def test_messages_from_another_process_arrive_all_and_in_order(layer):
    count = 300

    async def go():
        channel = await layer.new_channel()
        await layer.group_add("run-7", channel)
        proc = subprocess.Popen([sys.executable, "-c", SENDER, layer.path, str(count)])
        got = [await layer.receive(channel) for _ in range(count)]
        proc.wait(timeout=60)
        return got, proc.returncode

    got, rc = async_to_sync(go)()
    assert rc == 0
    assert [m["seq"] for m in got] == list(range(1, count + 1))


def test_a_locked_database_never_blocks_the_event_loop(layer):
    """Another process holding SQLite's write lock stalls the layer's thread, not the loop."""
    import asyncio
    import sqlite3

    async def go():
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "first"})  # the file and tables exist now
        blocker = sqlite3.connect(layer.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # what a busy worker process's write looks like
        sending = asyncio.ensure_future(layer.send(channel, {"type": "second"}))
        await asyncio.sleep(0.05)  # with SQLite on the loop this would wait out the lock
        still_waiting = not sending.done()
        blocker.execute("COMMIT")
        await sending
        blocker.close()
        return still_waiting, [(await layer.receive(channel))["type"] for _ in range(2)]

    still_waiting, received = async_to_sync(go)()
    assert still_waiting
    assert received == ["first", "second"]
