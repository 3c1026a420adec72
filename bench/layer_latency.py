"""Trainer line → websocket receiver latency through the configured channel layer.

Run: .venv/bin/python bench/layer_latency.py [--lines 200]
(under ./scripts/with_redis.sh this measures channels_redis; bench/run_all.py does that)

A separate process, standing in for the node's worker, sends one `run.log` message per
"trainer line" to a run's group with `async_to_sync(layer.group_send)`, as the runner does,
at about 20 lines/s; this process receives them the way a RunConsumer does (a group member
channel) and prints p50/p95 of send → receive.
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
import sys, time, django
django.setup()
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
layer = get_channel_layer()
time.sleep(0.5)
for i in range(int(sys.argv[1])):
    async_to_sync(layer.group_send)("bench-run", {"type": "run.log", "seq": i + 1,
                                                  "text": f"line {i}", "sent": time.time()})
    time.sleep(0.05)
"""


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200, help="lines to send")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lorastudio.settings")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("LORASTUDIO_DATA_DIR", tempfile.mkdtemp(prefix="bench-layer-"))
    import django

    django.setup()
    from channels.layers import get_channel_layer
    from django.conf import settings

    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]

    async def go() -> list[float]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add("bench-run", channel)
        proc = subprocess.Popen(
            [sys.executable, "-c", SENDER, str(args.lines)],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        out = []
        try:
            for _ in range(args.lines):
                message = await asyncio.wait_for(layer.receive(channel), timeout=30)
                out.append(time.time() - message["sent"])
        finally:
            proc.wait()
        return out

    values = asyncio.run(go())
    print(
        f"trainer line → websocket group member ({backend}, other process), "
        f"{len(values)} lines: p50 {statistics.median(values) * 1000:.1f} ms, "
        f"p95 {pct(values, 0.95) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
