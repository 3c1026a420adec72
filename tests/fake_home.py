"""A fake home folder with sd-scripts, ComfyUI and SwarmUI laid out as on a lab workstation,
and a fake sd-scripts checkout that answers check_node's questions as a real one would."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from sdscripts.architectures import ARCHITECTURES, hub_folder
from sdscripts.engine import optional_modules
from tests.paths import FAKE_TRAINERS, FIXTURES

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
# Like sd-scripts' requirements.txt, which installs every optimizer module but dadaptation.
MODULES = tuple(m for m in optional_modules() if m != "dadaptation")
# Every tokenizer repository an architecture of the registry loads.
TOKENIZER_REPOS = sorted(
    {r for s in ARCHITECTURES.values() if s.tokenizers for r in s.tokenizers.repos}
)

# library/strategy_base.py of the fake: loads a tokenizer the way sd-scripts' _load_tokenizer
# and transformers' from_pretrained do, by folders only. First the tokenizer cache folder
# (sd-scripts' `org_name/`, a local path: no Hub), else from a repository name: with
# HF_HUB_OFFLINE=1 only from a hub cache (`cache_dir`, else $HF_HOME/hub; no default, so a
# test never reads the real home's cache); without it transformers asks the Hub even for a
# cached tokenizer, which answers only with FAKE_HUB_ONLINE=1. What it loads by name it saves
# into the tokenizer cache folder, as sd-scripts does. The errors are the real ones'.
STRATEGY_BASE = """
import os

OFFLINE = (
    "We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find "
    "them in the cached files."
)
NO_NETWORK = "HTTPSConnectionPool(host='huggingface.co', port=443): Max retries exceeded"


def from_pretrained(repo, cache_dir=None):
    hf_home = os.environ.get("HF_HOME")
    hub = cache_dir or (os.path.join(hf_home, "hub") if hf_home else "")
    folder = "models--" + repo.replace("/", "--")
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        if hub and os.path.isdir(os.path.join(hub, folder)):
            return repo
        raise OSError(OFFLINE)
    if os.environ.get("FAKE_HUB_ONLINE") != "1":
        raise ConnectionError(NO_NETWORK)
    if cache_dir:
        os.makedirs(os.path.join(cache_dir, folder), exist_ok=True)
    return repo


class TokenizeStrategy:
    def _load_tokenizer(self, repo, tokenizer_cache_dir=None):
        local = os.path.join(tokenizer_cache_dir or "", repo.replace("/", "_"))
        if tokenizer_cache_dir and os.path.exists(local):
            return repo
        tokenizer = from_pretrained(repo)
        if tokenizer_cache_dir:
            os.makedirs(local)
        return tokenizer
"""
STRATEGY = """
from library.strategy_base import TokenizeStrategy, from_pretrained


class {name}(TokenizeStrategy):
    def __init__(self, *args, tokenizer_cache_dir=None):
        for repo in {repos!r}:
            if {hub_layout!r}:
                from_pretrained(repo, cache_dir=tokenizer_cache_dir)
            else:
                self._load_tokenizer(repo, tokenizer_cache_dir)
"""


def make_fake_sdscripts(
    folder: Path,
    *,
    importable: bool = True,
    modules: tuple[str, ...] = MODULES,
    trainer: str = "",
    fixture: str = "",
) -> Path:
    """A fake sd-scripts checkout in `folder` with `venv/bin/python` (this Python).

    `importable`: its `library` imports (train_util, the tokenize strategies of the registry);
    `modules`: the optional optimizer modules it can import (stubs beside it); `trainer`: its
    training scripts are that fake of tests/fake_trainers (for "replay": replaying the capture
    `fixture` of tests/fixtures/sdscripts).
    """
    files = {"sd3_train_network.py": "", ".git/HEAD": COMMIT + "\n"}
    if importable:
        files["library/__init__.py"] = ""
        files["library/train_util.py"] = ""
        files["library/strategy_base.py"] = STRATEGY_BASE
        for spec in ARCHITECTURES.values():
            if spec.tokenizers is not None:
                module = spec.tokenizers.module.replace(".", "/") + ".py"
                files[module] = STRATEGY.format(
                    name=spec.tokenizers.strategy,
                    repos=spec.tokenizers.repos,
                    hub_layout=spec.tokenizers.cache_layout == "hub",
                )
    files.update({f"{name}.py": "" for name in modules})
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if trainer:
        shutil.copy(FAKE_TRAINERS / "_common.py", folder / "_common.py")
        for script in {s.script for s in ARCHITECTURES.values() if s.on_gpu}:
            shutil.copy(FAKE_TRAINERS / f"{trainer}.py", folder / script)
    if fixture:
        capture = FIXTURES / "sdscripts" / f"{fixture}.jsonl"
        (folder / "replay_fixture.txt").write_text(str(capture))
    venv_bin = folder / "venv/bin"
    venv_bin.mkdir(parents=True, exist_ok=True)
    os.symlink(sys.executable, venv_bin / "python")
    return folder


def make_hub_cache(hf_home: Path, repos=TOKENIZER_REPOS) -> Path:
    """A Hugging Face cache folder (HF_HOME) holding the tokenizers of `repos`."""
    for repo in repos:
        snapshot = hf_home / "hub" / hub_folder(repo) / "snapshots" / COMMIT
        snapshot.mkdir(parents=True, exist_ok=True)
        (snapshot / "tokenizer_config.json").write_text("{}")
    return hf_home


def make_fake_home(home: Path, *, importable: bool = True, hub_cache: bool = True) -> Path:
    """Create the tree under `home` (model files are empty) and return `home`.

    `hub_cache`: `.cache/huggingface` holds every tokenizer the registry's architectures load.
    """
    files = {
        "ComfyUI/main.py": "",
        "ComfyUI/comfy/__init__.py": "",
        "SwarmUI/launch-linux.sh": "",
        "Documents/notes.txt": "",
    }
    files.update(dict.fromkeys(MODEL_FILES, ""))
    for rel, text in files.items():
        path = home / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (home / "SwarmUI/Models/Lora").mkdir(parents=True, exist_ok=True)
    make_fake_sdscripts(home / "sd-scripts", importable=importable)
    if hub_cache:
        make_hub_cache(home / ".cache/huggingface")
    return home
