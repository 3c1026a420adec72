"""Real sd-scripts output, replayed through the runner's real reading path.

Each fixture in tests/fixtures/sdscripts is the console output of a real sd-scripts run
(SD 1.5 layout, random weights, CPU), byte for byte. tests/fake_trainers/replay.py plays it
back as the trainer process and writes the files the real run wrote, so everything from the
pipes to the run's rows is the code a real run goes through.
"""

import json
import re

import pytest

from tests.paths import FIXTURES
from tests.queue_helpers import submit_replay
from training.choices import RunStatus
from training.execution import runner

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
PROMPTS = "a photo of sks dog on grass\nsks dog sitting, red background"


@pytest.fixture(autouse=True)
def _one_fake_gpu(settings):
    settings.LORASTUDIO_GPU_BACKEND = "fake"
    settings.LORASTUDIO_FAKE_GPUS = "24576:Fake 24G"


def replayed(student, tmp_path, fixture, **kw):
    run = submit_replay(student, tmp_path, fixture, **kw)
    run.refresh_from_db()
    assert run.status == RunStatus.ASSIGNED, run.status_message
    runner.execute(run.pk)
    run.refresh_from_db()
    return run


def log_of(run) -> str:
    return "".join(run.log_chunks.order_by("seq").values_list("text", flat=True))


def console_losses(fixture: str) -> list[list]:
    """TensorBoard's per-step `loss/average`, as the console prints it (3 significant digits)."""
    scalars = json.loads((FIXTURES / "sdscripts" / f"{fixture}.tensorboard.json").read_text())
    return [[step, float(f"{value:.3g}")] for step, value in scalars["loss/average"]]


def test_a_real_run_gives_each_step_its_own_loss_its_files_and_a_clean_log(student, tmp_path):
    fixture = "sd15_train_sample_save"
    run = replayed(
        student, tmp_path, fixture,
        params={"max_train_epochs": 2, "sample_every_n_epochs": 1}, sample_prompts=PROMPTS,
    )  # fmt: skip
    assert run.status == RunStatus.SUCCEEDED, run.status_message
    assert run.loss_points == console_losses(fixture)  # not one step behind
    assert run.loss == console_losses(fixture)[-1][1]
    assert (run.step, run.total_steps, run.epoch, run.total_epochs) == (12, 12, 2, 2)
    assert sorted(run.artifacts.values_list("kind", "epoch")) == [("epoch", 1), ("final", None)]
    samples = list(run.samples.order_by("epoch", "index").values_list("epoch", "index", "prompt"))
    assert samples == [
        (1, 0, "a photo of sks dog on grass"),
        (1, 1, "sks dog sitting, red background"),
        (2, 0, "a photo of sks dog on grass"),
        (2, 1, "sks dog sitting, red background"),
    ]
    log = log_of(run)
    assert "saving checkpoint:" in log and "model saved." in log
    assert not CONTROL.search(log), "terminal control sequences reached the stored log"
    bars = [line for line in log.splitlines() if re.search(r"\d+/\d+ \[\d\d:\d\d", line)]
    assert bars == []  # bars are progress, not log lines


def test_steps_instead_of_epochs_with_step_saves_and_step_samples(student, tmp_path):
    params = {"max_train_steps": 6, "save_every_n_steps": 2, "sample_every_n_steps": 3}
    params["sample_every_n_epochs"] = 0
    run = replayed(student, tmp_path, "sd15_save_every_n_steps", params=params)
    assert run.status == RunStatus.SUCCEEDED, run.status_message
    argv = run.argv
    assert argv[argv.index("--max_train_steps") + 1] == "6" and "--max_train_epochs" not in argv
    assert argv[argv.index("--save_every_n_steps") + 1] == "2"
    assert argv[argv.index("--sample_every_n_steps") + 1] == "3"
    assert "--sample_every_n_epochs" not in argv
    # Sampled at steps 3 and 6, with the dataset's captions as prompts (the box was empty).
    assert sorted(run.samples.values_list("step", "index")) == [(3, 0), (3, 1), (6, 0), (6, 1)]
    steps = sorted(s for s in run.artifacts.filter(kind="step").values_list("step", flat=True))
    assert steps == [2, 4, 6]
    assert run.artifacts.filter(kind="final").count() == 1
    assert run.loss_points == console_losses("sd15_save_every_n_steps")


@pytest.mark.parametrize(
    "fixture, reason, words",
    [
        ("sd15_bad_args", "config", "unrecognized arguments: --bogus_flag"),
        ("sd15_no_data", "trainer_error", "No data found"),
        ("sd15_oom", "oom", "CUDA out of memory"),
    ],
)
def test_real_failures_are_classified_and_keep_their_log(student, tmp_path, fixture, reason, words):
    run = replayed(student, tmp_path, fixture)
    assert (run.status, run.failure_reason) == (RunStatus.FAILED, reason)
    assert words in run.status_message
    assert log_of(run)
    assert not CONTROL.search(log_of(run))


def test_an_out_of_memory_run_keeps_its_progress_and_gets_advice(student, tmp_path):
    run = replayed(student, tmp_path, "sd15_oom")
    assert run.step == 2 and [s for s, _ in run.loss_points] == [1, 2]
    assert "Try" in run.status_message  # savers or a smaller batch


def test_a_damaged_checkpoint_names_the_file_and_what_to_do(student, tmp_path):
    run = replayed(student, tmp_path, "sd15_corrupt_checkpoint")
    assert (run.status, run.failure_reason) == (RunStatus.FAILED, "model_file")
    assert "sd15.safetensors" in run.status_message
    assert "download" in run.status_message.lower()


@pytest.mark.parametrize("fixture", ["sd15_offline_no_tokenizer", "sd15_no_network_no_tokenizer"])
def test_a_node_that_cannot_fetch_tokenizers_is_told_how_to_work_offline(
    student, tmp_path, fixture
):
    run = replayed(student, tmp_path, fixture)
    assert (run.status, run.failure_reason) == (RunStatus.FAILED, "config")
    assert "tokenizer" in run.status_message
    assert "--tokenizer-cache-dir" in run.status_message


def test_a_trainer_killed_mid_run_keeps_what_it_did(student, tmp_path):
    run = replayed(student, tmp_path, "sd15_cancelled")
    assert (run.status, run.failure_reason) == (RunStatus.FAILED, "trainer_error")
    assert "SIGTERM" in run.status_message
    assert run.step == 8 and run.total_steps == 20
