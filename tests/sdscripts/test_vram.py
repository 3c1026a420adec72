"""The VRAM estimator against sd-scripts' published figures, and the saver planner."""

import json
from pathlib import Path

import pytest

from sdscripts.architectures import ARCHITECTURES
from sdscripts.params import validate_params
from sdscripts.vram import SAFETY_MARGIN, estimate_vram, plan, trained_encoders

GB = 1024

# sd-scripts' published LoRA recipes and the GPU size each "works with". Each recipe is copied
# flag for flag from the sd-scripts README at the commit named (the README's SD3/FLUX guide
# was removed in 884fc8c7, 2025-09-04; docs/flux_train_network.md keeps the FLUX.1 table).
# Common flags: --mixed_precision bf16 --gradient_checkpointing --cache_latents_to_disk
# --cache_text_encoder_outputs(_to_disk) --fp8_base --network_dim 4 --optimizer_type adamw8bit
# at 1024 (dataset_1024_bs2.toml: batch 2).
RECIPE = {
    "resolution": 1024,
    "train_batch_size": 2,
    "fp8_base": True,
    "cache_latents": True,
    "cache_text_encoder_outputs": True,
    "optimizer_type": "AdamW8bit",
    "gradient_checkpointing": True,
    "network_dim": 4,
}
# 9e23368e (2024-10-31) published both without --network_train_unet_only, so they also
# trained the LoRA of CLIP-L (FLUX.1) or CLIP-L and CLIP-G (SD 3.5 Large), which then stay
# on the GPU although their outputs are cached; 2cb7a6db (2024-11-12) added the flag to both
# and kept the figures ("When training LoRA for Text Encoder ..., more VRAM is required").
WITH_TE = {**RECIPE, "network_train_unet_only": False}
UNET_ONLY = {**RECIPE, "network_train_unet_only": True}
# The FLUX.1 low-memory steps build on each other: "16GB VRAM GPUs with the batch size of 1",
# then "12GB ... with --blocks_to_swap 16 with 8bit AdamW", then 22 and 28 swapped blocks for
# 10 and 8 GB (with an fp8 T5-XXL file, which only matters while caching).
FLUX_BS1 = {**UNET_ONLY, "train_batch_size": 1}
SDXL_DOC = {  # docs/train_SDXL-en.md: "LoRA training can be done with 8GB GPU memory"
    "resolution": 1024,
    "train_batch_size": 1,
    "network_train_unet_only": True,
    "gradient_checkpointing": True,
    "cache_latents": True,
    "cache_text_encoder_outputs": True,
    "optimizer_type": "AdamW8bit",
    "network_dim": 8,  # "Use lower dim (4 to 8 for 8GB GPU)"
}

