"""Trainer line → live client latency, and how fast the runner's reading path drains a flood.

Run: .venv/bin/python bench/log_latency.py [--lines 200] [--flood 100000]

1. Latency: a separate process (standing in for the node's worker) sends one `run.log`
   message per "trainer line" through the default channel layer (SQLite file, see
   lorastudio/channel_layer.py) at about 20 lines/s; this process receives them the way a
   RunConsumer does (group member channel) and prints p50/p95 of send → receive. Websocket
   framing on localhost adds well under a millisecond on top.
2. Drain: tests/fake_trainers/flood.py prints N lines, each followed by a "\\r" tqdm bar on
   stderr; it runs as a `TrainerProcess` (the runner's own pipe readers) and is split with
   `progress.StreamSplitter` (the runner's path minus its batched RunLog insert every 0.5 s),
   and the lines/s drained is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SENDER = """
import sys, time
from asgiref.sync import async_to_sync
from lorastudio.channel_layer import SQLiteChannelLayer
layer = SQLiteChannelLayer(path=sys.argv[1])
for i in range(int(sys.argv[2])):
    async_to_sync(layer.group_send)("run-1", {"type": "run.log", "seq": i + 1,
                                              "text": f"line {i}", "sent": time.time()})
    time.sleep(0.05)
"""


def latency(lines: int) -> list[float]:
    """Seconds from send (other process) to receive (this process), per line."""
    from lorastudio.channel_layer import SQLiteChannelLayer

    path = Path(tempfile.mkdtemp(prefix="latency-")) / "channels.sqlite3"
    layer = SQLiteChannelLayer(path=path)

    async def go():
        channel = await layer.new_channel()
        await layer.group_add("run-1", channel)
        proc = subprocess.Popen(
            [sys.executable, "-c", SENDER, str(path), str(lines)],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        out = []
        for _ in range(lines):
            message = await layer.receive(channel)
            out.append(time.time() - message["sent"])
        proc.wait()
        return out

    return asyncio.run(go())


def drain(lines: int) -> tuple[int, float]:
    """(lines read, seconds) for a flooding trainer through the runner's reading path."""
    from training.execution.process import TrainerProcess

    start = time.perf_counter()
    flood = [sys.executable, str(ROOT / "tests" / "fake_trainers" / "flood.py")]
    trainer = TrainerProcess(flood, cwd=str(ROOT), command_env={"FAKE_TRAINER_LINES": str(lines)})
    count = 0
    while not trainer.finished():
        count += sum(1 for _name, p in trainer.pieces(timeout=0.1) if p.kind == "line")
    trainer.wait()
    return count, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200, help="lines for the latency test")
    parser.add_argument("--flood", type=int, default=100000, help="lines the flood prints")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lorastudio.settings")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("LORASTUDIO_DATA_DIR", tempfile.mkdtemp(prefix="bench-"))
    import django

    django.setup()

    values = sorted(latency(args.lines))
    p95 = values[max(0, int(round(0.95 * len(values))) - 1)]
    print(
        f"default layer (SQLite file), other process → receiver, {len(values)} lines: "
        f"p50 {statistics.median(values) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
        f"max {values[-1] * 1000:.1f} ms"
    )
    count, seconds = drain(args.flood)
    print(
        f"runner reading path, flood of {args.flood} lines (+ a \\r bar per line): "
        f"{count} lines in {seconds:.2f} s = {count / seconds:,.0f} lines/s"
    )


if __name__ == "__main__":
    main()
