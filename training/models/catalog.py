"""Base models and presets: what staff offer students to train on."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from sdscripts import architectures
from sdscripts.architectures import FILE_ROLES
from sdscripts.command import validate_extra_flags
from sdscripts.params import ParamError, validate_params


def architecture_choices() -> list[tuple[str, str]]:
    """The registry's architectures; a callable, so a new one needs no migration."""
    return architectures.choices()


class BaseModel(models.Model):
    """A checkpoint (and the encoders its architecture needs) that runs start from."""

    name = models.CharField(max_length=100, unique=True)
    architecture = models.CharField(max_length=20, choices=architecture_choices)
    # One field per file role of the registry (sdscripts.architectures.FILE_ROLES).
    checkpoint = models.CharField(
        max_length=500, blank=True, help_text="Relative to a node's models root unless absolute."
    )
    clip_l = models.CharField(max_length=500, blank=True, verbose_name="CLIP-L")
    clip_g = models.CharField(max_length=500, blank=True, verbose_name="CLIP-G")
    t5xxl = models.CharField(max_length=500, blank=True, verbose_name="T5-XXL")
    gemma2 = models.CharField(max_length=500, blank=True, verbose_name="Gemma 2")
    ae = models.CharField(max_length=500, blank=True, verbose_name="Autoencoder (FLUX AE)")
    vae = models.CharField(max_length=500, blank=True, verbose_name="VAE (optional)")
    enabled = models.BooleanField(default=True)
    notes = models.TextField(blank=True)
    licence_text = models.TextField(
        blank=True, help_text="The model's licence, shown to students before they train on it."
    )
    licence_requires_acceptance = models.BooleanField(
        default=False,
        verbose_name="licence must be accepted",
        help_text="Each user accepts the licence once, on its page, before their first run on "
        "this model (e.g. FLUX.1-dev's non-commercial licence).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["name"]
        verbose_name = "base model"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        arch = architectures.ARCHITECTURES.get(self.architecture)
        missing = {
            field: "This architecture needs this file."
            for field in (arch.files if arch else ())
            if not getattr(self, field).strip()
        }
        if self.licence_requires_acceptance and not self.licence_text.strip():
            missing["licence_text"] = "Write the licence users must accept."
        if missing:
            raise ValidationError(missing)

    @property
    def spec(self) -> architectures.ArchSpec:
        """The registry's entry for this model's architecture."""
        return architectures.spec(self.architecture)

    def model_files(self, models_root: str = "") -> dict[str, str]:
        """The model files set on this model, resolved against `models_root`."""
        files = {}
        for field in FILE_ROLES:
            value = getattr(self, field).strip()
            if value:
                path = Path(value)
                if not path.is_absolute() and models_root:
                    path = Path(models_root) / path
                files[field] = str(path)
        return files


class Preset(models.Model):
    """A staff-curated parameter set for one architecture."""

    name = models.CharField(max_length=100, unique=True)
    architecture = models.CharField(max_length=20, choices=architecture_choices)
    description = models.TextField(blank=True)
    values = models.JSONField(
        default=dict, blank=True, help_text="sd-scripts option names and their values."
    )
    locked = models.JSONField(
        default=list, blank=True, help_text="Option names students cannot change."
    )
    bounds = models.JSONField(
        default=dict,
        blank=True,
        help_text='Narrower bounds for students, e.g. {"network_dim": {"min": 4, "max": 64}}.',
    )
    extra_flags = models.JSONField(
        default=list,
        blank=True,
        help_text="Extra sd-scripts options for every run of this preset, e.g. "
        '["--min_snr_gamma", "5", "--huber_scale=1.0"]; checked against the script\'s options.',
    )
    evaluate_after = models.BooleanField(
        default=True,
        verbose_name="evaluate after training",
        help_text="Render an evaluation grid of each run's LoRA files when it ends, where its "
        "node has ComfyUI or SwarmUI.",
    )
    enabled = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=100)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["sort_order", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if not isinstance(self.values, dict):
            errors["values"] = "Must be a JSON object of option names and values."
        if not isinstance(self.locked, list) or not all(isinstance(x, str) for x in self.locked):
            errors["locked"] = "Must be a JSON list of option names."
        if not isinstance(self.bounds, dict):
            errors["bounds"] = "Must be a JSON object of option names and bounds."
        flags = self.extra_flags
        if not isinstance(flags, list) or not all(isinstance(x, str) for x in flags):
            errors["extra_flags"] = 'Must be a JSON list of strings, e.g. ["--min_snr_gamma", "5"].'
        if errors:
            raise ValidationError(errors)
        try:
            validate_extra_flags(self.architecture, list(flags))
        except ParamError as exc:
            problems = "; ".join(f"{name}: {message}" for name, message in exc.errors.items())
            raise ValidationError({"extra_flags": problems}) from None
        except ValueError as exc:  # an unknown architecture: its field says so too
            raise ValidationError({"architecture": str(exc)}) from None

        try:
            validate_params(self.architecture, dict(self.values))
        except ParamError as exc:
            problems = "; ".join(f"{name}: {message}" for name, message in exc.errors.items())
            raise ValidationError({"values": problems}) from None
        except ValueError as exc:
            raise ValidationError({"values": str(exc)}) from None

    @property
    def student_rules(self) -> dict:
        """The locks and narrowed bounds `params.validate_params` applies to students."""
        return {"locked": list(self.locked or []), "bounds": dict(self.bounds or {})}