PUBLISHED = [
    pytest.param("flux1_dev", UNET_ONLY, 24 * GB, id="flux-2cb7a6db-24GB"),
    pytest.param("flux1_dev", WITH_TE, 24 * GB, id="flux-clip-lora-9e23368e-24GB"),
    pytest.param("flux1_dev", FLUX_BS1, 16 * GB, id="flux-bs1-16GB"),
    pytest.param("flux1_dev", {**FLUX_BS1, "blocks_to_swap": 16}, 12 * GB, id="flux-swap16-12GB"),
    pytest.param("flux1_dev", {**FLUX_BS1, "blocks_to_swap": 22}, 10 * GB, id="flux-swap22-10GB"),
    pytest.param("flux1_dev", {**FLUX_BS1, "blocks_to_swap": 28}, 8 * GB, id="flux-swap28-8GB"),
    pytest.param("sd35_large", WITH_TE, 16 * GB, id="sd35l-clip-lora-9e23368e-16GB"),
    pytest.param("sd35_large", UNET_ONLY, 16 * GB, id="sd35l-2cb7a6db-16GB"),
    pytest.param("sdxl", SDXL_DOC, 8 * GB, id="sdxl-8GB"),
    pytest.param("sdxl", {**SDXL_DOC, "network_dim": 4}, 8 * GB, id="sdxl-dim4-8GB"),
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


# --- the profiles hold the counts bench/model_sizes.py measured -----------------------------

SIZES = json.loads((Path(__file__).parents[1] / "fixtures/sdscripts/model_sizes.json").read_text())


def _swap_unit(sizes: dict) -> int:
    """What one unit of --blocks_to_swap takes off the GPU, as each model swaps."""
    blocks = sizes["block_params"]
    if "double" in blocks:  # FLUX.1 / Chroma: N//2 double and 2*(N - N//2) single blocks
        return blocks["double"] // 2 + blocks["single"]
    return blocks.get("joint") or blocks.get("layers") or 0


@pytest.mark.parametrize("sizes", SIZES["architectures"], ids=lambda s: s["key"])
def test_profiles_hold_the_measured_parameter_counts(sizes):
    arch = ARCHITECTURES[sizes["key"]]
    prof = arch.vram
    assert arch.network_module == sizes["network_module"]
    assert prof.base_params == sizes["base_params"] + sizes["base_buffers"]
    assert prof.vae_params == sizes["vae_params"]
    assert prof.lora_per_rank == sizes["lora_per_rank"] and sizes["lora_const"] == 0
    assert abs(prof.swap_unit_params - _swap_unit(sizes)) <= 1
    measured = {te["name"]: te for te in sizes["text_encoders"]}
    assert [te.name for te in prof.text_encoders] == list(measured)
    for te in prof.text_encoders:
        m = measured[te.name]
        assert (te.params, te.embedding_params, te.layers, te.hidden) == (
            m["params"],
            m["embedding_params"],
            m["layers"],
            m["hidden"],
        )
        assert (te.lora_per_rank, te.trained) == (m["lora_per_rank"], m["lora_by_default"])
    if arch.max_blocks_to_swap:  # sd-scripts keeps two blocks (of each kind) on the GPU
        blocks = sizes["blocks"]
        if "double" in blocks:
            n = arch.max_blocks_to_swap
            assert n // 2 <= blocks["double"] - 2 and 2 * (n - n // 2) <= blocks["single"] - 2
        else:
            assert arch.max_blocks_to_swap == (blocks.get("joint") or blocks["layers"]) - 2


def test_every_gpu_architecture_was_measured():
    measured = {s["key"] for s in SIZES["architectures"]}
    assert measured == {key for key, arch in ARCHITECTURES.items() if arch.on_gpu}


# --- text encoders: trained ones stay on the GPU ---------------------------------------------


def _parts(arch: str, **values) -> dict:
    return estimate_vram(arch, validate_params(arch, {**RECIPE, **values})).parts


@pytest.mark.parametrize("arch", ["sd35_large", "flux1_dev", "lumina2", "sdxl"])
def test_trained_text_encoders_stay_on_the_gpu_with_cached_outputs(arch):
    if arch == "sdxl":  # SDXL caches only when the U-Net alone is trained: no cache here
        unet_only = _parts(arch, cache_text_encoder_outputs=False, network_train_unet_only=True)
        with_te = _parts(arch, cache_text_encoder_outputs=False, network_train_unet_only=False)
        assert with_te["text_encoders"] == unet_only["text_encoders"] > 0
    else:
        unet_only = _parts(arch, network_train_unet_only=True)
        with_te = _parts(arch, network_train_unet_only=False)
        assert unet_only["text_encoders"] == 0 < with_te["text_encoders"]
    assert with_te["lora"] > unet_only["lora"]
    assert with_te["activations"] > unet_only["activations"]


def test_the_trained_encoders_are_sd_scripts_defaults():
    names = {
        arch: [te.name for te in trained_encoders(arch, {"network_train_unet_only": False})]
        for arch in ("sd15", "sdxl", "sd35_large", "flux1_dev", "chroma", "lumina2")
    }
    assert names == {
        "sd15": ["clip_l"],
        "sdxl": ["clip_l", "clip_g"],
        "sd35_large": ["clip_l", "clip_g"],  # T5-XXL only with train_t5xxl=True
        "flux1_dev": ["clip_l"],
        "chroma": [],  # no CLIP-L
        "lumina2": ["gemma2"],
    }
    assert trained_encoders("sdxl", {"network_train_unet_only": True}) == ()


def test_sd35_large_text_encoder_weights_are_fp8_but_their_embeddings_are_not():
    mib = estimate_vram("sd35_large", validate_params("sd35_large", WITH_TE)).parts
    clips = [te for te in ARCHITECTURES["sd35_large"].vram.text_encoders if te.trained]
    expected = sum(te.params + te.embedding_params for te in clips) / 2**20
    assert mib["text_encoders"] == round(expected)


def test_each_swapped_unit_frees_its_blocks_weights():
    unit = ARCHITECTURES["flux1_dev"].vram.swap_unit_params
    no_swap = _parts("flux1_dev", train_batch_size=1)
    swapped = _parts("flux1_dev", train_batch_size=1, blocks_to_swap=10)
    assert no_swap["weights"] - swapped["weights"] == pytest.approx(10 * unit / 2**20, abs=1)
    assert swapped["activations"] == no_swap["activations"]
