"""How the lab is run: per-group and per-user quotas, and accepted base-model licences."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

INHERIT_OR_NONE = "Empty: as the user's groups or the lab's default; 0: no limit."


class Quota(models.Model):
    """Limits for one group or one user, over the lab's defaults (training.quotas)."""

    group = models.OneToOneField(
        "auth.Group",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="lab_quota",
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="lab_quota",
    )
    weekly_gpu_hours = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0)],
        verbose_name="GPU-hours per week",
        help_text="Hours runs may train per week (Monday to Monday). " + INHERIT_OR_NONE,
    )
    max_active_runs = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        verbose_name="runs at once",
        help_text="Runs waiting for approval, queued or training at once. " + INHERIT_OR_NONE,
    )
    max_resolution = models.PositiveIntegerField(
        null=True,
        blank=True,
        verbose_name="largest image size (px)",
        help_text="The largest training resolution. " + INHERIT_OR_NONE,
    )
    max_epochs = models.PositiveIntegerField(
        null=True,
        blank=True,
        verbose_name="most epochs",
        help_text="The most epochs a run may train (max_train_epochs). " + INHERIT_OR_NONE,
    )
    max_steps = models.PositiveIntegerField(
        null=True,
        blank=True,
        verbose_name="most steps",
        help_text="The most training steps a run may take, counted as the new-run page counts "
        "them (max_train_steps when set). " + INHERIT_OR_NONE,
    )
    note = models.CharField(max_length=200, blank=True, help_text="Why (staff only).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["group__name", "user__username"]
        constraints = [
            models.CheckConstraint(
                condition=Q(group__isnull=False, user__isnull=True)
                | Q(group__isnull=True, user__isnull=False),
                name="quota_for_one_group_or_one_user",
            )
        ]

    def __str__(self) -> str:
        return f"Quota of group {self.group}" if self.group_id else f"Quota of {self.user}"

    def clean(self) -> None:
        if bool(self.group_id) == bool(self.user_id):
            raise ValidationError("A quota is for one group or for one user: choose one.")


class LicenceAcceptance(models.Model):
    """A user accepted a base model's licence (once; the runs on it are allowed from then)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="licence_acceptances"
    )
    base_model = models.ForeignKey(
        "training.BaseModel", on_delete=models.CASCADE, related_name="licence_acceptances"
    )
    accepted_at = models.DateTimeField(auto_now_add=True)
    licence_sha256 = models.CharField(
        max_length=64, help_text="SHA-256 of the licence text as it was accepted."
    )

    class Meta:
        ordering = ["-accepted_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "base_model"], name="one_acceptance_per_user_and_model"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} accepted the licence of {self.base_model}"
