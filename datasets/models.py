"""Datasets: a student's captioned training images."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxValueValidator,
    MinValueValidator,
    ProhibitNullCharactersValidator,
    RegexValidator,
)
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from datasets.captions import CaptionTooLong, clean_caption

# C0 controls (NUL, tab, line breaks, escape, …), DEL and C1 controls: nothing a name or a
# trigger word needs. NUL is refused by PostgreSQL; the others would end up in folder names
# and in sd-scripts' dataset TOML.
_CONTROL_CHARACTERS = r"[\x00-\x1f\x7f-\x9f]"


class Visibility(models.TextChoices):
    PRIVATE = "private", "Private (only me)"
    LAB = "lab", "Lab (everyone in the lab can use it)"


class DatasetQuerySet(models.QuerySet):
    def visible_to(self, user) -> DatasetQuerySet:
        """Datasets `user` may see: their own and lab-shared ones; staff see all."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self.all()
        return self.filter(Q(owner=user) | Q(visibility=Visibility.LAB))

    def editable_by(self, user) -> DatasetQuerySet:
        """Datasets `user` may change: their own; staff may change all."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self.all()
        return self.filter(owner=user)


class Dataset(models.Model):
    """A named set of captioned images owned by one user."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="datasets"
    )
    name = models.CharField(
        max_length=100,
        validators=[
            RegexValidator(
                _CONTROL_CHARACTERS,
                "The name cannot hold control characters.",
                inverse_match=True,
            )
        ],
    )
    description = models.TextField(blank=True, validators=[ProhibitNullCharactersValidator()])
    trigger_word = models.CharField(
        max_length=100,
        blank=True,
        help_text="sd-scripts class tokens, e.g. 'sks dog'. Used when a caption is missing.",
        validators=[
            RegexValidator(
                r"[/\\]|" + _CONTROL_CHARACTERS,
                "The trigger word cannot hold slashes, tabs, line breaks or control characters.",
                inverse_match=True,
            )
        ],
    )
    repeats = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="How often each image is seen per epoch (sd-scripts num_repeats).",
    )
    caption_extension = models.CharField(
        max_length=16,
        default=".txt",
        validators=[RegexValidator(r"\A\.[A-Za-z0-9_]{1,15}\Z", "Use an extension like .txt")],
    )
    visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    image_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["image_count", "updated_at"])
    objects = DatasetQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="dataset_unique_name_per_owner")
        ]
        indexes = [models.Index(fields=["visibility", "-updated_at"])]

    def __str__(self) -> str:
        return self.name

    def is_visible_to(self, user) -> bool:
        """Whether `user` may see this dataset."""
        return bool(
            user.is_authenticated
            and (user.is_staff or self.owner_id == user.pk or self.visibility == Visibility.LAB)
        )

    def is_editable_by(self, user) -> bool:
        """Whether `user` may change this dataset."""
        return bool(user.is_authenticated and (user.is_staff or self.owner_id == user.pk))


def image_upload_to(instance: DatasetImage, filename: str) -> str:
    """Stored names are ours: the caller passes a generated name, never the upload's."""
    return f"datasets/{instance.dataset_id}/images/{filename}"


def thumbnail_upload_to(instance: DatasetImage, filename: str) -> str:
    """Thumbnails sit beside the images in their own folder."""
    return f"datasets/{instance.dataset_id}/thumbs/{filename}"


class DatasetImage(models.Model):
    """One validated image of a dataset with its caption."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to=image_upload_to, max_length=255)
    original_name = models.CharField(max_length=255, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=10)
    size_bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    phash = models.CharField(max_length=16, blank=True, help_text="Perceptual hash (hex).")
    caption = models.TextField(blank=True)
    thumbnail = models.FileField(upload_to=thumbnail_upload_to, max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "sha256"], name="image_unique_per_dataset")
        ]

    def __str__(self) -> str:
        return self.original_name or self.file.name

    def clean(self) -> None:
        """The caption as every other path stores it (captions.clean_caption), e.g. the admin's."""
        super().clean()
        try:
            self.caption = clean_caption(
                self.caption, max_chars=settings.LORASTUDIO_MAX_CAPTION_CHARS
            )
        except CaptionTooLong as exc:
            raise ValidationError({"caption": f"The caption has {exc} characters."}) from None
