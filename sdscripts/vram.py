"""Estimate a LoRA run's peak VRAM and pick the memory savers that make it fit a GPU.

Pure. The model is a sum of parts (weights, text encoders, VAE, activations, LoRA, optimizer,
overhead) from the registry's `VramProfile`: exact parameter counts measured from sd-scripts'
models (bench/model_sizes.py) and activation figures calibrated against sd-scripts' published
figures (tests/sdscripts/test_vram.py); docs/vram.md. `correction` multiplies the total;
`learned_correction` learns it from the peaks finished runs measured.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from sdscripts.architectures import BLOCK_SWAP, TE_CACHE, TextEncoder, spec

MIB = 1024 * 1024

# A run fits when its estimate is at most (1 - SAFETY_MARGIN) of the GPU's usable memory:
# allocator fragmentation and sample generation add a few percent the estimate cannot see.
SAFETY_MARGIN = 0.05
# CUDA context, cuBLAS/cuDNN workspaces and allocator slack.
OVERHEAD_MIB = 1200
# "demo" trains on the CPU; this is only what torch may touch if it sees a GPU.
DEMO_MIB = 256


# Optimizer state bytes per trainable parameter.
OPTIMIZER_BYTES = {
    "adamw": 8,
    "adamw8bit": 2,
    "pagedadamw8bit": 2,
    "lion": 4,
    "lion8bit": 1,
    "prodigy": 16,
    "adafactor": 1,
    "dadaptadam": 16,
    "adamwschedulefree": 8,
}
VAE_ENCODE_MIB = 1200  # VAE encoder activations per image at 1024 when latents are not cached


@dataclass(frozen=True)
class Estimate:
    """Estimated peak VRAM and its breakdown, in MiB."""

    total_mib: int
    parts: dict[str, int]


@dataclass(frozen=True)
class Saver:
    """One memory saver the planner chose."""

    name: str
    changes: dict
    reason: str
    saved_mib: int
    plain: str = ""  # what it does, in plain words (SAVERS)
    cost: str = ""  # what it costs, in plain words


@dataclass(frozen=True)
class SaverFacts:
    """What a memory saver does and costs, in plain words, and its time per step (a factor
    on the time without it; docs/estimates.md says where the figures come from)."""

    plain: str
    cost: str
    slowdown: float


# Every saver the planner may choose (and cpu_offload_checkpointing, which staff set).
# blocks_to_swap's slowdown is at its maximum; fewer blocks cost proportionally less.
SAVERS: dict[str, SaverFacts] = {
    "cache_text_encoder_outputs": SaverFacts(
        "encodes the captions once, then unloads the text encoders",
        "no slow-down; captions are no longer shuffled or dropped",
        1.0,
    ),
    "gradient_checkpointing": SaverFacts(
        "recomputes intermediate results instead of keeping them", "about 25 % slower", 1.25
    ),
    "fp8_base": SaverFacts(
        "holds the frozen base model in 8 bits (half its memory)",
        "about 5 % slower and slightly less precise",
        1.05,
    ),
    "optimizer_8bit": SaverFacts(
        "keeps the optimizer's state in 8 bits", "no noticeable slow-down", 1.0
    ),
    "blocks_to_swap": SaverFacts("keeps part of the model in CPU memory", "", 1.6),
    "cpu_offload_checkpointing": SaverFacts(
        "keeps recomputed parts in CPU memory", "about 15 % slower", 1.15
    ),
}


def swap_slowdown(architecture: str, blocks: int) -> float:
    """The time factor of swapping `blocks` blocks to CPU memory."""
    most = spec(architecture).max_blocks_to_swap
    if not blocks or not most:
        return 1.0
    return 1 + (SAVERS["blocks_to_swap"].slowdown - 1) * min(blocks, most) / most


def _saver(architecture: str, name: str, changes: dict, reason: str, saved: int) -> Saver:
    facts = SAVERS[name]
    cost = facts.cost
    if name == "blocks_to_swap":
        pct = round(100 * (swap_slowdown(architecture, changes["blocks_to_swap"]) - 1))
        cost = f"about {pct} % slower"
    return Saver(name, changes, reason, saved, facts.plain, cost)


@dataclass(frozen=True)
class Plan:
    """The planner's answer for one GPU budget."""

    fits: bool
    estimate_mib: int
    budget_mib: int
    params: dict
    savers: tuple[Saver, ...] = field(default_factory=tuple)
    message: str = ""


def _bytes(params: dict, *, fp8: bool) -> int:
    if fp8:
        return 1
    return 4 if params.get("mixed_precision") == "no" else 2


def trained_encoders(architecture: str, params: dict) -> tuple[TextEncoder, ...]:
    """The text encoders a run trains LoRA on: sd-scripts' default for the architecture's
    network module (TextEncoder.trained) unless `network_train_unet_only`."""
    prof = spec(architecture).vram
    if prof is None or params.get("network_train_unet_only"):
        return ()
    return tuple(te for te in prof.text_encoders if te.trained)


