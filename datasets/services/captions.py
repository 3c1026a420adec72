"""Caption services: the captions editor and the bulk tools."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from datasets import captions as caption_tools
from datasets.captions import CaptionTooLong, clean_caption
from datasets.models import Dataset, DatasetImage


def _over_limit(outcome: str, lengths: list[tuple[str, int]], limit: int) -> ValidationError:
    """One message naming the captions that would be too long (the first few of them)."""
    shown = ", ".join(f"{name} ({length:,} characters)" for name, length in lengths[:5])
    more = f" and {len(lengths) - 5} more" if len(lengths) > 5 else ""
    return ValidationError(
        f"{outcome}: {len(lengths)} caption(s) would be over the limit of {limit:,} "
        f"characters: {shown}{more}."
    )


def _store(dataset: Dataset, new_captions: dict[int, str], *, outcome: str) -> int:
    limit = settings.LORASTUDIO_MAX_CAPTION_CHARS
    images = dataset.images.filter(pk__in=list(new_captions)).only("pk", "caption", "original_name")
    changed, too_long = [], []
    for image in images:
        text = new_captions[image.pk]
        if text == image.caption:
            continue  # stored captions are clean already (older long ones are left alone)
        try:
            caption = clean_caption(text, max_chars=limit)
        except CaptionTooLong as exc:
            too_long.append((image.original_name, exc.length))
            continue
        if caption != image.caption:
            image.caption = caption
            changed.append(image)
    if too_long:
        raise _over_limit(outcome, too_long, limit)
    DatasetImage.objects.bulk_update(changed, ["caption"], batch_size=500)
    if changed:
        Dataset.objects.filter(pk=dataset.pk).update(updated_at=timezone.now())
    return len(changed)


@transaction.atomic
def save_captions(dataset: Dataset, new_captions: dict[int, str]) -> int:
    """Store captions by image id (only this dataset's images); return how many changed.

    Each changed caption is cleaned by captions.clean_caption. If any would be over the
    limit, raises ValidationError naming them and saves none.
    """
    return _store(dataset, new_captions, outcome="Nothing was saved")


@transaction.atomic
def apply_caption_tool(dataset: Dataset, tool: str, *, find: str = "", replace: str = "") -> int:
    """Run a bulk caption tool (captions.TOOLS) over every image; return how many changed.

    Raises ValidationError, changing nothing, when the tool would make any caption longer
    than the limit.
    """
    limit = settings.LORASTUDIO_MAX_CAPTION_CHARS
    rows = list(dataset.images.values_list("pk", "original_name", "caption"))
    current = {pk: caption for pk, _, caption in rows}
    try:
        result = caption_tools.apply_tool(
            current, tool, trigger=dataset.trigger_word, find=find, replace=replace, max_chars=limit
        )
    except CaptionTooLong as exc:
        names = {pk: name for pk, name, _ in rows}
        lengths = [(names[pk], length) for pk, length in exc.lengths.items()]
        raise _over_limit("Nothing was changed", lengths, limit) from None
    return _store(dataset, result, outcome="Nothing was changed")
