"""Read-only queries about the lab's GPUs and the runs they measured (selectors: no writes)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from sdscripts.architectures import ARCHITECTURES
from sdscripts.params import OPTIMIZER_MODULES
from sdscripts.vram import CORRECTION_WINDOW, Correction, estimate_vram, learned_correction, plan
from training.choices import RunStatus
from training.models import GPU, GPUNode, TrainingRun

# pip package names where they differ from the module sd-scripts imports.
PIP_NAMES = {"lion_pytorch": "lion-pytorch"}


def nowhere_has_files(base_model, nodes=None) -> str:
    """Why no node can run this base model ("" when one has its files or has not looked).

    Every enabled node's agent reports which base models' files it holds; only when all of
    them have looked and none has the files is it certain that no run of it can start.
    """
    if not base_model.spec.on_gpu:
        return ""
    nodes = GPUNode.objects.filter(enabled=True) if nodes is None else nodes
    reports = [n.has_model_files(base_model.pk) for n in nodes]
    if not reports or any(found is not False for found in reports):
        return ""
    files = ", ".join(base_model.model_files().values()) or "none set"
    return (
        f"no node has the files of {base_model.name} ({files}): copy them to a node's models "
        "folder, or fix the base model's paths"
    )


def node_can_import(engine_modules: dict, optimizer: str | None) -> bool:
    """Whether a node whose sd-scripts reported `engine_modules` can run `optimizer`
    (a node never checked is given the benefit of the doubt)."""
    module = OPTIMIZER_MODULES.get(optimizer or "")  # "": torch itself, always there
    return not engine_modules or not module or engine_modules.get(module, True) is True


def unavailable_optimizers() -> dict[str, str]:
    """Optimizers no enabled node can import, each with why and the fix.

    Only nodes check_node has looked at count; while none has been checked, nothing is
    refused (the first run's exit will say what is missing).
    """
    reports = [
        modules
        for modules in GPUNode.objects.filter(enabled=True).values_list("engine_modules", flat=True)
        if modules
    ]
    if not reports:
        return {}
    missing = {}
    for optimizer, module in OPTIMIZER_MODULES.items():
        if not any(node_can_import(modules, optimizer) for modules in reports):
            missing[optimizer] = (
                f"no node's sd-scripts can import {module} for {optimizer}: install it in "
                f"sd-scripts' venv (pip install {PIP_NAMES.get(module, module)}) and run "
                "check_node, or choose another optimizer"
            )
    return missing


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


def hours_held(runs, start: datetime, end: datetime) -> dict[int, float]:
    """Hours each owner's `runs` trained between `start` and `end`: a run counts from its
    start to its end (up to `end` while it still trains), only the part inside the window."""
    rows = runs.filter(
        Q(finished_at__gt=start) | Q(finished_at__isnull=True),
        started_at__isnull=False,
        started_at__lt=end,
    ).order_by()  # no order to keep: the run_usage_window index, not a scan by created_at
    hours: dict[int, float] = {}
    for owner_id, started, finished in rows.values_list("owner_id", "started_at", "finished_at"):
        seconds = (min(finished or end, end) - max(started, start)).total_seconds()
        if seconds > 0:
            hours[owner_id] = hours.get(owner_id, 0.0) + seconds / 3600
    return hours
