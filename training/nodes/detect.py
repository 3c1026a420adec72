"""Recognise sd-scripts, ComfyUI, SwarmUI and model files in a listing of a home folder.

Pure: callers pass a listing (POSIX paths relative to the searched root, folders ending in
"/"), as `training.nodes.scan.list_tree` makes it; nothing here touches the disk.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from sdscripts.architectures import ARCHITECTURES, FILE_ROLES, hub_folder

MODEL_SUFFIXES = (".safetensors", ".sft", ".ckpt", ".pt", ".pth")
# Folders (lower case, consecutive path parts) where SwarmUI and ComfyUI keep model files.
CHECKPOINT_FOLDERS = frozenset(
    {
        ("models", "stable-diffusion"),
        ("models", "checkpoints"),
        ("models", "unet"),
        ("models", "diffusion_models"),
    }
)
ENCODER_FOLDERS = frozenset({("models", "clip"), ("models", "text_encoders")})
VAE_FOLDERS = frozenset({("models", "vae")})
MODEL_FOLDERS = CHECKPOINT_FOLDERS | ENCODER_FOLDERS | VAE_FOLDERS
VENV_NAMES = ("venv", ".venv", "env")
# Files a tokenizer is saved as; a hub cache snapshot holding one of them holds a tokenizer.
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "vocab.json", "spiece.model")
# Encoder roles, in the order a file name is tried against them (the registry's order).
ENCODER_KINDS = tuple(name for name in FILE_ROLES if name not in ("checkpoint", "vae"))


@dataclass(frozen=True)
class SdScripts:
    """A kohya-ss/sd-scripts checkout and the Python of its venv ("" when none was found)."""

    dir: str
    python: str


@dataclass(frozen=True)
class SwarmUI:
    """A SwarmUI install: its Models/ folder and the LoRA folder in it."""

    dir: str
    models_dir: str
    lora_dir: str


@dataclass(frozen=True)
class ModelFile:
    """A model file recognised by name: kind is "checkpoint", an encoder kind or "vae"."""

    path: str
    kind: str
    architecture: str = ""


@dataclass(frozen=True)
class BaseModelProposal:
    """A base model to register: its files by role; `missing` names encoders not found."""

    name: str
    architecture: str
    files: Mapping[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class HubCache:
    """A Hugging Face cache holding tokenizers sd-scripts loads: what HF_HOME would name."""

    hf_home: str  # the hub cache's parent folder
    tokenizers: tuple[str, ...]  # the registry's tokenizer repositories it holds


@dataclass(frozen=True)
class Detection:
    """Everything found in one listing."""

    sdscripts: tuple[SdScripts, ...]
    comfyui: tuple[str, ...]
    swarmui: tuple[SwarmUI, ...]
    model_files: tuple[ModelFile, ...]
    base_models: tuple[BaseModelProposal, ...]


def _parent(path: str) -> str:
    parent = str(PurePosixPath(path.rstrip("/")).parent)
    return "" if parent == "." else parent


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def find_sdscripts(listing: list[str]) -> tuple[SdScripts, ...]:
    """Folders holding sd3_train_network.py, each with its venv's python if listed."""
    entries = set(listing)
    found = []
    for path in sorted(listing):
        if PurePosixPath(path).name != "sd3_train_network.py":
            continue
        folder = _parent(path)
        python = ""
        for venv in VENV_NAMES:
            for exe in ("python", "python3"):
                candidate = _join(folder, f"{venv}/bin/{exe}")
                if not python and candidate in entries:
                    python = candidate
        found.append(SdScripts(dir=folder, python=python))
    return tuple(found)


def find_comfyui(listing: list[str]) -> tuple[str, ...]:
    """Folders holding main.py beside a comfy/ folder."""
    entries = set(listing)
    found = []
    for path in sorted(listing):
        if PurePosixPath(path).name == "main.py":
            folder = _parent(path)
            if _join(folder, "comfy/") in entries:
                found.append(folder)
    return tuple(found)


def find_swarmui(listing: list[str]) -> tuple[SwarmUI, ...]:
    """SwarmUI folders: a Models/ folder holding Stable-Diffusion/ or Lora/."""
    entries = set(listing)
    found = []
    for path in sorted(listing):
        if not path.endswith("/Models/") and path != "Models/":
            continue
        models = path.rstrip("/")
        if _join(models, "Stable-Diffusion/") in entries or _join(models, "Lora/") in entries:
            found.append(SwarmUI(dir=_parent(models), models_dir=models, lora_dir=models + "/Lora"))
    return tuple(found)


def _folder_kind(path: str) -> str:
    """ "checkpoint", "encoder", "vae" or "" from the model folder the file lives under."""
    parts = [p.lower() for p in PurePosixPath(path).parts[:-1]]
    for pair in zip(parts, parts[1:], strict=False):
        if pair in CHECKPOINT_FOLDERS:
            return "checkpoint"
        if pair in ENCODER_FOLDERS:
            return "encoder"
        if pair in VAE_FOLDERS:
            return "vae"
    return ""


