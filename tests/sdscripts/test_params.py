"""Parameter bounds, coercion and sd-scripts' cross-field rules."""

import pytest

from sdscripts.command import validate_extra_flags
from sdscripts.params import ParamError, parse_set_options, validate_params


@pytest.mark.parametrize(
    "field, raw, expected",
    [
        ("resolution", "768", 768),
        ("learning_rate", "1e-4", 1e-4),
        ("fp8_base", "true", True),
        ("fp8_base", "0", False),
        ("optimizer_type", "adamw8bit", "AdamW8bit"),
        ("network_alpha", 16, 16.0),
        ("text_encoder_lr", "", None),
    ],
)
def test_values_are_coerced_to_their_types(field, raw, expected):
    result = validate_params("sd35_large", {field: raw})
    assert result[field] == expected
    assert type(result[field]) is type(expected)


@pytest.mark.parametrize(
    "arch, values, field, message",
    [
        ("sdxl", {"blocks_to_swap": 4}, "blocks_to_swap", "not available for sdxl"),
        ("sd15", {"blocks_to_swap": 1}, "blocks_to_swap", "not available"),
        ("sd35_large", {"blocks_to_swap": 37}, "blocks_to_swap", "at most 36"),
        ("sd35_medium", {"blocks_to_swap": 23}, "blocks_to_swap", "at most 22"),
        ("flux1_dev", {"blocks_to_swap": 36}, "blocks_to_swap", "at most 35"),
        ("sd15", {"cache_text_encoder_outputs": True}, "cache_text_encoder_outputs", "not avail"),
        ("sdxl", {"cache_text_encoder_outputs": True}, "network_train_unet_only", "SDXL needs"),
        (
            "sd35_large",
            {"cache_text_encoder_outputs": True, "shuffle_caption": True},
            "shuffle_caption",
            "cannot shuffle",
        ),
        (
            "flux1_dev",
            {"cache_text_encoder_outputs_to_disk": True, "caption_dropout_rate": 0.1},
            "caption_dropout_rate",
            "must be 0",
        ),
        ("sdxl", {"cache_latents": True, "color_aug": True}, "color_aug", "cache_latents"),
        ("sd15", {"cache_latents_to_disk": True, "random_crop": True}, "random_crop", "cache"),
        ("sd35_large", {"cpu_offload_checkpointing": True}, "cpu_offload_checkpointing", "not"),
        ("sd15", {"cpu_offload_checkpointing": True}, "cpu_offload_checkpointing", "not"),
        (
            "flux1_dev",
            {"cpu_offload_checkpointing": True, "blocks_to_swap": 8, "gradient_checkpointing": 1},
            "cpu_offload_checkpointing",
            "blocks_to_swap",
        ),
        ("sd15", {"bucket_reso_steps": 32}, "bucket_reso_steps", "divisible by 64"),
        ("sdxl", {"bucket_reso_steps": 48}, "bucket_reso_steps", "divisible by 32"),
        ("sdxl", {"min_bucket_reso": 1024, "resolution": 768}, "min_bucket_reso", "at most"),
        ("sd15", {"resolution": 1280}, "max_bucket_reso", "at least the resolution"),
        ("sdxl", {"lr_warmup_steps": 100}, "lr_warmup_steps", "constant"),
        ("sdxl", {"fp8_base": True, "mixed_precision": "no"}, "fp8_base", "mixed_precision"),
        ("sdxl", {"save_every_n_epochs": 20}, "save_every_n_epochs", "max_train_epochs"),
        ("sdxl", {"max_train_epochs": 0}, "max_train_epochs", "at least 1"),
        ("sdxl", {"resolution": "big"}, "resolution", "whole number"),
        ("sdxl", {"optimizer_type": "SGD"}, "optimizer_type", "one of"),
        ("sdxl", {"not_a_knob": 1}, "not_a_knob", "unknown"),
        ("demo", {"fp8_base": True}, "fp8_base", "not available for demo"),
    ],
)
def test_refusals_name_the_field_and_say_how_to_fix_it(arch, values, field, message):
    with pytest.raises(ParamError) as info:
        validate_params(arch, values)
    assert field in info.value.errors
    assert message in info.value.errors[field]


def test_defaults_follow_the_architecture():
    assert validate_params("sd15", {})["resolution"] == 512
    assert validate_params("sd35_medium", {})["resolution"] == 768
    assert validate_params("flux1_dev", {})["network_train_unet_only"] is True
    demo = validate_params("demo", {})
    assert demo["resolution"] == 64 and "optimizer_type" not in demo


def test_unchecked_checkbox_for_a_knob_that_does_not_apply_is_ignored():
    assert "blocks_to_swap" not in validate_params("sdxl", {"blocks_to_swap": 0})


def test_to_disk_caching_turns_on_the_cache_itself():
    result = validate_params("sd35_large", {"cache_text_encoder_outputs_to_disk": "true"})
    assert result["cache_text_encoder_outputs"] is True


def test_sdxl_text_encoder_caching_with_unet_only_is_accepted():
    values = {"cache_text_encoder_outputs": True, "network_train_unet_only": True}
    assert validate_params("sdxl", values)["cache_text_encoder_outputs"] is True


