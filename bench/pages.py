"""Pages at scale: time the busiest pages with a lab's worth of runs in the database.

Usage (from the repository root):
    .venv/bin/python bench/pages.py [--runs 10000] [--queued 1000] [--users 50] [--json]
    ./scripts/with_postgres.sh .venv/bin/python bench/pages.py   # the same on PostgreSQL

Builds, with bulk inserts, a lab of `--users` users (one of them staff), two online nodes
with four GPUs, four base models, two datasets per student, and `--runs` runs of which
`--queued` wait in the queue, four train and the rest finished over the last 120 days (each
with its timeline). Then it requests, through Django's test client (the whole middleware
stack), as a student with about a fiftieth of the runs:
- dashboard: `/` (my runs with queue places and ready times, my GPU use, the lab board);
- run list: `/runs/`;
- run page: `/runs/<id>/` of one of the student's queued runs, in the middle of the queue;
- new-run page: `/runs/new/?dataset=…&base_model=…&preset=…`, and the live plan it then
  fetches, `/runs/plan/?…` (memory, verdict, and when the run would start after the queue);
- admin run list: `/admin/training/trainingrun/`, as staff.
and prints each page's p50 and p95 in ms over `--repeat` requests and its number of
queries. It runs on a database of its own (Django's test database: a file under a temporary
folder for SQLite, `test_<name>` on the PostgreSQL server DATABASE_URL names) and removes it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ARCHITECTURES = ("sd15", "sdxl", "sd35_medium", "flux1_dev")
GPUS = (("gpu-a", (24576, 49152)), ("gpu-b", (32768, 98304)))
HISTORY_DAYS = 120


def setup_django(data_dir: Path):
    """Django with its data folder in `data_dir`; the database comes from DATABASE_URL."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lorastudio.settings")
    os.environ["DEBUG"] = "False"
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(50)
    os.environ["LORASTUDIO_DATA_DIR"] = str(data_dir)
    (data_dir / "static").mkdir()  # STATIC_ROOT (nothing collected: whitenoise finds files)
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host, and the in-memory e-mail backend


@contextlib.contextmanager
def test_database():
    """A database of the bench's own, removed afterwards (never the configured one)."""
    from django.db import connection

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield connection.vendor
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


@contextlib.contextmanager
def given_timestamps(model, *names):
    """Let bulk_create keep the `created_at`-style values the bench sets."""
    fields = [model._meta.get_field(name) for name in names]
    saved = [(f, f.auto_now, f.auto_now_add) for f in fields]
    for f in fields:
        f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, auto_now, auto_now_add in saved:
            f.auto_now, f.auto_now_add = auto_now, auto_now_add


