"""Read-only queries about the lab's GPUs and the runs they measured (selectors: no writes)."""

from __future__ import annotations

from sdscripts.architectures import ARCHITECTURES
from sdscripts.vram import CORRECTION_WINDOW, Correction, estimate_vram, learned_correction, plan
from training.choices import RunStatus
from training.models import GPU, GPUNode, TrainingRun


def candidate_gpus(architecture: str, params: dict, *, correction: float = 1.0) -> list[dict]:
    """Every enabled GPU on an online node, with whether the run's plan fits its memory.

    Memory is the GPU's total (the scheduler checks free memory at dispatch). Sorted so the
    GPUs that fit come first.
    """
    rows = []
    gpus = GPU.objects.filter(enabled=True, node__in=GPUNode.objects.online()).select_related(
        "node"
    )
    for gpu in gpus:
        result = plan(architecture, params, gpu.total_mib, correction=correction)
        rows.append(
            {
                "node": gpu.node.name,
                "gpu": gpu.index,
                "name": gpu.name,
                "total_mib": gpu.total_mib,
                "available_mib": gpu.available_mib,
                "fits": result.fits,
                "estimate_mib": result.estimate_mib,
            }
        )
    rows.sort(key=lambda r: (not r["fits"], -r["total_mib"], r["node"], r["gpu"]))
    return rows


def largest_gpu_mib() -> int | None:
    """The lab's GPU budget: the largest enabled GPU of an enabled node (None: no GPU).

    Offline nodes count: a node that misses a few heartbeats comes back, and a run planned
    for its GPU waits for it rather than being refused.
    """
    sizes = GPU.objects.filter(enabled=True, node__enabled=True).values_list("total_mib", flat=True)
    return max(sizes, default=None)


def vram_correction(architecture: str) -> Correction:
    """The VRAM correction an architecture's measured peaks call for
    (`sdscripts.vram.learned_correction`), from its last succeeded runs with a measured peak
    and a stored estimate.

    Only succeeded runs: a failed or cancelled run may have stopped before the training step's
    peak, and an out-of-memory run measured the GPU's size, not its need. Each peak is set
    against the uncorrected estimate the current model gives the run's stored (final)
    parameters, not against the stored estimate: that one already carried the correction of
    its day and perhaps an older model, and dividing by it would compound them.
    """
    arch = ARCHITECTURES.get(architecture)
    if arch is None or not arch.on_gpu:
        return Correction()
    rows = (
        TrainingRun.objects.filter(
            base_model__architecture=architecture,
            status=RunStatus.SUCCEEDED,
            vram_peak_mib__isnull=False,
            vram_estimate_mib__isnull=False,
        )
        .order_by("-finished_at", "-pk")
        .values_list("vram_peak_mib", "params")[:CORRECTION_WINDOW]
    )
    return learned_correction(
        (peak, estimate_vram(architecture, dict(params or {})).total_mib) for peak, params in rows
    )
