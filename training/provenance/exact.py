"""Run exactly again: what changed since a run, so that a repeat is refused with the reason.

Checked twice: when the repeat is submitted (`submit_refusals`: the dataset's rows now, the
base model's configured files and the hashes nodes last saw) and when its trainer is about
to start (`start_refusals`: the captured provenance of the repeat against the original's),
since a caption may change while the repeat waits in the queue and model files live on
the nodes. The same comparisons serve both (`_subset_changes`).
"""

from __future__ import annotations

from datasets.fingerprint import dataset_entries, difference
from training.choices import FailureReason
from training.execution.errors import RunFailure
from training.models import FileHash, RunProvenance

ROLES = (("train", "dataset"), ("reg", "regularisation dataset"))


def provenance_of(run) -> RunProvenance | None:
    """The run's provenance record, or None when it has none (never started, or older)."""
    try:
        return run.provenance
    except RunProvenance.DoesNotExist:
        return None


def no_provenance(run) -> str:
    return (
        f"Run #{run.pk} has no provenance record (it never started, or it ran before LoRA "
        "Studio recorded provenance), so it cannot be repeated exactly; use “Run again”."
    )


def _subset_changes(
    original_pk: int, label: str, old: dict, files: list[dict], repeats, tokens
) -> list[str]:
    reasons = []
    diff = difference(old["files"], files)
    if not diff.same:
        reasons.append(
            f"The {label} {old['dataset_name']} changed since run #{original_pk}: {diff.summary()}."
        )
    if repeats != old["repeats"]:
        reasons.append(
            f"The {label}'s repeats changed since run #{original_pk}: {old['repeats']} → {repeats}."
        )
    if tokens != old["class_tokens"]:
        reasons.append(
            f"The {label}'s trigger word changed since run #{original_pk}: "
            f"“{old['class_tokens']}” → “{tokens}”."
        )
    return reasons


def submit_refusals(original) -> list[str]:
    """Why `original` cannot be repeated exactly now (empty: it can, as far as the web
    server can tell; the runner checks the files again before the trainer starts)."""
    record = provenance_of(original)
    if record is None:
        return [no_provenance(original)]
    reasons = []
    datasets = {"train": original.dataset, "reg": original.regularization_dataset}
    for role, label in ROLES:
        old, dataset = record.subset(role), datasets[role]
        if old is None:
            continue
        if dataset is None or dataset.pk != old["dataset_id"]:
            reasons.append(f"The {label} {old['dataset_name']} of run #{original.pk} is gone.")
            continue
        files = [e.record() for e in dataset_entries(dataset)]
        reasons += _subset_changes(
            original.pk, label, old, files, dataset.repeats, dataset.trigger_word
        )
    reasons += _model_changes(original, record)
    return reasons


def _model_changes(original, record: RunProvenance) -> list[str]:
    base_model = original.base_model
    old = record.base_model
    reasons = []
    for role, value in (old.get("configured") or {}).items():
        now = getattr(base_model, role, "")
        if now != value:
            reasons.append(
                f"Base model {base_model.name}: its {role} file is now “{now}”, "
                f"it was “{value}” in run #{original.pk}."
            )
    for f in old.get("files", []):
        # The hash the original's node last took of that path (it hashes a file again only
        # after its size or modification time changed; another node's copy is checked by
        # the runner there).
        seen = FileHash.objects.filter(node__name=record.node_name, path=f["path"]).first()
        if seen is not None and seen.sha256 != f["sha256"]:
            reasons.append(
                f"Base model {base_model.name}: {f['path']} changed since run #{original.pk} "
                f"on {record.node_name} (SHA-256 {f['sha256'][:12]}… then, {seen.sha256[:12]}… "
                f"since {seen.hashed_at:%Y-%m-%d %H:%M})."
            )
    return reasons


def start_refusals(original, record: RunProvenance, repeat: RunProvenance) -> list[str]:
    """What differs between the original's provenance and the repeat's, as captured on its
    node just before its trainer would start (empty: the same inputs)."""
    reasons = []
    for role, label in ROLES:
        old, new = record.subset(role), repeat.subset(role)
        if old is None and new is None:
            continue
        if old is None or new is None:
            reasons.append(f"The {label} is not the one run #{original.pk} trained with.")
            continue
        reasons += _subset_changes(
            original.pk, label, old, new["files"], new["repeats"], new["class_tokens"]
        )
    if repeat.base_model_sha256 != record.base_model_sha256:
        before = {f["role"]: f for f in record.base_model.get("files", [])}
        after = {f["role"]: f for f in repeat.base_model.get("files", [])}
        changed = [
            f"{role} {after.get(role, {}).get('path', '(none)')}"
            for role in sorted(set(before) | set(after))
            if before.get(role, {}).get("sha256") != after.get(role, {}).get("sha256")
        ]
        reasons.append(
            f"The base model's files are not those of run #{original.pk}: "
            f"{', '.join(changed) or 'another set of files'}."
        )
    if repeat.params != record.params or repeat.extra_flags != record.extra_flags:
        reasons.append(f"The parameters are not those of run #{original.pk}.")
    return reasons


def check_before_start(run, repeat: RunProvenance) -> None:
    """For an exact repeat: RunFailure(inputs_changed) naming every input that is not the
    original's any more; nothing for other runs."""
    if not run.exact:
        return
    original = run.rerun_of
    record = provenance_of(original) if original is not None else None
    if record is None:
        reasons = [no_provenance(original) if original else "The original run was deleted."]
    else:
        reasons = start_refusals(original, record, repeat)
    if reasons:
        number = f"#{run.rerun_of_id}" if run.rerun_of_id else "(deleted)"
        raise RunFailure(
            FailureReason.INPUTS_CHANGED,
            f"Not started: “run exactly again” needs run {number}'s very inputs. "
            + " ".join(reasons),
        )


def final_trainer_sha256(run) -> str:
    """The trainer's own hash of the run's final LoRA ("" when it has none)."""
    final = run.artifacts.filter(kind="final").order_by("-pk").first()
    return final.trainer_sha256 if final is not None else ""


def reproduction_note(run) -> str:
    """For an exact repeat that succeeded: whether the trainer wrote the same file."""
    if not run.exact or run.rerun_of is None:
        return ""
    mine, theirs = final_trainer_sha256(run), final_trainer_sha256(run.rerun_of)
    if not (mine and theirs):
        return ""
    if mine == theirs:
        return (
            f"Reproduced run #{run.rerun_of_id}: the trainer wrote the same LoRA file "
            f"(SHA-256 {mine})."
        )
    return (
        f"Same inputs as run #{run.rerun_of_id}, another LoRA file (SHA-256 {mine[:16]}…, "
        f"was {theirs[:16]}…): sd-scripts on a GPU is not bit-for-bit deterministic."
    )
