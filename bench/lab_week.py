"""A simulated lab week: our dispatcher against first-come-first-served and GPU counting.

Run: .venv/bin/python bench/lab_week.py [--seed N] [--runs 450] [--json] [--plot FILE.png]

A discrete-event simulation of one busy week of a lab: 30 equally busy students (15 runs
each by default), two nodes with two GPUs each (24 GB and 48 GB; 32 GB and 96 GB), runs
arriving with a daytime peak (weekdays 9-18 h, quieter evenings, nights and weekend) and
asking for about as many GPU-hours as the lab has in the week. A run is SD 1.5, SDXL,
SD 3.5 Medium or Large or FLUX.1 dev at the resolutions, batch sizes and ranks students pick,
somewhat longer than the registry's suggested length. Every run is submitted through the real submit
service (the planner: parameters, memory savers for the lab's largest GPU, learned memory
correction, time estimate) into a throw-away SQLite database; the clock is simulated by
patching `django.utils.timezone.now`, which every module reads. Runs move through the real
life cycle; a succeeded run records its steps and measured peak, so the planner's learned
correction and the timing history learn from the simulated week as they would from a real one.

Each policy replays the same workload in its own transaction (rolled back after it):

- `fifo`: first come, first served, as sd-scripts front-ends queue on one machine: the oldest
  run waits for a free GPU whose memory holds its estimate, and nothing passes it;
- `count`: SLURM-style: the queue's order (priority, fair share, age), each run on the first
  free GPU, counted, not measured: no memory awareness;
- `lorastudio`: `training.scheduler.dispatch`, the real dispatcher.

What each run really does is drawn once per seed, the same for every policy: its true peak is
the estimator's figure for the parameters it runs with (savers included) times a bias per
architecture (uniform within ±5 %: the estimator's calibration error) and a normal noise per
run (3 %); a run whose true peak exceeds its GPU's memory fails out of memory after its
start-up. Its time is its steps times the prior's time per step (sdscripts.speed, savers'
costs included) over the GPU's speed, with a log-normal noise per run (10 %), plus start-up.

Columns: `busy_pct` the share of GPU time busy while at least one run waits; `wait_p50_h` and
`wait_p95_h` from queued to started; `oom_runs` runs whose true peak exceeded their GPU;
`jain` Jain's index over the GPU-hours each student received within the week; `makespan_h`
from the week's start until the last run ended. Every submit is accepted (the limit of
unfinished runs per student is lifted), so each policy sees exactly the same arrivals. The
line under the table gives what the runs ask for: where every run finishes within the week,
no policy's Jain can be much above the Jain of what the students asked.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from unittest import mock

# Beside this script (its folder is the first entry of sys.path when it runs).
from lab_week_figures import Outcome, Week, figures, jain, table
from lab_week_workload import (
    GPUS,
    MIX,
    START,
    STARTUP_S,
    STUDENTS,
    WEEK_H,
    Job,
    asked_hours,
    workload,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POLICIES = ("fifo", "count", "lorastudio")
TICK_S = 600.0  # dispatch also runs this often while runs wait (the node agents' loop)


# --- the lab in the database ---------------------------------------------------------------


class Clock:
    """The simulated time: `django.utils.timezone.now` while a policy runs."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def hours(self, when: datetime | None = None) -> float:
        return ((when or self.now) - START).total_seconds() / 3600


def setup_django(data_dir: Path) -> None:
    """Settings for a throw-away SQLite database in `data_dir`, migrated."""
    os.environ.update(
        DEBUG="False",
        SECRET_KEY="bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        LORASTUDIO_DATA_DIR=str(data_dir),
        LORASTUDIO_NODE="bench-web",  # not a GPU node: model files are as the agents report
        LORASTUDIO_MAX_ACTIVE_RUNS_PER_USER="100000",
        LOG_LEVEL="ERROR",
        LORASTUDIO_ENV_FILE=os.devnull,  # a developer's .env must not pick the database
    )
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lorastudio.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


@dataclass
class Lab:
    """The rows every policy shares: students, their datasets, base models, nodes and GPUs."""

    students: list
    datasets: list
    base_models: dict
    gpus: list  # training.models.GPU, in GPUS order
    speed: dict  # GPU id -> speed


