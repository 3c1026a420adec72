"""Rules between knobs that sd-scripts enforces late (at model load) or never.

Each comes from sd-scripts' source; docs/sd-scripts.md lists them. Pure: no Django, no I/O.
"""

from __future__ import annotations

from sdscripts.architectures import SD_SCRIPTS, ArchSpec


def samples_during_training(params: dict) -> bool:
    """Whether the run draws sample images while it trains (every N epochs or N steps)."""
    return bool(params.get("sample_every_n_epochs") or params.get("sample_every_n_steps"))


# Optimizers that find their own step size: sd-scripts uses only the first learning rate of
# their parameter groups, and they want a learning rate near 1.0.
ADAPTIVE_OPTIMIZERS = frozenset({"Prodigy", "DAdaptAdam"})
MAX_PLAIN_LEARNING_RATE = 1e-2


def _optimizer_errors(v: dict) -> dict[str, str]:
    """Learning rates the optimizer can use (sd-scripts' get_optimizer)."""
    optimizer, lr = v.get("optimizer_type"), v.get("learning_rate")
    if optimizer is None or lr is None:
        return {}
    errors = {}
    if optimizer in ADAPTIVE_OPTIMIZERS:
        for key in ("text_encoder_lr", "unet_lr"):
            if v.get(key) not in (None, lr):
                errors[key] = (
                    f"{optimizer} uses one learning rate for every part: leave {key} empty "
                    "or equal to learning_rate"
                )
    elif lr > MAX_PLAIN_LEARNING_RATE:
        errors["learning_rate"] = (
            f"must be at most {MAX_PLAIN_LEARNING_RATE:g} with {optimizer} "
            "(only Prodigy and DAdaptAdam take a learning rate near 1.0)"
        )
    return errors


def cross_field_errors(arch: ArchSpec, v: dict) -> dict[str, str]:
    """Errors of the rules that involve several knobs; `v` is completed in place.

    `v` holds typed values with defaults filled in. The `*_to_disk` caches imply the cache
    itself, as sd-scripts assumes.
    """
    errors: dict[str, str] = {}
    if v.get("cache_latents_to_disk"):
        v["cache_latents"] = True
    if v.get("cache_text_encoder_outputs_to_disk"):
        v["cache_text_encoder_outputs"] = True

    if v.get("cache_latents"):
        for aug in ("color_aug", "random_crop"):
            if v.get(aug):
                errors[aug] = f"cannot be used with cache_latents; turn off {aug} or cache_latents"
    if v.get("cache_text_encoder_outputs"):
        if arch.te_cache_needs_unet_only and not v.get("network_train_unet_only"):
            errors["network_train_unet_only"] = (
                f"{arch.label} needs network_train_unet_only=true when "
                "cache_text_encoder_outputs is on"
            )
        if v.get("shuffle_caption"):
            errors["shuffle_caption"] = (
                "cannot shuffle captions when text-encoder outputs are cached; "
                "turn off shuffle_caption or cache_text_encoder_outputs"
            )
        if v.get("caption_dropout_rate"):
            errors["caption_dropout_rate"] = (
                "must be 0 when text-encoder outputs are cached; "
                "set it to 0 or turn off cache_text_encoder_outputs"
            )
    if v.get("cpu_offload_checkpointing"):
        if v.get("blocks_to_swap"):
            errors["cpu_offload_checkpointing"] = (
                "cannot be combined with blocks_to_swap; use one of them"
            )
        elif not v.get("gradient_checkpointing"):
            errors["cpu_offload_checkpointing"] = "needs gradient_checkpointing=true"
    errors.update(_optimizer_errors(v))
    if v.get("fp8_base") and v.get("mixed_precision") == "no":
        errors["fp8_base"] = "needs mixed_precision fp16 or bf16"
    if v.get("lr_warmup_steps") and v.get("lr_scheduler") == "constant":
        errors["lr_warmup_steps"] = (
            "the 'constant' scheduler takes no warm-up; set 0 or use constant_with_warmup"
        )
    if not v.get("max_train_steps") and v.get("save_every_n_epochs", 1) > v.get(
        "max_train_epochs", 1
    ):
        errors["save_every_n_epochs"] = "must not exceed max_train_epochs"
    if SD_SCRIPTS in arch.features and v.get("enable_bucket"):
        step = v["bucket_reso_steps"]
        if step % arch.bucket_step:
            errors["bucket_reso_steps"] = f"must be divisible by {arch.bucket_step} for {arch.key}"
        if v["min_bucket_reso"] > v["resolution"]:
            errors["min_bucket_reso"] = f"must be at most the resolution ({v['resolution']})"
        if v["max_bucket_reso"] < v["resolution"]:
            errors["max_bucket_reso"] = f"must be at least the resolution ({v['resolution']})"
    return errors