def _name_forms(stem: str) -> tuple[str, str]:
    """A file stem lower-cased with "_" for every run of other characters, and without them."""
    underscored = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")
    return underscored, underscored.replace("_", "")


def _matches(pattern: str, forms: tuple[str, str]) -> bool:
    return bool(pattern) and any(re.search(pattern, form) for form in forms)


def _checkpoint_architecture(forms: tuple[str, str], among=None) -> str:
    """The architecture whose checkpoint name pattern matches first (by name priority)."""
    specs = sorted(among or ARCHITECTURES.values(), key=lambda s: s.name_priority)
    return next((s.key for s in specs if _matches(s.name_pattern, forms)), "")


def classify_name(filename: str) -> tuple[str, str] | None:
    """(kind, architecture) from a model file's name alone, or None when unrecognised.

    Encoders and autoencoders first (the registry's file roles), then checkpoints by the
    architectures' name patterns. A VAE is attributed to the architecture that takes one
    and whose pattern its name matches, else to the last of them (SD 1.5).
    """
    lower = filename.lower()
    if not lower.endswith(MODEL_SUFFIXES):
        return None
    forms = _name_forms(lower.rsplit(".", 1)[0])
    for kind in (*ENCODER_KINDS, "vae"):
        if _matches(FILE_ROLES[kind].name_pattern, forms):
            if kind != "vae":
                return (kind, "")
            takers = [s for s in ARCHITECTURES.values() if "vae" in s.optional_files]
            fallback = max(takers, key=lambda s: s.name_priority).key
            return ("vae", _checkpoint_architecture(forms, takers) or fallback)
    architecture = _checkpoint_architecture(forms)
    return ("checkpoint", architecture) if architecture else None


def find_model_files(listing: list[str]) -> tuple[ModelFile, ...]:
    """Model files under the usual SwarmUI/ComfyUI folders, classified by name."""
    found = []
    for path in sorted(listing):
        if path.endswith("/"):
            continue
        folder = _folder_kind(path)
        if not folder:
            continue
        guess = classify_name(PurePosixPath(path).name)
        if guess is None:
            continue
        kind, architecture = guess
        found.append(ModelFile(path=path, kind=kind, architecture=architecture))
    return tuple(found)


def _best(candidates: list[str], checkpoint: str) -> str:
    """The encoder nearest the checkpoint (same install), full precision before fp8."""
    top = PurePosixPath(checkpoint).parts[0]

    def key(path: str) -> tuple:
        return (PurePosixPath(path).parts[0] != top, "fp8" in path.lower(), len(path), path)

    return min(candidates, key=key) if candidates else ""


def propose_base_models(files: tuple[ModelFile, ...]) -> tuple[BaseModelProposal, ...]:
    """One base model per checkpoint, with the encoders its architecture needs."""
    encoders = {kind: [f.path for f in files if f.kind == kind] for kind in ENCODER_KINDS}
    proposals = []
    names: set[str] = set()
    for f in files:
        if f.kind != "checkpoint":
            continue
        needs = ARCHITECTURES[f.architecture].encoders
        picked = {kind: _best(encoders[kind], f.path) for kind in needs}
        name = PurePosixPath(f.path).stem[:100]
        if name in names:
            name = f.path[-100:]
        names.add(name)
        proposals.append(
            BaseModelProposal(
                name=name,
                architecture=f.architecture,
                files={"checkpoint": f.path, **{k: path for k, path in picked.items() if path}},
                missing=tuple(kind for kind, path in picked.items() if not path),
            )
        )
    return tuple(proposals)


def detect(listing: list[str]) -> Detection:
    """Find sd-scripts, ComfyUI, SwarmUI, model files and base models in one listing."""
    files = find_model_files(listing)
    return Detection(
        sdscripts=find_sdscripts(listing),
        comfyui=find_comfyui(listing),
        swarmui=find_swarmui(listing),
        model_files=files,
        base_models=propose_base_models(files),
    )


def find_hub_cache(caches: Mapping[str, list[str]]) -> HubCache | None:
    """The first hub cache (in the caller's order) holding a tokenizer an architecture loads.

    `caches` maps a hub cache folder (`…/hub`) to its repository folders that hold a
    tokenizer (`models--org--name`), as `scan.hub_caches` lists them.
    """
    repos = sorted({r for s in ARCHITECTURES.values() if s.tokenizers for r in s.tokenizers.repos})
    for hub, folders in caches.items():
        held = set(folders)
        found = tuple(r for r in repos if hub_folder(r) in held)
        if found:
            return HubCache(hf_home=str(PurePosixPath(hub).parent), tokenizers=found)
    return None