def build_lab(images: list[int]) -> Lab:
    from datasets.models import DatasetImage
    from tests.factories import make_base_model, make_dataset, make_gpu, make_node, make_user

    students = [make_user(username=f"student{i:02d}") for i in range(STUDENTS)]
    datasets = []
    for student, count in zip(students, images, strict=True):
        dataset = make_dataset(owner=student, name="project", repeats=1)
        # Rows only: the planner reads image sizes and captions, never the files.
        DatasetImage.objects.bulk_create(
            DatasetImage(
                dataset=dataset,
                file=f"bench/{dataset.pk}/{i}.png",
                original_name=f"{i}.png",
                width=1024,
                height=1024,
                format="PNG",
                sha256=f"{dataset.pk:032x}{i:032x}",
                caption=f"sks photo {i}",
            )
            for i in range(count)
        )
        dataset.image_count = count
        dataset.save(update_fields=["image_count"])
        datasets.append(dataset)
    files = {"checkpoint": "model.safetensors", "clip_l": "clip_l.safetensors"}
    files |= {"clip_g": "clip_g.safetensors", "t5xxl": "t5xxl.safetensors", "ae": "ae.sft"}
    base_models = {arch: make_base_model(name=arch, architecture=arch, **files) for arch in MIX}
    nodes = {name: make_node(name=name) for name in dict.fromkeys(g[0] for g in GPUS)}
    gpus, speed = [], {}
    for node, index, mib, model, factor in GPUS:
        gpu = make_gpu(node=nodes[node], index=index, total_mib=mib, name=model)
        gpus.append(gpu)
        speed[gpu.pk] = factor
    return Lab(students, datasets, base_models, gpus, speed)


# --- the simulation ------------------------------------------------------------------------


def _place_baseline(policy: str, waiting: list[int], free: list[int], lab: Lab) -> list:
    """(run, GPU) pairs a baseline policy starts now; `free` lists indexes into lab.gpus."""
    from training.models import TrainingRun
    from training.scheduler import queue_order

    if policy == "fifo":
        runs = TrainingRun.objects.in_bulk(waiting)
        order = [runs[pk] for pk in waiting]  # arrival order
    else:
        order = [r for r in queue_order() if r.pk in set(waiting)]
    free = sorted(free)
    placed = []
    for run in order:
        if not free:
            break
        if policy == "fifo":
            holds = [i for i in free if lab.gpus[i].total_mib >= (run.vram_estimate_mib or 0)]
            if not holds:
                break  # the head waits, and everything behind it
            i = min(holds, key=lambda i: lab.gpus[i].total_mib)
        else:
            i = free[0]  # any free GPU: counted, not measured
        free.remove(i)
        placed.append((run, lab.gpus[i]))
    return placed