def _encoder_activations(te: TextEncoder, batch: int, *, checkpointing: bool) -> float:
    """Activations of a trained text encoder, bytes: about 34 x tokens x width per layer and
    sequence at 16 bits (Korthikanti et al. 2022, attention by SDPA); with checkpointing
    (sd-scripts checkpoints a trained encoder too) each layer keeps only its 2-byte input
    and one layer is recomputed at a time."""
    per_layer = te.tokens * te.hidden * batch
    if checkpointing:
        return per_layer * (2 * te.layers + 34)
    return per_layer * 34 * te.layers


def estimate_vram(architecture: str, params: dict, *, correction: float = 1.0) -> Estimate:
    """Estimate peak VRAM (MiB) for an architecture and validated parameters.

    The training step's peak: the base model (less its swapped blocks), the text encoders
    that stay on the GPU (all of them unless their outputs are cached; a trained one always),
    the VAE when latents are not cached, activations, LoRA weights and gradients (fp32), the
    optimizer state and a fixed overhead; `correction` (learned from measured peaks, see
    `learned_correction`) multiplies every part.
    """
    arch = spec(architecture)
    prof = arch.vram
    if prof is None:
        return Estimate(DEMO_MIB, {"overhead": DEMO_MIB})
    fp8 = bool(params.get("fp8_base"))
    batch = int(params.get("train_batch_size", 1))
    res = int(params.get("resolution", 1024))
    pixels = batch * (res / 1024) ** 2
    swap = min(int(params.get("blocks_to_swap") or 0), arch.max_blocks_to_swap)
    checkpointing = bool(params.get("gradient_checkpointing"))
    rank = int(params.get("network_dim", 32))
    compute = _bytes(params, fp8=False)
    base_bytes = _bytes(params, fp8=fp8)

    # Swapped blocks live in CPU RAM; block swapping rotates every block through the GPU.
    weights = (prof.base_params - prof.swap_unit_params * swap) * base_bytes / MIB
    cached_te = bool(params.get("cache_text_encoder_outputs")) and TE_CACHE in arch.features
    trained = trained_encoders(architecture, params)
    te = te_act = 0.0
    lora_params = prof.lora_per_rank * rank
    for enc in prof.text_encoders:
        if cached_te and enc not in trained:
            continue  # cached and not trained: moved off the GPU after caching
        # Under fp8_base sd-scripts casts every encoder on the GPU to fp8, embeddings excepted.
        rest = enc.params - enc.embedding_params
        te += (enc.embedding_params * compute + rest * base_bytes) / MIB
        if enc in trained:
            te_act += _encoder_activations(enc, batch, checkpointing=checkpointing) / MIB
            lora_params += enc.lora_per_rank * rank
    vae = 0.0
    if not params.get("cache_latents", True):
        vae = prof.vae_params * 2 / MIB + VAE_ENCODE_MIB * pixels
    act = prof.act_gc_mib * pixels
    if not checkpointing:
        act *= prof.act_no_gc_factor
    lora = lora_params * 8 / MIB  # fp32 weights + gradients
    opt_name = str(params.get("optimizer_type", "AdamW")).lower()
    optimizer = lora_params * OPTIMIZER_BYTES.get(opt_name, 8) / MIB
    parts = {
        "weights": weights,
        "text_encoders": te,
        "vae": vae,
        "activations": act + te_act,
        "lora": lora,
        "optimizer": optimizer,
        "overhead": OVERHEAD_MIB,
    }
    parts = {k: int(round(v * correction)) for k, v in parts.items()}
    return Estimate(sum(parts.values()), parts)


# The learned correction: the upper quartile of measured peak / estimate over an
# architecture's last CORRECTION_WINDOW succeeded runs, once there are CORRECTION_MIN_RUNS,
# clamped to CORRECTION_BOUNDS.
CORRECTION_WINDOW = 20
CORRECTION_MIN_RUNS = 3
CORRECTION_QUANTILE = 0.75
CORRECTION_BOUNDS = (0.8, 1.5)


@dataclass(frozen=True)
class Correction:
    """The factor estimates of one architecture are multiplied by, and what it rests on."""

    factor: float = 1.0
    runs: int = 0  # runs with a measured peak it was learned from (the latest window)

    @property
    def learned(self) -> bool:
        """Whether enough runs measured their peak for the factor to be more than the default."""
        return self.runs >= CORRECTION_MIN_RUNS


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default; R type 7)."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def learned_correction(pairs: Iterable[tuple[float, float]]) -> Correction:
    """The correction measured peaks call for: `pairs` are (measured peak, uncorrected
    estimate) in MiB, newest first; pairs without both are skipped.

    The upper quartile rather than the median: running out of memory costs a whole run,
    while an estimate a little too high only costs a saver (some speed). Fewer than
    CORRECTION_MIN_RUNS runs give 1.0; the clamp keeps one odd measurement (another
    process on the GPU, a crash at start) from swinging every plan.
    """
    ratios = [peak / est for peak, est in pairs if peak and est and peak > 0 and est > 0]
    ratios = ratios[:CORRECTION_WINDOW]
    if len(ratios) < CORRECTION_MIN_RUNS:
        return Correction(1.0, len(ratios))
    lo, hi = CORRECTION_BOUNDS
    factor = min(max(quantile(ratios, CORRECTION_QUANTILE), lo), hi)
    return Correction(round(factor, 3), len(ratios))


