"""The runner: a real trainer subprocess (demo or fake sd-scripts) from assigned to its end."""

import os
import subprocess
import sys
import threading
import time

import pytest
from safetensors import safe_open

from tests.queue_helpers import submit_demo, submit_fake_sd15
from training import services
from training.choices import RunStatus
from training.execution import process, runner
from training.models import RunEvent, TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(autouse=True)
def _one_fake_gpu(settings):
    settings.LORASTUDIO_GPU_BACKEND = "fake"
    settings.LORASTUDIO_FAKE_GPUS = "24576:Fake 24G"


def _assigned(run):
    run.refresh_from_db()
    assert run.status == RunStatus.ASSIGNED, run.status_message
    return run


def _log(run) -> str:
    return "".join(run.log_chunks.order_by("seq").values_list("text", flat=True))


def test_demo_run_succeeds_with_lora_log_progress_and_events(student):
    run = _assigned(submit_demo(student))

    assert runner.execute(run.pk) == RunStatus.SUCCEEDED

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    events = list(run.events.values_list("to_status", flat=True))
    assert events == ["queued", "assigned", "preparing", "running", "succeeded"]
    final = run.artifacts.get(kind="final")
    path = final.file.path
    with safe_open(path, "pt") as fh:
        keys = list(fh.keys())
        assert fh.metadata()["ss_network_dim"] == "4"
    assert any(k.startswith("lora_unet_") and k.endswith(".lora_down.weight") for k in keys)
    assert final.size_bytes == os.path.getsize(path) and len(final.sha256) == 64
    assert run.artifacts.filter(kind="epoch", epoch=1).exists()
    log = _log(run)
    assert "epoch 2/2" in log and "saving checkpoint:" in log
    assert "it/s" not in log  # no tqdm bar; "sample_steps: 8" is a real line
    assert not any(line.startswith("steps:") for line in log.splitlines())
    seqs = list(run.log_chunks.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert run.step == run.total_steps and run.step > 0
    losses = [loss for _, loss in run.loss_points]
    assert len(losses) > 3 and losses[-1] < losses[0]
    assert run.pgid is None and run.exit_code == 0


def test_final_lora_is_published_in_the_owners_folder(student, tmp_path):
    from tests.factories import make_node

    node = make_node(lora_dir=str(tmp_path / "Lora"))
    run = _assigned(submit_demo(student, node=node))
    runner.execute(run.pk)
    final = TrainingRun.objects.get(pk=run.pk).artifacts.get(kind="final")
    assert final.published_path.startswith(str(tmp_path / "Lora" / "alice"))
    assert os.path.getsize(final.published_path) == final.size_bytes


def test_a_username_cannot_publish_outside_the_lora_folder(tmp_path):
    from tests.factories import make_node, make_user

    owner = make_user(username="..")  # a valid Django username
    node = make_node(lora_dir=str(tmp_path / "Lora"))
    run = _assigned(submit_demo(owner, node=node))
    assert runner.execute(run.pk) == RunStatus.SUCCEEDED
    final = TrainingRun.objects.get(pk=run.pk).artifacts.get(kind="final")
    expected = tmp_path / "Lora" / f"user{owner.pk}" / f"lora-run{run.pk}.safetensors"
    assert final.published_path == str(expected)
    assert not list(tmp_path.glob("*.safetensors"))  # nothing landed beside the folder


def test_redelivered_task_does_nothing(student):
    run = _assigned(submit_demo(student))
    runner.execute(run.pk)
    before = RunEvent.objects.filter(run=run).count()
    assert runner.execute(run.pk) == "skipped"
    assert RunEvent.objects.filter(run=run).count() == before


@pytest.mark.parametrize(
    "trainer, reason, words",
    [
        ("oom", "oom", "out of memory"),
        ("bad_args", "config", "unrecognized arguments: --bogus_flag"),
        ("no_data", "trainer_error", "No data found"),
    ],
)
def test_trainer_failures_are_classified(student, tmp_path, trainer, reason, words):
    run = _assigned(submit_fake_sd15(student, tmp_path, trainer))

    assert runner.execute(run.pk) == RunStatus.FAILED

    run.refresh_from_db()
    assert (run.status, run.failure_reason) == (RunStatus.FAILED, reason)
    assert words in run.status_message
    assert run.argv[1].endswith("train_network.py") and "--console_log_simple" in run.argv
    assert _log(run)  # the failed run keeps its log


def test_cancel_stops_the_trainer_process_group_within_5_seconds(
    student, tmp_path, monkeypatch, settings
):
    pid_file = tmp_path / "pids"
    monkeypatch.setenv("FAKE_TRAINER_PID_FILE", str(pid_file))
    settings.LORASTUDIO_TRAINER_ENV = ["FAKE_TRAINER_*"]  # not in the trainer's allow-list
    run = _assigned(submit_fake_sd15(student, tmp_path, "hang"))
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("r", runner.execute(run.pk)))
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert time.monotonic() < deadline, "the fake trainer never started"
            time.sleep(0.05)
        run.refresh_from_db()
        assert run.status == RunStatus.RUNNING and run.pgid
        pgid = run.pgid
        trainer_pid, child_pid = map(int, pid_file.read_text().split())
        assert {trainer_pid, child_pid} <= process.group_pids(pgid)

        services.cancel_run(run, by=student)
        asked = time.monotonic()
        while process.group_pids(pgid):
            assert time.monotonic() - asked < 5, "process group still alive after 5 s"
            time.sleep(0.05)
    finally:
        worker.join(timeout=30)
    run.refresh_from_db()
    assert result["r"] == RunStatus.CANCELLED
    assert run.status == RunStatus.CANCELLED and run.pgid is None


