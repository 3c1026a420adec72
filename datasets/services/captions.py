"""Caption services: the captions editor and the bulk tools."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from datasets import captions as caption_tools
from datasets.models import Dataset, DatasetImage


@transaction.atomic
def save_captions(dataset: Dataset, new_captions: dict[int, str]) -> int:
    """Store captions by image id (only this dataset's images); return how many changed."""
    images = list(dataset.images.filter(pk__in=list(new_captions)).only("pk", "caption"))
    changed = []
    for image in images:
        caption = caption_tools.normalize_caption(new_captions[image.pk])
        if caption != image.caption:
            image.caption = caption
            changed.append(image)
    DatasetImage.objects.bulk_update(changed, ["caption"], batch_size=500)
    if changed:
        Dataset.objects.filter(pk=dataset.pk).update(updated_at=timezone.now())
    return len(changed)


def apply_caption_tool(dataset: Dataset, tool: str, *, find: str = "", replace: str = "") -> int:
    """Run a bulk caption tool (captions.TOOLS) over every image; return how many changed."""
    current = dict(dataset.images.values_list("pk", "caption"))
    result = caption_tools.apply_tool(
        current, tool, trigger=dataset.trigger_word, find=find, replace=replace
    )
    return save_captions(dataset, result)
