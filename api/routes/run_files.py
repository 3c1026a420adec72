"""A run's log, page by page, and its LoRA file."""

from __future__ import annotations

from django.http import Http404
from ninja import Query, Router, Schema
from pydantic import Field

from api.routes.runs import get_run
from api.schemas import Error, LogPage
from training.choices import ArtifactKind
from training.models import LoraArtifact, RunLog
from training.views import _file_response

router = Router(tags=["runs"])


class LogQuery(Schema):
    after: int = Field(
        0, ge=0, description="The last sequence number you have (0: from the start)."
    )
    limit: int = Field(200, ge=1, le=1000, description="Chunks at most (a chunk holds lines).")


@router.get("/{int:run_id}/log/", response={200: LogPage, 404: Error}, summary="The run's log")
def run_log(request, run_id: int, query: Query[LogQuery]):
    """Log chunks after `after`, in order; ask again with `next_after` until `more` is false
    (and, while the run goes on, for what it writes next). Chunks are never changed."""
    run = get_run(request, run_id)
    rows = list(
        RunLog.objects.filter(run=run, seq__gt=query.after)
        .order_by("seq")
        .values_list("seq", "text")[: query.limit + 1]
    )
    chunks = [{"seq": seq, "text": text} for seq, text in rows[: query.limit]]
    return {
        "run": run.pk,
        "after": query.after,
        "chunks": chunks,
        "next_after": chunks[-1]["seq"] if chunks else query.after,
        "more": len(rows) > query.limit,
        "finished": run.is_terminal,
    }


class LoraQuery(Schema):
    epoch: int | None = Field(None, ge=1, description="An epoch's file instead of the run's LoRA.")


@router.get(
    "/{int:run_id}/lora/",
    response={200: bytes, 404: Error},
    summary="Download the LoRA",
    openapi_extra={
        "responses": {
            200: {
                "description": "The .safetensors file",
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        }
    },
)
def run_lora(request, run_id: int, query: Query[LoraQuery]):
    """The run's LoRA: the epoch kept after its evaluation when one was, else its final
    file; `?epoch=N` gives that epoch's file."""
    run = get_run(request, run_id)
    files = LoraArtifact.objects.filter(run=run)
    if query.epoch is not None:
        artifact = files.filter(kind=ArtifactKind.EPOCH, epoch=query.epoch).first()
        missing = f"Run #{run.pk} has no LoRA file of epoch {query.epoch}."
    else:
        artifact = (
            files.exclude(published_path="").exclude(kind=ArtifactKind.STATE).first()
            or files.filter(kind=ArtifactKind.FINAL).first()
        )
        missing = f"Run #{run.pk} has no LoRA yet (it is {run.get_status_display().lower()})."
    if artifact is None:
        raise Http404(missing)
    return _file_response(artifact.file, as_attachment=True)
