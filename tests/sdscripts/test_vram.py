"""The VRAM estimator against sd-scripts' published figures, and the saver planner."""

import pytest

from sdscripts.params import validate_params
from sdscripts.vram import SAFETY_MARGIN, estimate_vram, plan

GB = 1024

FLUX_DOC = {  # sd-scripts docs: FLUX.1 LoRA 1024, batch 2, fp8 base, caches, AdamW8bit
    "resolution": 1024,
    "train_batch_size": 2,
    "fp8_base": True,
    "cache_latents": True,
    "cache_text_encoder_outputs": True,
    "optimizer_type": "AdamW8bit",
    "gradient_checkpointing": True,
    "network_dim": 4,
    "network_train_unet_only": True,
}
SD35L_DOC = {**FLUX_DOC}  # SD 3.5 Large: same recipe with gradient checkpointing, dim 4
SDXL_DOC = {
    "resolution": 1024,
    "train_batch_size": 1,
    "network_train_unet_only": True,
    "gradient_checkpointing": True,
    "cache_latents": True,
    "cache_text_encoder_outputs": True,
    "optimizer_type": "AdamW8bit",
    "network_dim": 8,
}

PUBLISHED = [
    ("flux1_dev", FLUX_DOC, 24 * GB),
    ("flux1_dev", {**FLUX_DOC, "blocks_to_swap": 16}, 12 * GB),
    ("flux1_dev", {**FLUX_DOC, "blocks_to_swap": 22}, 10 * GB),
    ("flux1_dev", {**FLUX_DOC, "blocks_to_swap": 28}, 8 * GB),
    ("sd35_large", SD35L_DOC, 16 * GB),
    ("sdxl", SDXL_DOC, 8 * GB),
]


@pytest.mark.parametrize("arch, values, published_mib", PUBLISHED)
def test_published_figures_are_reproduced_within_15_percent(arch, values, published_mib):
    estimate = estimate_vram(arch, validate_params(arch, values))
    assert abs(estimate.total_mib - published_mib) <= 0.15 * published_mib
    assert estimate.total_mib == sum(estimate.parts.values())
    assert set(estimate.parts) == {
        "weights",
        "text_encoders",
        "vae",
        "activations",
        "lora",
        "optimizer",
        "overhead",
    }


@pytest.mark.parametrize(
    "arch, change",
    [
        ("sd35_large", {"gradient_checkpointing": True}),
        ("sd35_large", {"fp8_base": True}),
        ("sd35_large", {"cache_text_encoder_outputs": True}),
        ("flux1_dev", {"blocks_to_swap": 10}),
        ("sdxl", {"optimizer_type": "AdamW8bit"}),
        ("sdxl", {"resolution": 768}),
        ("sd15", {"network_dim": 8}),
    ],
)
def test_each_saver_lowers_the_estimate(arch, change):
    base = validate_params(arch, {"optimizer_type": "AdamW", "network_dim": 64})
    lower = validate_params(arch, {"optimizer_type": "AdamW", "network_dim": 64, **change})
    assert estimate_vram(arch, lower).total_mib < estimate_vram(arch, base).total_mib


def test_correction_factor_scales_the_estimate():
    params = validate_params("sdxl", {})
    assert (
        estimate_vram("sdxl", params, correction=1.2).total_mib
        > estimate_vram("sdxl", params).total_mib * 1.19
    )


def test_sd35_large_1024_fits_a_32gb_card_with_savers():
    params = validate_params("sd35_large", {"resolution": 1024, "train_batch_size": 1})
    result = plan("sd35_large", params, 32768)
    assert result.fits
    assert result.estimate_mib <= 32768 * (1 - SAFETY_MARGIN)
    assert [s.name for s in result.savers][0] == "cache_text_encoder_outputs"
    assert all(s.saved_mib > 0 and s.reason for s in result.savers)
    assert validate_params("sd35_large", result.params) == result.params


def test_savers_come_in_the_documented_order():
    params = validate_params("flux1_dev", {"resolution": 1024, "optimizer_type": "AdamW"})
    result = plan("flux1_dev", params, 8192)
    names = [s.name for s in result.savers]
    order = [
        "cache_text_encoder_outputs",
        "gradient_checkpointing",
        "fp8_base",
        "optimizer_8bit",
        "blocks_to_swap",
    ]
    assert names == [n for n in order if n in names]
    assert "blocks_to_swap" in names


def test_flux_on_8gb_swaps_the_fewest_blocks_that_fit_or_says_it_does_not_fit():
    params = validate_params("flux1_dev", {"resolution": 1024})
    result = plan("flux1_dev", params, 8192)
    if result.fits:
        n = result.params["blocks_to_swap"]
        assert estimate_vram("flux1_dev", result.params).total_mib <= 8192 * (1 - SAFETY_MARGIN)
        fewer = {**result.params, "blocks_to_swap": n - 1}
        assert estimate_vram("flux1_dev", fewer).total_mib > 8192 * (1 - SAFETY_MARGIN)
    else:
        assert "does not fit" in result.message.lower()


def test_nothing_fits_reports_the_smallest_reachable_estimate():
    params = validate_params("flux1_dev", {"resolution": 2048, "train_batch_size": 4})
    result = plan("flux1_dev", params, 4096)
    assert not result.fits
    assert result.params["blocks_to_swap"] == 35
    assert result.estimate_mib == estimate_vram("flux1_dev", result.params).total_mib
    assert "Does not fit" in result.message


def test_no_plan_estimates_exactly_the_given_configuration():
    params = validate_params("sd35_large", {"resolution": 1024})
    result = plan("sd35_large", params, 32768, allow_savers=False)
    assert result.savers == ()
    assert result.params == params
    assert result.estimate_mib == estimate_vram("sd35_large", params).total_mib
    assert not result.fits


def test_demo_needs_almost_no_vram_and_always_fits():
    result = plan("demo", validate_params("demo", {}), 0)
    assert result.fits and result.estimate_mib < 1024


def test_config_that_already_fits_gets_no_savers():
    params = validate_params("sd15", {})
    result = plan("sd15", params, 24576)
    assert result.fits and result.savers == () and result.params == params
