"""Install the django-q2 schedules a node needs (idempotent: update_or_create by name)."""

from __future__ import annotations

from django_q.models import Schedule


def install_schedules(node_name: str) -> list[Schedule]:
    """Heartbeat, reap and dispatch schedules pinned to this node's cluster.

    Schedules fire about every 30 s at best, so they are a safety net; the node agent's own
    loop reacts within seconds.
    """
    wanted = [
        (f"{node_name}: heartbeat", "training.tasks.node_heartbeat", repr(node_name)),
        (f"{node_name}: reap and dispatch", "training.tasks.reap_and_dispatch", ""),
    ]
    schedules = []
    for name, func, args in wanted:
        schedule, _ = Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "args": args or None,
                "schedule_type": Schedule.MINUTES,
                "minutes": 1,
                "repeats": -1,
                "cluster": node_name,
            },
        )
        schedules.append(schedule)
    return schedules
