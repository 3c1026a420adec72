"""Make room on the run's GPU: ask ComfyUI and SwarmUI to free memory, then re-check NVML.

ComfyUI's `/free` only sets a flag its prompt worker acts on later, so free memory is polled
for a while after asking. A GPU that is still too full sends the run back to the queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from training.choices import FailureReason
from training.execution.errors import NotEnoughMemory, RunFailure
from training.models import GPU
from training.nodes import comfyui, nvml

FREE_WAIT_S = 60.0
POLL_S = 0.5


def gpu_free_mib(index: int) -> int | None:
    """Free memory of this machine's GPU `index` (None when it is not visible)."""
    report = nvml.read_gpus(settings.LORASTUDIO_GPU_BACKEND, settings.LORASTUDIO_FAKE_GPUS)
    for reading in report.gpus:
        if reading.index == index:
            return reading.free_mib
    return None


def ask_uis_to_free(node, say: Callable[[str], None]) -> bool:
    """Ask the node's ComfyUI and SwarmUI to give their memory back; True if one was asked.

    Not while an evaluation renders on them (placement.py counted its memory as taken), nor
    when the node stops its server for training (training.evaluation.server did).
    """
    from training.evaluation.placement import evaluation_on_node
    from training.evaluation.server import stops_for_training

    if stops_for_training(node):
        return False
    rendering = evaluation_on_node(node)
    if rendering is not None:
        say(f"[LoRA Studio] {rendering} renders on this node: ComfyUI/SwarmUI keep their memory.")
        return False
    asked = False
    if node.comfyui_url and node.comfyui_unload != "none":
        try:
            comfyui.comfyui_free(node.comfyui_url)
            asked = True
            say("[LoRA Studio] Asked ComfyUI to unload its models.")
        except comfyui.UIError as exc:
            say(f"[LoRA Studio] ComfyUI did not answer: {exc}")
    if node.swarmui_url:
        try:
            comfyui.swarmui_free(node.swarmui_url)
            asked = True
            say("[LoRA Studio] Asked SwarmUI to free its backends' memory.")
        except comfyui.UIError as exc:
            say(f"[LoRA Studio] SwarmUI did not answer: {exc}")
    return asked


def make_room(run, say: Callable[[str], None]) -> None:
    """Free the run's GPU for it, or raise NotEnoughMemory / RunFailure(node_offline)."""
    if run.gpu_id is None:
        return
    node, index = run.node, run.gpu.index
    need = run.vram_estimate_mib or 0
    asked = ask_uis_to_free(node, say)
    free = gpu_free_mib(index)
    deadline = time.monotonic() + (FREE_WAIT_S if asked else 0)
    while free is not None and free < need and time.monotonic() < deadline:
        time.sleep(POLL_S)
        free = gpu_free_mib(index)
    if free is None:
        raise RunFailure(FailureReason.NODE_OFFLINE, f"GPU {index} is not visible on {node.name}.")
    if free < need:
        # Record what we measured so that dispatch does not send the run straight back.
        GPU.objects.filter(pk=run.gpu_id).update(free_mib=free, updated_at=timezone.now())
        raise NotEnoughMemory(
            f"GPU {index} on {node.name} has {free / 1024:.1f} GB free, "
            f"the run needs {need / 1024:.1f} GB."
        )