def simulate(policy: str, jobs: list[Job], lab: Lab, clock: Clock) -> Week:
    """Run one policy through the week; the caller rolls the database back afterwards."""
    from sdscripts.speed import prior_step_s, speed_savers
    from sdscripts.vram import estimate_vram
    from training import scheduler, services
    from training.choices import RunStatus
    from training.lifecycle import transition
    from training.models import GPUNode, TrainingRun
    from training.timing import run_steps

    index_of = {gpu.pk: i for i, gpu in enumerate(lab.gpus)}
    events: list[tuple[float, int, str, object]] = []
    for n, job in enumerate(jobs):
        heapq.heappush(events, (job.at_s, n, "submit", job))
    seq = len(jobs)
    outcomes: dict[int, Outcome] = {}
    job_of: dict[int, Job] = {}
    waiting: list[int] = []  # run ids in arrival order
    busy: dict[int, int] = {}  # GPU index -> run id
    week = Week(policy, [])
    tick_at = None

    def start(run: TrainingRun, gpu_index: int) -> None:
        nonlocal seq
        run.refresh_from_db()
        transition(run, RunStatus.PREPARING)
        transition(run, RunStatus.RUNNING)
        job, gpu = job_of[run.pk], lab.gpus[gpu_index]
        arch, params = job.architecture, run.params
        peak = estimate_vram(arch, params).total_mib * job.mem_factor
        steps = run_steps(run)
        resolution = int(params.get("resolution") or 1024)
        batch = int(params.get("train_batch_size") or 1)
        step_s = prior_step_s(arch, resolution, batch, speed_savers(arch, params))
        took = STARTUP_S + steps * step_s * job.time_factor / lab.speed[gpu.pk]
        oom = peak > gpu.total_mib
        outcome = outcomes[run.pk]
        outcome.started_h, outcome.gpu, outcome.oom = clock.hours(), gpu_index, oom
        seq += 1
        ends = clock.now + timedelta(seconds=STARTUP_S if oom else took)
        end_s = (ends - START).total_seconds()
        heapq.heappush(events, (end_s, seq, "end", (run.pk, steps, round(peak), oom)))

    while events:
        at_s, _, kind, what = heapq.heappop(events)
        clock.now = START + timedelta(seconds=at_s)
        if kind == "submit":
            job = what
            run = services.submit_run(
                lab.students[job.student],
                dataset=lab.datasets[job.student],
                base_model=lab.base_models[job.architecture],
                params=dict(job.params),
                evaluate_after=False,
            )
            job_of[run.pk] = job
            outcomes[run.pk] = Outcome(job.student, job.architecture, clock.hours())
            waiting.append(run.pk)
        elif kind == "end":
            run_id, steps, peak, oom = what
            run = TrainingRun.objects.get(pk=run_id)
            busy.pop(index_of[run.gpu_id])
            if oom:
                transition(run, RunStatus.FAILED, reason="oom", note="CUDA out of memory.")
            else:
                changes = {"step": steps, "total_steps": steps, "vram_peak_mib": peak}
                transition(run, RunStatus.SUCCEEDED, changes=changes)
            outcomes[run_id].ended_h = clock.hours()
        elif kind == "tick":
            tick_at = None
        if events and events[0][0] == at_s:
            continue  # everything that happens at this instant first, then one dispatch
        GPUNode.objects.update(last_heartbeat=clock.now)
        free = [i for i in range(len(lab.gpus)) if i not in busy]
        if waiting and free:
            if policy == "lorastudio":
                placed = TrainingRun.objects.filter(pk__in=scheduler.dispatch())
                pairs = [(run, index_of[run.gpu_id]) for run in placed]
            else:
                pairs = []
                for run, gpu in _place_baseline(policy, waiting, free, lab):
                    where = f"Assigned to {gpu.node.name} GPU {gpu.index}."
                    changes = {"node": gpu.node, "gpu": gpu, "heartbeat_at": clock.now}
                    transition(run, RunStatus.ASSIGNED, note=where, changes=changes)
                    pairs.append((run, index_of[gpu.pk]))
            for run, i in pairs:
                busy[i] = run.pk
                waiting.remove(run.pk)
                start(run, i)
        week.queue.append((clock.hours(), len(waiting)))
        # Dispatch again now and then while runs wait beside a free GPU (as the node agents'
        # loop does); once nothing is left to happen, nothing would change.
        if waiting and len(busy) < len(lab.gpus) and tick_at is None and events:
            seq += 1
            tick_at = at_s + TICK_S
            heapq.heappush(events, (tick_at, seq, "tick", None))
    week.outcomes = list(outcomes.values())
    return week


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="the week's random seed (default 0)")
    parser.add_argument("--runs", type=int, default=450, help="runs submitted in the week")
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    parser.add_argument("--plot", type=Path, help="write GPU occupancy over the week (PNG)")
    parser.add_argument("--policy", choices=POLICIES, action="append", help="only these")
    opts = parser.parse_args(argv)

    setup_django(Path(tempfile.mkdtemp(prefix="lorastudio-bench-week-")))
    from django.db import transaction
    from django.utils import timezone

    jobs, images = workload(opts.seed, opts.runs)
    clock = Clock()
    weeks = []
    with mock.patch.object(timezone, "now", clock):
        lab = build_lab(images)
        for policy in opts.policy or POLICIES:
            clock.now = START
            # One transaction per policy, rolled back: the next one starts from the same lab.
            # (Work registered for after commit, such as enqueueing a runner, never happens.)
            with transaction.atomic():
                weeks.append(simulate(policy, jobs, lab, clock))
                transaction.set_rollback(True)
    rows = [figures(week) for week in weeks]
    if opts.json:
        print(json.dumps(rows))
    else:
        print(
            f"seed {opts.seed}: {len(jobs)} runs, {STUDENTS} students, GPUs "
            + ", ".join(f"{g[3]} {g[2] // 1024} GB" for g in GPUS)
        )
        print(table(rows))
        asked = asked_hours(jobs, images)
        print(
            f"asked: {sum(asked):.0f} GPU-hours at an RTX 4090's speed without savers (the "
            f"GPUs have {len(GPUS) * WEEK_H} in the week); Jain over what each student asked: "
            f"{jain(asked):.3f}"
        )
    if opts.plot:
        from lab_week_plot import draw

        draw(weeks, GPUS, opts.plot)
        if not opts.json:
            print(f"plot: {opts.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