WORKER = """
import subprocess, sys, django
django.setup()
from training.execution import process
if sys.argv[1] == "fallback":
    process.setpriv = lambda: None
sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
argv, preexec_fn = process.with_parent_death_signal(sleeper)
child = subprocess.Popen(argv, preexec_fn=preexec_fn, start_new_session=True)
print(child.pid, flush=True)
"""


@pytest.mark.parametrize("how", ["setpriv", "fallback"])
def test_trainer_gets_sigkill_when_its_worker_dies(how):
    if how == "setpriv" and process.setpriv() is None:
        pytest.skip("util-linux setpriv is not installed")
    worker = subprocess.run(
        [sys.executable, "-c", WORKER, how], capture_output=True, text=True, timeout=60
    )
    assert worker.returncode == 0, worker.stderr
    trainer = int(worker.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{trainer}") and _state(trainer) != "Z":
        assert time.monotonic() < deadline, "the trainer outlived its worker"
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def test_not_enough_free_memory_sends_the_run_back_to_the_queue(student, tmp_path, settings):
    run = _assigned(submit_fake_sd15(student, tmp_path, "oom"))
    settings.LORASTUDIO_FAKE_GPUS = "24576/512:Fake 24G nearly full"

    assert runner.execute(run.pk) == RunStatus.QUEUED

    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.gpu_id is None
    back = run.events.filter(to_status="queued").last()
    assert "has 0.5 GB free" in back.note
    # Dispatch now knows the GPU is nearly full and says so instead of retrying it at once.
    assert "best is" in run.status_message and "with 0.5 GB" in run.status_message


def test_a_disk_that_fills_up_while_preparing_fails_as_disk_full(student, tmp_path):
    from tests.factories import make_node

    full = tmp_path / "small-disk"
    full.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(full)])
    if mounted.returncode != 0:
        pytest.skip("mounting a 4 KiB tmpfs needs root")
    try:
        run = _assigned(submit_demo(student, node=make_node(work_dir=str(full))))
        assert runner.execute(run.pk) == RunStatus.FAILED
        run.refresh_from_db()
        assert run.failure_reason == "disk_full"
        assert "No space left on device" in run.status_message
        assert "[LoRA Studio] The disk filled up" in _log(run)
    finally:
        subprocess.run(["umount", str(full)])


def test_the_trainer_never_sees_the_apps_secrets(student, tmp_path, monkeypatch, settings):
    secrets = {
        "SECRET_KEY": "worker-secret-key-that-must-stay-in-the-worker-0123456789",
        "DATABASE_URL": "postgres://lorastudio:db-password-123@db.lab:5432/lorastudio",
        "REDIS_URL": "redis://:redis-password-456@redis.lab:6379/0",
        "DJANGO_SUPERUSER_PASSWORD": "superuser-password-789",
        "PGPASSWORD": "pg-password-000",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("WANDB_API_KEY", "passed-on-purpose")
    settings.LORASTUDIO_TRAINER_ENV = ["WANDB_*", "SECRET_KEY"]  # SECRET_KEY never passes
    run = _assigned(submit_fake_sd15(student, tmp_path, "print_env"))

    runner.execute(run.pk)

    log = _log(TrainingRun.objects.get(pk=run.pk))
    assert "ENV CUDA_VISIBLE_DEVICES=0" in log  # the run's own GPU
    assert f"ENV HF_HOME={tmp_path / 'hf'}" in log
    assert "ENV WANDB_API_KEY=passed-on-purpose" in log
    assert "ENV PATH=" in log and "ENV PYTHONUNBUFFERED=1" in log
    for name, value in secrets.items():
        assert f"ENV {name}=" not in log and value not in log
    assert "ENV LORASTUDIO_" not in log
