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
    """How a node makes room for training and gives the GPU back (training.evaluation.server)."""

    NONE = "none", "Do not ask ComfyUI to free memory (it reloads on demand)"
    FREE = "free", "Ask ComfyUI/SwarmUI to free their memory before training"
    STOP = "stop", "Stop the inference server before training, start it after (commands below)"


class ArtifactKind(models.TextChoices):
    EPOCH = "epoch", "Epoch checkpoint"
    STEP = "step", "Step checkpoint"
    FINAL = "final", "Final LoRA"
    STATE = "state", "Training state (zip, to resume from)"


class EventKind(models.TextChoices):
    STATUS = "status", "Status change"
    ACTION = "action", "Staff action"
    EVALUATION = "evaluation", "Evaluation"
    SERVER = "server", "Inference server"


class EvalStatus(models.TextChoices):
    """An evaluation's life cycle (docs/evaluation.md)."""

    QUEUED = "queued", "Queued"
    ASSIGNED = "assigned", "Assigned"
    RUNNING = "running", "Rendering"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class EvalFailure(models.TextChoices):
    SERVER_DOWN = "server_down", "Inference server down"
    LORA_NOT_VISIBLE = "lora_not_visible", "LoRA not visible to the server"
    MODEL_NOT_VISIBLE = "model_not_visible", "Base model not visible to the server"
    WORKFLOW_ERROR = "workflow_error", "Workflow error"
    TIMEOUT = "timeout", "Timed out"
    MISSING_FILES = "missing_files", "LoRA file missing"
    WORKER_LOST = "worker_lost", "Worker lost"
    ERROR = "error", "Unexpected error"


class InferenceBackend(models.TextChoices):
    COMFYUI = "comfyui", "ComfyUI"
    SWARMUI = "swarmui", "SwarmUI"


# Evaluations that hold (or are about to hold) a node's inference server, and unfinished ones.
EVAL_ON_SERVER = (EvalStatus.ASSIGNED, EvalStatus.RUNNING)
EVAL_ACTIVE = (EvalStatus.QUEUED, *EVAL_ON_SERVER)
EVAL_TERMINAL = (EvalStatus.SUCCEEDED, EvalStatus.FAILED, EvalStatus.CANCELLED)
EVAL_TRANSITIONS: dict[str, frozenset[str]] = {
    EvalStatus.QUEUED: frozenset({EvalStatus.ASSIGNED, EvalStatus.CANCELLED, EvalStatus.FAILED}),
    EvalStatus.ASSIGNED: frozenset(
        {EvalStatus.RUNNING, EvalStatus.QUEUED, EvalStatus.CANCELLED, EvalStatus.FAILED}
    ),
    EvalStatus.RUNNING: frozenset(
        {EvalStatus.SUCCEEDED, EvalStatus.FAILED, EvalStatus.CANCELLED, EvalStatus.QUEUED}
    ),
    EvalStatus.SUCCEEDED: frozenset(),
    EvalStatus.FAILED: frozenset(),
    EvalStatus.CANCELLED: frozenset(),
}


class NotifyEvent(models.TextChoices):
    """What a user can be told about by mail or webhook (training/notifications/)."""

    RUN_SUCCEEDED = "run.succeeded", "A run of mine succeeded"
    RUN_FAILED = "run.failed", "A run of mine failed"
    RUN_CANCELLED = "run.cancelled", "A run of mine was cancelled"
    EVALUATION_READY = "evaluation.ready", "An evaluation of my run is ready"
    APPROVAL_NEEDED = "run.pending_approval", "A run waits for approval (staff)"


# The run statuses that notify, and the event each one is.
NOTIFY_ON_STATUS = {
    RunStatus.SUCCEEDED: NotifyEvent.RUN_SUCCEEDED,
    RunStatus.FAILED: NotifyEvent.RUN_FAILED,
    RunStatus.CANCELLED: NotifyEvent.RUN_CANCELLED,
    RunStatus.PENDING_APPROVAL: NotifyEvent.APPROVAL_NEEDED,
}
# Events only staff receive.
STAFF_EVENTS = (NotifyEvent.APPROVAL_NEEDED,)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending (will be tried again)"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (given up)"
