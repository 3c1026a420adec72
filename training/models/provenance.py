"""What made a run (captured when its trainer starts, never edited) and model-file hashes."""

from __future__ import annotations

from django.db import models


class ProvenanceIsFinal(Exception):
    """A provenance record is written once, when the run starts; it is never changed."""


class RunProvenance(models.Model):
    """Everything that made a run's LoRA, as the runner found it just before the trainer
    started: the exact command and files, the content of the dataset as trained, the base
    model files' hashes, the machine and the software. Written once (training.provenance);
    `save()` refuses to change it."""

    run = models.OneToOneField(
        "training.TrainingRun",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="provenance",
    )
    captured_at = models.DateTimeField(auto_now_add=True)
    argv = models.JSONField(default=list)
    dataset_config = models.TextField(blank=True, help_text="The dataset TOML as written.")
    prompt_file = models.TextField(blank=True, help_text="The sample prompt file as written.")
    params = models.JSONField(default=dict)
    extra_flags = models.JSONField(default=list, blank=True)
    dataset_sha256 = models.CharField(
        max_length=64, db_index=True, help_text="The training images and captions as trained."
    )
    subsets = models.JSONField(
        default=list,
        help_text="Per image folder (training, regularisation): its dataset, repeats, class "
        "tokens, content hash and every file with its hash and caption.",
    )
    base_model_sha256 = models.CharField(max_length=64, db_index=True)
    base_model = models.JSONField(
        default=dict, help_text="Name, architecture and each model file with its hash."
    )
    node_name = models.CharField(max_length=63, blank=True)
    gpu_name = models.CharField(max_length=100, blank=True)
    gpu_uuid = models.CharField(max_length=100, blank=True)
    driver = models.CharField(max_length=100, blank=True)
    sdscripts_version = models.CharField(
        max_length=200, blank=True, help_text="The sd-scripts checkout's commit (or the trainer)."
    )
    packages = models.JSONField(
        default=dict, blank=True, help_text="The trainer's Python and package versions."
    )
    lorastudio_version = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name = "run provenance"
        verbose_name_plural = "run provenance"

    def __str__(self) -> str:
        return f"Provenance of run #{self.run_id}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ProvenanceIsFinal(f"The provenance of run #{self.run_id} is never changed.")
        super().save(*args, **kwargs)

    def subset(self, role: str) -> dict | None:
        """The "train" or "reg" image folder's record (None when the run had none)."""
        return next((s for s in self.subsets if s.get("role") == role), None)

    @property
    def files(self) -> list[dict]:
        """The training images as trained: name, original name, hash and caption each."""
        return list((self.subset("train") or {}).get("files", []))


class FileHash(models.Model):
    """A model file's SHA-256 on one node, valid while its size and modification time stay
    as they were when it was hashed (a 20 GB checkpoint is read once, not every run)."""

    node = models.ForeignKey(
        "training.GPUNode", on_delete=models.CASCADE, related_name="file_hashes"
    )
    path = models.CharField(max_length=1000)
    size_bytes = models.PositiveBigIntegerField()
    mtime_ns = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    hashed_at = models.DateTimeField()

    class Meta:
        verbose_name = "model file hash"
        constraints = [
            models.UniqueConstraint(fields=["node", "path"], name="file_hash_unique_path_per_node")
        ]

    def __str__(self) -> str:
        return f"{self.path} ({self.sha256[:12]})"
