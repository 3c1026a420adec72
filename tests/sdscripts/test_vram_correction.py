"""The learned VRAM correction: plain numbers in, a clamped factor out."""

import pytest

from sdscripts.params import validate_params
from sdscripts.vram import (
    CORRECTION_BOUNDS,
    CORRECTION_MIN_RUNS,
    CORRECTION_WINDOW,
    Correction,
    estimate_vram,
    learned_correction,
    oom_advice,
)


def pairs(*ratios, estimate=10_000):
    """(measured peak, estimate) pairs, newest first, with these peak / estimate ratios."""
    return [(round(r * estimate), estimate) for r in ratios]


@pytest.mark.parametrize(
    "ratios, factor, runs",
    [
        ((), 1.0, 0),  # nothing measured yet
        ((1.3, 1.3), 1.0, 2),  # too few runs: the default
        ((1.2, 1.2, 1.2), 1.2, 3),
        ((1.0, 1.1, 1.2, 1.3, 1.4), 1.3, 5),  # the upper quartile, not the median
        ((0.9, 1.0, 1.1, 1.2), 1.125, 4),  # interpolated between order statistics
        ((1.3, 1.0, 1.2, 1.1, 1.4), 1.3, 5),  # order does not matter within the window
        ((0.5, 0.5, 0.5), CORRECTION_BOUNDS[0], 3),  # clamped: never below 0.8
        ((3.0, 2.5, 4.0), CORRECTION_BOUNDS[1], 3),  # clamped: never above 1.5
        ((0.95, 0.97, 0.96), 0.965, 3),  # estimates too high: the factor falls below 1
    ],
)
def test_learned_correction(ratios, factor, runs):
    c = learned_correction(pairs(*ratios))
    assert c == Correction(factor, runs)
    assert c.learned == (runs >= CORRECTION_MIN_RUNS)


def test_only_the_newest_window_counts():
    newest = [1.1] * CORRECTION_WINDOW
    older = [1.5] * 50
    assert learned_correction(pairs(*newest, *older)) == Correction(1.1, CORRECTION_WINDOW)


@pytest.mark.parametrize("bad", [(0, 10_000), (9_000, 0), (None, 10_000), (9_000, None)])
def test_pairs_without_a_peak_or_an_estimate_are_skipped(bad):
    assert learned_correction([bad, *pairs(1.2, 1.2, 1.2)]) == Correction(1.2, 3)


def test_the_default_is_no_correction():
    assert Correction() == Correction(1.0, 0) and not Correction().learned


def test_oom_advice_replans_with_the_correction_the_estimate_was_made_with():
    params = validate_params("sdxl", {"optimizer_type": "AdamW", "network_dim": 64})
    raw = estimate_vram("sdxl", params).total_mib
    corrected = estimate_vram("sdxl", params, correction=1.4).total_mib
    assert oom_advice("sdxl", params, corrected, correction=1.4) == oom_advice("sdxl", params, raw)
