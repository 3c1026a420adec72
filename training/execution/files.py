"""The files a run produced: LoRA checkpoints collected into media storage, and publishing.

A LoRA is complete once the trainer announces the next one (or exits), so the runner
collects a file when the following "saving checkpoint" line arrives and everything at the
end. Each file is hashed as the trainer wrote it, given LoRA Studio's lorastudio_* metadata
(the run's provenance keys), hashed again, hard-linked (or copied) to MEDIA_ROOT/runs/<id>/
and recorded once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import zipfile
from pathlib import Path

from django.conf import settings

from lorastudio.safepath import inside, safe_name
from sdscripts.lora_file import NotSafetensors, add_metadata
from training.choices import ArtifactKind
from training.models import LoraArtifact

_EPOCH_FILE = re.compile(r"-(\d{6})\.safetensors$")
_EPOCH_STATE = re.compile(r"-(\d{6})-state$")
_STEP_FILE = re.compile(r"-step(\d{8})\.safetensors$")

logger = logging.getLogger(__name__)


def sha256_of(path: Path) -> str:
    """The file's SHA-256, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def store_file(run_id: int, path: Path) -> str:
    """Place a run's file under MEDIA_ROOT/runs/<id>/; return its storage name."""
    dest = inside(settings.MEDIA_ROOT, "runs", str(run_id), path.name)
    relative = dest.relative_to(Path(settings.MEDIA_ROOT).resolve()).as_posix()
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.unlink()
    try:
        os.link(path, dest)
    except OSError:
        shutil.copy2(path, dest)
    return relative


def artifact_kind(name: str) -> tuple[str, int | None, int | None]:
    """(kind, epoch, step) from an sd-scripts LoRA file name."""
    if m := _EPOCH_FILE.search(name):
        return ArtifactKind.EPOCH, int(m[1]), None
    if m := _STEP_FILE.search(name):
        return ArtifactKind.STEP, None, int(m[1])
    return ArtifactKind.FINAL, None, None


class LoraCollector:
    """Records each LoRA file of one run once; publishes the final one."""

    def __init__(
        self, run, output_dir: Path, output_name: str, stamp: dict[str, str] | None = None
    ):
        self.run = run
        self.output_dir = Path(output_dir)
        self.output_name = output_name
        self.stamp = dict(stamp or {})  # metadata keys added to every LoRA file
        self.collected: set[str] = set()
        self.announced: list[str] = []

    @property
    def final_path(self) -> Path:
        return self.output_dir / f"{self.output_name}.safetensors"

    def announced_file(self, path: str) -> None:
        """The trainer said it saves `path`: the file announced before it is complete."""
        for earlier in self.announced:
            self.collect(Path(earlier))
        self.announced = [path]

    def collect(self, path: Path) -> LoraArtifact | None:
        """Store and record one LoRA file (once; None when it is not a finished LoRA)."""
        if not path.is_file() or path.suffix != ".safetensors" or str(path) in self.collected:
            return None
        self.collected.add(str(path))
        kind, epoch, step = artifact_kind(path.name)
        trainer_sha256 = sha256_of(path)
        if self.stamp:
            try:
                add_metadata(path, self.stamp)
            except NotSafetensors as exc:  # kept as the trainer wrote it; the run decides
                logger.warning("Run %s: no metadata added to %s: %s", self.run.pk, path, exc)
        return LoraArtifact.objects.create(
            run=self.run,
            kind=kind,
            epoch=epoch,
            step=step,
            file=store_file(self.run.pk, path),
            size_bytes=path.stat().st_size,
            sha256=sha256_of(path),
            trainer_sha256=trainer_sha256,
        )

    def collect_all(self) -> Path:
        """Collect every LoRA the trainer left, the final one last, and its saved training
        states (`--save_state` folders, as zips); return the final LoRA's path."""
        final = self.final_path
        for path in sorted(self.output_dir.glob(f"{self.output_name}*.safetensors")):
            if path != final:
                self.collect(path)
        self.collect(final)
        self.collect_states()
        return final

    def collect_states(self, before_epoch: int | None = None) -> None:
        """Collect the training states (`--save_state` folders) the trainer has finished:
        those of epochs before `before_epoch` (it has started that epoch, so they are
        complete; a run whose worker dies keeps them), or all of them at the end."""
        for folder in sorted(self.output_dir.glob(f"{self.output_name}*-state")):
            if not folder.is_dir() or str(folder) in self.collected:
                continue
            match = _EPOCH_STATE.search(folder.name)
            if before_epoch is not None and (match is None or int(match[1]) >= before_epoch):
                continue
            self.collected.add(str(folder))
            self.collect_state(folder)

    def collect_state(self, folder: Path) -> LoraArtifact:
        """Store a training-state folder as one zip (stored, not compressed) and record it.

        Only the newest epoch state is kept (a resume needs no other): one of a later epoch
        replaces the earlier ones, so a run's states take one state's disk, not one per epoch.
        """
        archive = folder.with_name(folder.name + ".zip")
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                zf.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
        match = _EPOCH_STATE.search(folder.name)
        epoch = int(match[1]) if match else None
        artifact = LoraArtifact.objects.create(
            run=self.run,
            kind=ArtifactKind.STATE,
            epoch=epoch,
            file=store_file(self.run.pk, archive),
            size_bytes=archive.stat().st_size,
            sha256=sha256_of(archive),
        )
        archive.unlink()  # media holds it now (a hard link or a copy)
        if epoch is not None:
            older = LoraArtifact.objects.filter(
                run=self.run, kind=ArtifactKind.STATE, epoch__lt=epoch
            )
            for old in older:
                old.file.delete(save=False)
                old.delete()
        return artifact

    def publish(self, lora_dir: str) -> str:
        """Copy the final LoRA into `lora_dir`/<owner>/; return where (or "" when not)."""
        final = self.final_path
        if not lora_dir or not final.is_file():
            return ""
        owner = self.run.owner
        folder = safe_name(owner.username, fallback=f"user{owner.pk}")
        dest = inside(lora_dir, folder, final.name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(final, dest)
        LoraArtifact.objects.filter(run=self.run, kind=ArtifactKind.FINAL).update(
            published_path=str(dest)
        )
        return str(dest)
