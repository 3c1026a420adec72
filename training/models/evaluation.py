"""Evaluations of a finished run: its LoRA files rendered by the node's ComfyUI or SwarmUI.

An `Evaluation` is one grid (checkpoints × strengths × seeds × prompts) with its own small
life cycle (docs/evaluation.md); each rendered picture is an `EvaluationImage`. Strength 0 is
the base model, the same for every checkpoint, so it is rendered once per seed and prompt and
stored with epoch 0.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from training.choices import (
    EVAL_ACTIVE,
    EVAL_ON_SERVER,
    EVAL_TERMINAL,
    EvalFailure,
    EvalStatus,
    InferenceBackend,
)

BASE_EPOCH = 0  # the epoch of a strength-0 image: the base model, before any training


class EvaluationQuerySet(models.QuerySet):
    def visible_to(self, user) -> EvaluationQuerySet:
        """The run's ownership rule: students see their own runs' evaluations, staff all."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self.all()
        return self.filter(run__owner=user)

    def active(self) -> EvaluationQuerySet:
        return self.filter(status__in=EVAL_ACTIVE)

    def on_server(self) -> EvaluationQuerySet:
        """Evaluations holding (or about to hold) their node's inference server."""
        return self.filter(status__in=EVAL_ON_SERVER)


class Evaluation(models.Model):
    """One evaluation grid of a run, rendered by a node's inference server."""

    run = models.ForeignKey(
        "training.TrainingRun", on_delete=models.CASCADE, related_name="evaluations"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    after_training = models.BooleanField(
        default=False, help_text="Requested by the run itself when its training ended."
    )
    status = models.CharField(
        max_length=12, choices=EvalStatus.choices, default=EvalStatus.QUEUED, editable=False
    )
    failure_reason = models.CharField(
        max_length=20, choices=EvalFailure.choices, blank=True, editable=False
    )
    status_message = models.TextField(blank=True, editable=False)
    # What to render: [{"epoch": n, "artifact": id, "final": bool}], strengths, seeds, prompts,
    # and the sampler settings (size, steps, cfg, sampler, scheduler, negative prompt).
    checkpoints = models.JSONField(default=list)
    strengths = models.JSONField(default=list)
    seeds = models.JSONField(default=list)
    prompts = models.JSONField(default=list)
    settings = models.JSONField(default=dict, blank=True)
    vram_mib = models.PositiveIntegerField(default=0, help_text="Its memory figure (registry).")
    total_images = models.PositiveIntegerField(default=0, editable=False)
    done_images = models.PositiveIntegerField(default=0, editable=False)

    backend = models.CharField(
        max_length=10, choices=InferenceBackend.choices, blank=True, editable=False
    )
    node = models.ForeignKey(
        "training.GPUNode",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="evaluations",
    )
    gpu = models.ForeignKey(
        "training.GPU", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    task_id = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancel_requested_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = EvaluationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One evaluation at a time per run, and per node's inference server.
            models.UniqueConstraint(
                fields=["run"],
                condition=Q(status__in=EVAL_ACTIVE),
                name="one_unfinished_evaluation_per_run",
            ),
            models.UniqueConstraint(
                fields=["node"],
                condition=Q(status__in=EVAL_ON_SERVER),
                name="one_active_evaluation_per_node",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="evaluation_queue")]

    def __str__(self) -> str:
        return f"Evaluation #{self.pk} of run #{self.run_id}"

    @property
    def is_terminal(self) -> bool:
        return self.status in EVAL_TERMINAL

    @property
    def epochs(self) -> list[int]:
        return [c["epoch"] for c in self.checkpoints]

    @property
    def progress_pct(self) -> float:
        return 100.0 * self.done_images / self.total_images if self.total_images else 0.0


def evaluation_upload_to(instance, filename: str) -> str:
    return f"runs/{instance.run_id}/evaluation-{instance.evaluation_id}/{filename}"


class EvaluationImage(models.Model):
    """One rendered picture of an evaluation: a checkpoint at a strength, seed and prompt."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="images")
    run = models.ForeignKey(
        "training.TrainingRun", on_delete=models.CASCADE, related_name="evaluation_images"
    )
    artifact = models.ForeignKey(
        "training.LoraArtifact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    epoch = models.PositiveIntegerField(help_text="0: the base model (strength 0).")
    strength = models.FloatField()
    seed = models.PositiveBigIntegerField()
    prompt_index = models.PositiveSmallIntegerField()
    prompt = models.TextField()
    file = models.FileField(upload_to=evaluation_upload_to, max_length=500)
    seconds = models.FloatField(null=True, blank=True, help_text="How long the server took.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["evaluation", "prompt_index", "seed", "epoch", "strength", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["evaluation", "epoch", "strength", "seed", "prompt_index"],
                name="one_image_per_grid_cell",
            )
        ]

    def __str__(self) -> str:
        return self.file.name.rsplit("/", 1)[-1]

    @property
    def cell(self) -> str:
        """The grid cell's key, as the page and the live messages name it."""
        return cell_key(self.epoch, self.strength, self.seed, self.prompt_index)


def strength_text(strength: float) -> str:
    """A strength as the grid labels it: 0, 0.5, 0.8, 1."""
    return format(float(strength), "g")


def cell_key(epoch: int, strength: float, seed: int, prompt_index: int) -> str:
    return f"{epoch}:{strength_text(strength)}:{seed}:{prompt_index}"
