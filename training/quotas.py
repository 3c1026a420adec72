"""Quotas: what a student may still ask of the lab (GPU-hours per week, runs at once, the
largest image size, epochs and steps), from the lab's defaults and the overrides staff set
per group and per user (admin → Quotas). Reads only; the plan (training.planning) refuses.

- Staff have no limits.
- Each limit is the user's own override when it is set, else the most generous of their
  groups' (a group that leaves it empty does not count), else the lab's default:
  LORASTUDIO_WEEKLY_GPU_HOURS and LORASTUDIO_MAX_ACTIVE_RUNS_PER_USER; image size, epochs
  and steps have no lab default (the presets' bounds apply). 0 means "no limit" everywhere.
- GPU-hours used: every run that started training counts from its start to its end (up to
  now while it trains), in the week it ran: a run over Sunday midnight counts in both weeks.
  Weeks start on Monday 00:00 in the lab's TIME_ZONE. The CPU demo counts too (it holds its
  node's training slot). The hours are checked at submit: runs already submitted still
  start, and a run is not stopped when it passes the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from training.energy import week_start
from training.models import Quota, TrainingRun
from training.selectors import hours_held

FIELDS = ("weekly_gpu_hours", "max_active_runs", "max_resolution", "max_epochs", "max_steps")
LAB_DEFAULT = "the lab's default"


@dataclass(frozen=True)
class Limit:
    """One limit of one user: its value (None: no limit) and where it comes from."""

    value: float | None
    source: str

    @property
    def limited(self) -> bool:
        return self.value is not None


def _hours(value: float) -> str:
    """Hours as refusals write them: 2.5, 2, 0.05."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _limit(value: float, source: str) -> Limit:
    return Limit(None if value == 0 else value, source)


def limits_for(user) -> dict[str, Limit]:
    """The user's limits by Quota field name (see the module's rules)."""
    if user.is_staff:
        return {name: Limit(None, "staff have no limits") for name in FIELDS}
    own = Quota.objects.filter(user=user).first()
    groups = list(Quota.objects.filter(group__user=user).select_related("group"))
    hours = settings.LORASTUDIO_WEEKLY_GPU_HOURS
    defaults = {"weekly_gpu_hours": hours or None,
                "max_active_runs": settings.LORASTUDIO_MAX_ACTIVE_RUNS_PER_USER}  # fmt: skip
    limits = {}
    for name in FIELDS:
        if own is not None and getattr(own, name) is not None:
            limits[name] = _limit(getattr(own, name), f"set for {user} by staff")
            continue
        values = [(getattr(q, name), q.group.name) for q in groups if getattr(q, name) is not None]
        if values:  # the most generous group: no limit (0) first, else the largest
            value, group = max(values, key=lambda v: (v[0] == 0, v[0]))
            limits[name] = _limit(value, f"from group {group}")
        else:
            limits[name] = Limit(defaults.get(name), LAB_DEFAULT)
    return limits


def week_bounds(now: datetime | None = None) -> tuple[datetime, datetime]:
    """This week's Monday 00:00 and the next one, in the lab's time zone."""
    start = week_start(now)
    return start, week_start(start + timedelta(days=7, hours=12))


def when_text(moment: datetime) -> str:
    """A moment as refusals and the new-run page write it: "Monday 17 November 00:00 (UTC)"."""
    local = timezone.localtime(moment)
    return f"{local:%A} {local.day} {local:%B %H:%M} ({local.tzname()})"


@dataclass(frozen=True)
class QuotaStatus:
    """Where a user stands: their limits, this week's GPU-hours and their unfinished runs."""

    limits: dict[str, Limit]
    hours_used: float
    active_runs: int
    week_ends: datetime

    @property
    def unlimited(self) -> bool:
        return not any(limit.limited for limit in self.limits.values())

    @property
    def hours_limit(self) -> float | None:
        return self.limits["weekly_gpu_hours"].value

    @property
    def hours_left(self) -> float | None:
        limit = self.hours_limit
        return None if limit is None else max(0.0, limit - self.hours_used)

    @property
    def runs_limit(self) -> int | None:
        value = self.limits["max_active_runs"].value
        return None if value is None else int(value)

    @property
    def runs_left(self) -> int | None:
        limit = self.runs_limit
        return None if limit is None else max(0, limit - self.active_runs)

    @property
    def renews(self) -> str:
        return when_text(self.week_ends)

    def cap(self, name: str) -> int | None:
        """A size cap (max_resolution, max_epochs, max_steps) as a whole number, or None."""
        value = self.limits[name].value
        return None if value is None else int(value)


