"""The simulated lab week's record and figures per policy (bench/lab_week.py): what happened
to each run; busy share while work waits, waits, out-of-memory runs, Jain's index and
makespan, and the table they print as."""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median

from lab_week_workload import GPUS, STUDENTS, WEEK_H


@dataclass
class Outcome:
    """What happened to one run under one policy."""

    student: int
    architecture: str
    queued_h: float
    started_h: float | None = None
    ended_h: float | None = None
    gpu: int | None = None  # index into GPUS
    oom: bool = False


@dataclass
class Week:
    """One policy's week: every run's outcome and the queue's length over time."""

    policy: str
    outcomes: list[Outcome]
    queue: list[tuple[float, int]] = field(default_factory=list)  # (hour, runs waiting)


def jain(values: list[float]) -> float:
    """Jain's fairness index: 1 when everyone has the same, 1/n when one has everything."""
    total, squares = sum(values), sum(v * v for v in values)
    return total * total / (len(values) * squares) if squares else 1.0


def busy_share(week: Week) -> float:
    """Share of GPU time busy while at least one run waited (1.0 when nothing ever waited)."""
    runs = [(o.started_h, o.ended_h) for o in week.outcomes if o.started_h is not None]
    busy = waited = 0.0
    for (t0, queued), (t1, _) in zip(week.queue, week.queue[1:], strict=False):
        if queued and t1 > t0:
            mid = (t0 + t1) / 2
            running = sum(1 for s, e in runs if s <= mid < e)
            busy += (t1 - t0) * running / len(GPUS)
            waited += t1 - t0
    return busy / waited if waited else 1.0


def figures(week: Week) -> dict:
    from sdscripts.vram import quantile  # the repository root is on sys.path by now

    started = [o for o in week.outcomes if o.started_h is not None]
    waits = [o.started_h - o.queued_h for o in started] or [0.0]
    hours = [0.0] * STUDENTS
    for o in started:
        hours[o.student] += max(0.0, min(o.ended_h, WEEK_H) - min(o.started_h, WEEK_H))
    return {
        "policy": week.policy,
        "busy_pct": round(100 * busy_share(week), 1),
        "wait_p50_h": round(median(waits), 2),
        "wait_p95_h": round(quantile(waits, 0.95), 2),
        "oom_runs": sum(o.oom for o in started),
        "jain": round(jain(hours), 3),
        "makespan_h": round(max((o.ended_h for o in started), default=0.0), 1),
    }


COLUMNS = ("policy", "busy_pct", "wait_p50_h", "wait_p95_h", "oom_runs", "jain", "makespan_h")


def table(rows: list[dict]) -> str:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in COLUMNS}
    lines = [
        "  ".join(c.rjust(widths[c]) if c != "policy" else c.ljust(widths[c]) for c in COLUMNS)
    ]
    for row in rows:
        cells = [
            str(row[c]).ljust(widths[c]) if c == "policy" else str(row[c]).rjust(widths[c])
            for c in COLUMNS
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)
