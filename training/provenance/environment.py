"""The software and machine a run trains with: sd-scripts' commit, the trainer's Python
packages, the GPU and its driver, and LoRA Studio's own version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from django.conf import settings

import lorastudio
from training.execution.process import trainer_environment
from training.nodes import nvml
from training.nodes.check import sdscripts_version

# The trainer's packages a LoRA depends on (sd-scripts' own requirements).
PACKAGES = ("torch", "accelerate", "transformers", "diffusers", "bitsandbytes", "safetensors")
PROBE_TIMEOUT_S = 60
# Run by the trainer's own Python: versions from the installed distributions' metadata,
# without importing them (importing torch takes seconds).
PROBE = """
import json, sys
from importlib import metadata
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        found[name] = None
print(json.dumps({"python": sys.version.split()[0], "packages": found}))
"""


@dataclass(frozen=True)
class Environment:
    """What the trainer ran with, as recorded in a run's provenance."""

    sdscripts_version: str
    packages: dict = field(default_factory=dict)  # {"python": "3.11.9", "torch": "2.5.1", …}
    gpu_name: str = ""
    gpu_uuid: str = ""
    driver: str = ""


def git_commit(folder: Path) -> str:
    """The full commit the git checkout (or worktree) at `folder` is at; "" when `folder` is
    not the top of one (a plain folder inside someone's home repository is not sd-scripts)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--show-toplevel", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = result.stdout.splitlines()
    if result.returncode != 0 or len(lines) != 2:
        return ""
    top, commit = lines
    return commit if Path(top).resolve() == Path(folder).resolve() else ""


@lru_cache(maxsize=1)
def lorastudio_version() -> str:
    """LoRA Studio's version, e.g. "0.16.0 (c2d7b50e1f2a)": lorastudio.__version__ and this
    checkout's `git describe` ("-dirty" when files differ from the commit); the version
    alone where it is not a checkout.
    Cached: a worker runs one version until it is restarted after an upgrade."""
    described = sdscripts_version(Path(settings.BASE_DIR))  # any checkout's describe
    version = lorastudio.__version__
    return f"{version} ({described})" if described else version


def probe_packages(python: str, cwd: str, env: dict[str, str]) -> dict:
    """The trainer Python's version and its PACKAGES' versions (None: not installed); on
    failure {"error": why}: provenance records it instead of refusing the run."""
    try:
        result = subprocess.run(
            [python, "-c", PROBE, *PACKAGES, "sd-scripts"],
            cwd=cwd or None,
            env=env,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"{python}: {exc}"}
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"{python} exited {result.returncode}: {last}"}
    try:
        found = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"{python}: unreadable answer {result.stdout[-200:]!r}"}
    return {"python": found["python"], **found["packages"]}


def sdscripts_checkout(folder: str, packages: dict) -> str:
    """sd-scripts' commit and `git describe`, else its package version, else why not."""
    if not folder:
        return "unknown (no sd-scripts folder)"
    commit = git_commit(Path(folder))
    if commit:
        described = sdscripts_version(Path(folder))
        return f"{commit} ({described})" if described and described != commit else commit
    if packages.get("sd-scripts"):
        return f"package {packages['sd-scripts']}"
    return f"unknown ({folder} is not a git checkout)"


def gpu_facts(run) -> tuple[str, str, str]:
    """(GPU name, UUID, driver) of the run's GPU as NVML reports it now; ("", "", "") for a
    run without a GPU (the CPU demo)."""
    if run.gpu_id is None:
        return "", "", ""
    report = nvml.read_gpus(settings.LORASTUDIO_GPU_BACKEND, settings.LORASTUDIO_FAKE_GPUS)
    for reading in report.gpus:
        if reading.index == run.gpu.index:
            return reading.name, reading.uuid, report.driver
    return run.gpu.name, run.gpu.uuid, report.driver


def environment(run, job, command) -> Environment:
    """Everything about the machine and software the run's trainer starts with."""
    own = {**command.env, "PYTHONUNBUFFERED": "1"}
    env = trainer_environment(os.environ, own, settings.LORASTUDIO_TRAINER_ENV)
    python = command.argv[0]
    packages = probe_packages(python, command.cwd or str(settings.BASE_DIR), env)
    sd_scripts = packages.pop("sd-scripts", None)
    if not run.base_model.spec.on_gpu:
        trainer = f"demo_trainer (LoRA Studio {lorastudio_version()})"
    else:
        trainer = sdscripts_checkout(job.sdscripts_dir, {"sd-scripts": sd_scripts})
    gpu_name, gpu_uuid, driver = gpu_facts(run)
    if not gpu_name and run.gpu_id is None:
        gpu_name = f"none (CPU, {sys.platform})"
    return Environment(trainer, packages, gpu_name, gpu_uuid, driver)