def usable(budget_mib: int) -> int:
    """What an estimate may reach on a GPU of budget_mib, after the safety margin."""
    return int(budget_mib * (1 - SAFETY_MARGIN))


def _candidate_savers(architecture: str, p: dict) -> list[tuple[str, dict, str]]:
    """Savers in the documented order: least slow-down first."""
    arch = spec(architecture)
    out = []
    if TE_CACHE in arch.features and not p.get("cache_text_encoder_outputs"):
        conflicts = p.get("shuffle_caption") or p.get("caption_dropout_rate")
        if not conflicts:
            changes = {"cache_text_encoder_outputs": True}
            if arch.te_cache_needs_unet_only:
                changes["network_train_unet_only"] = True
            out.append(
                (
                    "cache_text_encoder_outputs",
                    changes,
                    "encode captions once and unload the text encoders (no slow-down)",
                )
            )
    if not p.get("gradient_checkpointing"):
        out.append(
            (
                "gradient_checkpointing",
                {"gradient_checkpointing": True},
                "recompute activations in the backward pass (about 20-30 % slower)",
            )
        )
    if not p.get("fp8_base") and p.get("mixed_precision") != "no":
        out.append(
            ("fp8_base", {"fp8_base": True}, "hold the frozen base model in fp8 (half its memory)")
        )
    opt = str(p.get("optimizer_type", "AdamW"))
    eight_bit = {"AdamW": "AdamW8bit", "Lion": "Lion8bit"}.get(opt)
    if eight_bit:
        out.append(
            (
                "optimizer_8bit",
                {"optimizer_type": eight_bit},
                f"{eight_bit} keeps optimizer state in 8 bits",
            )
        )
    return out


def plan(
    architecture: str,
    params: dict,
    budget_mib: int,
    *,
    correction: float = 1.0,
    allow_savers: bool = True,
) -> Plan:
    """Choose the cheapest savers (documented order) so the run fits budget_mib, or say it won't."""
    current = dict(params)
    est = estimate_vram(architecture, current, correction=correction).total_mib
    limit = usable(budget_mib)
    arch = spec(architecture)
    if not arch.on_gpu:
        return Plan(True, est, budget_mib, current, (), "The demo trains on the CPU.")
    if not allow_savers or est <= limit:
        fits = est <= limit
        msg = (
            f"Estimated {est} MiB fits in {budget_mib} MiB."
            if fits
            else f"Estimated {est} MiB does not fit in {budget_mib} MiB "
            f"(limit {limit} MiB with a {SAFETY_MARGIN:.0%} margin)."
        )
        return Plan(fits, est, budget_mib, current, (), msg)

    savers: list[Saver] = []
    for name, changes, reason in _candidate_savers(architecture, current):
        trial = {**current, **changes}
        new_est = estimate_vram(architecture, trial, correction=correction).total_mib
        savers.append(_saver(architecture, name, changes, reason, est - new_est))
        current, est = trial, new_est
        if est <= limit:
            break

    max_swap = arch.max_blocks_to_swap if BLOCK_SWAP in arch.features else 0
    if est > limit and max_swap and not current.get("cpu_offload_checkpointing"):
        start = int(current.get("blocks_to_swap") or 0)
        chosen = max_swap
        for n in range(start + 1, max_swap + 1):
            trial = {**current, "blocks_to_swap": n}
            if estimate_vram(architecture, trial, correction=correction).total_mib <= limit:
                chosen = n
                break
        trial = {**current, "blocks_to_swap": chosen}
        new_est = estimate_vram(architecture, trial, correction=correction).total_mib
        reason = f"swap {chosen} blocks to CPU RAM (slower; the fewest that fit)"
        if new_est > limit:
            reason = f"swap the maximum {chosen} blocks to CPU RAM"
        changes = {"blocks_to_swap": chosen}
        savers.append(_saver(architecture, "blocks_to_swap", changes, reason, est - new_est))
        current, est = trial, new_est

    fits = est <= limit
    names = ", ".join(s.name for s in savers) or "none"
    if fits:
        msg = f"Fits in {budget_mib} MiB at an estimated {est} MiB with savers: {names}."
    else:
        msg = (
            f"Does not fit in {budget_mib} MiB: even with every saver ({names}) the estimate is "
            f"{est} MiB (limit {limit} MiB). Lower resolution, batch or rank, or use a larger GPU."
        )
    return Plan(fits, est, budget_mib, current, tuple(savers), msg)


def oom_advice(
    architecture: str, params: dict, estimate_mib: int, *, correction: float = 1.0
) -> str:
    """What to change after running out of memory: the savers that fit 3/4 of the estimate
    (planned with the correction the estimate was made with)."""
    tighter = plan(architecture, params, int(estimate_mib * 0.75), correction=correction)
    if tighter.savers:
        names = ", ".join(s.name for s in tighter.savers)
        return f"Try again with these memory savers: {names} (or a smaller batch)."
    return "Try a smaller batch size or resolution."
