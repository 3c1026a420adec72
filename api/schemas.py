"""What the API takes and gives (pydantic models through django-ninja; they make the schema).

Inputs refuse unknown fields, so a misspelt field is a 400 that names it, not a silent default.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field


class Strict(Schema):
    model_config = ConfigDict(extra="forbid")


class Error(Schema):
    detail: str
    errors: dict[str, str] = Field(default_factory=dict, description="Messages by field.")


# --- datasets --------------------------------------------------------------------------------


class DatasetIn(Strict):
    name: str = Field(max_length=100)
    description: str = ""
    trigger_word: str = Field("", max_length=100, description="sd-scripts class tokens.")
    repeats: int = Field(10, ge=1, le=1000, description="sd-scripts num_repeats.")
    visibility: Literal["private", "lab"] = "private"


class DatasetOut(Schema):
    id: int
    name: str
    owner: str
    description: str
    trigger_word: str
    repeats: int
    visibility: str
    image_count: int
    created_at: datetime
    updated_at: datetime


class Refusal(Schema):
    name: str
    reason: str


class UploadOut(Schema):
    added: int
    image_ids: list[int]
    duplicates: list[str]
    rejected: list[Refusal]
    refused_archives: list[Refusal]
    notes: list[str]
    messages: list[str]
    image_count: int


# --- runs ------------------------------------------------------------------------------------


class RunIn(Strict):
    dataset: int = Field(description="A dataset id you may use (yours or the lab's).")
    base_model: int | str = Field(description="A base model's id or name.")
    preset: int | str | None = Field(None, description="A preset's id or name.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="sd-scripts option names and values over the preset's, e.g. "
        '{"network_dim": 16, "max_train_epochs": 8, "save_state": true}.',
    )
    name: str = Field("", max_length=100)
    sample_prompts: str | list[str] = Field("", description="One prompt a line, or a list.")
    evaluate_after: bool | None = Field(None, description="Default: the preset's setting.")


class Progress(Schema):
    step: int
    total_steps: int | None
    epoch: int
    total_epochs: int | None
    percent: float
    loss: float | None
    speed: float | None = Field(description="Steps per second.")
    eta_seconds: int | None


class ArtifactOut(Schema):
    id: int
    kind: str
    epoch: int | None
    step: int | None
    size_bytes: int
    sha256: str
    published: bool


class RunOut(Schema):
    id: int
    name: str
    owner: str
    status: str
    reason: str | None = Field(description="Why it failed (oom, worker_lost, …); else null.")
    message: str
    dataset: int | None
    base_model: str
    preset: str | None
    params: dict[str, Any]
    progress: Progress
    loss: float | None
    node: str | None
    cancel_requested: bool
    resumed_from: int | None
    resume_epoch: int | None = Field(description="The saved epoch it continues after.")
    resumed_by: list[int] = Field(description="Runs that continue this one.")
    artifacts: list[ArtifactOut]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunList(Schema):
    count: int
    results: list[RunOut]


class LogChunk(Schema):
    seq: int
    text: str


class LogPage(Schema):
    run: int
    after: int
    chunks: list[LogChunk]
    next_after: int = Field(description="Pass it as ?after= to get what follows.")
    more: bool = Field(description="More chunks are stored now.")
    finished: bool = Field(description="The run has ended: no more chunks will come.")
