"""Check that a node can train: sd-scripts (its optional modules, the tokenizers offline),
GPUs, UIs (and that they list the evaluation LoRA folder), model files, folders, disk space,
and with `run_probe` one real training step."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from django.conf import settings

from training.evaluation.check import check_inference
from training.models import BaseModel, GPUNode
from training.nodes import comfyui, nvml
from training.nodes.engine import check_engine_modules, check_tokenizers
from training.nodes.probe import PROBE_TIMEOUT_S, probe
from training.nodes.report import FAIL, OK, WARN, Check
from training.nodes.setup import answers

__all__ = ["FAIL", "OK", "WARN", "Check", "check_node"]
IMPORT_SDSCRIPTS = "import library.train_util"
IMPORT_TIMEOUT_S = 180


def sdscripts_version(folder: Path) -> str:
    """The checkout's `git describe`, else its HEAD commit read from .git, else ""."""
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), "describe", "--tags", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    head = folder / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (folder / ".git" / ref[5:]).read_text().strip()[:12]
        return ref[:12]
    except OSError:
        return ""


def check_sdscripts(node: GPUNode) -> list[Check]:
    """The folder holds sd3_train_network.py and its python imports sd-scripts' library."""
    fix_dir = "register_node --sdscripts-dir DIR (the folder holding sd3_train_network.py)"
    if not node.sdscripts_dir:
        return [Check("sd-scripts", FAIL, "no sd-scripts folder set", fix_dir)]
    folder = Path(node.sdscripts_dir)
    if not (folder / "sd3_train_network.py").is_file():
        return [Check("sd-scripts", FAIL, f"{folder} has no sd3_train_network.py", fix_dir)]
    python = node.sdscripts_python
    fix_py = (
        "create its venv (cd sd-scripts && python3 -m venv venv && venv/bin/pip install -r "
        "requirements.txt) and register_node --sdscripts-python venv/bin/python"
    )
    if not python or not os.access(python, os.X_OK):
        return [
            Check("sd-scripts Python", FAIL, f"{python or 'not set'} is not executable", fix_py)
        ]
    try:
        result = subprocess.run(
            [python, "-c", IMPORT_SDSCRIPTS],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=IMPORT_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [Check("sd-scripts Python", FAIL, f"{python}: {exc}", fix_py)]
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return [Check("sd-scripts Python", FAIL, f"cannot import sd-scripts: {last}", fix_py)]
    version = sdscripts_version(folder)
    GPUNode.objects.filter(pk=node.pk).update(sdscripts_version=version[:100])
    return [
        Check("sd-scripts", OK, f"{folder} ({version or 'version unknown'})"),
        Check("sd-scripts Python", OK, f"{python} imports sd-scripts"),
    ]


def check_gpus() -> Check:
    """NVML (or the fake backend) answers with at least one GPU."""
    report = nvml.read_gpus(settings.LORASTUDIO_GPU_BACKEND, settings.LORASTUDIO_FAKE_GPUS)
    if report.ok and report.gpus:
        names = ", ".join(f"{g.index}: {g.name} {g.total_mib} MiB" for g in report.gpus)
        return Check("GPUs", OK, f"{report.backend}: {names}")
    return Check(
        "GPUs",
        FAIL,
        f"{report.backend}: {report.message}",
        "install the NVIDIA driver (nvidia-smi must work); for the CPU demo set "
        "LORASTUDIO_GPU_BACKEND=fake",
    )


def check_uis(node: GPUNode) -> list[Check]:
    """ComfyUI and SwarmUI answer at their URLs, when set."""
    checks = []
    if node.comfyui_url:
        try:
            devices = comfyui.comfyui_devices(node.comfyui_url, timeout=2.0)
            checks.append(Check("ComfyUI", OK, f"{node.comfyui_url} ({len(devices)} device(s))"))
        except comfyui.UIError as exc:
            checks.append(
                Check("ComfyUI", WARN, str(exc), "start ComfyUI, or clear the node's ComfyUI URL")
            )
    if node.swarmui_url:
        if answers(node.swarmui_url, timeout=2.0):
            checks.append(Check("SwarmUI", OK, node.swarmui_url))
        else:
            checks.append(
                Check(
                    "SwarmUI",
                    WARN,
                    f"{node.swarmui_url} does not answer",
                    "start SwarmUI, or clear the node's SwarmUI URL",
                )
            )
    return checks


def check_model_files(node: GPUNode) -> list[Check]:
    """Every enabled base model's files exist on this node."""
    checks = []
    for model in BaseModel.objects.filter(enabled=True).exclude(architecture="demo"):
        missing = [
            f"{kind} {path}"
            for kind, path in model.model_files(node.models_root).items()
            if not Path(path).is_file()
        ]
        if missing:
            checks.append(
                Check(
                    f"model {model.name}",
                    WARN,
                    "missing " + "; ".join(missing),
                    "copy the files, set the node's models root, or run scan_models ROOT",
                )
            )
        else:
            checks.append(Check(f"model {model.name}", OK, "all files present"))
    return checks


def check_writable(label: str, folder: str) -> Check:
    """The folder exists (or can be made) and a file can be written in it."""
    fix = f"mkdir -p {folder} and give this user write access"
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".lorastudio-check-"):
            pass
    except OSError as exc:
        return Check(label, FAIL, f"{folder}: {exc.strerror or exc}", fix)
    return Check(label, OK, f"{folder} is writable")


def check_disk(folder: str, min_free_gib: float) -> Check:
    """Free space where runs are prepared."""
    try:
        free_gib = shutil.disk_usage(folder).free / 1024**3
    except OSError as exc:
        return Check("disk space", FAIL, f"{folder}: {exc}", "create the work folder")
    if free_gib < min_free_gib:
        return Check(
            "disk space",
            WARN,
            f"{free_gib:.1f} GiB free in {folder} (want {min_free_gib:g})",
            "free space or move the work folder (register_node --work-dir)",
        )
    return Check("disk space", OK, f"{free_gib:.1f} GiB free in {folder}")


def check_node(
    node: GPUNode,
    *,
    min_free_gib: float = 20.0,
    run_probe: bool = False,
    probe_timeout_s: float = PROBE_TIMEOUT_S,
) -> list[Check]:
    """Run every check for `node` and return the report's lines in order; `run_probe` adds
    a one-step training (training.nodes.probe) at the end."""
    work_dir = node.work_dir or str(settings.LORASTUDIO_WORK_DIR)
    sdscripts = check_sdscripts(node)
    # Its Python can only be asked more once it imports sd-scripts.
    engine_ok = all(c.state == OK for c in sdscripts)
    checks = [*sdscripts]
    if engine_ok:
        checks += [check_engine_modules(node), *check_tokenizers(node)]
    checks += [check_gpus(), *check_uis(node)]
    if any(c.state == OK for c in checks if c.name in ("ComfyUI", "SwarmUI")):
        checks += check_inference(node)
    checks += check_model_files(node)
    if node.lora_dir:
        checks.append(check_writable("LoRA folder", node.lora_dir))
    else:
        checks.append(
            Check("LoRA folder", WARN, "not set", "register_node --lora-dir SwarmUI/Models/Lora")
        )
    checks.append(check_writable("work folder", work_dir))
    checks.append(check_disk(work_dir, min_free_gib))
    if run_probe:
        if engine_ok:
            checks.append(probe(node, timeout_s=probe_timeout_s))
        else:
            checks.append(Check("probe", FAIL, "not run: sd-scripts is not usable (see above)", ""))
    return checks
