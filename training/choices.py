"""Choices and constants shared across the training app."""

from django.db import models

from sdscripts.architectures import ARCHITECTURES

# The registry (sdscripts.architectures) is the one list of architectures.
Architecture = models.TextChoices(
    "Architecture", [(key.upper(), (key, spec.label)) for key, spec in ARCHITECTURES.items()]
)


class RunStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    QUEUED = "queued", "Queued"
    ASSIGNED = "assigned", "Assigned"
    PREPARING = "preparing", "Preparing"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class FailureReason(models.TextChoices):
    OOM = "oom", "Out of GPU memory"
    TRAINER_ERROR = "trainer_error", "Trainer error"
    CONFIG = "config", "Configuration error"
    MISSING_FILES = "missing_files", "Missing model or dataset files"
    WORKER_LOST = "worker_lost", "Worker lost"
    NODE_OFFLINE = "node_offline", "Node offline"
    DISK_FULL = "disk_full", "Disk full"
    MODEL_FILE = "model_file", "Damaged or unusable model file"
    INPUTS_CHANGED = "inputs_changed", "Inputs changed since the run it repeats"


# A run holding (or about to hold) a GPU.
ON_GPU = (RunStatus.ASSIGNED, RunStatus.PREPARING, RunStatus.RUNNING)
# Not finished yet.
ACTIVE = (
    RunStatus.DRAFT,
    RunStatus.PENDING_APPROVAL,
    RunStatus.QUEUED,
    *ON_GPU,
)
TERMINAL = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)

# The run life cycle (docs/run-lifecycle.md): every move `lifecycle.transition` accepts.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    RunStatus.DRAFT: frozenset({RunStatus.PENDING_APPROVAL, RunStatus.QUEUED, RunStatus.CANCELLED}),
    RunStatus.PENDING_APPROVAL: frozenset({RunStatus.QUEUED, RunStatus.CANCELLED}),
    RunStatus.QUEUED: frozenset(
        {RunStatus.ASSIGNED, RunStatus.PENDING_APPROVAL, RunStatus.CANCELLED, RunStatus.FAILED}
    ),
    RunStatus.ASSIGNED: frozenset(
        {RunStatus.PREPARING, RunStatus.QUEUED, RunStatus.CANCELLED, RunStatus.FAILED}
    ),
    RunStatus.PREPARING: frozenset(
        {RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.CANCELLED, RunStatus.FAILED}
    ),
    RunStatus.RUNNING: frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


class ComfyUnloadMode(models.TextChoices):
    NONE = "none", "Do not ask ComfyUI to free memory"
    FREE = "free", "Unload models and free memory before training"


class ArtifactKind(models.TextChoices):
    EPOCH = "epoch", "Epoch checkpoint"
    STEP = "step", "Step checkpoint"
    FINAL = "final", "Final LoRA"
    STATE = "state", "Training state (zip, to resume from)"


class EventKind(models.TextChoices):
    STATUS = "status", "Status change"
    ACTION = "action", "Staff action"
