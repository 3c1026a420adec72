"""Datasets: list, create, read, and add images or zip archives (the upload page's path)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from ninja import File, Router, Status
from ninja.files import UploadedFile

from api.schemas import DatasetIn, DatasetOut, Error, UploadOut
from datasets import services
from datasets.models import Dataset

router = Router(tags=["datasets"])


def dataset_out(dataset: Dataset) -> dict:
    return {
        "id": dataset.pk,
        "name": dataset.name,
        "owner": dataset.owner.get_username(),
        "description": dataset.description,
        "trigger_word": dataset.trigger_word,
        "repeats": dataset.repeats,
        "visibility": dataset.visibility,
        "image_count": dataset.image_count,
        "created_at": dataset.created_at,
        "updated_at": dataset.updated_at,
    }


@router.get("/", response=list[DatasetOut], summary="Datasets you may use")
def list_datasets(request):
    """Your datasets and the lab's shared ones (staff: every dataset), newest first."""
    datasets = Dataset.objects.visible_to(request.auth).select_related("owner")
    return [dataset_out(d) for d in datasets]


@router.post("/", response={201: DatasetOut, 400: Error}, summary="Create a dataset")
def create_dataset(request, payload: DatasetIn):
    """An empty dataset of yours; add images with POST /datasets/{id}/images/."""
    dataset = services.create_dataset(request.auth, **payload.dict())
    return Status(201, dataset_out(dataset))


@router.get("/{int:dataset_id}/", response={200: DatasetOut, 404: Error}, summary="A dataset")
def get_dataset(request, dataset_id: int):
    dataset = get_object_or_404(
        Dataset.objects.visible_to(request.auth).select_related("owner"), pk=dataset_id
    )
    return dataset_out(dataset)


@router.post(
    "/{int:dataset_id}/images/",
    response={200: UploadOut, 400: Error, 404: Error},
    summary="Add images or zip archives",
)
def upload_images(request, dataset_id: int, files: list[UploadedFile] = File(None)):
    """Multipart field `files` (repeat it): PNG, JPEG, WebP or BMP images and .zip archives
    with .txt captions, checked as on the upload page (sizes, counts, decoding, unsafe
    archives). Every file ends in the answer: added, duplicate, or refused with the reason.
    """
    dataset = get_object_or_404(
        Dataset.objects.editable_by(request.auth).select_related("owner"), pk=dataset_id
    )
    uploads = [f for key in request.FILES for f in request.FILES.getlist(key)]
    if not uploads:
        raise ValidationError({"files": "Send images or .zip archives as multipart field files."})
    report = services.upload_files(dataset, [(f.name, f) for f in uploads])
    dataset.refresh_from_db()
    return {
        "added": len(report.added),
        "image_ids": report.added,
        "duplicates": report.duplicates,
        "rejected": [{"name": n, "reason": r} for n, r in report.rejected],
        "refused_archives": [{"name": n, "reason": r} for n, r in report.refused_archives],
        "notes": report.notes,
        "messages": report.messages(),
        "image_count": dataset.image_count,
    }
