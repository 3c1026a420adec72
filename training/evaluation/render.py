"""One evaluation's pictures on one server: LoRA files staged where it lists them, model and
LoRA names as it lists them, and one picture per grid cell.

`ComfyRenderer` fills the architecture's API-format workflow; `SwarmRenderer` calls SwarmUI's
GenerateText2Image with its LoRA parameters. Both name their failures (InferenceError with
an EvalFailure reason and advice).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from lorastudio.safepath import inside
from training.evaluation import workflow
from training.evaluation.clients import ComfyUI, InferenceError, SwarmUI
from training.evaluation.workflow import NameNotListed

STAGE_FOLDER = "lorastudio-eval"
# The strength the base-model column (strength 0) is rendered at on ComfyUI. At exactly 0
# LoraLoader hands back the checkpoint's own model object, and a real ComfyUI 0.12 rendered
# that with the weights of the LoRA applied just before (mean pixel difference 11-15 from a
# clean base, seen on these machines); a LoRA clone at 1e-12 made it restore the weights
# first and gave the clean base's exact pixels every time (docs/evaluation.md).
BASE_STRENGTH = 1e-12
LIST_WAIT_S = 10.0  # how long a copied LoRA may take to show up in the server's list
ROLE_LABELS = {
    "checkpoint": "checkpoint",
    "clip_l": "CLIP-L file",
    "clip_g": "CLIP-G file",
    "t5xxl": "T5-XXL file",
    "gemma2": "Gemma 2 file",
    "ae": "autoencoder",
    "vae": "VAE",
}


@dataclass(frozen=True)
class Cell:
    """One picture of the grid."""

    epoch: int  # 0: the base model
    checkpoint: dict  # {"epoch", "artifact", "final"}: the LoRA (for the base: the first)
    strength: float
    seed: int
    prompt_index: int
    prompt: str


def stage_name(run_id: int, checkpoint: dict, sha256: str) -> str:
    """A LoRA's name in the server's folder: unique per content, because ComfyUI serves a
    file replaced under the same name from its cache."""
    return f"run{run_id}-e{checkpoint['epoch']:06d}-{(sha256 or 'x')[:12]}.safetensors"


def stage(folder: str, name: str, source: Path) -> Path:
    """Copy `source` to `folder`/lorastudio-eval/`name` (complete before it is listed: written
    under a name no server lists, then renamed)."""
    dest = inside(folder, STAGE_FOLDER, name)
    if dest.is_file() and dest.stat().st_size == source.stat().st_size:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    shutil.copyfile(source, partial)
    os.replace(partial, dest)
    return dest


def unstage(paths: list[Path]) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


def _not_listed(server: str, what: str, exc: NameNotListed, advice: str) -> str:
    return f"{server} does not list the {what}: {exc}. {advice}"


class ComfyRenderer:
    """Renders cells with the architecture's workflow on ComfyUI."""

    def __init__(self, url: str, arch, model_files: dict[str, str], render: dict):
        self.client = ComfyUI(url)
        self.arch = arch
        self.model_files = model_files
        self.settings = render
        self.template = workflow.load(arch)
        self.names: dict[str, str] = {}
        self.loras: dict[int, str] = {}  # by epoch

    def check(self) -> None:
        self.client.check()

    def resolve(self, staged: dict[int, Path], folder: str) -> None:
        inputs = workflow.model_inputs(self.template)
        for role, (class_type, input_name) in inputs.items():
            if role == "lora":
                continue
            path = self.model_files.get(role)
            label = ROLE_LABELS.get(role, role)
            if not path:
                raise InferenceError(
                    "model_not_visible", f"the base model has no {label} set (admin → base models)"
                )
            try:
                self.names[role] = workflow.match_name(
                    path, self.client.options(class_type, input_name), what=label
                )
            except NameNotListed as exc:
                raise InferenceError(
                    "model_not_visible",
                    _not_listed(
                        "ComfyUI",
                        f"base model's {label} under {class_type}",
                        exc,
                        "Put the file in one of ComfyUI's model folders (or list its folder in "
                        "ComfyUI's extra_model_paths.yaml) under the same file name.",
                    ),
                ) from None
        class_type, input_name = inputs["lora"]
        self.loras = _find_loras(
            staged, folder, "ComfyUI", lambda: self.client.options(class_type, input_name)
        )

    def render(self, cell: Cell, *, timeout: float, socket, on_step, idle) -> bytes:
        values = {
            **self.names,
            "lora": self.loras[cell.checkpoint["epoch"]],
            "strength": cell.strength or BASE_STRENGTH,
            "seed": cell.seed,
            "prompt": (self.arch.inference.prompt_prefix or "") + cell.prompt,
            **self.settings,
        }
        filled = workflow.fill(self.template, values)
        prompt_id = self.client.queue(filled)
        try:
            entry = self.client.wait(
                prompt_id, timeout=timeout, socket=socket, on_step=on_step, idle=idle
            )
        except BaseException:
            self.client.interrupt()  # a cancel or timeout: stop what it is rendering for us
            raise
        return self.client.picture(entry)


