"""Steps (sd-scripts' count), the proposed training length, the speed prior and plain labels."""

import pytest

from sdscripts.architectures import ARCHITECTURES
from sdscripts.labels import BASIC, FROM_DATASET, LABELS
from sdscripts.params import PARAMS, ParamError, validate_params
from sdscripts.speed import prior_step_s, slowdown, speed_savers
from sdscripts.steps import steps_per_epoch, suggest_length, total_steps
from sdscripts.vram import SAVERS, plan


@pytest.mark.parametrize(
    "images, repeats, epochs, batch, kw, expected",
    [
        (20, 10, 10, 1, {}, 2000),
        (5, 3, 2, 2, {}, 16),  # 15 images a pass in batches of 2: 8 steps
        (20, 10, 10, 1, {"max_train_steps": 700}, 700),  # steps win, as the builder emits
        (20, 10, 1, 1, {"with_reg": True}, 400),  # regularisation doubles an epoch
        (0, 10, 10, 1, {}, 0),
    ],
)
def test_total_steps_counts_as_sd_scripts_does(images, repeats, epochs, batch, kw, expected):
    assert total_steps(images, repeats, epochs, batch, **kw) == expected


def test_steps_per_epoch_rounds_a_partial_batch_up():
    assert steps_per_epoch(3, 1, 2) == 2


@pytest.mark.parametrize(
    "images, batch, target, epochs, expected",
    [
        (20, 1, 1500, 10, (8, 9)),  # repeats absorb the size, epochs stay near the preset's
        (4, 2, 100, 5, (10, 5)),  # the demo dataset of the browser test
        (500, 1, 1500, 10, (1, 3)),  # too many images for 10 epochs even at one repeat
        (5000, 1, 1500, 10, (1, 1)),  # never below one epoch
    ],
)
def test_suggested_length_lands_near_the_target(images, batch, target, epochs, expected):
    repeats, epochs_out = suggest_length(images, batch, target, epochs=epochs)
    assert (repeats, epochs_out) == expected
    steps = total_steps(images, repeats, epochs_out, batch)
    assert steps <= target * 1.5 or epochs_out == 1


def test_suggested_length_keeps_within_the_bounds():
    assert suggest_length(2, 1, 1500, epochs=10, epoch_bounds=(1, 20), repeat_bounds=(1, 30)) == (
        30,
        20,
    )


def test_every_knob_has_a_plain_label_that_is_not_its_option_name():
    assert set(LABELS) == set(PARAMS)
    for name, label in LABELS.items():
        assert label and label != name and "_" not in label, name
        assert len(label) <= 45, f"{name}: keep labels short enough for a phone's column"
    assert set(BASIC) <= set(PARAMS) and set(FROM_DATASET) <= set(BASIC)


def test_every_saver_the_planner_may_choose_is_explained():
    result = plan("flux1_dev", validate_params("flux1_dev", {"resolution": 1024}), 8192)
    assert result.savers
    for saver in result.savers:
        assert saver.name in SAVERS and saver.plain and saver.cost
    swap = next(s for s in result.savers if s.name == "blocks_to_swap")
    assert swap.plain == "keeps part of the model in CPU memory"
    assert swap.cost.startswith("about ") and swap.cost.endswith("% slower")


def test_speed_savers_name_what_slows_a_run_and_how_much():
    params = {"gradient_checkpointing": True, "blocks_to_swap": 18, "fp8_base": False}
    savers = speed_savers("flux1_dev", params)
    assert savers == ("blocks_to_swap=18", "gradient_checkpointing")
    assert slowdown("flux1_dev", savers) == pytest.approx(1.25 * (1 + 0.6 * 18 / 35))
    assert speed_savers("sd15", {"blocks_to_swap": 4, "cache_text_encoder_outputs": True}) == ()


def test_the_prior_grows_with_pixels_batch_and_savers():
    base = prior_step_s("sdxl", 1024, 1, ())
    assert base == ARCHITECTURES["sdxl"].prior_step_s
    assert prior_step_s("sdxl", 512, 1, ()) == pytest.approx(base / 4)
    assert prior_step_s("sdxl", 1024, 2, ()) == pytest.approx(base * 2)
    assert prior_step_s("sdxl", 1024, 1, ("gradient_checkpointing",)) == pytest.approx(base * 1.25)
    # Each architecture's figure is at its own default resolution.
    assert prior_step_s("sd15", 512, 1, ()) == ARCHITECTURES["sd15"].prior_step_s


@pytest.mark.parametrize(
    "raw, expected", [("  ohwx   person ", "ohwx person"), ("", None), ("sks\tdog", "sks dog")]
)
def test_a_run_may_name_its_own_trigger_word(raw, expected):
    assert validate_params("sdxl", {"class_tokens": raw})["class_tokens"] == expected


@pytest.mark.parametrize("raw", ["../etc", "a\\b", "nul\x00byte", "x" * 101])
def test_a_trigger_word_with_slashes_controls_or_too_long_is_refused(raw):
    with pytest.raises(ParamError) as exc:
        validate_params("sdxl", {"class_tokens": raw})
    assert "class_tokens" in exc.value.errors


def test_repeats_of_a_run_are_bounded():
    assert validate_params("demo", {"num_repeats": "4"})["num_repeats"] == 4
    with pytest.raises(ParamError):
        validate_params("demo", {"num_repeats": 0})
