"""`check_node --probe`: train one real step on this node and say what broke.

The smallest enabled base model whose files are on this node (by the probe's memory
estimate) trains one step at 64 px, rank 1, without samples, on a generated two-image
dataset in a temporary folder under the node's work folder, with the node's sd-scripts,
trainer environment and tokenizer cache, on GPU 0 (planned against its free memory) or, on
a machine without a GPU, on the CPU. The trainer starts as a run's does (its own process
group, parent-death signal) and its exit is classified as a run's is (classify_exit), so
the report names the same reason and advice a failed first run would.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import deque
from pathlib import Path

from django.conf import settings

from sdscripts import vram
from sdscripts.command import DATASET_TOML, Subset, TrainJob, build_command
from sdscripts.engine import (
    PROBE_CAPTIONS,
    PROBE_OUTPUT_NAME,
    PROBE_VALUES,
    probe_estimate_mib,
    probe_params,
)
from sdscripts.outcome import TOKENIZER_ADVICE, Outcome, classify_exit
from sdscripts.progress import is_progress_noise
from training.execution.process import TrainerProcess
from training.models import BaseModel, GPUNode
from training.nodes import nvml
from training.nodes.report import FAIL, OK, Check

PROBE_TIMEOUT_S = 900
TAIL_LINES = 300  # what the exit is classified from, as a run's log tail
SHOWN_LINES = 25  # what the report prints after a failure
READ_WAIT_S = 0.2
COLOURS = ((200, 40, 40), (40, 60, 200))
SDSCRIPTS_FIX = "register_node --sdscripts-python (the Python of sd-scripts' venv)"
# What to do after a failure whose message does not say it (classify_exit's reasons).
FIXES = {
    "trainer_error": "read the log below; a module missing from sd-scripts' venv is fixed by "
    "pip install -r requirements.txt in the sd-scripts folder, with its venv's Python",
    "config": "sd-scripts refused an option LoRA Studio gives it: is the checkout the one "
    "docs/sd-scripts.md names? (see its 'Upgrading sd-scripts')",
    "missing_files": "check the base model's files and the node's models root "
    "(register_node --models-root, scan_models ROOT)",
}


def smallest_model(node: GPUNode) -> BaseModel | None:
    """The enabled base model with every file on this node that needs the least memory."""
    ready = [
        model
        for model in BaseModel.objects.filter(enabled=True).exclude(architecture="demo")
        if model.spec.on_gpu
        and all(Path(p).is_file() for p in model.model_files(node.models_root).values())
    ]
    return min(ready, key=lambda m: (probe_estimate_mib(m.architecture), m.name), default=None)


def write_dataset(folder: Path) -> Path:
    """Two small captioned images (PNG + .txt) in `folder`; returns it."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True)
    size = int(PROBE_VALUES["resolution"])
    for index, (caption, colour) in enumerate(zip(PROBE_CAPTIONS, COLOURS, strict=True)):
        image = Image.new("RGB", (size, size), (235, 235, 235))
        ImageDraw.Draw(image).ellipse((8, 8, size - 8, size - 8), fill=colour)
        image.save(folder / f"probe{index}.png")
        (folder / f"probe{index}.txt").write_text(caption + "\n")
    return folder


def _gpu() -> nvml.GpuReading | None:
    """GPU 0 of this machine, or None when it has none (the probe then uses the CPU)."""
    report = nvml.read_gpus(settings.LORASTUDIO_GPU_BACKEND, settings.LORASTUDIO_FAKE_GPUS)
    if not report.ok or not report.gpus:
        return None
    return min(report.gpus, key=lambda g: g.index)


def _follow(trainer: TrainerProcess, deadline: float) -> tuple[dict[str, list[str]], bool]:
    """Each stream's log lines (progress bars left out) until the trainer ends, and whether
    time ran out. Kept apart: the two pipes interleave in no fixed order, and a traceback is
    on stderr while log lines are on stdout."""
    lines: dict[str, deque[str]] = {name: deque(maxlen=TAIL_LINES) for name in ("stdout", "stderr")}
    while not trainer.finished():
        if time.monotonic() > deadline:
            return {name: list(kept) for name, kept in lines.items()}, True
        for name, piece in trainer.pieces(timeout=READ_WAIT_S):
            if piece.kind == "line" and not is_progress_noise(piece.text):
                lines[name].append(piece.text)
    return {name: list(kept) for name, kept in lines.items()}, False


def _params(model: BaseModel, gpu: nvml.GpuReading | None) -> tuple[dict, str]:
    """The probe's parameters on `gpu` (savers planned against its free memory) or the CPU;
    and why it cannot run there ("" when it can)."""
    params = probe_params(model.architecture, cpu=gpu is None)
    if gpu is None:
        return params, ""
    plan = vram.plan(model.architecture, params, gpu.free_mib or gpu.total_mib)
    return dict(plan.params), "" if plan.fits else plan.message


