"""How long a training step takes before the lab has measured it: the prior (pure).

The registry gives each architecture a time per step at its default resolution, batch 1,
without a saver that slows it (`ArchSpec.prior_step_s`); this scales it to a run's
resolution (by pixels), batch and the savers it uses (their factors are in
`sdscripts.vram.SAVERS`). Measured history replaces it (training.estimates);
docs/estimates.md says where the figures come from and how far to trust them.
Pure: no Django, no I/O.
"""

from __future__ import annotations

from sdscripts.architectures import BLOCK_SWAP, TE_CACHE, spec
from sdscripts.vram import SAVERS, swap_slowdown


def speed_savers(architecture: str, params: dict) -> tuple[str, ...]:
    """The savers a run's final parameters use, as compared between runs (the swap with its
    number of blocks, e.g. "blocks_to_swap=12"), sorted."""
    arch = spec(architecture)
    out = [name for name in ("gradient_checkpointing", "fp8_base") if params.get(name)]
    if params.get("cache_text_encoder_outputs") and TE_CACHE in arch.features:
        out.append("cache_text_encoder_outputs")
    if params.get("cpu_offload_checkpointing"):
        out.append("cpu_offload_checkpointing")
    blocks = min(int(params.get("blocks_to_swap") or 0), arch.max_blocks_to_swap)
    if blocks and BLOCK_SWAP in arch.features:
        out.append(f"blocks_to_swap={blocks}")
    return tuple(sorted(out))


def slowdown(architecture: str, savers: tuple[str, ...]) -> float:
    """The time per step with `savers` (speed_savers' names) over the time without them."""
    factor = 1.0
    for saver in savers:
        name, _, blocks = saver.partition("=")
        if name == "blocks_to_swap":
            factor *= swap_slowdown(architecture, int(blocks or 0))
        elif name in SAVERS:
            factor *= SAVERS[name].slowdown
    return factor


def prior_step_s(architecture: str, resolution: int, batch: int, savers: tuple[str, ...]) -> float:
    """The prior's seconds per step for a run of this shape.

    Time grows with the pixels of a batch (attention grows faster, the fixed costs slower;
    pixels are the middle road) and with each saver's factor.
    """
    arch = spec(architecture)
    reference = int(arch.param_defaults.get("resolution", 1024))
    pixels = (max(1, resolution) / reference) ** 2 * max(1, batch)
    return arch.prior_step_s * pixels * slowdown(architecture, savers)
