"""Students' dataset pages: thin views over datasets.services."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from datasets import services
from datasets.captions import (
    CLIP_TOKEN_LIMIT,
    TOKEN_COUNT_IS_APPROXIMATE,
    approximate_token_count,
)
from datasets.forms import CaptionToolForm, DatasetForm, UploadForm
from datasets.models import Dataset, DatasetImage

IMAGES_PER_PAGE = 120
LINT_RESOLUTIONS = (512, 768, 1024)
MAX_MESSAGES = 20
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "BMP": "image/bmp"}


def get_dataset_for_user(request, pk: int, *, edit: bool = False) -> Dataset:
    """The dataset if the user may see it (or change it, with edit=True); otherwise 404."""
    datasets = Dataset.objects.select_related("owner")
    datasets = datasets.editable_by(request.user) if edit else datasets.visible_to(request.user)
    return get_object_or_404(datasets, pk=pk)


def _report_messages(request, report) -> None:
    lines = report.messages()
    messages.success(request, lines[0])
    for line in lines[1 : MAX_MESSAGES + 1]:
        messages.warning(request, line)
    if len(lines) > MAX_MESSAGES + 1:
        messages.warning(request, f"… and {len(lines) - MAX_MESSAGES - 1} more.")


def _form_error_messages(request, form) -> None:
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else None
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)


def _posted_captions(request) -> dict[int, str]:
    """The editor's captions by image id, straight from the POST (services clean them)."""
    return {
        int(key[8:]): value
        for key, value in request.POST.items()
        if key.startswith("caption-") and key[8:].isdigit()
    }


def _form_values(form: DatasetForm) -> dict:
    return {key: form.cleaned_data[key] for key in DatasetForm.base_fields}


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


@login_required
def dataset_list(request):
    datasets = Dataset.objects.visible_to(request.user).select_related("owner")
    return render(request, "datasets/dataset_list.html", {"datasets": datasets})


@login_required
@require_http_methods(["GET", "POST"])
def dataset_create(request):
    form = DatasetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            dataset = services.create_dataset(request.user, **_form_values(form))
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"Created dataset “{dataset.name}”. Now add images.")
            return redirect("datasets:dataset-upload", pk=dataset.pk)
    return render(request, "datasets/dataset_form.html", {"form": form, "dataset": None})


@login_required
@require_http_methods(["GET", "POST"])
def dataset_edit(request, pk):
    dataset = get_dataset_for_user(request, pk, edit=True)
    initial = {key: getattr(dataset, key) for key in DatasetForm.base_fields}
    form = DatasetForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_dataset(dataset, **_form_values(form))
        except ValidationError as exc:
            dataset.refresh_from_db()
            _add_errors(form, exc)
        else:
            messages.success(request, "Saved the dataset's settings.")
            return redirect("datasets:dataset-detail", pk=dataset.pk)
    return render(request, "datasets/dataset_form.html", {"form": form, "dataset": dataset})


@login_required
def dataset_detail(request, pk):
    dataset = get_dataset_for_user(request, pk)
    try:
        resolution = int(request.GET.get("resolution", 1024))
    except ValueError:
        resolution = 1024
    if resolution not in LINT_RESOLUTIONS:
        resolution = 1024
    page = Paginator(dataset.images.all(), IMAGES_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "dataset": dataset,
        "page": page,
        "lint": services.lint_dataset(dataset, resolution=resolution),
        "resolutions": LINT_RESOLUTIONS,
        "can_edit": dataset.is_editable_by(request.user),
    }
    return render(request, "datasets/dataset_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def dataset_upload(request, pk):
    dataset = get_dataset_for_user(request, pk, edit=True)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if not form.is_valid():
            for error in form.errors.get("files", []) + form.non_field_errors():
                messages.error(request, error)
            return render(
                request, "datasets/dataset_upload.html", {"dataset": dataset, "form": form}
            )
        uploads = form.cleaned_data["files"]
        report = services.upload_files(dataset, [(upload.name, upload) for upload in uploads])
        _report_messages(request, report)
        return redirect("datasets:dataset-detail", pk=dataset.pk)
    return render(request, "datasets/dataset_upload.html", {"dataset": dataset, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def dataset_captions(request, pk):
    dataset = get_dataset_for_user(request, pk, edit=True)
    tool_form = CaptionToolForm(request.POST if "tool" in request.POST else None)
    if request.method == "POST":
        try:
            if "tool" not in request.POST:
                changed = services.save_captions(dataset, _posted_captions(request))
                messages.success(request, f"Saved {changed} changed caption(s).")
                return redirect("datasets:dataset-captions", pk=dataset.pk)
            if tool_form.is_valid():
                changed = services.apply_caption_tool(
                    dataset,
                    tool_form.cleaned_data["tool"],
                    find=tool_form.cleaned_data["find"],
                    replace=tool_form.cleaned_data["replace"],
                )
                messages.success(request, f"Changed {changed} caption(s).")
                return redirect("datasets:dataset-captions", pk=dataset.pk)
            _form_error_messages(request, tool_form)
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
    rows = [
        (image, approximate_token_count(image.caption))
        for image in dataset.images.only("pk", "dataset_id", "caption", "original_name")
    ]
    context = {
        "dataset": dataset,
        "rows": rows,
        "tool_form": tool_form,
        "token_limit": CLIP_TOKEN_LIMIT,
        "max_caption_chars": settings.LORASTUDIO_MAX_CAPTION_CHARS,
        "approximate": TOKEN_COUNT_IS_APPROXIMATE,
    }
    return render(request, "datasets/dataset_captions.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def dataset_delete(request, pk):
    dataset = get_dataset_for_user(request, pk, edit=True)
    if request.method == "POST":
        name = dataset.name
        services.delete_dataset(dataset)
        messages.success(request, f"Deleted dataset “{name}” and its images.")
        return redirect("datasets:dataset-list")
    return render(request, "datasets/dataset_confirm_delete.html", {"dataset": dataset})


@login_required
@require_POST
def image_delete(request, pk, image_pk):
    dataset = get_dataset_for_user(request, pk, edit=True)
    image = get_object_or_404(DatasetImage, pk=image_pk, dataset=dataset)
    services.delete_image(image)
    messages.success(request, f"Deleted {image.original_name}.")
    return redirect("datasets:dataset-detail", pk=dataset.pk)


def _serve(field_file, content_type: str) -> FileResponse:
    if not field_file:
        raise Http404("No file")
    try:
        handle = field_file.open("rb")
    except FileNotFoundError:
        raise Http404("File missing") from None
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
def image_file(request, pk, image_pk):
    dataset = get_dataset_for_user(request, pk)
    image = get_object_or_404(DatasetImage, pk=image_pk, dataset=dataset)
    return _serve(image.file, CONTENT_TYPES.get(image.format, "application/octet-stream"))


@login_required
def image_thumb(request, pk, image_pk):
    dataset = get_dataset_for_user(request, pk)
    image = get_object_or_404(DatasetImage, pk=image_pk, dataset=dataset)
    return _serve(image.thumbnail, "image/jpeg")
