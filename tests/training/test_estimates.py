"""The pure estimate: time per step from history or the prior, the queue's start, words."""

import pytest

from training.estimates import (
    Measured,
    Option,
    Place,
    Shape,
    Waiting,
    about,
    accuracy,
    choose_option,
    expected_start,
    free_after,
    remaining_s,
    starts_in_order,
    step_time,
)

SHAPE = Shape("sdxl", "RTX 4090", 1024, 1, ())


def prior(shape: Shape) -> float:
    return 1.0 * (shape.resolution / 1024) ** 2 * shape.batch


def test_without_history_the_prior_answers_and_says_it_is_a_guess():
    result = step_time(SHAPE, [], prior)
    assert (result.seconds, result.basis, result.runs, result.margin) == (1.0, "prior", 0, 1.0)
    assert "guess" in result.words()


def test_runs_of_the_same_shape_give_their_median_and_spread():
    history = [Measured(SHAPE, s) for s in (2.0, 2.2, 1.8)]
    history.append(Measured(Shape("sdxl", "A100", 1024, 1, ()), 0.5))  # another GPU model
    result = step_time(SHAPE, history, prior)
    assert result.basis == "same" and result.runs == 3
    assert result.seconds == pytest.approx(2.0)
    assert result.spread == pytest.approx(0.1)
    assert result.margin == pytest.approx(0.1)
    assert "fairly sure" in result.words() and "3 finished runs" in result.words()


def test_one_run_alone_is_only_rough():
    result = step_time(SHAPE, [Measured(SHAPE, 3.0)], prior)
    assert (result.seconds, result.margin) == (3.0, 0.25)
    assert result.words().startswith("roughly")


def test_other_shapes_calibrate_the_prior_preferring_the_same_gpu_model():
    other_res = Shape("sdxl", "RTX 4090", 512, 1, ())  # prior 0.25
    other_gpu = Shape("sdxl", "A100", 512, 1, ())
    history = [Measured(other_res, 0.5), Measured(other_gpu, 0.1)]
    result = step_time(SHAPE, history, prior)
    assert result.basis == "similar" and result.runs == 1
    assert result.seconds == pytest.approx(2.0)  # twice the prior, as on this GPU model


def test_a_gpu_model_not_known_yet_matches_any():
    result = step_time(Shape("sdxl", "", 1024, 1, ()), [Measured(SHAPE, 1.5)], prior)
    assert result.basis == "same" and result.seconds == 1.5


def test_runs_of_other_architectures_never_count():
    result = step_time(SHAPE, [Measured(Shape("sd15", "RTX 4090", 1024, 1, ()), 9.0)], prior)
    assert result.basis == "prior"


GPU_24 = Place("a", "RTX 4090", 24576, 0.0, "n1 GPU 0")
GPU_80 = Place("b", "A100", 81920, 600.0, "n2 GPU 0")
CPU = Place("c", "CPU", None, 30.0, "n1")


def test_an_idle_gpu_that_fits_starts_it_now():
    assert expected_start([GPU_24, GPU_80], [], 20000) == (0.0, GPU_24)


def test_a_run_too_big_for_the_free_gpu_waits_for_the_big_one():
    assert expected_start([GPU_24, GPU_80], [], 40000) == (600.0, GPU_80)


def test_runs_ahead_take_the_first_free_place_that_fits_them():
    ahead = [Waiting(20000, 300.0), Waiting(20000, 500.0), Waiting(None, 99.0)]
    free = free_after([GPU_24, GPU_80, CPU], ahead)
    # The second run ahead waits for the 24 GB GPU (free at 300 s) rather than the 80 GB one.
    assert free == {"a": 800.0, "b": 600.0, "c": 129.0}
    assert expected_start([GPU_24, GPU_80, CPU], ahead, 20000) == (600.0, GPU_80)


