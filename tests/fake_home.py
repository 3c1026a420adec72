"""A fake home folder with sd-scripts, ComfyUI and SwarmUI laid out as on a lab workstation."""

from __future__ import annotations

import os
import sys
from pathlib import Path

MODEL_FILES = (
    "SwarmUI/Models/Stable-Diffusion/OfficialStableDiffusion/sd3.5_large.safetensors",
    "SwarmUI/Models/Stable-Diffusion/flux1-dev.safetensors",
    "SwarmUI/Models/clip/clip_l.safetensors",
    "SwarmUI/Models/clip/clip_g.safetensors",
    "SwarmUI/Models/clip/t5xxl_fp16.safetensors",
    "SwarmUI/Models/VAE/ae.safetensors",
    "ComfyUI/models/checkpoints/sd_xl_base_1.0.safetensors",
)
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def make_fake_home(home: Path, *, importable: bool = True) -> Path:
    """Create the tree under `home` (model files are empty) and return `home`."""
    files = {
        "sd-scripts/sd3_train_network.py": "",
        "sd-scripts/.git/HEAD": COMMIT + "\n",
        "ComfyUI/main.py": "",
        "ComfyUI/comfy/__init__.py": "",
        "SwarmUI/launch-linux.sh": "",
        "Documents/notes.txt": "",
    }
    if importable:
        files["sd-scripts/library/__init__.py"] = ""
        files["sd-scripts/library/train_util.py"] = ""
    files.update(dict.fromkeys(MODEL_FILES, ""))
    for rel, text in files.items():
        path = home / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (home / "SwarmUI/Models/Lora").mkdir(parents=True, exist_ok=True)
    venv_bin = home / "sd-scripts/venv/bin"
    venv_bin.mkdir(parents=True, exist_ok=True)
    os.symlink(sys.executable, venv_bin / "python")
    return home
