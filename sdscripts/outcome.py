"""Decide how a finished trainer process ended, from its exit code and log tail (pure)."""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from typing import Literal

OutcomeStatus = Literal["succeeded", "failed", "cancelled"]
OutcomeReason = Literal[
    "", "oom", "config", "trainer_error", "missing_files", "model_file", "disk_full"
]

_MAX_DETAIL = 240

_OOM = re.compile(
    r"torch\.(?:cuda\.)?OutOfMemoryError[^\n]*|CUDA out of memory[^\n]*|"
    r"CUDA error: out of memory[^\n]*"
)
_ARGPARSE = re.compile(r"^\S+: error: (.+)$", re.MULTILINE)
_NOT_FOUND = re.compile(r"FileNotFoundError:\s*(.*)$", re.MULTILINE)
_NOT_FOUND_PATH = re.compile(r"No such file or directory:\s*'?\"?([^'\"\n]+)")
_NO_DATA = re.compile(r"No data found[^\n]*")
# A model file that cannot be read: safetensors' header errors, torch's pickle/zip errors.
_DAMAGED = re.compile(
    r"SafetensorError[^\n]*|Error while deserializing header[^\n]*|"
    r"PytorchStreamReader failed[^\n]*|invalid load key[^\n]*|"
    r"Missing key\(s\) in state_dict[^\n]*|size mismatch for [^\n]*"
)
# sd-scripts fetches its tokenizers from the Hugging Face Hub when it loads them.
_TOKENIZER = re.compile(r"_load_tokenizer|tokenizer", re.IGNORECASE)
_HUB_FAILURE = re.compile(
    r"huggingface\.co|LocalEntryNotFoundError|OfflineModeIsEnabled|HF_HUB_OFFLINE|"
    r"expected str, bytes or os\.PathLike object, not NoneType|Can't load tokenizer"
)
_NO_SPACE = re.compile(r"No space left on device|\[Errno 28\]")
TOKENIZER_ADVICE = (
    "The trainer could not load its tokenizers: sd-scripts fetches them from the Hugging "
    "Face Hub, and this node is offline or cannot reach it. Give the node a tokenizer cache "
    "folder (register_node --tokenizer-cache-dir DIR, or the node in the admin; "
    "check_node says whether it works) or a filled Hugging Face cache with HF_HUB_OFFLINE=1 "
    "in its trainer environment."
)
_EXCEPTION = re.compile(
    r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Interrupt|Exit)\b(?::.*)?$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Outcome:
    """How a run ended: status, failure reason and a one-line explanation."""

    status: OutcomeStatus
    reason: OutcomeReason
    message: str


def _one_line(text: str) -> str:
    """Collapse whitespace and cut a detail to a readable length."""
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """Return the last match of pattern in text."""
    found = None
    for found in pattern.finditer(text):
        pass
    return found


def _signal_name(returncode: int) -> str:
    """Name the signal behind a negative return code."""
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _damaged_file(log_tail: str, model_files: dict[str, str]) -> str:
    """The model file the trainer was loading when it failed (the last one its log names)."""
    named = [(log_tail.rfind(path), path) for path in model_files.values() if path in log_tail]
    if named:
        return max(named)[1]
    return ", ".join(model_files.values()) or "one of the base model's files"


def classify_exit(
    returncode: int | None,
    log_tail: str,
    final_lora_exists: bool,
    cancelled: bool,
    model_files: dict[str, str] | None = None,
) -> Outcome:
    """Classify a trainer's exit as succeeded, failed (with a reason) or cancelled.

    `model_files` (role → path) lets a damaged-file failure name the file.
    """
    if cancelled:
        return Outcome("cancelled", "", "The run was cancelled and the trainer was stopped.")
    if returncode == 0 and final_lora_exists:
        return Outcome("succeeded", "", "The trainer finished and wrote the final LoRA.")

    oom = _last(_OOM, log_tail)
    if oom is not None:
        return Outcome(
            "failed",
            "oom",
            f"The GPU ran out of memory: {_one_line(oom.group(0))}",
        )
    if returncode != 0 and _last(_NO_SPACE, log_tail):
        return Outcome(
            "failed",
            "disk_full",
            "The disk filled up while the trainer wrote its files: free space in the node's "
            "work folder (or move it: register_node --work-dir) and run it again.",
        )
    damaged = _last(_DAMAGED, log_tail) if returncode != 0 else None
    if damaged is not None:
        path = _damaged_file(log_tail, model_files or {})
        return Outcome(
            "failed",
            "model_file",
            f"A model file is damaged or not what its architecture needs ({path}): "
            f"{_one_line(damaged.group(0))}. Download it again, or check the base model's "
            "architecture and files.",
        )
    if returncode != 0 and _TOKENIZER.search(log_tail) and _HUB_FAILURE.search(log_tail):
        return Outcome("failed", "config", TOKENIZER_ADVICE)
    if returncode == 2:
        error = _last(_ARGPARSE, log_tail)
        detail = f": {_one_line(error.group(1))}" if error else " (exit code 2)."
        return Outcome("failed", "config", f"The trainer rejected its arguments{detail}")
    missing = _last(_NOT_FOUND, log_tail)
    if missing is not None and returncode != 0:
        path = _NOT_FOUND_PATH.search(missing.group(1))
        detail = path.group(1).strip() if path else missing.group(1)
        return Outcome(
            "failed", "missing_files", f"A file the trainer needs is missing: {_one_line(detail)}"
        )
    if returncode == 0:
        no_data = _last(_NO_DATA, log_tail)
        why = f": {_one_line(no_data.group(0))}" if no_data else "."
        return Outcome(
            "failed",
            "trainer_error",
            f"The trainer exited normally but wrote no LoRA{why}",
        )
    if returncode is None:
        return Outcome("failed", "trainer_error", "The trainer ended without an exit status.")
    if returncode < 0:
        return Outcome(
            "failed",
            "trainer_error",
            f"The trainer was killed by {_signal_name(returncode)}.",
        )
    error = _last(_EXCEPTION, log_tail)
    detail = f": {_one_line(error.group(0))}" if error else "."
    return Outcome(
        "failed", "trainer_error", f"The trainer failed with exit code {returncode}{detail}"
    )