def test_demo_runs_use_cpu_places_only_and_nothing_fits_without_one():
    assert expected_start([GPU_24, CPU], [], None) == (30.0, CPU)
    assert expected_start([GPU_24], [], None) is None
    assert expected_start([CPU], [], 1000) is None


def test_a_run_ahead_that_fits_nowhere_blocks_nothing():
    assert expected_start([GPU_24], [Waiting(99999, 1000.0)], 1000) == (0.0, GPU_24)


def test_one_pass_gives_every_queued_run_the_start_its_runs_ahead_give_it():
    queue = [
        Waiting(20000, 300.0),
        Waiting(99999, 50.0),  # fits nowhere: no start, blocks nothing
        Waiting(None, 99.0),
        Waiting(40000, 700.0),
        Waiting(20000, 500.0),
        Waiting(None, 10.0),
    ]
    places = [GPU_24, GPU_80, CPU]
    expected = [expected_start(places, queue[:i], run.need_mib) for i, run in enumerate(queue)]
    assert starts_in_order(places, queue) == expected
    assert expected[1] is None and expected[3] == (600.0, GPU_80)


def test_remaining_time_comes_from_progress_else_the_estimate():
    progress = {"step": 50, "total_steps": 150, "speed": 2.0, "elapsed_s": 99, "duration_s": 9}
    assert remaining_s(**progress) == 50.0
    fresh = {"step": 0, "total_steps": None, "speed": None, "elapsed_s": 40.0}
    assert remaining_s(**fresh, duration_s=100.0) == 60.0
    assert remaining_s(**fresh, duration_s=10.0) == 0.0


@pytest.mark.parametrize(
    "seconds, words",
    [
        (None, "unknown"),
        (0, "under a minute"),
        (59, "under a minute"),
        (61, "about 1 min"),
        (3599, "about 1 h"),
        (3600, "about 1 h"),
        (4500, "about 1 h 15 min"),
        (3 * 3600 + 17 * 60, "about 3 h 20 min"),
        (3 * 86400, "about 3 days"),
    ],
)
def test_durations_read_as_round_words(seconds, words):
    assert about(seconds) == words


def test_accuracy_sets_estimates_against_what_runs_took():
    result = accuracy([(110, 100), (80, 100), (300, 100), (0, 50), (10, 0)])
    assert result.runs == 3 and result.within_25 == 2
    assert result.median_error == pytest.approx(0.2) and result.bias == pytest.approx(0.1)
    assert accuracy([]) is None


def opt(key, start, duration, room):
    return Option(key, start, duration, room, ("node", key))


@pytest.mark.parametrize(
    "options, chosen",
    [
        # Equal times: the GPU with the least room that holds it (best fit).
        ([opt(1, 0, 3600, 98304), opt(2, 0, 3600, 24576)], 2),
        # Within 10 % of the soonest: still the smaller one.
        ([opt(1, 0, 3600, 98304), opt(2, 0, 3900, 24576)], 2),
        # Savers that cost more than 10 %: the larger, faster GPU.
        ([opt(1, 0, 3600, 98304), opt(2, 0, 5400, 24576)], 1),
        # A busy GPU that finishes it clearly sooner is worth waiting for ...
        ([opt(1, 600, 3600, 98304), opt(2, 0, 5400, 24576)], 1),
        # ... but not one that finishes it only a little sooner.
        ([opt(1, 1500, 3600, 98304), opt(2, 0, 5400, 24576)], 2),
        # Of the busy ones, the soonest finish.
        ([opt(1, 900, 3600, 98304), opt(3, 300, 3600, 49152), opt(2, 0, 9000, 24576)], 3),
        # Nothing free: the busy GPU that finishes it first.
        ([opt(1, 900, 3600, 98304), opt(3, 300, 3600, 49152)], 3),
        ([], None),
    ],
)
def test_a_run_takes_the_gpu_that_finishes_it_soonest_and_the_smallest_of_equals(options, chosen):
    choice = choose_option(options)
    assert (choice.key if choice else None) == chosen
