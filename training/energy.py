"""GPU time and energy: the node agent's power readings summed into the runs holding GPUs,
and usage per user and week.

Each agent beat reads every GPU's power (NVML, or the fake backend's `@WATTS`). For the run
holding a GPU (assigned, preparing or running) the time since its last counted reading is
added to its `gpu_seconds`, and that time multiplied by the power now to its `energy_wh`.
A gap longer than LORASTUDIO_STALE_AFTER_SECONDS (the agent was away) is not counted:
nothing is guessed. So a run's figures are exact to within one beat at its start and end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, F, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from training.models import TrainingRun


def record_power(node, readings, now: datetime) -> int:
    """Count this beat's power readings (GpuReading) of `node` into the runs holding its
    GPUs; return how many runs got a reading."""
    power = {r.index: r.power_w for r in readings if r.power_w is not None}
    if not power:
        return 0
    longest = settings.LORASTUDIO_STALE_AFTER_SECONDS
    counted = 0
    holders = (
        TrainingRun.objects.on_gpu()
        .filter(node=node, gpu__isnull=False)
        .values_list("pk", "gpu__index", "power_sampled_at")
    )
    for pk, index, last in holders:
        if index not in power:
            continue
        changes: dict = {"power_sampled_at": now}
        if last is not None:
            seconds = (now - last).total_seconds()
            if seconds <= 0:
                continue  # this instant is counted already
            if seconds <= longest:
                changes["gpu_seconds"] = F("gpu_seconds") + seconds
                changes["energy_wh"] = F("energy_wh") + power[index] * seconds / 3600
        # Only if no other beat counted meanwhile (the same reading is never added twice).
        same = {"power_sampled_at": last} if last else {"power_sampled_at__isnull": True}
        counted += TrainingRun.objects.filter(pk=pk, **same).update(**changes)
    return counted


def cost(energy_wh: float) -> float | None:
    """What `energy_wh` cost at the lab's LORASTUDIO_COST_PER_KWH (None when none is set)."""
    price = settings.LORASTUDIO_COST_PER_KWH
    return energy_wh / 1000 * price if price > 0 else None


@dataclass(frozen=True)
class Usage:
    """One user's runs started in one week: how many, GPU time and energy."""

    week: datetime  # the Monday 00:00 the week starts (the lab's time zone)
    user_id: int
    username: str
    runs: int
    gpu_seconds: float
    energy_wh: float

    @property
    def gpu_hours(self) -> float:
        return self.gpu_seconds / 3600

    @property
    def energy_kwh(self) -> float:
        return self.energy_wh / 1000

    @property
    def cost(self) -> float | None:
        return cost(self.energy_wh)


def week_start(now: datetime | None = None) -> datetime:
    """Monday 00:00 of the week holding `now`, in the lab's time zone."""
    local = timezone.localtime(now or timezone.now())
    return (local - timedelta(days=local.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )


def weekly_usage(runs, weeks: int, now: datetime | None = None) -> list[Usage]:
    """Per week (newest first) and user, the `runs` (a queryset: the caller's visible runs)
    that started in the last `weeks` weeks, this one included. A run counts in full in the
    week it started."""
    since = week_start(now) - timedelta(weeks=weeks - 1)
    rows = (
        runs.filter(started_at__gte=since)
        .annotate(week=TruncWeek("started_at"))
        .values("week", "owner_id", "owner__username")
        .annotate(runs=Count("pk"), seconds=Sum("gpu_seconds"), wh=Sum("energy_wh"))
        .order_by("-week", "owner__username")
    )
    return [
        Usage(
            week=row["week"],
            user_id=row["owner_id"],
            username=row["owner__username"],
            runs=row["runs"],
            gpu_seconds=row["seconds"] or 0.0,
            energy_wh=row["wh"] or 0.0,
        )
        for row in rows
    ]


def totals(rows: list[Usage]) -> dict:
    """The sums of some usage rows (runs, GPU hours, kWh, cost)."""
    wh = sum(r.energy_wh for r in rows)
    return {
        "runs": sum(r.runs for r in rows),
        "gpu_hours": sum(r.gpu_seconds for r in rows) / 3600,
        "energy_kwh": wh / 1000,
        "cost": cost(wh),
    }
