"""The demo trainer's --save_state and --resume, as sd-scripts' (docs/sd-scripts.md)."""

import json

import pytest
from safetensors.torch import load_file

from tests.demo_trainer.test_demo_trainer import bars, make_dataset, run_trainer

pytestmark = pytest.mark.slow

# 8 images × 2 repeats, batch 2: 8 steps an epoch, 32 in all.
STATE = {"save_every_n_epochs": 1, "max_train_epochs": 4}


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    root = tmp_path_factory.mktemp("state")
    config = make_dataset(root, 8)
    return config, run_trainer(config, root / "out", "--save_state", **STATE)


def test_a_state_folder_per_saved_epoch_and_one_at_the_end(straight):
    _, run = straight
    assert run.returncode == 0, run.stderr
    folders = sorted(p.name for p in run.output_dir.glob("*-state"))
    assert folders == ["demo-000001-state", "demo-000002-state", "demo-000003-state", "demo-state"]
    for epoch, folder in enumerate(folders, start=1):
        state = json.loads((run.output_dir / folder / "train_state.json").read_text())
        assert state == {"current_epoch": epoch, "current_step": 8 * epoch}
        assert (run.output_dir / folder / "model.safetensors").is_file()
    assert "saving state at epoch 2" in run.stdout


@pytest.mark.parametrize("initial_epoch", [None, 3])
def test_resume_goes_on_at_the_next_epoch_and_trains_the_same_weights(
    straight, tmp_path, initial_epoch
):
    config, first = straight
    extra = ["--resume", str(first.output_dir / "demo-000002-state"), "--save_state"]
    if initial_epoch:  # what LoRA Studio passes; without it the state's step count decides
        extra += ["--initial_epoch", str(initial_epoch)]
    resumed = run_trainer(config, tmp_path / "out", *extra, **STATE)
    assert resumed.returncode == 0, resumed.stderr
    assert "resume training from local state:" in resumed.stdout
    assert "epoch 3/4" in resumed.stdout and "epoch 2/4" not in resumed.stdout
    # As sd-scripts' after a resume: the bar counts 16 new steps out of all 32.
    drawn = bars(resumed.stderr)
    assert (drawn[0].step, drawn[-1].step, drawn[-1].total) == (0, 16, 32)
    # Its own states record the whole run's steps.
    state = json.loads((tmp_path / "out" / "demo-000003-state" / "train_state.json").read_text())
    assert state == {"current_epoch": 3, "current_step": 24}
    a = load_file(str(first.output_dir / "demo.safetensors"))
    b = load_file(str(tmp_path / "out" / "demo.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_a_state_that_is_not_there_fails_like_a_trainer_error(straight, tmp_path):
    config, _ = straight
    run = run_trainer(config, tmp_path / "out", "--resume", str(tmp_path / "nothing"), **STATE)
    assert run.returncode == 1 and "Could not load the training state" in run.stderr
    assert not list((tmp_path / "out").glob("*.safetensors"))


def test_resuming_past_the_last_epoch_is_refused(straight, tmp_path):
    config, first = straight
    state = str(first.output_dir / "demo-000002-state")
    run = run_trainer(config, tmp_path / "out", "--resume", state, "--initial_epoch", "5", **STATE)
    assert run.returncode == 1 and "max_train_steps should be greater" in run.stdout
