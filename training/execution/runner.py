"""The runner: the django-q2 task body that trains one run and always ends it.

Shaped like netbox's JobRunner: re-check the status on entry, prepare, run the trainer,
classify its exit, collect its files, and in `finally` stop its process group and dispatch
again. The parts live beside it: the work directory (workdir), room on the GPU (memory),
the trainer process (process), the log (runlog), LoRA files (files) and samples (samples).
"""

from __future__ import annotations

import errno
import logging
import os
import traceback
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from sdscripts.command import command_text
from sdscripts.outcome import classify_exit
from sdscripts.vram import oom_advice
from training.choices import FailureReason, RunStatus
from training.evaluation import server
from training.evaluation.services import request_after_training
from training.execution import memory, workdir
from training.execution.errors import NotEnoughMemory, RunFailure
from training.execution.files import LoraCollector
from training.execution.process import TrainerProcess
from training.execution.runlog import RunLogWriter
from training.execution.samples import SampleCollector
from training.execution.watch import Heartbeat, Watch, cancel_requested
from training.lifecycle import TransitionError, transition
from training.models import TrainingRun
from training.provenance import capture as provenance
from training.provenance.exact import check_before_start, reproduction_note
from training.resume import progress_at_start, resume_after_loss

logger = logging.getLogger(__name__)


