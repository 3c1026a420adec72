"""GPU machines and their GPUs, as the node agent last saw them."""

from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from training.choices import ComfyUnloadMode

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# The web app's own settings: a node's trainer never gets them, whatever staff type.
FORBIDDEN_TRAINER_ENV = frozenset(
    {
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "DJANGO_SUPERUSER_PASSWORD",
        "DJANGO_SETTINGS_MODULE",
    }
)


def trainer_env_problems(env: object) -> list[str]:
    """What is wrong with a node's trainer environment (empty when nothing)."""
    if not isinstance(env, dict):
        return ["Must be a JSON object of NAME: value."]
    problems = []
    for name, value in env.items():
        if not ENV_NAME.match(str(name)):
            problems.append(f"{name!r}: a name is capitals, digits and _ (e.g. HF_HOME).")
        elif name in FORBIDDEN_TRAINER_ENV or name.startswith("LORASTUDIO_"):
            problems.append(f"{name}: the web app's own setting; the trainer never gets it.")
        elif not isinstance(value, str) or "\x00" in value:
            problems.append(f"{name}: the value must be text.")
    return problems


def command_problem(argv: object) -> str:
    """What is wrong with a staff-set command (a JSON list of arguments); "" when nothing."""
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        return 'Must be a JSON list of arguments, e.g. ["systemctl", "stop", "comfyui"].'
    if argv and (not argv[0].strip() or any("\x00" in a for a in argv)):
        return "The program name is empty, or an argument holds a NUL character."
    return ""


node_name_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
    "Use letters, digits, '.', '_' or '-' (it is also the node's queue name).",
)


class GPUNodeQuerySet(models.QuerySet):
    def online(self) -> GPUNodeQuerySet:
        """Enabled nodes whose agent reported within the stale limit."""
        cutoff = timezone.now() - timedelta(seconds=settings.LORASTUDIO_STALE_AFTER_SECONDS)
        return self.filter(enabled=True, last_heartbeat__gte=cutoff)


