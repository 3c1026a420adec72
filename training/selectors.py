"""Read-only queries about the lab's GPUs (selectors: no writes)."""

from __future__ import annotations

from sdscripts.vram import plan
from training.models import GPU, GPUNode


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