class SwarmRenderer:
    """Renders cells through SwarmUI's own parameters (`loras`, `loraweights`)."""

    def __init__(self, url: str, arch, model_files: dict[str, str], render: dict):
        self.client = SwarmUI(url)
        self.arch = arch
        self.model_files = model_files
        self.settings = render
        self.model = ""
        self.loras: dict[int, str] = {}

    def check(self) -> None:
        self.client.check()

    def resolve(self, staged: dict[int, Path], folder: str) -> None:
        path = self.model_files.get("checkpoint", "")
        try:
            self.model = workflow.match_name(
                path, self.client.models("Stable-Diffusion"), what="checkpoint"
            )
        except NameNotListed as exc:
            raise InferenceError(
                "model_not_visible",
                _not_listed(
                    "SwarmUI", "base model", exc, "Put it in SwarmUI's Models folder by that name."
                ),
            ) from None

        def listing() -> list[str]:
            names = self.client.models("LoRA")
            stems = {p.name.removesuffix(".safetensors") for p in staged.values()}
            if not stems <= {n.rsplit("/", 1)[-1].removesuffix(".safetensors") for n in names}:
                self.client.refresh()  # SwarmUI lists new files after a rescan
                names = self.client.models("LoRA")
            return names

        self.loras = _find_loras(staged, folder, "SwarmUI", listing)

    def render(self, cell: Cell, *, timeout: float, socket, on_step, idle) -> bytes:
        inference = self.arch.inference
        params = {
            "prompt": (inference.prompt_prefix or "") + cell.prompt,
            "negativeprompt": self.settings["negative"],
            "model": self.model,
            "width": self.settings["width"],
            "height": self.settings["height"],
            "steps": self.settings["steps"],
            "cfgscale": inference.swarm_cfg if inference.swarm_cfg is not None else inference.cfg,
            "seed": cell.seed,
            "sampler": self.settings["sampler"],
            "scheduler": self.settings["scheduler"],
            "donotsave": True,
        }
        if cell.strength != 0:
            params["loras"] = self.loras[cell.checkpoint["epoch"]]
            params["loraweights"] = format(cell.strength, "g")
        return self.client.generate(params, timeout=timeout)


def _find_loras(
    staged: dict[int, Path], folder: str, server: str, listing: Callable[[], list[str]]
) -> dict[int, str]:
    """Each staged file's name as the server lists it, waiting a little for its list (at most
    as long as for a picture)."""
    deadline = time.monotonic() + min(LIST_WAIT_S, image_timeout())
    while True:
        names = listing()
        found, missing = {}, None
        for epoch, path in staged.items():
            try:
                found[epoch] = workflow.match_name(
                    f"{STAGE_FOLDER}/{path.name}", names, what="LoRA"
                )
            except NameNotListed as exc:
                missing = exc
        if missing is None:
            return found
        if time.monotonic() > deadline:
            raise InferenceError(
                "lora_not_visible",
                f"{server} does not list the LoRA files copied to {Path(folder) / STAGE_FOLDER} "
                f"({missing}). That folder is not one {server} reads LoRAs from: set the node's "
                "inference LoRA folder to its LoRA folder (ComfyUI: models/loras, or a folder "
                "of extra_model_paths.yaml; SwarmUI: Models/Lora), then evaluate again.",
            )
        time.sleep(0.5)


def renderer_for(evaluation):
    """The renderer of the evaluation's node's server (ComfyUI when the node has both)."""
    node, base = evaluation.node, evaluation.run.base_model
    files = base.model_files(node.models_root)
    if node.comfyui_url:
        return ComfyRenderer(node.comfyui_url, base.spec, files, dict(evaluation.settings))
    return SwarmRenderer(node.swarmui_url, base.spec, files, dict(evaluation.settings))


def image_timeout() -> float:
    return settings.LORASTUDIO_EVAL_IMAGE_TIMEOUT_SECONDS