def _job(node: GPUNode, model: BaseModel, params: dict, work: Path) -> TrainJob:
    """The probe's trainer job in `work`: the node's sd-scripts, trainer env, tokenizers."""
    return TrainJob(
        architecture=model.architecture,
        model_files=model.model_files(node.models_root),
        subsets=(Subset(str(write_dataset(work / "images")), 1, "probe"),),
        params=params,
        work_dir=str(work),
        output_dir=str(work / "output"),
        output_name=PROBE_OUTPUT_NAME,
        logging_dir=str(work / "logs"),
        python=node.sdscripts_python,
        sdscripts_dir=node.sdscripts_dir,
        tokenizer_cache_dir=node.tokenizer_cache_dir,
        env=dict(node.trainer_env or {}),
    )


def _train(
    argv: list[str], cwd: str, own_env: dict, timeout_s: float
) -> tuple[int | None, dict[str, list[str]], bool, float]:
    """Run the trainer as the runner does (its environment too: only what a trainer may have);
    (exit code, lines per stream, timed out, seconds)."""
    started = time.monotonic()
    inherit = settings.LORASTUDIO_TRAINER_ENV
    trainer = TrainerProcess(argv, cwd=cwd, command_env=own_env, inherit=inherit)
    try:
        lines, timed_out = _follow(trainer, started + timeout_s)
        if not timed_out:
            trainer.wait()  # its pipes are closed: it has exited or is about to
    finally:
        trainer.stop(grace=1.0)  # the group, with any child left behind
    return trainer.returncode, lines, timed_out, time.monotonic() - started


def _failure(what: str, outcome: Outcome, arch_key: str, params: dict, log: str) -> Check:
    """FAIL with classify_exit's reason and advice, and what to do where it has none."""
    fix = FIXES.get(outcome.reason, "")  # the other reasons' messages hold their advice
    if outcome.reason == "oom":
        fix = vram.oom_advice(arch_key, params, vram.estimate_vram(arch_key, params).total_mib)
    elif outcome.message == TOKENIZER_ADVICE:
        fix = ""
    detail = f"one step of {what} failed ({outcome.reason}): {outcome.message}"
    return Check("probe", FAIL, detail, fix, log=log)


def probe(node: GPUNode, *, timeout_s: float = PROBE_TIMEOUT_S) -> Check:
    """Train one step of the smallest base model on `node`; OK with the time, or FAIL why."""
    model = smallest_model(node)
    if model is None:
        return Check(
            "probe",
            FAIL,
            "no enabled base model has all its files on this node",
            "register one: scan_models ROOT or register_base_model (check the models root)",
        )
    gpu = _gpu()
    where = f"GPU {gpu.index} ({gpu.name})" if gpu is not None else "the CPU"
    what = f"{model.name} ({model.spec.label}) on {where}"
    params, too_big = _params(model, gpu)
    if too_big:
        return Check(
            "probe",
            FAIL,
            f"{model.name} does not fit in the free memory of {where}: {too_big}",
            "free the GPU (stop ComfyUI/SwarmUI or wait for the running job) and probe again",
        )
    work_root = Path(node.work_dir or settings.LORASTUDIO_WORK_DIR)
    work_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="probe-", dir=work_root))
    try:
        job = _job(node, model, params, work)
        built = build_command(job)
        (work / DATASET_TOML).write_text(built.dataset_config)
        env = {**built.env, "CUDA_VISIBLE_DEVICES": str(gpu.index) if gpu is not None else ""}
        try:
            code, lines, timed_out, seconds = _train(built.argv, built.cwd, env, timeout_s)
        except OSError as exc:
            return Check("probe", FAIL, f"cannot start {built.argv[0]}: {exc}", SDSCRIPTS_FIX)
        # Where the error is: the end of stderr (a traceback), else of stdout.
        shown = "\n".join((lines["stderr"] or lines["stdout"])[-SHOWN_LINES:])
        if timed_out:
            return Check(
                "probe",
                FAIL,
                f"one step of {what} did not finish within {timeout_s:g} s",
                "read the log below; on a slow machine give it longer (--probe-timeout)",
                log=shown,
            )
        final = Path(job.output_dir) / f"{PROBE_OUTPUT_NAME}.safetensors"
        tail = "\n".join(lines["stdout"] + lines["stderr"])
        outcome = classify_exit(code, tail, final.is_file(), False, model_files=job.model_files)
        if outcome.status == "succeeded":
            return Check("probe", OK, f"one step of {what} trained in {seconds:.0f} s")
        return _failure(what, outcome, model.architecture, params, shown)
    finally:
        shutil.rmtree(work, ignore_errors=True)
