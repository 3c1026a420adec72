"""API-format ComfyUI workflows for evaluations: load one, find the names ComfyUI lists, fill it.

Each architecture's registry entry names its workflow (`ArchSpec.inference.workflow`), a JSON
file in workflows/ built from ComfyUI's core nodes only. A value written "$name" is a
placeholder: model names ("$checkpoint", "$clip_l", …, "$lora") are filled with a name the
server lists in `/object_info` for that node's input, never a guessed path; the others
("$prompt", "$seed", "$strength", …) with the image's values. No Django, no network.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path, PurePosixPath

from sdscripts.architectures import ArchSpec

WORKFLOW_DIR = Path(__file__).parent / "workflows"
# The nodes a workflow may use: ComfyUI's built-in nodes (nodes.py and comfy_extras), so an
# evaluation runs on a ComfyUI without custom nodes. Checked by the tests for every workflow.
CORE_NODES = frozenset(
    {
        "CheckpointLoaderSimple", "UNETLoader", "VAELoader", "CLIPLoader", "DualCLIPLoader",
        "TripleCLIPLoader", "LoraLoader", "CLIPTextEncode", "FluxGuidance", "ModelSamplingSD3",
        "ModelSamplingAuraFlow", "EmptyLatentImage", "EmptySD3LatentImage", "KSampler",
        "VAEDecode", "PreviewImage", "SaveImage",
    }
)  # fmt: skip
# Placeholders that name a model file: the base model's file roles, and the LoRA.
MODEL_PLACEHOLDERS = ("checkpoint", "clip_l", "clip_g", "t5xxl", "gemma2", "ae", "vae", "lora")
# The values every image fills in.
IMAGE_PLACEHOLDERS = (
    "prompt", "negative", "seed", "strength", "width", "height", "steps", "cfg", "sampler",
    "scheduler",
)  # fmt: skip


class WorkflowError(ValueError):
    """A workflow that cannot be filled (a missing value, an unknown placeholder)."""


class NameNotListed(LookupError):
    """The server lists no file matching the one we need (or several equally well)."""


@cache
def _load(name: str) -> str:
    return (WORKFLOW_DIR / name).read_text()


def load(arch: ArchSpec) -> dict:
    """A fresh copy of the architecture's workflow (WorkflowError when it has none)."""
    if arch.inference is None:
        raise WorkflowError(f"{arch.label} has no evaluation workflow")
    return json.loads(_load(arch.inference.workflow))


def placeholder(value: object) -> str | None:
    """The placeholder a workflow value stands for ("$seed" → "seed"), else None."""
    if isinstance(value, str) and value.startswith("$") and len(value) > 1:
        return value[1:]
    return None


def placeholders(workflow: dict) -> set[str]:
    """Every placeholder a workflow holds."""
    found = set()
    for node in workflow.values():
        for value in node.get("inputs", {}).values():
            if (name := placeholder(value)) is not None:
                found.add(name)
    return found


def model_inputs(workflow: dict) -> dict[str, tuple[str, str]]:
    """For each model placeholder: the (node class, input name) whose list names its file."""
    inputs: dict[str, tuple[str, str]] = {}
    for node in workflow.values():
        for input_name, value in node.get("inputs", {}).items():
            name = placeholder(value)
            if name in MODEL_PLACEHOLDERS:
                inputs.setdefault(name, (node["class_type"], input_name))
    return inputs


def listed_options(object_info: dict, class_type: str, input_name: str) -> list[str]:
    """The choices `/object_info/<class_type>` lists for an input.

    Two shapes exist: `[[names…], {…}]` (classic nodes, e.g. LoraLoader) and
    `["COMBO", {"options": [names…]}]` (nodes of ComfyUI's newer node API, e.g.
    TripleCLIPLoader); both are seen on a real ComfyUI 0.12.
    """
    node = object_info.get(class_type) or {}
    inputs = node.get("input") or {}
    spec = (inputs.get("required") or {}).get(input_name) or (inputs.get("optional") or {}).get(
        input_name
    )
    if not isinstance(spec, list) or not spec:
        return []
    if isinstance(spec[0], list):
        return [str(n) for n in spec[0]]
    if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        return [str(n) for n in spec[1].get("options") or []]
    return []


def _parts(name: str) -> list[str]:
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("/", "")]
    if parts and parts[-1].endswith(".safetensors"):
        parts[-1] = parts[-1][: -len(".safetensors")]
    return parts


def match_name(path: str, names: list[str], *, what: str) -> str:
    """The listed name that is `path`'s file: the same file name, with the most of its folders.

    A server lists files relative to its model folders ("sd15/model.safetensors"; SwarmUI may
    leave out ".safetensors"), so the name whose parts are the longest tail of `path`'s parts
    wins. NameNotListed when no name ends with the file's name, or two fit equally well.
    """
    want = _parts(path)
    best: list[tuple[int, str]] = []
    for name in names:
        have = _parts(name)
        if not have or not want or have[-1] != want[-1]:
            continue
        common = 0
        while common < min(len(have), len(want)) and have[-1 - common] == want[-1 - common]:
            common += 1
        best.append((common, name))
    if not best:
        shown = ", ".join(sorted(names)[:8]) + (" …" if len(names) > 8 else "")
        raise NameNotListed(
            f"{what} {PurePosixPath(path).name} is not among the {len(names)} files the server "
            f"lists ({shown or 'none'})"
        )
    best.sort(key=lambda x: -x[0])
    if len(best) > 1 and best[0][0] == best[1][0]:
        raise NameNotListed(
            f"{what} {PurePosixPath(path).name} is listed more than once "
            f"({best[0][1]}, {best[1][1]}): rename one of them"
        )
    return best[0][1]


def fill(workflow: dict, values: dict[str, object]) -> dict:
    """A copy of `workflow` with every placeholder replaced by its value."""
    filled = copy.deepcopy(workflow)
    for node_id, node in filled.items():
        inputs = node.get("inputs", {})
        for input_name, value in inputs.items():
            name = placeholder(value)
            if name is None:
                continue
            if name not in values:
                raise WorkflowError(f"node {node_id} ({node.get('class_type')}) needs ${name}")
            inputs[input_name] = values[name]
    return filled


def output_nodes(workflow: dict) -> list[str]:
    """The ids of the nodes whose pictures an evaluation takes (PreviewImage/SaveImage)."""
    return [
        node_id
        for node_id, node in workflow.items()
        if node.get("class_type") in ("PreviewImage", "SaveImage")
    ]
