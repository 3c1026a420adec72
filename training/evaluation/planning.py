"""The one plan path of an evaluation: what it would render, and every reason it may not.

`plan_evaluation` is called by the request service (run page, admin, `manage.py evaluate`,
the runner after training), so all of them refuse the same things with the same words.
Reads only; services write.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from sdscripts.prompts import MAX_SAMPLE_PROMPTS, clean_prompt
from training.choices import ArtifactKind, RunStatus
from training.evaluation.options import (
    OptionError,
    parse_epochs,
    parse_prompts,
    parse_seeds,
    parse_strengths,
)
from training.models import Evaluation, GPUNode, LoraArtifact, TrainingRun

AUTO_MAX_CHECKPOINTS = 4  # an evaluation after training renders at most this many epochs


@dataclass(frozen=True)
class Checkpoint:
    """One LoRA file of a run, by the epoch it holds."""

    epoch: int
    artifact: LoraArtifact
    final: bool

    def record(self) -> dict:
        return {"epoch": self.epoch, "artifact": self.artifact.pk, "final": self.final}


@dataclass
class EvalPlan:
    run: TrainingRun
    checkpoints: list[Checkpoint] = field(default_factory=list)
    strengths: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    vram_mib: int = 0
    blocking: list[str] = field(default_factory=list)

    @property
    def total_images(self) -> int:
        """Strength 0 is the base model: one image per seed and prompt, not per checkpoint."""
        lora = [s for s in self.strengths if s != 0]
        base = 1 if len(lora) < len(self.strengths) else 0
        per_seed_prompt = base + len(self.checkpoints) * len(lora)
        return per_seed_prompt * len(self.seeds) * len(self.prompts)

    def summary(self) -> str:
        epochs = ", ".join(str(c.epoch) + (" (final)" if c.final else "") for c in self.checkpoints)
        return (
            f"epochs {epochs} × strengths {', '.join(format(s, 'g') for s in self.strengths)} × "
            f"seeds {', '.join(map(str, self.seeds))} × {len(self.prompts)} prompt"
            f"{'s' if len(self.prompts) != 1 else ''}: {self.total_images} images"
        )


def checkpoints_of(run: TrainingRun) -> list[Checkpoint]:
    """The run's LoRA files by epoch: its saved epochs, then the final LoRA (the last epoch;
    sd-scripts saves the last epoch only as the final file)."""
    files = list(run.artifacts.filter(kind__in=(ArtifactKind.EPOCH, ArtifactKind.FINAL)))
    epochs = [Checkpoint(a.epoch, a, False) for a in files if a.kind == ArtifactKind.EPOCH]
    epochs.sort(key=lambda c: c.epoch)
    final = next((a for a in files if a.kind == ArtifactKind.FINAL), None)
    if final is not None:
        after = (epochs[-1].epoch + 1) if epochs else 1
        epochs.append(Checkpoint(max(run.total_epochs or 0, after), final, True))
    return epochs


def _chosen(checkpoints: list[Checkpoint], epochs, *, auto: bool) -> list[Checkpoint]:
    if epochs == "last":
        return checkpoints[-1:]
    if epochs == "all":
        if auto and len(checkpoints) > AUTO_MAX_CHECKPOINTS:
            # Evenly spaced, always with the final one.
            n = len(checkpoints) - 1
            picks = {round(i * n / (AUTO_MAX_CHECKPOINTS - 1)) for i in range(AUTO_MAX_CHECKPOINTS)}
            return [checkpoints[i] for i in sorted(picks)]
        return checkpoints
    by_epoch = {c.epoch: c for c in checkpoints}
    missing = [e for e in epochs if e not in by_epoch]
    if missing:
        have = ", ".join(str(c.epoch) + (" (final)" if c.final else "") for c in checkpoints)
        raise OptionError(
            "epochs",
            f"the run has no LoRA file of epoch {', '.join(map(str, missing))} "
            f"(it has {have or 'none'})",
        )
    return [by_epoch[e] for e in epochs]


def default_prompts(run: TrainingRun) -> list[str]:
    """The run's own sample prompts; else its dataset's trigger word."""
    prompts = [clean_prompt(p) for p in (run.sample_prompts or "").splitlines()]
    prompts = [p for p in prompts if p][:MAX_SAMPLE_PROMPTS]
    if prompts:
        return prompts
    trigger = clean_prompt(run.dataset.trigger_word) if run.dataset_id else ""
    return [f"a photo of {trigger}" if trigger else "a photo"]


def render_settings(run: TrainingRun) -> dict:
    """Size and steps of the run's own samples, sampler settings of its architecture."""
    inference = run.base_model.spec.inference
    params = run.params or {}
    size = int(params.get("resolution") or 512)
    size = max(64, size - size % 16)  # latent sizes: SD3/FLUX latents step by 16
    return {
        "width": size,
        "height": size,
        "steps": int(params.get("sample_steps") or 20),
        "cfg": inference.cfg,
        "sampler": inference.sampler,
        "scheduler": inference.scheduler,
        "negative": inference.negative,
    }


