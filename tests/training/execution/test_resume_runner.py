"""Resume through the runner: the demo trainer as a real subprocess saves its state while it
runs, a cancelled run is resumed, and the new run goes on from the saved epoch."""

import io
import threading
import time

import pytest
from django.core.management import call_command

from tests.queue_helpers import make_image_dataset, submit_demo
from training import services
from training.choices import ArtifactKind, RunStatus
from training.execution import runner
from training.models import TrainingRun
from training.resume import resume_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# 4 images, 1 repeat, batch 1: 4 steps an epoch, 12 in all.
PARAMS = {
    "max_train_epochs": 3,
    "resolution": 32,
    "network_dim": 4,
    "num_repeats": 1,
    "save_state": True,
    "sample_every_n_epochs": 0,
}


@pytest.fixture(autouse=True)
def _one_fake_gpu(settings):
    settings.LORASTUDIO_GPU_BACKEND = "fake"
    settings.LORASTUDIO_FAKE_GPUS = "24576:Fake 24G"


def log_of(run) -> str:
    return "".join(run.log_chunks.order_by("seq").values_list("text", flat=True))


def wait_for(predicate, what: str, limit: float = 60.0):
    deadline = time.monotonic() + limit
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def cancel_after_a_saved_epoch(student, dataset, monkeypatch):
    """A demo run cancelled while it trains, once it has stored the state of epoch 1:
    (the run, its newest state artifact)."""
    monkeypatch.setenv("DEMO_TRAINER_STEP_DELAY", "0.4")  # about 1.6 s an epoch
    first = submit_demo(student, dataset=dataset, params=PARAMS, name="cats")
    worker = threading.Thread(target=runner.execute, args=(first.pk,))
    worker.start()
    try:
        # The state of epoch 1 is stored while the trainer is still running (a run whose
        # worker dies keeps it), as soon as the trainer has started epoch 2.
        state = wait_for(
            lambda: first.artifacts.filter(kind=ArtifactKind.STATE, epoch=1).first(),
            "the state of epoch 1",
        )
        assert TrainingRun.objects.get(pk=first.pk).status == RunStatus.RUNNING
        services.cancel_run(first, by=student)
    finally:
        worker.join(timeout=60)
    first.refresh_from_db()
    assert first.status == RunStatus.CANCELLED, first.status_message
    assert first.step < first.total_steps == 12
    # Only the newest state is kept: epoch 1's unless epoch 2 ended before the cancel.
    assert list(first.artifacts.filter(kind="state", epoch__isnull=False)) == [
        first.artifacts.filter(kind="state").order_by("-epoch").first()
    ]
    saved = first.artifacts.filter(kind="state").order_by("-epoch").first()
    assert saved.epoch >= 1 and (saved.epoch > 1 or saved == state)
    monkeypatch.delenv("DEMO_TRAINER_STEP_DELAY")
    return first, saved


def test_a_cancelled_demo_run_resumes_from_its_saved_epoch_and_its_steps_go_on(
    student, monkeypatch
):
    dataset = make_image_dataset(student)
    first, saved = cancel_after_a_saved_epoch(student, dataset, monkeypatch)

    second = resume_run(first, by=student)
    second.refresh_from_db()
    assert second.status == RunStatus.ASSIGNED, second.status_message
    assert runner.execute(second.pk) == RunStatus.SUCCEEDED
    second.refresh_from_db()

    done_before = 4 * saved.epoch
    argv = second.argv
    assert argv[argv.index("--initial_epoch") + 1] == str(saved.epoch + 1)
    log = log_of(second)
    assert "resume training from local state:" in log
    assert f"epoch {saved.epoch + 1}/3" in log and "epoch 1/3" not in log
    # The step count goes on from the saved epoch to the end; it does not start again.
    assert (second.step, second.total_steps, second.epoch) == (12, 12, 3)
    new_steps = [s for s, _ in second.loss_points if s > done_before]
    assert new_steps == list(range(done_before + 1, 13))
    old_points = [p for p in first.loss_points if p[0] <= done_before]
    assert [p for p in second.loss_points if p[0] <= done_before] == old_points
    assert second.events.filter(note__contains=f"resumed after epoch {saved.epoch}").exists()

    # And it trains what an uninterrupted run trains: the trainer wrote the same LoRA.
    straight = submit_demo(student, dataset=dataset, params=PARAMS, name="cats")
    assert runner.execute(straight.pk) == RunStatus.SUCCEEDED
    final = second.artifacts.get(kind="final")
    assert final.trainer_sha256 == straight.artifacts.get(kind="final").trainer_sha256


def test_resume_wait_follows_the_continuing_run_until_it_succeeds(student, monkeypatch):
    """`manage.py resume RUN_ID --wait` while a worker (a thread here) trains the new run."""
    first, saved = cancel_after_a_saved_epoch(student, make_image_dataset(student), monkeypatch)

    def worker():
        from django.db import connection

        try:
            resumed = wait_for(
                lambda: TrainingRun.objects.filter(resumed_from=first, status="assigned").first(),
                "the resumed run to be assigned",
            )
            runner.execute(resumed.pk)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("resume", str(first.pk), "--wait", stdout=out, stderr=err)
    finally:
        thread.join(timeout=120)
    second = TrainingRun.objects.get(resumed_from=first)
    assert out.getvalue().strip() == str(second.pk)
    text = err.getvalue()
    assert f"Run #{second.pk} resumes run #{first.pk} after epoch {saved.epoch}" in text
    assert f"Run #{second.pk} succeeded." in text
    assert (second.status, second.step, second.total_steps) == (RunStatus.SUCCEEDED, 12, 12)
