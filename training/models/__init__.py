"""The training app's models, one module per concern."""

from training.models.artifacts import LoraArtifact, SampleImage
from training.models.catalog import BaseModel, Preset
from training.models.evaluation import Evaluation, EvaluationImage
from training.models.nodes import GPU, GPUNode
from training.models.provenance import FileHash, ProvenanceIsFinal, RunProvenance
from training.models.runs import RunEvent, RunLog, TrainingRun

__all__ = [
    "GPU",
    "BaseModel",
    "FileHash",
    "Evaluation",
    "EvaluationImage",
    "GPUNode",
    "LoraArtifact",
    "Preset",
    "ProvenanceIsFinal",
    "RunEvent",
    "RunLog",
    "RunProvenance",
    "SampleImage",
    "TrainingRun",
]
