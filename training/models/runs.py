"""Training runs, their audit timeline and their log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from training.choices import ON_GPU, TERMINAL, EventKind, FailureReason, RunStatus


class TrainingRunQuerySet(models.QuerySet):
    def visible_to(self, user) -> TrainingRunQuerySet:
        """The one ownership rule: students see their own runs, staff see all."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self.all()
        return self.filter(owner=user)

    def on_gpu(self) -> TrainingRunQuerySet:
        """Runs that hold (or are about to hold) a GPU."""
        return self.filter(status__in=ON_GPU)

    def queued(self) -> TrainingRunQuerySet:
        """Runs waiting for a GPU."""
        return self.filter(status=RunStatus.QUEUED)

    def unfinished(self) -> TrainingRunQuerySet:
        """Runs not in a terminal state: drafts, waiting for approval, queued or training."""
        return self.exclude(status__in=TERMINAL)


class TrainingRun(models.Model):
    """One LoRA training job, from submission to its files."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_runs"
    )
    name = models.CharField(max_length=100, blank=True)
    dataset = models.ForeignKey(
        "datasets.Dataset", null=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    regularization_dataset = models.ForeignKey(
        "datasets.Dataset",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="regularization_runs",
    )
    base_model = models.ForeignKey(
        "training.BaseModel", on_delete=models.PROTECT, related_name="training_runs"
    )
    preset = models.ForeignKey(
        "training.Preset",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="training_runs",
    )
    params = models.JSONField(default=dict, help_text="Validated sd-scripts option values.")
    extra_flags = models.JSONField(default=list, blank=True, help_text="Staff-only extra flags.")

    status = models.CharField(
        max_length=20, choices=RunStatus.choices, default=RunStatus.DRAFT, editable=False
    )
    failure_reason = models.CharField(
        max_length=20, choices=FailureReason.choices, blank=True, editable=False
    )
    status_message = models.TextField(
        blank=True, editable=False, help_text="Why it waits, or what went wrong."
    )
    priority = models.SmallIntegerField(default=0, help_text="Higher runs first.")

    node = models.ForeignKey(
        "training.GPUNode", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    gpu = models.ForeignKey(
        "training.GPU", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )

    vram_estimate_mib = models.PositiveIntegerField(null=True, blank=True, editable=False)
    vram_peak_mib = models.PositiveIntegerField(null=True, blank=True, editable=False)
    plan = models.JSONField(default=dict, blank=True, editable=False)

    step = models.PositiveIntegerField(default=0, editable=False)
    total_steps = models.PositiveIntegerField(null=True, blank=True, editable=False)
    epoch = models.PositiveIntegerField(default=0, editable=False)
    total_epochs = models.PositiveIntegerField(null=True, blank=True, editable=False)
    loss = models.FloatField(null=True, blank=True, editable=False)
    speed = models.FloatField(null=True, blank=True, editable=False, help_text="Steps/second.")
    eta_seconds = models.PositiveIntegerField(null=True, blank=True, editable=False)
    loss_points = models.JSONField(default=list, blank=True, editable=False)

    argv = models.JSONField(default=list, blank=True, editable=False)
    dataset_config = models.TextField(blank=True, editable=False)
    sample_prompts = models.TextField(blank=True)
    evaluate_after = models.BooleanField(
        default=True,
        verbose_name="evaluate after training",
        help_text="When it succeeds, render an evaluation grid on its node's ComfyUI/SwarmUI "
        "(where the node has one).",
    )
    work_dir = models.CharField(max_length=500, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancel_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    pgid = models.IntegerField(null=True, blank=True, editable=False)
    exit_code = models.IntegerField(null=True, blank=True, editable=False)
    task_id = models.CharField(max_length=64, blank=True, editable=False)
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )
    # "Run exactly again": the runner refuses to start unless the dataset content and model
    # files are still those of rerun_of's provenance (training.provenance.exact).
    exact = models.BooleanField(
        default=False, editable=False, help_text="Run exactly again: rerun_of's very inputs."
    )
    # Resume (training/resume.py): this run continues `resumed_from` from the training state
    # `resume_state` saved after epoch `resume_epoch` (`resume_step` steps done).
    resumed_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resumes"
    )
    resume_state = models.ForeignKey(
        "training.LoraArtifact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    resume_epoch = models.PositiveIntegerField(null=True, blank=True, editable=False)
    resume_step = models.PositiveIntegerField(null=True, blank=True, editable=False)
    auto_resumed = models.BooleanField(
        default=False, editable=False, help_text="Started automatically after its run was lost."
    )
    # The worker process running it on its node: the node agent fails the run at once when
    # that process is gone (training/reaper.py), instead of waiting for a stale heartbeat.
    worker_pid = models.IntegerField(null=True, blank=True, editable=False)
    purpose = models.TextField(
        blank=True, max_length=2000, help_text="Why this run was made (shown on its report)."
    )
    # Summed by the node agent from the GPU's power readings while the run holds it
    # (training.energy); power_sampled_at is the last reading counted.
    gpu_seconds = models.FloatField(default=0.0, editable=False)
    energy_wh = models.FloatField(default=0.0, editable=False)
    power_sampled_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The new-run form this run was submitted from (a random id in the form): a second POST
    # of the same form finds this run instead of creating another.
    form_token = models.UUIDField(null=True, blank=True, editable=False)

    history = HistoricalRecords(
        excluded_fields=[
            "step",
            "total_steps",
            "epoch",
            "total_epochs",
            "loss",
            "speed",
            "eta_seconds",
            "loss_points",
            "heartbeat_at",
            "vram_peak_mib",
            "form_token",
            "gpu_seconds",
            "energy_wh",
            "power_sampled_at",
            "worker_pid",
        ]
    )
    objects = TrainingRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="run_owner_recent"),
            # Every run, newest first (staff's run list and the admin), one page without sorting
            # the table.
            models.Index(fields=["-created_at"], name="run_recent"),
            models.Index(fields=["node", "status"], name="run_node_status"),
            # Fair share (scheduler.gpu_hours_by_owner) reads the last week's runs from the
            # index alone, however many runs the table holds.
            models.Index(
                fields=["finished_at", "started_at", "owner", "gpu"], name="run_usage_window"
            ),
            # The queue in order (scheduler.queued_in_order) from the index alone.
            models.Index(
                fields=["status", "priority", "queued_at", "created_at", "owner"],
                name="run_queue_places",
            ),
            # The latest finished runs of a status, newest first, without sorting them all
            # (the speed history, the memory correction, the admin's estimate accuracy).
            models.Index(fields=["status", "-finished_at"], name="run_latest_finished"),
        ]
        constraints = [
            # The database itself refuses to give one GPU to two runs.
            models.UniqueConstraint(
                fields=["gpu"],
                condition=Q(status__in=ON_GPU),
                name="one_active_run_per_gpu",
            ),
            # Backs the submit service's check (made under the owner's row lock): one run per
            # submitted form.
            models.UniqueConstraint(
                fields=["owner", "form_token"], name="one_run_per_submitted_form"
            ),
        ]

    def __str__(self) -> str:
        return f"Run #{self.pk}" + (f" {self.name}" if self.name else "")

    @property
    def is_terminal(self) -> bool:
        """Whether the run has finished, one way or another."""
        return self.status in TERMINAL

    @property
    def progress_pct(self) -> float:
        """Percent of steps done (0 when unknown)."""
        if not self.total_steps:
            return 100.0 if self.status == RunStatus.SUCCEEDED else 0.0
        return min(100.0, 100.0 * self.step / self.total_steps)

    def is_visible_to(self, user) -> bool:
        """Whether `user` may see this run."""
        return bool(user.is_authenticated and (user.is_staff or self.owner_id == user.pk))


class RunEvent(models.Model):
    """One entry of a run's audit timeline: a status change or a staff action."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    kind = models.CharField(max_length=10, choices=EventKind.choices, default=EventKind.STATUS)
    from_status = models.CharField(max_length=20, choices=RunStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=RunStatus.choices, blank=True)
    reason = models.CharField(max_length=20, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["run", "created_at"], name="event_run_time")]

    def __str__(self) -> str:
        if self.kind == EventKind.STATUS:
            return f"{self.from_status or '—'} → {self.to_status}"
        return self.note[:80]


class RunLog(models.Model):
    """An append-only chunk of a run's trainer log (one or more lines)."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="log_chunks")
    seq = models.PositiveIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "seq"]
        verbose_name = "run log chunk"
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="log_unique_seq")]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.seq}"