class Runner:
    """Trains one run; `run_all()` always leaves it in a terminal state (or back in the queue)."""

    def __init__(self, run: TrainingRun):
        self.run = run
        self.log = RunLogWriter(run.pk)
        self.trainer: TrainerProcess | None = None
        self.watch: Watch | None = None
        self.server_stopped = False  # the node's inference server, stopped for this run

    def run_all(self) -> str:
        run = self.run
        try:
            transition(
                run,
                RunStatus.PREPARING,
                expect=RunStatus.ASSIGNED,
                note="Preparing the work directory.",
                changes={"heartbeat_at": timezone.now(), "worker_pid": os.getpid()},
            )
            with Heartbeat(run.pk):
                job, command = workdir.prepare(run, run.node)
                self.say(f"[LoRA Studio] Work directory {job.work_dir}")
                # Hashing a new model file takes minutes: the heartbeat thread covers it.
                record = provenance.capture(run, job, command)
                check_before_start(run, record)
                self.server_stopped = server.stop_for_training(run, self.say)
                memory.make_room(run, self.say)
            self.say(
                f"[LoRA Studio] Provenance: dataset {record.dataset_sha256}, "
                f"base model {record.base_model_sha256}, trainer {record.sdscripts_version}"
            )
            stamp = provenance.lora_metadata(record)
            self.loras = LoraCollector(run, Path(job.output_dir), job.output_name, stamp)
            self.samples = SampleCollector(
                run.pk, Path(job.output_dir) / "sample", prompts=job.sample_prompts
            )
            if cancel_requested(run.pk):
                self._end(RunStatus.CANCELLED, note="Cancelled before the trainer started.")
                return RunStatus.CANCELLED
            record.save()  # captured at start, never changed (RunProvenance.save)
            self.start(job.work_dir, command)
            self.watch = Watch(
                run, self.trainer, log=self.log, loras=self.loras, samples=self.samples
            )
            self.watch.follow()
            return self.finish()
        except NotEnoughMemory as exc:
            self.say(f"[LoRA Studio] {exc} Back to the queue.")
            self._requeue(str(exc))
            return RunStatus.QUEUED
        except RunFailure as exc:
            self.say(f"[LoRA Studio] {exc.message}")
            self._end(RunStatus.FAILED, reason=exc.reason, note=exc.message)
            return RunStatus.FAILED
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                return self._crashed(exc)
            note = f"The disk filled up: {exc}. Free space on {run.node.name} and run it again."
            self.say(f"[LoRA Studio] {note}")
            self._end(RunStatus.FAILED, reason=FailureReason.DISK_FULL, note=note)
            return RunStatus.FAILED
        except Exception as exc:
            return self._crashed(exc)
        finally:
            self.cleanup()

    def _crashed(self, exc: Exception) -> str:
        logger.exception("Run %s crashed in the runner", self.run.pk)
        for line in traceback.format_exc().splitlines():
            self.log.add(line)
        note = f"The runner failed: {type(exc).__name__}: {exc}"
        self._end(RunStatus.FAILED, reason=FailureReason.TRAINER_ERROR, note=note)
        return RunStatus.FAILED

    def say(self, line: str) -> None:
        self.log.add(line)

    def start(self, work_dir: str, command) -> None:
        """Start the trainer in its own session; store its process group; mark it running."""
        run = self.run
        own = {
            **command.env,
            "PYTHONUNBUFFERED": "1",
            "CUDA_VISIBLE_DEVICES": str(run.gpu.index) if run.gpu_id else "",
        }
        self.say("[LoRA Studio] Starting: " + command_text(command.argv))
        cwd = command.cwd or str(settings.BASE_DIR)
        # Only the allowed part of this worker's environment (process.trainer_environment).
        self.trainer = TrainerProcess(
            command.argv, cwd=cwd, command_env=own, inherit=settings.LORASTUDIO_TRAINER_ENV
        )
        note = "The trainer is running."
        if run.resume_state_id:
            note = f"The trainer is running, resumed after epoch {run.resume_epoch}."
        transition(
            run,
            RunStatus.RUNNING,
            expect=RunStatus.PREPARING,
            note=note,
            changes={
                "pgid": self.trainer.pgid,
                "argv": list(command.argv),
                "dataset_config": command.dataset_config,
                "work_dir": work_dir,
                "heartbeat_at": timezone.now(),
                **progress_at_start(run),
            },
        )

    def finish(self) -> str:
        """Classify the exit, collect the files, publish, and end the run."""
        returncode = self.trainer.returncode
        final = self.loras.collect_all()
        self.samples.scan(final=True)
        cancelled = self.watch.cancelled
        files = self.run.base_model.model_files(self.run.node.models_root)
        tail = self.log.tail_text()
        outcome = classify_exit(returncode, tail, final.is_file(), cancelled, model_files=files)
        changes = {"exit_code": returncode}
        if outcome.status == "succeeded":
            published = self.loras.publish(self.run.node.lora_dir)
            note = outcome.message + (f" Published to {published}." if published else "")
            if reproduced := reproduction_note(self.run):
                note += " " + reproduced
            self._end(RunStatus.SUCCEEDED, note=note, changes=changes)
            # Queued now, placed by the dispatch in cleanup (after the server is back).
            evaluation = request_after_training(self.run)
            if evaluation is not None:
                self.say(f"[LoRA Studio] {evaluation} is queued: its grid fills in below.")
        elif outcome.status == "cancelled":
            self._end(RunStatus.CANCELLED, note=outcome.message, changes=changes)
        else:
            note = outcome.message
            if outcome.reason == "oom":
                run = self.run
                estimate = run.vram_estimate_mib or (run.gpu.total_mib if run.gpu_id else 0)
                correction = float((run.plan or {}).get("correction") or 1.0)
                note += " " + oom_advice(
                    run.base_model.architecture, dict(run.params), estimate, correction=correction
                )
            self._end(RunStatus.FAILED, reason=outcome.reason, note=note, changes=changes)
        return outcome.status

    def _end(self, to: str, *, reason: str = "", note: str = "", changes=None) -> None:
        changes = {**(changes or {}), "pgid": None, "worker_pid": None}
        if self.watch is not None and self.watch.peak_mib:
            changes["vram_peak_mib"] = self.watch.peak_mib
        self.log.flush()
        try:
            transition(self.run, to, reason=reason, note=note, changes=changes)
        except TransitionError as exc:
            # E.g. the reaper declared the worker lost meanwhile: its verdict stands.
            logger.warning("Run %s could not end as %s: %s", self.run.pk, to, exc)
            return
        resume_after_loss(self.run)  # node_offline: resumed once, elsewhere if need be

    def _requeue(self, message: str) -> None:
        self.log.flush()
        changes = {
            "node": None,
            "gpu": None,
            "heartbeat_at": None,
            "pgid": None,
            "worker_pid": None,
        }
        try:
            transition(self.run, RunStatus.QUEUED, note=message, changes=changes)
        except TransitionError as exc:
            logger.warning("Run %s could not go back to the queue: %s", self.run.pk, exc)

    def cleanup(self) -> None:
        """Always: stop the process group, start the inference server it stopped, flush the
        log, then dispatch again (which places the run's evaluation)."""
        if self.trainer is not None:
            self.trainer.stop(grace=1.0)
        if self.server_stopped:
            try:
                server.start_after_training(self.run, self.say)
            except Exception:
                logger.exception("Could not start the inference server after run %s", self.run.pk)
        try:
            self.log.flush()
        except Exception:
            logger.exception("Could not write the last log chunk of run %s", self.run.pk)
        try:
            from training.scheduler import dispatch

            dispatch()
        except Exception:
            logger.exception("Dispatch after run %s failed", self.run.pk)


def execute(run_id: int) -> str:
    """Train run `run_id` if it is still `assigned`; return how it ended (or "skipped")."""
    close_old_connections()
    # Only the joins every step needs: on PostgreSQL a six-table join took ~6 ms to plan and
    # build, against ~1 ms for the dataset and owner looked up when they are used.
    run = TrainingRun.objects.select_related("node", "gpu", "base_model").filter(pk=run_id).first()
    if run is None or run.status != RunStatus.ASSIGNED:
        # A redelivered or stale task: the run already started, ended or went away.
        logger.info("Run %s is not assigned (%s); nothing to do", run_id, run and run.status)
        return "skipped"
    return Runner(run).run_all()