def quota_status(user, now: datetime | None = None) -> QuotaStatus:
    """The user's limits and use as of `now`."""
    now = now or timezone.now()
    start, end = week_bounds(now)
    mine = TrainingRun.objects.filter(owner=user)
    return QuotaStatus(
        limits=limits_for(user),
        hours_used=hours_held(mine, start, now).get(user.pk, 0.0),
        active_runs=mine.unfinished().count(),
        week_ends=end,
    )


def submit_refusals(owner, values: dict, *, steps: int | None) -> list[str]:
    """Why the owner's limits refuse a run with these final parameters (and `steps`, when
    known); empty when they allow it. Each reason names the limit and when it frees up."""
    status = quota_status(owner)
    limits, reasons = status.limits, []
    runs = limits["max_active_runs"]
    if runs.limited and status.active_runs >= runs.value:
        allows = (
            f"the lab allows {runs.value:g} per student"
            if runs.source == LAB_DEFAULT
            else f"{owner}'s limit is {runs.value:g} ({runs.source})"
        )
        reasons.append(
            f"{owner} already has {status.active_runs} unfinished runs (queued, waiting or "
            f"training); {allows}. A place frees up when one of them finishes, or cancel one."
        )
    hours = limits["weekly_gpu_hours"]
    if hours.limited and status.hours_left <= 0:
        reasons.append(
            f"{owner} has used {_hours(status.hours_used)} of {_hours(hours.value)} GPU-hours "
            f"this week ({hours.source}); they come back when the new week starts, "
            f"{status.renews}."
        )
    resolution, cap = values.get("resolution"), status.cap("max_resolution")
    if cap is not None and isinstance(resolution, int) and resolution > cap:
        reasons.append(
            f"Image size {resolution} px is above {owner}'s limit of {cap} px "
            f"({limits['max_resolution'].source}): choose {cap} px or less."
        )
    epochs, cap = values.get("max_train_epochs"), status.cap("max_epochs")
    if cap is not None and not values.get("max_train_steps") and int(epochs or 0) > cap:
        reasons.append(
            f"{epochs} epochs is above {owner}'s limit of {cap} epochs "
            f"({limits['max_epochs'].source}): choose {cap} or fewer."
        )
    cap = status.cap("max_steps")
    if cap is not None and steps is not None and steps > cap:
        reasons.append(
            f"This run would train {steps} steps, above {owner}'s limit of {cap} steps "
            f"({limits['max_steps'].source}): train fewer epochs or repeats."
        )
    return reasons


@dataclass(frozen=True)
class UsageRow:
    """One user's GPU-hours per week (newest first) and what is left of this week's."""

    user_id: int
    username: str
    hours: list[float]
    limit: Limit

    @property
    def left(self) -> float | None:
        return None if self.limit.value is None else max(0.0, self.limit.value - self.hours[0])


def usage_by_week(weeks: int, now: datetime | None = None) -> tuple[list[datetime], list[UsageRow]]:
    """GPU-hours per user in each of the last `weeks` weeks (this one first, counted up to
    now), as the quota counts them; users who used none are left out."""
    now = now or timezone.now()
    starts = [week_start(now)]
    while len(starts) < weeks:
        starts.append(week_start(starts[-1] - timedelta(days=3)))
    runs = TrainingRun.objects.all()
    per_week = [hours_held(runs, start, min(now, week_bounds(start)[1])) for start in starts]
    users = get_user_model().objects.in_bulk({pk for week in per_week for pk in week})
    rows = [
        UsageRow(
            user_id=pk,
            username=user.get_username(),
            hours=[week.get(pk, 0.0) for week in per_week],
            limit=limits_for(user)["weekly_gpu_hours"],
        )
        for pk, user in users.items()
    ]
    rows.sort(key=lambda r: (-r.hours[0], r.username))
    return starts, rows
