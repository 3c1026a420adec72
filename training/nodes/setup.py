"""Set up this machine as a node: what detection proposes, and the node's settings."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from training.nodes.detect import detect, find_hub_cache
from training.nodes.scan import hub_caches, list_tree

COMFYUI_LOCAL_URL = "http://127.0.0.1:8188"
SWARMUI_LOCAL_URL = "http://127.0.0.1:7801"
NODE_FIELDS = (
    "sdscripts_dir",
    "sdscripts_python",
    "comfyui_url",
    "swarmui_url",
    "lora_dir",
    "models_root",
    "work_dir",
    "tokenizer_cache_dir",
    "inference_lora_dir",
)


def answers(url: str, *, timeout: float = 1.0) -> bool:
    """Whether an HTTP server answers at `url` (any status counts as an answer)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def detected_settings(home: Path, *, probe: bool = True, hf_home: str = "") -> dict[str, str]:
    """Node settings found under `home`: sd-scripts, its python, LoRA folder, UI URLs; and
    "_hf_home" (with "_hf_tokenizers"), a Hugging Face cache holding sd-scripts' tokenizers
    ($HF_HOME, given as `hf_home`, else the home folder's), "" when none."""
    found = detect(list_tree(home))
    values: dict[str, str] = {"models_root": str(home)}
    if found.sdscripts:
        # Prefer a checkout whose venv was found.
        best = sorted(found.sdscripts, key=lambda s: (not s.python, len(s.dir)))[0]
        values["sdscripts_dir"] = str(home / best.dir)
        if best.python:
            values["sdscripts_python"] = str(home / best.python)
    if found.swarmui:
        values["lora_dir"] = str(home / found.swarmui[0].lora_dir)
        if probe and answers(SWARMUI_LOCAL_URL):
            values["swarmui_url"] = SWARMUI_LOCAL_URL
    if found.comfyui:
        values.setdefault("lora_dir", str(home / found.comfyui[0] / "models" / "loras"))
        if probe and answers(COMFYUI_LOCAL_URL + "/system_stats"):
            values["comfyui_url"] = COMFYUI_LOCAL_URL
    values["_comfyui_dirs"] = ", ".join(str(home / d) for d in found.comfyui)
    values["_swarmui_dirs"] = ", ".join(str(home / s.dir) for s in found.swarmui)
    cache = find_hub_cache(hub_caches(home, hf_home))
    values["_hf_home"] = cache.hf_home if cache else ""
    values["_hf_tokenizers"] = ", ".join(cache.tokenizers) if cache else ""
    return values
