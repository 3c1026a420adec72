"""django-q2 task functions: they take ids and call the runners, scheduler, reaper or agent."""

from __future__ import annotations

from training import reaper, scheduler
from training.execution import runner
from training.nodes import agent


def execute_run(run_id: int) -> str:
    """Train one run on this node (the task sent by dispatch)."""
    return runner.execute(run_id)


def execute_evaluation(evaluation_id: int) -> str:
    """Render one evaluation on this node's inference server (the task sent by dispatch)."""
    from training.evaluation import runner as evaluation_runner

    return evaluation_runner.execute(evaluation_id)


def publish_artifact(artifact_id: int) -> str:
    """Republish a run's LoRA file ("keep this epoch") on the run's node."""
    from training.evaluation.services import publish_artifact as publish

    return publish(artifact_id)


def reap_and_dispatch() -> list[int]:
    """Free runs whose worker is lost, then dispatch; returns the reaped run ids."""
    reaped = reaper.reap()
    scheduler.dispatch()
    return reaped


def node_heartbeat(node_name: str) -> str:
    """Refresh a node's GPU rows and heartbeat."""
    return agent.beat(node_name).status_message


def send_notifications(event: str, run_id: int, evaluation_id: int | None = None) -> str:
    """Mail and webhook the people who asked to hear of `event` (queued after commit)."""
    from training.notifications.send import send_notifications as send

    return send(event, run_id, evaluation_id)


def deliver_webhook(delivery_id: int) -> str:
    """Try a webhook delivery again (scheduled with backoff after a failed attempt)."""
    from training.notifications.webhooks import attempt

    return attempt(delivery_id)
