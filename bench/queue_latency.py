"""Queue latency on the default stack: submit → trainer process start, and the idle gap.

Run: .venv/bin/python bench/queue_latency.py [--runs 20] [--pairs 5]

A throw-away data folder gets a fresh SQLite database; `manage.py qcluster` (ORM broker,
poll LORASTUDIO_Q_POLL, default 0.05 s) and `manage.py node_agent` run as on a real node
with one fake 24 GB GPU. The "trainer" is a fake sd-scripts `train_network.py` that writes
the time it started and the time it ended, and a final LoRA, so only queue overhead is
measured (dispatch on commit, broker pick-up, runner preparation and dataset export, Popen).

1. Idle node: submit one run, wait until it ends, repeat; prints p50/p95 of submit → start.
2. Idle gap: submit two runs at once (one GPU, so the second waits); prints p50/p95 of the
   time between the first trainer's exit and the second trainer's start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TRAINER = """
import os, sys, time
start = time.time()
args = sys.argv[1:]
def arg(name):
    return args[args.index("--" + name) + 1]
stamps = os.environ["BENCH_STAMPS"]
name = arg("output_name")
with open(os.path.join(stamps, name + ".start"), "w") as fh:
    fh.write(repr(start))
os.makedirs(arg("output_dir"), exist_ok=True)
with open(os.path.join(arg("output_dir"), name + ".safetensors"), "wb") as fh:
    fh.write(b"fake")
with open(os.path.join(stamps, name + ".end"), "w") as fh:
    fh.write(repr(time.time()))
"""


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument(
        "--stack-from-env",
        action="store_true",
        help="use DATABASE_URL / REDIS_URL from the environment (bench/run_all.py)",
    )
    opts = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="lorastudio-bench-queue-"))
    stamps = tmp / "stamps"
    stamps.mkdir()
    os.environ.update(
        DEBUG="False",
        SECRET_KEY="bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        LORASTUDIO_DATA_DIR=str(tmp),
        LORASTUDIO_NODE="bench-node",
        LORASTUDIO_GPU_BACKEND="fake",
        LORASTUDIO_FAKE_GPUS="24576:Bench 24G",
        LORASTUDIO_HEARTBEAT_SECONDS="2",
        BENCH_STAMPS=str(stamps),
        LOG_LEVEL="WARNING",
    )
    if not opts.stack_from_env:
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lorastudio.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from tests.factories import make_base_model, make_user
    from tests.queue_helpers import cluster_env, make_image_dataset, start_qcluster, stop_process
    from training import services
    from training.models import GPUNode, TrainingRun
    from training.nodes import agent

    scripts = tmp / "sd-scripts"
    scripts.mkdir()
    (scripts / "train_network.py").write_text(TRAINER)
    checkpoint = tmp / "sd15.safetensors"
    checkpoint.write_bytes(b"x")
    agent.beat("bench-node")
    GPUNode.objects.filter(name="bench-node").update(
        sdscripts_dir=str(scripts), sdscripts_python=sys.executable
    )
    owner = make_user(username="bench", is_staff=True)
    dataset = make_image_dataset(owner, images=4)
    base = make_base_model(architecture="sd15", checkpoint=str(checkpoint))

    import subprocess

    env = cluster_env("bench-node", fake_gpus="24576:Bench 24G")
    cluster = start_qcluster(env, tmp / "qcluster.log")
    node_agent = subprocess.Popen(
        [sys.executable, "manage.py", "node_agent"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )

    def submit() -> tuple[TrainingRun, float]:
        t0 = time.time()
        run = services.submit_run(owner, dataset=dataset, base_model=base, params={})
        return run, t0

    def stamp(run, kind: str, deadline: float) -> float:
        path = stamps / f"lora-run{run.pk}.{kind}"
        while not (path.exists() and path.read_text()):
            if time.monotonic() > deadline:
                run.refresh_from_db()
                raise SystemExit(f"run {run.pk} did not start: {run.status} {run.status_message}")
            time.sleep(0.005)
        return float(path.read_text())

    def wait_done(run, deadline: float) -> None:
        while not TrainingRun.objects.get(pk=run.pk).is_terminal:
            if time.monotonic() > deadline:
                raise SystemExit(f"run {run.pk} did not finish")
            time.sleep(0.02)

    try:
        # Warm-up: the first task also pays for the worker's imports.
        run, _ = submit()
        stamp(run, "start", time.monotonic() + 60)
        wait_done(run, time.monotonic() + 60)

        latencies = []
        for _ in range(opts.runs):
            run, t0 = submit()
            latencies.append(stamp(run, "start", time.monotonic() + 60) - t0)
            wait_done(run, time.monotonic() + 60)
            time.sleep(0.3)  # an idle node, not a hot loop

        gaps = []
        for _ in range(opts.pairs):
            first, _ = submit()
            second, _ = submit()
            end = stamp(first, "end", time.monotonic() + 60)
            gaps.append(stamp(second, "start", time.monotonic() + 60) - end)
            wait_done(second, time.monotonic() + 60)
    finally:
        stop_process(node_agent)
        stop_process(cluster)

    poll = os.environ.get("LORASTUDIO_Q_POLL", "0.05")
    if os.environ.get("REDIS_URL"):
        print("PostgreSQL/Redis stack from the environment: Redis broker, one fake GPU")
    else:
        print(f"default stack: SQLite, ORM broker (poll {poll} s), one fake GPU")
    for label, values in (
        (f"submit → trainer start, idle node ({len(latencies)} runs)", latencies),
        (f"idle gap between two queued runs ({len(gaps)} pairs)", gaps),
    ):
        p50, p95 = statistics.median(values) * 1000, pct(values, 0.95) * 1000
        print(f"{label}: p50 {p50:.0f} ms, p95 {p95:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
