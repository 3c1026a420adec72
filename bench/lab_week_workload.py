"""The simulated lab week's workload (bench/lab_week.py): the lab's GPUs, the students, and
the runs they submit, drawn once per seed and the same for every policy; and what those runs
ask for, whatever the policy."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime

WEEK_H = 7 * 24
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, 00:00
STUDENTS = 30
# (node, index, MiB, model, speed relative to an RTX 4090)
GPUS = (
    ("gpu-a", 0, 24576, "RTX 4090", 1.0),
    ("gpu-a", 1, 49152, "RTX 6000 Ada", 0.95),
    ("gpu-b", 0, 32768, "RTX 5090", 1.25),
    ("gpu-b", 1, 98304, "RTX PRO 6000", 1.3),
)
# Share of runs per architecture, and the choices students make for each.
MIX = {"sd15": 0.2, "sdxl": 0.35, "sd35_medium": 0.1, "sd35_large": 0.1, "flux1_dev": 0.25}
RESOLUTIONS = {
    "sd15": ((512, 0.7), (768, 0.3)),
    "sdxl": ((1024, 1.0),),
    "sd35_medium": ((768, 0.6), (1024, 0.4)),
    "sd35_large": ((768, 0.5), (1024, 0.5)),
    "flux1_dev": ((768, 0.3), (1024, 0.7)),
}
BATCHES = ((1, 0.45), (2, 0.4), (4, 0.15))
RANKS = ((16, 0.3), (32, 0.5), (64, 0.2))
MEM_BIAS = 0.05  # per architecture, uniform within ±5 %
MEM_NOISE = 0.03  # per run, normal
TIME_NOISE = 0.1  # per run, log-normal
STARTUP_S = 180.0  # loading and caching before the first step (an OOM shows here)


def _pick(rng: random.Random, pairs) -> object:
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights)[0]


def _activity(hour_of_week: int) -> float:
    """How busy the lab is in an hour of the week (1 = a weekday afternoon)."""
    day, hour = divmod(hour_of_week, 24)
    if 9 <= hour < 18:
        level = 1.0
    elif 18 <= hour < 23:
        level = 0.5
    elif 7 <= hour < 9:
        level = 0.3
    else:
        level = 0.06
    return level * (0.35 if day >= 5 else 1.0)


@dataclass(frozen=True)
class Job:
    """One run a student submits: when, what, and what it will really do."""

    at_s: float
    student: int
    architecture: str
    params: dict
    mem_factor: float  # true peak / the estimator's figure
    time_factor: float  # true time / the prior's


def workload(seed: int, runs: int) -> tuple[list[Job], list[int]]:
    """The week's submits in time order, and each student's number of images."""
    rng = random.Random(seed)
    from sdscripts.architectures import spec
    from sdscripts.steps import suggest_length

    images = [rng.randint(15, 60) for _ in range(STUDENTS)]
    bias = {arch: 1 + rng.uniform(-MEM_BIAS, MEM_BIAS) for arch in MIX}
    hours = rng.choices(range(WEEK_H), [_activity(h) for h in range(WEEK_H)], k=runs)
    # Students are equally busy: each submits as many runs as the others (one more for some
    # when the runs do not divide), at times of its own.
    students = [i % STUDENTS for i in range(runs)]
    rng.shuffle(students)
    jobs = []
    for hour, student in zip(sorted(hours), students, strict=True):
        arch = _pick(rng, MIX.items())
        batch = _pick(rng, BATCHES)
        # Students train somewhat past the registry's suggested length, some much longer.
        target = spec(arch).target_steps * rng.lognormvariate(math.log(1.5), 0.35)
        repeats, epochs = suggest_length(images[student], batch, round(target))
        params = {
            "resolution": _pick(rng, RESOLUTIONS[arch]),
            "train_batch_size": batch,
            "network_dim": _pick(rng, RANKS),
            "num_repeats": repeats,
            "max_train_epochs": epochs,
        }
        mem = bias[arch] * (1 + rng.gauss(0, MEM_NOISE))
        jobs.append(
            Job(
                (hour + rng.random()) * 3600,
                student,
                arch,
                params,
                mem,
                rng.lognormvariate(0, TIME_NOISE),
            )
        )
    return jobs, images


def asked_hours(jobs: list[Job], images: list[int]) -> list[float]:
    """GPU-hours each student's runs would take at an RTX 4090's speed without memory savers
    (the workload itself, whatever the policy)."""
    from sdscripts.speed import prior_step_s
    from sdscripts.steps import total_steps

    hours = [0.0] * STUDENTS
    for job in jobs:
        p = job.params
        batch = p["train_batch_size"]
        steps = total_steps(images[job.student], p["num_repeats"], p["max_train_epochs"], batch)
        step_s = prior_step_s(job.architecture, p["resolution"], batch, ())
        hours[job.student] += (STARTUP_S + steps * step_s * job.time_factor) / 3600
    return hours