def test_unknown_architecture_is_refused():
    with pytest.raises(ParamError) as info:
        validate_params("sd2", {})
    assert "architecture" in info.value.errors


PRESET = {"resolution": 768, "network_dim": 32, "optimizer_type": "AdamW8bit"}
RULES = {"locked": ["optimizer_type"], "bounds": {"network_dim": {"min": 8, "max": 64}}}


@pytest.mark.parametrize(
    "values, field",
    [
        ({"optimizer_type": "AdamW"}, "optimizer_type"),
        ({"network_dim": 128}, "network_dim"),
        ({"network_dim": 4}, "network_dim"),
    ],
)
def test_preset_rules_lock_fields_and_narrow_bounds(values, field):
    with pytest.raises(ParamError) as info:
        validate_params("sd35_large", values, rules=RULES, base=PRESET)
    assert field in info.value.errors


def test_preset_values_apply_and_locked_field_may_repeat_its_value():
    result = validate_params(
        "sd35_large", {"optimizer_type": "adamw8bit", "network_dim": 48}, rules=RULES, base=PRESET
    )
    assert result["resolution"] == 768 and result["network_dim"] == 48


def test_narrowed_choices_apply():
    rules = {"bounds": {"optimizer_type": {"choices": ["AdamW8bit", "Adafactor"]}}}
    with pytest.raises(ParamError) as info:
        validate_params("sdxl", {"optimizer_type": "Prodigy"}, rules=rules)
    assert "Adafactor" in info.value.errors["optimizer_type"]


def test_students_cannot_change_staff_only_knobs():
    with pytest.raises(ParamError) as info:
        validate_params("sdxl", {"max_grad_norm": 0}, student=True)
    assert "staff" in info.value.errors["max_grad_norm"]


@pytest.mark.parametrize(
    "pairs, expected",
    [
        (["network_dim=32"], {"network_dim": "32"}),
        (["fp8_base=true", "blocks_to_swap=16"], {"fp8_base": "true", "blocks_to_swap": "16"}),
        (["--learning_rate=1e-4"], {"learning_rate": "1e-4"}),
    ],
)
def test_set_options_parse(pairs, expected):
    assert parse_set_options(pairs) == expected


@pytest.mark.parametrize("pairs, field", [(["bogus=1"], "bogus"), (["network_dim"], "network_dim")])
def test_bad_set_options_name_the_key(pairs, field):
    with pytest.raises(ParamError) as info:
        parse_set_options(pairs)
    assert field in info.value.errors


@pytest.mark.parametrize(
    "target, flags",
    [
        ("sd35_large", ["--min_snr_gamma", "5"]),
        ("flux1_dev", ["--sigmoid_scale=1.5", "--apply_t5_attn_mask"]),
        ("sdxl", ["--noise_offset_random_strength"]),
    ],
)
def test_extra_flags_from_the_scripts_own_list_pass(target, flags):
    assert validate_extra_flags(target, flags) == tuple(flags)


@pytest.mark.parametrize(
    "target, flags",
    [
        ("sd15", ["--clip_g", "/x"]),  # an SD3 flag on train_network.py
        ("sdxl", ["--blocks_to_swap", "4"]),  # not an SDXL option
        ("sd35_large", ["--output_dir", "/tmp"]),  # managed by the builder
        ("flux1_dev", ["5"]),  # a value with no flag
        ("demo", ["--sdpa"]),
    ],
)
def test_extra_flags_outside_the_list_are_refused(target, flags):
    with pytest.raises(ParamError):
        validate_extra_flags(target, flags)


def test_sd15_trains_at_64_px_as_sd_scripts_does_and_buckets_follow():
    values = validate_params("sd15", {"resolution": 64})
    assert (values["resolution"], values["min_bucket_reso"]) == (64, 64)
    with pytest.raises(ParamError, match="min_bucket_reso: must be at most the resolution"):
        validate_params("sd15", {"resolution": 64, "min_bucket_reso": 256})


def test_the_demo_trains_by_epochs_only():
    with pytest.raises(ParamError, match="max_train_steps: not available for demo"):
        validate_params("demo", {"max_train_steps": 10})


@pytest.mark.parametrize(
    "values, field",
    [
        ({"optimizer_type": "Prodigy", "learning_rate": 1.0, "unet_lr": 0.5}, "unet_lr"),
        (
            {"optimizer_type": "DAdaptAdam", "learning_rate": 1.0, "text_encoder_lr": 2},
            "text_encoder_lr",
        ),
        ({"optimizer_type": "AdamW", "learning_rate": 1.0}, "learning_rate"),
    ],
)
def test_learning_rates_the_optimizer_cannot_use_are_refused(values, field):
    with pytest.raises(ParamError) as info:
        validate_params("sdxl", values)
    assert list(info.value.errors) == [field]


def test_prodigy_takes_a_learning_rate_near_one():
    values = validate_params("sdxl", {"optimizer_type": "prodigy", "learning_rate": 1.0})
    assert (values["optimizer_type"], values["learning_rate"]) == ("Prodigy", 1.0)