def build_lab(*, runs: int, queued: int, users: int, seed: int = 0) -> dict:
    """The lab: users, nodes, models, datasets and runs; returns what the pages need."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from datasets.models import Dataset, DatasetImage
    from training.choices import RunStatus
    from training.models import GPU, BaseModel, GPUNode, Preset, RunEvent, TrainingRun
    from training.planning import RunRequest, plan_run

    rng = random.Random(seed)
    now = timezone.now()
    User = get_user_model()
    password = make_password("bench")
    User.objects.bulk_create(
        [User(username=f"student{i:02d}", password=password) for i in range(1, users)]
        + [User(username="staff", password=password, is_staff=True, is_superuser=True)]
    )
    students = list(User.objects.filter(is_staff=False).order_by("username"))
    staff = User.objects.get(username="staff")

    nodes = []
    for name, sizes in GPUS:
        node = GPUNode.objects.create(name=name, last_heartbeat=now)
        for index, total in enumerate(sizes):
            GPU.objects.create(
                node=node,
                index=index,
                name=f"Bench GPU {total // 1024} GB",
                total_mib=total,
                free_mib=total,
                updated_at=now,
            )
        nodes.append(node)
    gpus = list(GPU.objects.select_related("node").order_by("node__name", "index"))

    models = {}
    for arch in ARCHITECTURES:
        files = {"checkpoint": f"{arch}.safetensors"}
        if arch == "sd35_medium":
            files.update(clip_l="clip_l.safetensors", clip_g="clip_g.safetensors")
            files.update(t5xxl="t5xxl.safetensors")
        if arch == "flux1_dev":
            files.update(clip_l="clip_l.safetensors", t5xxl="t5xxl.safetensors")
            files.update(ae="ae.safetensors")
        models[arch] = BaseModel.objects.create(name=f"Bench {arch}", architecture=arch, **files)
    presets = {
        arch: Preset.objects.filter(architecture=arch, enabled=True).order_by("sort_order").first()
        for arch in ARCHITECTURES
    }

    with given_timestamps(Dataset, "created_at", "updated_at"):
        Dataset.objects.bulk_create(
            [
                Dataset(
                    owner=owner,
                    name=f"{owner.username} set {k}",
                    trigger_word=f"sks{k}",
                    image_count=20,
                    created_at=now - timedelta(days=HISTORY_DAYS + k),
                    updated_at=now - timedelta(days=HISTORY_DAYS + k),
                )
                for owner in students
                for k in (1, 2)
            ]
        )
    datasets: dict[int, list] = {}
    for dataset in Dataset.objects.order_by("pk"):
        datasets.setdefault(dataset.owner_id, []).append(dataset)
    DatasetImage.objects.bulk_create(
        [
            DatasetImage(
                dataset=dataset,
                file=f"datasets/{dataset.pk}/{i}.jpg",
                original_name=f"{i}.jpg",
                width=rng.choice((1024, 1216, 1536)),
                height=rng.choice((1024, 832, 1536)),
                format="JPEG",
                size_bytes=2_000_000,
                sha256=f"{dataset.pk:032x}{i:032x}",
                phash=f"{rng.getrandbits(64):016x}",
                caption=f"a photo of sks{i}, outdoors",
                thumbnail=f"thumbs/{dataset.pk}/{i}.jpg",
            )
            for owners in datasets.values()
            for dataset in owners
            for i in range(20)
        ],
        batch_size=500,
    )

    # One real plan per architecture (params, memory plan, estimate), copied into every run.
    template = {}
    for arch in ARCHITECTURES:
        plan = plan_run(
            RunRequest(
                owner=students[0],
                base_model=models[arch],
                dataset=datasets[students[0].pk][0],
                preset=presets[arch],
                params={},
            )
        )
        template[arch] = plan

    statuses = [RunStatus.SUCCEEDED] * 80 + [RunStatus.FAILED] * 12 + [RunStatus.CANCELLED] * 8
    rows, events = [], []
    training = min(len(gpus), max(0, runs - queued))
    for i in range(runs):
        owner = students[i % len(students)]
        arch = ARCHITECTURES[i % len(ARCHITECTURES)]
        plan = template[arch]
        duration = rng.uniform(600, 3 * 3600)
        steps = plan.timing.steps if plan.timing else 1000
        run = TrainingRun(
            owner=owner,
            name=f"bench {i}",
            dataset=datasets[owner.pk][i % 2],
            base_model=models[arch],
            preset=presets[arch],
            params=plan.params,
            vram_estimate_mib=plan.vram.estimate_mib,
            plan=plan.record(),
            sample_prompts="a photo of sks",
        )
        if i < queued:
            run.status = RunStatus.QUEUED
            run.created_at = now - timedelta(seconds=rng.uniform(60, 2 * 86400))
            run.queued_at = run.created_at + timedelta(seconds=1)
            run.priority = 1 if rng.random() < 0.05 else 0
            run.status_message = "Waiting: every GPU with 20.0 GB is running another run."
        elif i < queued + training:
            gpu = gpus[i - queued]
            run.status = RunStatus.RUNNING
            run.node, run.gpu = gpu.node, gpu
            run.created_at = now - timedelta(hours=3)
            run.queued_at = run.created_at
            run.started_at = now - timedelta(seconds=rng.uniform(60, 3600))
            run.heartbeat_at = now
            run.total_steps, run.step = steps, steps // 3
            run.speed = 1.5
        else:
            gpu = rng.choice(gpus)
            run.status = rng.choice(statuses)
            run.created_at = now - timedelta(seconds=rng.uniform(3 * 86400, HISTORY_DAYS * 86400))
            run.queued_at = run.created_at + timedelta(seconds=1)
            run.started_at = run.created_at + timedelta(seconds=rng.uniform(10, 4 * 3600))
            run.finished_at = run.started_at + timedelta(seconds=duration)
            run.node, run.gpu = gpu.node, gpu
            run.total_steps = steps
            run.step = steps if run.status == RunStatus.SUCCEEDED else steps // 2
            run.gpu_seconds, run.energy_wh = duration, duration / 3600 * 300
            run.vram_peak_mib = round(plan.vram.estimate_mib * rng.uniform(0.8, 1.05))
            run.loss_points = [[s, 0.1 + 0.05 * rng.random()] for s in range(0, steps, 20)]
            run.argv = ["python", f"{arch}_train_network.py", "--config_file", "args.toml"]
            if run.status == RunStatus.FAILED:
                run.failure_reason = "oom"
                run.status_message = "The trainer ran out of GPU memory."
        rows.append(run)
    with given_timestamps(TrainingRun, "created_at"):
        TrainingRun.objects.bulk_create(rows, batch_size=500)
    for run in TrainingRun.objects.values("pk", "status", "created_at", "started_at"):
        moves = [("draft", "queued", run["created_at"])]
        if run["started_at"]:
            moves += [("queued", "assigned", run["started_at"]), ("assigned", run["status"], None)]
        for source, target, when in moves:
            events.append(
                RunEvent(
                    run_id=run["pk"],
                    from_status=source,
                    to_status=target,
                    note="bench",
                    created_at=when or run["started_at"],
                )
            )
    with given_timestamps(RunEvent, "created_at"):
        RunEvent.objects.bulk_create(events, batch_size=1000)

    student = students[0]
    from training.scheduler import queue_positions

    positions = queue_positions()
    mine = sorted(
        TrainingRun.objects.filter(owner=student, status=RunStatus.QUEUED).values_list(
            "pk", flat=True
        ),
        key=lambda pk: positions[pk],
    )
    dataset = datasets[student.pk][0]
    return {
        "student": student,
        "staff": staff,
        "queued_run": mine[len(mine) // 2] if mine else None,
        "new_run": f"?dataset={dataset.pk}&base_model={models['sdxl'].pk}"
        f"&preset={presets['sdxl'].pk}",
    }


def pages(lab: dict) -> list[tuple[str, str, object]]:
    """(label, path, user) for every page measured."""
    from django.urls import reverse

    student, staff = lab["student"], lab["staff"]
    out = [
        ("dashboard", reverse("home"), student),
        ("run list", reverse("training:run-list"), student),
    ]
    if lab["queued_run"] is not None:
        out.append(("run page", reverse("training:run-detail", args=[lab["queued_run"]]), student))
    out += [
        ("new-run page", reverse("training:run-create") + lab["new_run"], student),
        ("new-run plan", reverse("training:run-plan") + lab["new_run"], student),
        ("admin run list", reverse("admin:training_trainingrun_changelist"), staff),
    ]
    return out


def measure(targets: list[tuple[str, str, object]], repeat: int) -> list[dict]:
    """Each page's p50 and p95 in ms over `repeat` requests and its queries (one request).

    The pages take turns, request by request, so a busy moment of a shared machine falls on
    all of them alike rather than on one.
    """
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    clients, queries, times = {}, {}, {}
    for label, path, user in targets:
        clients[label] = client = Client()
        client.force_login(user)
        for _ in range(2):  # warm up: templates compiled, caches filled
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
        with CaptureQueriesContext(connection) as captured:
            client.get(path)
        queries[label] = len(captured)  # before the next request starts a new query log
        times[label] = []
    for _ in range(repeat):
        for label, path, _user in targets:
            start = time.perf_counter()
            response = clients[label].get(path)
            times[label].append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (path, response.status_code)
    rows = []
    for label, _path, _user in targets:
        ms = sorted(times[label])
        rows.append(
            {
                "page": label,
                "p50_ms": round(statistics.median(ms), 1),
                "p95_ms": round(ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))], 1),
                "queries": queries[label],
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs in all (default 10000)")
    parser.add_argument("--queued", type=int, default=1_000, help="queued runs (default 1000)")
    parser.add_argument("--users", type=int, default=50, help="users, one staff (default 50)")
    parser.add_argument("--repeat", type=int, default=40, help="requests per page (default 40)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if args.queued > args.runs or args.users < 2:
        parser.error("--queued must not exceed --runs, and --users must be at least 2")
    with tempfile.TemporaryDirectory(prefix="lorastudio-bench-") as tmp:
        setup_django(Path(tmp))
        with test_database() as vendor:
            start = time.perf_counter()
            lab = build_lab(runs=args.runs, queued=args.queued, users=args.users)
            built_s = time.perf_counter() - start
            # The objects built above are the benchmark's, not a web server's: frozen, the
            # garbage collector's full passes (about 100 ms each over them) stop falling
            # on random requests, as they would not in a web process that never held them.
            gc.collect()
            gc.freeze()
            rows = [{**row, "database": vendor} for row in measure(pages(lab), args.repeat)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"{args.runs} runs ({args.queued} queued), {args.users} users on {vendor}, "
        f"built in {built_s:.1f} s; {args.repeat} requests per page"
    )
    for row in rows:
        print(
            f"{row['page'] + ':':<16} p50 {row['p50_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms, "
            f"{row['queries']} queries"
        )


if __name__ == "__main__":
    main()
