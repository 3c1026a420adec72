"""Resume: the run page's button, the admin, `manage.py resume` and the automatic
resume of a lost run all make one continuing run from the last saved state."""

import io
import json
import zipfile
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_base_model, make_node, make_trainable_dataset
from tests.training.admin_helpers import CHANGELIST
from training import reaper, services
from training.choices import ArtifactKind, RunStatus
from training.execution import workdir
from training.lifecycle import transition
from training.models import LoraArtifact, RunEvent, TrainingRun

pytestmark = pytest.mark.django_db

PARAMS = {"max_train_epochs": 3, "resolution": 32, "network_dim": 4, "save_state": True}


def state_zip(folder: str, epoch: int, step: int) -> bytes:
    """A STATE artifact's zip as the runner writes it: one folder with train_state.json."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        state = {"current_epoch": epoch, "current_step": step}
        zf.writestr(f"{folder}/train_state.json", json.dumps(state))
        zf.writestr(f"{folder}/model.safetensors", b"weights")
    return out.getvalue()


def lost_run(owner, *, reason="worker_lost", epoch=1, status=RunStatus.FAILED, node=None):
    """A run that trained one epoch of three (4 steps each), saved its state and then ended."""
    node = node or make_node()
    run = services.submit_run(
        owner,
        dataset=make_trainable_dataset(owner=owner, images=2),
        base_model=make_base_model(architecture="demo"),
        params=PARAMS,
        name="cats",
    )
    for to in ("assigned", "preparing", "running"):
        transition(run, to, changes={"node": node} if to == "assigned" else None)
    points = [[n, 1.0 / n] for n in range(1, 7)]
    TrainingRun.objects.filter(pk=run.pk).update(
        step=6, total_steps=12, epoch=2, total_epochs=3, loss_points=points,
        heartbeat_at=timezone.now(),
    )  # fmt: skip
    if epoch is not None:
        folder = f"cats-run{run.pk}-{epoch:06d}-state"
        artifact = LoraArtifact(run=run, kind=ArtifactKind.STATE, epoch=epoch)
        artifact.file.save(f"{folder}.zip", ContentFile(state_zip(folder, epoch, 4 * epoch)))
    if status == RunStatus.FAILED:
        transition(run, status, reason=reason, note="lost")
    elif status != RunStatus.RUNNING:
        transition(run, status)
    run.refresh_from_db()
    return run


def test_the_resume_button_starts_a_run_that_continues_after_the_saved_epoch(
    student_client, student
):
    run = lost_run(student, status=RunStatus.CANCELLED)
    page = student_client.get(reverse("training:run-detail", args=[run.pk])).content.decode()
    assert "Resume from epoch 1" in page
    response = student_client.post(reverse("training:run-resume", args=[run.pk]))
    new = TrainingRun.objects.exclude(pk=run.pk).get()
    assert response["Location"] == reverse("training:run-detail", args=[new.pk])
    assert (new.resumed_from, new.resume_epoch, new.resume_step) == (run, 1, 4)
    assert new.resume_state == run.artifacts.get(kind="state") and not new.auto_resumed
    assert (new.params, new.dataset, new.name) == (run.params, run.dataset, "cats")
    assert new.status == RunStatus.QUEUED
    new_page = student_client.get(response["Location"]).content.decode()
    assert f'Resumes <a href="/runs/{run.pk}/">run #{run.pk}</a> after epoch 1' in new_page
    old_page = student_client.get(reverse("training:run-detail", args=[run.pk])).content.decode()
    assert f'Resumed by <a href="/runs/{new.pk}/">run #{new.pk}</a>' in old_page
    assert "Resume from epoch" not in old_page  # it is being resumed


def test_another_student_cannot_resume_a_run(client, student, other_student):
    run = lost_run(student)
    client.force_login(other_student)
    assert client.post(reverse("training:run-resume", args=[run.pk])).status_code == 404
    assert client.get(reverse("training:run-resume", args=[run.pk])).status_code == 405
    assert TrainingRun.objects.count() == 1


def test_resume_is_refused_with_the_reason_and_changes_nothing(student_client, student):
    without = lost_run(student, epoch=None)
    response = student_client.post(reverse("training:run-resume", args=[without.pk]), follow=True)
    assert "saved no training state" in response.content.decode()
    assert "Resume from epoch" not in response.content.decode()
    run = lost_run(student)
    student_client.post(reverse("training:run-resume", args=[run.pk]))
    again = student_client.post(reverse("training:run-resume", args=[run.pk]), follow=True)
    assert "is already resumed by run" in again.content.decode()
    assert TrainingRun.objects.filter(resumed_from=run).count() == 1


def test_a_resumed_runs_job_unpacks_the_state_and_passes_it_to_the_trainer(student, tmp_path):
    run = lost_run(student)
    new = services_resume(run)
    job, built = workdir.prepare(new, make_node(work_dir=str(tmp_path / "work")))
    folder = tmp_path / "work" / f"run-{new.pk}" / "resume" / f"cats-run{run.pk}-000001-state"
    assert json.loads((folder / "train_state.json").read_text())["current_epoch"] == 1
    argv = built.argv
    assert argv[argv.index("--resume") + 1] == str(folder) == job.resume_dir
    assert argv[argv.index("--initial_epoch") + 1] == "2" and "--save_state" in argv


def test_a_state_whose_file_is_gone_cannot_be_resumed(student):
    run = lost_run(student)
    artifact = run.artifacts.get(kind="state")
    artifact.file.delete(save=False)
    with pytest.raises(Exception, match="is gone from the server"):
        services_resume(run)


def services_resume(run):
    from training.resume import resume_run

    return resume_run(run, by=run.owner)


# --- automatic resume of lost runs -----------------------------------------------------------


def stale(run):
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))


def test_a_lost_run_is_resumed_once_automatically(
    student, django_capture_on_commit_callbacks, settings
):
    run = lost_run(student, status=RunStatus.RUNNING)
    stale(run)
    with django_capture_on_commit_callbacks(execute=True):
        assert reaper.reap() == [run.pk]
    run.refresh_from_db()
    assert (run.status, run.failure_reason) == (RunStatus.FAILED, "worker_lost")
    new = TrainingRun.objects.get(resumed_from=run)
    assert new.auto_resumed and new.resume_epoch == 1
    assert new.status == RunStatus.ASSIGNED  # dispatched at once to a node that fits
    note = RunEvent.objects.filter(run=run, kind="action").last().note
    assert note == f"Resumed automatically as run #{new.pk} from epoch 1."
    # Lost again: a person decides (once means once).
    for to in ("preparing", "running"):
        transition(new, to)
    stale(new)
    with django_capture_on_commit_callbacks(execute=True):
        reaper.reap()
    new.refresh_from_db()
    assert new.failure_reason == "worker_lost"
    assert not TrainingRun.objects.filter(resumed_from=new).exists()
    assert "itself an automatic resume" in RunEvent.objects.filter(run=new).last().note


def test_a_lost_run_without_a_state_says_why_it_was_not_resumed(
    student, django_capture_on_commit_callbacks
):
    run = lost_run(student, status=RunStatus.RUNNING, epoch=None)
    stale(run)
    with django_capture_on_commit_callbacks(execute=True):
        reaper.reap()
    assert TrainingRun.objects.count() == 1
    note = RunEvent.objects.filter(run=run).last().note
    assert note.startswith("Not resumed automatically: ") and "saved no training state" in note


def test_automatic_resume_can_be_turned_off(student, django_capture_on_commit_callbacks, settings):
    settings.LORASTUDIO_AUTO_RESUME = False
    run = lost_run(student, status=RunStatus.RUNNING)
    stale(run)
    with django_capture_on_commit_callbacks(execute=True):
        reaper.reap()
    assert TrainingRun.objects.count() == 1


def test_other_failures_are_not_resumed_automatically(student, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        lost_run(student, reason="oom")
    assert TrainingRun.objects.count() == 1


# --- the command, the admin and the API ------------------------------------------------------


def test_resume_command_prints_the_new_runs_id(student):
    run = lost_run(student)
    out, err = StringIO(), StringIO()
    call_command("resume", str(run.pk), stdout=out, stderr=err)
    new = TrainingRun.objects.get(resumed_from=run)
    assert out.getvalue().strip() == str(new.pk)
    assert f"resumes run #{run.pk} after epoch 1" in err.getvalue()


def test_resume_command_refuses_what_cannot_be_resumed(student):
    with pytest.raises(CommandError, match="no run #999"):
        call_command("resume", "999", stdout=StringIO(), stderr=StringIO())
    without = lost_run(student, epoch=None)
    with pytest.raises(CommandError, match="saved no training state"):
        call_command("resume", str(without.pk), stdout=StringIO(), stderr=StringIO())
    assert TrainingRun.objects.count() == 1


def test_the_admin_resumes_selected_runs(staff_client, student):
    run = lost_run(student)
    response = staff_client.post(
        reverse(CHANGELIST), {"action": "resume_runs", "_selected_action": [run.pk]}, follow=True
    )
    new = TrainingRun.objects.get(resumed_from=run)
    assert f"Resumed 1 run: #{new.pk} (#{run.pk} after epoch 1)." in response.content.decode()
