"""Prepare a run's work directory on its node: dataset export, TOML, prompts, argv record.

The job comes from training.trainer_job.job_for_run, the same path `train --dry-run` shows,
so the folders and the command written here are the ones the plan showed.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

from datasets.export import export_dataset
from sdscripts.command import (
    DATASET_TOML,
    SAMPLE_PROMPTS_TXT,
    BuiltCommand,
    TrainJob,
    build_command,
)
from training.choices import FailureReason
from training.execution.errors import RunFailure
from training.trainer_job import dataset_dest, job_for_run, run_work_dir


def prepare(run, node) -> tuple[TrainJob, BuiltCommand]:
    """Write the work directory of `run` on `node`; return its job and built command.

    1. Start from an empty `run-<id>/` folder with `output/` in it.
    2. Export the dataset (and regularisation set) in sd-scripts' folder layout.
    3. Check that the node has the base model's files and, for sd-scripts, its folder.
    4. A resumed run: unpack the saved state it continues from (`--resume`).
    5. Build the command and write the dataset TOML, prompt file and `argv.json`.
    RunFailure (config or missing_files) says what is wrong.
    """
    work = run_work_dir(node, str(run.pk))
    if work.exists():
        shutil.rmtree(work)
    (work / "output").mkdir(parents=True)
    if run.dataset is None:
        raise RunFailure(FailureReason.MISSING_FILES, "The run's dataset was deleted.")
    for dataset, is_reg in ((run.dataset, False), (run.regularization_dataset, True)):
        if dataset is not None:
            exported = export_dataset(dataset, dataset_dest(work, is_reg), is_reg=is_reg)
            if not exported.image_count:
                raise RunFailure(FailureReason.CONFIG, f"Dataset {dataset.name} has no images.")
    arch = run.base_model.spec
    if arch.on_gpu:
        files = run.base_model.model_files(node.models_root)
        missing = [path for path in files.values() if not os.path.exists(path)]
        if missing:
            raise RunFailure(
                FailureReason.MISSING_FILES, f"{node.name} lacks model files: {', '.join(missing)}"
            )
        if not node.sdscripts_dir:
            raise RunFailure(FailureReason.CONFIG, f"{node.name} has no sd-scripts folder set.")
    job = job_for_run(run, node)
    if job.resume_dir:
        unpack_state(run.resume_state, Path(job.resume_dir))
    try:
        built = build_command(job)
    except (ValueError, KeyError) as exc:
        raise RunFailure(FailureReason.CONFIG, f"Could not build the command: {exc}") from exc
    Path(job.work_dir, DATASET_TOML).write_text(built.dataset_config)
    Path(job.work_dir, SAMPLE_PROMPTS_TXT).write_text(built.sample_prompts)
    Path(job.work_dir, "argv.json").write_text(json.dumps(built.argv, indent=1))
    return job, built


def unpack_state(state, dest: Path) -> None:
    """Unpack a STATE zip (the runner wrote it: one folder) so that `dest` is that folder.
    An entry that would land outside it refuses the whole state."""
    try:
        handle = state.file.open("rb")
    except (FileNotFoundError, ValueError):
        raise RunFailure(
            FailureReason.MISSING_FILES, f"The saved state {state} to resume from is gone."
        ) from None
    root = dest.parent.resolve()
    with handle, zipfile.ZipFile(handle) as archive:
        for entry in archive.infolist():
            target = (root / entry.filename).resolve()
            if not target.is_relative_to(dest.resolve()):
                raise RunFailure(
                    FailureReason.CONFIG, f"The saved state {state} holds {entry.filename!r}."
                )
        archive.extractall(root)
    if not dest.is_dir():
        raise RunFailure(FailureReason.CONFIG, f"The saved state {state} holds no {dest.name}/.")
