"""Lost-run detection: how long after a worker dies its run is marked failed/worker_lost.

Run: .venv/bin/python bench/lost_run_detection.py [--kills 3]

A throw-away data folder gets a fresh SQLite database; `manage.py qcluster` and
`manage.py node_agent` (default heartbeat interval and stale timeout) run as on a real node.
Each round submits a slow demo run, waits until its trainer runs, SIGKILLs the worker
process that started it (the trainer's parent: as when the OOM killer or a crash takes
the worker) and measures the time until the run says failed/worker_lost. Automatic resume
is off here, so each round measures one detection.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=3)
    opts = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="lorastudio-bench-lost-"))
    os.environ.update(
        DEBUG="False",
        SECRET_KEY="bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        LORASTUDIO_DATA_DIR=str(tmp),
        LORASTUDIO_NODE="bench-node",
        LORASTUDIO_GPU_BACKEND="fake",
        LORASTUDIO_AUTO_RESUME="False",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lorastudio.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from tests.factories import make_base_model, make_user
    from tests.queue_helpers import cluster_env, make_image_dataset, start_process, stop_process
    from training import services
    from training.models import TrainingRun
    from training.nodes import agent

    agent.beat("bench-node")
    owner = make_user(username="bench", is_staff=True)
    dataset = make_image_dataset(owner, images=4)
    base = make_base_model(architecture="demo")
    env = cluster_env("bench-node", DEMO_TRAINER_STEP_DELAY="0.5")
    cluster = start_process([sys.executable, "manage.py", "qcluster"], env, tmp / "qcluster.log")
    node_agent = start_process([sys.executable, "manage.py", "node_agent"], env, tmp / "agent.log")

    def wait(predicate, what: str, limit: float = 120.0):
        deadline = time.monotonic() + limit
        while not (value := predicate()):
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}; logs in {tmp}")
            time.sleep(0.02)
        return value

    figures = []
    try:
        for _ in range(opts.kills):
            params = {"max_train_epochs": 20, "resolution": 32, "network_dim": 4}
            run = services.submit_run(owner, dataset=dataset, base_model=base, params=params)
            pgid = wait(
                lambda: (
                    TrainingRun.objects.filter(pk=run.pk, status="running", step__gte=2)
                    .values_list("pgid", flat=True)
                    .first()
                ),
                "the trainer to run",
            )
            with open(f"/proc/{pgid}/stat") as fh:
                worker_pid = int(fh.read().rsplit(")", 1)[1].split()[1])  # the trainer's parent
            killed = time.monotonic()
            os.kill(worker_pid, signal.SIGKILL)
            wait(
                lambda: TrainingRun.objects.filter(pk=run.pk, status="failed").exists(),
                "the run to be marked lost",
            )
            figures.append(time.monotonic() - killed)
            reason = TrainingRun.objects.get(pk=run.pk).failure_reason
            print(f"run {run.pk}: {reason} after {figures[-1]:.2f} s", flush=True)
    finally:
        stop_process(node_agent)
        stop_process(cluster)

    print(
        f"worker killed → run failed/worker_lost ({len(figures)} kills, heartbeat every "
        f"{settings.LORASTUDIO_HEARTBEAT_SECONDS:g} s, stale after "
        f"{settings.LORASTUDIO_STALE_AFTER_SECONDS} s): median {statistics.median(figures):.2f} s, "
        f"min {min(figures):.2f} s, max {max(figures):.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
