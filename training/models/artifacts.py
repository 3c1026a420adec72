"""Files a run produced: LoRA checkpoints and sample images."""

from __future__ import annotations

from django.db import models

from training.choices import ArtifactKind


def run_file_upload_to(instance, filename: str) -> str:
    """Run outputs live under runs/<id>/ in the media folder."""
    return f"runs/{instance.run_id}/{filename}"


class LoraArtifact(models.Model):
    """A LoRA file (.safetensors) written by a run."""

    run = models.ForeignKey(
        "training.TrainingRun", on_delete=models.CASCADE, related_name="artifacts"
    )
    kind = models.CharField(max_length=10, choices=ArtifactKind.choices)
    epoch = models.PositiveIntegerField(null=True, blank=True)
    step = models.PositiveIntegerField(null=True, blank=True)
    file = models.FileField(upload_to=run_file_upload_to, max_length=500)
    size_bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    # The file exactly as the trainer wrote it, before LoRA Studio added its lorastudio_*
    # metadata (which names the run): what "run exactly again" reproduces.
    trainer_sha256 = models.CharField(max_length=64, blank=True)
    published_path = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "kind", "epoch", "step", "id"]
        verbose_name = "LoRA artifact"
        constraints = [
            models.UniqueConstraint(fields=["run", "file"], name="artifact_unique_file_per_run")
        ]

    def __str__(self) -> str:
        return self.file.name.rsplit("/", 1)[-1]


class SampleImage(models.Model):
    """A sample image generated during a run."""

    run = models.ForeignKey(
        "training.TrainingRun", on_delete=models.CASCADE, related_name="samples"
    )
    file = models.FileField(upload_to=run_file_upload_to, max_length=500)
    epoch = models.PositiveIntegerField(null=True, blank=True)
    step = models.PositiveIntegerField(null=True, blank=True)
    index = models.PositiveSmallIntegerField(default=0)
    prompt = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "epoch", "index", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "file"], name="sample_unique_file_per_run")
        ]

    def __str__(self) -> str:
        return self.file.name.rsplit("/", 1)[-1]
