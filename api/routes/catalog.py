"""What a run can be built from: the enabled base models and presets."""

from __future__ import annotations

from typing import Any

from ninja import Router, Schema

from training.models import BaseModel, Preset

router = Router(tags=["catalog"])


class BaseModelOut(Schema):
    id: int
    name: str
    architecture: str


class PresetOut(Schema):
    id: int
    name: str
    architecture: str
    description: str
    values: dict[str, Any]
    locked: list[str]


@router.get("/base-models/", response=list[BaseModelOut], summary="Base models")
def base_models(request):
    return list(BaseModel.objects.filter(enabled=True).values("id", "name", "architecture"))


@router.get("/presets/", response=list[PresetOut], summary="Presets")
def presets(request):
    rows = Preset.objects.filter(enabled=True)
    return [
        {
            "id": p.pk,
            "name": p.name,
            "architecture": p.architecture,
            "description": p.description,
            "values": p.values or {},
            "locked": list(p.locked or []),
        }
        for p in rows
    ]
