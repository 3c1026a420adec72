"""Capture a run's provenance just before its trainer starts, and the keys its LoRAs carry.

The runner calls `capture()` once the work folder is written (the dataset exported, the
command built): the dataset is hashed from the exported folder the trainer will read, the
model files through the node's hash cache, and the software where it runs. `save()` writes
the record when the trainer is about to start; nothing changes it afterwards.
"""

from __future__ import annotations

from pathlib import Path

from datasets.fingerprint import content_sha256, folder_entries
from training.choices import FailureReason
from training.execution.errors import RunFailure
from training.models import RunProvenance
from training.provenance.environment import environment, lorastudio_version
from training.provenance.hashing import hash_model_files, model_files_sha256

# The LoRA metadata keys LoRA Studio adds beside sd-scripts' ss_* keys.
RUN_ID_KEY = "lorastudio_run_id"
DATASET_KEY = "lorastudio_dataset_sha256"
REG_DATASET_KEY = "lorastudio_reg_dataset_sha256"
BASE_MODEL_KEY = "lorastudio_base_model_sha256"
VERSION_KEY = "lorastudio_version"
TRAINER_KEY = "lorastudio_trainer_version"


def _subset_record(subset, dataset) -> dict:
    """One exported image folder as trained: its settings, content hash and files."""
    entries = folder_entries(Path(subset.image_dir), subset.caption_extension)
    originals = {}
    if dataset is not None:
        for name, original in dataset.images.values_list("file", "original_name"):
            originals[Path(name).name] = original
    files = [{**e.record(), "original_name": originals.get(e.name, "")} for e in entries]
    return {
        "role": "reg" if subset.is_reg else "train",
        "dataset_id": dataset.pk if dataset is not None else None,
        "dataset_name": dataset.name if dataset is not None else "",
        "repeats": subset.num_repeats,
        "class_tokens": subset.class_tokens,
        "sha256": content_sha256(entries),
        "image_count": len(entries),
        "files": files,
    }


def _base_model_record(run, job) -> tuple[str, dict]:
    base_model = run.base_model
    # The demo's "base model" is built into the demo trainer: no files to hash.
    files = dict(job.model_files) if base_model.spec.on_gpu else {}
    try:
        hashed = hash_model_files(run.node, files)
    except OSError as exc:
        raise RunFailure(
            FailureReason.MISSING_FILES, f"Cannot read a model file to hash it: {exc}"
        ) from exc
    configured = {role: getattr(base_model, role) for role in files}
    record = {
        "id": base_model.pk,
        "name": base_model.name,
        "architecture": base_model.architecture,
        "configured": configured,
        "files": [f.record() for f in hashed],
    }
    return model_files_sha256(hashed), record


def capture(run, job, command) -> RunProvenance:
    """The run's provenance as its trainer is about to see it (not saved yet).

    RunFailure(missing_files) when a model file cannot be read.
    """
    datasets = {False: run.dataset, True: run.regularization_dataset}
    subsets = [_subset_record(s, datasets[bool(s.is_reg)]) for s in job.subsets]
    train = next((s for s in subsets if s["role"] == "train"), {"sha256": ""})
    base_sha, base_record = _base_model_record(run, job)
    env = environment(run, job, command)
    return RunProvenance(
        run=run,
        argv=list(command.argv),
        dataset_config=command.dataset_config,
        prompt_file=command.sample_prompts,
        params=dict(run.params),
        extra_flags=list(run.extra_flags or ()),
        dataset_sha256=train["sha256"],
        subsets=subsets,
        base_model_sha256=base_sha,
        base_model=base_record,
        node_name=run.node.name if run.node_id else "",
        gpu_name=env.gpu_name[:100],
        gpu_uuid=env.gpu_uuid[:100],
        driver=env.driver[:100],
        sdscripts_version=env.sdscripts_version[:200],
        packages=env.packages,
        lorastudio_version=lorastudio_version()[:100],
    )


def lora_metadata(record: RunProvenance) -> dict[str, str]:
    """The lorastudio_* keys written into each of the run's LoRA files, so that a file found
    on a disk names its run and the hashes of what it was trained from."""
    keys = {
        RUN_ID_KEY: str(record.run_id),
        DATASET_KEY: record.dataset_sha256,
        BASE_MODEL_KEY: record.base_model_sha256,
        VERSION_KEY: record.lorastudio_version,
        TRAINER_KEY: record.sdscripts_version,
    }
    reg = record.subset("reg")
    if reg is not None:
        keys[REG_DATASET_KEY] = reg["sha256"]
    return keys
