"""The trainer job of a run: its work folder, image folders, output name, LoRA metadata and
the argv-ready `TrainJob`, built by one function (`build_job`) for a plan (training.planning's
`RunPlan.job`, what a dry run shows) and for a stored run (`job_for_run`, what the runner
writes and starts)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.conf import settings

from datasets.export import CAPTION_EXTENSION, export_folder
from lorastudio.safepath import safe_name
from sdscripts.command import Subset, TrainJob
from sdscripts.prompts import clean_prompt
from sdscripts.prompts import sample_prompts as sample_prompts_of


def output_name(name: str, run_key: str) -> str:
    """The trainer's `--output_name`: the run's name made safe (lorastudio.safepath), then its
    number; it never starts with "-", which argparse would read as an option."""
    return f"{safe_name(name, fallback='lora', max_length=40)}-run{run_key}"


def run_work_dir(node, run_key: str) -> Path:
    """Where a run is prepared on `node`: its own folder under the node's work folder."""
    root = node.work_dir if node is not None and node.work_dir else settings.LORASTUDIO_WORK_DIR
    return Path(root) / f"run-{run_key}"


def datasets_of(dataset, regularization) -> list[tuple[Any, bool]]:
    """(dataset, is_regularisation) for the training dataset and the regularisation one if set."""
    return [(d, is_reg) for d, is_reg in ((dataset, False), (regularization, True)) if d]


def dataset_dest(work: Path, is_reg: bool) -> Path:
    """The folder a run's training (or regularisation) images are exported under."""
    return work / "data" / ("reg" if is_reg else "train")


def lora_description(owner, name: str, arch) -> dict[str, str]:
    """The LoRA file's own title, author and description (sd-scripts' --metadata_* options).

    Only what an exact rerun keeps (the run's name, its owner, the architecture), never the
    run's number or a time: the demo trainer's file must come out the same byte for byte.
    The run's number and input hashes are added to the file as lorastudio_* keys.
    """
    return {
        "title": name.strip() or "untitled LoRA",
        "author": owner.get_username(),
        "description": f"Trained with LoRA Studio ({arch.label}); its lorastudio_* metadata "
        "names the run and the hashes of its dataset and base model.",
    }


def build_job(
    *,
    owner,
    base_model,
    datasets: list[tuple[Any, bool]],
    params: dict,
    sample_prompts: str,
    extra_flags: tuple[str, ...],
    name: str,
    run_key: str,
    node,
) -> TrainJob:
    arch = base_model.spec
    work = run_work_dir(node, run_key)
    # A run's own repeats and trigger word (empty: the dataset's) are its training subset's;
    # a regularisation subset keeps its dataset's.
    subsets = tuple(
        Subset(
            image_dir=str(export_folder(dataset, dataset_dest(work, is_reg))),
            num_repeats=(not is_reg and params.get("num_repeats")) or dataset.repeats,
            class_tokens=(not is_reg and params.get("class_tokens")) or dataset.trigger_word,
            caption_extension=CAPTION_EXTENSION,
            is_reg=is_reg,
        )
        for dataset, is_reg in datasets
    )
    if not arch.on_gpu:
        python, sdscripts = sys.executable, ""
    else:
        python = (node.sdscripts_python if node is not None else "") or "python3"
        sdscripts = (node.sdscripts_dir if node is not None else "sd-scripts") or ""
    return TrainJob(
        architecture=arch.key,
        model_files=base_model.model_files(node.models_root if node is not None else ""),
        subsets=subsets,
        params=dict(params),
        work_dir=str(work),
        output_dir=str(work / "output"),
        output_name=output_name(name, run_key),
        logging_dir=str(work / "logs"),
        python=python,
        sdscripts_dir=sdscripts,
        sample_prompts=tuple(
            clean_prompt(p) for p in sample_prompts_of(sample_prompts.splitlines())
        ),
        extra_flags=tuple(extra_flags),
        tokenizer_cache_dir=node.tokenizer_cache_dir if node is not None else "",
        env=dict(node.trainer_env or {}) if node is not None else {},
        metadata=lora_description(owner, name, arch),
    )


def job_for_run(run, node) -> TrainJob:
    """The trainer job of a stored run on `node` (what the runner writes and starts)."""
    job = build_job(
        owner=run.owner,
        base_model=run.base_model,
        datasets=datasets_of(run.dataset, run.regularization_dataset),
        params=run.params,
        sample_prompts=run.sample_prompts,
        extra_flags=tuple(run.extra_flags or ()),
        name=run.name,
        run_key=str(run.pk),
        node=node,
    )
    if run.resume_state_id is None:
        return job
    # The saved state's zip holds one folder of its name; the runner unpacks it there.
    where = Path(job.work_dir) / "resume" / Path(run.resume_state.file.name).stem
    return replace(job, resume_dir=str(where), resume_epoch=run.resume_epoch)
