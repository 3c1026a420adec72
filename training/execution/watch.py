"""Following a running trainer: its output, progress, heartbeat, cancel flag and memory.

`Watch.follow()` is the runner's loop while the trainer runs. Output pieces go to the log,
the progress state (sdscripts.progress.ProgressState) and the LoRA collector; periodic
jobs (`Every`) write the log and progress, beat the heartbeat and check the cancel flag,
look for new samples and measure the trainer's GPU memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.utils import timezone

from sdscripts.progress import (
    ProgressState,
    is_progress_noise,
    parse_epoch,
    parse_progress,
    parse_saved_path,
)
from training import live
from training.execution.files import LoraCollector
from training.execution.process import TrainerProcess
from training.execution.runlog import FLUSH_S, RunLogWriter
from training.execution.samples import SCAN_S, SampleCollector
from training.models import TrainingRun
from training.nodes import nvml

logger = logging.getLogger(__name__)

PROGRESS_FLUSH_S = 0.5
HEARTBEAT_S = 1.0
VRAM_POLL_S = 2.0
TERM_GRACE_S = 3.0
READ_WAIT_S = 0.1


def cancel_requested(run_id: int) -> bool:
    """Whether someone asked to cancel the run (services.cancel_run sets the flag)."""
    return TrainingRun.objects.filter(pk=run_id, cancel_requested_at__isnull=False).exists()


def beat(run_id: int, model=TrainingRun) -> None:
    """Stamp the worker heartbeat of a run (or another row with `heartbeat_at`, such as an
    evaluation); the reaper frees what stops beating."""
    model.objects.filter(pk=run_id).update(heartbeat_at=timezone.now())


class Every:
    """Calls `action` when `seconds` have passed since the last call (from the watch loop)."""

    def __init__(self, seconds: float, action: Callable[[], object]):
        self.seconds, self.action, self.last = seconds, action, 0.0

    def __call__(self, now: float) -> None:
        if now - self.last >= self.seconds:
            self.last = now
            self.action()


class Heartbeat:
    """Beats a run's (or an evaluation's: `model`) heartbeat from a thread while the main
    thread is busy preparing or waiting on a server."""

    def __init__(self, run_id: int, model=TrainingRun):
        self.run_id = run_id
        self.model = model
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name=f"beat-{run_id}")

    def _loop(self) -> None:
        try:
            while not self.stop.wait(HEARTBEAT_S):
                try:
                    beat(self.run_id, self.model)
                except Exception:
                    logger.exception("Heartbeat of run %s failed", self.run_id)
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


class Watch:
    """Follows one running trainer until its output ends."""

    def __init__(
        self,
        run: TrainingRun,
        trainer: TrainerProcess,
        *,
        log: RunLogWriter,
        loras: LoraCollector,
        samples: SampleCollector,
    ):
        self.run, self.trainer, self.log = run, trainer, log
        self.loras, self.samples = loras, samples
        # A resumed run's trainer counts its steps from 0 again (sd-scripts after --resume):
        # its progress goes on from the steps done before.
        self.progress = ProgressState(
            step=run.step, epoch=run.epoch, loss_points=list(run.loss_points or [])
        )
        self.progress.step_offset = run.resume_step or 0
        self.dirty = False
        self.cancelled = False
        self.peak_mib: int | None = None

    def follow(self) -> None:
        """Read the trainer's output until it exits; beat, push progress, honour cancel."""
        trainer = self.trainer
        ticks = [
            Every(FLUSH_S, self.log.flush),
            Every(PROGRESS_FLUSH_S, self.push_progress),
            Every(HEARTBEAT_S, self.beat),
            Every(SCAN_S, self.samples.scan),  # shows samples on the run page as they appear
            Every(VRAM_POLL_S, self.measure_vram),
        ]
        while not trainer.finished():
            for _stream, piece in trainer.pieces(timeout=READ_WAIT_S):
                self.handle(piece)
            now = time.monotonic()
            for tick in ticks:
                tick(now)
        trainer.wait()
        self.push_progress()

    def handle(self, piece) -> None:
        """Route one piece of output: progress → fields, real lines → log and parsers."""
        if piece.kind == "progress" or is_progress_noise(piece.text):
            bar = parse_progress(piece.text)
            if bar is not None:
                self.progress.fold_bar(bar)
                self.dirty = True
            return
        self.log.add(piece.text)
        self.dirty |= self.progress.fold_line(piece.text)
        saved = parse_saved_path(piece.text)
        if saved is not None:
            self.loras.announced_file(saved)
        epoch = parse_epoch(piece.text)
        if epoch is not None and epoch[0] > 1:
            # The trainer started this epoch: the states it saved before are complete.
            self.loras.collect_states(before_epoch=epoch[0])

    def push_progress(self) -> None:
        """Write changed progress fields (without a history row) and send them live."""
        if not self.dirty:
            return
        self.dirty = False
        fields = self.progress.fields()
        TrainingRun.objects.filter(pk=self.run.pk).update(**fields)
        for name, value in fields.items():
            setattr(self.run, name, value)
        live.send_progress(self.run)

    def beat(self) -> None:
        """Heartbeat, and stop the trainer's process group once a cancel is requested."""
        beat(self.run.pk)
        if not self.cancelled and cancel_requested(self.run.pk):
            self.cancelled = True
            self.log.add("[LoRA Studio] Cancel requested: stopping the trainer.")
            self.log.flush()
            self.trainer.stop(grace=TERM_GRACE_S)

    def measure_vram(self) -> None:
        """Keep the highest GPU memory the trainer's processes held (NVML only)."""
        backend = settings.LORASTUDIO_GPU_BACKEND
        if backend == "nvml":
            used = nvml.process_memory_mib(backend, self.trainer.pids)
            if used is not None:
                self.peak_mib = max(self.peak_mib or 0, used)
