"""Runs in the states the admin tests need, reached through the services."""

from tests.factories import make_base_model, make_trainable_dataset
from training import services
from training.lifecycle import transition

CHANGELIST = "admin:training_trainingrun_changelist"


def submitted(owner, **kw):
    """A run submitted through the service (queued, or pending approval when required)."""
    kw.setdefault("base_model", make_base_model())
    kw.setdefault("dataset", make_trainable_dataset(owner=owner))
    return services.submit_run(owner, params={}, **kw)


def finished(run, status="succeeded"):
    for step in ("assigned", "preparing", "running"):
        transition(run, step)
    transition(run, status, reason="trainer_error" if status == "failed" else "")
    return run
