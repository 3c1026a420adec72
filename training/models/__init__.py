"""The training app's models, one module per concern."""

from training.models.artifacts import LoraArtifact, SampleImage
from training.models.catalog import BaseModel, Preset
from training.models.evaluation import Evaluation, EvaluationImage
from training.models.lab import LicenceAcceptance, Quota
from training.models.nodes import GPU, GPUNode
from training.models.notifications import NotificationSettings, WebhookDelivery
from training.models.provenance import FileHash, ProvenanceIsFinal, RunProvenance
from training.models.runs import RunEvent, RunLog, TrainingRun

__all__ = [
    "GPU",
    "BaseModel",
    "FileHash",
    "Evaluation",
    "EvaluationImage",
    "GPUNode",
    "LicenceAcceptance",
    "LoraArtifact",
    "NotificationSettings",
    "Preset",
    "ProvenanceIsFinal",
    "Quota",
    "RunEvent",
    "RunLog",
    "RunProvenance",
    "SampleImage",
    "TrainingRun",
    "WebhookDelivery",
]