class GPUNode(models.Model):
    """A machine that trains: its django-q2 cluster has the same name."""

    name = models.CharField(max_length=63, unique=True, validators=[node_name_validator])
    enabled = models.BooleanField(default=True)
    models_root = models.CharField(
        max_length=500, blank=True, help_text="Base folder for relative model paths."
    )
    sdscripts_dir = models.CharField(max_length=500, blank=True, verbose_name="sd-scripts folder")
    sdscripts_python = models.CharField(
        max_length=500, blank=True, verbose_name="sd-scripts Python", help_text="Its venv's python."
    )
    sdscripts_version = models.CharField(max_length=100, blank=True, editable=False)
    model_files_present = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="Per base model id: whether this node has all of its files (the node agent "
        "looks on every beat).",
    )
    engine_modules = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="Which optional Python modules sd-scripts' venv can import here "
        "(bitsandbytes, prodigyopt, …), as check_node last found them; empty = not checked.",
    )
    work_dir = models.CharField(
        max_length=500, blank=True, help_text="Where runs are prepared; default: the data dir."
    )
    tokenizer_cache_dir = models.CharField(
        max_length=500,
        blank=True,
        verbose_name="tokenizer cache folder",
        help_text="sd-scripts' --tokenizer_cache_dir: tokenizers saved here are loaded without "
        "internet (an offline node needs it, or a filled Hugging Face cache in its trainer "
        "environment).",
    )
    trainer_env = models.JSONField(
        default=dict,
        blank=True,
        verbose_name="trainer environment",
        help_text='Extra environment for the trainer, e.g. {"HF_HOME": "/srv/hf", '
        '"HF_HUB_OFFLINE": "1"}. Names in capitals; the web app\'s secrets never reach it.',
    )
    lora_dir = models.CharField(
        max_length=500,
        blank=True,
        verbose_name="LoRA publish folder",
        help_text="Finished LoRAs are copied here, e.g. SwarmUI's Models/Lora.",
    )
    comfyui_url = models.URLField(blank=True, verbose_name="ComfyUI URL")
    comfyui_unload = models.CharField(
        max_length=10,
        choices=ComfyUnloadMode.choices,
        default=ComfyUnloadMode.FREE,
        verbose_name="making room for training",
        help_text="What a run does to ComfyUI/SwarmUI before training and after it.",
    )
    swarmui_url = models.URLField(blank=True, verbose_name="SwarmUI URL")
    # Labs that stop the inference server for training: staff-set argument lists, run
    # without a shell (training.evaluation.server).
    inference_stop_command = models.JSONField(
        default=list,
        blank=True,
        verbose_name="stop command",
        help_text='Stops ComfyUI/SwarmUI before training, e.g. ["systemctl", "--user", "stop", '
        '"comfyui"]: a JSON list of arguments, run without a shell.',
    )
    inference_start_command = models.JSONField(
        default=list,
        blank=True,
        verbose_name="start command",
        help_text='Starts it again after training, e.g. ["systemctl", "--user", "start", '
        '"comfyui"]; the run waits until the server answers.',
    )
    inference_start_timeout = models.PositiveIntegerField(
        default=300,
        verbose_name="start wait (s)",
        help_text="How long to wait for the server to answer after the start command.",
    )
    inference_stopped = models.BooleanField(
        default=False,
        editable=False,
        help_text="Its inference server is stopped for training: set by the run that stops it, "
        "cleared once it answers again (after the start command, or the node agent sees it).",
    )
    inference_gpu = models.PositiveSmallIntegerField(
        default=0,
        verbose_name="inference GPU",
        help_text="The index of the GPU ComfyUI/SwarmUI renders on (evaluations are placed on it).",
    )
    inference_lora_dir = models.CharField(
        max_length=500,
        blank=True,
        verbose_name="inference LoRA folder",
        help_text="A folder ComfyUI/SwarmUI lists LoRAs from, when it differs from the publish "
        "folder: evaluations copy the run's files into a lorastudio-eval/ folder in it.",
    )
    last_heartbeat = models.DateTimeField(null=True, blank=True, editable=False)
    status_message = models.CharField(max_length=300, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(
        excluded_fields=[
            "last_heartbeat",
            "status_message",
            "updated_at",
            "sdscripts_version",
            "engine_modules",
            "model_files_present",
            "inference_stopped",
        ]
    )
    objects = GPUNodeQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "GPU node"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        problems = trainer_env_problems(self.trainer_env)
        if problems:
            errors["trainer_env"] = problems
        for field in ("inference_stop_command", "inference_start_command"):
            problem = command_problem(getattr(self, field))
            if problem:
                errors[field] = [problem]
            elif self.comfyui_unload == ComfyUnloadMode.STOP and not getattr(self, field):
                errors[field] = ["Stopping the server for training needs this command."]
        if self.comfyui_unload == ComfyUnloadMode.STOP and not self.has_inference_server:
            errors["comfyui_url"] = ["Set the URL of the server the commands stop and start."]
        if errors:
            raise ValidationError(errors)

    @property
    def has_inference_server(self) -> bool:
        """Whether the node has ComfyUI or SwarmUI (it can evaluate runs)."""
        return bool(self.comfyui_url or self.swarmui_url)

    @property
    def inference_backend(self) -> str:
        """Which server renders evaluations: ComfyUI when set, else SwarmUI ("" = none)."""
        return "comfyui" if self.comfyui_url else ("swarmui" if self.swarmui_url else "")

    @property
    def evaluation_lora_dir(self) -> str:
        """The folder evaluations put LoRA files in for the inference server to list."""
        return self.inference_lora_dir or self.lora_dir

    def has_model_files(self, base_model_id: int) -> bool | None:
        """Whether this node has a base model's files, as its agent last found (None: not
        checked yet)."""
        return (self.model_files_present or {}).get(str(base_model_id))

    @property
    def is_online(self) -> bool:
        """Whether the node agent reported recently."""
        if not self.enabled or self.last_heartbeat is None:
            return False
        age = (timezone.now() - self.last_heartbeat).total_seconds()
        return age <= settings.LORASTUDIO_STALE_AFTER_SECONDS


class GPU(models.Model):
    """One GPU of a node, with the memory NVML last reported."""

    node = models.ForeignKey(GPUNode, on_delete=models.CASCADE, related_name="gpus")
    index = models.PositiveSmallIntegerField()
    uuid = models.CharField(max_length=100, blank=True)
    name = models.CharField(max_length=100, blank=True)
    enabled = models.BooleanField(default=True, help_text="Untick to keep runs off this GPU.")
    total_mib = models.PositiveIntegerField(default=0)
    free_mib = models.PositiveIntegerField(default=0)
    used_mib = models.PositiveIntegerField(default=0)
    used_by_others_mib = models.PositiveIntegerField(
        default=0, help_text="Memory held by processes that are not our trainer."
    )
    reclaimable_mib = models.PositiveIntegerField(
        default=0, help_text="Memory ComfyUI/SwarmUI would give back when asked."
    )
    utilization_pct = models.PositiveSmallIntegerField(null=True, blank=True)
    temperature_c = models.PositiveSmallIntegerField(null=True, blank=True)
    power_w = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["node__name", "index"]
        verbose_name = "GPU"
        constraints = [
            models.UniqueConstraint(fields=["node", "index"], name="gpu_unique_index_per_node")
        ]

    def __str__(self) -> str:
        return f"{self.node.name} GPU {self.index}" + (f" ({self.name})" if self.name else "")

    @property
    def available_mib(self) -> int:
        """Free memory plus what ComfyUI/SwarmUI would give back."""
        return self.free_mib + self.reclaimable_mib
