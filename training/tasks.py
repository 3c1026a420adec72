"""django-q2 task functions: they take ids and call the runner, scheduler, reaper or agent."""

from __future__ import annotations

from training import reaper, scheduler
from training.execution import runner
from training.nodes import agent


def execute_run(run_id: int) -> str:
    """Train one run on this node (the task sent by dispatch)."""
    return runner.execute(run_id)


def reap_and_dispatch() -> list[int]:
    """Free runs whose worker is lost, then dispatch; returns the reaped run ids."""
    reaped = reaper.reap()
    scheduler.dispatch()
    return reaped


def node_heartbeat(node_name: str) -> str:
    """Refresh a node's GPU rows and heartbeat."""
    return agent.beat(node_name).status_message
