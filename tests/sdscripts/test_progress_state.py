"""Folding a trainer's progress: ProgressState, table-driven."""

import pytest

from sdscripts.progress import MAX_LOSS_POINTS, Progress, ProgressState


def bar(step, loss=None, total=8, rate=0.25, remaining=16):
    return Progress(step, total, 4, remaining, rate, loss)


@pytest.mark.parametrize(
    "bars, points, loss",
    [
        # sd-scripts draws each step twice: the previous step's loss first, then its own.
        (
            [bar(1), bar(1, 1.15), bar(2, 1.15), bar(2, 1.11), bar(3, 1.11), bar(3, 1.09)],
            [[1, 1.15], [2, 1.11], [3, 1.09]],
            1.09,
        ),
        ([bar(0), bar(1)], [], None),  # no loss drawn yet
        ([bar(1, 2.0), bar(1, 1.5), bar(1, 1.0)], [[1, 1.0]], 1.0),  # the last draw wins
        ([bar(0, 9.9)], [], None),  # step 0 has no loss of its own
        ([bar(2, 1.0), bar(4, 0.5)], [[2, 1.0], [4, 0.5]], 0.5),  # skipped draws are fine
    ],
)
def test_fold_bar_keeps_one_point_per_step_the_last_drawn(bars, points, loss):
    state = ProgressState()
    for b in bars:
        state.fold_bar(b)
    assert state.loss_points == points
    assert state.loss == loss
    assert (state.step, state.total_steps) == (bars[-1].step, 8)


def test_speed_and_eta_follow_the_latest_bar():
    state = ProgressState()
    state.fold_bar(bar(3, 1.0, rate=0.5, remaining=10))
    assert (state.speed, state.eta_seconds) == (0.5, 10)


def test_long_runs_keep_at_most_max_points_and_always_the_newest():
    state = ProgressState()
    for step in range(1, 3 * MAX_LOSS_POINTS):
        state.fold_bar(bar(step, 1.0 / step, total=10**6))
    assert len(state.loss_points) <= MAX_LOSS_POINTS
    assert state.loss_points[-1][0] == 3 * MAX_LOSS_POINTS - 1
    steps = [s for s, _ in state.loss_points]
    assert steps == sorted(steps) and steps[0] == 1


@pytest.mark.parametrize(
    "line, changed, fields",
    [
        ("epoch 2/5", True, {"epoch": 2, "total_epochs": 5}),
        ("  total optimization steps / 学習ステップ数: 120", True, {"total_steps": 120}),
        ("saving checkpoint: /w/lora-000001.safetensors", False, {}),
        ("prompt: a photo of sks dog on grass", False, {}),
    ],
)
def test_fold_line_reads_epochs_and_total_steps(line, changed, fields):
    state = ProgressState()
    assert state.fold_line(line) is changed
    for name, value in fields.items():
        assert state.fields()[name] == value


@pytest.mark.parametrize(
    "bars, expected",
    [
        # After --resume sd-scripts' bar counts from 0 again out of all 12 steps (the start
        # summary's total): the run goes on from the 4 steps done before.
        (
            [bar(0, total=12), bar(1, 0.9, total=12), bar(8, 0.5, total=12)],
            [(4, 12), (5, 12), (12, 12)],
        ),
        # A bar that counts only the steps left (8 of them) ends at the same place.
        ([bar(1, 0.9, total=8), bar(8, 0.5, total=8)], [(5, 12), (12, 12)]),
        # Never past the end, whatever a trainer draws.
        ([bar(11, 0.5, total=12)], [(12, 12)]),
    ],
)  # fmt: skip
def test_a_resumed_runs_steps_continue_from_the_steps_done_before(bars, expected):
    state = ProgressState(step=4, epoch=1, loss_points=[[4, 1.0]])
    state.step_offset = 4
    state.fold_line("  total optimization steps / 学習ステップ数: 12")
    seen = []
    for b in bars:
        state.fold_bar(b)
        seen.append((state.step, state.total_steps))
    assert seen == expected
    steps = [s for s, _ in state.loss_points]
    assert steps == sorted(set(steps)) and steps[0] == 4