def plan_evaluation(
    run: TrainingRun,
    *,
    epochs: str | None = "all",
    strengths=None,
    seeds=None,
    prompts=None,
    auto: bool = False,
) -> EvalPlan:
    """Check and plan an evaluation of `run`. Bad input raises OptionError; everything else
    that stops it is listed in `plan.blocking`."""
    plan = EvalPlan(run=run)
    plan.strengths = parse_strengths(strengths)
    plan.seeds = parse_seeds(seeds)
    plan.prompts = parse_prompts(prompts) or default_prompts(run)
    wanted_epochs = parse_epochs(epochs)
    arch = run.base_model.spec
    if run.status != RunStatus.SUCCEEDED:
        plan.blocking.append(
            f"run #{run.pk} is {run.get_status_display().lower()}: only a succeeded run's LoRA "
            "files are evaluated"
        )
        return plan
    if arch.inference is None:
        plan.blocking.append(f"{arch.label} LoRAs cannot be rendered by ComfyUI or SwarmUI")
        return plan
    plan.checkpoints = _chosen(checkpoints_of(run), wanted_epochs, auto=auto)
    if not plan.checkpoints:
        plan.blocking.append(f"run #{run.pk} has no LoRA file to evaluate")
    plan.settings = render_settings(run)
    plan.vram_mib = arch.inference.vram_mib
    for checkpoint in plan.checkpoints:
        name = checkpoint.artifact.file.name
        if not checkpoint.artifact.file.storage.exists(name):
            plan.blocking.append(f"the LoRA file of epoch {checkpoint.epoch} is gone ({name})")
    servers = [n for n in GPUNode.objects.filter(enabled=True) if n.has_inference_server]
    if not servers:
        plan.blocking.append(
            "no node has ComfyUI or SwarmUI: set a node's ComfyUI URL (admin → GPU nodes, or "
            "manage.py register_node --comfyui-url URL)"
        )
    elif not any(n.evaluation_lora_dir for n in servers):
        plan.blocking.append(
            "no node with ComfyUI/SwarmUI has a LoRA folder the server lists: set its LoRA "
            "publish folder or inference LoRA folder"
        )
    earlier = Evaluation.objects.active().filter(run=run).first()
    if earlier is not None:
        plan.blocking.append(
            f"evaluation #{earlier.pk} of this run is {earlier.get_status_display().lower()}: "
            "wait for it or cancel it"
        )
    limit = settings.LORASTUDIO_MAX_EVAL_IMAGES
    if plan.total_images > limit:
        plan.blocking.append(
            f"{plan.total_images} images is more than {limit} (LORASTUDIO_MAX_EVAL_IMAGES): "
            "choose fewer epochs, strengths, seeds or prompts"
        )
    return plan
